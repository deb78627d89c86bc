"""The ``full`` strategy: fine-tune every parameter, optionally keeping the embeddings and lowest layers frozen.

With the embeddings and every layer frozen only the pooler and the head train: such trials use the
body's output computed once per run (``autoft.feature_cache``), as the ``head`` strategy does.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from autoft import Strategy, hookimpl, option
from autoft.anatomy import is_embedding, layer_list, set_trainable

if TYPE_CHECKING:
    from torch import nn


@dataclass(frozen=True)
class FullOptions:
    freeze_embeddings: bool = option(False, "keep the embedding layer frozen")
    freeze_layers: int = option(0, "keep the lowest N transformer layers frozen", ge=0)


class Full(Strategy):
    """Fine-tune the whole model."""

    name = "full"
    Options = FullOptions

    def prepare(self, model: nn.Module, options: FullOptions) -> nn.Module:
        frozen = frozen_predicate(model, options.freeze_embeddings, options.freeze_layers)
        set_trainable(model, lambda name: not frozen(name))
        return model


def frozen_predicate(model: nn.Module, embeddings: bool, layers: int):
    """A test for parameter names: embeddings (if asked) and layers below ``layers``."""
    prefix, stack = layer_list(model)
    if layers > len(stack):
        raise ValueError(f"freeze_layers is {layers} but the model has {len(stack)} layers")
    pattern = re.compile(re.escape(prefix) + r"\.(\d+)\.")

    def frozen(name: str) -> bool:
        if embeddings and is_embedding(model, name):
            return True
        match = pattern.match(name)
        return bool(match and int(match.group(1)) < layers)

    return frozen


@hookimpl
def register_strategies(register):
    register(Full)
