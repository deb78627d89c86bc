"""Training throughput: ``Trainer.train()`` and ``autoft.training.train`` on the same tokens and model.

Both sides get a fresh copy of the same pretrained model (``BaseModel.fresh``, same head seed) already on
the device, the same token ids (``autoft.features.encode``), batch size, epochs, precision, learning rate
and warmup. Training time is the wall time of the call (device synchronised before and after); autoft's
loop evaluates once per epoch, so its evaluation seconds are subtracted, and the Trainer runs with
``eval_strategy="no"``. Validation accuracy is measured afterwards, untimed, as a check that both learned.
"""

from __future__ import annotations

import dataclasses
import gc
import statistics
import tempfile
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from autoft.metrics import Objective

from .common import sync


@dataclass(frozen=True)
class LoopSettings:
    batch_size: int
    epochs: int
    precision: str  # fp32, bf16 or fp16
    learning_rate: float = 5e-5
    warmup_ratio: float = 0.06
    eval_batch_size: int = 128
    dataloader_workers: int = 0
    seed: int = 0


class EncodedDataset(torch.utils.data.Dataset):
    """autoft's token ids as the Trainer's usual items (lists, padded later by DataCollatorWithPadding)."""

    def __init__(self, encoded: Any):
        self.encoded = encoded

    def __len__(self) -> int:
        return len(self.encoded)

    def __getitem__(self, i: int) -> dict:
        start, end = int(self.encoded.offsets[i]), int(self.encoded.offsets[i + 1])
        ids = self.encoded.ids[start:end].tolist()
        return {"input_ids": ids, "attention_mask": [1] * len(ids), "labels": int(self.encoded.labels[i])}


def accuracy(pred: Any) -> dict:
    return {"accuracy": float((np.argmax(pred.predictions, -1) == pred.label_ids).mean())}


def trainer_args(out_dir: str, s: LoopSettings, device: str, **extra: Any) -> Any:
    """TrainingArguments as in the reference script, with this run's settings (``extra`` overrides)."""
    from transformers import TrainingArguments

    kwargs = {
        "per_device_train_batch_size": s.batch_size,
        "per_device_eval_batch_size": s.eval_batch_size,
        "learning_rate": s.learning_rate,
        "num_train_epochs": s.epochs,
        "warmup_steps": s.warmup_ratio,
        "weight_decay": 0.0,
        "bf16": s.precision == "bf16",
        "fp16": s.precision == "fp16",
        "eval_strategy": "no",
        "save_strategy": "no",
        "logging_steps": 100,
        "report_to": [],
        "dataloader_num_workers": s.dataloader_workers,
        "disable_tqdm": True,
        "seed": s.seed,
        "use_cpu": device == "cpu",
    }
    return TrainingArguments(out_dir, **{**kwargs, **extra})


def trainer_run(model: torch.nn.Module, tokenizer: Any, train: Any, val: Any, s: LoopSettings, device: str) -> dict:
    """One ``Trainer.train()``, timed; then an untimed ``evaluate()``."""
    from transformers import DataCollatorWithPadding, PrinterCallback, Trainer

    with tempfile.TemporaryDirectory() as out_dir:
        trainer = Trainer(
            model=model,
            args=trainer_args(out_dir, s, device),
            train_dataset=EncodedDataset(train),
            eval_dataset=EncodedDataset(val),
            data_collator=DataCollatorWithPadding(tokenizer),
            compute_metrics=accuracy,
        )
        trainer.remove_callback(PrinterCallback)  # its log lines would interleave with the report
        _reset_peak(device)
        sync(device)
        started = time.perf_counter()
        out = trainer.train()
        sync(device)
        train_s = time.perf_counter() - started
        peak = _peak_mb(device)
        scores = trainer.evaluate()
        optim = str(trainer.args.optim)
        del trainer
    return {
        "train_s": train_s,
        "samples": len(train) * s.epochs,
        "trainer_train_runtime_s": out.metrics.get("train_runtime"),
        "validation_accuracy": scores["eval_accuracy"],
        "peak_memory_mb": peak,
        "optimizer": optim,
    }


def autoft_run(model: torch.nn.Module, train: Any, val: Any, s: LoopSettings, device: str, pad_id: int) -> dict:
    """One ``autoft.training.train`` (evaluating once per epoch), timed without its evaluations."""
    from autoft.plugins import load_plugins
    from autoft.strategies import Phase
    from autoft.training import Hyperparams, TrainSettings
    from autoft.training import train as fit

    registry = load_plugins()
    hp = Hyperparams(
        learning_rate=s.learning_rate,
        epochs=s.epochs,
        batch_size=s.batch_size,
        weight_decay=0.0,
        warmup_ratio=s.warmup_ratio,
    )
    settings = TrainSettings(
        precision=s.precision, eval_batch_size=s.eval_batch_size, early_stopping_patience=0, device=device
    )
    phases = [Phase("full", [n for n, _ in model.named_parameters()], hp.learning_rate, hp.epochs)]
    _reset_peak(device)
    sync(device)
    started = time.perf_counter()
    result = fit(
        model,
        phases,
        train,
        val,
        hp=hp,
        settings=settings,
        objective=Objective("accuracy"),
        metrics={"accuracy": registry.metric("accuracy")},
        device=torch.device(device),
        pad_id=pad_id,
        seed=s.seed,
    )
    sync(device)
    wall = time.perf_counter() - started
    return {
        "train_s": wall - result.eval_seconds,
        "samples": result.samples,
        "loop_train_seconds": result.train_seconds,
        "loop_eval_seconds": result.eval_seconds,
        "validation_accuracy": result.history[-1]["accuracy"],
        "peak_memory_mb": _peak_mb(device),
    }


def measure(base: Any, tokenizer: Any, train: Any, val: Any, s: LoopSettings, device: str, repeats: int = 1) -> dict:
    """Both sides ``repeats`` times (alternating which goes first), after an untimed one-epoch warm-up of each."""
    pad_id = int(tokenizer.pad_token_id)

    def run(side: str, rows: Any, val_rows: Any, settings: LoopSettings) -> dict:
        model = base.fresh(settings.seed).to(device)
        try:
            if side == "trainer":
                return trainer_run(model, tokenizer, rows, val_rows, settings, device)
            return autoft_run(model, rows, val_rows, settings, device, pad_id)
        finally:
            del model
            _free(device)

    warm_train = train.subset(np.arange(min(len(train), 2 * s.batch_size)))
    warm_val = val.subset(np.arange(min(len(val), s.batch_size)))
    for side in ("trainer", "autoft"):
        run(side, warm_train, warm_val, dataclasses.replace(s, epochs=1))
    runs: dict[str, list[dict]] = {"trainer": [], "autoft": []}
    for r in range(repeats):
        for side in ("trainer", "autoft") if r % 2 == 0 else ("autoft", "trainer"):
            runs[side].append(run(side, train, val, s))
    return {side: summarize(side_runs, s.epochs) for side, side_runs in runs.items()}


def summarize(runs: list[dict], epochs: int) -> dict:
    """The median run's figures, and every run's training seconds."""
    times = [r["train_s"] for r in runs]
    median = statistics.median(times)
    chosen = min(runs, key=lambda r: abs(r["train_s"] - median))
    samples = chosen["samples"]
    return {
        **chosen,
        "train_s": median,
        "samples_per_s": samples / median,
        "epoch_s": median / epochs,
        "runs_train_s": times,
    }


def _reset_peak(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()


def _peak_mb(device: str) -> float | None:
    return torch.cuda.max_memory_allocated() / 2**20 if device.startswith("cuda") else None


def _free(device: str) -> None:
    gc.collect()
    if device.startswith("cuda"):
        torch.cuda.empty_cache()
