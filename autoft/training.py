"""The training loop: one linear pass a reader can follow from top to bottom.

It knows nothing of Optuna or Ray. It trains the phases a strategy gives it
with AdamW (linear warmup, then linear decay), clips gradients, uses bf16
autocast on CUDA, evaluates on the validation split every epoch (or every N
steps), reports each evaluation through a :class:`Reporter` (which may ask it to
stop: pruning), stops early when the objective stalls, and finally restores the
weights of the best evaluation, not the last.
"""

from __future__ import annotations

import math
import resource
import time
from dataclasses import dataclass, field
from typing import Literal, Protocol

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from . import anatomy
from .errors import TrialFailed
from .features import Encoded, eval_batches, to_device, train_batches
from .heads import HeadSpec
from .metrics import Metric, better, compute
from .options import option
from .strategies import Phase


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


class Reporter(Protocol):
    """How the loop tells the outside world how it is doing."""

    def progress(self, step: int, total: int, loss: float | None) -> None: ...

    def evaluated(self, index: int, epoch: float, metrics: dict[str, float]) -> bool:
        """Record an evaluation; return True to stop the trial (pruned)."""
        ...


class SilentReporter:
    def progress(self, step: int, total: int, loss: float | None) -> None:
        pass

    def evaluated(self, index: int, epoch: float, metrics: dict[str, float]) -> bool:
        return False


@dataclass
class TrainResult:
    best_metrics: dict[str, float]
    best_index: int
    best_epoch: float
    history: list[dict] = field(default_factory=list)
    pruned: bool = False
    stopped_early: bool = False
    train_seconds: float = 0.0
    eval_seconds: float = 0.0
    samples: int = 0
    peak_memory_mb: float = 0.0

    @property
    def samples_per_second(self) -> float:
        return self.samples / self.train_seconds if self.train_seconds > 0 else 0.0


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def autocast_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype for a precision setting (None: plain fp32)."""
    if precision == "auto":
        if device.type == "cuda" and torch.cuda.is_bf16_supported():
            return torch.bfloat16
        return None
    return {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}[precision]


def class_weight_tensor(spec, labels: np.ndarray, label_names: tuple[str, ...]) -> torch.Tensor | None:
    """Loss weights per class: none, balanced (n / (k * count)), or explicit by label name."""
    if spec == "none":
        return None
    k = len(label_names)
    if spec == "balanced":
        counts = np.bincount(labels, minlength=k).astype(np.float64)
        weights = len(labels) / (k * np.maximum(counts, 1))
        return torch.tensor(weights, dtype=torch.float32)
    weights = np.ones(k)
    for name, value in spec.items():
        weights[label_names.index(name)] = value
    return torch.tensor(weights, dtype=torch.float32)


def predict_proba(
    model: nn.Module, data: Encoded, *, batch_size: int, device: torch.device, pad_id: int, dtype: torch.dtype | None
) -> np.ndarray:
    """Class probabilities for every row, in the data's order (batches run longest first)."""
    was_training = model.training
    model.eval()
    out = np.zeros((len(data), model.config.num_labels), dtype=np.float32)
    with torch.inference_mode(), torch.autocast(device.type, dtype=dtype or torch.float32, enabled=dtype is not None):
        for rows in eval_batches(data.lengths, batch_size):
            batch = to_device(data.batch(rows, pad_id), device)
            logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
            out[rows] = torch.softmax(logits.float(), dim=-1).cpu().numpy()
    model.train(was_training)
    return out


def param_groups(model: nn.Module, names: list[str], hp: Hyperparams, learning_rate: float) -> list[dict]:
    """AdamW groups: no weight decay on biases and norms; layer-wise decay of the learning rate."""
    params = dict(model.named_parameters())
    depths = anatomy.layer_depth(model) if hp.layer_decay < 1.0 else {}
    top = max(depths.values(), default=0)
    groups: dict[tuple[float, float], list] = {}
    for name in names:
        p = params[name]
        decay = 0.0 if p.dim() < 2 else hp.weight_decay
        lr = learning_rate * hp.layer_decay ** (top - depths.get(name, top))
        groups.setdefault((decay, lr), []).append(p)
    return [{"params": ps, "weight_decay": d, "lr": lr} for (d, lr), ps in groups.items()]


def train(
    model: nn.Module,
    phases: list[Phase],
    data: Encoded,
    validation: Encoded,
    *,
    hp: Hyperparams,
    settings: TrainSettings,
    objective: Metric,
    metrics: dict[str, Metric],
    device: torch.device,
    pad_id: int,
    seed: int,
    class_weights: torch.Tensor | None = None,
    reporter: Reporter | None = None,
) -> TrainResult:
    """Train ``model`` through ``phases``; return the best evaluation, with the model holding its weights."""
    reporter = reporter or SilentReporter()
    dtype = autocast_dtype(settings.precision, device)
    scaler = torch.amp.GradScaler(device.type) if dtype == torch.float16 else None
    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)  # dropout
    weights = class_weights.to(device) if class_weights is not None else None
    accum = min(settings.gradient_accumulation, hp.batch_size)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    model.to(device)
    model.train()

    params = dict(model.named_parameters())
    tracked = {n for phase in phases for n in phase.params}
    steps_per_epoch = math.ceil(len(data) / hp.batch_size)
    total_steps = sum(phase.epochs for phase in phases) * steps_per_epoch
    result = TrainResult(best_metrics={}, best_index=-1, best_epoch=0.0)
    best_state: dict[str, torch.Tensor] | None = None
    best_value: float | None = None
    since_best = 0
    step = 0
    evaluations = 0
    running_loss = torch.zeros((), device=device)
    running_count = 0
    segment_start = time.perf_counter()

    def evaluate(epoch: float, report: bool) -> bool:
        """Evaluate, keep the best weights, report; True when training should stop."""
        nonlocal best_state, best_value, since_best, evaluations, segment_start, running_count
        loss = _check_loss(running_loss, running_count, step)
        running_loss.zero_()
        running_count = 0
        result.train_seconds += _elapsed(segment_start, device)
        started = time.perf_counter()
        proba = predict_proba(
            model, validation, batch_size=settings.eval_batch_size, device=device, pad_id=pad_id, dtype=dtype
        )
        scores = compute(metrics, validation.labels, proba)
        result.eval_seconds += time.perf_counter() - started
        index = evaluations
        evaluations += 1
        result.history.append({"index": index, "step": step, "epoch": round(epoch, 4), "train_loss": loss, **scores})
        value = scores[objective.name]
        if better(objective, value, best_value):
            best_value, since_best = value, 0
            best_state = {n: params[n].detach().clone() for n in tracked}
            result.best_metrics, result.best_index, result.best_epoch = scores, index, round(epoch, 4)
        else:
            since_best += 1
        stop = False
        if report and reporter.evaluated(index, epoch, scores):
            result.pruned = stop = True
        elif settings.early_stopping_patience and since_best >= settings.early_stopping_patience:
            result.stopped_early = stop = True
        segment_start = time.perf_counter()
        return stop

    stop = False
    epochs_done = 0
    for phase in phases:
        phase_params = set(phase.params)
        for name, p in params.items():
            p.requires_grad_(name in phase_params)
        optimizer = torch.optim.AdamW(
            param_groups(model, phase.params, hp, phase.learning_rate),
            lr=phase.learning_rate,
            fused=True,  # one kernel for all parameters, on CUDA and on the CPU
        )
        phase_steps = phase.epochs * steps_per_epoch
        warmup = int(hp.warmup_ratio * phase_steps)
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, _linear_schedule(warmup, phase_steps))
        trainable = [params[n] for n in phase.params]
        for epoch in range(phase.epochs):
            batches = train_batches(data.lengths, hp.batch_size, rng, settings.group_by_length)
            for i, rows in enumerate(batches):
                micro = np.array_split(rows, min(accum, len(rows)))
                for part in micro:
                    batch = to_device(data.batch(part, pad_id), device)
                    with torch.autocast(device.type, dtype=dtype or torch.float32, enabled=dtype is not None):
                        logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
                    loss = F.cross_entropy(
                        logits.float(), batch["labels"], weight=weights, label_smoothing=hp.label_smoothing
                    )
                    scaled = loss * (len(part) / len(rows))
                    (scaler.scale(scaled) if scaler else scaled).backward()
                    running_loss += loss.detach() * len(part)
                    running_count += len(part)
                if scaler:
                    scaler.unscale_(optimizer)
                if settings.max_grad_norm > 0:
                    torch.nn.utils.clip_grad_norm_(trainable, settings.max_grad_norm)
                if scaler:
                    scaler.step(optimizer)
                    scaler.update()
                else:
                    optimizer.step()
                scheduler.step()
                optimizer.zero_grad(set_to_none=True)
                step += 1
                result.samples += len(rows)
                reporter.progress(step, total_steps, None)
                if settings.eval_every and step % settings.eval_every == 0:
                    if evaluate(epochs_done + epoch + (i + 1) / len(batches), phase.reported):
                        stop = True
                        break
            if stop:
                break
            if not settings.eval_every or step % settings.eval_every:
                if evaluate(epochs_done + epoch + 1, phase.reported):
                    stop = True
                    break
        epochs_done += phase.epochs
        del optimizer, scheduler
        if stop:
            break

    if best_state is not None:
        with torch.no_grad():
            for name, tensor in best_state.items():
                params[name].copy_(tensor)
    for name, p in params.items():
        p.requires_grad_(name in tracked)
    result.peak_memory_mb = _peak_memory_mb(device)
    return result


def _linear_schedule(warmup: int, total: int):
    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / (warmup + 1)
        return max(0.0, (total - step) / max(1, total - warmup))

    return factor


def _check_loss(running: torch.Tensor, count: int, step: int) -> float | None:
    if not count:
        return None
    loss = float(running.item()) / count
    if not math.isfinite(loss):
        raise TrialFailed(f"training loss became {loss} by step {step}; try a lower learning rate")
    return round(loss, 6)


def _elapsed(start: float, device: torch.device) -> float:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter() - start


def _peak_memory_mb(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
