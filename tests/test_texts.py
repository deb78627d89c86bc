"""A lone surrogate (half a UTF-16 pair, or a byte that was not UTF-8) is no text: every way into the model
names the texts that hold one, in one line, instead of the tokenizer's TypeError."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from autoft.data import RawDataset, Split, prepare
from autoft.errors import DataError

WORDS = st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Z", "C")), min_size=1, max_size=12)
SURROGATES = st.integers(0xD800, 0xDFFF).map(chr)


@st.composite
def texts_with_surrogates(draw):
    """(texts, the indexes that hold a lone surrogate), at least one of them."""
    texts = draw(st.lists(WORDS, min_size=4, max_size=12))
    bad = sorted(draw(st.sets(st.integers(0, len(texts) - 1), min_size=1)))
    for i in bad:
        at = draw(st.integers(0, len(texts[i])))
        texts[i] = texts[i][:at] + draw(SURROGATES) + texts[i][at:]
    return texts, bad


@given(texts_with_surrogates())
def test_a_dataset_names_the_rows_whose_texts_hold_a_lone_surrogate(case):
    texts, bad = case
    raw = RawDataset({"train": Split(texts, ["a", "b"] * (len(texts) // 2) + ["a"] * (len(texts) % 2))}, None, "t")
    shown = ", ".join(map(str, bad[:5])) + (", ..." if len(bad) > 5 else "")
    with pytest.raises(DataError, match=rf"^w: train has {len(bad)} texts that hold a lone surrogate.*\(rows {shown};"):
        prepare(raw, seed=0, validation_size=0.2, test_size=0.2, where="w")


@given(texts_with_surrogates())
def test_a_request_names_the_texts_that_hold_a_lone_surrogate(case):
    from autoft.serve import BadRequest, parse_request

    texts, bad = case
    with pytest.raises(BadRequest, match=rf"^'texts\[{bad[0]}\]'.* holds? a lone surrogate") as caught:
        parse_request(__import__("json").dumps({"texts": texts}).encode())
    assert caught.value.status == 422


def test_predict_names_an_argument_that_is_not_utf8(finished_run, cli):
    """A byte that is not UTF-8 in a command line reaches Python as U+DC80-U+DCFF."""
    result = cli("predict", finished_run.best, "fine words", b"caf\xe9".decode("utf-8", "surrogateescape"))
    assert result.code == 2 and result.err.count("\n") == 1, result.err
    assert "text 2 of the 2 given holds a lone surrogate" in result.err and "U+DCE9 at character 4" in result.err
