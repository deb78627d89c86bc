"""The ``imdb`` dataset: the Large Movie Review Dataset (Maas et al., 2011), binary sentiment of long reviews.

From the Hugging Face Hub (``stanfordnlp/imdb``) by default, or from local
files with ``path``: a folder holding ``train`` and ``test`` files (Parquet,
CSV or JSON Lines) with ``text`` and ``label`` columns (0 negative, 1 positive).
"""

from __future__ import annotations

from dataclasses import dataclass

from autoft import DataError, Dataset, LoadContext, RawDataset, hookimpl, option
from autoft.tables import folder_splits, read_table
from autoft_plugins.datasets.files import FilesOptions, to_split
from autoft_plugins.datasets.hub import HubOptions, load_hub

LABELS = ("negative", "positive")


@dataclass(frozen=True)
class ImdbOptions:
    path: str = option("", "local folder with train and test files; empty loads the hub dataset")
    hub_id: str = option("stanfordnlp/imdb", "dataset id on the Hugging Face Hub")


class Imdb(Dataset):
    """IMDb movie reviews: 25,000 for training and 25,000 for testing, negative or positive."""

    name = "imdb"
    Options = ImdbOptions

    def load(self, options: ImdbOptions, ctx: LoadContext) -> RawDataset:
        if not options.path:
            raw = load_hub(HubOptions(id=options.hub_id))
            return RawDataset(raw.splits, LABELS, source=raw.source, notes=raw.notes)
        folder = ctx.path(options.path)
        if folder.exists() and not folder.is_dir():
            raise DataError(f"[dataset] path: '{folder}' is a file; path names a folder with train and test files")
        if not folder.is_dir():
            raise DataError(f"[dataset] path: '{folder}' does not exist; path names a folder with train and test files")
        columns = FilesOptions(text_column="text", label_column="label")
        splits = {split: to_split(read_table(file), columns, file) for split, file in folder_splits(folder).items()}
        return RawDataset(splits, LABELS, source=str(folder))


@hookimpl
def register_datasets(register):
    register(Imdb)
