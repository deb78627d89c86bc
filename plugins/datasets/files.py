"""The ``files`` dataset: your own CSV, TSV, JSON, JSON Lines or Parquet files.

One file (validation and test are carved from it), one file per split, a
folder holding ``train.*`` / ``validation.*`` / ``test.*``, or one file with a
column naming each row's split. Text comes from one column, several columns
joined, or a template over columns; ``text_pair_column`` makes each row a sentence pair;
labels are strings or integers.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from autoft import DataError, Dataset, LoadContext, RawDataset, Split, hookimpl, option
from autoft.data import one_line_errors
from autoft.tables import (
    SPLIT_ALIASES,
    folder_splits,
    read_table,
    require_columns,
    split_files,
    table_texts,
    template_columns,
)

if TYPE_CHECKING:
    import pandas as pd

# read_table, require_columns and folder_splits stay importable from here (docs/plugins.md); they live in autoft.tables
__all__ = [
    "Files",
    "FilesOptions",
    "folder_splits",
    "input_columns",
    "read_table",
    "require_columns",
    "texts",
    "to_split",
]


@dataclass(frozen=True)
class FilesOptions:
    path: str = option("", "one data file, or a folder with train.*, validation.* and test.* files")
    train: str = option("", "the training file (instead of path)")
    validation: str = option("", "the validation file (optional)")
    test: str = option("", "the test file (optional)")
    format: Literal["auto", "csv", "tsv", "json", "jsonl", "parquet"] = option("auto", "auto follows the suffix")
    encoding: str = option("utf-8", "text encoding of CSV, TSV and JSON files")
    text_column: str | list[str] = option("text", "text column, or a list of columns joined by text_separator")
    text_separator: str = option(" ", "joins the text columns")
    text_template: str = option("", "format string over columns, such as '{title}. {body}' (overrides text_column)")
    text_pair_column: str = option("", "the second text of sentence pairs (paraphrase, entailment): encoded as a pair")
    label_column: str = option("label", "labels: strings or integers; numbers (regression); lists (multi-label)")
    label_separator: str = option("", "multi-label: the labels of a row in one cell, split at this, such as '|'")
    label_columns: list[str] = option([], "multi-label: one 0/1 column per label (instead of label_column)")
    label_names: list[str] = option([], "label names in id order when labels are integers, or the order to use")
    split_column: str = option("", "a column naming each row's split (train, validation, test)")


class Files(Dataset):
    """Local CSV, TSV, JSON, JSON Lines or Parquet files."""

    name = "files"
    Options = FilesOptions

    @one_line_errors
    def load(self, options: FilesOptions, ctx: LoadContext) -> RawDataset:
        files = split_files(options, ctx, folder=True)
        splits: dict[str, Split] = {}
        for split, path in files.items():
            frame = read_table(path, options.format, options.encoding)
            if options.split_column:
                splits.update(self._by_split_column(frame, options, path))
            else:
                splits[split] = to_split(frame, options, path)
        names = list(options.label_names) or None
        if options.label_columns:
            names = list(options.label_columns)
        source = ", ".join(str(p) for p in dict.fromkeys(files.values()))
        return RawDataset(
            splits, names, source=source, text_columns=input_columns(options), label_column=options.label_column
        )

    def _by_split_column(self, frame: pd.DataFrame, options: FilesOptions, path: Path) -> dict[str, Split]:
        require_columns(frame, [options.split_column], path, "split_column")
        out = {}
        for value, part in frame.groupby(frame[options.split_column].astype(str).str.strip().str.lower()):
            split = SPLIT_ALIASES.get(value)
            if split is None:
                raise DataError(
                    f"{path}: split_column '{options.split_column}' has value '{value}'; "
                    f"valid values: {', '.join(sorted(SPLIT_ALIASES))}"
                )
            out[split] = to_split(part, options, path)
        return out


def to_split(frame: pd.DataFrame, options: FilesOptions, path: Path | str) -> Split:
    """Texts (from the column, columns or template) and labels of a table."""
    if options.label_columns:
        return Split(texts(frame, options, path), label_sets(frame, options, path), _pairs(frame, options, path))
    require_columns(frame, [options.label_column], path, "label_column")
    if options.label_column in _text_columns(options):
        key = "text_template" if options.text_template else "text_column"
        raise DataError(
            f"[dataset] label_column '{options.label_column}' is also in {key}: the texts would give their labels "
            "away; name another column"
        )
    labels = frame[options.label_column].tolist()
    if options.label_separator:
        labels = [
            [part.strip() for part in y.split(options.label_separator) if part.strip()] if isinstance(y, str) else y
            for y in labels
        ]
    return Split(texts(frame, options, path), labels, _pairs(frame, options, path))


def _text_columns(options) -> list[str]:
    if options.text_template:
        return template_columns(options.text_template)
    return [options.text_column] if isinstance(options.text_column, str) else list(options.text_column)


def _pairs(frame: pd.DataFrame, options: FilesOptions, path: Path | str) -> list | None:
    """The second texts of sentence pairs (``text_pair_column``), or None."""
    if not options.text_pair_column:
        return None
    labels = list(options.label_columns) or [options.label_column]
    if options.text_pair_column in (*labels, *_text_columns(options)):
        key = "one of label_columns" if options.label_columns else "label_column"
        other = key if options.text_pair_column in labels else "the first text's columns"
        raise DataError(
            f"[dataset] text_pair_column '{options.text_pair_column}' is also {other}; "
            "name the column that holds each pair's second text"
        )
    return table_texts(frame, path, columns=options.text_pair_column, column_key="text_pair_column")


def label_sets(frame: pd.DataFrame, options: FilesOptions, path: Path | str) -> list[list[str]]:
    """Multi-label rows from one 0/1 column per label (``label_columns``): each row's labels by name."""
    import numpy as np

    columns = list(options.label_columns)
    require_columns(frame, columns, path, "label_columns")
    clash = sorted(set(columns) & set(_text_columns(options)))
    if clash:
        raise DataError(f"[dataset] label_columns names '{clash[0]}', a text column: the texts would give labels away")
    values = frame[columns].apply(lambda col: col.map(_flag)).to_numpy()
    bad = np.argwhere(values < 0)
    if len(bad):
        row, col = bad[0]
        value = frame[columns[col]].iloc[row]
        value = value.item() if hasattr(value, "item") else value  # a NumPy scalar, shown as the number
        raise DataError(
            f"{path}: label column '{columns[col]}' (label_columns) holds {value!r} at row "
            f"{row}; each label column holds 0 or 1 (true/false)"
        )
    return [[columns[j] for j in np.flatnonzero(row)] for row in values]


def _flag(value) -> int:
    """0 or 1 from a 0/1 or true/false cell; -1 for anything else."""
    if isinstance(value, str):
        return {"0": 0, "1": 1, "true": 1, "false": 0, "0.0": 0, "1.0": 1}.get(value.strip().lower(), -1)
    if value in (0, 1) and not (isinstance(value, float) and value != value):
        return int(value)
    return -1


def input_columns(options) -> tuple[str, ...]:
    """The columns a row's input comes from, as ``autoft predict --input`` should find them: one, or two for pairs."""
    if options.text_template or not isinstance(options.text_column, str):
        return ()
    return (options.text_column, options.text_pair_column) if options.text_pair_column else (options.text_column,)


def texts(frame: pd.DataFrame, options, path: Path | str) -> list:
    """Each row's text from ``options.text_template``, else ``options.text_column`` (one or several joined)."""
    return table_texts(
        frame,
        path,
        columns=options.text_column,
        template=options.text_template,
        separator=options.text_separator,
    )


@hookimpl
def register_datasets(register):
    register(Files)
