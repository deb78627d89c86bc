"""Data tables on disk: which file holds each split, and reading CSV, TSV, JSON, JSON Lines or Parquet.

:func:`split_files` turns a dataset's ``path`` / ``train`` / ``validation`` /
``test`` options into one checked file per split; :func:`read_table` reads a
file (compressed ones too) into a DataFrame, with one-line errors that name
the file. Dataset plugins and ``autoft predict --input`` share them.
"""

from __future__ import annotations

import codecs
import json
import math
import re
import string
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .data import one_line_errors
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


#: what compressed files start with, by suffix: (magic bytes, name)
MAGIC = {
    ".gz": (b"\x1f\x8b", "gzip"),
    ".bz2": (b"BZh", "bzip2"),
    ".zip": (b"PK\x03\x04", "zip"),
    ".xz": (b"\xfd7zXZ\x00", "xz"),
    ".zst": (b"\x28\xb5\x2f\xfd", "zstandard"),
}
PARQUET_MAGIC = b"PAR1"
#: bytes looked at to tell what a file really holds
HEAD = 1 << 16
#: a whole number as text that reads back the same: such a column is read as integers
_INTEGER = re.compile(r"-?(0|[1-9][0-9]{0,17})")


def compression_of(path: Path) -> str | None:
    """The compression suffix pandas reads through (the last suffix), or None."""
    suffix = Path(path).suffix.lower()
    return suffix if suffix in COMPRESSIONS else None


@one_line_errors
def read_table(
    path: Path, fmt: str = "auto", encoding: str = "utf-8", *, encoding_key: str = "[dataset] encoding"
) -> pd.DataFrame:
    """A data file as a DataFrame, with one-line errors for unreadable files.

    Cells are read as written: the words pandas would take for missing values ("NA", "None",
    "null", "NaN", "n/a", ...) stay strings, and so do numbers that would not read back the same
    ("007", "1.50"); columns of plain whole numbers are integers. An empty CSV cell is an empty
    string, a JSON null or a Parquet null is missing. ``encoding_key`` names the setting that
    changes the encoding, for messages.
    """
    import pandas as pd

    path = Path(path)
    kind = format_of(path) if fmt == "auto" else fmt
    if kind is None:
        raise DataError(f"{path}: unknown file type; use .csv, .tsv, .json, .jsonl or .parquet, or set format")
    if path.is_dir():
        raise DataError(f"{path}: is a folder, not a data file")
    try:
        codec = codecs.lookup(encoding).name
    except (LookupError, TypeError, ValueError):
        raise DataError(
            f"{encoding_key}: unknown encoding {encoding!r}; use one such as 'utf-8', 'latin-1', 'cp1252' or 'utf-16'"
        ) from None
    head, complete = _check_file(path, kind, codec, encoding_key, encoding)
    shown = encoding
    if codec == "utf-8" and head.startswith(codecs.BOM_UTF8):
        encoding = "utf-8-sig"  # a byte-order mark is no part of the first column's name
    try:
        if kind in ("csv", "tsv"):
            frame = _read_csv(path, "," if kind == "csv" else "\t", encoding)
        elif kind in ("json", "jsonl"):
            frame = pd.read_json(path, lines=kind == "jsonl", encoding=encoding, dtype=False)
        else:
            frame = pd.read_parquet(path)
    except UnicodeError:  # its cause is a UnicodeDecodeError at the offset in the file, not in pandas' buffer
        raise _decode_error(path, encoding, encoding_key, shown)  # noqa: B904
    except pd.errors.EmptyDataError as exc:
        raise DataError(f"{path}: the file is empty") from exc
    except DataError:
        raise
    except Exception as exc:  # parse errors, OSError, and pyarrow's own types for broken Parquet
        raise DataError(f"{path}: cannot read as {kind}: {_parse_problem(path, kind, head, complete, exc)}") from exc
    frame.columns = [str(c) for c in frame.columns]
    return frame


def _read_csv(path: Path, sep: str, encoding: str) -> pd.DataFrame:
    """Every cell as the text it is; columns of plain whole numbers (no blanks) as integers."""
    import pandas as pd

    header = pd.read_csv(path, sep=sep, encoding=encoding, header=None, nrows=1, dtype=str, na_filter=False)
    names = [str(n) for n in header.iloc[0].tolist()] if len(header) else []
    repeated = sorted({n for n in names if n.strip() and names.count(n) > 1})
    if repeated:
        raise DataError(f"{path}: the header names column '{repeated[0]}' twice; give every column its own name")
    with warnings.catch_warnings():  # a row of the wrong width is reported below, in one line
        warnings.simplefilter("ignore", pd.errors.ParserWarning)
        frame = pd.read_csv(
            path, sep=sep, encoding=encoding, dtype=str, keep_default_na=False, na_filter=False, index_col=False
        )
    _check_fields(path, sep, encoding, len(names))
    for column in frame.columns:
        values = frame[column]
        if len(values) and bool(values.str.fullmatch(_INTEGER.pattern).all()):
            frame[column] = values.astype("int64")
    return frame


def _check_fields(path: Path, sep: str, encoding: str, width: int) -> None:
    """Every row has as many fields as the header: pandas pads short rows and cuts long ones without a word."""
    import csv
    import io
    import sys

    limit = csv.field_size_limit()
    csv.field_size_limit(sys.maxsize)
    try:
        with _open_content(path) as raw:
            reader = csv.reader(io.TextIOWrapper(raw, encoding=encoding, newline=""), delimiter=sep)
            next(reader, None)
            for row in reader:
                if row and len(row) != width:
                    why = (
                        "a line break inside an unquoted text? put such texts in double quotes"
                        if len(row) < width
                        else f"a {'comma' if sep == ',' else 'tab'} inside an unquoted text? put such texts in "
                        "double quotes"
                    )
                    raise DataError(
                        f"{path}: line {reader.line_num} has {len(row)} field{'s' if len(row) != 1 else ''}, "
                        f"the header has {width} ({why})"
                    )
    except (csv.Error, UnicodeError, OSError, EOFError):
        return  # the reader above read it; what the csv module cannot follow is left to it
    finally:
        csv.field_size_limit(limit)


def _check_file(path: Path, kind: str, codec: str, key: str, shown: str) -> tuple[bytes, bool]:
    """Fail on what a file's bytes show it is not (empty, compressed or not, Parquet, not text);
    return the first bytes of its content (decompressed) and whether that is all of it."""
    try:
        with open(path, "rb") as f:
            raw = f.read(HEAD)
    except OSError as exc:
        raise DataError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    if not raw:
        raise DataError(f"{path}: the file is empty (0 bytes)")
    compression = compression_of(path)
    if kind == "parquet":
        if compression:
            raise DataError(
                f"{path}: Parquet is read as it is, not through {compression}; decompress it, or use CSV or JSON Lines"
            )
        if not raw.startswith(PARQUET_MAGIC):
            raise DataError(
                f"{path}: not a Parquet file (it holds {_what(raw)}); "
                "give it the suffix of what it holds, or set format"
            )
        return raw, False
    if raw.startswith(PARQUET_MAGIC) and not compression:
        raise DataError(f"{path}: is a Parquet file, not {kind.upper()}; name it .parquet or set format = 'parquet'")
    if compression:
        magic, name = MAGIC[compression]
        if not raw.startswith(magic):
            raise DataError(
                f"{path}: not {'an' if name == 'xz' else 'a'} {name} file (the name ends in {compression}, "
                f"but it holds {_what(raw)}); "
                f"rename it without {compression}"
            )
    else:
        for suffix, (magic, name) in MAGIC.items():
            if raw.startswith(magic):
                raise DataError(f"{path}: is {name}-compressed; add {suffix} to its name ('{path.name}{suffix}')")
    head, complete = _content_head(path, compression, raw)
    if head is None:
        return raw, False
    if complete and not head.strip():
        raise DataError(f"{path}: the file is empty" + (" (only blank lines)" if head else ""))
    _check_text(path, head, codec, key, shown)
    return head, complete


def _content_head(path: Path, compression: str | None, raw: bytes) -> tuple[bytes | None, bool]:
    """The first HEAD bytes of the file's content (decompressed), and whether that is all of it."""
    if not compression:
        return raw, len(raw) < HEAD
    try:
        if compression == ".gz":
            import gzip

            with gzip.open(path, "rb") as f:
                head = f.read(HEAD + 1)
        elif compression == ".bz2":
            import bz2

            with bz2.open(path, "rb") as f:
                head = f.read(HEAD + 1)
        elif compression == ".xz":
            import lzma

            with lzma.open(path, "rb") as f:
                head = f.read(HEAD + 1)
        elif compression == ".zip":
            import zipfile

            with zipfile.ZipFile(path) as z:
                names = [n for n in z.namelist() if not n.endswith("/")]
                if len(names) != 1:
                    raise DataError(f"{path}: a zip file holds one data file here; this one holds {len(names)} files")
                with z.open(names[0]) as f:
                    head = f.read(HEAD + 1)
        else:
            return None, False
    except DataError:
        raise
    except (OSError, EOFError, ValueError, RuntimeError) as exc:
        kind = MAGIC[compression][1]
        raise DataError(f"{path}: a damaged {kind} file: {first_line(exc)}") from exc
    except Exception as exc:  # zipfile.BadZipFile, lzma.LZMAError and the like
        kind = MAGIC[compression][1]
        raise DataError(f"{path}: a damaged {kind} file: {first_line(exc)}") from exc
    return head[:HEAD], len(head) <= HEAD


_UTF16_32 = {"utf-16", "utf-16-le", "utf-16-be", "utf-32", "utf-32-le", "utf-32-be"}
_BOMS = (
    (codecs.BOM_UTF32_LE, "UTF-32", "utf-32"),
    (codecs.BOM_UTF32_BE, "UTF-32", "utf-32"),
    (codecs.BOM_UTF16_LE, "UTF-16", "utf-16"),
    (codecs.BOM_UTF16_BE, "UTF-16", "utf-16"),
)


def _check_text(path: Path, head: bytes, codec: str, key: str, shown: str) -> None:
    """Text in ``codec``, as far as its first bytes tell: no UTF-16 byte-order mark, no zero bytes."""
    if codec in _UTF16_32:
        if head.startswith(codecs.BOM_UTF8):
            raise DataError(
                f"{path}: is UTF-8 text (it starts with a UTF-8 byte-order mark), not {shown}; set {key} = 'utf-8'"
            )
        if codec in ("utf-16", "utf-32") and not any(head.startswith(bom) for bom, _, _ in _BOMS):
            if b"\x00" not in head:
                raise DataError(
                    f"{path}: is not {codec.upper()} text (no byte-order mark and no zero bytes); "
                    f"set {key} to the file's encoding, such as 'utf-8'"
                )
            raise DataError(f"{path}: has no {codec.upper()} byte-order mark; set {key} = '{codec}-le' or '{codec}-be'")
        return
    for bom, name, setting in _BOMS:
        if head.startswith(bom):
            raise DataError(
                f"{path}: is {name} text (it starts with a {name} byte-order mark), not {shown}; "
                f"set {key} = '{setting}', or save it as UTF-8"
            )
    zero = head.find(b"\x00")
    if zero >= 0:
        even, odd = head[0::2], head[1::2]
        if even.count(0) > 0.4 * len(even) or odd.count(0) > 0.4 * len(odd):
            order = "le" if odd.count(0) > even.count(0) else "be"
            raise DataError(
                f"{path}: has zero bytes (the first at byte {zero}): UTF-16 text without a byte-order mark? "
                f"set {key} = 'utf-16-{order}', or save it as UTF-8"
            )
        raise DataError(f"{path}: is not text (binary data: a zero byte at byte {zero}); is it the right file?")


def _what(raw: bytes) -> str:
    """What a file's first bytes look like, for messages."""
    if raw.startswith(PARQUET_MAGIC):
        return "Parquet data"
    for magic, name in MAGIC.values():
        if raw.startswith(magic):
            return f"{name} data"
    for bom, name, _ in _BOMS:
        if raw.startswith(bom):
            return f"{name} text"
    if b"\x00" in raw[:1024]:
        return "binary data"
    text = raw[:1024].decode("utf-8", "replace")
    if text.count("\ufffd") > 4:
        return "binary data"
    first = text.strip().splitlines()[0][:40] if text.strip() else ""
    return f"text starting {first!r}" if first else "blank text"


def _decode_error(path: Path, encoding: str, key: str, shown: str) -> DataError:
    """Where the file stops being ``encoding`` text: byte offset (in the content) and line."""
    decoder = codecs.getincrementaldecoder(encoding)()
    offset, line, reason, bad = 0, 1, "", b""
    try:
        with _open_content(path) as f:
            while True:
                chunk = f.read(1 << 20)
                pending = len(decoder.getstate()[0])
                try:
                    decoder.decode(chunk, final=not chunk)
                except UnicodeDecodeError as exc:
                    offset += exc.start - pending
                    line += exc.object[: exc.start].count(b"\n")
                    bad, reason = exc.object[exc.start : exc.start + 4], exc.reason
                    break
                except UnicodeError as exc:  # utf-16 without its byte-order mark, and the like
                    reason = first_line(exc)
                    break
                if not chunk:
                    break
                offset += len(chunk)
                line += chunk.count(b"\n")
    except (OSError, EOFError, ValueError):
        pass
    where = f"at byte {offset}"
    if bad and not codecs.lookup(encoding).name.startswith(("utf-16", "utf-32")):
        where += f" (line {line}, bytes {bad!r}: {reason})"
    elif reason:
        where += f" ({reason})"
    error = DataError(
        f"{path}: cannot decode as {shown} {where}; "
        f"it is not {shown} text: set {key} (such as 'latin-1', 'cp1252' or 'utf-16'), or save it as UTF-8"
    )
    error.__cause__ = UnicodeDecodeError(encoding, b"", offset, offset + 1, reason or "invalid data")
    return error


def _open_content(path: Path):
    """The file's content as a binary stream, decompressed by its suffix."""
    compression = compression_of(path)
    if compression == ".gz":
        import gzip

        return gzip.open(path, "rb")
    if compression == ".bz2":
        import bz2

        return bz2.open(path, "rb")
    if compression == ".xz":
        import lzma

        return lzma.open(path, "rb")
    if compression == ".zip":
        import zipfile

        z = zipfile.ZipFile(path)
        return z.open(next(n for n in z.namelist() if not n.endswith("/")))
    return open(path, "rb")


def _parse_problem(path: Path, kind: str, head: bytes, complete: bool, exc: BaseException) -> str:
    """The first line of a reader's error, with a hint where the content shows what went wrong."""
    text = first_line(exc)
    if kind in ("json", "jsonl"):
        start = head.lstrip()[:1]
        if start and start not in (b"{", b"["):
            shown = head.lstrip()[:30].decode("utf-8", "replace")
            return f"{text} (it starts with {shown!r}, not JSON)"
        if kind == "json" and "Trailing data" in text:
            return f"{text}; one JSON object per line is JSON Lines: name it .jsonl or set format = 'jsonl'"
        if kind == "jsonl":
            bad = _bad_json_line(path)
            if bad:
                return f"{text}; line {bad[0]} is not a JSON object: {bad[1]}"
    return text


def _bad_json_line(path: Path) -> tuple[int, str] | None:
    try:
        with _open_content(path) as f:
            for number, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    value = json.loads(line)
                except ValueError as exc:
                    return number, first_line(exc)
                if not isinstance(value, dict):
                    return number, f"a {type(value).__name__}"
    except (OSError, EOFError, ValueError):
        return None
    return None


def require_columns(frame: pd.DataFrame, columns: Sequence[str], path: Path | str, key: str) -> None:
    """Fail, naming the file, the first missing column, the option it came from and the columns present."""
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        present = ", ".join(_column_name(c) for c in frame.columns) or "none"
        hint = ""
        if len(frame.columns) == 1:
            found = [
                name for sep, name in (("\t", "tabs"), (";", "semicolons"), (",", "commas")) if sep in frame.columns[0]
            ]
            if found:
                hint = (
                    f" (one column, whose name holds {found[0]}: is the separator right? "
                    ".csv is comma-separated, .tsv tab-separated)"
                )
        raise DataError(f"{path}: no column '{missing[0]}' ({key}); columns present: {present}{hint}")


def _column_name(name: object) -> str:
    """A column name for messages: as it is, or quoted where spaces or odd characters would hide it."""
    text = str(name)
    return text if text and text.strip() == text and text.isprintable() else repr(text)


def folder_splits(folder: Path) -> dict[str, Path]:
    """train.*, validation.* (or valid, val, dev) and test.* data files in a folder."""
    out: dict[str, Path] = {}
    for f in sorted(folder.iterdir()):
        split = SPLIT_ALIASES.get(f.name.split(".")[0].lower())
        if split and format_of(f) and split not in out:
            if not f.is_file():
                raise DataError(f"[dataset] path: '{f}' is a folder, not a data file; {split} needs a file")
            out[split] = f
    if "train" not in out:
        raise DataError(f"[dataset] path: folder '{folder}' has no train.csv/.tsv/.json/.jsonl/.parquet file")
    return out


@one_line_errors
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
        _require_file(path, "path", "one file or a folder of train/validation/test files" if folder else "one file")
        return {"train": path}
    if not options.train:
        what = "one file or folder" if folder else "one file"
        raise DataError(f"[dataset] needs path ({what}) or train (and optionally validation, test)")
    out = {}
    for split in ("train", "validation", "test"):
        value = getattr(options, split)
        if value:
            path = ctx.path(value)
            _require_file(path, split, "one file (use path for a folder of split files)" if folder else "one file")
            out[split] = path
    return out


def _require_file(path: Path, key: str, expected: str) -> None:
    if path.is_dir():
        raise DataError(f"[dataset] {key}: '{path}' is a folder; {key} names {expected}")
    if not path.exists():
        raise DataError(f"[dataset] {key}: '{path}' does not exist")
    if not path.is_file():
        raise DataError(f"[dataset] {key}: '{path}' is not a regular file; {key} names {expected}")


#: one piece of a text template: literal text, then a column (or None), its conversion and format spec
Piece = tuple[str, "str | None", "str | None", str]


def template_pieces(template: str, key: str = "[dataset] text_template") -> list[Piece]:
    """A text template checked and split into pieces; each ``{...}`` names a column, as written.

    ``{title}``, ``{count:,}`` and ``{title!r}`` are fields; a column named ``a.b`` or ``0`` is
    ``{a.b}`` or ``{0}`` (no attribute or index lookups); a literal brace is written twice.
    """
    hint = "put column names in braces, such as '{title}. {body}', and write a literal brace twice ('{{' or '}}')"
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise DataError(f"{key} {template!r}: {exc}; {hint}") from None
    pieces: list[Piece] = []
    for literal, name, spec, conversion in parsed:
        if name is None:
            pieces.append((literal, None, None, ""))
            continue
        if not name.strip():
            raise DataError(f"{key} {template!r}: an empty '{{}}' names no columns; {hint}")
        if conversion not in (None, "r", "s", "a"):
            raise DataError(f"{key} {template!r}: '!{conversion}' is not a conversion; use !r, !s or !a, or none")
        if spec and ("{" in spec or "}" in spec):
            raise DataError(f"{key} {template!r}: the format spec of '{{{name}}}' has braces of its own; {hint}")
        pieces.append((literal, name, conversion, spec or ""))
    if not any(column for _, column, _, _ in pieces):
        raise DataError(f"{key} {template!r} names no columns; {hint}")
    return pieces


def template_columns(template: str, key: str = "[dataset] text_template") -> list[str]:
    """The columns a text template names, in order, once each."""
    return list(dict.fromkeys(c for _, c, _, _ in template_pieces(template, key) if c))


def table_texts(
    frame: pd.DataFrame,
    path: Path | str,
    *,
    columns: str | Sequence[str] = "text",
    template: str = "",
    separator: str = " ",
    column_key: str = "text_column",
    template_key: str = "[dataset] text_template",
) -> list[str | None]:
    """Each row's text: from a template over columns, else one column, else several columns joined.

    A missing cell gives None with one column, and nothing with several or in a template (the row's
    text may end up empty: the split checks report it). A cell that is not text (a list, a table,
    bytes, true/false) is an error naming the column and rows; numbers become their text.
    """
    if template:
        return _render(frame, path, template, template_key)
    names = [columns] if isinstance(columns, str) else list(columns)
    if not names:
        raise DataError(f"[dataset] {column_key}: an empty list names no column; give a column, or a list of columns")
    repeated = sorted({c for c in names if names.count(c) > 1})
    if repeated:
        raise DataError(f"[dataset] {column_key}: names column '{repeated[0]}' twice; name each column once")
    require_columns(frame, names, path, column_key)
    cells = {c: _cells(frame[c], c, path, column_key, allow_bool=False) for c in names}
    if len(names) == 1:
        return [None if v is None else str(v) for v in cells[names[0]]]
    out = []
    for row in range(len(frame)):
        parts = (str(cells[c][row]) for c in names if cells[c][row] is not None)
        out.append(separator.join(p for p in parts if p.strip()))
    return out


def _render(frame: pd.DataFrame, path: Path | str, template: str, key: str) -> list[str]:
    pieces = template_pieces(template, key)
    columns = list(dict.fromkeys(c for _, c, _, _ in pieces if c))
    require_columns(frame, columns, path, "text_template")
    cells = {c: _cells(frame[c], c, path, "text_template", allow_bool=True) for c in columns}
    convert = {"r": repr, "s": str, "a": ascii}
    out = []
    for row in range(len(frame)):
        parts = []
        for literal, column, conversion, spec in pieces:
            parts.append(literal)
            if column is None or cells[column][row] is None:
                continue
            value = cells[column][row]
            if conversion:
                value = convert[conversion](value)
            try:
                parts.append(format(value, spec))
            except (ValueError, TypeError) as exc:
                raise DataError(
                    f"{key} {template!r}: '{{{column}:{spec}}}' cannot format {value!r} (row {row}): {exc}"
                ) from None
        out.append("".join(parts).strip())
    return out


def _cells(series: pd.Series, column: str, path: Path | str, key: str, *, allow_bool: bool) -> list[Any]:
    """A column's cells as str, int or float (None where missing); anything else is an error."""
    import numpy as np
    import pandas as pd

    from .data import kind_of, shown_rows

    out: list[Any] = []
    bad: dict[str, list[int]] = {}
    for row, value in enumerate(series.astype(object).tolist()):
        if isinstance(value, np.generic):
            value = value.item()
        if isinstance(value, str) or (isinstance(value, (int, float)) and not isinstance(value, bool)):
            if isinstance(value, float) and math.isnan(value):
                value = None
            out.append(value)
        elif isinstance(value, bool) and allow_bool:
            out.append(value)
        elif value is None or value is pd.NA or value is pd.NaT:
            out.append(None)
        else:
            bad.setdefault(kind_of(value), []).append(row)
            out.append(None)
    if bad:
        kind, rows = next(iter(bad.items()))
        raise DataError(
            f"{path}: column '{column}' ({key}) holds {kind}, not text (rows {shown_rows(rows)}); name a column of text"
        )
    return out
