"""Using a saved model: predict from files to files, and evaluate it on any dataset split."""

import json

import pandas as pd
import pytest


@pytest.fixture(scope="module")
def best_model(tmp_path_factory, tiny_bert):
    from autoft.cli import main
    from autoft.testing import write_csv, write_study

    root = tmp_path_factory.mktemp("trained")
    data = write_csv(root / "reviews.csv", 300)
    study = write_study(
        root / "study.toml",
        {
            "study": {"name": "tiny", "output_dir": str(root / "runs")},
            "model": {"name": str(tiny_bert), "max_length": 32},
            "dataset": {"type": "files", "path": str(data)},
            "search": {"n_trials": 1, "isolation": "none", "pruner": "none"},
            "space": {"learning_rate": 1e-2, "epochs": 4, "batch_size": 16},
        },
    )
    assert main(["study", "run", str(study), "--no-progress"]) == 0
    return root / "runs" / "tiny" / "best", data, study


@pytest.mark.parametrize("suffix", [".csv", ".jsonl", ".parquet"])
def test_predict_reads_a_table_and_writes_labels_with_probabilities(best_model, tmp_path, cli, suffix):
    best, _, _ = best_model
    frame = pd.DataFrame({"id": [1, 2, 3], "body": ["awful broken item", "superb wonderful seller", "the box"]})
    source = tmp_path / f"in{suffix}"
    {
        ".csv": lambda: frame.to_csv(source, index=False),
        ".jsonl": lambda: frame.to_json(source, orient="records", lines=True),
        ".parquet": lambda: frame.to_parquet(source),
    }[suffix]()
    out = tmp_path / f"out{suffix}"
    result = cli("predict", best, "--input", source, "--text-column", "body", "--output", out)
    assert result.code == 0, result.err
    got = {".csv": pd.read_csv, ".jsonl": lambda p: pd.read_json(p, lines=True), ".parquet": pd.read_parquet}[suffix](
        out
    )
    assert list(got["id"]) == [1, 2, 3] and list(got["body"]) == list(frame["body"])
    assert set(got["label"]) <= {"neg", "pos"}
    assert (got["p(neg)"] + got["p(pos)"]).round(5).eq(1).all()
    assert (got["probability"] == got[["p(neg)", "p(pos)"]].max(axis=1)).all()
    assert got.loc[0, "label"] == "neg" and got.loc[1, "label"] == "pos"


def test_predict_refuses_a_missing_text_column(best_model, tmp_path, cli):
    best, _, _ = best_model
    source = tmp_path / "in.csv"
    pd.DataFrame({"review": ["x"]}).to_csv(source, index=False)
    result = cli("predict", best, "--input", source)
    assert result.code == 2 and "no column 'text' (--text-column); columns present: review" in result.err


@pytest.mark.parametrize(
    "content, problem",
    [
        ("[model\nmax_length = 32\n", "cannot be read (invalid TOML: "),
        ("[model]\nmax_length = 'long'\n", "[model] max_length = 'long' is not a positive integer"),
        ("[model]\nmax_length = 0\n", "[model] max_length = 0 is not a positive integer"),
        ("model = 'tiny'\n", "[model] is not a table"),
    ],
)
def test_predict_refuses_a_saved_model_whose_study_toml_is_broken(best_model, tmp_path, cli, content, problem):
    """A broken study.toml fails loudly, rather than predicting with a guessed max_length."""
    import shutil

    best, _, _ = best_model
    copy = tmp_path / "best"
    shutil.copytree(best, copy)
    (copy / "study.toml").write_text(content)
    result = cli("predict", copy, "superb wonderful seller")
    assert result.code == 2, result.out + result.err
    assert result.err.startswith("error: ") and result.err.count("\n") == 1, result.err
    assert f"'{copy / 'study.toml'}'" in result.err and problem in result.err
    assert "restore it or pass --max-length" in result.err and "Traceback" not in result.err + result.out


def test_predict_without_a_study_toml_uses_the_tokenizer_limit(best_model, tmp_path, cli):
    import shutil

    from autoft.saved import load_trained, trained_max_length

    best, _, _ = best_model
    copy = tmp_path / "best"
    shutil.copytree(best, copy)
    assert trained_max_length(copy, load_trained(copy)[1]) == 32
    (copy / "study.toml").unlink()
    _, tokenizer = load_trained(copy)
    limit = tokenizer.model_max_length
    assert trained_max_length(copy, tokenizer) == (limit if limit and limit < 100_000 else 512)
    result = cli("predict", copy, "superb wonderful seller")
    assert result.code == 0, result.err


def test_predictions_match_the_study_test_evaluation(best_model, cli):
    """Batched, length-sorted inference gives the same probabilities as the study's own test evaluation."""
    import numpy as np

    from autoft.predict import Predictor

    best, _, _ = best_model
    evaluation = best.parent / "evaluation"
    misclassified = pd.read_csv(evaluation / "misclassified.csv", keep_default_na=False)
    report = json.loads((evaluation / "evaluation.json").read_text())
    predictor = Predictor(best)
    if len(misclassified):
        proba = predictor.proba(misclassified["text"].tolist())
        np.testing.assert_allclose(proba.max(axis=1), misclassified["probability"], atol=1e-5)
    assert report["rows"] == json.loads((best / "metrics.json").read_text())["test_rows"]


def test_evaluate_a_saved_model_on_a_dataset(best_model, tmp_path, cli):
    best, data, study = best_model
    out = tmp_path / "eval"
    result = cli(
        "evaluate",
        best,
        "--data",
        "type=files",
        "--data",
        f"path={json.dumps(str(data))}",
        "--split",
        "test",
        "--out",
        out,
        "--explain",
        "2",
    )
    assert result.code == 0, result.err
    for name in (
        "classification_report.json",
        "confusion_matrix.csv",
        "confusion_matrix.png",
        "pr_curves.png",
        "roc_curves.png",
        "reliability.png",
        "misclassified.csv",
        "evaluation.json",
    ):
        assert (out / name).is_file(), name
    ours = json.loads((out / "evaluation.json").read_text())
    study_eval = json.loads((best.parent / "evaluation" / "evaluation.json").read_text())
    assert ours["accuracy"] == pytest.approx(study_eval["accuracy"])  # the same seeded test split
    assert "precision" in result.out and "misclassified" in result.out
    with_study = cli("evaluate", best, "--study", study, "--split", "validation", "--out", tmp_path / "v")
    assert with_study.code == 0, with_study.err


def test_evaluate_refuses_labels_the_model_does_not_know(best_model, tmp_path, cli):
    best, _, _ = best_model
    other = tmp_path / "other.csv"
    pd.DataFrame({"text": [f"t {i}" for i in range(40)], "label": ["neg", "maybe"] * 20}).to_csv(other, index=False)
    result = cli("evaluate", best, "--data", "type=files", "--data", f"path={json.dumps(str(other))}")
    assert result.code == 2 and "'maybe'" in result.err and "not labels of the model (neg, pos)" in result.err
