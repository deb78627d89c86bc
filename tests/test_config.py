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
    path = study_file("my_study.toml", study={"name": ""})
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
        ({"bogus": {}}, [], "unknown table [bogus]; valid tables: study, model, dataset"),
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
        ({"search": {"pruner": "asha"}}, [], "[search] pruner: 'asha' is not one of 'median', 'hyperband', 'none'"),
        ({"space": {"learning_rate": {"low": 1e-2, "high": 1e-4}}}, [], "low (0.01) must be below high (0.0001)"),
        ({"space": {"epochs": 0}}, [], "[space] epochs: 0 is out of range; must be at least 1"),
        ({"strategies": {"lora": {"rank": 8}}}, [], "[strategies.lora]: unknown key 'rank'; valid keys: alpha"),
        ({"study": {"storage": "notaurl"}}, [], "storage 'notaurl' is not a storage URL"),
        ({"study": {"name": "a/b"}}, [], "[study] name 'a/b' must be a plain folder name"),
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
