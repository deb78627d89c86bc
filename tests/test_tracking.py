"""The built-in tracking plugins, for real: a study's trials read back from an MLflow store and TensorBoard events."""

from __future__ import annotations

import importlib.util
import json

import pytest

from autoft.config import load_study
from autoft.errors import ConfigError

needs_both = pytest.mark.skipif(
    importlib.util.find_spec("mlflow") is None or importlib.util.find_spec("tensorboard") is None,
    reason="needs the mlflow and tensorboard extras (pip install -e '.[mlflow,tensorboard]')",
)

TRACKING = {"mlflow": True, "tensorboard": True}
#: several evaluations a trial (every 5 steps, and at the epoch's end), none cut short by early stopping
TRAIN = {"eval_every": 5, "early_stopping_patience": 0}


def scalars(folder, tag):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(folder))
    events.Reload()
    return [(e.step, e.value) for e in events.Scalars(tag)]


@needs_both
def test_a_study_is_tracked_in_mlflow_and_tensorboard(study_file, cli, tmp_path, monkeypatch):
    import mlflow

    search = {"n_trials": 2, "isolation": "none"}  # trials in this process: quicker, and the same hooks
    path = study_file(search=search, space={"epochs": 1}, train=TRAIN, tracking=TRACKING)
    result = cli("study", "run", path, "--no-progress")
    assert result.code == 0, result.err
    assert "warning" not in result.err
    run_dir = tmp_path / "runs" / "tiny"
    trials = {t["trial"]: t for t in json.loads((run_dir / "leaderboard.json").read_text())["trials"]}
    best = json.loads((run_dir / "best" / "metrics.json").read_text())
    history = json.loads((run_dir / "best" / "trial.json").read_text())["history"]
    steps = [entry["step"] for entry in history]
    assert len(steps) >= 3 and steps == sorted(set(steps))

    # MLflow: the default store is SQLite in the run folder, read back through MLflow's own API
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{run_dir / 'mlflow.db'}")
    runs = mlflow.search_runs(experiment_names=["tiny"], output_format="list")
    by_name = {r.info.run_name: r for r in runs}
    assert set(by_name) == {"trial-0", "trial-1", "best"}
    for number in (0, 1):
        run = by_name[f"trial-{number}"]
        assert run.data.tags["study"] == "tiny" and run.data.tags["strategy"] == "full"
        assert run.data.tags["state"] == trials[number]["state"] == "complete"
        assert run.data.tags["reason"] == ""
        assert run.info.status == "FINISHED"
        assert float(run.data.params["learning_rate"]) == trials[number]["params"]["learning_rate"]
        assert run.data.metrics["best_validation/accuracy"] == trials[number]["accuracy"]
    client = mlflow.MlflowClient()
    trial_run = by_name[f"trial-{best['trial']}"]
    logged = client.get_metric_history(trial_run.info.run_id, "validation/accuracy")
    assert [(m.step, m.value) for m in logged] == [(e["step"], e["accuracy"]) for e in history]
    assert [m.step for m in client.get_metric_history(trial_run.info.run_id, "train/loss")] == steps

    best_run = by_name["best"]
    assert best_run.data.tags["trial"] == str(best["trial"])
    assert best_run.data.tags["trial_run_id"] == trial_run.info.run_id
    assert best_run.data.metrics["test/accuracy"] == pytest.approx(best["test"]["accuracy"])
    assert best_run.data.metrics["test/f1_macro"] == pytest.approx(best["test"]["f1_macro"])
    artifacts = {a.path for a in client.list_artifacts(best_run.info.run_id)}
    assert {"best", "evaluation", "report.html", "report.md", "leaderboard.csv"} <= artifacts
    model_files = {a.path for a in client.list_artifacts(best_run.info.run_id, "best")}
    assert {"best/model.safetensors", "best/metrics.json", "best/study.toml"} <= model_files
    assert (run_dir / "mlartifacts").is_dir()  # artifacts stay in the run folder

    # TensorBoard: a folder of events per trial, read back with TensorBoard's reader
    board = run_dir / "tensorboard"
    assert sorted(p.name for p in board.iterdir()) == ["best", "trial-0", "trial-1"]
    assert scalars(board / f"trial-{best['trial']}", "validation/accuracy") == [
        (e["step"], pytest.approx(e["accuracy"])) for e in history
    ]
    for number in (0, 1):
        assert [s for s, _ in scalars(board / f"trial-{number}", "train/loss")] == steps
        assert [s for s, _ in scalars(board / f"trial-{number}", "epoch")] == steps
    assert scalars(board / "best", "test/accuracy") == [(0, pytest.approx(best["test"]["accuracy"]))]

    # run again: nothing to train; the best is exported again and replaces the earlier best run
    assert cli("study", "run", path, "--no-progress").code == 0
    names = sorted(r.info.run_name for r in mlflow.search_runs(experiment_names=["tiny"], output_format="list"))
    assert names == ["best", "best-superseded", "trial-0", "trial-1"]
    assert len(scalars(board / "best", "test/accuracy")) == 1


@pytest.mark.parametrize("key, package", [("mlflow", "mlflow"), ("tensorboard", "tensorboard")])
def test_a_tracker_that_is_not_installed_is_one_line_before_anything_runs(
    key, package, study_file, cli, tmp_path, monkeypatch
):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == package else real(name, *a))
    path = study_file(tracking={key: True})
    with pytest.raises(ConfigError, match=rf"\[tracking\] {key} = true .* pip install 'autoft\[{key}\]'"):
        load_study(path)
    result = cli("study", "run", path)
    assert result.code == 2
    assert result.err.strip().splitlines() == [
        f"error: {path}: [tracking] {key} = true needs the {package} "
        f"package, which is not installed; pip install 'autoft[{key}]'"
    ]
    assert not (tmp_path / "runs").exists()


def test_the_tracking_table_is_checked_like_the_others(study_file):
    with pytest.raises(ConfigError, match=r"\[tracking\]: unknown key 'mlfow'; valid keys: mlflow, mlflow_exp"):
        load_study(study_file(tracking={"mlfow": True}))
    with pytest.raises(ConfigError, match=r"\[tracking\] mlflow"):
        load_study(study_file(tracking={"mlflow": "yes"}))
    config, _ = load_study(study_file())
    assert not config.tracking.mlflow and not config.tracking.tensorboard


RECORD = {"trial": 0, "state": "complete", "strategy": "full", "params": {"learning_rate": 0.01}, "reason": ""}
HISTORY = [{"index": 0, "step": 5, "epoch": 0.5, "train_loss": 0.7, "accuracy": 0.6}]


def test_trackers_do_nothing_unless_the_study_switches_them_on(study_file, tmp_path):
    config, registry = load_study(study_file())
    registry.hook.trial_finished(study_name="tiny", record=RECORD, history=HISTORY, config=config)
    registry.hook.study_finished(study_name="tiny", run_dir=str(config.run_dir), best=None, config=config)
    assert not (tmp_path / "runs").exists()


@needs_both
def test_a_tracker_that_fails_warns_once_and_the_study_goes_on(study_file, tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("MLFLOW_ALLOW_FILE_STORE", raising=False)
    # a ./mlruns file store: MLflow 3 refuses it, as it would an unreachable server
    tracking = {"mlflow": True, "tensorboard": True, "mlflow_tracking_uri": (tmp_path / "mlruns").as_uri()}
    config, registry = load_study(study_file(tracking=tracking))
    for number in (0, 1):
        record = {**RECORD, "trial": number}
        registry.hook.trial_finished(study_name="tiny", record=record, history=HISTORY, config=config)
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("warning: MLflow tracking failed (trial 0: ")
    assert lines[0].endswith("no more MLflow tracking in this run, the study goes on")
    board = config.run_dir / "tensorboard"
    assert [s for s, _ in scalars(board / "trial-1", "validation/accuracy")] == [5]  # the other tracker goes on
