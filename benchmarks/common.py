"""What both sides share: the data subsets, timing, and a description of the machine."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Subsets:
    """Train and validation rows (columns text, label) and where the validation rows came from."""

    train: pd.DataFrame
    validation: pd.DataFrame
    validation_source: str


def train_order(rows: int, seed: int) -> np.ndarray:
    """The seeded permutation of train.parquet's rows: training rows first, then validation rows."""
    return np.random.default_rng(seed).permutation(rows)


def held_out_order(rows: int, seed: int) -> np.ndarray:
    """The seeded permutation of test.parquet's rows the held-out rows are the first of."""
    return np.random.default_rng(seed + 1).permutation(rows)


def load_subsets(data_dir: Path, train_rows: int, val_rows: int, seed: int = 0) -> Subsets:
    """A seeded sample of ``train_rows`` training rows and ``val_rows`` validation rows.

    As in the reference script: one permutation of train.parquet, the first rows for training and the
    next ones for validation; when train.parquet has too few rows left, validation comes from test.parquet.
    """
    train = pd.read_parquet(data_dir / "train.parquet", columns=["text", "label"])
    order = train_order(len(train), seed)
    if train_rows > len(train):
        raise SystemExit(f"--train-rows {train_rows}: {data_dir / 'train.parquet'} has only {len(train)} rows")
    picked = train.iloc[order[:train_rows]].reset_index(drop=True)
    if train_rows + val_rows <= len(train):
        val = train.iloc[order[train_rows : train_rows + val_rows]].reset_index(drop=True)
        source = "train.parquet (after the training rows)"
    else:
        test = pd.read_parquet(data_dir / "test.parquet", columns=["text", "label"])
        val = test.iloc[np.random.default_rng(seed).permutation(len(test))[:val_rows]].reset_index(drop=True)
        source = "test.parquet"
    _refuse_empty_texts(data_dir, picked, val)
    return Subsets(picked, val, source)


def _refuse_empty_texts(data_dir: Path, *frames: pd.DataFrame) -> None:
    """Stop where a drawn row's text is empty: ``python -m benchmarks.carry`` keeps only the texts of the rows
    its seeds draw, and an epoch over blanks would time (and score) a different dataset."""
    empty = sum(int((frame.text.str.len() == 0).sum()) for frame in frames)
    if empty:
        raise SystemExit(
            f"--data {data_dir}: {empty} of the rows drawn have an empty text (a kit from python -m benchmarks.carry "
            "holds only its seeds' search rows); use the full dataset or a seed and mode the kit was made for"
        )


def held_out_rows(data_dir: Path, rows: int, seed: int = 0) -> pd.DataFrame:
    """A seeded sample of test.parquet (the held-out split autoft scores its best trial on)."""
    test = pd.read_parquet(data_dir / "test.parquet", columns=["text", "label"])
    pick = held_out_order(len(test), seed)[:rows]
    rows_drawn = test.iloc[pick].reset_index(drop=True)
    _refuse_empty_texts(data_dir, rows_drawn)
    return rows_drawn


def stratified_split(
    frame: pd.DataFrame, fractions: tuple[float, float] = (0.70, 0.15), seed: int = 0
) -> tuple[dict[str, pd.DataFrame], int]:
    """Train, validation and test rows of a table without an official split, and the duplicates dropped.

    Repeated texts are dropped first (the first one stays), so no text lands in two splits. Each label's rows
    are shuffled (seeded) and cut at ``fractions`` (train, validation; test gets the rest); each split is then
    shuffled so the labels are mixed.
    """
    unique = frame.drop_duplicates("text").reset_index(drop=True)
    rng = np.random.default_rng(seed)
    parts: dict[str, list[np.ndarray]] = {"train": [], "validation": [], "test": []}
    labels = unique.label.to_numpy()
    for label in np.unique(labels):
        rows = rng.permutation(np.flatnonzero(labels == label))
        n_train = round(len(rows) * fractions[0])
        n_val = round(len(rows) * fractions[1])
        parts["train"].append(rows[:n_train])
        parts["validation"].append(rows[n_train : n_train + n_val])
        parts["test"].append(rows[n_train + n_val :])
    splits = {
        name: unique.iloc[rng.permutation(np.concatenate(rows))].reset_index(drop=True) for name, rows in parts.items()
    }
    return splits, len(frame) - len(unique)


def sync(device: str) -> None:
    if device.startswith("cuda"):
        import torch

        torch.cuda.synchronize()


#: the user's TOKENIZERS_PARALLELISM, read before the harness sets its own (``compare.main``)
USER_TOKENIZERS_PARALLELISM = os.environ.get("TOKENIZERS_PARALLELISM")


def run_timed(cmd: list[str], log: Path, env: dict[str, str] | None = None) -> float:
    """Run a command to the end, its output into ``log``; return its wall seconds (raise if it failed)."""
    # both sides with sleeping OpenMP threads (autoft sets PASSIVE itself): busy-waiting threads collapse
    # when anything else runs on the cores, which would time the machine's load, not the Trainer
    passive = os.environ.get("OMP_WAIT_POLICY", "PASSIVE")
    full_env = {**os.environ, "OMP_WAIT_POLICY": passive, **(env or {})}
    if USER_TOKENIZERS_PARALLELISM is None:  # each side's tokenizer threads as its users get them, not the harness's
        full_env.pop("TOKENIZERS_PARALLELISM", None)
    with open(log, "w") as out:
        started = time.perf_counter()
        code = subprocess.run(cmd, cwd=ROOT, env=full_env, stdout=out, stderr=subprocess.STDOUT).returncode
        wall = time.perf_counter() - started
    if code != 0:
        tail = log.read_text()[-3000:]
        raise RuntimeError(f"{' '.join(cmd)} exited with {code}:\n{tail}")
    return wall


def environment() -> dict:
    """Versions, the device and the machine."""
    import optuna
    import torch
    import transformers

    import autoft

    cuda = torch.cuda.is_available()
    return {
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "optuna": optuna.__version__,
        "autoft": autoft.__version__,
        "autoft_commit": _git_commit(),
        "device": "cuda" if cuda else "cpu",
        "device_name": torch.cuda.get_device_name(0) if cuda else _cpu_name(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"),  # both sides' processes inherit it
        "load_average_1m_at_start": load_average(),
        "platform": platform.platform(),
    }


def load_average() -> float | None:
    """The 1-minute load average (other work on the machine makes timings noisy)."""
    try:
        return round(os.getloadavg()[0], 2)
    except OSError:
        return None


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "cpu"


def _git_commit() -> str | None:
    """The commit, with ``+dirty`` when the working tree has changes (read-only git commands)."""
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
        status = subprocess.run(["git", "status", "--porcelain"], cwd=ROOT, capture_output=True, text=True)
    except OSError:
        return None
    commit = head.stdout.strip()
    return f"{commit}+dirty" if commit and status.stdout.strip() else commit or None
