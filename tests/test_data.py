import numpy as np
import pytest

from autoft.data import RawDataset, Split, prepare
from autoft.errors import DataError


def make(splits, names=None):
    return RawDataset({k: Split(*v) for k, v in splits.items()}, names, source="test")


def texts(n, prefix="t"):
    return [f"{prefix} {i}" for i in range(n)]


def test_string_labels_get_sorted_ids_and_missing_splits_are_carved_stratified():
    labels = ["pos"] * 60 + ["neg"] * 30 + ["mid"] * 10
    data = prepare(make({"train": (texts(100), labels)}), seed=1, validation_size=0.2, test_size=0.1, where="w")
    assert data.label_names == ("mid", "neg", "pos")
    assert len(data.test) == 10 and len(data.validation) == 18 and len(data.train) == 72
    for split in (data.train, data.validation, data.test):
        counts = np.bincount(split.labels, minlength=3) / len(split)
        assert counts == pytest.approx([0.1, 0.3, 0.6], abs=0.07)
    seen = data.train.texts + data.validation.texts + data.test.texts
    assert sorted(seen) == sorted(texts(100))


def test_carving_is_seeded():
    raw = make({"train": (texts(50), ["a", "b"] * 25)})
    one = prepare(raw, seed=3, validation_size=0.2, test_size=0.2, where="w")
    two = prepare(raw, seed=3, validation_size=0.2, test_size=0.2, where="w")
    other = prepare(raw, seed=4, validation_size=0.2, test_size=0.2, where="w")
    assert one.test.texts == two.test.texts and one.fingerprint == two.fingerprint
    assert one.test.texts != other.test.texts


def test_integer_labels_with_names():
    raw = make(
        {
            "train": (texts(6), [0, 1, 2, 0, 1, 2]),
            "test": (texts(3, "x"), [2, 1, 0]),
            "validation": (texts(3, "v"), [0, 1, 2]),
        },
        ["negative", "neutral", "positive"],
    )
    data = prepare(raw, seed=0, validation_size=0.1, test_size=0.1, where="w")
    assert data.label_names == ("negative", "neutral", "positive")
    assert data.test.labels.tolist() == [2, 1, 0]


def test_integer_labels_without_names_keep_their_values_as_names():
    raw = make(
        {"train": (texts(8), [3, 5] * 4), "validation": (texts(2, "v"), [3, 5]), "test": (texts(2, "x"), [5, 3])}
    )
    data = prepare(raw, seed=0, validation_size=0.1, test_size=0.1, where="w")
    assert data.label_names == ("3", "5")
    assert data.test.labels.tolist() == [1, 0]


@pytest.mark.parametrize(
    "splits, names, message",
    [
        ({"train": (texts(4), ["a"] * 4)}, None, "train has a single class ('a')"),
        (
            {"train": (["x", " ", "y", None], ["a", "b", "a", "b"])},
            None,
            "train has 2 empty or missing texts (rows 1, 3)",
        ),
        ({"train": (texts(4), ["a", None, "b", float("nan")])}, None, "train has 2 missing labels (rows 1, 3)"),
        (
            {"train": (texts(4), ["a", "b"] * 2), "test": (texts(2, "x"), ["a", "c"])},
            None,
            "test has labels that train lacks: 'c'",
        ),
        ({"train": (texts(4), [0, 1, 0, 7])}, ["n", "p"], "label 7 is outside 0..1 (n, p)"),
        ({"train": (texts(4), ["n", "p", "q", "n"])}, ["n", "p"], "unknown label 'q'; valid labels: n, p"),
        ({"train": (texts(3), ["a", "b"])}, None, "train has 3 texts but 2 labels"),
        ({"train": ([], [])}, None, "the train split is empty"),
        ({"validation": (texts(3), ["a", "b", "a"])}, None, "the dataset has no train split"),
        ({"train": (texts(4), ["a", "b"] * 2), "dev": (texts(2), ["a", "b"])}, None, "unknown split 'dev'"),
        ({"train": (texts(4), ["a", 0.5, "b", "a"])}, None, "label 0.5 is not a class"),
    ],
)
def test_bad_data_is_refused_with_the_reason(splits, names, message):
    with pytest.raises(DataError) as err:
        prepare(make(splits, names), seed=0, validation_size=0.25, test_size=0.25, where="data.csv")
    assert message in str(err.value)
    assert str(err.value).startswith("data.csv: ")


@pytest.mark.parametrize(
    "labels, warned",
    [
        (["pos", "Pos", "neg"], "labels 'Pos', 'pos' differ only in case or spacing; they are 2 classes here"),
        (["very good", "Very  Good", "bad"], "labels 'Very  Good', 'very good' differ only in case or spacing"),
        (["pos", "neg", "mixed"], None),
    ],
)
def test_labels_that_differ_only_in_case_or_spacing_are_kept_apart_and_said(labels, warned):
    data = prepare(make({"train": (texts(30), labels * 10)}), seed=0, validation_size=0.2, test_size=0.2, where="w")
    assert len(data.label_names) == 3
    warnings = [n for n in data.notes if n.startswith("warning")]
    assert (warned in warnings[0]) if warned else not warnings, warnings


def test_texts_shared_across_splits_are_reported():
    raw = make(
        {
            "train": (texts(10), ["a", "b"] * 5),
            "validation": (["t 1", "new"], ["b", "a"]),
            "test": (["t 2", "t 4", "other"], ["a", "a", "b"]),
        }
    )
    data = prepare(raw, seed=0, validation_size=0.1, test_size=0.1, where="w")
    assert "warning: 1 validation texts also appear in train" in " ".join(data.notes)
    assert "warning: 2 test texts also appear in train" in " ".join(data.notes)


@pytest.mark.parametrize(
    "labels, sizes, message",
    [
        (["x", "y", "x"], (0.1, 0.1), "but class 'y' has only 1 row (it needs 3: one for train, one for each carved"),
        (["x"] * 30 + ["y"], (0.1, 0.1), "class 'y' has only 1 row"),
        (["x", "y"] * 3, (0.1, 0.1), "but test_size = 0.1 of 6 rows is 1 row, fewer than the 2 classes"),
        (
            [f"c{i % 10}" for i in range(30)],
            (0.1, 0.1),
            "test_size = 0.1 of 30 rows is 3 rows, fewer than the 10 classes",
        ),
        (["x", "y"] * 20, (0.99, 0.1), "validation_size leave 0 rows for train, fewer than the 2 classes"),
    ],
)
def test_too_few_rows_to_carve_say_it_is_autofts_carving_and_what_to_do(labels, sizes, message):
    raw = make({"train": (texts(len(labels)), labels)})
    with pytest.raises(DataError) as err:
        prepare(raw, seed=0, validation_size=sizes[0], test_size=sizes[1], where="data.csv")
    text = str(err.value)
    assert "autoft carves the" in text and message in text, text
    assert "give the split" in text and "\n" not in text


def test_a_given_test_split_needs_only_the_validation_carving():
    raw = make({"train": (texts(20), ["x"] * 18 + ["y"] * 2), "test": (texts(2, "x"), ["x", "y"])})
    data = prepare(raw, seed=0, validation_size=0.1, test_size=0.1, where="w")
    assert set(data.validation.labels.tolist()) == {0, 1} and set(data.train.labels.tolist()) == {0, 1}


def test_a_capped_split_keeps_every_class():
    raw = make({"train": (texts(60), ["x"] * 57 + ["y"] * 3)})
    data = prepare(raw, seed=0, validation_size=0.2, test_size=0.2, where="w", max_rows={"train": 5})
    assert set(data.train.labels.tolist()) == {0, 1}


@pytest.mark.parametrize(
    "values, message",
    [
        ([["a"], "b", "c", "d"], "train has 1 texts that are not text (lists, rows 0)"),
        ([{"a": 1}, "b", "c", "d"], "texts that are not text (tables (objects), rows 0)"),
        ([1, 2.5, "c", "d"], "texts that are not text (numbers, rows 0, 1)"),
        (["1", " 2.5", "-3", "1e5"], "every train text is a number (such as '1')"),
    ],
)
def test_texts_that_are_not_text_are_refused(values, message):
    with pytest.raises(DataError, match=message.replace("(", r"\(").replace(")", r"\)")):
        prepare(make({"train": (values, ["a", "b"] * 2)}), seed=0, validation_size=0.25, test_size=0.25, where="w")


def test_na_words_are_labels_and_integer_labels_read_as_text_still_index_names():
    raw = make({"train": (texts(15), ["None", "NA", "null"] * 5)})
    data = prepare(raw, seed=0, validation_size=0.25, test_size=0.2, where="w")
    assert data.label_names == ("NA", "None", "null")
    splits = {"train": (texts(6), ["0", "1", "1.0"] * 2), "validation": (["v"], [0]), "test": (["t"], ["1"])}
    named = prepare(make(splits, ["neg", "pos"]), seed=0, validation_size=0.1, test_size=0.1, where="w")
    assert named.train.labels.tolist() == [0, 1, 1] * 2 and named.test.labels.tolist() == [1]
    with pytest.raises(DataError, match="label name 0 is empty"):
        prepare(make(splits, ["", "pos"]), seed=0, validation_size=0.1, test_size=0.1, where="w")
