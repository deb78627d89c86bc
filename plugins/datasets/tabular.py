"""The ``tabular`` dataset: records (CSV, Parquet, ...) labelled by thresholding a number.

Each row becomes one text, from a template over its columns or from columns
joined. Its label comes from ``value_column``: cut at ``threshold`` (two
classes) or at ascending ``thresholds`` (more). With ``group_by``, the value
cut is the group's aggregate (a state's total, say), while each row keeps its
own text. Missing fields are dropped, filled or reported, and the counts go to
the study log. ``generate = N`` uses N seeded government-style records
(:mod:`autoft_plugins.gov_records`) instead of files.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import numpy as np

from autoft import DataError, Dataset, LoadContext, RawDataset, Split, hookimpl, option
from autoft.data import one_line_errors, shown_rows
from autoft.tables import read_table, require_columns, split_files, table_texts, template_columns
from autoft_plugins.gov_records import MAX_RECORDS, generate_records

if TYPE_CHECKING:
    import pandas as pd


@dataclass(frozen=True)
class TabularOptions:
    value_column: str = option(help="numeric column the label is cut from (thousands separators and $ allowed)")
    path: str = option("", "one CSV or Parquet file (validation and test are carved from it)")
    train: str = option("", "the training file (instead of path)")
    validation: str = option("", "the validation file (optional)")
    test: str = option("", "the test file (optional)")
    generate: int = option(0, "use this many generated government-style records instead of files", ge=0, le=MAX_RECORDS)
    generate_seed: int = option(0, "seed of the generated records", ge=0)
    generate_missing: float = option(0.0, "share of generated rows without a county, and without a count", ge=0, lt=1)
    format: Literal["auto", "csv", "tsv", "json", "jsonl", "parquet"] = option("auto", "auto follows the suffix")
    encoding: str = option("utf-8", "text encoding of CSV, TSV and JSON files")
    threshold: float | None = option(None, "cut point: below it is the first class, at or above it the second")
    thresholds: list[float] = option([], "ascending cut points, for three or more classes (instead of threshold)")
    label_names: list[str] = option([], "one name per class, lowest first; default: 'below 5000', '5000 or more'")
    group_by: str | list[str] = option([], "columns whose groups share a label, from the aggregate of their values")
    aggregate: Literal["sum", "mean", "median", "max", "min", "count"] = option(
        "sum", "how a group's values combine (count: rows with a value); needs group_by"
    )
    text_template: str = option("", "format string over columns, such as '{state} {year}: {program} served {count}'")
    text_columns: list[str] = option([], "columns joined by text_separator (instead of text_template)")
    text_separator: str = option(" ", "joins the text columns")
    missing: Literal["drop", "fill", "error"] = option(
        "drop",
        "a missing text or group_by field: drop the row, fill it with fill_value, or stop; "
        "a missing or non-numeric value is dropped unless this is error",
    )
    fill_value: str = option("unknown", "what missing text and group_by fields become with missing = 'fill'")


VALUE = "__autoft_value__"


@dataclass
class Table:
    """One split's rows (with the parsed value in column VALUE) and where they came from."""

    frame: pd.DataFrame
    where: str


class Tabular(Dataset):
    """Tabular records whose label is a numeric value (or its group's aggregate) cut at thresholds."""

    name = "tabular"
    Options = TabularOptions

    @one_line_errors
    def load(self, options: TabularOptions, ctx: LoadContext) -> RawDataset:
        cuts = cut_points(options)
        names = class_names(options, cuts)
        group_by = [options.group_by] if isinstance(options.group_by, str) else list(options.group_by)
        if options.aggregate != "sum" and not group_by:
            raise DataError(f"[dataset] aggregate = '{options.aggregate}' needs group_by, the columns to group by")
        tables, source = self._tables(options, ctx)
        fields = text_fields(options, next(iter(tables.values())))
        text_only = [c for c in fields if c not in group_by]
        for table in tables.values():
            require_columns(table.frame, [options.value_column], table.where, "value_column")
            require_columns(table.frame, group_by, table.where, "group_by")
            require_columns(
                table.frame, fields, table.where, "text_template" if options.text_template else "text_columns"
            )

        bad_values = sum(parse_values(t, options.value_column, options.missing) for t in tables.values())
        # rows without a group key join no group; rows missing only a text field still count in their group
        fixed = [fix_missing(t, group_by, options) for t in tables.values()]
        groups = aggregate_groups(tables, group_by, options.aggregate) if group_by else 0
        fixed += [fix_missing(t, text_only, options) for t in tables.values()]

        splits = {}
        for split, table in tables.items():
            labels = np.searchsorted(cuts, table.frame[VALUE].to_numpy(dtype=float), side="right")
            splits[split] = Split(render(table.frame, options, table.where), labels.tolist())
        notes = []
        if bad_values:
            notes.append(f"dropped {bad_values} rows whose {options.value_column} is missing or not a number")
        notes += missing_notes(fixed, options)
        rule = f"'{options.value_column}'"
        if group_by:
            rule = f"the {options.aggregate} of {rule} per {' and '.join(group_by)} ({groups} groups)"
        sizes = np.bincount(np.concatenate([s.labels for s in splits.values()]).astype(int), minlength=len(names))
        shown = ", ".join(f"{n} ({k} rows)" for n, k in zip(names, sizes))
        notes.append(f"labels from {rule}, cut at {', '.join(number(c) for c in cuts)}: {shown}")
        return RawDataset(splits, names, source=source, notes=notes)

    def _tables(self, options: TabularOptions, ctx: LoadContext) -> tuple[dict[str, Table], str]:
        given = [k for k in ("path", "train") if getattr(options, k)] + (["generate"] if options.generate else [])
        if len(given) > 1:
            raise DataError(
                f"[dataset] give one of path, train (with validation, test) or generate, not {' and '.join(given)}"
            )
        extra = [k for k in ("validation", "test") if getattr(options, k)]
        if extra and options.generate:
            raise DataError(f"[dataset] {extra[0]} goes with train = <file>; generate is one table, carved into splits")
        if (options.generate_seed or options.generate_missing) and not options.generate:
            raise DataError("[dataset] generate_seed and generate_missing go with generate = <rows>")
        if options.generate:
            frame = generate_records(options.generate, options.generate_seed, options.generate_missing)
            source = f"{options.generate} generated government records (seed {options.generate_seed})"
            return {"train": Table(frame, "[dataset] generate")}, source
        if not given:
            raise DataError("[dataset] needs path (one file), train (and optionally validation, test) or generate = N")
        tables = {
            split: Table(numbers_as_numbers(read_table(path, options.format, options.encoding)), str(path))
            for split, path in split_files(options, ctx).items()
        }
        return tables, ", ".join(t.where for t in tables.values())


def cut_points(options: TabularOptions) -> np.ndarray:
    """The ascending cut points from threshold or thresholds."""
    if options.threshold is not None and options.thresholds:
        raise DataError("[dataset] give threshold (two classes) or thresholds (a list of cut points), not both")
    if options.threshold is not None:
        return np.array([options.threshold])
    if not options.thresholds:
        raise DataError("[dataset] needs threshold = <number> (two classes) or thresholds = [<ascending numbers>]")
    cuts = np.array(options.thresholds, dtype=float)
    if np.any(np.diff(cuts) <= 0):
        raise DataError(f"[dataset] thresholds: {list(options.thresholds)} must be strictly ascending")
    return cuts


def class_names(options: TabularOptions, cuts: np.ndarray) -> list[str]:
    """label_names, or names from the cut points: 'below 10', '10 to 20', '20 or more'."""
    if options.label_names:
        if len(options.label_names) != len(cuts) + 1:
            raise DataError(
                f"[dataset] label_names: {len(options.label_names)} names for {len(cuts) + 1} classes "
                f"({len(cuts)} cut points); give {len(cuts) + 1} names, lowest class first"
            )
        return list(options.label_names)
    shown = [number(c) for c in cuts]
    middle = [f"{lo} to {hi}" for lo, hi in zip(shown, shown[1:])]
    return [f"below {shown[0]}", *middle, f"{shown[-1]} or more"]


def number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def text_fields(options: TabularOptions, table: Table) -> list[str]:
    """The columns the text is made from."""
    present = ", ".join(map(str, table.frame.columns)) or "none"
    if options.text_template and options.text_columns:
        raise DataError("[dataset] give text_template or text_columns, not both")
    if options.text_columns:
        return list(dict.fromkeys(options.text_columns))
    if not options.text_template:
        raise DataError(
            "[dataset] needs text_template (such as '{state} {year}: {program} served {count} people') "
            f"or text_columns; columns present: {present}"
        )
    return template_columns(options.text_template)


def numbers_as_numbers(frame: pd.DataFrame) -> pd.DataFrame:
    """Text columns whose every filled cell is a number (blank cells aside) as numbers, as a template formats them.

    The reader keeps cells as text ("NA" stays "NA"); a column of numbers is numeric here, where values are cut
    and templates format them (``{count:,}``).
    """
    import pandas as pd

    out = frame.copy()
    for column in frame.columns:
        values = frame[column]
        if pd.api.types.is_numeric_dtype(values) or not pd.api.types.is_string_dtype(values):
            continue
        text = values.astype("string").str.strip()
        filled = text.ne("").fillna(False)
        if not filled.any():
            continue
        numbers = pd.to_numeric(text.where(filled), errors="coerce")
        if numbers[filled].notna().all() and np.isfinite(numbers[filled].to_numpy(dtype=float)).all():
            out[column] = numbers.astype(float)
    return out


def parse_values(table: Table, column: str, missing: str) -> int:
    """Put the numeric value of ``column`` in VALUE; drop (or report) rows without one. Returns rows dropped."""
    import pandas as pd

    raw = table.frame[column]
    if pd.api.types.is_numeric_dtype(raw) and not pd.api.types.is_bool_dtype(raw):
        values = pd.to_numeric(raw, errors="coerce").astype(float)
    else:
        cleaned = raw.astype("string").str.strip().str.replace(r"^\$|,", "", regex=True)
        values = pd.to_numeric(cleaned, errors="coerce").astype(float)
    bad = ~np.isfinite(values.to_numpy(dtype=float, na_value=np.nan))
    if bad.any() and missing == "error":
        examples = sorted({_show(v) for v in raw[bad].tolist()})[:3]
        raise DataError(
            f"{table.where}: value_column '{column}' has {int(bad.sum())} missing or non-numeric values "
            f"(rows {shown_rows(np.flatnonzero(bad))}; such as {', '.join(examples)}); "
            "set missing = 'drop' to drop those rows"
        )
    if bad.all():
        numeric = [str(c) for c in table.frame.columns if pd.api.types.is_numeric_dtype(table.frame[c])]
        raise DataError(
            f"{table.where}: value_column '{column}' has no numeric values; "
            f"numeric columns: {', '.join(numeric) or 'none'}"
        )
    table.frame = table.frame.assign(**{VALUE: values})[~bad]
    return int(bad.sum())


def fix_missing(table: Table, columns: list[str], options: TabularOptions) -> tuple[int, dict[str, int]]:
    """Drop, fill or report rows with a blank field among ``columns``: (rows affected, blanks per column)."""
    frame = table.frame
    blank = {c: _blank(frame[c]) for c in columns}
    counts = {c: int(mask.sum()) for c, mask in blank.items() if mask.any()}
    if not counts:
        return 0, {}
    any_blank = np.logical_or.reduce([blank[c] for c in counts])
    if options.missing == "error":
        column = next(iter(counts))
        raise DataError(
            f"{table.where}: column '{column}' has {counts[column]} missing values "
            f"(rows {shown_rows(np.flatnonzero(blank[column]))}); set missing = 'drop' or 'fill'"
        )
    if options.missing == "drop":
        table.frame = frame[~any_blank]
    else:
        frame = frame.copy()
        for c in counts:
            frame[c] = frame[c].astype(object).where(~blank[c], options.fill_value)
        table.frame = frame
    return int(any_blank.sum()), counts


def aggregate_groups(tables: dict[str, Table], group_by: list[str], aggregate: str) -> int:
    """Replace each row's value with its group's aggregate over the rows of every split; return the groups."""
    import pandas as pd

    both = pd.concat([t.frame[[*group_by, VALUE]] for t in tables.values()], ignore_index=True)
    keys = [both[c].astype(object).map(_key) for c in group_by]
    grouped = both.groupby(keys, sort=False)[VALUE]
    values = grouped.transform(aggregate).to_numpy(dtype=float)
    start = 0
    for table in tables.values():
        end = start + len(table.frame)
        table.frame = table.frame.assign(**{VALUE: values[start:end]})
        start = end
    return grouped.ngroups


def render(frame: pd.DataFrame, options: TabularOptions, where: str) -> list[str]:
    """Each row's text; whole numbers stored as floats (a column with gaps) print without '.0'."""
    import pandas as pd

    frame = frame.copy()
    for c in frame.columns:
        column = frame[c]
        if pd.api.types.is_float_dtype(column) and (column.dropna() % 1 == 0).all():
            frame[c] = column.astype("Int64")
    return [
        str(t)
        for t in table_texts(
            frame,
            where,
            columns=list(options.text_columns),
            template=options.text_template,
            separator=options.text_separator,
            column_key="text_columns",
        )
    ]


def missing_notes(fixed: list[tuple[int, dict[str, int]]], options: TabularOptions) -> list[str]:
    rows = sum(n for n, _ in fixed)
    if not rows:
        return []
    per_column: dict[str, int] = {}
    for _, counts in fixed:
        for c, n in counts.items():
            per_column[c] = per_column.get(c, 0) + n
    detail = ", ".join(f"{c} {n}" for c, n in per_column.items())
    if options.missing == "drop":
        return [f"dropped {rows} rows with missing fields ({detail})"]
    return [f"filled {sum(per_column.values())} missing fields in {rows} rows with {options.fill_value!r} ({detail})"]


def _blank(column: pd.Series) -> np.ndarray:
    import pandas as pd

    mask = column.isna().to_numpy(dtype=bool)
    if pd.api.types.is_numeric_dtype(column):
        return mask
    return mask | column.astype("string").str.strip().eq("").fillna(False).to_numpy(dtype=bool)


def _key(value):
    """Group keys compare as read: 2020 and 2020.0 are one year."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _show(value) -> str:
    import pandas as pd

    return "empty" if value is None or (isinstance(value, float) and np.isnan(value)) or value is pd.NA else repr(value)


@hookimpl
def register_datasets(register):
    register(Tabular)
