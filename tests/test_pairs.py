"""Sentence pairs: two texts per row, encoded as one pair, from the data files to ``autoft predict``."""

import json

import numpy as np
import pandas as pd
import pytest
from conftest import tiny_study
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from autoft.data import DataError, RawDataset, Split, prepare
from autoft.features import encode
from autoft.models import load_tokenizer, resolve
from autoft.testing import make_tiny_model, write_pairs_csv, write_study

PAIR_DATASET = {"type": "files", "text_column": "first", "text_pair_column": "second"}


def _prepare(splits, **kw):
    kw = {"seed": 0, "validation_size": 0.2, "test_size": 0.2, "where": "data.csv", **kw}
    return prepare(RawDataset(splits), **kw)


@settings(max_examples=30, deadline=None)
@given(
    n=st.integers(12, 80),
    seed=st.integers(0, 1000),
    cap=st.integers(4, 40),
)
def test_carving_and_sampling_keep_each_row_whole(n, seed, cap):
    """Whatever autoft carves or samples, every row keeps its own second text and label."""
    texts = [f"first {i}" for i in range(n)]
    pairs = [f"second {i}" for i in range(n)]
    labels = ["a" if i % 3 else "b" for i in range(n)]
    data = _prepare({"train": Split(texts, labels, pairs)}, seed=seed, max_rows={"train": cap})
    assert data.paired
    for split in (data.train, data.validation, data.test):
        for text, pair, label in zip(split.texts, split.pairs, split.labels):
            i = int(text.split()[1])
            assert pair == f"second {i}" and data.label_names[label] == labels[i]
    rows = data.train.texts + data.validation.texts + data.test.texts
    assert len(set(rows)) == len(rows)


def test_single_text_data_keeps_its_fingerprint_and_has_no_pairs():
    texts, labels = [f"text {i}" for i in range(20)], ["a", "b"] * 10
    single = _prepare({"train": Split(texts, labels)})
    paired = _prepare({"train": Split(texts, labels, ["same"] * 20)})
    assert not single.paired and single.train.pairs is None
    assert single.fingerprint != paired.fingerprint  # the second texts are part of the data's identity


@pytest.mark.parametrize(
    "pairs, message",
    [
        (["ok"] * 9 + [""], "train has 1 empty or missing second texts of pairs (rows 9)"),
        (["ok"] * 9 + [None], "train has 1 empty or missing second texts of pairs (rows 9)"),
        (["ok"] * 9 + [[1, 2]], "second texts that are not text (lists)"),
        (["ok"] * 8, "train has 10 texts but 8 second texts"),
    ],
)
def test_bad_second_texts_are_named(pairs, message):
    with pytest.raises(DataError, match=message.replace("(", r"\(").replace(")", r"\)")):
        _prepare({"train": Split([f"t {i}" for i in range(10)], ["a", "b"] * 5, pairs)})


def test_pairs_in_some_splits_only_is_an_error():
    with pytest.raises(DataError, match="the test split has no second texts while train has pairs"):
        _prepare(
            {
                "train": Split(["a", "b", "c", "d"], ["x", "y"] * 2, ["1", "2", "3", "4"]),
                "test": Split(["e", "f"], ["x", "y"]),
            }
        )


def test_pairs_are_encoded_as_pairs_with_type_ids_where_the_model_has_them(tmp_path, tiny_bert):
    bert = load_tokenizer(resolve(str(tiny_bert), tiny_bert.parent))
    long_first = " ".join(["great"] * 60)
    enc = encode(bert, [long_first, "awful"], np.array([0, 1]), 16, pairs=["lovely day", "poor " * 40])
    for row in range(2):
        ids = enc.ids[enc.offsets[row] : enc.offsets[row + 1]]
        types = enc.type_ids[enc.offsets[row] : enc.offsets[row + 1]]
        assert len(ids) <= 16 and list(ids).count(bert.sep_token_id) == 2  # both texts kept, longer one cut
        assert types[0] == 0 and types[-1] == 1
    batch = enc.batch(np.array([0, 1]), bert.pad_token_id)
    assert batch["token_type_ids"].shape == batch["input_ids"].shape
    single = encode(bert, ["great"], np.array([0]), 16)
    assert single.type_ids is None and "token_type_ids" not in single.batch(np.array([0]), 0)
    roberta_dir = make_tiny_model(tmp_path / "roberta", "roberta")
    roberta = load_tokenizer(resolve(str(roberta_dir), tmp_path))
    assert encode(roberta, ["great"], np.array([0]), 16, pairs=["awful"]).type_ids is None


def test_a_files_dataset_names_a_bad_pair_column(cli, tmp_path, tiny_bert):
    data = write_pairs_csv(tmp_path / "pairs.csv", 60)
    for column, message in [
        ("missing", "text_pair_column"),
        ("label", "text_pair_column 'label' is also label_column"),
        ("first", "text_pair_column 'first' is also the first text's columns"),
    ]:
        dataset = {**PAIR_DATASET, "path": str(data), "text_pair_column": column}
        study = write_study(tmp_path / "study.toml", tiny_study(tmp_path, tiny_bert, data, dataset=dataset))
        result = cli("study", "check", study)
        assert result.code == 2, result.err
        assert message in result.err and len(result.err.strip().splitlines()) == 1


@pytest.fixture(scope="module")
def pair_run(tmp_path_factory, tiny_bert):
    """A finished study on pairs whose label only the second text gives away."""
    from autoft.cli import main

    root = tmp_path_factory.mktemp("pairs")
    data = write_pairs_csv(root / "pairs.csv", 300)
    study = tiny_study(
        root,
        tiny_bert,
        data,
        dataset={**PAIR_DATASET, "path": str(data)},
        search={"n_trials": 1, "isolation": "none"},
        space={"learning_rate": 3e-3, "epochs": 5, "batch_size": 16},
    )
    assert main(["study", "run", str(write_study(root / "study.toml", study)), "--no-progress"]) == 0
    return root


def test_a_pair_study_learns_from_the_second_text(pair_run):
    best = pair_run / "runs" / "tiny" / "best"
    metrics = json.loads((best / "metrics.json").read_text())
    assert metrics["test"]["accuracy"] >= 0.9  # a model blind to the second text scores about 0.5
    assert json.loads((best / "task.json").read_text()) == {"task": "classification", "inputs": ["first", "second"]}
    wrong = pd.read_csv(pair_run / "runs" / "tiny" / "evaluation" / "misclassified.csv")
    assert list(wrong.columns[:2]) == ["text", "text_pair"]


def test_predict_reads_pairs_from_the_models_columns(cli, pair_run, tmp_path):
    best = pair_run / "runs" / "tiny" / "best"
    rows = pd.DataFrame({"first": ["the box arrived today", "it came on monday"], "second": ["great", "awful"]})
    rows.to_csv(tmp_path / "in.csv", index=False)
    result = cli("predict", best, "--input", tmp_path / "in.csv", "--output", tmp_path / "out.csv")
    assert result.code == 0, result.err
    assert pd.read_csv(tmp_path / "out.csv")["label"].tolist() == ["pos", "neg"]
    swapped = rows.rename(columns={"first": "a", "second": "b"})
    swapped.to_csv(tmp_path / "other.csv", index=False)
    named = cli("predict", best, "--input", tmp_path / "other.csv", "--text-column", "a", "--pair-column", "b")
    assert named.code == 0, named.err
    assert "pos" in named.out and "neg" in named.out


def test_predict_reads_pairs_from_a_file_of_tab_separated_lines(cli, pair_run, tmp_path):
    best = pair_run / "runs" / "tiny" / "best"
    (tmp_path / "pairs.txt").write_text("the box arrived today\tgreat\n\nit came on monday\tawful\n")
    result = cli("predict", best, "--file", tmp_path / "pairs.txt", "--output", tmp_path / "out.csv")
    assert result.code == 0, result.err
    out = pd.read_csv(tmp_path / "out.csv")
    assert out[["first", "second", "label"]].values.tolist() == [
        ["the box arrived today", "great", "pos"],
        ["it came on monday", "awful", "neg"],
    ]
    (tmp_path / "bad.txt").write_text("a\tgreat\nno tab here\n")
    bad = cli("predict", best, "--file", tmp_path / "bad.txt")
    assert bad.code == 2 and "text 2 (counted from 1, blank lines skipped) is not two texts" in bad.err


#: parts of a --file line: words, blanks, tabs, and the characters str.splitlines also breaks lines at
line_parts = st.one_of(
    st.sampled_from(["great", "awful", "the box arrived", " ", "", "\t", "é 日本", "\r", "\x85", "\u2028", '"', ","]),
    st.text(max_size=6),
)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(lines=st.lists(st.lists(line_parts, max_size=4).map("".join), min_size=1, max_size=5))
def test_generated_pair_files_give_a_row_per_pair_or_fail_in_one_line(cli, pair_run, tmp_path, lines):
    best = pair_run / "runs" / "tiny" / "best"
    source, out = tmp_path / "gen.txt", tmp_path / "gen-out.csv"
    source.write_text("\n".join(lines), encoding="utf-8")
    out.unlink(missing_ok=True)
    result = cli("predict", best, "--file", source, "--output", out)
    given_lines = [line for line in source.read_text(encoding="utf-8").splitlines() if line.strip()]
    if result.code == 0:
        rows = pd.read_csv(out, keep_default_na=False, dtype=str)
        assert len(rows) == len(given_lines)
        assert [f"{a}\t{b}" for a, b in zip(rows["first"], rows["second"])] == given_lines  # each pair kept whole
        assert set(rows["label"]) <= {"pos", "neg"}
    else:
        assert result.code == 2 and len(result.err.strip().splitlines()) == 1, result.err
        assert "Traceback" not in result.err and not out.exists()
        assert any("\t" not in line or not all(p.strip() for p in line.split("\t", 1)) for line in given_lines) or (
            not given_lines
        )


@pytest.mark.parametrize(
    "args, message",
    [
        (["just one text"], "reads sentence pairs (first, second)"),
        (["--input", "{in}", "--pair-column", "first"], "--text-column and --pair-column both name 'first'"),
        (["--input", "{in}", "--pair-column", "nope"], "--pair-column"),
        (["x", "--pair-column", "second"], "--pair-column names a column of --input"),
    ],
)
def test_predict_refuses_what_a_pair_model_cannot_read(cli, pair_run, tmp_path, args, message):
    best = pair_run / "runs" / "tiny" / "best"
    pd.DataFrame({"first": ["a b"], "second": ["great"]}).to_csv(tmp_path / "in.csv", index=False)
    result = cli("predict", best, *[a.format(**{"in": tmp_path / "in.csv"}) for a in args])
    assert result.code == 2
    assert message in result.err and len(result.err.strip().splitlines()) == 1


def test_pair_column_for_a_single_text_model_is_refused(cli, finished_run, tmp_path):
    pd.DataFrame({"text": ["a b"], "other": ["great"]}).to_csv(tmp_path / "in.csv", index=False)
    result = cli("predict", finished_run.best, "--input", tmp_path / "in.csv", "--pair-column", "other")
    assert result.code == 2 and "reads single texts, not pairs" in result.err


def test_attributions_cover_both_texts_of_a_pair(pair_run):
    import torch

    from autoft.attributions import token_attributions
    from autoft.saved import load_trained

    model, tokenizer = load_trained(pair_run / "runs" / "tiny" / "best")
    (tokens,) = token_attributions(
        model, tokenizer, ["the box arrived"], [1], max_length=32, device=torch.device("cpu"), pairs=["great"]
    )
    words = [t for t, _ in tokens]
    assert words == ["the", "box", "arrived", "[SEP]", "great"]
    strongest = max(tokens, key=lambda t: abs(t[1]))
    assert strongest[0] == "great"  # the word that gives the label away


def test_the_reports_table_of_mistakes_shows_both_texts(tmp_path):
    from autoft.evaluation import misclassified_frame
    from autoft.report import misclassified_rows

    proba = np.array([[0.9, 0.1], [0.2, 0.8]])
    frame = misclassified_frame(["a cat", "a dog"], np.array([1, 1]), proba, ["no", "yes"], pairs=["x", "y"])
    frame.to_csv(tmp_path / "misclassified.csv", index=False)
    header, cells = misclassified_rows(tmp_path / "misclassified.csv")
    assert header[:2] == ["text", "second text"]
    assert cells == [["a cat", "x", "yes", "no", "0.900", "0.100"]]
