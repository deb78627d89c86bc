"""What a finished trial reports back: plain data (it crosses process boundaries), without torch."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field


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
    epochs_trained: float = 0.0  # how far it got: epochs at its last evaluation (all phases)
    epochs_planned: int = 0
    waited_seconds: float = 0.0  # at rungs for the rest of its bracket (``pruner = "sha"``), set by the study

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
