"""Multi-label classification: a set of labels per row, from list columns to ``autoft predict``."""

import json

import numpy as np
import pandas as pd
import pytest
from conftest import tiny_study
from hypothesis import given, settings
from hypothesis import strategies as st

from autoft.data import DataError, RawDataset, Split, prepare
from autoft.evaluation_multilabel import tune_thresholds
from autoft.metrics import compute
from autoft.testing import write_label_sets, write_study
from autoft_plugins.metrics import METRICS

LABELS = ["anger", "joy", "fear", "surprise"]


def _prepare(labels, names=None, **kw):
    texts = [f"text {i}" for i in range(len(labels))]
    kw = {"seed": 0, "validation_size": 0.2, "test_size": 0.2, "where": "data.csv", **kw}
    return prepare(RawDataset({"train": Split(texts, labels)}, names), **kw)


@settings(max_examples=40, deadline=None)
@given(
    sets=st.lists(st.lists(st.sampled_from(LABELS), max_size=3, unique=True), min_size=30, max_size=80),
    as_array=st.booleans(),
)
def test_label_lists_become_0_1_rows_that_keep_each_rows_labels(sets, as_array):
    sets[:4] = [[name] for name in LABELS]  # each label on a few rows, so carving can keep one in train
    sets[4:8] = [[name] for name in LABELS]
    labels = [np.array(s, dtype=object) for s in sets] if as_array else sets  # Parquet gives arrays
    data = _prepare(labels)
    assert data.multi_label and data.label_names == tuple(sorted(LABELS))
    assert any("task: multi-label" in note for note in data.notes)
    for split in (data.train, data.validation, data.test):
        assert split.labels.shape == (len(split), len(LABELS))
        for text, row in zip(split.texts, split.labels):
            i = int(text.split()[1])
            assert {data.label_names[j] for j in np.flatnonzero(row)} == set(sets[i])


@pytest.mark.parametrize(
    "labels, task, message",
    [
        ([["a"], ["b"], ["c", "d"]] * 10, "classification", "is a list; a single-label study takes one label per row"),
        ([["a"]] * 30, "auto", "train has a single label ('a')"),
        ([["a", "x"], ["b"]] * 15, "auto", None),
    ],
)
def test_label_lists_that_cannot_be_learned_are_named(labels, task, message):
    if message is None:  # two labels is enough
        assert _prepare(labels, task=task).multi_label
        return
    with pytest.raises(DataError) as err:
        _prepare(labels, task=task)
    assert message in str(err.value) and "\n" not in str(err.value)


def test_labels_seen_only_in_test_are_named():
    raw = RawDataset(
        {
            "train": Split([f"t {i}" for i in range(10)], [["a"], ["b"]] * 5),
            "test": Split(["x", "y"], [["a", "z"], ["b"]]),
        }
    )
    with pytest.raises(DataError, match="test has labels that train lacks: 'z'"):
        prepare(raw, seed=0, validation_size=0.2, test_size=0.2, where="w")


def test_thresholds_are_tuned_per_label():
    """A label whose probabilities run low gets a low threshold; one that is never there keeps 0.5."""
    rng = np.random.default_rng(0)
    y = np.zeros((200, 3))
    y[:100, 0] = 1
    y[::2, 1] = 1
    proba = np.column_stack([0.3 * y[:, 0] + rng.uniform(0, 0.1, 200), y[:, 1] * 0.9, rng.uniform(0, 1, 200)])
    cuts = tune_thresholds(y, proba)
    assert 0.05 <= cuts[0] <= 0.3 and cuts[2] == 0.5
    metrics = {m.name: m for m in METRICS}
    tuned = compute(metrics, y, proba, cuts)
    assert tuned["f1_micro"] > compute(metrics, y, proba)["f1_micro"]  # 0.5 misses every label-0 row
    assert {"f1_samples", "hamming_loss", "accuracy", "f1_macro"} <= set(tuned) and "mcc" not in tuned


@pytest.fixture(scope="module")
def multilabel_run(tmp_path_factory, tiny_bert):
    """A finished multi-label study on a '|'-separated label column (no objective: the task's default)."""
    from autoft.cli import main

    root = tmp_path_factory.mktemp("multilabel")
    data = write_label_sets(root / "sets.csv", 300)
    study = tiny_study(
        root,
        tiny_bert,
        data,
        dataset={"type": "files", "path": str(data), "label_column": "labels", "label_separator": "|"},
        search={"n_trials": 1, "isolation": "none"},
        space={"learning_rate": 3e-3, "epochs": 8, "batch_size": 16, "class_weights": "balanced"},
    )
    del study["search"]["objective"]
    assert main(["study", "run", str(write_study(root / "study.toml", study)), "--no-progress"]) == 0
    return root


def test_a_multilabel_study_learns_each_label(multilabel_run):
    run = multilabel_run / "runs" / "tiny"
    metrics = json.loads((run / "best" / "metrics.json").read_text())
    assert metrics["task"] == "multi_label" and metrics["objective"] == "f1_micro"
    assert metrics["test"]["f1_micro"] >= 0.8 and metrics["test"]["hamming_loss"] <= 0.2
    task = json.loads((run / "best" / "task.json").read_text())
    assert task["task"] == "multi_label" and set(task["thresholds"]) == {"neg", "pos"}
    evaluation = json.loads((run / "evaluation" / "evaluation.json").read_text())
    assert set(evaluation["classification_report"]) >= {"neg", "pos", "micro avg", "samples avg"}
    assert (run / "evaluation" / "pr_curves.png").stat().st_size > 0
    mistakes = pd.read_csv(run / "evaluation" / "mistakes.csv", keep_default_na=False)
    explained = (run / "evaluation" / "attributions.md").read_text()
    assert explained.count("strongest tokens") == min(5, len(mistakes))
    if len(mistakes):
        assert f"{mistakes['mistake'][0]}: {mistakes['label'][0]}" in explained


def test_predict_gives_each_text_its_label_set(cli, multilabel_run, tmp_path):
    best = multilabel_run / "runs" / "tiny" / "best"
    texts = ["great superb item", "awful broken item", "the box arrived", "great price but awful box"]
    pd.DataFrame({"text": texts}).to_csv(tmp_path / "in.csv", index=False)
    result = cli("predict", best, "--input", tmp_path / "in.csv", "--output", tmp_path / "out.csv")
    assert result.code == 0, result.err
    out = pd.read_csv(tmp_path / "out.csv", keep_default_na=False)
    assert out["labels"].tolist()[:2] == ["pos", "neg"]
    assert set(out["labels"][3].split("|")) == {"neg", "pos"}
    assert {"p(neg)", "p(pos)"} <= set(out.columns)


def test_label_columns_of_0_1_flags_are_read_as_sets(cli, tmp_path, tiny_bert):
    from autoft.testing import label_set_rows

    texts, sets = label_set_rows(60)
    frame = pd.DataFrame(
        {"text": texts, "pos": [int("pos" in s) for s in sets], "neg": [int("neg" in s) for s in sets]}
    )
    frame.loc[5, "neg"] = 2
    frame.to_csv(tmp_path / "flags.csv", index=False)
    dataset = {"type": "files", "path": str(tmp_path / "flags.csv"), "label_columns": ["pos", "neg"]}
    study = write_study(tmp_path / "s.toml", tiny_study(tmp_path, tiny_bert, tmp_path / "flags.csv", dataset=dataset))
    result = cli("study", "check", study)
    assert result.code == 2 and "label column 'neg' (label_columns) holds 2 at row 5" in result.err
    frame.loc[5, "neg"] = 0
    frame.to_csv(tmp_path / "flags.csv", index=False)
    assert cli("study", "check", study).code == 0


def test_evaluate_scores_a_multilabel_model_with_its_thresholds(cli, multilabel_run, tmp_path):
    best = multilabel_run / "runs" / "tiny" / "best"
    result = cli("evaluate", best, "--study", multilabel_run / "study.toml", "--out", tmp_path / "ev")
    assert result.code == 0, result.err
    assert "subset accuracy" in result.out
    evaluation = json.loads((tmp_path / "ev" / "evaluation.json").read_text())
    saved = json.loads((best / "task.json").read_text())["thresholds"]
    assert evaluation["thresholds"] == saved  # the model's own thresholds, not 0.5
