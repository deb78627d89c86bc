"""Damaged files in a run folder: every command that reads one either works (a cache or a derived file is
rebuilt or ignored) or stops with one line naming the file and what to do; never a traceback, never a write.

One finished tiny run is built once (at collection: the test ids are its files, found by walking it). Each
case copies it, damages one file (cut to half its size, or its middle third replaced by random bytes, which
keeps a header intact so the damage reaches the readers' deeper checks; SQLite and TOML files are also
emptied, which their formats would read as nothing) and runs the commands that read it:

- ``autoft study leaderboard RUN`` and ``autoft.ledger.storage_of_run(RUN)`` (the dashboard's storage): every
  file (they are instant);
- ``autoft predict RUN/best TEXT`` and ``autoft evaluate RUN/best --study STUDY``: the files loading the model
  reads (``best/`` but for trial.json, metrics.json and the README.md model card);
- ``autoft study run STUDY`` (resume): the study's record (study.db, study.toml), the token cache and the
  leaderboards (rewritten). A resume reads ``best/`` and ``evaluation/`` to decide whether to export the best
  trial again (:func:`autoft.export.existing_best`), and the checkpoints only when it trains or exports: for
  those files each case checks that decision (seconds saved per file), and
  ``test_resume_rebuilds_a_damaged_export`` and ``test_resume_with_damaged_checkpoints`` run the resumes whole.
"""

from __future__ import annotations

import atexit
import hashlib
import random
import shutil
import tempfile
from pathlib import Path

import pytest

from autoft.testing import make_tiny_model, write_csv, write_study

VARIANTS = ("truncated", "garbled")
#: files of best/ that loading the model does not read (its bookkeeping and model card)
NOT_MODEL_FILES = ("trial.json", "metrics.json", "README.md")
EXPORT = ("best", "evaluation")
#: the study's own record: a resume stops, naming it, rather than guess
RECORD = ("study.db", "study.toml")

_reference: dict[str, Path] = {}


def reference() -> Path:
    """A finished one-trial study (root: model/, reviews.csv, study.toml, runs/tiny/), built once per session."""
    if "root" not in _reference:
        from autoft.cli import main

        root = Path(tempfile.mkdtemp(prefix="autoft-corruption-"))
        atexit.register(shutil.rmtree, root, True)
        model = make_tiny_model(root / "model")
        data = write_csv(root / "reviews.csv", 120)
        write_study(root / "study.toml", study_tables(root, model, data))
        code = main(["study", "run", str(root / "study.toml"), "--no-progress"])
        assert code == 0, "the reference study did not finish"
        _reference["root"] = root
    return _reference["root"]


def study_tables(out: Path, model: Path, data: Path) -> dict:
    return {
        "study": {"name": "tiny", "seed": 0, "output_dir": str(out / "runs")},
        "model": {"name": str(model), "max_length": 32},
        "dataset": {"type": "files", "path": str(data)},
        "search": {"n_trials": 1, "isolation": "none", "pruner": "none"},
        # an MLP head: best/ and the checkpoint carry autoft_head.json, and load through autoft's own path
        "space": {"learning_rate": 5e-3, "epochs": 1, "batch_size": 16, "head": "mlp", "head_hidden_size": 16},
        "train": {"eval_batch_size": 64},
    }


def run_files() -> list[str]:
    run = reference() / "runs" / "tiny"
    return sorted(str(p.relative_to(run)) for p in run.rglob("*") if p.is_file() and not p.name.startswith("."))


def pytest_generate_tests(metafunc):
    if metafunc.function.__name__ == "test_damaged_file":
        cases = [(rel, variant) for rel in run_files() for variant in VARIANTS]
        # an empty SQLite or TOML file parses (as nothing): it must not pass for a fresh study or a default
        cases += [(rel, "emptied") for rel in run_files() if Path(rel).suffix in (".db", ".toml")]
        metafunc.parametrize("rel, variant", cases, ids=[f"{variant}-{rel}" for rel, variant in cases])


def damage(path: Path, variant: str) -> None:
    data = path.read_bytes()
    rng = random.Random(hashlib.sha256(f"{path.name}:{variant}".encode()).digest())
    if variant == "truncated":
        path.write_bytes(data[: len(data) // 2])
    elif variant == "emptied":
        path.write_bytes(b"")
    else:
        start, end = len(data) // 3, max(2 * len(data) // 3, len(data) // 3 + 8)
        path.write_bytes(data[:start] + rng.randbytes(end - start) + data[end:])


def snapshot(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and not p.name.startswith(".")
    }


@pytest.fixture
def damaged(tmp_path):
    """Copy the reference run to tmp_path, with a study file of its own; damage one file of it."""

    def make(rel: str | None, variant: str) -> tuple[Path, Path]:
        root = reference()
        run = tmp_path / "runs" / "tiny"
        shutil.copytree(root / "runs" / "tiny", run)
        study = write_study(tmp_path / "study.toml", study_tables(tmp_path, root / "model", root / "reviews.csv"))
        if rel is not None:
            damage(run / rel, variant)
        return run, study

    return make


def check_outcome(what: str, code: int, out: str, err: str, path: Path) -> None:
    """Exit 0, or exit 2 with exactly one line, ``error: `` and the damaged file's name; no traceback."""
    assert "Traceback" not in out + err, f"{what}: {err}"
    if code == 0:
        return
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2, f"{what}: exit {code}: {err}"
    assert len(lines) == 1 and lines[0].startswith("error: "), f"{what}: {err}"
    assert path.name in lines[0], f"{what}: the error does not name {path.name}: {err}"


def readable(path: Path) -> bool:
    """Whether a file still reads back as its kind (a cut Markdown file is still Markdown)."""
    from autoft.saved import DamagedFile, check_file

    try:
        check_file(path, "")
    except DamagedFile:
        return False
    return True


def storage(run: Path) -> tuple[int, str, str]:
    from autoft.errors import AutoftError
    from autoft.ledger import storage_of_run

    try:
        return 0, storage_of_run(run), ""
    except AutoftError as exc:
        return exc.exit_code, "", f"error: {exc}\n"


def test_damaged_file(damaged, cli, rel, variant):
    from autoft.checkpoints import CheckpointStore
    from autoft.export import existing_best
    from autoft.metrics import Objective
    from autoft.saved import check_file

    run, study = damaged(rel, variant)
    path = run / rel
    parts = Path(rel).parts
    commands = [("leaderboard", lambda: cli("study", "leaderboard", run)), ("storage", lambda: storage(run))]
    if parts[0] == "best" and path.name not in NOT_MODEL_FILES:
        commands.append(("predict", lambda: cli("predict", run / "best", "superb seller", "--device", "cpu")))
        commands.append(
            ("evaluate", lambda: cli("evaluate", run / "best", "--study", study, "--device", "cpu", "--explain", "0"))
        )
    for name, command in commands:
        before = snapshot(run)
        result = command()
        code, out, err = (result.code, result.out, result.err) if hasattr(result, "code") else result
        check_outcome(name, code, out, err, path)
        if code:
            assert snapshot(run) == before, f"{name} failed and changed the run folder"

    if parts[0] in EXPORT:  # a damaged export is detected (if its kind can tell), so the resume rebuilds it
        assert existing_best(run) is None or readable(path)
    if parts[0] == "checkpoints" and parts[1].startswith("trial-"):  # a damaged checkpoint counts as none
        assert not CheckpointStore(run, Objective("accuracy")).has(int(parts[1].split("-")[1]))
    if not resume_reads(rel):
        return

    before = snapshot(run)
    result = cli("study", "run", study, "--no-progress")
    check_outcome("study run", result.code, result.out, result.err, path)
    if result.code:
        assert snapshot(run) == before, "a failed resume changed the run folder"
        assert rel in RECORD, f"only the study's record may stop a resume: {result.err}"
        return
    assert rel != "study.db", "a damaged study.db was not noticed"
    if rel != "study.toml":
        check_file(path, "")  # rebuilt, rewritten
    assert existing_best(run) is not None  # the export was left alone


def resume_reads(rel: str) -> bool:
    """Whether a resume with nothing left to train reads (or rewrites) this file, apart from the export."""
    return rel in RECORD or rel.startswith(("cache/", "leaderboard."))


@pytest.mark.parametrize("folder", EXPORT)
def test_resume_rebuilds_a_damaged_export(damaged, cli, folder):
    """Every file of best/ (or evaluation/) garbled: the resume exports the best trial again, whole."""
    from autoft.export import existing_best
    from autoft.saved import check_folder

    run, study = damaged(None, "garbled")
    for path in (run / folder).iterdir():
        damage(path, "garbled")
    result = cli("study", "run", study, "--no-progress")
    assert result.code == 0, result.err
    assert "Traceback" not in result.out + result.err
    for name in EXPORT:
        check_folder(run / name, "")
    first, again = existing_best(reference() / "runs" / "tiny"), existing_best(run)
    assert again is not None and again["trial"] == first["trial"]
    assert again["test"] == pytest.approx(first["test"])


def test_resume_with_damaged_checkpoints(damaged, cli):
    """A garbled checkpoint counts as none: the export trains its trial again. A garbled checkpoints/best.json
    is ignored when the next trial ends, and rewritten."""
    from autoft.checkpoints import CheckpointStore
    from autoft.export import existing_best
    from autoft.metrics import Objective
    from autoft.saved import check_folder, read_json

    run, study = damaged("checkpoints/best.json", "garbled")
    store = CheckpointStore(run, Objective("accuracy"))
    damage(run / "checkpoints" / "trial-0" / "model.safetensors", "garbled")
    damage(run / "best" / "model.safetensors", "garbled")  # so the export needs the checkpoint
    result = cli("study", "run", study, "--no-progress")
    assert result.code == 0, result.err
    assert "retraining trial 0" in result.out and "Traceback" not in result.out + result.err
    assert store.has(0) and existing_best(run)["trial"] == 0
    check_folder(run / "best", "")

    result = cli("study", "run", study, "--no-progress", "--n-trials", "2")
    assert result.code == 0, result.err
    best = read_json(run / "checkpoints" / "best.json", "")
    assert best["trial"] in (0, 1) and store.has(best["trial"])
