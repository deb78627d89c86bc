"""Using a saved model: predict from files to files, and evaluate it on any dataset split."""

import json
import os

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st


@pytest.fixture
def best_model(finished_run):
    """(best/, data, study.toml) of conftest's shared ``finished_run``: a tiny BERT that learned the data.
    Shared by the session: a test that changes the model works on a copy."""
    return finished_run.best, finished_run.data, finished_run.study


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
    """--data: a table without splits is scored whole (it scored the 10% a study with seed 0 would carve);
    --study: the study's own splits, as its run carved them."""
    best, data, study = best_model
    out = tmp_path / "eval"
    given = ["evaluate", best, "--data", "type=files", "--data", f"path={json.dumps(str(data))}"]
    result = cli(*given, "--out", out, "--explain", "2")
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
    assert f"on all {len(pd.read_csv(data))} rows of" in result.out
    assert "precision" in result.out and "misclassified" in result.out
    report = json.loads((out / "classification_report.json").read_text())
    assert report["macro avg"]["support"] == len(pd.read_csv(data))
    with_study = cli("evaluate", best, "--study", study, "--split", "test", "--out", tmp_path / "t")
    assert with_study.code == 0, with_study.err
    ours = json.loads((tmp_path / "t" / "evaluation.json").read_text())
    study_eval = json.loads((best.parent / "evaluation" / "evaluation.json").read_text())
    assert ours["accuracy"] == pytest.approx(study_eval["accuracy"])  # the same seeded test split
    assert cli("evaluate", best, "--study", study, "--split", "validation", "--out", tmp_path / "v").code == 0
    one_line_error(cli(*given, "--split", "test"), "--split test: the --data table has no splits")


def test_evaluate_scores_a_table_of_one_class(best_model, tmp_path, cli):
    """Data of one label (every review a complaint) is a fair test of a model; only training needs two."""
    best, _, _ = best_model
    one = tmp_path / "complaints.csv"
    pd.DataFrame({"text": ["awful broken item", "the worst seller", "broken on arrival"], "label": "neg"}).to_csv(
        one, index=False
    )
    result = cli(
        "evaluate", best, "--data", "type=files", "--data", f"path={json.dumps(str(one))}", "--out", tmp_path / "e"
    )
    assert result.code == 0, result.err
    assert "on all 3 rows of" in result.out


def test_evaluate_refuses_labels_the_model_does_not_know(best_model, tmp_path, cli):
    best, _, _ = best_model
    other = tmp_path / "other.csv"
    pd.DataFrame({"text": [f"t {i}" for i in range(40)], "label": ["neg", "maybe"] * 20}).to_csv(other, index=False)
    result = cli("evaluate", best, "--data", "type=files", "--data", f"path={json.dumps(str(other))}")
    assert result.code == 2 and "'maybe'" in result.err and "not labels of the model (neg, pos)" in result.err


def one_line_error(result, *fragments):
    """Exit 2, one ``error: `` line holding every fragment, no traceback."""
    assert result.code == 2, result.out + result.err
    assert result.err.startswith("error: ") and result.err.count("\n") == 1, result.err
    assert "Traceback" not in result.out + result.err
    for fragment in fragments:
        assert fragment in result.err, (fragment, result.err)


def files_of(folder):
    return {p.relative_to(folder): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


# (id, how to make the arguments after "predict" from (best, tmp_path), what the error says)
BAD_PREDICT = [
    ("model is a file", lambda b, t: [b / "config.json", "x"], ["config.json' is a file, not a folder"]),
    ("model is a run folder", lambda b, t: [b.parent, "x"], ["is a run folder; give its saved model", "best'"]),
    ("model is missing", lambda b, t: [t / "nope", "x"], ["nope' does not exist"]),
    ("output suffix", lambda b, t: [b, "x", "--output", t / "out.xlsx"], ["--output", "out.xlsx", "use a .csv"]),
    ("output folder missing", lambda b, t: [b, "x", "--output", t / "no" / "o.csv"], ["no' does not exist"]),
    ("output is a folder", lambda b, t: [b, "x", "--output", t], ["--output", "is a folder"]),
    ("output under a file", lambda b, t: [b, "x", "--output", t / "in.csv" / "o.csv"], ["is a file, not a folder"]),
    ("output in the model", lambda b, t: [b, "x", "--output", b / "labels.csv"], ["--output", "which autoft wrote"]),
    ("output in the run", lambda b, t: [b, "x", "--output", b.parent / "l.json"], ["--output", "which autoft wrote"]),
    ("output is the input", lambda b, t: [b, "--input", t / "in.csv", "--output", t / "in.csv"], ["texts come from"]),
    ("input is a folder", lambda b, t: [b, "--input", t], ["--input", "is a folder"]),
    ("input has no rows", lambda b, t: [b, "--input", t / "header.csv"], ["--input", "has no rows"]),
    ("input and texts", lambda b, t: [b, "x", "--input", t / "in.csv"], ["not both"]),
    ("input from stdin", lambda b, t: [b, "--input", "-"], ["--input reads a table file", "use --file -"]),
    ("file is a folder", lambda b, t: [b, "--file", t], ["--file", "is a folder"]),
    ("file is empty", lambda b, t: [b, "--file", t / "empty.txt"], ["--file", "empty.txt' is empty"]),
    ("file is blank", lambda b, t: [b, "--file", t / "blank.txt"], ["--file", "holds only blank lines"]),
    ("file not UTF-8", lambda b, t: [b, "--file", t / "latin.txt"], ["--file", "not UTF-8 text at byte 3"]),
    ("empty text", lambda b, t: [b, "good", ""], ["text 2 of the 2 given is empty"]),
    ("blank texts", lambda b, t: [b, " ", "ok", "\t"], ["texts 1, 3 of the 3 given are empty or only whitespace"]),
    ("max length", lambda b, t: [b, "x", "--max-length", "5000"], ["--max-length: 5000 tokens", "takes (128)"]),
    ("column clash", lambda b, t: [b, "--input", t / "labelled.csv", "--output", t / "o.csv"], ["column(s) 'label'"]),
]


@pytest.mark.parametrize("make, fragments", [c[1:] for c in BAD_PREDICT], ids=[c[0] for c in BAD_PREDICT])
def test_predict_refuses_bad_arguments_in_one_line_and_writes_nothing(best_model, tmp_path, cli, make, fragments):
    best, _, _ = best_model
    pd.DataFrame({"text": ["superb seller", "awful item"]}).to_csv(tmp_path / "in.csv", index=False)
    pd.DataFrame({"text": ["great", "poor"], "label": ["pos", "neg"]}).to_csv(tmp_path / "labelled.csv", index=False)
    (tmp_path / "header.csv").write_text("text\n")
    (tmp_path / "empty.txt").write_text("")
    (tmp_path / "blank.txt").write_text("\n  \n\t\n")
    (tmp_path / "latin.txt").write_bytes("caf\xe9 ok\n".encode("latin-1"))
    before_run, before_here = files_of(best.parent), files_of(tmp_path)
    one_line_error(cli("predict", *make(best, tmp_path)), *fragments)
    assert files_of(best.parent) == before_run and files_of(tmp_path) == before_here


@pytest.mark.parametrize(
    "suffix, write",
    [
        (".jsonl", lambda p: p.write_text('{"t": "great"}\n{"t": null}\n{"t": ""}\n{"t": "   "}\n{"t": "poor"}\n')),
        (".csv", lambda p: p.write_text('t,n\ngreat,1\n,2\n"  ",3\npoor,4\n')),
    ],
)
def test_predict_refuses_missing_and_blank_texts_of_a_table_naming_the_rows(best_model, tmp_path, cli, suffix, write):
    """A label for no text is noise: a real missing value (JSON null) or a blank cell stops predict, naming rows."""
    best, _, _ = best_model
    source = tmp_path / f"in{suffix}"
    write(source)
    result = cli("predict", best, "--input", source, "--text-column", "t", "--output", tmp_path / "out.csv")
    rows = "rows 2, 3, 4 of 5" if suffix == ".jsonl" else "rows 2, 3 of 4"
    one_line_error(result, f"--input '{source}'", "column 't' (--text-column) has no text", rows)
    assert not (tmp_path / "out.csv").exists()


def test_predict_labels_words_that_only_look_missing(best_model, tmp_path, cli):
    """ "NA", "None", "null", "nan", "N/A" in a table are texts, as a Hugging Face pipeline takes them."""
    best, _, _ = best_model
    words = ["NA", "None", "null", "nan", "N/A", "superb"]
    source = tmp_path / "in.csv"
    source.write_text("id,text\n" + "".join(f"{i},{w}\n" for i, w in enumerate(words)))
    result = cli("predict", best, "--input", source, "--output", tmp_path / "out.jsonl")
    assert result.code == 0, result.err
    got = pd.read_json(tmp_path / "out.jsonl", lines=True, dtype=False)
    assert got["text"].tolist() == words
    assert got[["probability", "p(neg)", "p(pos)"]].notna().all().all()
    positional = cli("predict", best, "NA", "None")
    assert positional.code == 0, positional.err


def damaged_copy(best, tmp_path, change):
    """A copy of the saved model whose weights ``change`` edits (a dict of tensors, in place)."""
    import shutil

    from safetensors.torch import load_file, save_file

    copy = tmp_path / "model"
    shutil.copytree(best, copy)
    weights = load_file(copy / "model.safetensors")
    change(weights)
    save_file(weights, copy / "model.safetensors", metadata={"format": "pt"})
    return copy


def test_predict_and_evaluate_refuse_a_model_with_nan_weights(best_model, tmp_path, cli):
    best, data, _ = best_model
    copy = damaged_copy(best, tmp_path, lambda w: w["classifier.weight"].__setitem__((0, 0), float("nan")))
    out = tmp_path / "out.csv"
    one_line_error(cli("predict", copy, "superb", "--output", out), f"'{copy / 'model.safetensors'}'", "NaN")
    assert not out.exists()
    result = cli("evaluate", copy, "--data", "type=files", "--data", f"path={json.dumps(str(data))}")
    one_line_error(result, "model.safetensors", "NaN or infinite")
    assert not (copy / "evaluation-test").exists()


def test_predict_refuses_a_model_whose_outputs_are_not_finite(best_model, tmp_path, cli):
    """Finite weights whose logits overflow to infinity: no NaN probability is written."""
    best, _, _ = best_model

    def overflow(w):
        w["bert.pooler.dense.bias"].fill_(100.0)  # every pooled value tanh(100) = 1
        w["classifier.weight"][0].fill_(3e38)  # finite, but 64 of them sum past float32's largest
        w["classifier.weight"][1].fill_(-3e38)

    copy = damaged_copy(best, tmp_path, overflow)
    out = tmp_path / "out.csv"
    result = cli("predict", copy, "superb seller", "awful", "--output", out)
    one_line_error(result, f"the model in '{copy}' gives NaN or infinite probabilities for texts 1, 2 of 2")
    assert not out.exists()


def test_predict_refuses_a_device_this_machine_lacks(best_model, cli):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    one_line_error(cli("predict", best_model[0], "x", "--device", "cuda:0"), "--device cuda:0", "use --device cpu")


def test_evaluate_never_replaces_a_folder_that_is_not_an_evaluation(best_model, tmp_path, cli):
    best, data, _ = best_model
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    args = ["--data", "type=files", "--data", f"path={json.dumps(str(data))}"]
    one_line_error(cli("evaluate", best, *args, "--out", mine), f"--out '{mine}'", "no evaluation.json")
    assert (mine / "notes.txt").read_text() == "keep me"
    one_line_error(cli("evaluate", best, *args, "--out", mine / "notes.txt"), "is a file")
    one_line_error(cli("evaluate", best, *args, "--out", best.parent / "evaluation"), "the study's own test evaluation")
    one_line_error(cli("evaluate", best, "--study", tmp_path), f"--study '{tmp_path}' is a folder")
    one_line_error(cli("evaluate", best.parent, *args), "is a run folder; give its saved model")


TEXTS = st.lists(st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=1), min_size=1, max_size=5)
FLAGS = st.lists(st.sampled_from([("--device", "cpu"), ("--batch-size", "7"), ("--max-length", "64")]), unique=True)


@given(texts=TEXTS, flags=FLAGS, cuts=st.lists(st.integers(0, 5), min_size=3, max_size=3))
def test_texts_to_label_may_come_before_between_and_after_flags(texts, flags, cuts):
    """``predict best --device cpu "a text"`` labels "a text"; texts keep their order; after ``--`` a text may
    start with a dash."""
    from autoft.cli import build_parser, parse

    words = list(texts)
    dashed = [t for t in words if t.startswith("-")]
    plain = [t for t in words if not t.startswith("-")]
    at = dict(zip(cuts, flags))  # each flag goes before the text at that place (or after the last)
    argv = []
    for i in range(max(len(plain), *cuts) + 1):
        argv += at.get(i, ())
        argv += plain[i : i + 1]
    if dashed:
        argv += ["--", *dashed]
    args = parse(build_parser(), ["predict", "best", *argv])
    assert args.texts == plain + dashed
    given = dict(at.values())
    assert {f: getattr(args, f[2:].replace("-", "_")) for f in given} == {
        f: (v if f == "--device" else int(v)) for f, v in given.items()
    }


def test_predict_labels_texts_given_after_a_flag(best_model, cli):
    best, _, _ = best_model
    result = cli("predict", best, "--device", "cpu", "superb wonderful seller", "--batch-size", "1", "awful broken")
    assert result.code == 0, result.err
    assert "superb wonderful seller" in result.out and "awful broken" in result.out


def test_predict_reads_texts_from_standard_input_with_file_dash(best_model, tmp_path, cli, monkeypatch):
    """``--file -``, as Unix tools read standard input (it looked for a file named '-')."""
    import io

    best, _, _ = best_model
    stdin = io.TextIOWrapper(io.BytesIO(b"superb wonderful seller\n\nawful broken\n"))
    monkeypatch.setattr("sys.stdin", stdin)
    result = cli("predict", best, "--file", "-", "--output", tmp_path / "labels.csv")
    assert result.code == 0, result.err
    assert pd.read_csv(tmp_path / "labels.csv")["text"].tolist() == ["superb wonderful seller", "awful broken"]


def test_an_unknown_flag_among_texts_is_still_refused(best_model, cli):
    one_line_error(cli("predict", best_model[0], "x", "--devce", "cpu", "y"), "unrecognized arguments: --devce")


@pytest.mark.parametrize("item", ["path", "=x", " =x"])
def test_evaluate_names_the_data_flag_of_an_item_without_a_key_or_value(best_model, cli, item):
    one_line_error(cli("evaluate", best_model[0], "--data", item), f"--data {item!r}: expected key=value")


def test_a_full_disk_is_one_line_naming_the_file_and_leaves_no_partial_file(best_model, tmp_path, cli, monkeypatch):
    """ENOSPC (or a quota, or a read-only mount) from any write: the machine's problem, said in one line, exit 2,
    not a traceback; fsutil's temporary files are gone and the earlier evaluation stays as it was."""
    import errno

    best, data, _ = best_model
    out = tmp_path / "eval"
    args = ["evaluate", best, "--data", "type=files", "--data", f"path={json.dumps(str(data))}", "--out", out]
    assert cli(*args).code == 0
    before = files_of(tmp_path)

    def full(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr("autoft.fsutil.os.fsync", full)
    result = cli(*args)
    one_line_error(result, f"cannot write '{out}/", "': No space left on device; make room there")
    assert files_of(tmp_path) == before


@pytest.mark.parametrize(
    "exc, said",
    [
        (
            OSError(28, "No space left on device", "/r/.best.ab_cd123.tmp/model.safetensors"),
            "'/r/best/model.safetensors'",
        ),
        (OSError(30, "Read-only file system", "/r/a", None, "/r/.x.json.abcdefgh.tmp"), "'/r/x.json': Read-only"),
        (RuntimeError("Error while serializing: I/O error: No space left on device (os error 28)"), "No space left"),
        (ValueError("wrapped"), None),
        (OSError(2, "No such file or directory", "/r/a"), None),  # a bug, or a missing file: not the disk's
    ],
)
def test_what_counts_as_the_storage_refusing_a_write(exc, said):
    from autoft.errors import storage_refusal

    chained = RuntimeError("(sqlite3.OperationalError) database or disk is full")
    assert storage_refusal(chained) == "cannot write: database or disk is full"
    try:
        raise KeyError("outer") from exc
    except KeyError as outer:
        refusal = storage_refusal(outer)
    assert (said in refusal) if said else refusal is None, refusal


TABLES = st.lists(st.sampled_from(["neg", "pos", "maybe", "Neg", " neg", ""]), min_size=1, max_size=12)


@settings(max_examples=10, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
@given(labels=TABLES, split=st.sampled_from([None, "train", "validation", "test"]))
def test_evaluate_on_a_generated_table_scores_it_whole_or_says_why_in_one_line(
    labels, split, best_model, tmp_path_factory, capsys
):
    """Any one-table --data: every row scored (exit 0, 'all N rows'), or exit 2 in one line (a label the model
    lacks, a blank label, --split given); never a traceback, and the model folder stays as it was."""
    from autoft.cli import main

    best, _, _ = best_model
    folder = tmp_path_factory.mktemp("table")
    path = folder / "t.csv"
    pd.DataFrame({"text": [f"review {i} was fine" for i in range(len(labels))], "label": labels}).to_csv(
        path, index=False
    )
    before = files_of(best)
    args = ["evaluate", str(best), "--data", "type=files", "--data", f"path={json.dumps(str(path))}"]
    code = main([*args, "--out", str(folder / "e"), *(["--split", split] if split else [])])
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    if code == 0:
        assert split is None and f"on all {len(labels)} rows of" in out
    else:
        assert code == 2 and err.startswith("error: ") and err.count("\n") == 1, err
    assert files_of(best) == before
