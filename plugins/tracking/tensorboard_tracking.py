"""TensorBoard tracking (``[tracking] tensorboard = true``): a folder of event files per trial.

``<tensorboard_dir>/trial-<n>`` (default ``<run folder>/tensorboard``) holds, at each evaluation's
optimizer step, ``train/loss``, ``epoch`` and ``validation/<metric>``; once, the trial's best
validation scores and cost; its strategy and sampled parameters as hparams (the HParams tab
compares trials); and a text ``trial`` with its state and reason. When the study ends,
``<tensorboard_dir>/best`` holds the best trial's ``test/<metric>`` and ``best_validation/<metric>``.
``tensorboard --logdir runs/<study>/tensorboard`` shows them.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from autoft import hookimpl
from autoft_plugins.tracking import (
    best_summary,
    evaluation_scalars,
    guarded,
    tensorboard_dir,
    trial_params,
    trial_summary,
)


@hookimpl
def trial_finished(study_name, record, history, config):
    if config is None or not config.tracking.tensorboard or record is None:
        return
    root = tensorboard_dir(config)
    folder = root / f"trial-{record['trial']}"
    guarded("TensorBoard", str(root), f"trial {record['trial']}", lambda: write_trial(folder, record, history))


@hookimpl
def study_finished(study_name, run_dir, best, config):
    if config is None or not config.tracking.tensorboard or best is None:
        return
    root = tensorboard_dir(config)
    guarded("TensorBoard", str(root), "the best model", lambda: write_best(root / "best", best))


def write_trial(folder: Path, record: dict, history: list[dict]) -> None:
    from torch.utils.tensorboard import SummaryWriter
    from torch.utils.tensorboard.summary import hparams

    params = trial_params(record)
    summary = trial_summary(record)
    with SummaryWriter(log_dir=str(folder)) as writer:
        for entry in history:
            for tag, value in evaluation_scalars(entry).items():
                writer.add_scalar(tag, value, int(entry["step"]))
        last_step = int(history[-1]["step"]) if history else 0
        for tag, value in summary.items():
            writer.add_scalar(tag, value, last_step)
        reason = f" ({record['reason']})" if record.get("reason") else ""
        items = "\n".join(f"- {k}: {v}" for k, v in params.items())
        writer.add_text("trial", f"**trial {record['trial']}**: {record['state']}{reason}\n\n{items}")
        shown = {k: v for k, v in summary.items() if k.startswith("best_validation/")}
        for event in hparams({k: _hparam(v) for k, v in params.items()}, shown):
            writer.file_writer.add_summary(event)


def write_best(folder: Path, best: dict) -> None:
    from torch.utils.tensorboard import SummaryWriter

    shutil.rmtree(folder, ignore_errors=True)  # a resumed study's best replaces the earlier one
    with SummaryWriter(log_dir=str(folder)) as writer:
        for tag, value in best_summary(best).items():
            writer.add_scalar(tag, value, 0)
        writer.add_text("best", f"best trial {best['trial']} (objective {best.get('objective', '')})")


def _hparam(value: Any) -> bool | int | float | str:
    return value if isinstance(value, (bool, int, float, str)) else str(value)
