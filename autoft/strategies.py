"""Fine-tuning strategies: the plugin base class and the phases it hands the training loop.

A strategy is a pair: an ``Options`` dataclass (what the study may set or
search in ``[strategies.<name>]``) and the code that decides what trains.
:meth:`Strategy.prepare` freezes or wraps the model, :meth:`Strategy.phases`
says what trains in which order with which learning rate, and
:meth:`Strategy.export` turns the trained model into a plain Hugging Face model.

A phase that trains nothing of the body but its pooler (the head alone, a frozen body) needs
nothing more: the trial runs the body once per run and trains the head on its cached output
(:mod:`autoft.feature_cache`), and the frozen body runs in eval mode either way.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from .data import NoOptions

if TYPE_CHECKING:
    from torch import nn


@dataclass
class Phase:
    """One stretch of training: these parameters, this learning rate, this many epochs.

    Evaluations in a phase that is not ``reported`` (a warm-up stage) are kept in the
    trial's history but not reported to the search backend, so its pruner compares
    trials only on evaluations that mean the same thing.
    """

    name: str
    params: list[str]
    learning_rate: float
    epochs: int
    reported: bool = True


class Strategy:
    """Base class of strategy plugins: set ``name`` and ``Options``; override what differs."""

    name: ClassVar[str] = ""
    Options: ClassVar[type] = NoOptions

    def prepare(self, model: nn.Module, options: Any) -> nn.Module:
        """Freeze, unfreeze or wrap the model; return the model to train."""
        return model

    def phases(self, model: nn.Module, options: Any, hp: Any) -> list[Phase]:
        """What trains, in order. The default: every parameter left trainable, with the trial's rate and epochs."""
        params = [n for n, p in model.named_parameters() if p.requires_grad]
        return [Phase(self.name, params, hp.learning_rate, hp.epochs)]

    def reported_epochs(self, options: Any, hp: Any) -> int:
        """Epochs whose evaluations a trial reports to the search backend (its pruner or scheduler).

        The default: the trial's ``epochs``. A strategy with unreported warm-up phases
        (``Phase.reported = False``) counts only the reported ones.
        """
        return int(hp.epochs)

    def export(self, model: nn.Module, options: Any) -> nn.Module:
        """The trained model as a plain Hugging Face model, ready for ``save_pretrained``."""
        return model

    def save_extra(self, model: nn.Module, options: Any, folder: str) -> None:
        """Save anything besides the exported model (LoRA adapters, say) into ``folder``."""
