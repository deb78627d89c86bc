"""The dataset summary shown when a study starts: rows, label balance, lengths, truncation."""

from __future__ import annotations

from typing import Any

import numpy as np
from rich.markup import escape
from rich.table import Table

from .data import SPLITS


def data_summary(bench: Any) -> list[dict]:
    """Per split: rows, label counts (a regression target's mean, spread and range), token-length
    percentiles and the share cut at max_length."""
    max_length = bench.config.model.max_length
    out = []
    for split in SPLITS:
        enc = bench.encoded[split]
        lengths = enc.lengths
        if bench.data.regression:
            y = np.asarray(enc.labels, dtype=np.float64)
            labels = {"mean": float(y.mean()), "sd": float(y.std()), "min": float(y.min()), "max": float(y.max())}
        elif bench.data.multi_label:  # rows with each label (a row may have several)
            counts = np.asarray(enc.labels).sum(axis=0)
            labels = {name: int(c) for name, c in zip(bench.data.label_names, counts)}
        else:
            counts = np.bincount(enc.labels, minlength=len(bench.data.label_names))
            labels = {name: int(c) for name, c in zip(bench.data.label_names, counts)}
        out.append(
            {
                "split": split,
                "rows": len(enc),
                "labels": labels,
                "tokens_p50": int(np.percentile(lengths, 50)),
                "tokens_p95": int(np.percentile(lengths, 95)),
                "tokens_max": int(lengths.max()),
                "truncated_share": float(np.mean(lengths >= max_length)),
            }
        )
    return out


def describe_data(bench: Any, display: Any) -> None:
    data = bench.data
    table = Table(
        title=f"dataset {bench.config.dataset.type}: {data.source}", title_justify="left", header_style="bold"
    )
    target = f"{data.label_names[0]} mean ± sd (range)" if data.regression else "labels"
    for col in ("split", "rows", target, "tokens p50/p95/max", f"cut at {bench.config.model.max_length}"):
        table.add_column(col)
    for row in data_summary(bench):
        total = max(row["rows"], 1)
        if data.regression:
            y = row["labels"]
            labels = f"{y['mean']:.3g} ± {y['sd']:.3g} ({y['min']:.3g} to {y['max']:.3g})"
        else:
            labels = ", ".join(f"{n} {c / total:.0%}" for n, c in row["labels"].items())
        table.add_row(
            row["split"],
            str(row["rows"]),
            labels,
            f"{row['tokens_p50']}/{row['tokens_p95']}/{row['tokens_max']}",
            f"{row['truncated_share']:.1%}",
        )
    display.print(table)
    if data.paired:
        columns = f" ({', '.join(data.text_columns)})" if len(data.text_columns) == 2 else ""
        display.print(f"[dim]sentence pairs{escape(columns)}: tokens counted for both texts together[/]")
    for note in data.notes:
        display.print(("[yellow]" if note.startswith("warning") else "[dim]") + escape(note) + "[/]")
    if bench.tokens_cached:
        display.print("[dim]tokens: reused from the run folder's cache[/]")
