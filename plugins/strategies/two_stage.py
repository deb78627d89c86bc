"""The ``two_stage`` strategy: warm the classifier head first, then fine-tune the whole model.

Training the new head alone before unfreezing the body keeps its random
initial gradients from disturbing the pretrained weights (as in ULMFiT's
gradual unfreezing, in two steps). Each stage has its own learning rate and
epochs; the second stage uses the trial's ``learning_rate`` and ``epochs``. Only the second
stage's evaluations go to the pruner: a head trained alone would look poor next to
whole models at the same epoch, and be pruned for it. The first stage trains on the body's output
computed once per run (``autoft.feature_cache``); the second runs the whole model.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from autoft import Phase, Strategy, hookimpl, option
from autoft.anatomy import backbone_prefix, is_head

if TYPE_CHECKING:
    from torch import nn


@dataclass(frozen=True)
class TwoStageOptions:
    head_learning_rate: float = option(1e-3, "learning rate of the first stage (head only)", gt=0, lt=1)
    head_epochs: int = option(1, "epochs of the first stage", ge=1)
    include_pooler: bool = option(True, "train the backbone's pooler with the head in the first stage")


class TwoStage(Strategy):
    """Head first, then everything."""

    name = "two_stage"
    Options = TwoStageOptions

    def phases(self, model: nn.Module, options: TwoStageOptions, hp) -> list[Phase]:
        pooler = f"{backbone_prefix(model)}.pooler."
        names = [n for n, _ in model.named_parameters()]
        head = [n for n in names if is_head(model, n) or (options.include_pooler and n.startswith(pooler))]
        return [
            Phase("head", head, options.head_learning_rate, options.head_epochs, reported=False),
            Phase("full", names, hp.learning_rate, hp.epochs),
        ]


@hookimpl
def register_strategies(register):
    register(TwoStage)
