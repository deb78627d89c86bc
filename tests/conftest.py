"""Shared fixtures: tiny models and data made on the spot, and a way to run the CLI."""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch loads: see autoft.cli.entry
import warnings
from dataclasses import dataclass
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
