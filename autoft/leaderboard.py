"""The leaderboard: every trial of a study, best first, as CSV, Markdown and JSON.

It is built from the study storage (the one source of truth), so it is the same
whichever process or backend ran the trials, and it is rewritten atomically
after every trial. Complete and pruned trials are ranked together by the score
they reached (a pruned trial's best evaluation before it was stopped), and each
row says how far the trial got: epochs trained of those planned.
"""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .fsutil import write_json, write_text

if TYPE_CHECKING:
    from .metrics import Objective

STATE_ORDER = {"complete": 0, "pruned": 1, "running": 2, "failed": 3, "waiting": 4}
#: states ranked by their score: a pruned trial is ranked by the score it reached before it was stopped
RANKED = ("complete", "pruned")


def rows_from_trials(trials: list[Any], objective: Objective) -> list[dict]:
    """Leaderboard rows (dicts) from Optuna FrozenTrials, best first."""
    name = objective.name
    rows = []
    for t in trials:
        attrs = t.user_attrs
        state = t.state.name.lower()
        state = {"fail": "failed"}.get(state, state)
        value = t.value if t.values else (attrs.get("metrics") or {}).get(name)
        params = {k: v for k, v in t.params.items() if k not in ("strategy", "model")}
        config = attrs.get("config") or {}
        duration = (
            (t.datetime_complete - t.datetime_start).total_seconds()
            if t.datetime_complete and t.datetime_start
            else None
        )
        rows.append(
            {
                "trial": t.number,
                "state": state,
                name: _num(value),
                "strategy": attrs.get("strategy") or config.get("strategy") or t.params.get("strategy", ""),
                "model": config.get("model") or t.params.get("model", ""),  # "" unless the study searches models
                "params": params,
                "trainable_params": attrs.get("trainable_params"),
                "trainable_share": attrs.get("trainable_share"),
                "best_epoch": attrs.get("best_epoch"),
                "epochs_trained": attrs.get("epochs_trained"),
                "epochs_planned": attrs.get("epochs_planned"),
                "train_seconds": attrs.get("train_seconds"),
                "samples_per_second": attrs.get("samples_per_second"),
                "peak_memory_mb": attrs.get("peak_memory_mb"),
                "duration_seconds": round(duration, 2) if duration is not None else None,
                "validation": attrs.get("metrics") or {},
                "reason": attrs.get("reason", ""),
            }
        )

    def ranked(row: dict) -> bool:
        return row["state"] in RANKED and row[name] is not None

    def key(row: dict) -> tuple:
        if not ranked(row):
            return (1, STATE_ORDER.get(row["state"], 9), row["trial"])
        # by score; at the same score complete before pruned, and the pruned trial that got further first
        further = -(row["epochs_trained"] or 0) if row["state"] == "pruned" else 0
        return (0, *objective.rank_key(row[name]), STATE_ORDER[row["state"]], further, row["trial"])

    rows.sort(key=key)
    for rank, row in enumerate(rows, 1):
        row["rank"] = rank if ranked(row) else None
    return rows


def _num(value: Any) -> float | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return float(value)


def write(run_dir: Path, rows: list[dict], objective: str) -> None:
    """leaderboard.csv, .md and .json in the run folder, each replaced atomically."""
    run_dir = Path(run_dir)
    write_json(run_dir / "leaderboard.json", {"objective": objective, "trials": rows})
    write_text(run_dir / "leaderboard.csv", to_csv(rows, objective))
    write_text(run_dir / "leaderboard.md", to_markdown(rows, objective))


_NUMBER = (int, float, type(None))
#: what each leaderboard row holds, as written by :func:`rows_from_trials` (the objective's value: a number)
ROW_TYPES = {
    "rank": (int, type(None)),
    "trial": (int,),
    "state": (str,),
    "strategy": (str,),
    "params": (dict,),
    "trainable_params": _NUMBER,
    "trainable_share": _NUMBER,
    "best_epoch": _NUMBER,
    "train_seconds": _NUMBER,
    "samples_per_second": _NUMBER,
    "peak_memory_mb": _NUMBER,
    "reason": (str,),
}


def read(run_dir: Path) -> tuple[str, list[dict]]:
    """The objective and rows of a run folder's leaderboard.json; a damaged file is a one-line error naming it."""
    from .saved import DamagedFile, read_json

    path = Path(run_dir) / "leaderboard.json"
    fix = "run the study again (autoft study run <study file>) to rewrite it from the study's storage"
    data = read_json(path, fix)
    objective, trials = data.get("objective"), data.get("trials")
    if not isinstance(objective, str) or not objective:
        raise DamagedFile(path, "no objective name", fix)
    if not isinstance(trials, list):
        raise DamagedFile(path, "no list of trials", fix)
    for number, row in enumerate(trials, 1):
        if not isinstance(row, dict):
            raise DamagedFile(path, f"entry {number} of trials is not an object", fix)
        for key, types in {**ROW_TYPES, objective: _NUMBER}.items():
            if key not in row:
                raise DamagedFile(path, f"entry {number} of trials has no '{key}'", fix)
            value = row[key]
            if not isinstance(value, types) or (isinstance(value, bool) and bool not in types):
                raise DamagedFile(path, f"entry {number} of trials: '{key}' is {value!r}", fix)
    return objective, trials


#: the per-trial columns of leaderboard.csv after the parameters and validation metrics
CSV_TAIL = (
    "trainable_params",
    "trainable_share",
    "best_epoch",
    "epochs_trained",
    "epochs_planned",
    "train_seconds",
    "samples_per_second",
    "peak_memory_mb",
    "duration_seconds",
    "reason",
)


def searched_models(rows: list[dict]) -> bool:
    """Whether the trials ran on several models (the leaderboard then has a model column)."""
    return any(r.get("model") for r in rows)


def to_csv(rows: list[dict], objective: str) -> str:
    param_names = sorted({k for r in rows for k in r["params"]})
    metric_names = sorted({k for r in rows for k in r["validation"]})
    head = ("rank", "trial", "state", objective, *(("model",) if searched_models(rows) else ()), "strategy")
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow([*head, *[f"param:{p}" for p in param_names], *[f"val_{m}" for m in metric_names], *CSV_TAIL])
    for r in rows:
        w.writerow(
            [
                *[r[k] for k in head],
                *[r["params"].get(p, "") for p in param_names],
                *[r["validation"].get(m, "") for m in metric_names],
                *[r.get(k) for k in CSV_TAIL],
            ]
        )
    return buf.getvalue()


def table_rows(rows: list[dict], objective: str) -> tuple[list[str], list[list[str]]]:
    """Header and text cells for people (Markdown and the terminal)."""
    header = [
        "rank",
        "trial",
        "state",
        objective,
        "strategy",
        "parameters",
        "trainable",
        "trained",
        "best epoch",
        "train s",
        "samples/s",
        "peak MB",
        "note",
    ]
    cells = []
    for r in rows:
        cells.append(
            [
                str(r["rank"] or "-"),
                str(r["trial"]),
                r["state"],
                fmt(r[objective]),
                r["strategy"],
                ", ".join(f"{k}={fmt(v)}" for k, v in sorted(r["params"].items())),
                trainable(r["trainable_params"], r["trainable_share"]),
                trained(r),
                fmt(r["best_epoch"]),
                fmt(r["train_seconds"], 1),
                fmt(r["samples_per_second"], 1),
                fmt(r["peak_memory_mb"], 0),
                r["reason"],
            ]
        )
    return with_model_column(rows, header, cells)


def with_model_column(rows: list[dict], header: list[str], cells: list[list[str]]) -> tuple[list[str], list[list[str]]]:
    """The model column after the objective's, when the trials ran on several models."""
    if not searched_models(rows):
        return header, cells
    at = header.index("strategy")
    return header[:at] + ["model"] + header[at:], [c[:at] + [r.get("model", "")] + c[at:] for r, c in zip(rows, cells)]


SHORT = {
    "learning_rate": "lr",
    "batch_size": "bs",
    "epochs": "ep",
    "weight_decay": "wd",
    "warmup_ratio": "warmup",
    "class_weights": "cw",
    "label_smoothing": "ls",
    "layer_decay": "lld",
}


def short_params(params: dict) -> str:
    """Compact parameters for a terminal: short names, no strategy prefix, 3 significant digits."""
    out = []
    for key, value in sorted(params.items(), key=lambda kv: kv[0].split(".")[-1]):
        name = key.split(".", 1)[-1]
        value = f"{value:.3g}" if isinstance(value, float) else value
        out.append(f"{SHORT.get(name, name)}={value}")
    return " ".join(out)


def compact_rows(rows: list[dict], objective: str) -> tuple[list[str], list[list[str]]]:
    """The columns that fit a terminal."""
    header = ["#", "trial", "state", objective, "strategy", "parameters", "trained", "trainable", "samples/s", "note"]
    cells = [
        [
            str(r["rank"] or "-"),
            str(r["trial"]),
            r["state"],
            fmt(r[objective]),
            r["strategy"],
            short_params(r["params"]),
            trained(r),
            f"{r['trainable_share']:.1%}" if r["trainable_share"] else "-",
            fmt(r["samples_per_second"], 0),
            r["reason"],
        ]
        for r in rows
    ]
    return with_model_column(rows, header, cells)


def to_markdown(rows: list[dict], objective: str) -> str:
    header, cells = table_rows(rows, objective)
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in cells:
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in row) + " |")
    return "\n".join(lines) + "\n"


def fmt(value: Any, digits: int = 4) -> str:
    if value is None or value == "":
        return "-"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        if value != 0 and (abs(value) < 1e-3 or abs(value) >= 1e6):
            return f"{value:.3g}"
        return f"{value:.{digits}f}".rstrip("0").rstrip(".") if digits else f"{value:.0f}"
    return str(value)


def trained(row: dict) -> str:
    """How far a trial got: epochs trained of those planned ("0.125/3 ep"); "-" for rows written before."""
    done, planned = row.get("epochs_trained"), row.get("epochs_planned")
    if not planned:
        return "-"
    return f"{fmt(float(done or 0), 3)}/{planned} ep"


def trainable(count: int | None, share: float | None) -> str:
    if not count:
        return "-"
    size = f"{count / 1e6:.2f}M" if count >= 1e5 else f"{count / 1e3:.1f}k"
    return f"{size} ({share:.1%})" if share is not None else size
