"""Shared fixtures: tiny models and data made on the spot, and a way to run the CLI."""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch loads: see autoft.cli.entry
import copy
import hashlib
import shutil
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from autoft.testing import make_tiny_model, write_csv, write_study

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
warnings.filterwarnings("ignore", category=FutureWarning)


@pytest.fixture(scope="session")
def tiny_bert(tmp_path_factory) -> Path:
    return make_tiny_model(tmp_path_factory.mktemp("tiny-bert"), "bert")


@pytest.fixture(scope="session")
def tiny_distilbert(tmp_path_factory) -> Path:
    return make_tiny_model(tmp_path_factory.mktemp("tiny-distilbert"), "distilbert")


@pytest.fixture(scope="session")
def tiny_roberta(tmp_path_factory) -> Path:
    return make_tiny_model(tmp_path_factory.mktemp("tiny-roberta"), "roberta")


@dataclass(frozen=True)
class FinishedRun:
    """A study run to completion: ``root`` holds reviews.csv, study.toml and runs/tiny/ (the run folder)."""

    root: Path
    _tables: dict = field(repr=False)

    @property
    def data(self) -> Path:
        return self.root / "reviews.csv"

    @property
    def study(self) -> Path:
        """The study file the run was made with."""
        return self.root / "study.toml"

    @property
    def tables(self) -> dict:
        """The study's tables (a fresh copy each time: change it freely)."""
        return copy.deepcopy(self._tables)

    @property
    def run(self) -> Path:
        return self.root / "runs" / "tiny"

    @property
    def best(self) -> Path:
        return self.run / "best"

    def copy_run(self, dest: Path) -> Path:
        """Copy the run folder to ``dest/runs/tiny`` (to change it: the shared one is read-only) and return it."""
        out = dest / "runs" / "tiny"
        shutil.copytree(self.run, out)
        return out


def _digests(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


@pytest.fixture(scope="session")
def finished_run(tmp_path_factory, tiny_bert):
    """One finished one-trial study on ``tiny_bert``, built once per session and shared: READ-ONLY.

    300 rows, 4 epochs at learning rate 1e-2: the model has learned (test accuracy 1 or nearly), so its
    labels can be asserted. A test that changes anything in the run folder works on a copy
    (:meth:`FinishedRun.copy_run`, or ``shutil.copytree`` of ``best``); at the end of the session the
    folder is checked to be as it was built.
    """
    from autoft.cli import main

    root = tmp_path_factory.mktemp("finished-run")
    data = write_csv(root / "reviews.csv", 300)
    tables = {
        "study": {"name": "tiny", "output_dir": str(root / "runs")},
        "model": {"name": str(tiny_bert), "max_length": 32},
        "dataset": {"type": "files", "path": str(data)},
        "search": {"n_trials": 1, "isolation": "none", "pruner": "none"},
        "space": {"learning_rate": 1e-2, "epochs": 4, "batch_size": 16},
        "train": {"eval_batch_size": 64},
    }
    assert main(["study", "run", str(write_study(root / "study.toml", tables)), "--no-progress"]) == 0
    run = FinishedRun(root, tables)
    built = _digests(run.run)
    yield run
    now = _digests(run.run)
    changed = sorted(k for k in built.keys() | now.keys() if built.get(k) != now.get(k))
    assert not changed, f"a test changed the shared finished_run folder (copy it first): {changed}"


@pytest.fixture
def reviews_csv(tmp_path) -> Path:
    return write_csv(tmp_path / "data" / "reviews.csv", 300)


def tiny_study(tmp_path: Path, model: Path, data: Path, **tables) -> dict:
    """A small, fast study over ``data`` with ``model``.

    Keyword tables extend the default [study], [model], [search], [space] and [train]
    tables, and replace any other table; None removes a table.
    """
    study = {
        "study": {"name": "tiny", "seed": 0, "output_dir": str(tmp_path / "runs")},
        "model": {"name": str(model), "max_length": 32},
        "dataset": {"type": "files", "path": str(data)},
        "search": {"n_trials": 3, "objective": "accuracy", "pruner": "none"},
        "space": {"learning_rate": {"low": 5e-3, "high": 1.5e-2, "log": True}, "epochs": 4, "batch_size": 16},
        "train": {"eval_batch_size": 64},
    }
    for name, table in tables.items():
        if table is None:
            study.pop(name, None)
        elif name in ("study", "model", "search", "space", "train"):
            study[name] = {**study[name], **table}
        else:
            study[name] = table
    return study


@pytest.fixture
def study_file(tmp_path, tiny_bert, reviews_csv):
    """Write a tiny study file; call with table overrides."""

    def make(name: str = "study.toml", model: Path | None = None, **tables) -> Path:
        return write_study(tmp_path / name, tiny_study(tmp_path, model or tiny_bert, reviews_csv, **tables))

    return make


@dataclass
class CliResult:
    code: int
    out: str
    err: str


@pytest.fixture
def cli(capsys):
    """Run ``autoft`` in this process and capture what it prints."""
    from autoft.cli import main

    def run(*args: str) -> CliResult:
        code = main([str(a) for a in args])
        captured = capsys.readouterr()
        return CliResult(code, captured.out, captured.err)

    return run
