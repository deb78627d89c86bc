"""Settings that cannot work with the model or the data fail before anything runs: one line, exit 2, the run folder
untouched. Generated, not listed: each family of impossible setting is drawn with Hypothesis."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from autoft.testing import write_csv, write_study

LABELS = ("neg", "pos")  # what autoft.testing.write_csv writes
LIMIT, DEPTH = 128, 2  # the tiny models' positions and layers (autoft.testing.make_tiny_model)


def snapshot(folder):
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def study(root, model, data, /, **tables):
    base = {
        "study": {"name": "tiny", "output_dir": str(root / "runs")},
        "model": {"name": str(model), "max_length": 32},
        "dataset": {"type": "files", "path": str(data)},
        "search": {"n_trials": 1, "isolation": "none", "pruner": "none"},
        "space": {"learning_rate": 5e-3, "epochs": 1, "batch_size": 16},
    }
    return merged(base, tables)


def merged(base, tables):
    for table, values in tables.items():
        base[table] = {**base.get(table, {}), **values}
    return base


@pytest.fixture(scope="module")
def finished(finished_run):
    """A finished one-trial study on tiny_bert (conftest's shared ``finished_run``: never change its folder)."""
    return finished_run


def on_finished(finished, /, **tables):
    """The finished run's own study (its run folder, model and data), with ``tables`` merged in."""
    return merged(finished.tables, tables)


#: (tables to merge into the study, what the one-line error must name)
impossible = st.one_of(
    st.integers(LIMIT + 1, 8192).map(lambda n: ({"model": {"max_length": n}}, "[model] max_length")),
    st.integers(DEPTH + 1, 64).map(
        lambda n: ({"strategies": {"full": {"freeze_layers": [0, n]}}}, "[strategies.full] freeze_layers")
    ),
    st.text("abcxyz_", min_size=1, max_size=8)
    .filter(lambda s: s not in LABELS)
    .map(lambda label: ({"space": {"class_weights": {"neg": 1.0, label: 2.0}}}, "class_weights")),
    st.lists(st.integers(0, 7), min_size=1, max_size=3).map(lambda g: ({"search": {"gpus": g}}, "[search] gpus")),
    st.sampled_from(["cuda", "cuda:0", "cuda:3"]).map(lambda d: ({"train": {"device": d}}, "[train] device")),
    st.sampled_from(["nonexistent_module", ["nope", "missing"]]).map(
        lambda t: ({"strategies": {"lora": {"target_modules": t}}}, "[strategies.lora]")
    ),
)


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="the GPU cases assume a machine without one")
@settings(max_examples=24, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
@given(case=impossible)
def test_impossible_settings_fail_the_check_in_one_line(case, finished, tmp_path_factory, cli):
    tables, key = case
    path = write_study(tmp_path_factory.mktemp("bad") / "bad.toml", on_finished(finished, **tables))
    result = cli("study", "check", path)
    assert result.code == 2, result.out + result.err
    assert result.err.startswith("error: ") and result.err.count("\n") == 1, result.err
    assert key in result.err and "Traceback" not in result.err


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="the GPU cases assume a machine without one")
def test_a_finished_run_is_left_untouched_by_each_family(finished, tmp_path, cli):
    """One of each family through `study run` on a finished study: exit 2 before anything is written."""
    before = snapshot(finished.root / "runs")
    for tables in (
        {"model": {"max_length": 4096}},
        {"strategies": {"full": {"freeze_layers": 9}}},
        {"space": {"class_weights": {"neutral": 2.0}}},
        {"search": {"gpus": [1]}},
    ):
        result = cli("study", "run", write_study(tmp_path / "bad.toml", on_finished(finished, **tables)))
        assert result.code == 2 and result.err.count("\n") == 1, result.err
    assert snapshot(finished.root / "runs") == before


def test_a_valid_study_passes_the_check_and_nothing_is_written(tiny_bert, tmp_path, cli):
    data = write_csv(tmp_path / "reviews.csv", 120)
    path = write_study(tmp_path / "ok.toml", study(tmp_path, tiny_bert, data, strategies={"full": {}, "lora": {}}))
    result = cli("study", "check", path)
    assert result.code == 0, result.err
    assert "ok · study tiny" in result.out and "warning" not in result.out
    assert not (tmp_path / "runs").exists()


def test_the_check_prints_the_warnings_a_run_would(tiny_bert, tmp_path, cli):
    frame = pd.read_csv(write_csv(tmp_path / "reviews.csv", 120))
    frame.loc[::4, "label"] = frame.loc[::4, "label"].str.capitalize()  # 'Neg' beside 'neg'
    frame.to_csv(tmp_path / "reviews.csv", index=False)
    result = cli(
        "study", "check", write_study(tmp_path / "s.toml", study(tmp_path, tiny_bert, tmp_path / "reviews.csv"))
    )
    assert result.code == 0, result.err
    assert "warning: labels 'Neg', 'neg' differ only in case or spacing" in " ".join(result.out.split())


def test_a_model_folder_without_tokenizer_files_is_refused(tiny_bert, tmp_path, cli):
    model = tmp_path / "no-tokenizer"
    shutil.copytree(tiny_bert, model)
    for f in model.iterdir():
        if "token" in f.name or f.name.startswith("vocab") or f.name == "special_tokens_map.json":
            f.unlink()
    data = write_csv(tmp_path / "reviews.csv", 120)
    result = cli("study", "check", write_study(tmp_path / "s.toml", study(tmp_path, model, data)))
    assert result.code == 2 and "has no tokenizer files" in result.err and result.err.count("\n") == 1


def test_a_worker_pointed_at_another_storage_leaves_the_run_folder_alone(finished, tmp_path, cli):
    before = snapshot(finished.root / "runs")
    path = write_study(tmp_path / "study.toml", on_finished(finished))
    other = f"sqlite:///{tmp_path / 'other.db'}"
    result = cli("study", "worker", path, "--storage", other, "--no-progress")
    assert result.code == 2 and "belongs to the study in" in result.err and result.err.count("\n") == 1, result.err
    assert snapshot(finished.root / "runs") == before
    assert not (tmp_path / "other.db").exists()


# --- signals at each phase boundary -----------------------------------------------------------------

PHASES = '''
import multiprocessing, os, pathlib, time
from autoft import hookimpl

marks = pathlib.Path(os.environ["AUTOFT_TEST_PHASES"])


def pause(phase):
    """Mark the phase, then wait while its gate file exists."""
    (marks / f"{phase}.{os.getpid()}").touch()
    while (marks / f"{phase}.gate").exists():
        time.sleep(0.05)


if multiprocessing.parent_process() is not None:  # a trial worker loading the study's plugins and data
    pause("worker")


@hookimpl
def trial_finished(study_name, record):
    pause("between")
'''


def run_in_background(path, phases):
    env = {**os.environ, "AUTOFT_TEST_PHASES": str(phases)}
    return subprocess.Popen(
        [sys.executable, "-m", "autoft", "study", "run", str(path), "--no-progress"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
        start_new_session=True,
    )


@pytest.mark.parametrize(
    "phase, sig, code",
    [("worker", signal.SIGINT, 130), ("between", signal.SIGTERM, 143)],
    ids=["ctrl-c-while-workers-start", "sigterm-between-trials"],
)
def test_a_signal_at_a_phase_boundary_stops_cleanly_and_the_study_resumes(phase, sig, code, tiny_bert, tmp_path):
    phases = tmp_path / "phases"
    phases.mkdir()
    (phases / f"{phase}.gate").touch()
    (tmp_path / "phases.py").write_text(PHASES)
    data = write_csv(tmp_path / "reviews.csv", 120)
    # trial workers only where their start is the boundary under test
    isolation = "process" if phase == "worker" else "none"
    tables = study(tmp_path, tiny_bert, data, search={"n_trials": 2, "isolation": isolation})
    tables["study"]["plugins"] = ["phases.py"]
    path = write_study(tmp_path / "study.toml", tables)

    proc = run_in_background(path, phases)
    deadline = time.monotonic() + 180
    while not list(phases.glob(f"{phase}.*[0-9]")) and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.1)
    assert list(phases.glob(f"{phase}.*[0-9]")), proc.communicate()[0]
    if sig == signal.SIGINT:
        os.killpg(proc.pid, sig)  # a terminal's Ctrl-C reaches the whole foreground group
    else:
        proc.send_signal(sig)
    try:
        out = proc.communicate(timeout=60)[0]
    finally:
        (phases / f"{phase}.gate").unlink()
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == code, out
    assert "Traceback" not in out, out
    if phase != "between":
        return  # nothing had started; the resume that matters is the one after a finished trial
    again = run_in_background(path, phases)
    out = again.communicate(timeout=300)[0]
    assert again.returncode == 0, out
    board = json.loads((tmp_path / "runs" / "tiny" / "leaderboard.json").read_text())
    assert sum(r["state"] == "complete" for r in board["trials"]) == 2


def test_changing_the_objective_of_an_existing_study_is_refused(finished, tmp_path, cli):
    """Stored scores are for the objective a study was made with; another one would rank them wrongly."""
    before = snapshot(finished.root / "runs")
    path = write_study(tmp_path / "s.toml", on_finished(finished, search={"objective": "f1_macro"}))
    result = cli("study", "run", path, "--no-progress")
    assert result.code == 2 and "was created with objective 'accuracy'" in result.err, result.err
    assert snapshot(finished.root / "runs") == before


def test_a_damaged_database_at_the_study_storage_is_found_by_the_check(tiny_bert, tmp_path, cli):
    data = write_csv(tmp_path / "reviews.csv", 120)
    db = tmp_path / "elsewhere.db"
    db.write_bytes(b"SQLite format 3\x00" + bytes(range(256)) * 20)
    tables = study(tmp_path, tiny_bert, data)
    tables["study"]["storage"] = f"sqlite:///{db}"
    path = write_study(tmp_path / "s.toml", tables)
    for command in ("check", "run"):
        result = cli("study", command, path)
        assert result.code == 2 and result.err.count("\n") == 1 and "elsewhere.db" in result.err, result.err
    assert not (tmp_path / "runs").exists()


ODD_STRATEGY = """
import autoft


class Odd(autoft.Strategy):
    name = "odd"

    def {method}(self, model, options, *rest):
        {body}


@autoft.hookimpl
def register_strategies(register):
    register(Odd)
"""


@pytest.mark.parametrize(
    "method, body, said",
    [
        ("prepare", "return None", "the strategy's prepare() returned NoneType, not the model to train"),
        ("prepare", "return model.requires_grad_(False)", "phase 'odd' trains no parameter (did prepare() freeze"),
        ("phases", "return []", "the strategy's phases() gave an empty list, not a list of autoft.Phase"),
        ("phases", "return [autoft.Phase('x', ['nope'], 0.1, 1)]", "phase 'x' trains 'nope', which the model does not"),
    ],
)
def test_a_strategy_plugin_whose_plan_cannot_train_is_named_before_the_first_trial(
    method, body, said, tiny_bert, tmp_path, cli
):
    """Each failed every trial ('optimizer got an empty parameter list'; an empty plan as 'the objective is not
    a finite number') and stopped the study after three."""
    (tmp_path / "odd.py").write_text(ODD_STRATEGY.format(method=method, body=body))
    data = write_csv(tmp_path / "reviews.csv", 120)
    tables = study(tmp_path, tiny_bert, data, strategies={"odd": {}})
    tables["study"]["plugins"] = ["odd.py"]
    result = cli("study", "run", write_study(tmp_path / "s.toml", tables), "--no-progress")
    assert result.code == 2 and result.err.count("\n") == 1, result.err
    assert f"[strategies.odd] on model '{tiny_bert}': {said}" in result.err
    assert not (tmp_path / "runs").exists()
