"""The ``lora`` strategy: low-rank adapters (peft) on the attention projections, plus the classifier head.

Adapters are saved with the model (``adapter/``) and merged into the exported
weights, so the best model loads as a plain Hugging Face model.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from autoft import Strategy, hookimpl, option
from autoft.anatomy import head_modules, lora_targets

if TYPE_CHECKING:
    from torch import nn


@dataclass(frozen=True)
class LoraOptions:
    r: int = option(8, "adapter rank", ge=1)
    alpha: int = option(16, "scaling numerator: updates are scaled by alpha / r", ge=1)
    dropout: float = option(0.1, "dropout on the adapter input", ge=0, lt=1)
    target_modules: str | list[str] = option(
        "auto", "auto or attention (query/key/value for the model type), all-linear, or module names"
    )
    bias: Literal["none", "all", "lora_only"] = option("none", "which biases train")
    use_rslora: bool = option(False, "rank-stabilised scaling (alpha / sqrt(r))")


class Lora(Strategy):
    """Low-rank adaptation via peft; the classifier head trains in full."""

    name = "lora"
    Options = LoraOptions

    def prepare(self, model: nn.Module, options: LoraOptions) -> nn.Module:
        from peft import LoraConfig, TaskType, get_peft_model

        targets = lora_targets(model, options.target_modules)
        config = LoraConfig(
            task_type=TaskType.SEQ_CLS,
            r=options.r,
            lora_alpha=options.alpha,
            lora_dropout=options.dropout,
            target_modules=targets,
            bias=options.bias,
            use_rslora=options.use_rslora,
            modules_to_save=head_modules(model),
        )
        return get_peft_model(model, config)

    def save_extra(self, model: nn.Module, options: LoraOptions, folder: str) -> None:
        model.save_pretrained(os.path.join(folder, "adapter"), safe_serialization=True)

    def export(self, model: nn.Module, options: LoraOptions) -> nn.Module:
        return model.merge_and_unload()


@hookimpl
def register_strategies(register):
    register(Lora)
