"""The Ray Tune backend on a local Ray (CPU): the same study file, the same outputs as under Optuna."""

import json

import optuna
import pytest
from conftest import tiny_study

from autoft.testing import write_study

pytest.importorskip("ray.tune", reason="the ray extra is not installed (pip install -e '.[ray]')")


def test_a_study_runs_under_ray_tune_and_writes_the_same_outputs(
    cli, tmp_path, tiny_bert, tiny_distilbert, reviews_csv
):
    models = [str(tiny_bert), str(tiny_distilbert)]  # the model searched too: each trial's own tokens travel
    tables = tiny_study(
        tmp_path,
        tiny_bert,
        reviews_csv,
        search={"backend": "ray", "n_trials": 3, "pruner": "asha", "ray": {"cpus_per_trial": 1, "scheduler": "asha"}},
        train={"rung_validation_rows": 16, "rung_min_samples": 1},
    )
    tables["model"]["name"] = models
    path = write_study(tmp_path / "study.toml", tables)
    result = cli("study", "run", path, "--no-progress")
    assert result.code == 0, result.err
    run_dir = tmp_path / "runs" / "tiny"
    study = optuna.load_study(study_name="tiny", storage=f"sqlite:///{run_dir / 'study.db'}")
    assert len(study.trials) == 3 and all(t.state.is_finished() for t in study.trials)
    complete = [t for t in study.trials if t.state.name == "COMPLETE"]
    assert complete
    for t in complete:
        assert {"strategy", "trainable_params", "samples_per_second", "config"} <= set(t.user_attrs)
        # its last evaluation (4 epochs, or fewer when it stopped early) came with its outcome
        assert max(t.intermediate_values) == round(t.user_attrs["epochs_trained"] * 1000)
    for t in study.trials:  # ASHA met every trial at the study's rungs, from an eighth of an epoch
        assert min(t.intermediate_values) == 125
    board = json.loads((run_dir / "leaderboard.json").read_text())
    assert {r["trial"] for r in board["trials"]} == {0, 1, 2}
    assert {r["model"] for r in board["trials"]} == set(models)  # both, with the study's seed
    winner = next(r["model"] for r in board["trials"] if r["rank"] == 1)
    assert json.loads((run_dir / "best" / "trial.json").read_text())["config"]["model"] == winner
    metrics = json.loads((run_dir / "best" / "metrics.json").read_text())
    assert metrics["trial"] == study.best_trial.number
    assert (run_dir / "best" / "model.safetensors").is_file() and (run_dir / "report.html").is_file()
    assert not (run_dir / "ray").exists()  # Ray's own trial folders are cleaned up

    # the same study resumes under the Optuna backend: one storage, either backend
    more = cli("study", "run", path, "--set", 'search.backend="optuna"', "--n-trials", "4", "--no-progress")
    assert more.code == 0, more.err
    assert len(optuna.load_study(study_name="tiny", storage=f"sqlite:///{run_dir / 'study.db'}").trials) == 4
