"""Regression: a number per row, from the labels' type to the saved model's predictions."""

import json

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import tiny_study
from hypothesis import example, given, settings
from hypothesis import strategies as st

from autoft.data import DataError, RawDataset, Split, prepare, strata
from autoft.testing import make_tiny_model, write_scores_csv, write_study
from autoft.training import TargetScale

REGRESSION_DATASET = {"type": "files", "label_column": "score"}


def _prepare(labels, **kw):
    texts = [f"text {i}" for i in range(len(labels))]
    kw = {"seed": 0, "validation_size": 0.2, "test_size": 0.2, "where": "data.csv", **kw}
    return prepare(RawDataset({"train": Split(texts, labels)}, label_column="score"), **kw)


@settings(max_examples=40, deadline=None)
@given(
    values=st.lists(st.floats(-1e4, 1e4, allow_nan=False).map(lambda v: round(v, 2)), min_size=20, max_size=60),
    as_text=st.booleans(),
)
def test_numbers_with_fractions_are_a_regression_said_so(values, as_text):
    values[0] = 0.5  # one fraction at least; and targets that vary
    values[1] = 7.0
    labels = [str(v) for v in values] if as_text else values  # a CSV's cells are text
    data = _prepare(labels)
    assert data.regression and data.label_names == ("score",)
    assert any("task: regression" in note for note in data.notes)
    rows = {f"text {i}": v for i, v in enumerate(values)}
    for split in (data.train, data.validation, data.test):
        assert split.labels.dtype == np.float32
        assert all(np.isclose(y, rows[t], rtol=1e-6, atol=1e-3) for t, y in zip(split.texts, split.labels))


def test_whole_numbers_stay_classes_unless_told():
    labels = [1, 2, 3, 4, 5] * 6
    assert not _prepare(labels).regression
    told = _prepare(labels, task="regression")
    assert told.regression and set(told.train.labels.tolist()) <= {1.0, 2.0, 3.0, 4.0, 5.0}


@pytest.mark.parametrize(
    "labels, task, message",
    [
        (["1.5", "x", "2"] * 10, "regression", "train has 10 labels that are not finite numbers ('x'"),
        ([1.5, float("inf"), 2.0] * 10, "regression", "labels that are not finite numbers (inf"),
        ([2.5] * 30, "auto", "every train target is 2.5; regression needs targets that vary"),
        ([0.5, 1, 2] * 10, "classification", "label 0.5 is not a class"),
    ],
)
def test_targets_that_cannot_be_learned_are_named(labels, task, message):
    with pytest.raises(DataError) as err:
        _prepare(labels, task=task)
    assert message in str(err.value) and "\n" not in str(err.value)


def test_carving_keeps_the_targets_spread_in_every_split():
    """Stratified by decile: validation and test each get rows from the whole range, not a lucky slice."""
    values = np.linspace(0, 5, 200).round(3).tolist()
    data = _prepare(values, validation_size=0.1, test_size=0.1)
    for split in (data.validation, data.test):
        assert len(set(strata(split.labels, "regression").tolist())) >= 9
        assert abs(float(np.mean(split.labels)) - 2.5) < 0.3


@pytest.mark.parametrize("arch", ["bert", "distilbert", "roberta"])
def test_target_scaling_folds_into_the_head_of_each_architecture(arch, tmp_path):
    """Trained on standardised targets, the saved model predicts in the targets' units."""
    from transformers import AutoModelForSequenceClassification

    folder = make_tiny_model(tmp_path / arch, arch)
    model = AutoModelForSequenceClassification.from_pretrained(folder, num_labels=1).eval()
    ids = torch.randint(5, 100, (3, 9))
    with torch.no_grad():
        before = model(input_ids=ids).logits
        scale = TargetScale(mean=2.7, std=1.3)
        scale.fold_into(model)
        after = model(input_ids=ids).logits
    torch.testing.assert_close(after, scale.unscale(before), rtol=1e-5, atol=1e-5)


@pytest.fixture(scope="module")
def regression_run(tmp_path_factory, tiny_bert):
    """A finished regression study (full fine-tuning, no objective named: the task's default)."""
    from autoft.cli import main

    root = tmp_path_factory.mktemp("regression")
    data = write_scores_csv(root / "scores.csv", 300)
    study = tiny_study(
        root,
        tiny_bert,
        data,
        dataset={**REGRESSION_DATASET, "path": str(data)},
        search={"n_trials": 1, "isolation": "none", "objective": None},
        space={"learning_rate": 3e-3, "epochs": 5, "batch_size": 16},
    )
    del study["search"]["objective"]
    assert main(["study", "run", str(write_study(root / "study.toml", study)), "--no-progress"]) == 0
    return root


def test_a_regression_study_beats_the_mean(regression_run):
    run = regression_run / "runs" / "tiny"
    metrics = json.loads((run / "best" / "metrics.json").read_text())
    assert metrics["task"] == "regression" and metrics["objective"] == "rmse"
    assert metrics["test"]["rmse"] < 0.8 * metrics["mean_baseline"]["rmse"]
    assert metrics["test"]["spearman"] > 0.5
    assert json.loads((run / "best" / "task.json").read_text())["task"] == "regression"
    evaluation = json.loads((run / "evaluation" / "evaluation.json").read_text())
    assert evaluation["task"] == "regression"
    for name in evaluation["files"].values():
        assert (run / "evaluation" / name).stat().st_size > 0
    explained = (run / "evaluation" / "attributions.md").read_text()
    assert explained.count("strongest tokens") == 5  # the five largest errors, explained
    assert 'objective = "rmse"' in (run / "study.toml").read_text()  # resolved, so a resume reads the same


def test_predict_and_evaluate_give_numbers(cli, regression_run, tmp_path):
    best = regression_run / "runs" / "tiny" / "best"
    rows = pd.DataFrame({"text": ["item box", "great superb lovely brilliant perfect item"]})
    rows.to_csv(tmp_path / "in.csv", index=False)
    result = cli("predict", best, "--input", tmp_path / "in.csv", "--output", tmp_path / "out.csv")
    assert result.code == 0, result.err
    low, high = pd.read_csv(tmp_path / "out.csv")["prediction"].tolist()
    assert low < high  # four positive words score higher than none
    evaluated = cli("evaluate", best, "--study", regression_run / "study.toml", "--out", tmp_path / "ev")
    assert evaluated.code == 0, evaluated.err
    assert "rmse" in evaluated.out and (tmp_path / "ev" / "predicted_vs_true.png").is_file()


@pytest.mark.parametrize(
    "tables, message",
    [
        ({"search": {"objective": "accuracy"}}, "[search] objective 'accuracy' does not score this study's task"),
        ({"space": {"class_weights": ["none", "balanced"]}}, "class_weights applies to classes"),
        ({"space": {"label_smoothing": 0.1}}, "label_smoothing applies to classes"),
        (
            {"dataset": {"task": "classification"}},
            "objective 'rmse' does not score this study's task: it predicts classes",
        ),
    ],
)
def test_settings_that_do_not_fit_a_regression_are_refused(cli, tmp_path, tiny_bert, tables, message):
    data = write_scores_csv(tmp_path / "scores.csv", 60)
    dataset = {**REGRESSION_DATASET, "path": str(data), **tables.pop("dataset", {})}
    search = {"objective": "rmse", **tables.pop("search", {})}
    tables = tiny_study(tmp_path, tiny_bert, data, dataset=dataset, search=search, **tables)
    study = write_study(tmp_path / "study.toml", tables)
    result = cli("study", "check", study)
    assert result.code == 2, result.err
    assert message in result.err and len(result.err.strip().splitlines()) == 1


@settings(max_examples=60, deadline=None)
@example(pairs=[(0.0, 0.0), (0.0, 7.379404633525644e-187)])  # constant targets, an error whose square underflows
@given(
    pairs=st.lists(
        st.tuples(st.floats(-1e3, 1e3, allow_subnormal=False), st.floats(-1e3, 1e3, allow_subnormal=False)),
        min_size=2,
        max_size=30,
    )
)
def test_the_scores_trials_and_evaluations_share_agree_with_scikit_learn_and_scipy(pairs):
    from scipy import stats
    from sklearn.metrics import hamming_loss, mean_absolute_error, mean_squared_error, r2_score

    from autoft import scores

    y, p = (np.array(side) for side in zip(*pairs))
    assert scores.rmse(y, p) == pytest.approx(np.sqrt(mean_squared_error(y, p)), rel=1e-9, abs=1e-9)
    assert scores.mae(y, p) == pytest.approx(mean_absolute_error(y, p), rel=1e-9, abs=1e-9)
    assert scores.r2(y, p) == pytest.approx(r2_score(y, p), rel=1e-6, abs=1e-6)
    if np.ptp(y) > 1e-6 and np.ptp(p) > 1e-6:
        assert scores.correlation("pearson", y, p) == pytest.approx(stats.pearsonr(y, p)[0], abs=1e-6)
        assert scores.correlation("spearman", y, p) == pytest.approx(stats.spearmanr(y, p)[0], abs=1e-6)
    elif np.ptp(y) == 0 or np.ptp(p) == 0:
        assert scores.correlation("pearson", y, p) == 0.0  # undefined: 0, where scipy warns and gives nan
    flags_true, flags_pred = (y[:, None] > [0, 10]).astype(int), (p[:, None] > [0, 10]).astype(int)
    assert scores.hamming_loss(flags_true, flags_pred) == pytest.approx(hamming_loss(flags_true, flags_pred))
