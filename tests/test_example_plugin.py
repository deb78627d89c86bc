"""The example plugins work as documented: the installable package and the local plugin file."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from autoft import LoadContext
from autoft.errors import DataError
from autoft.plugins import load_plugins
from autoft.testing import sentiment_rows

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


@pytest.fixture
def example_package(tmp_path, monkeypatch):
    """The example package pip-installed (offline) into a folder on sys.path, as a user would install it."""
    source = shutil.copytree(
        EXAMPLES / "autoft-example-plugin",
        tmp_path / "src",
        ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"),
    )
    site = tmp_path / "site"
    command = [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", "--no-index"]
    done = subprocess.run([*command, "--target", str(site), str(source)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    monkeypatch.syspath_prepend(str(site))
    return site


def write_folders(root: Path, splits: dict[str, int]) -> None:
    """<root>/<split>/<label>/<n>.txt with easy sentiment texts."""
    for i, (split, rows) in enumerate(splits.items()):
        texts, labels = sentiment_rows(rows, seed=i)
        for n, (text, label) in enumerate(zip(texts, labels)):
            folder = root / split / label
            folder.mkdir(parents=True, exist_ok=True)
            (folder / f"{n:03d}.txt").write_text(text + "\n")


def test_the_example_package_registers_through_its_entry_point_and_runs_a_study(
    example_package, tmp_path, study_file, cli
):
    registry = load_plugins()
    entry = registry.datasets["text_folders"]
    assert entry.origin == "autoft-example-plugin 0.1.0 (entry point autoft_example_plugin)"
    kappa = registry.metric("cohen_kappa")
    y = np.array([0, 1, 0, 1, 1, 0])
    assert kappa(y, y, None) == 1.0 and kappa(y, 1 - y, None) == -1.0

    data = tmp_path / "reviews"
    write_folders(data, {"train": 200, "test": 40})
    (data / "train" / "pos" / "empty.txt").write_text("  \n")
    path = study_file(
        dataset={"type": "text_folders", "path": "reviews"}, search={"objective": "cohen_kappa"}, space={"epochs": 1}
    )
    result = cli("study", "run", path, "--n-trials", "1", "--no-progress")
    assert result.code == 0, result.err
    assert "skipped 1 empty files" in result.out
    metrics = json.loads((tmp_path / "runs" / "tiny" / "best" / "metrics.json").read_text())
    assert metrics["objective"] == "cohen_kappa" and "cohen_kappa" in metrics["test"]
    assert metrics["test_rows"] == 40 and metrics["label_names"] == ["neg", "pos"]
    assert "example" in cli("plugins", "list").out


def test_text_folders_errors_name_the_folder(example_package, tmp_path):
    from autoft_example_plugin import TextFolders
    from autoft_example_plugin.text_folders import TextFoldersOptions

    write_folders(tmp_path / "data", {"train": 20, "test": 10})
    with pytest.raises(DataError, match="no files match '\\*.md' \\(pattern\\)"):
        TextFolders().load(TextFoldersOptions(path="data", pattern="*.md"), LoadContext(tmp_path))
    shutil.rmtree(tmp_path / "data" / "test" / "neg")
    with pytest.raises(DataError, match=r"test: no label folder 'neg' \(labels\); folders present: pos"):
        TextFolders().load(TextFoldersOptions(path="data"), LoadContext(tmp_path))


def test_the_local_plugin_file_runs_a_study_and_its_event_hook_writes_a_summary(tmp_path, study_file, cli):
    shutil.copy(EXAMPLES / "local_plugin.py", tmp_path / "local_plugin.py")
    texts, labels = sentiment_rows(160)
    intents = tmp_path / "intents"
    intents.mkdir()
    for label in ("neg", "pos"):
        lines = ["# one example per line", "", *(t for t, y in zip(texts, labels) if y == label)]
        (intents / f"{label}.txt").write_text("\n".join(lines) + "\n")
    path = study_file(
        study={"plugins": ["local_plugin.py"]}, dataset={"type": "label_lines", "path": "intents"}, space={"epochs": 1}
    )
    result = cli("study", "run", path, "--n-trials", "1", "--no-progress")
    assert result.code == 0, result.err
    run = tmp_path / "runs" / "tiny"
    metrics = json.loads((run / "best" / "metrics.json").read_text())
    assert metrics["label_names"] == ["neg", "pos"]
    summary = (run / "best.txt").read_text()
    assert summary.startswith("tiny: best trial 0, test accuracy ")
    assert f"accuracy {metrics['test']['accuracy']:.3f} on {metrics['test_rows']} rows" in summary
    assert "label_lines" in cli("plugins", "list", "--study", path).out


def test_the_example_backend_runs_a_study_and_stops_when_the_best_stalls(tmp_path, study_file, cli):
    """A backend plugin in one file, end to end: its [search.<name>] table, its stopping rule, the usual outputs."""
    shutil.copy(EXAMPLES / "patience_backend.py", tmp_path / "patience_backend.py")
    path = study_file(
        study={"plugins": ["patience_backend.py"]},
        search={"backend": "patience", "patience": {"patience": 1}, "n_trials": 6, "pruner": "none"},
        space={"epochs": 1, "learning_rate": {"low": 1e-5, "high": 1e-2, "log": True}},
    )
    result = cli("study", "run", path, "--no-progress")
    assert result.code == 0, result.err
    run = tmp_path / "runs" / "tiny"
    trials = sorted(json.loads((run / "leaderboard.json").read_text())["trials"], key=lambda r: r["trial"])
    values = [r["accuracy"] for r in trials]
    # patience 1: every trial but the last beat all before it; the last did not (or the budget ran out)
    assert all(v > max(values[:i], default=-1) for i, v in enumerate(values[:-1]))
    assert len(values) == 6 or values[-1] <= max(values[:-1])
    assert json.loads((run / "best" / "metrics.json").read_text())["trial"] == values.index(max(values))

    bad = study_file(
        study={"plugins": ["patience_backend.py"]}, search={"backend": "patience", "patience": {"patience": 0}}
    )
    result = cli("study", "run", bad, "--no-progress")
    assert result.code == 2 and "[search.patience]" in result.err and "patience" in result.err
