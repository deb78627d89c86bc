"""ONNX export (``autoft export --onnx``): the graph gives PyTorch's probabilities, at any batch size and length."""

import json
import shutil

import numpy as np
import pytest

pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")

#: texts of 1 to ~60 words (some past max_length 32: truncated), in an order that mixes lengths
WORDS = "the seller was superb and the box arrived broken but the price was great honestly".split()
TEXTS = [" ".join(WORDS[(i * 7) % len(WORDS) :] + WORDS * (i % 5))[: 4 + i * 9] for i in range(36)]


def one_line_error(result, *parts):
    assert result.code == 2, result.out + result.err
    assert result.err.startswith("error: ") and result.err.count("\n") == 1, result.err
    assert "Traceback" not in result.err + result.out
    for part in parts:
        assert part in result.err, result.err


@pytest.fixture(scope="module")
def trained(tmp_path_factory, finished_run):
    """A tiny BERT trained by a one-trial study (conftest's shared ``finished_run``), in a copy of its run folder
    exported with --quantize (runs/tiny/best)."""
    from autoft.cli import main

    best = finished_run.copy_run(tmp_path_factory.mktemp("onnx")) / "best"
    assert json.loads((best / "metrics.json").read_text())["test"]["accuracy"] > 0.9  # it learned: labels differ
    assert main(["export", str(best), "--onnx", "--quantize"]) == 0
    return best


def exported_before(folder):
    """An ``export_graph`` that copies the folder's exported graph (without the exporter's seconds)."""

    def export_graph(model, path, opset):
        shutil.copy(folder / "model.onnx", path)
        return ["input_ids", "attention_mask", "token_type_ids"]

    return export_graph


def saved_classifier(folder, backbone, head=None):
    """An untrained 3-label classifier on ``backbone`` saved as autoft saves one (with ``head``: an MLP head)."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from autoft.heads import HeadSpec, install_head, save_head

    labels = {0: "neg", 1: "mid", 2: "pos"}
    model = AutoModelForSequenceClassification.from_pretrained(
        backbone, num_labels=3, id2label=labels, label2id={v: k for k, v in labels.items()}
    )
    spec = HeadSpec(hidden_size=16, activation="tanh") if head else None
    if spec:
        install_head(model, spec, seed=0)
    model.save_pretrained(folder, safe_serialization=True)
    AutoTokenizer.from_pretrained(backbone).save_pretrained(folder)
    save_head(folder, spec)
    (folder / "study.toml").write_text("[model]\nmax_length = 32\n")
    return folder


def test_export_writes_checked_graphs_and_reports_the_check(trained):
    from autoft.saved import trained_temperature

    report = json.loads((trained / "onnx.json").read_text())
    assert report["files"] == ["model.onnx", "model.int8.onnx"]
    assert (trained / "model.onnx").is_file() and (trained / "model.int8.onnx").is_file()
    assert not [p for p in trained.iterdir() if p.name.startswith(".onnx-export")]
    metrics = json.loads((trained / "metrics.json").read_text())
    assert report["texts"] == f"the study's test split ({metrics['test_rows']} rows)"
    assert report["pytorch"]["accuracy"] == pytest.approx(metrics["test"]["accuracy"])
    assert report["temperature"] == pytest.approx(trained_temperature(trained))  # calibration.json, if any
    fp32, int8 = report["fp32"], report["int8"]
    assert fp32["passed"] and fp32["max_abs_diff"] <= 1e-4 and fp32["argmax_agreement"] == 1.0
    assert fp32["inputs"] == ["input_ids", "attention_mask", "token_type_ids"]
    assert int8["passed"] and int8["argmax_agreement"] >= 0.99
    assert int8["accuracy_drop"] == pytest.approx(report["pytorch"]["accuracy"] - int8["accuracy"])


def test_the_graph_has_dynamic_batch_and_sequence_axes(trained):
    """Probabilities within 1e-4 of PyTorch's at every batch size, for texts of many lengths."""
    import onnx

    from autoft.onnx_predict import OnnxPredictor
    from autoft.predict import Predictor

    graph = onnx.load(str(trained / "model.onnx"), load_external_data=False).graph
    for value in graph.input:
        dims = value.type.tensor_type.shape.dim
        assert [d.dim_param != "" for d in dims] == [True, True], value
    reference = Predictor(trained, device="cpu").proba(TEXTS)
    for batch_size in (1, 3, 8, 64):
        got = OnnxPredictor(trained, batch_size=batch_size).proba(TEXTS)
        np.testing.assert_allclose(got, reference, atol=1e-4)
        assert (got.argmax(1) == reference.argmax(1)).all()
    int8 = OnnxPredictor(trained, batch_size=5, quantized=True).proba(TEXTS)
    assert (int8.argmax(1) == reference.argmax(1)).mean() >= 0.9
    assert OnnxPredictor(trained).proba([]).shape == (0, 2)


def test_predict_onnx_gives_the_pytorch_labels(trained, cli, tmp_path):
    import pandas as pd

    texts = tmp_path / "texts.txt"
    texts.write_text("\n".join(TEXTS) + "\n")
    outputs = {}
    for flags in ([], ["--onnx"], ["--onnx", "--quantized"]):
        out = tmp_path / f"labels{len(flags)}.csv"
        result = cli("predict", trained, "--file", texts, "--output", out, *flags)
        assert result.code == 0, result.err
        outputs[len(flags)] = pd.read_csv(out)
    torch, onnx, int8 = outputs[0], outputs[1], outputs[2]
    assert list(onnx["label"]) == list(torch["label"])
    np.testing.assert_allclose(onnx["p(pos)"], torch["p(pos)"], atol=1e-4)
    assert (int8["label"] == torch["label"]).mean() >= 0.9
    shown = cli("predict", trained, "superb wonderful seller", "awful broken item", "--onnx")
    assert shown.code == 0 and "pos" in shown.out and "neg" in shown.out


def test_serve_loads_the_onnx_model(trained):
    from autoft.onnx_predict import OnnxPredictor
    from autoft.serve import load_model

    model = load_model(trained, device="auto", batch_size=4, onnx=True)
    assert isinstance(model, OnnxPredictor) and model.label_names == ["neg", "pos"] and model.max_length == 32
    assert model.proba(["superb wonderful seller"]).shape == (1, 2)


def test_distilbert_with_a_custom_head_exports(tiny_distilbert, tmp_path):
    """DistilBERT (no token_type_ids) with autoft's MLP head (autoft_head.json), loaded by load_trained."""
    from autoft.onnx_export import export
    from autoft.onnx_predict import OnnxPredictor
    from autoft.predict import Predictor

    folder = saved_classifier(tmp_path / "best", tiny_distilbert, head=True)
    assert (folder / "autoft_head.json").is_file()
    report = export(folder)
    assert report["fp32"]["passed"] and report["files"] == ["model.onnx"]
    assert "drawn from the vocabulary" in report["texts"] and report["rows"] >= 100
    assert report["fp32"]["inputs"] == ["input_ids", "attention_mask"]
    reference = Predictor(folder, device="cpu").proba(TEXTS)
    for batch_size in (1, 7):
        got = OnnxPredictor(folder, batch_size=batch_size).proba(TEXTS)
        np.testing.assert_allclose(got, reference, atol=1e-4)


def test_export_refuses_what_it_cannot_do_in_one_line(trained, cli, tmp_path, monkeypatch):
    copy = tmp_path / "best"
    shutil.copytree(trained, copy)
    (copy / "model.onnx").unlink()
    (copy / "model.int8.onnx").unlink()
    one_line_error(cli("predict", copy, "superb", "--onnx"), f"autoft export {copy} --onnx", "has no model.onnx")
    one_line_error(cli("predict", copy, "superb", "--quantized"), "--quantized", "--onnx")
    one_line_error(cli("export", copy), "--onnx")
    one_line_error(cli("export", copy, "--onnx", "--opset", "9"), "--opset")
    one_line_error(cli("export", copy, "--onnx", "--texts", tmp_path / "none.txt"), "--texts", "does not exist")
    one_line_error(cli("export", tmp_path / "nowhere", "--onnx"), "does not exist")
    one_line_error(cli("predict", trained, "superb", "--onnx", "--device", "cuda"), "CPU", "--device cpu")
    (copy / "model.onnx").write_bytes(b"not a graph")
    one_line_error(cli("predict", copy, "superb", "--onnx"), "cannot be loaded by onnxruntime", "autoft export")
    monkeypatch.setitem(__import__("sys").modules, "onnxruntime", None)
    one_line_error(cli("predict", trained, "superb", "--onnx"), "pip install 'autoft[onnx]'")
    one_line_error(cli("export", copy, "--onnx"), "onnxruntime", "pip install 'autoft[onnx]'")


def test_a_failed_check_writes_nothing(trained, cli, tmp_path, monkeypatch):
    """A graph that gives other probabilities than PyTorch is refused, and the folder keeps what it had."""
    import autoft.onnx_export as onnx_export

    copy = tmp_path / "best"
    shutil.copytree(trained, copy)
    before = {p.name: p.stat().st_mtime_ns for p in copy.iterdir()}
    texts = tmp_path / "texts.txt"
    texts.write_text("superb wonderful seller\nawful broken item\n")
    monkeypatch.setattr(onnx_export, "export_graph", exported_before(trained))
    real = onnx_export.compare
    monkeypatch.setattr(onnx_export, "compare", lambda a, b: {**real(a, b), "max_abs_diff": 0.5})
    one_line_error(cli("export", copy, "--onnx", "--texts", texts), "max |Δp| 0.5", "nothing was written")
    assert {p.name: p.stat().st_mtime_ns for p in copy.iterdir()} == before


@pytest.mark.parametrize(
    "model",
    [
        "trained",
        "multi_label_model",
        pytest.param("pair_model", marks=pytest.mark.slow),  # the same code paths as the two above
        pytest.param("regressor", marks=pytest.mark.slow),
    ],
)
def test_the_cpu_benchmark_runs_all_three_side_by_side(model, request, tmp_path, monkeypatch, capsys):
    """``python -m benchmarks.onnx`` on a tiny model with tiny settings (speed is measured there, never here);
    a sentence-pair model is benchmarked on pairs, a regression model's closeness is its max |Δ|."""
    from pathlib import Path

    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parents[1]))
    from benchmarks.onnx import main

    folder = request.getfixturevalue(model)
    folder = folder[0] if isinstance(folder, tuple) else folder  # pair_model, regressor: (folder, export report)
    copy = tmp_path / "model"
    shutil.copytree(folder, copy)  # the benchmark exports into the folder when it has no graphs
    out = tmp_path / "bench.json"
    args = [str(copy), "--threads", "1", "--single", "4", "--batches", "2", "--batch-size", "4", "--rounds", "1"]
    assert main([*args, "--warmup", "1", "--out", str(out)]) == 0
    report = json.loads(out.read_text())
    assert set(report["results"]) == {"pytorch", "onnx", "onnx-int8"}
    assert report["settings"]["single_texts"] == 4 and report["environment"]["threads"] == 1
    assert report["texts"].startswith("the study's test split")
    for figures in report["results"].values():
        assert figures["latency_ms_median"] > 0 and figures["throughput_texts_per_s"] > 0
    printed = capsys.readouterr().out
    assert "| ONNX int8 |" in printed
    if model == "regressor":
        assert report["task"] == "regression" and report["results"]["onnx"]["agreement_with_pytorch"] is None
        assert report["results"]["onnx"]["max_abs_diff_from_pytorch"] < 1e-4 and "max abs diff from PyTorch" in printed
    else:
        assert report["results"]["onnx"]["agreement_with_pytorch"] == 1.0
    if model == "multi_label_model":  # agreement on each text's set of labels
        assert report["task"] == "multi_label" and "same labels as PyTorch" in printed


def test_an_int8_graph_that_changes_labels_is_not_kept(trained, cli, tmp_path, monkeypatch):
    """Below 99% agreement the int8 graph is refused (an earlier one removed); the fp32 graph is still written."""
    import autoft.onnx_export as onnx_export

    copy = tmp_path / "best"
    shutil.copytree(trained, copy)
    monkeypatch.setattr(onnx_export, "export_graph", exported_before(trained))
    monkeypatch.setattr(onnx_export, "INT8_AGREEMENT", 1.01)
    result = cli("export", copy, "--onnx", "--quantize")
    one_line_error(result, "the int8 graph gives the PyTorch model's label for", "model.int8.onnx was not written")
    report = json.loads((copy / "onnx.json").read_text())
    assert report["files"] == ["model.onnx"] and report["fp32"]["passed"] and not report["int8"]["passed"]
    assert (copy / "model.onnx").is_file() and not (copy / "model.int8.onnx").exists()


# --- sentence-pair models ------------------------------------------------------------------------------------------

PAIR_LABELS = {0: "different", 1: "same"}
FIRSTS = ["the seller was superb", "box arrived broken", "great price honestly", "it arrived on time and was lovely"]
SECONDS = ["the price was great", "my order was faulty", "delivery was very poor", "item"]


def saved_pair_classifier(folder, backbone, rows=80):
    """An untrained 2-label sentence-pair classifier on ``backbone``, saved as a study saves one: weights,
    tokenizer, task.json naming two inputs, and a study.toml whose [dataset] is a CSV of pairs (its test split
    carved from it). Its head and token type embeddings are initialised wide, so labels vary from pair to pair
    and the type ids (0 for the first text, 1 for the second) move the probabilities far more than 1e-4."""
    import pandas as pd
    import tomli_w
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from autoft.testing import sentiment_rows

    torch.manual_seed(0)
    model = AutoModelForSequenceClassification.from_pretrained(
        backbone, num_labels=2, id2label=PAIR_LABELS, label2id={v: k for k, v in PAIR_LABELS.items()}
    )
    with torch.no_grad():
        torch.nn.init.normal_(model.classifier.weight, std=1.0)
        torch.nn.init.normal_(model.bert.embeddings.token_type_embeddings.weight, std=0.5)
    folder.mkdir(parents=True)
    model.save_pretrained(folder, safe_serialization=True)
    AutoTokenizer.from_pretrained(backbone).save_pretrained(folder)
    (folder / "task.json").write_text(json.dumps({"inputs": ["sentence1", "sentence2"]}))
    firsts, seconds = sentiment_rows(rows, seed=1)[0], sentiment_rows(rows, seed=2)[0]
    data = folder.parent / "pairs.csv"
    labels = [PAIR_LABELS[i % 2] for i in range(rows)]
    pd.DataFrame({"sentence1": firsts, "sentence2": seconds, "label": labels}).to_csv(data, index=False)
    dataset = {"type": "files", "path": str(data), "text_column": "sentence1", "text_pair_column": "sentence2"}
    study = {"model": {"name": str(backbone), "max_length": 32}, "dataset": {**dataset, "test_size": 0.25}}
    (folder / "study.toml").write_text(tomli_w.dumps(study))
    return folder


@pytest.fixture(scope="module")
def pair_model(tmp_path_factory, tiny_bert):
    """A sentence-pair model exported with --quantize, checked on the pairs of its study's test split."""
    from autoft.onnx_export import export

    folder = saved_pair_classifier(tmp_path_factory.mktemp("pairs") / "best", tiny_bert)
    return folder, export(folder, quantize=True)


def test_a_pair_model_exports_checked_on_pairs(pair_model):
    from autoft.onnx_export import summary

    folder, report = pair_model
    assert report["texts"] == "the study's test split (20 rows)" and report["inputs"] == ["sentence1", "sentence2"]
    assert report["fp32"]["passed"] and report["fp32"]["inputs"] == ["input_ids", "attention_mask", "token_type_ids"]
    assert report["int8"]["passed"] and report["files"] == ["model.onnx", "model.int8.onnx"]
    assert json.loads((folder / "onnx.json").read_text())["inputs"] == ["sentence1", "sentence2"]
    lines = summary(report, folder)
    assert "the same label for 52 of 52 pairs" in lines[0] and "of 20 pairs" in lines[1], lines


def test_the_pair_graph_reads_the_token_type_ids_of_each_pair(pair_model):
    """ONNX gives PyTorch's probabilities for pairs (and swapped pairs), which differ from what the model gives
    with the type ids left at zero: the graph is fed the pairs' type ids, not zeros."""
    import torch

    from autoft.errors import ConfigError
    from autoft.onnx_predict import OnnxPredictor
    from autoft.predict import Predictor

    folder, _ = pair_model
    predictor = Predictor(folder, device="cpu")
    graph = OnnxPredictor(folder, batch_size=3)
    assert graph.inputs == ("sentence1", "sentence2") and graph.paired and graph.label_names == ["different", "same"]
    for first, second in ((FIRSTS, SECONDS), (SECONDS, FIRSTS)):
        reference = predictor.proba(first, second)
        np.testing.assert_allclose(graph.proba(first, second), reference, atol=1e-4)
        batch = predictor.tokenizer(first, second, truncation="longest_first", max_length=32, padding=True)
        batch = {k: torch.tensor(v) for k, v in batch.items()}
        batch["token_type_ids"].zero_()
        with torch.no_grad():
            zeros = torch.softmax(predictor.model(**batch).logits, dim=-1).numpy()
        assert np.abs(zeros - reference).max() > 1e-2  # type ids matter to this model: zeros would fail the check
    swapped = graph.proba(SECONDS, FIRSTS)
    assert np.abs(swapped - graph.proba(FIRSTS, SECONDS)).max() > 1e-3
    result = graph(FIRSTS, SECONDS)
    assert result.pairs == SECONDS and result.proba.shape == (4, 2)
    assert graph.proba([], []).shape == (0, 2)
    int8 = OnnxPredictor(folder, quantized=True).proba(FIRSTS, SECONDS)
    assert int8.shape == (4, 2)
    with pytest.raises(ConfigError, match="reads sentence pairs \\(sentence1, sentence2\\)"):
        graph.proba(FIRSTS)
    with pytest.raises(ConfigError, match="4 texts but 3 second texts"):
        graph.proba(FIRSTS, SECONDS[:3])


def test_a_single_text_graph_refuses_pairs(trained):
    from autoft.errors import ConfigError
    from autoft.onnx_predict import OnnxPredictor

    graph = OnnxPredictor(trained)
    assert graph.inputs == ("text",) and not graph.paired
    with pytest.raises(ConfigError, match="reads single texts, not pairs"):
        graph.proba(TEXTS[:2], TEXTS[:2])


def test_predict_and_serve_run_the_pair_graph(pair_model, cli, tmp_path):
    import pandas as pd

    from autoft.onnx_predict import OnnxPredictor
    from autoft.predict import Predictor
    from autoft.serve import inputs_of, load_model

    folder, _ = pair_model
    model = load_model(folder, batch_size=4, onnx=True)
    assert isinstance(model, OnnxPredictor) and inputs_of(model) == ("sentence1", "sentence2")
    table = tmp_path / "pairs.csv"
    pd.DataFrame({"sentence1": FIRSTS, "sentence2": SECONDS}).to_csv(table, index=False)
    out = tmp_path / "labels.csv"
    result = cli("predict", folder, "--input", table, "--output", out, "--onnx")
    assert result.code == 0, result.err
    got = pd.read_csv(out)
    reference = Predictor(folder, device="cpu").proba(FIRSTS, SECONDS)
    np.testing.assert_allclose(got["p(same)"], reference[:, 1], atol=1e-4)
    assert list(got["sentence2"]) == SECONDS


def test_a_pair_model_is_checked_on_the_pairs_of_texts_file_or_drawn_pairs(pair_model, tmp_path, monkeypatch):
    """--texts gives a pair a line (tab-separated); without a test split, drawn texts are paired."""
    import autoft.onnx_export as onnx_export
    from autoft.errors import ConfigError

    source, _ = pair_model
    folder = tmp_path / "best"
    shutil.copytree(source, folder)
    monkeypatch.setattr(onnx_export, "export_graph", exported_before(source))
    texts = tmp_path / "pairs.txt"
    texts.write_text("".join(f"{a}\t{b}\n" for a, b in zip(FIRSTS, SECONDS)))
    report = onnx_export.export(folder, texts=texts)
    assert report["fp32"]["passed"] and report["texts"] == f"--texts {texts} (4 pairs)" and report["rows"] == 4
    texts.write_text("a first text\tits second\nno tab here\n")
    with pytest.raises(ConfigError, match="text 2 .* is not two texts separated by a tab"):
        onnx_export.export(folder, texts=texts)
    (folder / "study.toml").write_text("[model]\nmax_length = 32\n")
    report = onnx_export.export(folder)
    assert report["fp32"]["passed"] and report["texts"].startswith("200 pairs drawn from the vocabulary")


# --- regression models ------------------------------------------------------------------------------------------


def saved_regressor(folder, backbone, paired=False, rows=60):
    """An untrained regression model on ``backbone`` (one output, id2label {0: "score"}), saved as a study saves
    one: weights, tokenizer, task.json (task regression), and a study.toml whose [dataset] is a CSV of numeric
    scores (autoft.testing's, its test split carved from it); with ``paired``, of sentence pairs. Its head is
    initialised wide with a bias of 2.5, as a head with the target scaling folded in predicts numbers of the
    target's size, so predictions vary from text to text and are not probabilities."""
    import pandas as pd
    import tomli_w
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from autoft.testing import score_rows, write_scores_csv

    torch.manual_seed(0)
    model = AutoModelForSequenceClassification.from_pretrained(
        backbone, num_labels=1, id2label={0: "score"}, label2id={"score": 0}
    )
    with torch.no_grad():
        torch.nn.init.normal_(model.classifier.weight, std=1.0)
        model.classifier.bias.fill_(2.5)
        if paired:
            torch.nn.init.normal_(model.bert.embeddings.token_type_embeddings.weight, std=0.5)
    folder.mkdir(parents=True)
    model.save_pretrained(folder, safe_serialization=True)
    AutoTokenizer.from_pretrained(backbone).save_pretrained(folder)
    inputs = ["sentence1", "sentence2"] if paired else ["text"]
    (folder / "task.json").write_text(json.dumps({"task": "regression", "inputs": inputs}))
    data = folder.parent / "scores.csv"
    dataset = {"type": "files", "path": str(data), "label_column": "score", "task": "regression"}
    if paired:
        seconds, scores = score_rows(rows, seed=2)
        firsts = score_rows(rows, seed=1)[0]
        pd.DataFrame({"sentence1": firsts, "sentence2": seconds, "score": scores}).to_csv(data, index=False)
        dataset |= {"text_column": "sentence1", "text_pair_column": "sentence2"}
    else:
        write_scores_csv(data, rows)
    study = {"model": {"name": str(backbone), "max_length": 32}, "dataset": {**dataset, "test_size": 0.25}}
    (folder / "study.toml").write_text(tomli_w.dumps(study))
    return folder


@pytest.fixture(scope="module")
def regressor(tmp_path_factory, tiny_bert):
    """A regression model exported with --quantize, checked on its study's test split of numeric scores."""
    from autoft.onnx_export import export

    folder = saved_regressor(tmp_path_factory.mktemp("regression") / "best", tiny_bert)
    return folder, export(folder, quantize=True)


def test_a_regression_model_exports_a_graph_of_predictions_checked_against_the_targets(regressor):
    import onnx

    from autoft.onnx_export import REGRESSION_FP32_TOLERANCE, summary

    folder, report = regressor
    assert report["task"] == "regression" and report["target"] == "score" and report["temperature"] == 1.0
    assert report["texts"] == "the study's test split (15 rows)" and report["inputs"] == ["text"]
    assert report["spread"]["of"] == "the standard deviation of the test targets" and report["spread"]["value"] > 1
    fp32, int8 = report["fp32"], report["int8"]
    assert fp32["passed"] and fp32["outputs"] == ["predictions"] and "argmax_agreement" not in fp32
    assert fp32["max_rel_diff"] <= REGRESSION_FP32_TOLERANCE and fp32["max_abs_diff"] <= fp32["allowed_abs_diff"]
    assert report["pytorch"]["rmse"] > 0 and fp32["rmse"] == pytest.approx(report["pytorch"]["rmse"], abs=1e-4)
    assert "accuracy" not in report["pytorch"]
    assert int8["passed"] and int8["rms_rel_diff"] <= 0.1 and int8["correlation"] > 0.9
    assert int8["rmse_increase"] == pytest.approx(int8["rmse"] - report["pytorch"]["rmse"])
    assert report["files"] == ["model.onnx", "model.int8.onnx"]
    assert json.loads((folder / "onnx.json").read_text())["task"] == "regression"
    graph = onnx.load(str(folder / "model.onnx"), load_external_data=False).graph
    assert [o.name for o in graph.output] == ["predictions"]
    lines = summary(report, folder)
    assert "output predictions of score" in lines[0] and "over 47 texts" in lines[0], lines
    assert "correlation" in lines[1] and "rmse" in lines[1] and "of 15 texts" not in lines[1], lines


def test_the_regression_graph_gives_predictors_numbers_at_any_batch_size(regressor):
    from autoft.onnx_predict import OnnxPredictor
    from autoft.predict import Predictor

    folder, _ = regressor
    predictor = Predictor(folder, device="cpu")
    reference = predictor.proba(TEXTS)
    assert reference.shape == (len(TEXTS), 1) and np.ptp(reference) > 0.1  # numbers that vary, not a softmax
    for batch_size in (1, 5, 64):
        graph = OnnxPredictor(folder, batch_size=batch_size)
        assert graph.regression and graph.label_names == ["score"] and graph.output == "predictions"
        np.testing.assert_allclose(graph.proba(TEXTS), reference, atol=1e-4)
    result = graph(TEXTS[:3])
    assert result.regression and list(result.frame().columns) == ["prediction"]
    np.testing.assert_allclose(result.values, reference[:3, 0], atol=1e-4)
    assert graph.proba([]).shape == (0, 1)
    int8 = OnnxPredictor(folder, quantized=True).proba(TEXTS)
    assert int8.shape == (len(TEXTS), 1) and np.corrcoef(int8[:, 0], reference[:, 0])[0, 1] > 0.9


def test_predict_onnx_writes_a_prediction_column_and_serve_loads_the_regression_graph(regressor, cli, tmp_path):
    import pandas as pd

    from autoft.serve import is_regression, load_model

    folder, _ = regressor
    texts = tmp_path / "texts.txt"
    texts.write_text("\n".join(TEXTS) + "\n")
    outputs = {}
    for flags in ([], ["--onnx"], ["--onnx", "--quantized"]):
        out = tmp_path / f"scores{len(flags)}.csv"
        result = cli("predict", folder, "--file", texts, "--output", out, *flags)
        assert result.code == 0, result.err
        assert "score from" in result.out, result.out
        outputs[len(flags)] = pd.read_csv(out)
    torch, onnx, int8 = outputs[0], outputs[1], outputs[2]
    assert list(onnx.columns) == ["text", "prediction"] and list(torch.columns) == list(onnx.columns)
    np.testing.assert_allclose(onnx["prediction"], torch["prediction"], atol=1e-4)
    assert np.corrcoef(int8["prediction"], torch["prediction"])[0, 1] > 0.9
    shown = cli("predict", folder, "superb wonderful seller", "--onnx")
    assert shown.code == 0 and "predicted score" in shown.out, shown.out
    model = load_model(folder, batch_size=4, onnx=True)
    assert is_regression(model) and model.proba(["superb wonderful seller"]).shape == (1, 1)


def test_a_regression_check_that_fails_writes_nothing_and_a_noisy_int8_graph_is_not_kept(
    regressor, cli, tmp_path, monkeypatch
):
    import autoft.onnx_export as onnx_export

    source, _ = regressor
    copy = tmp_path / "best"
    shutil.copytree(source, copy)
    before = {p.name: p.stat().st_mtime_ns for p in copy.iterdir()}
    monkeypatch.setattr(onnx_export, "export_graph", exported_before(source))
    real = onnx_export.compare_values
    monkeypatch.setattr(onnx_export, "compare_values", lambda a, b, s: {**real(a, b, s), "max_abs_diff": 0.5})
    one_line_error(cli("export", copy, "--onnx"), "max |Δ| 0.5 score", "of the spread", "nothing was written")
    assert {p.name: p.stat().st_mtime_ns for p in copy.iterdir()} == before
    monkeypatch.setattr(onnx_export, "compare_values", real)
    monkeypatch.setattr(onnx_export, "INT8_RELATIVE_RMS", 0.0)
    result = cli("export", copy, "--onnx", "--quantize")
    one_line_error(result, "the int8 graph's predictions differ from the PyTorch model's by", "was not written")
    report = json.loads((copy / "onnx.json").read_text())
    assert report["files"] == ["model.onnx"] and report["fp32"]["passed"] and not report["int8"]["passed"]
    assert not (copy / "model.int8.onnx").exists()


def test_the_test_split_of_another_task_is_not_used_for_the_check(regressor, pair_model):
    from autoft.onnx_texts import study_test_split

    folder, _ = regressor
    check, why = study_test_split(folder, ["score"], paired=False)
    assert check is not None and check.labels.dtype == np.float64 and len(check.labels) == 15
    assert set(np.round(check.labels, 2)) <= {0.0, 1.25, 2.5, 3.75, 5.0}  # the targets, not label ids
    assert study_test_split(folder, ["neg", "pos"]) == (
        None,
        "the rebuilt test split has numbers (regression), the model predicts classes",
    )
    assert study_test_split(folder, ["value"])[1] == "the rebuilt test split's target is 'score', the model's 'value'"
    classes, _ = pair_model
    assert study_test_split(classes, ["score"])[1].startswith("the rebuilt test split has classes")


def test_a_regression_pair_model_exports_checked_on_pairs(tiny_bert, tmp_path):
    """STS-B's kind of model: sentence pairs in, a number out; the graph reads each pair's type ids."""
    from autoft.onnx_export import export
    from autoft.onnx_predict import OnnxPredictor
    from autoft.predict import Predictor

    folder = saved_regressor(tmp_path / "best", tiny_bert, paired=True)
    report = export(folder)
    assert report["task"] == "regression" and report["texts"] == "the study's test split (15 rows)"
    assert report["fp32"]["passed"] and report["fp32"]["inputs"] == ["input_ids", "attention_mask", "token_type_ids"]
    graph = OnnxPredictor(folder, batch_size=3)
    assert graph.paired and graph.regression
    for first, second in ((FIRSTS, SECONDS), (SECONDS, FIRSTS)):
        np.testing.assert_allclose(
            graph.proba(first, second), Predictor(folder, device="cpu").proba(first, second), atol=1e-4
        )
    assert np.abs(graph.proba(SECONDS, FIRSTS) - graph.proba(FIRSTS, SECONDS)).max() > 1e-3


# --- multi-label models ----------------------------------------------------------------------------------------

#: the model's labels, in an order other than the data's (sorted: neg, pos), and one the data never gives
MULTI_LABELS = {0: "pos", 1: "mixed", 2: "neg"}
THRESHOLDS = {"pos": 0.35, "mixed": 0.5, "neg": 0.6}


def saved_multi_label(folder, backbone, rows=60, steps=40):
    """A multi-label model on ``backbone`` (3 outputs, problem_type multi_label_classification), saved as a study
    saves one: weights, tokenizer, task.json (task multi_label, a threshold per label), and a study.toml whose
    [dataset] is a Parquet table of label lists (autoft.testing's pos/neg sets, its test split carved from it).
    Trained for a few full-batch ``steps`` on those rows (a second), so that each label's probability follows
    the words of a text, well away from its threshold, as a study's model's would: an untrained tiny model's
    barely moves from text to text, and int8 noise would decide its labels."""
    import tomli_w
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from autoft.testing import label_set_rows, write_label_sets

    torch.manual_seed(0)
    model = AutoModelForSequenceClassification.from_pretrained(
        backbone,
        num_labels=3,
        id2label=MULTI_LABELS,
        label2id={v: k for k, v in MULTI_LABELS.items()},
        problem_type="multi_label_classification",
    )
    tokenizer = AutoTokenizer.from_pretrained(backbone)
    texts, sets = label_set_rows(rows)
    batch = tokenizer(texts, truncation=True, max_length=32, padding=True, return_tensors="pt")
    targets = torch.tensor([[float(name in labels) for name in MULTI_LABELS.values()] for labels in sets])
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    model.train()
    for _ in range(steps):
        loss = torch.nn.functional.binary_cross_entropy_with_logits(model(**batch).logits, targets)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()
    folder.mkdir(parents=True)
    model.save_pretrained(folder, safe_serialization=True)
    tokenizer.save_pretrained(folder)
    task = {"task": "multi_label", "inputs": ["text"], "thresholds": THRESHOLDS}
    (folder / "task.json").write_text(json.dumps(task))
    data = write_label_sets(folder.parent / "labels.parquet", rows)
    dataset = {"type": "files", "path": str(data), "label_column": "labels", "test_size": 0.25}
    study = {"model": {"name": str(backbone), "max_length": 32}, "dataset": dataset}
    (folder / "study.toml").write_text(tomli_w.dumps(study))
    return folder


@pytest.fixture(scope="module")
def multi_label_model(tmp_path_factory, tiny_bert):
    """A multi-label model exported with --quantize, checked on its study's test split of label sets."""
    from autoft.onnx_export import export

    folder = saved_multi_label(tmp_path_factory.mktemp("multi-label") / "best", tiny_bert)
    return folder, export(folder, quantize=True)


def test_a_multi_label_model_exports_sigmoids_checked_on_its_label_sets(multi_label_model):
    import onnx

    from autoft.onnx_export import summary

    folder, report = multi_label_model
    assert report["task"] == "multi_label" and report["thresholds"] == THRESHOLDS and report["temperature"] == 1.0
    assert report["texts"] == "the study's test split (16 rows)" and report["inputs"] == ["text"]
    fp32, int8 = report["fp32"], report["int8"]
    assert fp32["passed"] and fp32["max_abs_diff"] <= 1e-4 and fp32["outputs"] == ["logits", "probabilities"]
    assert fp32["set_agreement"] == 1.0 and fp32["sets_differ"] == 0 and fp32["decisions_differ"] == 0
    assert "argmax_agreement" not in fp32 and "accuracy" not in report["pytorch"]
    assert 0 <= report["pytorch"]["micro_f1"] <= 1 and fp32["micro_f1"] == pytest.approx(report["pytorch"]["micro_f1"])
    assert int8["passed"] and int8["set_agreement"] >= 0.99 and int8["decision_agreement"] >= int8["set_agreement"]
    assert int8["micro_f1_drop"] == pytest.approx(report["pytorch"]["micro_f1"] - int8["micro_f1"])
    assert report["files"] == ["model.onnx", "model.int8.onnx"]
    assert json.loads((folder / "onnx.json").read_text())["task"] == "multi_label"
    graph = onnx.load(str(folder / "model.onnx"), load_external_data=False).graph
    assert [o.name for o in graph.output] == ["logits", "probabilities"]
    lines = summary(report, folder)
    assert "a sigmoid per label" in lines[0] and "the same labels for 48 of 48 texts" in lines[0], lines
    assert "PyTorch's labels for" in lines[1] and "micro-F1" in lines[1] and "of 16 texts" in lines[1], lines


def test_the_multi_label_graph_gives_predictors_sigmoids_and_label_sets(multi_label_model):
    """Each label's own sigmoid (rows do not sum to 1), as Predictor gives them, at any batch size; the
    thresholds of task.json decide the labels, as Predictor's do."""
    import torch

    from autoft.onnx_predict import OnnxPredictor
    from autoft.predict import LABEL_SEPARATOR, Predictor

    folder, _ = multi_label_model
    predictor = Predictor(folder, device="cpu")
    reference = predictor.proba(TEXTS)
    assert reference.shape == (len(TEXTS), 3) and np.abs(reference.sum(axis=1) - 1).max() > 0.05  # not a softmax
    batch = predictor.tokenizer(TEXTS[:4], truncation=True, max_length=32, padding=True, return_tensors="pt")
    with torch.no_grad():
        sigmoid = torch.sigmoid(predictor.model(**batch).logits).numpy()
    np.testing.assert_allclose(reference[:4], sigmoid, atol=1e-5)
    for batch_size in (1, 5, 64):
        graph = OnnxPredictor(folder, batch_size=batch_size)
        assert graph.multi_label and not graph.regression and graph.label_names == ["pos", "mixed", "neg"]
        np.testing.assert_allclose(graph.proba(TEXTS), reference, atol=1e-4)
    assert graph.thresholds == predictor.thresholds == [0.35, 0.5, 0.6]
    result, expected = graph(TEXTS), predictor(TEXTS)
    assert result.label_sets == expected.label_sets and result.thresholds == predictor.thresholds
    assert len({LABEL_SEPARATOR.join(s) for s in result.label_sets}) > 1  # the sets vary: thresholds are crossed
    assert list(result.frame().columns) == ["labels", "p(pos)", "p(mixed)", "p(neg)"]
    assert graph.proba([]).shape == (0, 3)
    int8 = OnnxPredictor(folder, quantized=True).proba(TEXTS)
    assert int8.shape == (len(TEXTS), 3) and np.abs(int8 - reference).max() < 0.1


def test_predict_onnx_writes_a_labels_column_and_serve_answers_label_sets(multi_label_model, cli, tmp_path):
    import pandas as pd
    from fastapi.testclient import TestClient

    from autoft.predict import Predictor
    from autoft.serve import create_app, load_model

    folder, _ = multi_label_model
    texts = tmp_path / "texts.txt"
    texts.write_text("\n".join(TEXTS) + "\n")
    outputs = {}
    for flags in ([], ["--onnx"]):
        out = tmp_path / f"labels{len(flags)}.csv"
        result = cli("predict", folder, "--file", texts, "--output", out, *flags)
        assert result.code == 0, result.err
        outputs[len(flags)] = pd.read_csv(out, keep_default_na=False)
    torch, onnx = outputs[0], outputs[1]
    assert list(onnx.columns) == ["text", "labels", "p(pos)", "p(mixed)", "p(neg)"] == list(torch.columns)
    assert list(onnx["labels"]) == list(torch["labels"])
    np.testing.assert_allclose(
        onnx[["p(pos)", "p(mixed)", "p(neg)"]], torch[["p(pos)", "p(mixed)", "p(neg)"]], atol=1e-4
    )
    model = load_model(folder, batch_size=4, onnx=True)
    expected = Predictor(folder, device="cpu")(TEXTS[:6])
    with TestClient(create_app(model, folder, batch_size=4, max_wait_ms=1, backend="onnx")) as client:
        root = client.get("/").json()
        assert root["task"] == "multi_label" and root["labels"] == ["pos", "mixed", "neg"]
        assert root["thresholds"] == THRESHOLDS
        response = client.post("/predict", json={"texts": TEXTS[:6]})
        assert response.status_code == 200, response.text
    got = response.json()["predictions"]
    assert [p["labels"] for p in got] == expected.label_sets
    np.testing.assert_allclose([list(p["scores"].values()) for p in got], expected.proba, atol=1e-4)


def test_the_multi_label_test_split_keeps_its_label_sets_in_the_models_order(multi_label_model, pair_model):
    import pandas as pd

    from autoft.onnx_texts import study_test_split

    folder, _ = multi_label_model
    check, why = study_test_split(folder, ["pos", "mixed", "neg"], paired=False)
    assert check is not None, why
    assert check.labels.shape == (16, 3) and check.labels.dtype == np.float32 and set(np.unique(check.labels)) <= {0, 1}
    table = pd.read_parquet(folder.parent / "labels.parquet")
    sets = dict(zip(table["text"], table["labels"]))
    for text, row in zip(check.texts, check.labels):
        assert [n for n, on in zip(["pos", "mixed", "neg"], row) if on] == sorted(sets[text], reverse=True)
    assert check.labels[:, 1].sum() == 0 and check.labels[:, 0].sum() > 0 and check.labels[:, 2].sum() > 0
    assert study_test_split(folder, ["neg", "pos"], multi_label=False)[1] == (
        "the rebuilt test split has sets of labels (multi-label), the model gives one class per row"
    )
    classes, _ = pair_model
    assert study_test_split(classes, ["different", "same"], multi_label=True)[1] == (
        "the rebuilt test split has one class per row, the model gives sets of labels (multi-label)"
    )


def test_a_multi_label_check_that_fails_writes_nothing_and_an_int8_graph_that_changes_sets_is_not_kept(
    multi_label_model, cli, tmp_path, monkeypatch
):
    import autoft.onnx_export as onnx_export

    source, _ = multi_label_model
    copy = tmp_path / "best"
    shutil.copytree(source, copy)
    before = {p.name: p.stat().st_mtime_ns for p in copy.iterdir()}
    monkeypatch.setattr(onnx_export, "export_graph", exported_before(source))
    real = onnx_export.compare_sets
    monkeypatch.setattr(onnx_export, "compare_sets", lambda a, b, t: {**real(a, b, t), "sets_differ": 2})
    one_line_error(cli("export", copy, "--onnx"), "label sets differ", "nothing was written")
    assert {p.name: p.stat().st_mtime_ns for p in copy.iterdir()} == before
    monkeypatch.setattr(onnx_export, "compare_sets", real)
    monkeypatch.setattr(onnx_export, "INT8_AGREEMENT", 1.01)
    result = cli("export", copy, "--onnx", "--quantize")
    one_line_error(result, "the int8 graph gives the PyTorch model's set of labels for", "was not written")
    report = json.loads((copy / "onnx.json").read_text())
    assert report["files"] == ["model.onnx"] and report["fp32"]["passed"] and not report["int8"]["passed"]
    assert not (copy / "model.int8.onnx").exists()


def test_without_a_test_split_a_multi_label_model_is_checked_on_its_listed_mistakes(
    multi_label_model, tmp_path, monkeypatch
):
    """evaluation/mistakes.csv lists a row per wrong decision: each text is checked once."""
    import pandas as pd

    import autoft.onnx_export as onnx_export

    source, _ = multi_label_model
    folder = tmp_path / "run" / "best"
    shutil.copytree(source, folder)
    (folder / "study.toml").write_text("[model]\nmax_length = 32\n")
    (tmp_path / "run" / "evaluation").mkdir()
    mistakes = {"text": ["superb seller", "superb seller", "broken box"], "label": ["pos", "neg", "neg"]}
    pd.DataFrame(mistakes).to_csv(tmp_path / "run" / "evaluation" / "mistakes.csv", index=False)
    monkeypatch.setattr(onnx_export, "export_graph", exported_before(source))
    report = onnx_export.export(folder)
    assert report["texts"].startswith("2 texts of evaluation/mistakes.csv and 200 texts drawn from the vocabulary")
    assert report["fp32"]["passed"] and report["pytorch"]["micro_f1"] is None and report["rows"] == 202
