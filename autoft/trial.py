"""One trial: a fresh model, the strategy's preparation, the training loop, the outcome."""

from __future__ import annotations

import gc
import hashlib
import math
import random
import shutil
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from . import feature_cache
from .errors import TrialFailed
from .fsutil import write_json
from .heads import install_head, save_head
from .outcome import TrialOutcome
from .space import TrialConfig
from .training import Reporter, autocast_dtype, class_weight_tensor, predict_proba, train
from .workbench import Workbench

#: the folder, inside a saved trial's checkpoint, of its test (and validation) probabilities
PREDICTIONS = "predictions"


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
    settings = replace(bench.config.train, rungs=bench.config.rungs)
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
    if result.out_of_time:
        budget = f"stopped at the budget ({bench.config.search.budget}) after {result.epochs_trained:g} epochs"
        note = f"{note}; {budget}" if note else budget
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
        epochs_trained=result.epochs_trained,
        epochs_planned=result.epochs_planned,
    )
    if outcome.state == "complete" and store is not None and value is not None:
        folder = store.claim(number, value)
        if folder is not None:
            # while the model is on its device; validation's as its best evaluation scored them
            save_predictions(bench, model, settings, folder, validation=result.best_validation_proba)
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
        deadline=bench.deadline,
        forwards=feature_cache.for_trial(bench, model, phases, settings),  # a frozen body's output, computed once
    )
    return model, strategy, result, trainable, total


def save_predictions(
    bench: Workbench, model: torch.nn.Module, settings: Any, folder: Path, validation: np.ndarray | None = None
) -> None:
    """Beside a saved model: its class probabilities of the test split (and of validation, to calibrate on).

    The trial scores them while it holds the weights, so the study's export of the best trial
    need not score them again (:func:`saved_predictions`). ``validation``: the validation split's
    probabilities the training loop already computed with these weights (its best evaluation), kept
    instead of scoring the split again. Out of memory, it leaves them to the export.
    """
    device = bench.device
    dtype = autocast_dtype(settings.precision, device)
    out = folder / PREDICTIONS
    out.mkdir()
    splits = {}
    try:
        for split in ("test", "validation") if bench.scores_validation else ("test",):
            data = bench.encoded[split]
            if split == "validation" and validation is not None and len(validation) == len(data):
                proba = validation
            else:
                size = settings.eval_batch_size
                proba = predict_proba(model, data, batch_size=size, device=device, pad_id=bench.pad_id, dtype=dtype)
            np.save(out / f"{split}.npy", proba)
            splits[split] = _digests(proba, data.labels)
    except torch.cuda.OutOfMemoryError:
        shutil.rmtree(out)
        free_memory()
        return
    write_json(out / "scored.json", {**_scored_as(bench), "splits": splits})


def saved_predictions(checkpoint: Path, bench: Any, split: str) -> np.ndarray | None:
    """The class probabilities of ``split`` a trial saved beside its model (:func:`save_predictions`), or None.

    None when there are none, when they are damaged (their digest), or when they do not fit this study's
    split (its rows and labels, the precision and max_length it is scored at): the caller scores it itself.
    """
    from .saved import DamagedFile, read_json, read_npy

    folder = Path(checkpoint) / PREDICTIONS
    if not (folder / f"{split}.npy").is_file():
        return None
    try:
        scored = read_json(folder / "scored.json", "")
        proba = read_npy(folder / f"{split}.npy", "", mmap=False, finite=True)
    except DamagedFile:
        return None
    splits = scored.pop("splits", None)
    if scored != _scored_as(bench) or not isinstance(splits, dict):
        return None
    data = bench.encoded[split]
    fits = proba.shape == (len(data), len(bench.label_names))
    if not (fits and splits.get(split) == _digests(proba, data.labels)):
        return None
    return proba


def _scored_as(bench: Any) -> dict:
    """What a split's probabilities depend on besides the weights and the split's rows."""
    return {"precision": bench.config.train.precision, "max_length": bench.config.model.max_length}


def _digests(proba: np.ndarray, labels: Any) -> dict[str, str]:
    """SHA-256 of the probabilities (a damaged file is not read as scores) and of the labels they are for."""

    def digest(array: np.ndarray) -> str:
        return hashlib.sha256(np.ascontiguousarray(array).tobytes()).hexdigest()

    return {"proba": digest(proba), "labels": digest(np.asarray(labels, dtype=np.int64))}


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
