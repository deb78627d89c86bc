"""Data tables on disk: which file holds each split, and reading CSV, TSV, JSON, JSON Lines or Parquet.

:func:`split_files` turns a dataset's ``path`` / ``train`` / ``validation`` /
``test`` options into one checked file per split; :func:`read_table` reads a
file (compressed ones too) into a DataFrame, with one-line errors that name
the file. Dataset plugins and ``autoft predict --input`` share them.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import DataError, first_line

if TYPE_CHECKING:
    import pandas as pd

    from .data import LoadContext

#: data file suffixes and the format each one means
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
#: compression suffixes read through (``reviews.csv.gz``)
COMPRESSIONS = (".gz", ".bz2", ".zip", ".xz", ".zst")
#: file stems and column values that name a split
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


def format_of(path: Path) -> str | None:
    """The format a file's suffix names (past any compression suffix), or None."""
    suffixes = [s for s in Path(path).suffixes if s not in COMPRESSIONS]
    return SUFFIXES.get(suffixes[-1].lower()) if suffixes else None


def read_table(path: Path, fmt: str = "auto", encoding: str = "utf-8") -> pd.DataFrame:
    """A data file as a DataFrame, with one-line errors for unreadable files."""
    import pandas as pd

    kind = format_of(path) if fmt == "auto" else fmt
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


def require_columns(frame: pd.DataFrame, columns: Sequence[str], path: Path | str, key: str) -> None:
    """Fail, naming the file, the first missing column, the option it came from and the columns present."""
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        present = ", ".join(map(str, frame.columns)) or "none"
        raise DataError(f"{path}: no column '{missing[0]}' ({key}); columns present: {present}")


def folder_splits(folder: Path) -> dict[str, Path]:
    """train.*, validation.* (or valid, val, dev) and test.* data files in a folder."""
    out: dict[str, Path] = {}
    for f in sorted(folder.iterdir()):
        split = SPLIT_ALIASES.get(f.name.split(".")[0].lower())
        if split and format_of(f) and split not in out:
            out[split] = f
    if "train" not in out:
        raise DataError(f"[dataset] path: folder '{folder}' has no train.csv/.tsv/.json/.jsonl/.parquet file")
    return out


def split_files(options: Any, ctx: LoadContext, *, folder: bool = False) -> dict[str, Path]:
    """The file of each split from a dataset's ``path``, ``train``, ``validation`` and ``test`` options.

    ``path`` is one file (validation and test are carved from it) or, where
    ``folder`` allows, a folder of ``train.*``, ``validation.*`` and ``test.*``
    files; ``train``, with optional ``validation`` and ``test``, names a file per
    split. Paths are relative to the study file; every file must exist.
    """
    if options.path and options.train:
        raise DataError("[dataset] give either path or train (with validation and test), not both")
    if options.path:
        path = ctx.path(options.path)
        extra = [k for k in ("validation", "test") if getattr(options, k)]
        if extra:
            shape = "a folder of split files" if folder and path.is_dir() else "one table, carved into splits"
            raise DataError(f"[dataset] {extra[0]} goes with train = <file>; path is {shape}")
        if folder and path.is_dir():
            return folder_splits(path)
        if not path.is_file():
            raise DataError(f"[dataset] path: '{path}' does not exist")
        return {"train": path}
    if not options.train:
        what = "one file or folder" if folder else "one file"
        raise DataError(f"[dataset] needs path ({what}) or train (and optionally validation, test)")
    out = {}
    for split in ("train", "validation", "test"):
        value = getattr(options, split)
        if value:
            path = ctx.path(value)
            if not path.is_file():
                raise DataError(f"[dataset] {split}: '{path}' does not exist")
            out[split] = path
    return out
