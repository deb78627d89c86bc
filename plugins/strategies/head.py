"""The ``head`` strategy: train only the classifier head; the pretrained body stays frozen.

The body is a fixed feature extractor (eval mode, no dropout inside it): trials compute its output
once per run and train the head on it (``autoft.feature_cache``), so a trial costs what its head costs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from autoft import Strategy, hookimpl, option
from autoft.anatomy import backbone_prefix, is_head, set_trainable

if TYPE_CHECKING:
    from torch import nn


@dataclass(frozen=True)
class HeadOptions:
    include_pooler: bool = option(True, "also train the backbone's pooler (BERT-style models have one)")


class Head(Strategy):
    """Train the classifier head alone (a linear probe, or the custom head)."""

    name = "head"
    Options = HeadOptions

    def prepare(self, model: nn.Module, options: HeadOptions) -> nn.Module:
        pooler = f"{backbone_prefix(model)}.pooler."
        set_trainable(model, lambda n: is_head(model, n) or (options.include_pooler and n.startswith(pooler)))
        return model


@hookimpl
def register_strategies(register):
    register(Head)
