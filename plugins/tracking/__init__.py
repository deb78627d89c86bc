"""Experiment tracking: built-in observer plugins that send a study to MLflow or TensorBoard.

They implement only the event hooks (``trial_finished``, ``study_finished``) and do nothing
unless the study's ``[tracking]`` table switches them on. Their packages are optional
extras (``pip install 'autoft[mlflow]'``, ``'autoft[tensorboard]'``), imported only when
a study uses them; :mod:`autoft.config` checks they are installed before anything runs.

A tracker that fails (a server down, a full disk) never stops the study: it prints one
warning line and is switched off for the rest of the run, so a dead server costs one
timeout, not one per trial.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path
from typing import Any

from autoft.errors import type_and_first_line
from autoft.leaderboard import CSV_TAIL

#: trackers that failed in this process, by (tracker, destination): they stay off
_broken: set[tuple[str, str]] = set()


def guarded(tracker: str, destination: str, what: str, action) -> None:
    """Run ``action()``; on failure warn with one line and switch the tracker off for ``destination``."""
    key = (tracker, destination)
    if key in _broken:
        return
    try:
        action()
    except Exception as exc:
        _broken.add(key)
        print(
            f"warning: {tracker} tracking failed ({what}: {type_and_first_line(exc, 200)}); "
            f"no more {tracker} tracking in this run, the study goes on",
            file=sys.stderr,
        )


def mlflow_uri(config: Any) -> str:
    """The study's MLflow tracking URI: ``[tracking] mlflow_tracking_uri``, or SQLite in the run folder."""
    return config.tracking.mlflow_tracking_uri or f"sqlite:///{(config.run_dir / 'mlflow.db').resolve()}"


def tensorboard_dir(config: Any) -> Path:
    """The study's TensorBoard folder: ``[tracking] tensorboard_dir`` (relative to the study file) or the default."""
    given = config.tracking.tensorboard_dir
    if not given:
        return config.run_dir / "tensorboard"
    path = Path(given).expanduser()
    return path if path.is_absolute() else config.base_dir / path


def trial_params(record: dict) -> dict[str, Any]:
    """A trial's strategy and sampled parameters (``lora.r`` style names for a strategy's own)."""
    return {"strategy": record.get("strategy", ""), **(record.get("params") or {})}


def scalars(values: dict) -> dict[str, float]:
    """The real numbers of a dict (booleans, text, None and NaN left out)."""
    return {
        k: float(v)
        for k, v in values.items()
        if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
    }


def evaluation_scalars(entry: dict) -> dict[str, float]:
    """One history entry as tracker metrics: ``train/loss``, ``epoch`` and ``validation/<metric>``."""
    out = {}
    for key, value in scalars(entry).items():
        if key in ("index", "step"):
            continue
        if key == "train_loss":
            out["train/loss"] = value
        elif key == "epoch":
            out["epoch"] = value
        else:
            out[f"validation/{key}"] = value
    return out


#: leaderboard-row numbers a tracker records once per trial (the leaderboard's per-trial columns but the reason)
TRIAL_NUMBERS = tuple(c for c in CSV_TAIL if c != "reason")


def trial_summary(record: dict) -> dict[str, float]:
    """A trial's once-only numbers: its best validation scores and its cost."""
    out = {f"best_validation/{k}": v for k, v in scalars(record.get("validation") or {}).items()}
    out.update(scalars({k: record.get(k) for k in TRIAL_NUMBERS}))
    return out


def best_summary(best: dict) -> dict[str, float]:
    """The best trial's test and validation scores, and the majority-class baseline, as metrics."""
    out = {f"test/{k}": v for k, v in scalars(best.get("test") or {}).items()}
    out.update({f"best_validation/{k}": v for k, v in scalars(best.get("validation") or {}).items()})
    baseline = (best.get("majority_baseline") or {}).get("accuracy")
    out.update(
        {f"test/{k}": v for k, v in scalars({"majority_accuracy": baseline, "rows": best.get("test_rows")}).items()}
    )
    return out
