"""The model as a searched parameter: [model] name = [...] or [models.<alias>] tables, offline, tiny models of
three architectures (and the packaged MiniLM's settings, checked without training it)."""

from __future__ import annotations

import json

import pytest
from conftest import tiny_study

from autoft.config import load_study
from autoft.errors import ConfigError
from autoft.testing import write_study


def test_a_study_searches_models_each_with_its_tokens_and_saves_the_winner(
    cli, tmp_path, tiny_bert, tiny_distilbert, tiny_roberta, reviews_csv
):
    paths = {"bert": tiny_bert, "distilbert": tiny_distilbert, "roberta": tiny_roberta}
    tables = tiny_study(tmp_path, tiny_bert, reviews_csv, search={"n_trials": 4, "startup_trials": 4})
    del tables["model"]
    tables["models"] = {alias: {"name": str(path), "max_length": 32} for alias, path in paths.items()}
    tables["models"]["roberta"]["max_length"] = 24
    tables["space"]["epochs"] = 2
    study = write_study(tmp_path / "models.toml", tables)
    result = cli("study", "run", study, "--no-progress")
    assert result.code == 0, result.err

    run = tmp_path / "runs" / "tiny"
    board = json.loads((run / "leaderboard.json").read_text())
    tried = {row["model"] for row in board["trials"]}
    assert tried <= set(paths) and len(tried) >= 2  # the sampler chose among the models
    assert all("model" not in row["params"] for row in board["trials"])  # a column of its own
    assert "| model |" in (run / "leaderboard.md").read_text()
    assert "model," in (run / "leaderboard.csv").read_text().splitlines()[0]
    # tokens per (tokenizer, max_length): the tiny models share a vocabulary, so BERT and DistilBERT at 32
    # share one cache and RoBERTa at 24 has its own
    assert len(list((run / "cache").glob("tokens-*"))) == 2

    best_row = next(row for row in board["trials"] if row["rank"] == 1)
    best = run / "best"
    assert json.loads((best / "trial.json").read_text())["config"]["model"] == best_row["model"]
    saved = json.loads((best / "config.json").read_text())
    winner = json.loads((paths[best_row["model"]] / "config.json").read_text())
    assert saved["model_type"] == winner["model_type"]  # best/ holds the winning architecture
    width = 24 if best_row["model"] == "roberta" else 32
    assert f"max_length = {width}" in (best / "study.toml").read_text()  # its own [model], no candidates
    assert "[models" not in (best / "study.toml").read_text()

    report = (run / "report.md").read_text()
    assert "## Models" in report and all(alias in report for alias in tried)
    assert cli("predict", best, "a great film").code == 0


def test_models_tables_give_each_model_its_settings_and_space(tmp_path, tiny_bert, tiny_roberta, reviews_csv):
    tables = tiny_study(tmp_path, tiny_bert, reviews_csv)
    del tables["model"]
    tables["models"] = {
        "bert": {"name": str(tiny_bert), "max_length": 24, "learning_rate": {"low": 1e-3, "high": 2e-3}},
        "roberta": {"name": str(tiny_roberta)},
    }
    config, registry = load_study(write_study(tmp_path / "s.toml", tables))
    assert config.searches_models and list(config.models) == ["bert", "roberta"]
    assert config.for_model("bert").model.max_length == 24
    assert config.for_model("roberta").model.max_length == 128  # [model]'s default

    from autoft.space import SearchSpace, TrialConfig

    class Fixed:
        """An Optuna-style trial that picks the first choice and the low end of a range."""

        def __init__(self, model):
            self.model, self.asked = model, []

        def suggest_categorical(self, name, choices):
            self.asked.append(name)
            return self.model if name == "model" else choices[0]

        def suggest_float(self, name, low, high, log=False, step=None):
            self.asked.append(name)
            return low

        def suggest_int(self, name, low, high, log=False, step=1):
            self.asked.append(name)
            return low

    space = SearchSpace(config, registry)
    trial = Fixed("bert")
    chosen = space.suggest(trial)
    assert chosen.model == "bert" and chosen.hp.learning_rate == 1e-3 and "bert.learning_rate" in trial.asked
    trial = Fixed("roberta")
    assert space.suggest(trial).hp.learning_rate == 5e-3 and "learning_rate" in trial.asked  # [space]'s range
    again = TrialConfig.from_dict(chosen.to_dict(), registry)
    assert again == chosen
    assert ("model", "bert | roberta") in space.rows()


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda t: t["model"].update(name=[]), "[model] name: an empty list"),
        (lambda t: t["model"].update(name=["a", "a"]), "lists 'a' twice"),
        (lambda t: t["model"].update(name=["a", 3]), "is not a model name"),
        (lambda t: t.update(models={"x": {"name": "minilm"}}), "[model] name and [models] both"),
        (lambda t: t.update(models={}), "[models] needs one"),
        (lambda t: (t["model"].pop("name"), t.update(models={"x": {"max_length": [32, 64]}})), "is fixed per model"),
        (
            lambda t: (
                t["model"].pop("name"),
                t.update(
                    models={"a": {"name": "minilm", "epochs": {"low": 1, "high": 2}}},
                    strategies={"full": {"epochs": 2}},
                ),
            ),
            "both override epochs",
        ),
        (lambda t: (t["model"].pop("name"), t.update(models={"full": {"name": "minilm", "epochs": 2}})), "a strategy"),
    ],
)
def test_bad_model_lists_are_one_line_errors(tmp_path, tiny_bert, reviews_csv, change, message):
    tables = tiny_study(tmp_path, tiny_bert, reviews_csv)
    change(tables)
    with pytest.raises(ConfigError) as err:
        load_study(write_study(tmp_path / "bad.toml", tables))
    assert message in str(err.value) and "\n" not in str(err.value)


def test_a_candidate_that_is_not_a_model_stops_the_study_before_any_trial(cli, tmp_path, tiny_bert, reviews_csv):
    not_a_model = tmp_path / "notes"
    not_a_model.mkdir()
    (not_a_model / "readme.txt").write_text("no model here")
    tables = tiny_study(tmp_path, tiny_bert, reviews_csv)
    tables["model"]["name"] = [str(tiny_bert), str(not_a_model)]
    result = cli("study", "run", write_study(tmp_path / "s.toml", tables))
    assert result.code == 2
    assert "has no config.json" in result.err and str(not_a_model) in result.err
    assert not (tmp_path / "runs" / "tiny" / "study.db").exists()


def test_the_candidate_list_is_part_of_the_studys_identity(cli, tmp_path, tiny_bert, tiny_distilbert, reviews_csv):
    tables = tiny_study(tmp_path, tiny_bert, reviews_csv, search={"n_trials": 1})
    tables["model"]["name"] = [str(tiny_bert), str(tiny_distilbert)]
    tables["space"]["epochs"] = 1
    assert cli("study", "run", write_study(tmp_path / "s.toml", tables), "--no-progress").code == 0
    tables["model"]["name"] = [str(tiny_bert)]
    tables["search"]["n_trials"] = 2
    result = cli("study", "run", write_study(tmp_path / "s.toml", tables), "--no-progress")
    assert result.code == 2 and "was created with models" in result.err


def test_the_packaged_minilm_is_a_candidate_by_its_short_name(cli, tmp_path, tiny_bert, reviews_csv):
    tables = tiny_study(tmp_path, tiny_bert, reviews_csv)
    tables["model"]["name"] = ["minilm", str(tiny_bert)]
    study = write_study(tmp_path / "s.toml", tables)
    config, _ = load_study(study)
    from autoft.workbench import model_ref

    assert model_ref(config.for_model("minilm")).path.endswith("model")  # the package's folder, offline
    assert config.for_model(str(tiny_bert)).model.name == str(tiny_bert)
    result = cli("study", "check", study)  # both models' tokenizers and weightless models, checked
    assert result.code == 0, result.err
    assert f"models minilm, {tiny_bert}" in " ".join(result.out.split())


def test_workers_keep_the_models_they_hold(tiny_bert):
    """A trial goes to a free worker that already holds its model; else to the one holding the fewest."""
    from autoft.workers import Worker, WorkerPool

    class Bench:
        alias = "first"

    pool = WorkerPool(Bench(), display=None)
    a, b, c = Worker(), Worker(), Worker()
    a.held, b.held, c.held = {"x", "y"}, {"y"}, set()
    assert pool.pick([a, b, c], "first") is a  # every worker holds the first model
    assert pool.pick([a, b, c], "x") is a
    assert pool.pick([b, c], "x") is c  # nobody holds it: the worker with the fewest models loads it
    assert pool.pick([a, b, c], "y") in (a, b)


def test_a_models_class_weights_are_checked_against_the_labels(cli, tmp_path, tiny_bert, reviews_csv):
    tables = tiny_study(tmp_path, tiny_bert, reviews_csv)
    del tables["model"]
    tables["models"] = {"bert": {"name": str(tiny_bert), "class_weights": {"nope": 2.0}}, "other": {"name": "minilm"}}
    result = cli("study", "check", write_study(tmp_path / "s.toml", tables))
    assert result.code == 2 and "[models.bert] class_weights names 'nope'" in result.err
    assert len(result.err.strip().splitlines()) == 1
