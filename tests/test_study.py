"""A study end to end, as a user runs it: search, leaderboard, best model, resume, predict."""

import json

import optuna
import pytest

from autoft.config import load_study
from autoft.saved import load_trained


def trials_of(run_dir, name="tiny"):
    return optuna.load_study(study_name=name, storage=f"sqlite:///{run_dir / 'study.db'}").trials


def test_a_study_runs_writes_its_leaderboard_and_saves_the_best_model(study_file, cli, tmp_path):
    # two trials at once (cpu_trials = 2): the study's end is the same as one at a time
    path = study_file(strategies={"full": {}, "lora": {"r": [2, 4]}}, search={"cpu_trials": 2})
    result = cli("study", "run", path, "--no-progress")
    assert result.code == 0, result.err
    run_dir = tmp_path / "runs" / "tiny"

    board = json.loads((run_dir / "leaderboard.json").read_text())
    assert board["objective"] == "accuracy"
    assert [r["state"] for r in board["trials"]] == ["complete"] * 3
    values = [r["accuracy"] for r in board["trials"]]
    assert values == sorted(values, reverse=True)
    assert (run_dir / "leaderboard.csv").read_text().startswith("rank,trial,state,accuracy,strategy")
    assert "| rank | trial | state | accuracy |" in (run_dir / "leaderboard.md").read_text()

    best = run_dir / "best"
    metrics = json.loads((best / "metrics.json").read_text())
    assert metrics["trial"] == board["trials"][0]["trial"]
    assert metrics["validation"]["accuracy"] == pytest.approx(values[0])
    assert set(metrics["test"]) >= {"accuracy", "f1_macro", "f1_weighted", "precision_macro", "recall_macro", "mcc"}
    assert metrics["test"]["accuracy"] > metrics["majority_baseline"]["accuracy"]
    for name in ("model.safetensors", "config.json", "tokenizer.json", "study.toml", "trial.json"):
        assert (best / name).is_file(), name
    assert not list(best.glob("*.bin"))
    model, tokenizer = load_trained(best)
    assert model.config.id2label == {0: "neg", 1: "pos"}
    assert "best trial" in result.out and "always predicting the training majority" in result.out
    assert "search space: strategy full | lora · " in result.out
    assert "learning_rate 0.005..0.015, log" in result.out
    assert "lora.r 2 | 4" in result.out

    trials = trials_of(run_dir)
    assert trials[1].datetime_start < trials[0].datetime_complete  # the second trial did not wait for the first
    attrs = trials[0].user_attrs
    for key in ("strategy", "model", "trainable_params", "train_seconds", "samples_per_second", "peak_memory_mb"):
        assert key in attrs, key
    checkpoints = list((run_dir / "checkpoints").glob("trial-*"))
    assert [c.name for c in checkpoints] == [f"trial-{metrics['trial']}"]


def test_running_again_resumes_and_only_runs_the_missing_trials(study_file, cli, tmp_path):
    path = study_file(search={"n_trials": 2, "isolation": "none"})  # trials here: resuming is the study's job
    assert cli("study", "run", path, "--no-progress").code == 0
    run_dir = tmp_path / "runs" / "tiny"
    first = json.loads((run_dir / "best" / "metrics.json").read_text())
    assert len(trials_of(run_dir)) == 2

    again = cli("study", "run", path, "--no-progress")
    assert again.code == 0 and "2 of 2 trials finished; 0 to run" in again.out
    assert len(trials_of(run_dir)) == 2
    assert json.loads((run_dir / "best" / "metrics.json").read_text()) == first

    more = cli("study", "run", path, "--n-trials", "3", "--no-progress")
    assert more.code == 0 and "2 of 3 trials finished; 1 to run" in more.out
    assert len(trials_of(run_dir)) == 3


def test_a_best_model_missing_on_this_machine_is_retrained_and_saved(study_file, cli, tmp_path):
    # what a study sees when its best trial ran on a worker elsewhere: the score, not the weights
    import shutil

    path = study_file(search={"n_trials": 1, "isolation": "none"})
    assert cli("study", "run", path, "--no-progress").code == 0
    run_dir = tmp_path / "runs" / "tiny"
    first = json.loads((run_dir / "best" / "metrics.json").read_text())
    shutil.rmtree(run_dir / "checkpoints")
    shutil.rmtree(run_dir / "best")

    again = cli("study", "run", path, "--no-progress")
    assert again.code == 0, again.err
    assert f"retraining trial {first['trial']}" in again.out
    metrics = json.loads((run_dir / "best" / "metrics.json").read_text())
    assert metrics["trial"] == first["trial"]
    assert metrics["test"]["accuracy"] == pytest.approx(first["test"]["accuracy"])  # seeded: the same model


def test_trials_in_one_process_give_the_same_results(study_file, cli, tmp_path):
    """isolation = "none" runs trials in the study process, "worker" one after another in the worker process;
    seeds make them agree with a process per trial (the CPU's default), the second trial included."""
    values = {}
    for isolation in ("process", "none", "worker"):
        search = {"n_trials": 2, "isolation": isolation}
        path = study_file(f"{isolation}.toml", study={"name": isolation}, search=search, space={"epochs": 2})
        assert cli("study", "run", path, "--no-progress").code == 0
        trials = trials_of(tmp_path / "runs" / isolation, isolation)
        assert [t.state.name for t in trials] == ["COMPLETE", "COMPLETE"]
        values[isolation] = [(t.params, [e["train_loss"] for e in t.user_attrs["history"]]) for t in trials]
    for isolation in ("none", "worker"):  # the same configurations, and the same training, to the loss
        assert [params for params, _ in values[isolation]] == [params for params, _ in values["process"]]
        for (_, losses), (_, expected) in zip(values[isolation], values["process"], strict=True):
            assert losses == pytest.approx(expected, rel=1e-3, abs=1e-5)  # float sums differ in the last digits


def test_the_leaderboard_command(finished_run, cli, tmp_path):
    result = cli("study", "leaderboard", finished_run.run)
    assert result.code == 0 and "complete" in result.out and "accuracy" in result.out
    missing = cli("study", "leaderboard", tmp_path / "nowhere")
    assert missing.code == 2 and "no leaderboard.json" in missing.err
    # a folder near a run folder: the message names the run folder to give
    for near, hint in (
        (finished_run.best, f"inside the run folder '{finished_run.run}'"),
        (finished_run.run.parent, f"such as '{finished_run.run}'"),
    ):
        for command in (("study", "leaderboard"), ("dashboard",)):
            result = cli(*command, near)
            assert result.code == 2 and hint in result.err and result.err.count("\n") == 1, result.err


def test_predict_labels_texts_and_files(finished_run, cli, tmp_path):
    best = finished_run.best
    texts = tmp_path / "texts.txt"
    texts.write_text("the product was awful and broken\n\nthis item is wonderful\n")
    result = cli("predict", best, "really great seller", "--file", texts)
    assert result.code == 0, result.err
    assert "p(neg)" in result.out and "p(pos)" in result.out
    assert "really great seller" in result.out and "wonderful" in result.out
    assert cli("predict", best).code == 2


def test_a_resumed_study_must_use_the_same_data(study_file, cli, tmp_path, reviews_csv):
    path = study_file(search={"n_trials": 1, "isolation": "none"})
    assert cli("study", "run", path, "--no-progress").code == 0
    reviews_csv.write_text(reviews_csv.read_text().replace("great", "fine"))
    result = cli("study", "run", path, "--no-progress")
    assert result.code == 2
    assert "was created with dataset" in result.err and "use another [study] name" in result.err


def test_a_resumed_study_must_use_the_same_weights_and_the_check_says_so_first(study_file, cli, tmp_path, tiny_bert):
    """A local model folder trained again between runs: its trials would be ranked with the earlier weights'."""
    import shutil

    from safetensors.torch import load_file, save_file

    model = shutil.copytree(tiny_bert, tmp_path / "model")
    path = study_file(model=model, search={"n_trials": 1, "isolation": "none"})
    assert cli("study", "run", path, "--no-progress").code == 0
    run = tmp_path / "runs" / "tiny"
    before = {p: p.read_bytes() for p in run.rglob("*") if p.is_file()}
    earlier = (model / "model.safetensors").read_bytes()
    weights = load_file(model / "model.safetensors")
    save_file({k: v + 0.01 if v.is_floating_point() else v for k, v in weights.items()}, model / "model.safetensors")
    for command in ("check", "run"):
        result = cli("study", command, path, *(["--n-trials", "2", "--no-progress"] if command == "run" else []))
        assert result.code == 2 and result.err.count("\n") == 1, result.err
        assert "the weights in the model folder changed since study 'tiny'" in result.err
    assert {p: p.read_bytes() for p in run.rglob("*") if p.is_file()} == before
    (model / "model.safetensors").write_bytes(earlier)
    assert cli("study", "run", path, "--n-trials", "2", "--no-progress").code == 0


def test_lora_on_distilbert_end_to_end(study_file, tiny_distilbert, cli, tmp_path):
    path = study_file(model=tiny_distilbert, strategies={"lora": {"r": 4}}, search={"n_trials": 1, "isolation": "none"})
    assert cli("study", "run", path, "--no-progress").code == 0
    best = tmp_path / "runs" / "tiny" / "best"
    assert (best / "adapter" / "adapter_model.safetensors").is_file()
    model, _ = load_trained(best)
    assert type(model).__name__ == "DistilBertForSequenceClassification"
    assert not any("lora" in n for n, _ in model.named_parameters())


def test_the_objective_drives_the_best_trial(study_file):
    config, _ = load_study(study_file(search={"objective": "f1_macro"}))
    assert config.search.objective == "f1_macro"
