"""Plugins are found through entry points and through local files a study names, and then used."""

import textwrap

import optuna
import pytest

from autoft.config import load_study
from autoft.errors import ConfigError, PluginError
from autoft.plugins import load_plugins

PLUGIN_SOURCE = '''
from dataclasses import dataclass
import autoft
from autoft import hookimpl


@dataclass(frozen=True)
class CountingOptions:
    rows: int = autoft.option(120, "rows to make")


class Counting(autoft.Dataset):
    """Texts that say a number; the label is whether it is even."""

    name = "{name}"
    Options = CountingOptions

    def load(self, options, ctx):
        words = ["nil", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
        texts = [f"number {{words[i % 10]}} item {{i}}" for i in range(options.rows)]
        labels = ["even" if i % 2 == 0 else "odd" for i in range(options.rows)]
        return autoft.RawDataset({{"train": autoft.Split(texts, labels)}}, source="counting")


@hookimpl
def register_datasets(register):
    register(Counting)


@hookimpl
def register_metrics(register):
    register(autoft.Metric("{name}_error", lambda y, p, _: float((y != p).mean()), greater_is_better=False))
'''


def install_entry_point_package(root, name="countplug"):
    """A plugin package made visible through a .dist-info folder with an autoft entry point."""
    root.mkdir(parents=True, exist_ok=True)
    (root / f"{name}.py").write_text(PLUGIN_SOURCE.format(name=name))
    dist = root / f"{name}-1.2.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.2\n")
    (dist / "entry_points.txt").write_text(f"[autoft]\n{name} = {name}\n")


def test_builtins_register_through_entry_points():
    registry = load_plugins()
    assert {"files", "hub", "quickstart"} <= set(registry.datasets)
    assert {"full", "head", "lora"} <= set(registry.strategies)
    assert {"accuracy", "f1_macro", "mcc"} <= set(registry.metrics)
    assert registry.datasets["files"].origin.startswith("built-in (entry point autoft_plugins.datasets.files)")


def test_an_entry_point_plugin_is_found_and_used_by_a_study(tmp_path, monkeypatch, study_file, cli):
    install_entry_point_package(tmp_path / "site")
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    registry = load_plugins()
    entry = registry.datasets["countplug"]
    assert entry.origin == "countplug 1.2 (entry point countplug)"
    path = study_file(dataset={"type": "countplug", "rows": 100}, search={"objective": "countplug_error"})
    config, _ = load_study(path)
    assert config.search.direction == "minimize"
    result = cli("study", "run", path, "--n-trials", "2", "--no-progress")
    assert result.code == 0, result.err
    assert "countplug_error" in (tmp_path / "runs" / "tiny" / "leaderboard.csv").read_text()
    listing = cli("plugins", "list")
    assert "countplug" in listing.out and "1.2" in listing.out


def test_autoft_plugins_variable_limits_third_party_plugins(tmp_path, monkeypatch):
    install_entry_point_package(tmp_path / "site")
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    monkeypatch.setenv("AUTOFT_PLUGINS", "")
    registry = load_plugins()
    assert "countplug" not in registry.datasets and "files" in registry.datasets


def test_a_local_plugin_file_named_by_a_study(tmp_path, study_file, cli):
    (tmp_path / "my_plugin.py").write_text(PLUGIN_SOURCE.format(name="local_counting"))
    path = study_file(study={"plugins": ["my_plugin.py"]}, dataset={"type": "local_counting", "rows": 80})
    config, registry = load_study(path)
    assert registry.datasets["local_counting"].origin == str(tmp_path / "my_plugin.py")
    result = cli("study", "run", path, "--n-trials", "1", "--no-progress")
    assert result.code == 0, result.err
    assert (tmp_path / "runs" / "tiny" / "best" / "model.safetensors").is_file()
    assert "local_counting" in cli("plugins", "list", "--study", path).out


def test_local_plugin_files_are_not_loaded_unless_named(tmp_path):
    (tmp_path / "stray.py").write_text(PLUGIN_SOURCE.format(name="stray"))
    assert "stray" not in load_plugins().datasets


@pytest.mark.parametrize(
    "source, message",
    [
        ("raise RuntimeError('boom')", "failed to load: RuntimeError: boom"),
        (
            "from autoft import hookimpl\n@hookimpl\ndef register_datasets(register):\n    register(42)",
            "registers 42 as a dataset; expected an autoft.Dataset subclass",
        ),
        (
            "import autoft\nfrom autoft import hookimpl\nclass D(autoft.Dataset):\n    name = 'Bad Name'\n"
            "@hookimpl\ndef register_datasets(register):\n    register(D)",
            "names are lowercase letters",
        ),
        (
            "import autoft\nfrom autoft import hookimpl\nclass D(autoft.Dataset):\n    name = 'files'\n"
            "@hookimpl\ndef register_datasets(register):\n    register(D)",
            "dataset 'files' is registered twice",
        ),
        ("import sys\nsys.exit(3)", "called sys.exit(3) while loading"),  # it ended the study with exit 3
        (  # pluggy refused it in a message of three lines (exit 1)
            "from autoft import hookimpl\n@hookimpl\ndef register_metrics(regster):\n    pass",
            "register_metrics(regster) asks for 'regster', which the hook does not give; it gives register",
        ),
        (  # pluggy never called it, without a word
            "from autoft import hookimpl\n@hookimpl\ndef register_metric(register):\n    pass",
            "register_metric is not an autoft hook; the hooks are register_backends, register_datasets,",
        ),
        (
            "import autoft\nfrom autoft import hookimpl\n@hookimpl\ndef register_metrics(register):\n"
            "    register('mine', autoft.Metric('mine', lambda y, p, proba: 0.0))",
            "register_metrics's register() takes one metric, which carries its own name; it was given 2 arguments",
        ),
    ],
)
def test_broken_plugins_are_reported_with_their_name(tmp_path, source, message):
    path = tmp_path / "broken.py"
    path.write_text(textwrap.dedent(source))
    with pytest.raises(PluginError) as err:
        load_plugins([path])
    assert message in str(err.value) and "\n" not in str(err.value)
    assert "broken" in str(err.value)


def test_a_missing_plugin_file_is_a_study_error(study_file):
    path = study_file(study={"plugins": ["nowhere.py"]})
    with pytest.raises(PluginError, match=r"\[study\] plugins: plugin file '.*nowhere.py' does not exist"):
        load_study(path)


def test_unknown_names_list_the_available_plugins(study_file):
    with pytest.raises(ConfigError, match="unknown strategy 'qlora'; available: body, full, head, lora, two_stage"):
        load_study(study_file(strategies={"qlora": {}}))


@pytest.mark.parametrize(
    "body, message",
    [
        ("return None", "the plugin's load() gave NoneType, not an autoft.RawDataset"),
        (
            "return {'train': (['a b'] * 9, ['x', 'y', 'z'] * 3)}",
            "the plugin's load() gave dict, not an autoft.RawDataset",
        ),
        ("return len(5)", "TypeError: object of type 'int' has no len()"),
        ("raise RuntimeError('the service is down')", "RuntimeError: the service is down"),
        ("raise SystemExit('no token for the service')", "SystemExit: no token for the service"),
    ],
)
def test_a_dataset_plugin_that_fails_or_returns_no_dataset_is_one_line(tmp_path, study_file, cli, body, message):
    source = PLUGIN_SOURCE.format(name="wayward").replace(
        'return autoft.RawDataset({"train": autoft.Split(texts, labels)}, source="counting")', body
    )
    assert body in source
    (tmp_path / "wayward.py").write_text(source)
    path = study_file(study={"plugins": ["wayward.py"]}, dataset={"type": "wayward"})
    result = cli("study", "check", path)
    assert result.code == 2 and result.err.count("\n") == 1, result.err
    assert f"[dataset] (wayward): {message}" in result.err


@pytest.mark.parametrize(
    "fn, message",
    [
        ("lambda y, p, proba: 'high'", "metric 'odd' returned 'high', not a number"),
        ("lambda y, p, proba: 1 / 0", "metric 'odd' failed: ZeroDivisionError: division by zero"),
    ],
)
def test_a_metric_that_fails_or_gives_no_number_is_named_before_the_first_trial(tmp_path, study_file, cli, fn, message):
    """It failed every trial, as 'ValueError: could not convert string to float', and stopped the study after
    three of them."""
    source = (
        f"import autoft\n@autoft.hookimpl\ndef register_metrics(register):\n    register(autoft.Metric('odd', {fn}))\n"
    )
    (tmp_path / "odd.py").write_text(source)
    path = study_file(study={"plugins": ["odd.py"]})
    result = cli("study", "run", path, "--no-progress")
    assert result.code == 2 and result.err.count("\n") == 1, result.err
    assert f"{message} (on the validation labels predicted right)" in result.err
    assert not (tmp_path / "runs").exists()


PICKY_AND_HOOKED = """
import os
import autoft
import numpy as np


def picky(y, p, proba):  # defined for the pre-flight check's predictions only: a trained model's never hit 0.9
    return 1.0 / float((proba.max(axis=1) == np.float32(0.9)).all())


@autoft.hookimpl
def register_metrics(register):
    register(autoft.Metric("picky", picky))


@autoft.hookimpl
def trial_finished(record):
    if os.path.exists(os.environ["AUTOFT_TEST_WEBHOOK_DOWN"]):
        raise RuntimeError("the webhook is down")
"""


def test_a_failing_metric_and_a_failing_event_hook_are_named_and_lose_nothing(tmp_path, study_file, cli, monkeypatch):
    """A metric that fails in a trial fails it with the metric's name; an event hook that raises stops the
    study in one line naming its plugin, with the trial recorded, and the same command goes on once it is
    fixed."""
    (tmp_path / "hooked.py").write_text(PICKY_AND_HOOKED)
    down = tmp_path / "down"
    down.touch()
    monkeypatch.setenv("AUTOFT_TEST_WEBHOOK_DOWN", str(down))
    path = study_file(study={"plugins": ["hooked.py"]}, search={"n_trials": 2}, space={"epochs": 1})
    result = cli("study", "run", path, "--no-progress")
    assert result.code == 2 and result.err.count("\n") == 1, result.err
    assert "failed in trial_finished: RuntimeError: the webhook is down; the study stopped there" in result.err
    assert "hooked.py" in result.err
    (trial,) = trials(tmp_path)
    assert trial.state.name == "FAIL"
    assert trial.user_attrs["reason"] == "metric 'picky' failed: ZeroDivisionError: float division by zero"

    down.unlink()
    result = cli("study", "run", path, "--no-progress")
    assert result.code == 2 and "the last said: metric 'picky' failed" in result.err  # it fails every trial
    assert "webhook" not in result.err
    later = trials(tmp_path)
    assert len(later) > 1 and later[0].user_attrs == trial.user_attrs


def trials(tmp_path):
    return optuna.load_study(study_name="tiny", storage=f"sqlite:///{tmp_path / 'runs' / 'tiny' / 'study.db'}").trials
