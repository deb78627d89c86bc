"""The training settings a study file sets: ``[space]`` (:class:`Hyperparams`) and ``[train]`` (:class:`TrainSettings`).

Plain data without torch, so reading a study file does not load it; :mod:`autoft.training` uses them
(and re-exports them).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from .options import option


@dataclass(frozen=True)
class HeadSpec:
    """An MLP head: Linear(in, hidden) -> activation -> dropout -> Linear(hidden, labels)."""

    hidden_size: int
    dropout: float = 0.1
    activation: str = "gelu"


@dataclass(frozen=True)
class Hyperparams:
    """The searchable training settings: the ``[space]`` table (each fixed, a range or a choice)."""

    learning_rate: float = option(5e-5, "peak learning rate of AdamW", gt=0, lt=1)
    epochs: int = option(3, "passes over the training split", ge=1)
    batch_size: int = option(32, "texts per optimizer step", ge=1)
    weight_decay: float = option(0.01, "AdamW weight decay (not on biases and norms)", ge=0)
    warmup_ratio: float = option(0.06, "share of steps with a linear warmup", ge=0, lt=1)
    class_weights: Literal["none", "balanced"] | dict[str, float] = option(
        "none", "loss weight per class: none, balanced (inverse train frequency), or a table label = weight"
    )
    label_smoothing: float = option(0.0, "cross-entropy label smoothing", ge=0, lt=1)
    layer_decay: float = option(1.0, "layer-wise learning-rate decay: each layer down gets this factor", gt=0, le=1)
    head: Literal["linear", "mlp"] = option("linear", "classifier head: the model's own linear layer, or an MLP")
    head_hidden_size: int = option(256, "hidden units of the MLP head", ge=1)
    head_dropout: float = option(0.1, "dropout inside the MLP head", ge=0, lt=1)
    head_activation: Literal["gelu", "relu", "tanh", "silu"] = option("gelu", "activation of the MLP head")

    def head_spec(self) -> HeadSpec | None:
        """The custom head to install, or None for the model's own."""
        if self.head == "linear":
            return None
        return HeadSpec(self.head_hidden_size, self.head_dropout, self.head_activation)


@dataclass(frozen=True)
class TrainSettings:
    """Fixed training settings: the ``[train]`` table."""

    eval_every: int = option(0, "evaluate every N optimizer steps; 0 evaluates once per epoch", ge=0)
    early_stopping_patience: int = option(2, "evaluations without improvement before stopping; 0 never stops", ge=0)
    max_grad_norm: float = option(1.0, "gradient clipping norm; 0 turns clipping off", ge=0)
    precision: Literal["auto", "fp32", "bf16", "fp16"] = option("auto", "auto is bf16 on CUDA GPUs, fp32 elsewhere")
    eval_batch_size: int = option(128, "texts per evaluation batch", ge=1)
    device: str = option("auto", "auto, cpu, cuda or cuda:N")
    gradient_accumulation: int = option(1, "split each batch into this many micro-batches", ge=1)
    group_by_length: bool = option(True, "batch texts of similar length together (less padding)")
    feature_cache: bool = option(True, "a frozen body runs once per run; its head trains on the cached output")
    calibrate: bool = option(True, "fit a temperature on validation for the best model; predict applies it")
    regression_loss: Literal["mse", "huber"] = option("mse", "regression: squared error, or Huber (delta 1)")
    scale_targets: bool = option(True, "regression: train on standardised targets; the saved model predicts raw ones")
    rungs: int = option(
        3, "with a pruner, evaluations in the first epoch after 1/2**k of it (3: 1/8, 1/4, 1/2); 0: none", ge=0, le=6
    )
    rung_validation_rows: int = option(
        256, "validation rows the rungs inside the first epoch score (seeded, stratified); 0 scores all", ge=0
    )
    rung_min_samples: int = option(
        500,
        "a rung inside the first epoch comes after this many training texts at least (fewer say nothing);"
        " counted in texts, so every batch size keeps the same rungs",
        ge=1,
    )
