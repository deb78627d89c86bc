"""The ``body`` strategy: fine-tune everything but the classifier head, which keeps its initial weights."""

from __future__ import annotations

from typing import TYPE_CHECKING

from autoft import NoOptions, Strategy, hookimpl
from autoft.anatomy import is_head, set_trainable

if TYPE_CHECKING:
    from torch import nn


class Body(Strategy):
    """Train the pretrained body; the randomly initialised head stays fixed (a random projection)."""

    name = "body"
    Options = NoOptions

    def prepare(self, model: nn.Module, options: NoOptions) -> nn.Module:
        set_trainable(model, lambda name: not is_head(model, name))
        return model


@hookimpl
def register_strategies(register):
    register(Body)
