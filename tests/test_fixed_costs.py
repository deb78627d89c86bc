"""What a study pays once, outside its trials: the command line's imports, and the best trial's test scores,
which the trial saves beside its model so the export reads them instead of scoring the split again."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest


def test_loading_the_plugins_imports_no_scikit_learn_pandas_or_scipy():
    """``autoft plugins list`` and ``--help`` stay quick: the heavy libraries load where they are used."""
    code = (
        "import sys; from autoft.plugins import load_plugins; load_plugins(); "
        "print(','.join(m for m in ('sklearn', 'pandas', 'scipy', 'matplotlib', 'optuna') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == ""


def test_a_study_reaches_its_workers_start_without_importing_torch(study_file):
    """The study process reads the study file, loads the data and makes the workers' recipe without torch, so
    the worker processes start (and import torch and transformers themselves) while it loads the tokenizer."""
    code = (
        "import sys; from autoft.config import load_study; import autoft.study, autoft.workers; "
        "from autoft.workbench import Workbench; "
        f"config, registry = load_study({str(study_file())!r}); Workbench.with_data(config, registry).spec(); "
        "print(','.join(m for m in ('torch', 'transformers') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == ""


def test_metrics_import_scikit_learn_when_first_computed():
    from autoft_plugins.metrics import METRICS

    scores = {
        m.name: m(np.array([0, 1, 1]), np.array([0, 1, 0]), np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4]]))
        for m in METRICS
        if "classification" in m.tasks
    }
    assert scores["accuracy"] == pytest.approx(2 / 3)
    assert scores["f1_macro"] == pytest.approx(2 / 3)


@pytest.fixture
def bench(study_file):
    from autoft.config import load_study
    from autoft.workbench import Workbench

    config, registry = load_study(study_file())
    bench = Workbench.load(config, registry)
    bench.tokenize(None)
    return bench


def test_a_saved_trial_brings_its_test_and_validation_scores(bench, tmp_path):
    from autoft.export import _proba
    from autoft.trial import PREDICTIONS, save_predictions, saved_predictions

    model = bench.base.fresh(0)
    save_predictions(bench, model, bench.config.train, tmp_path)
    for split in ("test", "validation"):
        saved = saved_predictions(tmp_path, bench, split)
        assert saved is not None and saved.shape == (len(bench.encoded[split]), len(bench.label_names))
        scored = _proba(model, bench, split, tmp_path / "elsewhere")  # no saved scores there: scored here
        np.testing.assert_allclose(saved, scored, atol=1e-5)
    assert saved_predictions(tmp_path, bench, "train") is None  # never saved

    # damaged scores are not read as scores: the export scores the split itself
    path = tmp_path / PREDICTIONS / "test.npy"
    data = bytearray(path.read_bytes())
    data[-8:] = np.array([0.25, 0.75], dtype=np.float32).tobytes()
    path.write_bytes(bytes(data))
    assert saved_predictions(tmp_path, bench, "test") is None
    (tmp_path / PREDICTIONS / "scored.json").write_text("{garbled")
    assert saved_predictions(tmp_path, bench, "validation") is None


def test_scores_saved_at_another_precision_are_not_used(bench, tmp_path):
    import dataclasses

    from autoft.trial import save_predictions, saved_predictions

    save_predictions(bench, bench.base.fresh(0), bench.config.train, tmp_path)
    assert saved_predictions(tmp_path, bench, "test") is not None
    train = dataclasses.replace(bench.config.train, precision="bf16")
    bench.config = dataclasses.replace(bench.config, train=train)
    assert saved_predictions(tmp_path, bench, "test") is None


def test_the_export_leaves_the_checkpoint_as_the_model_alone(finished_run):
    """best/ has no copy of the trial's scores, and the kept checkpoint holds only its model once exported."""
    assert not (finished_run.best / "predictions").exists()
    assert not list(finished_run.run.glob("checkpoints/trial-*/predictions"))


@pytest.mark.parametrize("strategy", ["full", "head", "two_stage"])
def test_a_trial_saves_the_validation_scores_its_best_evaluation_computed(bench, strategy, monkeypatch):
    """The validation split is not scored again to save a new best: its best evaluation's probabilities are
    kept, and they are what the saved model predicts (a head trial's came from the cached body's features)."""
    from autoft import trial as trial_module
    from autoft.checkpoints import CheckpointStore, KeepStore
    from autoft.export import _proba
    from autoft.saved import load_trained
    from autoft.settings import Hyperparams
    from autoft.space import TrialConfig

    scored = []
    predict = trial_module.predict_proba
    monkeypatch.setattr(
        trial_module, "predict_proba", lambda m, data, **k: scored.append(len(data)) or predict(m, data, **k)
    )
    options = bench.registry.strategy(strategy).Options()
    hp = Hyperparams(learning_rate=1e-2, epochs=3, batch_size=16)
    store = KeepStore(CheckpointStore(bench.config.run_dir, bench.config.objective))
    outcome = trial_module.run_trial(bench, 0, TrialConfig(strategy, options, hp), store=store)
    assert outcome.state == "complete" and outcome.checkpoint
    assert scored == [len(bench.encoded["test"])]  # the test split only
    folder = store.store.path(0)
    saved = trial_module.saved_predictions(folder, bench, "validation")
    model, _ = load_trained(folder)
    np.testing.assert_allclose(saved, _proba(model, bench, "validation", folder.parent / "elsewhere"), atol=1e-5)
