"""The training loop: one linear pass a reader can follow from top to bottom.

It knows nothing of Optuna or Ray. It trains the phases a strategy gives it
with AdamW (linear warmup, then linear decay), clips gradients, uses bf16
autocast on CUDA, evaluates on the validation split every epoch (or every N
steps) and at the rungs inside the first epoch (on a sample of it: ``autoft.rungs``),
reports each evaluation through a :class:`Reporter` (which may ask it to stop:
pruning, never at the last evaluation), stops early when the objective stalls, and
finally restores the weights of the best full evaluation by the study's objective
and direction, not the last.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from resource import RUSAGE_SELF, getrusage
from typing import NamedTuple, Protocol

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from . import anatomy, rungs
from .errors import TrialFailed
from .features import Encoded, device_batch, eval_batches, model_inputs, train_batches
from .metrics import Metric, Objective, compute
from .settings import Hyperparams, TrainSettings
from .strategies import Phase


class Reporter(Protocol):
    """How the loop tells the outside world how it is doing."""

    def progress(self, step: int, total: int, loss: float | None) -> None: ...

    def evaluated(self, index: int, epoch: float, metrics: dict[str, float], resource: int, final: bool) -> bool:
        """Record an evaluation; return True to stop the trial (pruned).

        ``resource`` is how far the trial has got in thousandths of a reported epoch (``autoft.rungs``);
        ``final`` marks the trial's last evaluation, whose answer is ignored: a trial that has done all
        its work is never pruned.
        """
        ...


class SilentReporter:
    def progress(self, step: int, total: int, loss: float | None) -> None:
        pass

    def evaluated(self, index: int, epoch: float, metrics: dict[str, float], resource: int, final: bool) -> bool:
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
    epochs_trained: float = 0.0  # at the last evaluation, over all phases
    epochs_planned: int = 0
    out_of_time: bool = False  # ended at the deadline before its planned work was done
    #: the whole validation split's probabilities from the weights the model ends with (None: none scored it)
    best_validation_proba: np.ndarray | None = None

    @property
    def samples_per_second(self) -> float:
        return self.samples / self.train_seconds if self.train_seconds > 0 else 0.0


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def attention_kernels(device: torch.device) -> contextlib.AbstractContextManager:
    """Within it, PyTorch's attention on a GPU runs without cuDNN's kernel (flash, memory-efficient, math).

    On Hopper and newer GPUs torch sends attention with a padding mask to cuDNN first, which builds an
    execution plan for every new (batch, width) shape, forward and backward, at a few hundred milliseconds
    each. autoft pads each batch to its own longest text, so most early batches are new shapes: on an H200
    the loop ran 4-16 times slower until its shapes had been seen (docs/performance.md). The other kernels
    need no plan. Elsewhere this changes nothing.
    """
    if device.type != "cuda":
        return contextlib.nullcontext()
    from torch.nn.attention import SDPBackend, sdpa_kernel

    return sdpa_kernel([SDPBackend.FLASH_ATTENTION, SDPBackend.EFFICIENT_ATTENTION, SDPBackend.MATH])


def autocast_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype for a precision setting (None: plain fp32)."""
    if precision == "auto":
        if device.type == "cuda" and torch.cuda.is_bf16_supported():
            return torch.bfloat16
        return None
    return {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}[precision]


def class_weight_tensor(spec, labels: np.ndarray, label_names: tuple[str, ...]) -> torch.Tensor | None:
    """Loss weights per class: none, balanced (n / (k * count)), or explicit by label name.

    Multi-label (``labels`` 0/1 rows): each label's weight of its positive rows (``pos_weight``),
    balanced as its negative rows over its positive ones.
    """
    if spec == "none":
        return None
    k = len(label_names)
    if np.ndim(labels) == 2 and spec == "balanced":
        positive = np.asarray(labels).sum(axis=0).astype(np.float64)
        return torch.tensor((len(labels) - positive) / np.maximum(positive, 1), dtype=torch.float32)
    if spec == "balanced":
        counts = np.bincount(labels, minlength=k).astype(np.float64)
        weights = len(labels) / (k * np.maximum(counts, 1))
        return torch.tensor(weights, dtype=torch.float32)
    weights = np.ones(k)
    for name, value in spec.items():
        weights[label_names.index(name)] = value
    return torch.tensor(weights, dtype=torch.float32)


#: logits, on the training device, for some rows (indices) of one split
Forward = Callable[[np.ndarray], torch.Tensor]


class Forwards(Protocol):
    """Where a phase's logits come from: by default the whole model on token ids (:func:`model_forward`).

    A phase whose body is frozen may instead apply the head to features computed once
    (``autoft.feature_cache``); the loop and the evaluation ask for the forward and need not know.
    """

    def __call__(self, phase: Phase, data: Encoded) -> Forward:
        """The forward of ``phase`` for rows of ``data`` (the training or the validation split)."""
        ...


def model_forward(model: nn.Module, data: Encoded, *, device: torch.device, pad_id: int) -> Forward:
    """The whole model on the rows' token ids, padded to the longest row of each batch."""

    def forward(rows: np.ndarray) -> torch.Tensor:
        batch = device_batch(data, rows, pad_id, device)
        return model(**model_inputs(batch)).logits

    return forward


def predict_proba(
    model: nn.Module,
    data: Encoded,
    *,
    batch_size: int,
    device: torch.device,
    pad_id: int,
    dtype: torch.dtype | None,
    forward: Forward | None = None,
    rows: np.ndarray | None = None,
    scale: TargetScale | None = None,
) -> np.ndarray:
    """Class probabilities for ``rows`` of ``data`` (default: all), in their order; batches run longest first.

    A regression model (one output) gives its predictions instead, as one column (``scale``: the
    standardisation its output is in while it trains). ``forward`` gives the logits (default:
    :func:`model_forward`). Every module's training mode comes back as it was (a frozen body stays
    in eval mode).
    """
    forward = forward or model_forward(model, data, device=device, pad_id=pad_id)
    rows = np.arange(len(data)) if rows is None else np.asarray(rows)
    modes = [(m, m.training) for m in model.modules()]
    model.eval()
    regression = model.config.num_labels == 1
    multi_label = model.config.problem_type == "multi_label_classification"
    out = np.zeros((len(rows), model.config.num_labels), dtype=np.float32)
    with (
        torch.inference_mode(),
        attention_kernels(device),
        torch.autocast(device.type, dtype=dtype or torch.float32, enabled=dtype is not None),
    ):
        for batch in eval_batches(data.lengths_of(rows), batch_size):
            logits = forward(rows[batch]).float()
            if regression:  # the number itself, in the targets' units
                out[batch] = (logits if scale is None else scale.unscale(logits)).cpu().numpy()
            elif multi_label:  # each label on its own
                out[batch] = torch.sigmoid(logits).cpu().numpy()
            else:
                out[batch] = torch.softmax(logits, dim=-1).cpu().numpy()
    for module, mode in modes:
        module.training = mode
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


def evaluate(
    model: nn.Module,
    validation: Encoded,
    metrics: dict[str, Metric],
    *,
    batch_size: int,
    device: torch.device,
    pad_id: int,
    dtype: torch.dtype | None,
    forward: Forward | None = None,
    rows: np.ndarray | None = None,
    scale: TargetScale | None = None,
) -> tuple[dict[str, float], float, np.ndarray]:
    """Every metric on the validation split (or on ``rows`` of it), the seconds it took, and the probabilities."""
    started = time.perf_counter()
    proba = predict_proba(
        model,
        validation,
        batch_size=batch_size,
        device=device,
        pad_id=pad_id,
        dtype=dtype,
        forward=forward,
        rows=rows,
        scale=scale,
    )
    labels = validation.labels if rows is None else validation.labels[rows]
    return compute(metrics, labels, proba), time.perf_counter() - started, proba


class BestWeights:
    """The weights of the best evaluation so far, by the study's objective."""

    def __init__(self, model: nn.Module, names: set[str], objective: Objective):
        self.params = {n: p for n, p in model.named_parameters() if n in names}
        self.objective = objective
        self.index, self.epoch, self.scores = -1, 0.0, {}
        self.proba: np.ndarray | None = None  # the validation split's probabilities at the best evaluation
        self.since_best = 0  # evaluations since the best: early stopping counts these
        self._value: float | None = None
        self._state: dict[str, torch.Tensor] | None = None

    def offer(self, index: int, epoch: float, scores: dict[str, float], proba: np.ndarray | None = None) -> bool:
        """Keep a copy of the weights (and ``proba``, what they predicted) when ``scores`` beat the best."""
        value = scores[self.objective.name]
        if not self.objective.better(value, self._value):
            self.since_best += 1
            return False
        self._value, self.since_best = value, 0
        self.index, self.epoch, self.scores, self.proba = index, epoch, scores, proba
        self._state = {n: p.detach().clone() for n, p in self.params.items()}
        return True

    def restore(self, model: nn.Module) -> None:
        """Copy the best weights back into ``model`` (nothing when no evaluation was offered)."""
        if self._state is None:
            return
        params = dict(model.named_parameters())
        with torch.no_grad():
            for name, tensor in self._state.items():
                params[name].copy_(tensor)


def train(
    model: nn.Module,
    phases: list[Phase],
    data: Encoded,
    validation: Encoded,
    *,
    hp: Hyperparams,
    settings: TrainSettings,
    objective: Objective,
    metrics: dict[str, Metric],
    device: torch.device,
    pad_id: int,
    seed: int,
    class_weights: torch.Tensor | None = None,
    reporter: Reporter | None = None,
    forwards: Forwards | None = None,
    deadline: float | None = None,
) -> TrainResult:
    """Train ``model`` through ``phases``; return the best evaluation, with the model holding its weights.

    ``forwards`` says where each phase's logits come from (default: the whole model on tokens).
    At ``deadline`` (``time.time()``: the study's budget) the trial evaluates once more and ends.
    """
    reporter = reporter or SilentReporter()
    if forwards is None:

        def forwards(phase: Phase, split: Encoded) -> Forward:
            return model_forward(model, split, device=device, pad_id=pad_id)

    dtype = autocast_dtype(settings.precision, device)
    scaler = torch.amp.GradScaler(device.type) if dtype == torch.float16 else None
    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)  # dropout
    weights = class_weights.to(device) if class_weights is not None else None
    regression = model.config.num_labels == 1
    multi_label = model.config.problem_type == "multi_label_classification"
    scale = TargetScale.of(data.labels) if regression and settings.scale_targets else None
    accum = min(settings.gradient_accumulation, hp.batch_size)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    model.to(device)
    model.train()

    tracked = {n for phase in phases for n in phase.params}
    best = BestWeights(model, tracked, objective)
    steps_per_epoch = math.ceil(len(data) / hp.batch_size)
    total_steps = sum(phase.epochs for phase in phases) * steps_per_epoch
    result = TrainResult(best_metrics={}, best_index=-1, best_epoch=0.0)
    result.epochs_planned = sum(phase.epochs for phase in phases)
    # multi-fidelity: early evaluations inside the first reported epoch, on a sample of validation
    early = rungs.first_epoch_rungs(steps_per_epoch, hp.batch_size, settings.rungs, settings.rung_min_samples)
    sample_rows = rungs.stratified_rows(validation.labels, settings.rung_validation_rows)
    rung_scores: dict[str, float] = {}
    rung_epoch = 0.0
    running_loss, running_count = torch.zeros((), device=device), 0
    step = 0
    reported_epochs = 0  # whole epochs of reported phases before this step's
    segment_start = time.perf_counter()
    with attention_kernels(device):
        for s in _steps(phases, data, hp, settings, rng):
            if s.first:  # a new phase: only its parameters train, with an optimizer of its own
                optimizer = None  # free the last phase's optimizer state before making the next
                phase_params = set(s.phase.params)
                for name, p in model.named_parameters():
                    p.requires_grad_(name in phase_params)
                anatomy.set_train_modes(model, phase_params)  # a frozen body runs in eval mode: no dropout inside it
                forward, validation_forward = forwards(s.phase, data), forwards(s.phase, validation)
                optimizer = _PhaseOptimizer(model, s.phase, hp, s.phase.epochs * steps_per_epoch, scaler, settings)

            for part in np.array_split(s.rows, min(accum, len(s.rows))):
                with torch.autocast(device.type, dtype=dtype or torch.float32, enabled=dtype is not None):
                    logits = forward(part)
                labels = torch.from_numpy(data.labels[part]).to(device)
                if regression:
                    loss = regression_loss(logits, labels, settings.regression_loss, scale)
                elif multi_label:
                    loss = F.binary_cross_entropy_with_logits(logits.float(), labels.float(), pos_weight=weights)
                else:
                    loss = F.cross_entropy(logits.float(), labels, weight=weights, label_smoothing=hp.label_smoothing)
                optimizer.backward(loss * (len(part) / len(s.rows)))
                running_loss += loss.detach() * len(part)
                running_count += len(part)
            optimizer.step()
            step += 1
            result.samples += len(s.rows)
            reporter.progress(step, total_steps, None)

            at_end = s.batch == s.batches
            on_schedule = bool(settings.eval_every) and step % settings.eval_every == 0
            rung = early.get(s.batch) if s.phase.reported and reported_epochs == 0 else None
            out_of_time = deadline is not None and time.time() >= deadline
            if not (at_end or on_schedule or out_of_time or rung is not None):
                continue
            fraction = 1.0 if at_end else s.batch / s.batches
            epoch = s.epoch + fraction
            full = at_end or on_schedule or out_of_time  # a rung alone scores the sample
            done = rungs.resource_of(reported_epochs + fraction) if full else rung
            train_loss = _check_loss(running_loss, running_count, step)
            running_loss.zero_()
            running_count = 0
            result.train_seconds += _elapsed(segment_start, device)
            scores, seconds, proba = evaluate(
                model,
                validation,
                metrics,
                rows=None if full else sample_rows,
                forward=validation_forward,
                batch_size=settings.eval_batch_size,
                device=device,
                pad_id=pad_id,
                dtype=dtype,
                scale=scale,
            )
            result.eval_seconds += seconds
            index = len(result.history)
            entry = {"index": index, "step": step, "epoch": round(epoch, 4), "train_loss": train_loss, **scores}
            if not full:
                entry["validation_rows"] = len(sample_rows)
            result.history.append(entry)
            result.epochs_trained = round(epoch, 4)
            if full:
                best.offer(index, round(epoch, 4), scores, proba)
            else:
                rung_scores, rung_epoch = scores, round(epoch, 4)
            final = step == total_steps or out_of_time
            if s.phase.reported and reporter.evaluated(index, epoch, scores, done, final) and not final:
                result.pruned = True
            elif full and settings.early_stopping_patience and best.since_best >= settings.early_stopping_patience:
                result.stopped_early = True
            result.out_of_time = out_of_time and step < total_steps
            if result.pruned or result.stopped_early or out_of_time:
                break
            if at_end and s.phase.reported:
                reported_epochs += 1
            segment_start = time.perf_counter()

    best.restore(model)
    if scale is not None:
        scale.fold_into(model)  # from here on the model predicts in the targets' units
    for name, p in model.named_parameters():
        p.requires_grad_(name in tracked)
    # a trial stopped at a rung before any full evaluation keeps the score it reached there
    if best.scores:
        result.best_metrics, result.best_index, result.best_epoch = best.scores, best.index, best.epoch
        result.best_validation_proba = best.proba
    else:
        result.best_metrics, result.best_epoch = rung_scores, rung_epoch
    result.peak_memory_mb = _peak_memory_mb(device)
    return result


@dataclass(frozen=True)
class TargetScale:
    """Regression targets standardised while a model trains: it learns ``(y - mean) / std``."""

    mean: float
    std: float

    @classmethod
    def of(cls, targets: np.ndarray) -> TargetScale:
        values = np.asarray(targets, dtype=np.float64)
        std = float(values.std())
        return cls(float(values.mean()), std if std > 0 else 1.0)

    def scale(self, targets: torch.Tensor) -> torch.Tensor:
        return (targets - self.mean) / self.std

    def unscale(self, outputs: torch.Tensor) -> torch.Tensor:
        return outputs * self.std + self.mean

    def fold_into(self, model: nn.Module) -> None:
        """Make the model's output layer give unscaled predictions: weight × std, bias × std + mean.

        Every one-output linear layer is changed: the head's, and under LoRA also the copy peft keeps
        of the original head (unused, but saved with the adapter).
        """
        with torch.no_grad():
            for module in model.modules():
                if isinstance(module, nn.Linear) and module.out_features == 1:
                    module.weight.mul_(self.std)
                    if module.bias is not None:
                        module.bias.mul_(self.std).add_(self.mean)


def regression_loss(outputs: torch.Tensor, targets: torch.Tensor, kind: str, scale: TargetScale | None):
    """Squared error (or Huber's, delta 1) between the one-column outputs and the (standardised) targets."""
    targets = targets.float() if scale is None else scale.scale(targets.float())
    predicted = outputs.float().squeeze(-1)
    return F.huber_loss(predicted, targets) if kind == "huber" else F.mse_loss(predicted, targets)


class _Step(NamedTuple):
    """One optimizer step: its phase, where it falls in the training, and the rows of its batch."""

    phase: Phase
    first: bool  # the phase's first step
    epoch: int  # whole epochs trained before this step's, over all phases
    batch: int  # this batch's number in its epoch, from 1
    batches: int  # batches in the epoch
    rows: np.ndarray


def _steps(
    phases: list[Phase], data: Encoded, hp: Hyperparams, settings: TrainSettings, rng: np.random.Generator
) -> Iterator[_Step]:
    """Every optimizer step, phase by phase and epoch by epoch; each epoch's batches are drawn as it starts."""
    epochs_done = 0
    for phase in phases:
        for epoch in range(epochs_done, epochs_done + phase.epochs):
            batches = train_batches(data.lengths, hp.batch_size, rng, settings.group_by_length)
            for i, rows in enumerate(batches):
                yield _Step(phase, epoch == epochs_done and i == 0, epoch, i + 1, len(batches), rows)
        epochs_done += phase.epochs


class _PhaseOptimizer:
    """One phase's fused AdamW with its linear schedule, fp16 gradient scaling and clipping."""

    def __init__(
        self,
        model: nn.Module,
        phase: Phase,
        hp: Hyperparams,
        steps: int,
        scaler: torch.amp.GradScaler | None,
        settings: TrainSettings,
    ):
        params = dict(model.named_parameters())
        self.trainable = [params[n] for n in phase.params]
        self.optimizer = torch.optim.AdamW(
            param_groups(model, phase.params, hp, phase.learning_rate),
            lr=phase.learning_rate,
            fused=True,  # one kernel for all parameters, on CUDA and on the CPU
        )
        schedule = _linear_schedule(int(hp.warmup_ratio * steps), steps)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, schedule)
        self.scaler = scaler
        self.max_grad_norm = settings.max_grad_norm

    def backward(self, loss: torch.Tensor) -> None:
        (self.scaler.scale(loss) if self.scaler else loss).backward()

    def step(self) -> None:
        """Clip, step the weights and the schedule, and clear the gradients."""
        if self.scaler:
            self.scaler.unscale_(self.optimizer)
        if self.max_grad_norm > 0:
            torch.nn.utils.clip_grad_norm_(self.trainable, self.max_grad_norm)
        if self.scaler:
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)


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
    return getrusage(RUSAGE_SELF).ru_maxrss / 1024
