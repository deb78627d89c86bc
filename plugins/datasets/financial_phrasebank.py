"""The ``financial_phrasebank`` dataset: 3-class sentiment of financial news sentences (Malo et al., 2014).

Sentences carry the label that more than a share of 5-8 annotators agreed on:
50, 66, 75 or 100 percent (``agreement`` = "50", "66", "75", "all"). The data has
no official split, so autoft makes a seeded, stratified train/validation/test
split; exact duplicate sentences are removed first (and sentences that appear
with conflicting labels are dropped), so no sentence lands on both sides.

From the Hugging Face Hub (``takala/financial_phrasebank``) by default, or from
local files with ``path``: a folder holding ``<agreement>agree.parquet`` (or
.csv/.jsonl) with ``text`` and ``label`` columns (0 negative, 1 neutral, 2 positive).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass
from typing import Literal

from autoft import DataError, Dataset, LoadContext, RawDataset, Split, hookimpl, option
from autoft.tables import read_table
from autoft_plugins.datasets.files import FilesOptions, to_split
from autoft_plugins.datasets.hub import HubOptions, load_hub

LABELS = ("negative", "neutral", "positive")
SUFFIXES = (".parquet", ".csv", ".jsonl")


@dataclass(frozen=True)
class PhraseBankOptions:
    agreement: Literal["50", "66", "75", "all"] = option("all", "annotator agreement: 50, 66, 75 or all (100%)")
    path: str = option("", "local folder with 50agree/66agree/75agree/allagree files; empty loads the hub dataset")
    hub_id: str = option("takala/financial_phrasebank", "dataset id on the Hugging Face Hub")


def deduplicate(texts: list[str], labels: list) -> tuple[list[str], list, list[str]]:
    """Keep the first copy of each sentence; drop sentences seen with more than one label."""
    seen: dict[str, set] = defaultdict(set)
    copies: Counter[str] = Counter()
    for t, y in zip(texts, labels):
        seen[t].add(y)
        copies[t] += 1
    conflicting = {t for t, ys in seen.items() if len(ys) > 1}
    out_t, out_y, kept = [], [], set()
    for t, y in zip(texts, labels):
        if t in conflicting or t in kept:
            continue
        kept.add(t)
        out_t.append(t)
        out_y.append(y)
    notes = []
    duplicates = len(texts) - len(out_t) - sum(copies[t] for t in conflicting)
    if duplicates:
        notes.append(f"removed {duplicates} exact duplicate sentences")
    if conflicting:
        notes.append(f"dropped {len(conflicting)} sentences that appear with conflicting labels")
    return out_t, out_y, notes


class FinancialPhraseBank(Dataset):
    """Financial PhraseBank v1.0: negative, neutral or positive, by annotator agreement."""

    name = "financial_phrasebank"
    Options = PhraseBankOptions

    def load(self, options: PhraseBankOptions, ctx: LoadContext) -> RawDataset:
        if options.path:
            folder = ctx.path(options.path)
            stem = f"{options.agreement}agree"
            if folder.exists() and not folder.is_dir():
                raise DataError(f"[dataset] path: '{folder}' is a file; path names the folder holding {stem}.parquet")
            files = [folder / f"{stem}{s}" for s in SUFFIXES if (folder / f"{stem}{s}").is_file()]
            if not files:
                raise DataError(f"[dataset] path: '{folder}' has no {stem}.parquet (or .csv, .jsonl)")
            split = to_split(read_table(files[0]), FilesOptions(), files[0])
            source = str(files[0])
        else:
            config = "sentences_allagree" if options.agreement == "all" else f"sentences_{options.agreement}agree"
            raw = load_hub(HubOptions(id=options.hub_id, config=config, text_column="sentence", test_split=""))
            split = raw.splits["train"]
            source = raw.source
        texts, labels, notes = deduplicate(list(split.texts), list(split.labels))
        return RawDataset({"train": Split(texts, labels)}, LABELS, source=source, notes=notes)


@hookimpl
def register_datasets(register):
    register(FinancialPhraseBank)
