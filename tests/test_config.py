import json
import os
from pathlib import Path

import pytest

from autoft.config import load_study
from autoft.errors import ConfigError
from autoft.options import Choice, Range
from autoft.space import SearchSpace


def test_defaults_and_derived_values(study_file, tmp_path):
    config, registry = load_study(study_file())
    assert config.name == "tiny"
    assert config.search.direction == "maximize"  # accuracy: greater is better
    assert config.run_dir == tmp_path / "runs" / "tiny"
    assert config.storage_url == f"sqlite:///{tmp_path / 'runs' / 'tiny' / 'study.db'}"
    assert list(config.strategies) == ["full"]
    assert isinstance(config.space["learning_rate"], Range)


def test_study_name_defaults_to_the_file_name(study_file):
    path = study_file("my_study.toml", study=None)  # no [study] table, so no name
    assert load_study(path)[0].name == "my_study"


def test_direction_follows_a_lower_is_better_objective(study_file):
    config, _ = load_study(study_file(search={"objective": "log_loss"}))
    assert config.search.direction == "minimize"


def test_set_overrides_values_as_toml(study_file):
    config, _ = load_study(
        study_file(),
        ["search.n_trials=7", 'search.pruner="median"', "space.batch_size=[8, 16]", "model.name=some/model"],
    )
    assert config.search.n_trials == 7
    assert config.search.pruner == "median"
    assert config.space["batch_size"] == Choice((8, 16))
    assert config.model.name == "some/model"
    assert config.raw["search"]["n_trials"] == 7


def test_strategy_tables_split_options_from_space_overrides(study_file):
    config, _ = load_study(
        study_file(
            strategies={
                "full": {},
                "lora": {"r": [4, 8], "learning_rate": {"low": 1e-4, "high": 1e-2, "log": True}},
            }
        )
    )
    lora = config.strategies["lora"]
    assert lora.options == {"r": Choice((4, 8))}
    assert set(lora.overrides) == {"learning_rate"}


def test_search_space_samples_strategy_parameters_only_for_that_strategy(study_file):
    import optuna

    config, registry = load_study(study_file(strategies={"full": {}, "lora": {"r": [4, 8]}}))
    space = SearchSpace(config, registry)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    seen = set()
    for _ in range(12):
        trial = study.ask()
        tc = space.suggest(trial)
        seen.add(tc.strategy)
        assert ("lora.r" in trial.params) == (tc.strategy == "lora")
        if tc.strategy == "lora":
            assert tc.options.r in (4, 8)
        study.tell(trial, 0.5)
    assert seen == {"full", "lora"}


@pytest.mark.parametrize(
    "tables, overrides, message",
    [
        ({"bogus": {}}, [], "unknown table [bogus]; valid tables: study, model, models, dataset"),
        ({"dataset": None}, [], "missing table [dataset]"),
        ({"dataset": {"path": "x.csv"}}, [], '[dataset] needs type = "<dataset plugin>"; available: files'),
        (
            {"dataset": {"type": "nope"}},
            [],
            "[dataset] type: unknown dataset 'nope'; available: files, financial_phrasebank",
        ),
        (
            {"strategies": {"fancy": {}}},
            [],
            "[strategies]: unknown strategy 'fancy'; available: body, full, head, lora",
        ),
        ({"search": {"objective": "auc"}}, [], "[search] objective: unknown metric 'auc'; available: accuracy"),
        (
            {"search": {"pruner": "hyperopt"}},
            [],
            "[search] pruner: 'hyperopt' is not one of 'auto', 'sha', 'asha', 'median', 'hyperband', 'none'",
        ),
        ({"space": {"learning_rate": {"low": 1e-2, "high": 1e-4}}}, [], "low (0.01) must be below high (0.0001)"),
        ({"space": {"epochs": 0}}, [], "[space] epochs: 0 is out of range; must be at least 1"),
        ({"strategies": {"lora": {"rank": 8}}}, [], "[strategies.lora]: unknown key 'rank'; valid keys: alpha"),
        ({"study": {"storage": "notaurl"}}, [], "storage 'notaurl' is not a storage URL"),
        ({"study": {"name": "a/b"}}, [], "[study] name 'a/b' must be a plain folder name"),
        ({"study": {"name": ""}}, [], "[study] name is empty; give a name, or leave the key out"),
        ({}, ["search"], "--set 'search': expected key=value"),
        ({"dataset": {"type": "files", "path": "x.csv", "colour": 1}}, [], "[dataset]: unknown key 'colour'"),
    ],
)
def test_malformed_studies_fail_with_one_line(study_file, tables, overrides, message):
    with pytest.raises(ConfigError) as err:
        load_study(study_file(**tables), overrides)
    text = str(err.value)
    assert message in text
    assert "\n" not in text


def test_invalid_toml_names_the_file_and_line(tmp_path):
    path = tmp_path / "broken.toml"
    path.write_text("[study]\nname = \n")
    with pytest.raises(ConfigError, match=r"broken.toml: invalid TOML: .*line 2"):
        load_study(path)


def test_missing_study_file(tmp_path):
    with pytest.raises(ConfigError, match="study file '.*nope.toml' does not exist"):
        load_study(tmp_path / "nope.toml")


def test_a_study_file_saved_with_a_byte_order_mark_reads_the_same_and_utf16_is_named(study_file, tmp_path):
    """Windows editors start UTF-8 with a byte-order mark (tomllib calls it an invalid statement); PowerShell's
    ``>`` writes UTF-16, which is named for what it is."""
    path = study_file()
    text = path.read_text()
    (bom := tmp_path / "bom.toml").write_bytes(b"\xef\xbb\xbf" + text.encode())
    assert load_study(bom)[0].search == load_study(path)[0].search
    (wide := tmp_path / "wide.toml").write_text(text, encoding="utf-16")
    with pytest.raises(ConfigError, match="wide.toml: UTF-16 text .*; save the study file as UTF-8"):
        load_study(wide)


def test_a_folder_given_as_the_study_file_is_named_a_folder(tmp_path):
    with pytest.raises(ConfigError, match=f"study file '{tmp_path}' is a folder; give a study file,"):
        load_study(tmp_path)


@pytest.mark.parametrize(
    "tables, message",
    [
        ({"search": {"n_trials": True}}, "[search] n_trials: expected an integer, got true"),
        ({"search": {"n_trials": 2**70}}, "[search] n_trials: 1180591620717411303424 is too large"),
        ({"search": {"timeout": 10**400}}, "[search] timeout: 100000000000...(401 digits) is too large"),
        ({"study": {"seed": 2**33}}, "[study] seed: 8589934592 is out of range; must be at least 0 and at most"),
        ({"study": {"name": "a\nb"}}, "[study] name 'a\\nb' must be a plain folder name"),
        ({"study": {"output_dir": ""}}, "[study] output_dir is empty"),
        ({"study": {"plugins": [""]}}, "[study] plugins: an empty entry"),
        ({"study": {"storage": "sqlite://"}}, "is an in-memory database"),
        ({"model": {"name": ""}}, "[model] name is empty"),
        ({"model": {"name": "a\tb"}}, "[model] name 'a\\tb' has a line break or control character"),
        ({"space": {"batch_size": [16, 16]}}, "[space] batch_size: choice 16 is listed twice"),
        ({"space": {"epochs": {"choices": []}}}, "[space] epochs: a list of choices must not be empty"),
        ({"space": {"learning_rate": {"low": 0.1, "high": 0.2, "step": 0.5}}}, "step: 0.5 is more than high - low"),
        ({"space": {"class_weights": {"neg": -1.0}}}, "[space] class_weights.neg: -1.0 is out of range"),
        ({"space": {"class_weights": {}}}, "[space] class_weights: an empty table"),
        ({"strategies": {"full": {"class_weights": ["none", {"pos": 0.0}]}}}, "class_weights.pos: 0.0 is out of"),
        ({"search": {"gpus": []}}, "[search] gpus: an empty list"),
        ({"search": {"gpus": [1, 1]}}, "[search] gpus lists GPU 1 twice"),
        ({"search": {"gpus": [-2]}}, "[search] gpus: -2 is not a GPU index"),
        ({"search": {"optuna": "x"}}, "[search] optuna: expected a table of the optuna backend's settings"),
        ({"search": {"objective": "f1\nmacro"}}, "unknown metric 'f1\\nmacro'"),
        ({"train": {"device": "gpu0"}}, "[train] device: 'gpu0' is not a device; use auto, cpu, cuda, cuda:N or mps"),
        ({"search": {"direction": "x" * 500}}, "[search] direction: 'xxxxxxxx"),
    ],
)
def test_odd_values_name_the_key_and_what_is_valid(study_file, tables, message):
    model = tables.pop("model", {})  # study_file's own 'model' argument is the model folder
    with pytest.raises(ConfigError) as err:
        load_study(study_file(**tables), [f"model.{k}={json.dumps(v)}" for k, v in model.items()])
    text = str(err.value)
    assert message in text and text.isprintable() and len(text) < 400, text


def test_an_output_dir_this_user_cannot_write_in_is_named_before_anything_runs(study_file, tmp_path, monkeypatch):
    import autoft.config

    locked = tmp_path / "locked"
    locked.mkdir()
    real = os.access
    monkeypatch.setattr(autoft.config.os, "access", lambda p, mode: Path(p) != locked and real(p, mode))
    with pytest.raises(ConfigError, match=f"this user cannot write in '{locked}'; set output_dir to a folder"):
        load_study(study_file(study={"output_dir": str(locked / "runs")}))
    load_study(study_file(study={"output_dir": str(tmp_path / "open")}))


def test_a_file_where_a_folder_goes_and_the_reverse(study_file, tmp_path):
    afile, folder = tmp_path / "a-file.txt", tmp_path / "a-folder"
    afile.write_text("x")
    folder.mkdir()
    cases = [
        ({"model": {"name": str(afile)}}, f"[model] name: '{afile}' is a file, not a model folder"),
        ({"model": {"name": "a-file.txt"}}, "is a file, not a model folder"),  # relative to the study file
        ({"study": {"output_dir": str(afile)}}, "(output_dir) is a file, not a folder"),
        ({"study": {"output_dir": str(afile / "deeper")}}, "(a folder on its way) is a file, not a folder"),
        ({"study": {"plugins": [str(folder)]}}, f"[study] plugins: '{folder}' is a folder; list Python files"),
        ({"study": {"plugins": ["a-file.txt"]}}, "is not a .py file"),
    ]
    for tables, message in cases:
        model = tables.pop("model", {})
        with pytest.raises(ConfigError) as err:
            load_study(study_file(**tables), [f"model.{k}={json.dumps(v)}" for k, v in model.items()])
        assert message in str(err.value), str(err.value)
