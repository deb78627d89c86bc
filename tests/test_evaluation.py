import json
import math

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.metrics import average_precision_score, classification_report, roc_auc_score
from transformers import AutoModelForSequenceClassification, AutoTokenizer

from autoft.attributions import (
    attributions_html,
    attributions_markdown,
    explain_misclassified,
    token_attributions,
)
from autoft.evaluation import evaluate_predictions, expected_calibration_error
from autoft.models import quiet_transformers

NAMES = ["neg", "neu", "pos"]
PNG = b"\x89PNG\r\n\x1a\n"
CPU = torch.device("cpu")


def toy():
    """Seven rows, three labels: rows 1, 3 and 6 are wrong, with top-class confidence 0.5, 0.9 and 0.7."""
    texts = [f"text {i}" for i in range(7)]
    y = np.array([0, 0, 1, 1, 2, 2, 2])
    proba = np.array(
        [
            [0.8, 0.1, 0.1],
            [0.2, 0.5, 0.3],  # true neg, predicted neu
            [0.1, 0.8, 0.1],
            [0.05, 0.05, 0.9],  # true neu, predicted pos
            [0.1, 0.1, 0.8],
            [0.0, 0.4, 0.6],
            [0.7, 0.2, 0.1],  # true pos, predicted neg
        ]
    )
    return texts, y, proba


@pytest.fixture(scope="module")
def evaluated(tmp_path_factory):
    texts, y, proba = toy()
    out = tmp_path_factory.mktemp("run") / "evaluation"
    return evaluate_predictions(texts, y, proba, NAMES, out), out


def test_confusion_matrix_counts_rows_true_columns_predicted(evaluated):
    _, out = evaluated
    frame = pd.read_csv(out / "confusion_matrix.csv", index_col=0)
    assert list(frame.columns) == NAMES
    assert list(frame.index) == NAMES
    assert frame.to_numpy().tolist() == [[1, 1, 0], [0, 1, 1], [1, 0, 2]]


def test_misclassified_has_exactly_the_wrong_rows_most_confident_first(evaluated):
    summary, out = evaluated
    wrong = pd.read_csv(out / "misclassified.csv")
    assert list(wrong.columns) == ["text", "true", "predicted", "probability", "true_probability"]
    assert wrong["text"].tolist() == ["text 3", "text 6", "text 1"]
    assert wrong["true"].tolist() == ["neu", "pos", "neg"]
    assert wrong["predicted"].tolist() == ["pos", "neg", "neu"]
    assert wrong["probability"].tolist() == pytest.approx([0.9, 0.7, 0.5])
    assert wrong["true_probability"].tolist() == pytest.approx([0.05, 0.1, 0.2])
    assert summary["n_misclassified"] == 3


def test_top_misclassified_keeps_the_most_confident_and_counts_all(tmp_path):
    texts, y, proba = toy()
    summary = evaluate_predictions(texts, y, proba, NAMES, tmp_path, top_misclassified=2)
    assert pd.read_csv(tmp_path / "misclassified.csv")["text"].tolist() == ["text 3", "text 6"]
    assert summary["n_misclassified"] == 3


def test_classification_report_uses_label_names_and_matches_sklearn(evaluated):
    summary, out = evaluated
    texts, y, proba = toy()
    expected = classification_report(
        y, proba.argmax(1), labels=[0, 1, 2], target_names=NAMES, output_dict=True, zero_division=0
    )
    assert json.loads((out / "classification_report.json").read_text()) == expected
    assert summary["classification_report"] == expected
    text = (out / "classification_report.txt").read_text()
    assert all(name in text for name in [*NAMES, "macro avg", "weighted avg", "accuracy"])
    assert summary["accuracy"] == pytest.approx(4 / 7)


def test_average_precision_and_auc_per_class_equal_sklearn(tmp_path):
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 200)
    proba = rng.dirichlet([1, 1, 1], 200)
    proba[np.arange(200), y] += 0.3  # informative, not perfect
    proba /= proba.sum(1, keepdims=True)
    summary = evaluate_predictions([str(i) for i in range(200)], y, proba, NAMES, tmp_path)
    for c, name in enumerate(NAMES):
        assert summary["average_precision"][name] == pytest.approx(average_precision_score(y == c, proba[:, c]))
        assert summary["roc_auc"][name] == pytest.approx(roc_auc_score(y == c, proba[:, c]))
    assert summary["macro_roc_auc"] == pytest.approx(np.mean(list(summary["roc_auc"].values())))
    assert 0.5 < summary["macro_roc_auc"] < 1.0


def test_a_class_absent_from_test_scores_none_and_is_left_out_of_the_macro_average(tmp_path):
    y = np.array([0, 0, 2, 2])
    proba = np.array([[0.7, 0.2, 0.1], [0.3, 0.3, 0.4], [0.1, 0.1, 0.8], [0.2, 0.5, 0.3]])
    summary = evaluate_predictions(list("abcd"), y, proba, NAMES, tmp_path)
    assert summary["average_precision"]["neu"] is None
    assert summary["roc_auc"]["neu"] is None
    assert summary["macro_roc_auc"] == pytest.approx((summary["roc_auc"]["neg"] + summary["roc_auc"]["pos"]) / 2)
    assert summary["classification_report"]["neu"]["support"] == 0
    assert (tmp_path / "roc_curves.png").read_bytes().startswith(PNG)


def test_every_file_is_written_and_evaluation_json_is_the_summary(evaluated):
    summary, out = evaluated
    for name in summary["files"].values():
        assert (out / name).is_file(), name
        if name.endswith(".png"):
            data = (out / name).read_bytes()
            assert data.startswith(PNG) and len(data) < 300_000
    assert json.loads((out / "evaluation.json").read_text()) == json.loads(json.dumps(summary))
    assert not [p.name for p in out.iterdir() if p.name.startswith(".")]  # no temporary files left


def test_binary_case(tmp_path):
    y = np.array([0, 1, 1, 0, 1])
    proba = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.3, 0.7], [0.1, 0.9]])
    summary = evaluate_predictions(list("abcde"), y, proba, ["no", "yes"], tmp_path)
    assert set(summary["roc_auc"]) == {"no", "yes"}
    assert summary["roc_auc"]["no"] == pytest.approx(summary["roc_auc"]["yes"])
    assert summary["n_misclassified"] == 2


def test_mismatched_inputs_are_refused(tmp_path):
    texts, y, proba = toy()
    with pytest.raises(ValueError, match="shape"):
        evaluate_predictions(texts, y, proba[:, :2], NAMES, tmp_path)
    with pytest.raises(ValueError, match="as many"):
        evaluate_predictions(texts[:3], y, proba, NAMES, tmp_path)


def test_ece_of_calibrated_predictions_is_zero():
    # confidence 0.9 right 9 times in 10, confidence 0.6 right 6 times in 10
    proba = np.array([[0.9, 0.1]] * 10 + [[0.6, 0.4]] * 10)
    y = np.array([0] * 9 + [1] + [0] * 6 + [1] * 4)
    assert expected_calibration_error(y, proba) == pytest.approx(0.0, abs=1e-12)


def test_ece_of_overconfident_predictions_is_the_gap():
    proba = np.array([[0.99, 0.01]] * 100)
    y = np.array([0, 1] * 50)  # right half the time
    assert expected_calibration_error(y, proba) == pytest.approx(0.49)


def test_ece_weights_bins_by_rows():
    proba = np.array([[1.0, 0.0]] * 3 + [[0.5, 0.5]])  # a bin at 1.0 (always right), a bin at 0.5 (wrong)
    y = np.array([0, 0, 0, 1])
    assert expected_calibration_error(y, proba, bins=10) == pytest.approx(0.25 * 0.5)


@pytest.fixture(scope="module")
def classifier(tiny_bert):
    quiet_transformers()
    model = AutoModelForSequenceClassification.from_pretrained(tiny_bert, num_labels=2).eval()
    return model, AutoTokenizer.from_pretrained(tiny_bert)


TEXTS = ["the product was great and arrived on time", "awful box, honestly useless"]


def test_attributions_give_one_finite_score_per_non_special_token(classifier):
    model, tok = classifier
    out = token_attributions(model, tok, TEXTS, [1, 0], max_length=32, device=CPU)
    assert len(out) == 2
    for text, pairs in zip(TEXTS, out):
        assert [t for t, _ in pairs] == tok.tokenize(text)
        scores = np.array([s for _, s in pairs])
        assert np.isfinite(scores).all()
        assert np.abs(scores).max() == pytest.approx(1.0)


def test_attributions_add_up_to_the_target_logit_change_from_the_baseline(classifier):
    model, tok = classifier
    text, target = TEXTS[1], 0
    pairs = token_attributions(model, tok, [text], [target], max_length=32, device=CPU, normalize=False)[0]
    enc = tok(text, return_tensors="pt", return_special_tokens_mask=True)
    special = enc["special_tokens_mask"].bool()
    baseline = torch.where(special, enc["input_ids"], torch.full_like(enc["input_ids"], tok.pad_token_id))
    with torch.no_grad():
        logit = model(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"]).logits[0, target]
        base = model(input_ids=baseline, attention_mask=enc["attention_mask"]).logits[0, target]
    change = float(logit - base)
    assert sum(s for _, s in pairs) == pytest.approx(change, rel=0.02, abs=1e-7)


def test_attributions_truncate_at_max_length(classifier):
    model, tok = classifier
    long = " ".join(["great product"] * 40)
    pairs = token_attributions(model, tok, [long], [1], max_length=16, device=CPU)[0]
    assert len(pairs) == 14  # 16 minus CLS and SEP


@pytest.mark.parametrize("arch", ["distilbert", "roberta"])
def test_attributions_work_for_other_families(arch, request):
    folder = request.getfixturevalue(f"tiny_{arch}")
    model = AutoModelForSequenceClassification.from_pretrained(folder, num_labels=3).eval()
    tok = AutoTokenizer.from_pretrained(folder)
    (pairs,) = token_attributions(model, tok, [TEXTS[0]], [2], max_length=32, device=CPU)
    assert len(pairs) == len(tok.tokenize(TEXTS[0]))
    assert all(math.isfinite(s) for _, s in pairs)


def test_attributions_html_shades_each_token_by_sign_and_escapes_text():
    attributions = [[("<b>", 1.0), ("fine", -0.5), ("##ly", 0.0)]]
    fragment = attributions_html(["<b> finely"], ["pos"], ["neg & co"], attributions)
    assert "&lt;b&gt;" in fragment and "<b>&lt;" not in fragment.replace("<b>pos</b>", "")
    assert "neg &amp; co" in fragment
    assert fragment.count('<span title="') == 3
    assert "rgba(22,163,74,0.8)" in fragment  # +1: green, full
    assert "rgba(220,38,38,0.4)" in fragment  # -0.5: red, half
    assert "<script" not in fragment and "http" not in fragment


def test_attributions_markdown_lists_the_five_strongest_tokens():
    pairs = [(f"t{i}", (-1) ** i * i / 10) for i in range(10)]
    md = attributions_markdown(["some text"], ["pos"], ["neg"], [pairs])
    assert "predicted **pos**, true **neg**" in md
    strongest = md.splitlines()[1]
    assert [f"`t{i}`" in strongest for i in range(10)] == [False] * 5 + [True] * 5
    assert strongest.index("`t9`") < strongest.index("`t5`")


def test_explain_misclassified_reads_the_most_confident_mistakes(classifier, tmp_path):
    model, tok = classifier
    texts = [TEXTS[0], TEXTS[1], "great"]
    proba = np.array([[0.9, 0.1], [0.2, 0.8], [0.3, 0.7]])
    evaluate_predictions(texts, np.array([1, 0, 1]), proba, ["neg", "pos"], tmp_path)
    fragment, md = explain_misclassified(model, tok, tmp_path, ["neg", "pos"], max_length=32, device=CPU, n=1)
    assert "predicted <b>neg</b>" in fragment and "true <b>pos</b>" in fragment  # the 0.9 mistake, only
    assert "predicted **neg**, true **pos**" in md and "**pos**, true **neg**" not in md


@pytest.mark.parametrize("failure", [ModuleNotFoundError("No module named 'captum'"), RuntimeError("out of memory")])
def test_a_failure_in_the_attributions_leaves_a_note_and_the_rest_of_the_evaluation(
    classifier, tmp_path, monkeypatch, failure
):
    """Attributions explain the model; when they cannot be computed the evaluation (and so the export and the
    report after it) still stands, with the reason where the attributions would be."""
    import autoft.attributions
    from autoft.export import write_evaluation

    def fail(*args, **kwargs):
        raise failure

    monkeypatch.setattr(autoft.attributions, "token_attributions", fail)
    model, tok = classifier
    texts = [TEXTS[0], TEXTS[1], "great"]
    proba = np.array([[0.9, 0.1], [0.2, 0.8], [0.3, 0.7]])
    folder = tmp_path / "evaluation"
    summary = write_evaluation(
        folder, model, tok, texts, np.array([1, 0, 1]), proba, ["neg", "pos"], max_length=32, device=CPU
    )
    assert summary["attributions_skipped"] == f"{type(failure).__name__}: {failure}"
    assert json.loads((folder / "evaluation.json").read_text())["accuracy"] == pytest.approx(1 / 3)
    assert (folder / "misclassified.csv").is_file() and (folder / "proba.npy").is_file()
    assert str(failure) in (folder / "attributions.md").read_text()
    assert "not computed" in (folder / "attributions.html").read_text()
