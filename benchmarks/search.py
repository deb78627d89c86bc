"""The search, side by side: ``Trainer.hyperparameter_search`` and an autoft study, each a fresh process.

Both read the same train and validation parquet files, search the same space (by default learning rate log
1e-5..2e-4, epochs 1-3, batch size 16/32/64; the search presets use epochs 1-4, batch size 16/32) for the same
number of trials, maximising validation accuracy, with the same precision, no warmup and no weight decay. The
wall time of each process is the search's time: Python and library imports, tokenization, model loading,
every trial, and (autoft) scoring and saving the best model. Each trial's end is recorded in seconds since
its process was launched, for the best-so-far plot.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from tomli_w import dumps

from .common import run_timed

#: the default mode's space (autoft's [space] forms; hf_search.hp_space maps them to the Trainer's arguments)
SPACE = {
    "learning_rate": {"low": 1e-5, "high": 2e-4, "log": True},
    "epochs": {"low": 1, "high": 3},
    "batch_size": [16, 32, 64],
}

#: the search presets' space (finpb-cpu, imdb-cpu)
PRESET_SPACE = {
    "learning_rate": {"low": 1e-5, "high": 2e-4, "log": True},
    "epochs": {"low": 1, "high": 4},
    "batch_size": [16, 32],
}


@dataclass(frozen=True)
class SearchSettings:
    model: str  # as autoft's [model] name takes it
    model_path: str  # the resolved local folder or hub id, for the Trainer
    max_length: int
    trials: int
    precision: str
    device: str
    dataloader_workers: int = 0
    seed: int = 0  # the study's seed; the Trainer's TPE and training seed
    space: dict = field(default_factory=lambda: dict(SPACE))
    trials_per_gpu: int = 1  # autoft's [search] trials_per_gpu
    cpu_trials: int | None = None  # autoft's [search] cpu_trials (trials at once without a GPU); None: its default
    isolation: str | None = None  # autoft's [search] isolation ("auto", "process", "worker", "none"); None: its default
    #: True: autoft searches with its own defaults (sampler, pruner, early stopping, evaluation schedule),
    #: the study file setting only what parity needs; False (the default mode): pinned to TPE, the median
    #: pruner, no early stopping, as the Trainer side
    autoft_defaults: bool = False


def trainer_search(workdir: Path, files: dict[str, Path], s: SearchSettings) -> dict:
    """``python -m benchmarks.hf_search`` on the files, timed from outside."""
    spec = {
        "train": str(files["train"]),
        "validation": str(files["validation"]),
        "model_path": s.model_path,
        "max_length": s.max_length,
        "trials": s.trials,
        "precision": s.precision,
        "device": s.device,
        "dataloader_workers": s.dataloader_workers,
        "seed": s.seed,
        "space": s.space,
        "output_dir": str(workdir / "trainer-out"),
    }
    (workdir / "hf_spec.json").write_text(json.dumps(spec))
    out = workdir / "hf_result.json"
    cmd = [sys.executable, "-m", "benchmarks.hf_search", str(workdir / "hf_spec.json"), str(out)]
    launched = datetime.now()  # the clock Optuna stamps trials with
    wall = run_timed(cmd, workdir / "trainer.log")
    result = json.loads(out.read_text())
    for t in result["trials"]:
        done = t.pop("datetime_complete", None)
        t["ended_s"] = (datetime.fromisoformat(done) - launched).total_seconds() if done else None
    return {"wall_s": wall, **result, "setup_s_per_trial": _mean(t["setup_s"] for t in result["trials"])}


def study_tables(files: dict[str, Path], output_dir: Path, s: SearchSettings) -> dict:
    """The autoft study: the same space, budget and fixed settings as the Trainer side.

    With ``s.autoft_defaults`` the file sets only what parity needs (trials, objective, space, no warmup or
    weight decay as the Trainer's defaults, precision, device, seed): sampler, pruner, early stopping and
    evaluation schedule are autoft's own defaults.
    """
    search = {"n_trials": s.trials, "objective": "accuracy"}
    if s.trials_per_gpu != 1:
        search["trials_per_gpu"] = s.trials_per_gpu
    if s.cpu_trials is not None:
        search["cpu_trials"] = s.cpu_trials
    if s.isolation is not None:
        search["isolation"] = s.isolation
    train = {"precision": s.precision, "device": s.device}
    if not s.autoft_defaults:
        search |= {"sampler": "tpe", "pruner": "median"}
        train |= {"eval_batch_size": 128, "early_stopping_patience": 0}
    return {
        "study": {"name": "bench", "seed": s.seed, "output_dir": str(output_dir)},
        "model": {"name": s.model, "max_length": s.max_length},
        "dataset": {"type": "files", **{split: str(path) for split, path in files.items()}},
        "search": search,
        "space": {**s.space, "weight_decay": 0.0, "warmup_ratio": 0.0},
        "train": train,
        "strategies": {"full": {}},
    }


def autoft_search(workdir: Path, files: dict[str, Path], s: SearchSettings) -> dict:
    """``autoft study run`` on a study file over the files, timed from outside."""
    study_file = workdir / "bench.toml"
    study_file.write_text(dumps(study_tables(files, workdir / "runs", s)))
    cmd = [sys.executable, "-m", "autoft", "study", "run", str(study_file), "--no-progress"]
    return run_study_process(cmd, workdir / "runs" / "bench", "bench", workdir / "autoft.log")


def run_study_process(cmd: list[str], run_dir: Path, name: str, log: Path) -> dict:
    """Run an ``autoft study run`` command; read its leaderboard, best model metrics and trial timings."""
    launched = datetime.now()
    wall = run_timed(cmd, log)
    ended = datetime.now()
    board = json.loads((run_dir / "leaderboard.json").read_text())
    objective = board["objective"]
    best_row = next(r for r in board["trials"] if r["state"] == "complete")
    best = json.loads((run_dir / "best" / "metrics.json").read_text())
    trials = trial_timings(run_dir / "study.db", name)
    starts = [t["start"] for t in trials if t["start"]]
    completes = [t["complete"] for t in trials if t["complete"]]
    for t in trials:
        t["ended_s"] = (t["complete"] - launched).total_seconds() if t["complete"] else None
        t.pop("start"), t.pop("complete")
    return {
        "wall_s": wall,
        "objective": objective,
        "best_validation": best_row[objective],
        "best_trial": best_row["trial"],
        "best_params": best_row["params"],
        "test": best.get("test"),
        "startup_s": (min(starts) - launched).total_seconds() if starts else None,
        "after_last_trial_s": (ended - max(completes)).total_seconds() if completes else None,
        "trials": trials,
        "setup_s_per_trial": _mean(t["setup_s"] for t in trials),
    }


def trial_timings(db: Path, name: str) -> list[dict]:
    """Each trial from the study storage: seconds in all, training, evaluating, and the rest (setup)."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    rows = []
    for t in optuna.load_study(study_name=name, storage=f"sqlite:///{db}").trials:
        a = t.user_attrs
        duration = (t.datetime_complete - t.datetime_start).total_seconds() if t.datetime_complete else None
        train_s, eval_s, waited = a.get("train_seconds"), a.get("eval_seconds"), a.get("waited_seconds", 0.0)
        # what is left of its time: setup (a wait at a rung for its bracket is no cost of its own)
        setup = duration - train_s - eval_s - waited if None not in (duration, train_s, eval_s) else None
        rows.append(
            {
                "trial": t.number,
                "state": t.state.name.lower(),
                "params": t.params,
                "value": t.value,
                "duration_s": duration,
                "train_s": train_s,
                "eval_s": eval_s,
                "setup_s": setup,
                "waited_s": waited,
                "samples_per_s": a.get("samples_per_second"),
                "start": t.datetime_start,
                "complete": t.datetime_complete,
            }
        )
    return rows


def _mean(values) -> float | None:
    values = [v for v in values if v is not None]
    return sum(values) / len(values) if values else None


def run(workdir: Path, files: dict[str, Path], s: SearchSettings, order: tuple[str, ...]) -> dict:
    """Both searches, one after the other in ``order``."""
    sides = {"trainer": trainer_search, "autoft": autoft_search}
    out = {}
    for side in order:
        started = time.perf_counter()
        print(f"search: {side} ...", file=sys.stderr, flush=True)
        out[side] = sides[side](workdir, files, s)
        print(f"search: {side} done in {time.perf_counter() - started:.1f} s", file=sys.stderr, flush=True)
    return out
