"""Datasets: the plugin base class, and turning what a plugin loads into checked splits.

A dataset plugin returns a :class:`RawDataset` (texts and labels per split, as
they come). :func:`prepare` maps labels to ids, carves the validation and test
splits a dataset lacks (seeded and stratified), and checks everything a study
relies on, failing with a message that names the split, the rows and the fix.
"""

from __future__ import annotations

import functools
import hashlib
import math
import os
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from .errors import AutoftError, DataError, one_line
from .hub import is_url
from .texts import WHAT, not_unicode, surrogate_note

SPLITS = ("train", "validation", "test")
#: what a study predicts: one class per row, a number, or a set of labels per row
TASKS = ("classification", "regression", "multi_label")
#: how a sentence pair is written where one text is shown (tables of mistakes, messages)
PAIR_MARK = "[SEP]"


def one_line_errors(func):
    """Re-raise an AutoftError whose message would take more than one line with its control characters escaped."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except AutoftError as exc:
            text = str(exc)
            if text.isprintable():
                raise
            raise type(exc)(one_line(text)) from exc

    return wrapper


@dataclass(frozen=True)
class NoOptions:
    """A plugin without options."""


@dataclass
class Split:
    """Texts and their labels, in the form the source had them.

    ``pairs``, for sentence-pair data, holds each row's second text (the tokenizer encodes
    ``texts[i]`` and ``pairs[i]`` as one pair); every split of a dataset has pairs or none does.
    """

    texts: Sequence[str]
    labels: Sequence[Any]
    pairs: Sequence[str] | None = None


@dataclass
class RawDataset:
    """What a dataset plugin loads: splits by name (``train`` required) and label names if known.

    Labels are strings, or integers that index ``label_names`` when it is given.
    ``source`` names the files or hub id, for messages. ``text_columns`` names the input
    columns (one, or two for pairs) so that ``autoft predict --input`` reads the same names.
    """

    splits: dict[str, Split]
    label_names: Sequence[str] | None = None
    source: str = ""
    notes: list[str] = field(default_factory=list)
    text_columns: tuple[str, ...] = ()
    label_column: str = ""  # names a regression target (its single "label name"); "value" when empty


@dataclass(frozen=True)
class LoadContext:
    """What a dataset plugin may need besides its options."""

    base_dir: Path
    seed: int = 0

    def path(self, value: str | Path) -> Path:
        """A path from the study file, relative to the study file's folder (not a URL; no wildcards)."""
        if isinstance(value, str) and is_url(value):
            raise DataError(
                f"[dataset] '{value}' is a URL; the dataset reads local files: download it first "
                '(a Hugging Face Hub dataset: type = "hub")'
            )
        p = Path(value).expanduser()
        p = p if p.is_absolute() else Path(os.path.normpath(self.base_dir / p))
        if not p.exists() and any(c in str(value) for c in "*?["):
            raise DataError(f"[dataset] '{value}' does not exist (wildcards are not expanded); name one file or folder")
        return p


class Dataset:
    """Base class of dataset plugins: set ``name``, optionally ``Options``, and implement :meth:`load`."""

    name: ClassVar[str] = ""
    Options: ClassVar[type] = NoOptions

    def load(self, options: Any, ctx: LoadContext) -> RawDataset:
        raise NotImplementedError


@dataclass(frozen=True)
class LabelledTexts:
    texts: list[str]
    labels: np.ndarray  # int64 label ids; float32 targets for regression; float32 0/1 (rows, labels) for multi-label
    pairs: list[str] | None = None  # the second text of each row, for sentence pairs

    def __len__(self) -> int:
        return len(self.texts)

    def shown(self, row: int) -> str:
        """Row ``row``'s text as a person reads it: a pair is shown as ``first [SEP] second``."""
        return self.texts[row] if self.pairs is None else f"{self.texts[row]} {PAIR_MARK} {self.pairs[row]}"


@dataclass(frozen=True)
class PreparedData:
    """The checked train, validation and test splits with label ids and names."""

    train: LabelledTexts
    validation: LabelledTexts
    test: LabelledTexts
    label_names: tuple[str, ...]
    source: str
    fingerprint: str
    notes: tuple[str, ...] = ()
    text_columns: tuple[str, ...] = ()
    task: str = "classification"
    whole: bool = False  # one table given whole (``autoft evaluate --data``): each split is all of its rows

    @property
    def num_labels(self) -> int:
        """The model's outputs: one per class, or one number for regression (``label_names`` names it)."""
        return len(self.label_names)

    @property
    def regression(self) -> bool:
        return self.task == "regression"

    @property
    def multi_label(self) -> bool:
        return self.task == "multi_label"

    @property
    def paired(self) -> bool:
        """Whether rows are sentence pairs."""
        return self.train.pairs is not None

    def split(self, name: str) -> LabelledTexts:
        return getattr(self, name)


@one_line_errors
def prepare(
    raw: RawDataset,
    *,
    seed: int,
    validation_size: float,
    test_size: float,
    where: str,
    max_rows: dict[str, int] | None = None,
    task: str = "auto",
    whole: bool = False,
) -> PreparedData:
    """Check a loaded dataset and return train, validation and test splits with label ids (or targets).

    ``whole``: the splits are one table given whole (``autoft evaluate --data``): one class is enough, and
    train, validation and test sharing texts is no news.
    ``max_rows`` caps splits (by name) with a seeded, stratified sample. ``task``: classification,
    regression (numeric targets; carving and samples are stratified by target decile), or auto:
    regression where the train labels are numbers with fractions, said in a note.
    """
    unknown = set(raw.splits) - set(SPLITS)
    if unknown:
        raise DataError(f"{where}: unknown split '{sorted(unknown)[0]}'; splits are train, validation, test")
    if "train" not in raw.splits:
        raise DataError(f"{where}: the dataset has no train split")
    notes = list(raw.notes)
    _check_pairs(raw.splits, where)
    cleaned = {name: _clean(split, name, where) for name, split in raw.splits.items()}
    pairs = {name: _clean_pairs(split, name, where) for name, split in raw.splits.items()}
    task = _task(task, cleaned["train"][1], where, notes)
    carves = [
        (name, size) for name, size in (("test", test_size), ("validation", validation_size)) if name not in cleaned
    ]
    texts = cleaned["train"][0]
    if task == "multi_label":
        names, ids = _label_sets(cleaned, raw.label_names, where)
        labels = ids["train"]
        _check_unseen_sets(ids, names, where)
    elif task == "regression":
        names = [raw.label_column or "value"]
        ids = {split: _targets(labels, split, where) for split, (_, labels) in cleaned.items()}
        labels = ids["train"]
        if float(labels.max()) == float(labels.min()):
            raise DataError(f"{where}: every train target is {labels[0]:g}; regression needs targets that vary")
    else:
        names, ids = _label_ids(cleaned, raw.label_names, where)
        labels = ids["train"]
        if len(set(labels.tolist())) < 2 and not whole:  # a model scores data of one class; none learns from it
            only = names[int(labels[0])] if len(labels) else "none"
            raise DataError(f"{where}: train has a single class ('{only}'); a classifier needs at least two labels")
        _check_unseen_labels({k: ids[k] for k in ("validation", "test") if k in ids}, labels, names, where)
        _check_carving(labels, carves, names, where)
        notes.extend(_lookalike_notes(names))
    rng_seed = seed
    train = _Rows(texts, labels, pairs["train"])
    if "test" not in cleaned:
        train, test = train.split(_carve(strata(labels, task), test_size, rng_seed, where, "test"))
        notes.append(f"test split: {len(test)} rows carved from train ({test_size:.0%}, stratified, seed {seed})")
    else:
        test = _Rows(cleaned["test"][0], ids["test"], pairs["test"])
    if "validation" not in cleaned:
        train, val = train.split(_carve(strata(train.labels, task), validation_size, rng_seed + 1, where, "validation"))
        notes.append(
            f"validation split: {len(val)} rows carved from train ({validation_size:.0%}, stratified, seed {seed})"
        )
    else:
        val = _Rows(cleaned["validation"][0], ids["validation"], pairs["validation"])

    splits = {"train": train, "validation": val, "test": test}
    for name, cap in (max_rows or {}).items():
        if cap and len(splits[name]) > cap:
            splits[name] = splits[name].take(_sample(strata(splits[name].labels, task), cap, seed + 2))
            notes.append(f"{name}: a stratified sample of {len(splits[name])} rows (max_{name}_rows)")
    dtype = np.int64 if task == "classification" else np.float32
    if task == "classification":
        train_ids = splits["train"].labels
        _check_unseen_labels({k: splits[k].labels for k in ("validation", "test")}, train_ids, names, where)
    prepared = {k: LabelledTexts(list(r.texts), np.asarray(r.labels, dtype=dtype), r.pairs) for k, r in splits.items()}
    if not whole:
        notes.extend(_overlap_notes(prepared))
    return PreparedData(
        train=prepared["train"],
        validation=prepared["validation"],
        test=prepared["test"],
        label_names=tuple(names),
        source=raw.source,
        fingerprint=_fingerprint(prepared, names),
        notes=tuple(notes),
        text_columns=tuple(raw.text_columns),
        task=task,
        whole=whole,
    )


def strata(labels: np.ndarray, task: str, bins: int = 10) -> np.ndarray:
    """What carving and samples stratify by: the class ids, a regression target's decile, or (multi-label)
    each row's rarest label (the label count for a row without one), as ids."""
    if task == "multi_label":
        hot = np.asarray(labels) > 0
        counts = hot.sum(axis=0)
        rank = np.where(hot, counts[None, :], np.iinfo(np.int64).max)
        rarest = rank.argmin(axis=1)
        return np.where(hot.any(axis=1), rarest, hot.shape[1]).astype(np.int64)
    if task != "regression":
        return np.asarray(labels)
    values = np.asarray(labels, dtype=np.float64)
    edges = np.unique(np.quantile(values, np.linspace(0, 1, bins + 1)[1:-1]))
    return np.searchsorted(edges, values, side="right").astype(np.int64)


def _number(value: Any) -> float | None:
    """A label as a regression target: a number, or text that reads as one; None otherwise."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float, np.integer, np.floating)):
        return float(value)
    if isinstance(value, str) and _NUMBER.fullmatch(value):
        try:
            return float(value.replace(",", "").replace("_", ""))
        except ValueError:
            return None
    return None


def _task(task: str, train_labels: list[Any], where: str, notes: list[str]) -> str:
    """The study's task: as set, or (auto) regression where every train label is a number and some have fractions."""
    if task in TASKS:
        return task
    if task != "auto":
        raise DataError(f"{where}: task '{task}' is not one of auto, {', '.join(TASKS)}")
    if any(_is_set(y) for y in train_labels):
        notes.append('task: multi-label, as the labels are lists; [dataset] task = "multi_label" says so')
        return "multi_label"
    numbers = [_number(y) for y in train_labels]  # CSV cells are text: "2.5" counts as a number
    if any(n is None for n in numbers):
        return "classification"
    fractions = [n for n in numbers if not float(n).is_integer()]
    if not fractions:
        return "classification"
    notes.append(
        f"task: regression, as the labels are numbers with fractions (such as {fractions[0]:g}); "
        '[dataset] task = "regression" says so, "classification" would refuse them'
    )
    return "regression"


def _is_set(value: Any) -> bool:
    """A multi-label row's labels: a list, tuple or array (Parquet and JSON list columns)."""
    return isinstance(value, (list, tuple, np.ndarray))


def _label_sets(
    cleaned: dict[str, tuple[list[str], list[Any]]], label_names: Sequence[str] | None, where: str
) -> tuple[list[str], dict[str, np.ndarray]]:
    """Every split's label sets as 0/1 rows (float32, one column per label), and the label names.

    A row's labels are a list (or one label alone); names come from ``label_names`` (which integer
    labels index) or are train's labels sorted, then labels seen only elsewhere (the caller names them).
    """
    sets = {
        split: [[_normal(y, where) for y in (row if _is_set(row) else [row])] for row in labels]
        for split, (_, labels) in cleaned.items()
    }
    if label_names is not None:
        names = [str(n) for n in label_names]
        if len(set(names)) != len(names) or not all(n.strip() for n in names):
            raise DataError(f"{where}: label names must be distinct and not empty: {names}")
    else:
        train = {str(y) for row in sets["train"] for y in row}
        names = sorted(train)
        names += sorted({str(y) for rows in sets.values() for row in rows for y in row} - train)
    index = {n: i for i, n in enumerate(names)}

    def column(y: int | str) -> int:
        if isinstance(y, int) and label_names is not None:
            if 0 <= y < len(names):
                return y
            raise DataError(f"{where}: label {y} is outside 0..{len(names) - 1} ({', '.join(names)})")
        if str(y) not in index:
            raise DataError(f"{where}: unknown label '{y}'; valid labels: {', '.join(names)}")
        return index[str(y)]

    ids = {}
    for split, rows in sets.items():
        hot = np.zeros((len(rows), len(names)), dtype=np.float32)
        for r, row in enumerate(rows):
            for y in row:
                hot[r, column(y)] = 1.0
        ids[split] = hot
    if len(names) < 2:
        raise DataError(f"{where}: train has a single label ('{names[0] if names else 'none'}'); give at least two")
    return names, ids


def _check_unseen_sets(ids: dict[str, np.ndarray], names: list[str], where: str) -> None:
    """Every label of validation and test appears in train."""
    seen = ids["train"].sum(axis=0) > 0
    for split in ("validation", "test"):
        if split in ids:
            missing = np.flatnonzero((ids[split].sum(axis=0) > 0) & ~seen)
            if len(missing):
                shown = ", ".join(f"'{names[i]}'" for i in missing)
                raise DataError(f"{where}: {split} has labels that train lacks: {shown}")


def _targets(labels: list[Any], split: str, where: str) -> np.ndarray:
    """A split's regression targets as float32; a label that is not a finite number is an error naming rows."""
    values = [_number(y) for y in labels]
    bad = [i for i, v in enumerate(values) if v is None or not math.isfinite(v)]
    if bad:
        shown = ", ".join(repr(labels[i]) for i in bad[:3])
        raise DataError(
            f"{where}: task regression needs a number per row, but {split} has {len(bad)} labels that are not "
            f'finite numbers ({shown}; rows {shown_rows(bad)}); fix them, or set [dataset] task = "classification"'
        )
    return np.asarray(values, dtype=np.float32)


@dataclass(frozen=True)
class _Rows:
    """A split's texts, label ids and second texts (or None) while splits are carved and sampled."""

    texts: list[str]
    labels: np.ndarray
    pairs: list[str] | None

    def __len__(self) -> int:
        return len(self.texts)

    def take(self, rows: np.ndarray) -> _Rows:
        pick = None if self.pairs is None else [self.pairs[i] for i in rows]
        return _Rows([self.texts[i] for i in rows], np.asarray(self.labels)[rows], pick)

    def split(self, out: np.ndarray) -> tuple[_Rows, _Rows]:
        """The rows not in ``out`` (sorted row numbers), and those in it."""
        mask = np.zeros(len(self), dtype=bool)
        mask[out] = True
        return self.take(np.flatnonzero(~mask)), self.take(np.flatnonzero(mask))


def _check_pairs(splits: dict[str, Split], where: str) -> None:
    """Sentence pairs in every split or in none."""
    paired = {name for name, split in splits.items() if split.pairs is not None}
    if paired and paired != set(splits):
        lacking = sorted(set(splits) - paired)[0]
        raise DataError(f"{where}: the {lacking} split has no second texts while {sorted(paired)[0]} has pairs")


def _clean_pairs(split: Split, name: str, where: str) -> list[str] | None:
    """The second texts of a split's pairs: one per row, each a non-empty string."""
    if split.pairs is None:
        return None
    pairs = list(split.pairs)
    if len(pairs) != len(split.texts):
        raise DataError(f"{where}: {name} has {len(split.texts)} texts but {len(pairs)} second texts of pairs")
    bad = [i for i, t in enumerate(pairs) if not isinstance(t, str) or not t.strip()]
    if bad:
        not_text = [i for i in bad if not isinstance(pairs[i], str) and not _is_missing(pairs[i])]
        what = (
            f"second texts that are not text ({kind_of(pairs[not_text[0]])})"
            if not_text
            else "empty or missing second texts"
        )
        raise DataError(
            f"{where}: {name} has {len(bad)} {what} of pairs (rows {shown_rows(bad)}); "
            "every row of a sentence-pair dataset needs both texts: drop or fill them"
        )
    _check_unicode(pairs, name, where, "second texts of pairs")
    return pairs


def _check_unicode(texts: list[str], name: str, where: str, what: str) -> None:
    """No text of a split holds a lone surrogate (the tokenizer would refuse it mid-study)."""
    bad = not_unicode(texts)
    if bad:
        raise DataError(
            f"{where}: {name} has {len(bad)} {what} that hold {WHAT} (rows {shown_rows(bad)}; "
            f"row {bad[0]}: {surrogate_note(texts[bad[0]])}); fix or drop those rows"
        )


def _clean(split: Split, name: str, where: str) -> tuple[list[str], list[Any]]:
    texts, labels = list(split.texts), list(split.labels)
    if len(texts) != len(labels):
        raise DataError(f"{where}: {name} has {len(texts)} texts but {len(labels)} labels")
    if not texts:
        raise DataError(f"{where}: the {name} split is empty")
    not_text = [i for i, t in enumerate(texts) if not isinstance(t, str) and not _is_missing(t)]
    if not_text:
        kind = kind_of(texts[not_text[0]])
        raise DataError(
            f"{where}: {name} has {len(not_text)} texts that are not text ({kind}, rows {shown_rows(not_text)}); "
            "texts are strings: is the text column the right one?"
        )
    bad = [i for i, t in enumerate(texts) if not isinstance(t, str) or not t.strip()]
    if bad:
        raise DataError(
            f"{where}: {name} has {len(bad)} empty or missing texts (rows {shown_rows(bad)}); drop or fill them"
        )
    _check_unicode(texts, name, where, "texts")
    if name == "train" and all(_NUMBER.fullmatch(t) for t in texts):
        raise DataError(
            f"{where}: every train text is a number (such as '{texts[0].strip()}'); the model reads texts: "
            "is the text column the right one?"
        )
    missing = [i for i, y in enumerate(labels) if _is_missing(y)]
    if missing:
        raise DataError(
            f"{where}: {name} has {len(missing)} missing labels (rows {shown_rows(missing)}); drop or fill them"
        )
    return texts, labels


#: a text that is only a number (the text column is probably an id or a count)
_NUMBER = re.compile(r"\s*[-+]?(\d[\d,_]*\.?\d*|\.\d+)([eE][-+]?\d+)?\s*")


def kind_of(value: Any) -> str:
    """What a value that is not text is, for messages: ``lists``, ``tables (objects)``, ``numbers``, ..."""
    if isinstance(value, bool):
        return "true/false values"
    if isinstance(value, (int, float, np.number)):
        return "numbers"
    if isinstance(value, dict):
        return "tables (objects)"
    if isinstance(value, (bytes, bytearray)):
        return "bytes"
    if isinstance(value, (list, tuple, set, np.ndarray)) or hasattr(value, "__array__"):
        return "lists"
    return f"{type(value).__name__} values"


def _is_missing(value: Any) -> bool:
    if value is None or type(value).__name__ in ("NAType", "NaTType"):
        return True
    if isinstance(value, (float, np.floating)) and math.isnan(value):
        return True
    return isinstance(value, str) and not value.strip()


def shown_rows(rows: Sequence[int] | np.ndarray) -> str:
    """The first five row numbers, for messages: ``3, 8, 9, 12, 20, ...``."""
    shown = ", ".join(str(r) for r in rows[:5])
    return shown + (", ..." if len(rows) > 5 else "")


def _label_ids(
    cleaned: dict[str, tuple[list[str], list[Any]]], label_names: Sequence[str] | None, where: str
) -> tuple[list[str], dict[str, np.ndarray]]:
    """Map every split's labels to ids 0..K-1; return the label names and the ids per split."""
    all_labels = [y for _, labels in cleaned.values() for y in labels]
    normal = [_normal(y, where) for y in all_labels]
    if label_names is not None:
        names = [str(n) for n in label_names]
        blank = [i for i, n in enumerate(names) if not n.strip()]
        if blank:
            raise DataError(f"{where}: label name {blank[0]} is empty; every label needs a name")
        if len(set(names)) != len(names):
            raise DataError(f"{where}: label names repeat: {names}")
        index = {n: i for i, n in enumerate(names)}

        def to_id(y: Any) -> int:
            if isinstance(y, int):
                if 0 <= y < len(names):
                    return y
                raise DataError(f"{where}: label {y} is outside 0..{len(names) - 1} ({', '.join(names)})")
            if y in index:
                return index[y]
            if _WHOLE.fullmatch(y):  # an integer label read as text ("2", "2.0")
                return to_id(int(float(y)))
            raise DataError(f"{where}: unknown label '{y}'; valid labels: {', '.join(names)}")

    else:
        train = [_normal(y, where) for y in cleaned["train"][1]]
        kinds = {type(y) for y in normal}
        if kinds == {int}:
            names = [str(v) for v in sorted(set(train))]
        else:
            names = sorted({str(y) for y in train})
        extra = sorted({str(y) for y in normal} - set(names))
        # labels seen only outside train get ids after train's, so the split check can name them
        names = names + extra
        index = {n: i for i, n in enumerate(names)}

        def to_id(y: Any) -> int:
            return index[str(y)]

    ids = {
        split: np.fromiter((to_id(_normal(y, where)) for y in labels), dtype=np.int64, count=len(labels))
        for split, (_, labels) in cleaned.items()
    }
    return names, ids


def _normal(label: Any, where: str) -> int | str:
    if isinstance(label, bool):
        return str(label).lower()
    if isinstance(label, (int, np.integer)):
        return int(label)
    if isinstance(label, (float, np.floating)):
        if float(label).is_integer():
            return int(label)
        raise DataError(
            f"{where}: label {label} is not a class; labels are strings or integers "
            '(a number to predict: [dataset] task = "regression")'
        )
    if isinstance(label, str):
        return label.strip()
    if _is_set(label):
        raise DataError(
            f"{where}: label {list(label)!r} is a list; a single-label study takes one label per row "
            '(several labels per row: [dataset] task = "multi_label")'
        )
    raise DataError(f"{where}: label {label!r} is not a class; labels are strings or integers")


#: a whole number written as text, as a label id
_WHOLE = re.compile(r"-?\d+(\.0*)?")


def _check_unseen_labels(splits: dict[str, np.ndarray], train: np.ndarray, names: list[str], where: str) -> None:
    seen = set(train.tolist())
    for name in ("validation", "test"):
        if name in splits:
            missing = sorted(set(splits[name].tolist()) - seen)
            if missing:
                shown = ", ".join(f"'{names[i]}'" for i in missing)
                raise DataError(f"{where}: {name} has labels that train lacks: {shown}")


def _check_carving(labels: np.ndarray, carves: list[tuple[str, float]], names: list[str], where: str) -> None:
    """Fail, saying it is autoft's carving and what to do, where train cannot give each carved split
    (test, then validation) a row of every class and keep one of each itself."""
    if not carves:
        return
    counts = Counter(labels.tolist())
    classes, rows = len(counts), len(labels)
    which = " and ".join(name for name, _ in carves)
    keys = ", ".join(f"{name}_size = {size:g}" for name, size in carves)
    head = (
        f"{where}: autoft carves the {which} split{'s' if len(carves) > 1 else ''} from train "
        f"([dataset] {keys}, stratified by label)"
    )
    files = " and ".join(f"{name} = <file>" for name in ("validation", "test") if name in dict(carves))
    provide = f"or give the split{'s' if len(carves) > 1 else ''} yourself ([dataset] train = <file>, {files})"
    label, smallest = min(counts.items(), key=lambda kv: (kv[1], kv[0]))
    need = 1 + len(carves)
    if smallest < need:
        raise DataError(
            f"{head}, but class '{names[label]}' has only {smallest} row{'s' if smallest != 1 else ''} "
            f"(it needs {need}: one for train, one for each carved split); give more rows of it, drop it, {provide}"
        )
    left = rows
    for name, size in carves:
        n_out = max(1, round(left * size))
        if n_out < classes:
            wanted = math.ceil(classes / left * 100) / 100
            raise DataError(
                f"{head}, but {name}_size = {size:g} of {left} rows is {n_out} row{'s' if n_out != 1 else ''}, "
                f"fewer than the {classes} classes; give more rows, "
                + (f"set [dataset] {name}_size to at least {wanted:g}, " if wanted < 0.5 else "")
                + provide
            )
        left -= n_out
        if left < classes:
            sizes = " and ".join(f"{n}_size" for n, _ in carves)
            raise DataError(
                f"{head}, but [dataset] {sizes} leave {left} rows for train, fewer than the {classes} classes; "
                f"lower {sizes}, give more rows, {provide}"
            )


def _carve(labels: np.ndarray, size: float, seed: int, where: str, name: str) -> np.ndarray:
    """The rows to split off train (``size``, a fraction), stratified by label; every class keeps a row in train."""
    n_out = max(1, round(len(labels) * size))
    if n_out >= len(labels):
        raise DataError(
            f"{where}: train has {len(labels)} rows, too few for autoft to carve a {name} split from; "
            f"give more rows, or provide a {name} file"
        )
    rng = np.random.default_rng(seed)
    counts = Counter(labels.tolist())
    out_idx: list[int] = []
    for label in sorted(counts):
        rows = np.flatnonzero(labels == label)
        rng.shuffle(rows)
        take = max(1, round(len(rows) * n_out / len(labels)))
        out_idx.extend(rows[: min(take, len(rows) - 1)].tolist())
    return np.sort(np.asarray(out_idx, dtype=np.int64))


def _sample(labels: np.ndarray, cap: int, seed: int) -> np.ndarray:
    """The rows of a sample of about ``cap`` rows, stratified by label, with every class (seeded), in order."""
    rng = np.random.default_rng(seed)
    counts = Counter(labels.tolist())
    picked: list[int] = []
    for label in sorted(counts):
        rows = np.flatnonzero(labels == label)
        rng.shuffle(rows)
        take = max(1, round(len(rows) * cap / len(labels)))
        # as carving does (a row of each class stays out), so samples keep their rows; a lone row is taken
        picked.extend(rows[: min(take, len(rows) - 1) or 1].tolist())
    return np.sort(np.asarray(picked, dtype=np.int64))


def _lookalike_notes(names: list[str]) -> list[str]:
    """Labels that differ only in case or spacing ('Pos' and 'pos'): kept apart, as given, but said."""
    groups: dict[str, list[str]] = {}
    for name in names:
        groups.setdefault(" ".join(str(name).casefold().split()), []).append(str(name))
    return [
        f"warning: labels {', '.join(map(repr, group))} differ only in case or spacing; they are {len(group)} "
        "classes here (make them one label in the data if they mean one)"
        for group in groups.values()
        if len(group) > 1
    ]


def _overlap_notes(splits: dict[str, LabelledTexts]) -> list[str]:
    def rows(split: LabelledTexts):
        return split.texts if split.pairs is None else zip(split.texts, split.pairs)

    train = set(rows(splits["train"]))
    notes = []
    for name in ("validation", "test"):
        shared = sum(1 for t in rows(splits[name]) if t in train)
        if shared:
            notes.append(f"warning: {shared} {name} texts also appear in train; scores on {name} may be optimistic")
    return notes


def _fingerprint(prepared: dict[str, LabelledTexts], names: list[str]) -> str:
    h = hashlib.sha256()
    h.update("\x1f".join(names).encode())
    for name in SPLITS:
        split = prepared[name]
        h.update(name.encode())
        for text in split.texts:
            h.update(text.encode("utf-8", "surrogatepass"))
            h.update(b"\x00")
        for text in split.pairs or ():  # single-text data keeps the fingerprint it had before pairs existed
            h.update(text.encode("utf-8", "surrogatepass"))
            h.update(b"\x01")
        h.update(split.labels.tobytes())
    return h.hexdigest()[:16]
