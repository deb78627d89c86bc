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
    label_column: str = option("label", "label column: strings or integers, or numbers for regression")
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
    require_columns(frame, [options.label_column], path, "label_column")
    text_columns = (
        template_columns(options.text_template)
        if options.text_template
        else [options.text_column]
        if isinstance(options.text_column, str)
        else list(options.text_column)
    )
    if options.label_column in text_columns:
        key = "text_template" if options.text_template else "text_column"
        raise DataError(
            f"[dataset] label_column '{options.label_column}' is also in {key}: the texts would give their labels "
            "away; name another column"
        )
    pairs = None
    if options.text_pair_column:
        if options.text_pair_column in (options.label_column, *text_columns):
            other = "label_column" if options.text_pair_column == options.label_column else "the first text's columns"
            raise DataError(
                f"[dataset] text_pair_column '{options.text_pair_column}' is also {other}; "
                "name the column that holds each pair's second text"
            )
        pairs = table_texts(frame, path, columns=options.text_pair_column, column_key="text_pair_column")
    return Split(texts(frame, options, path), frame[options.label_column].tolist(), pairs)


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
