"""The ``files`` dataset: your own CSV, TSV, JSON, JSON Lines or Parquet files.

One file (validation and test are carved from it), one file per split, a
folder holding ``train.*`` / ``validation.*`` / ``test.*``, or one file with a
column naming each row's split. Text comes from one column, several columns
joined, or a template over columns; labels are strings or integers.
"""

from __future__ import annotations

import string
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import pandas as pd

from autoft import DataError, Dataset, LoadContext, RawDataset, Split, hookimpl, option
from autoft.errors import first_line

SUFFIXES = {
    ".csv": "csv",
    ".tsv": "tsv",
    ".tab": "tsv",
    ".json": "json",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".parquet": "parquet",
    ".pq": "parquet",
}
SPLIT_ALIASES = {
    "train": "train",
    "training": "train",
    "validation": "validation",
    "valid": "validation",
    "val": "validation",
    "dev": "validation",
    "test": "test",
    "testing": "test",
}


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
    label_column: str = option("label", "label column (strings or integers)")
    label_names: list[str] = option([], "label names in id order when labels are integers, or the order to use")
    split_column: str = option("", "a column naming each row's split (train, validation, test)")


class Files(Dataset):
    """Local CSV, TSV, JSON, JSON Lines or Parquet files."""

    name = "files"
    Options = FilesOptions

    def load(self, options: FilesOptions, ctx: LoadContext) -> RawDataset:
        files = self._files(options, ctx)
        splits: dict[str, Split] = {}
        for split, path in files.items():
            frame = read_table(path, options.format, options.encoding)
            if options.split_column:
                splits.update(self._by_split_column(frame, options, path))
            else:
                splits[split] = to_split(frame, options, path)
        names = list(options.label_names) or None
        return RawDataset(splits, names, source=", ".join(str(p) for p in dict.fromkeys(files.values())))

    def _files(self, options: FilesOptions, ctx: LoadContext) -> dict[str, Path]:
        if options.path and options.train:
            raise DataError("[dataset] give either path or train (with validation and test), not both")
        if options.path:
            path = ctx.path(options.path)
            if path.is_dir():
                return folder_splits(path)
            if not path.is_file():
                raise DataError(f"[dataset] path: '{path}' does not exist")
            return {"train": path}
        if not options.train:
            raise DataError("[dataset] needs path (one file or folder) or train (and optionally validation, test)")
        out = {}
        for split in ("train", "validation", "test"):
            value = getattr(options, split)
            if value:
                path = ctx.path(value)
                if not path.is_file():
                    raise DataError(f"[dataset] {split}: '{path}' does not exist")
                out[split] = path
        return out

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


def folder_splits(folder: Path) -> dict[str, Path]:
    """train.*, validation.* (or valid, val, dev) and test.* data files in a folder."""
    out: dict[str, Path] = {}
    for f in sorted(folder.iterdir()):
        split = SPLIT_ALIASES.get(f.name.split(".")[0].lower())
        if split and _format_of(f) and split not in out:
            out[split] = f
    if "train" not in out:
        raise DataError(f"[dataset] path: folder '{folder}' has no train.csv/.tsv/.json/.jsonl/.parquet file")
    return out


def _format_of(path: Path) -> str | None:
    suffixes = [s for s in path.suffixes if s not in (".gz", ".bz2", ".zip", ".xz", ".zst")]
    return SUFFIXES.get(suffixes[-1].lower()) if suffixes else None


def read_table(path: Path, fmt: str = "auto", encoding: str = "utf-8") -> pd.DataFrame:
    """A data file as a DataFrame, with one-line errors for unreadable files."""
    kind = _format_of(path) if fmt == "auto" else fmt
    if kind is None:
        raise DataError(f"{path}: unknown file type; use .csv, .tsv, .json, .jsonl or .parquet, or set format")
    try:
        if kind in ("csv", "tsv"):
            return pd.read_csv(path, sep="," if kind == "csv" else "\t", encoding=encoding, keep_default_na=True)
        if kind == "json":
            return pd.read_json(path, encoding=encoding)
        if kind == "jsonl":
            return pd.read_json(path, lines=True, encoding=encoding)
        return pd.read_parquet(path)
    except UnicodeDecodeError as exc:
        raise DataError(
            f"{path}: cannot decode as {encoding} at byte {exc.start}; set encoding (for example 'latin-1')"
        ) from exc
    except LookupError as exc:
        raise DataError(f"[dataset] encoding: {exc}") from exc
    except pd.errors.EmptyDataError as exc:
        raise DataError(f"{path}: the file is empty") from exc
    except Exception as exc:  # parse errors, OSError, and pyarrow's own types for broken Parquet
        raise DataError(f"{path}: cannot read as {kind}: {first_line(exc)}") from exc


def require_columns(frame: pd.DataFrame, columns: list[str], path: Path | str, key: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        present = ", ".join(map(str, frame.columns)) or "none"
        raise DataError(f"{path}: no column '{missing[0]}' ({key}); columns present: {present}")


def to_split(frame: pd.DataFrame, options: FilesOptions, path: Path | str) -> Split:
    """Texts (from the column, columns or template) and labels of a table."""
    require_columns(frame, [options.label_column], path, "label_column")
    return Split(texts(frame, options, path), frame[options.label_column].tolist())


def texts(frame: pd.DataFrame, options, path: Path | str) -> list:
    if options.text_template:
        fields = [f for _, f, _, _ in string.Formatter().parse(options.text_template) if f]
        if not fields:
            raise DataError(f"[dataset] text_template {options.text_template!r} names no columns, such as '{{text}}'")
        require_columns(frame, fields, path, "text_template")
        records = frame[fields].astype(object).where(frame[fields].notna(), "").to_dict("records")
        return [options.text_template.format_map(r).strip() for r in records]
    columns = [options.text_column] if isinstance(options.text_column, str) else list(options.text_column)
    require_columns(frame, columns, path, "text_column")
    if len(columns) == 1:
        return [t if isinstance(t, str) else (None if pd.isna(t) else str(t)) for t in frame[columns[0]].tolist()]
    parts = frame[columns].astype(object).where(frame[columns].notna(), "").astype(str)
    return [options.text_separator.join(p for p in row if p.strip()) for row in parts.itertuples(index=False)]


@hookimpl
def register_datasets(register):
    register(Files)
