"""One trial: a fresh model, the strategy's preparation, the training loop, the outcome."""

from __future__ import annotations

import gc
import math
import random
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .errors import TrialFailed
from .heads import install_head, save_head
from .space import TrialConfig
from .training import Reporter, class_weight_tensor, train
from .workbench import Workbench


@dataclass
class TrialOutcome:
    """What a finished trial reports back (it crosses process boundaries, so plain data only)."""

    state: str  # "complete", "pruned" or "failed"
    value: float | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    history: list[dict] = field(default_factory=list)
    best_epoch: float = 0.0
    trainable_params: int = 0
    total_params: int = 0
    train_seconds: float = 0.0
    eval_seconds: float = 0.0
    samples_per_second: float = 0.0
    peak_memory_mb: float = 0.0
    checkpoint: bool = False
    reason: str = ""

    @property
    def trainable_share(self) -> float:
        return self.trainable_params / self.total_params if self.total_params else 0.0

    def attrs(self) -> dict:
        """The outcome as Optuna user attributes."""
        out = asdict(self)
        out["trainable_share"] = round(self.trainable_share, 6)
        out.pop("state")
        out.pop("value")
        return out


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def trial_seed(study_seed: int, number: int) -> int:
    return study_seed * 100_003 + number


def run_trial(
    bench: Workbench,
    number: int,
    config: TrialConfig,
    reporter: Reporter | None = None,
    store: Any = None,
) -> TrialOutcome:
    """Train one configuration; ``store`` (a CheckpointStore) keeps the model if it is the best so far.

    Out of memory, the trial is retried once with each batch split into twice as
    many micro-batches (gradient accumulation keeps the effective batch).
    """
    seed = trial_seed(bench.config.study.seed, number)
    settings = bench.config.train
    note = ""
    for attempt in range(2):
        try:
            model, strategy, result, trainable, total = _attempt(bench, config, seed, settings, reporter)
            break
        except torch.cuda.OutOfMemoryError as exc:
            micro = math.ceil(config.hp.batch_size / settings.gradient_accumulation)
            if attempt or micro <= 1:
                first = str(exc).splitlines()[0][:160] if str(exc) else ""
                raise TrialFailed(f"out of memory with micro-batches of {micro}: {first}") from exc
        free_memory()
        accumulation = settings.gradient_accumulation * 2
        settings = replace(
            settings, gradient_accumulation=accumulation, eval_batch_size=max(1, settings.eval_batch_size // 2)
        )
        note = (
            f"out of memory at micro-batch {micro}: retried with {accumulation} micro-batches "
            f"of {math.ceil(config.hp.batch_size / accumulation)}"
        )
    value = result.best_metrics.get(bench.config.objective.name)
    outcome = TrialOutcome(
        state="pruned" if result.pruned else "complete",
        value=value,
        metrics=result.best_metrics,
        history=result.history,
        best_epoch=result.best_epoch,
        trainable_params=trainable,
        total_params=total,
        train_seconds=round(result.train_seconds, 3),
        eval_seconds=round(result.eval_seconds, 3),
        samples_per_second=round(result.samples_per_second, 2),
        peak_memory_mb=round(result.peak_memory_mb, 1),
        reason=note,
    )
    if outcome.state == "complete" and store is not None and value is not None:
        folder = store.claim(number, value)
        if folder is not None:
            save_trained(model, strategy, config, folder)
            store.commit(number, folder)
            outcome.checkpoint = True
    del model
    free_memory()
    return outcome


def _attempt(bench: Workbench, config: TrialConfig, seed: int, settings: Any, reporter: Reporter | None):
    """Build the trial's model and train it: (model, strategy, result, trainable, total parameters)."""
    seed_everything(seed)
    strategy = bench.registry.strategy(config.strategy)()
    model = bench.base.fresh(seed)
    head = config.hp.head_spec()
    if head is not None:
        install_head(model, head, seed)
    model = strategy.prepare(model, config.options)
    phases = strategy.phases(model, config.options, config.hp)
    tracked = {n for phase in phases for n in phase.params}
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for n, p in model.named_parameters() if n in tracked)
    weights = class_weight_tensor(config.hp.class_weights, bench.encoded["train"].labels, bench.label_names)
    result = train(
        model,
        phases,
        bench.encoded["train"],
        bench.encoded["validation"],
        hp=config.hp,
        settings=settings,
        objective=bench.config.objective,
        metrics=bench.metrics,
        device=bench.device,
        pad_id=bench.pad_id,
        seed=seed,
        class_weights=weights,
        reporter=reporter,
    )
    return model, strategy, result, trainable, total


def save_trained(model: torch.nn.Module, strategy, config: TrialConfig, folder: Path) -> None:
    """The trained model as a plain Hugging Face folder (safetensors), with strategy extras."""
    model = model.to("cpu")
    strategy.save_extra(model, config.options, str(folder))
    exported = strategy.export(model, config.options)
    exported.save_pretrained(folder, safe_serialization=True)
    save_head(folder, config.hp.head_spec())


def free_memory() -> None:
    gc.collect()
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        torch.cuda.empty_cache()
