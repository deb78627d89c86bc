"""The ``hub`` dataset: any text classification dataset on the Hugging Face Hub, by id."""

from __future__ import annotations

from dataclasses import dataclass

from autoft import DataError, Dataset, LoadContext, RawDataset, Split, hookimpl, option
from autoft.errors import first_line
from autoft.hub import url_problem

VALIDATION_NAMES = ("validation", "valid", "val", "dev")


@dataclass(frozen=True)
class HubOptions:
    id: str = option(help="dataset id on the Hub, such as 'stanfordnlp/imdb'")
    config: str = option("", "dataset configuration (subset) name")
    revision: str = option("", "branch, tag or commit")
    train_split: str = option("train", "split to train on")
    validation_split: str = option("", "split to validate on; empty picks validation/valid/dev if present")
    test_split: str = option("test", "split to test on; empty or absent carves one from train")
    text_column: str = option("text", "column holding the text")
    text_pair_column: str = option("", "column holding the second text of sentence pairs (such as 'sentence2')")
    label_column: str = option("label", "column holding the label")


def load_hub(options: HubOptions) -> RawDataset:
    """Load splits from the Hub; label names come from a ClassLabel feature when there is one."""
    import datasets

    problem = url_problem(options.id, "datasets", "give a Hub dataset id, such as 'stanfordnlp/imdb'")
    if problem:
        raise DataError(f"[dataset] id {problem}")
    try:
        dd = datasets.load_dataset(options.id, options.config or None, revision=options.revision or None)
    except Exception as exc:  # the hub client raises many kinds of errors
        first = first_line(exc)
        raise DataError(
            f"cannot load dataset '{options.id}' from the Hugging Face Hub ({first}); "
            "check the id and your network, or point the files dataset at local files"
        ) from exc
    available = list(dd.keys())
    if options.train_split not in dd:
        raise DataError(f"dataset '{options.id}' has no split '{options.train_split}'; splits: {', '.join(available)}")
    wanted = {"train": options.train_split}
    validation = options.validation_split or next((n for n in VALIDATION_NAMES if n in dd), "")
    if options.validation_split and options.validation_split not in dd:
        raise DataError(f"dataset '{options.id}' has no split '{validation}'; splits: {', '.join(available)}")
    if validation:
        wanted["validation"] = validation
    if options.test_split and options.test_split in dd:
        wanted["test"] = options.test_split
    features = dd[options.train_split].features
    for column in (options.text_column, options.text_pair_column, options.label_column):
        if column and column not in features:
            raise DataError(f"dataset '{options.id}' has no column '{column}'; columns: {', '.join(features)}")
    label_feature = features[options.label_column]
    names = list(label_feature.names) if hasattr(label_feature, "names") else None
    splits = {}
    notes = []
    for split, hub_split in wanted.items():
        part = dd[hub_split]
        labels = part[options.label_column]
        if split == "test" and names is not None and all(y == -1 for y in labels):
            notes.append(f"the hub's '{hub_split}' split has no labels; a test split is carved from train instead")
            continue
        pairs = part[options.text_pair_column] if options.text_pair_column else None
        splits[split] = Split(part[options.text_column], labels, pairs)
    source = f"{options.id}" + (f" ({options.config})" if options.config else "")
    columns = tuple(c for c in (options.text_column, options.text_pair_column) if c)
    return RawDataset(
        splits, names, source=source, notes=notes, text_columns=columns, label_column=options.label_column
    )


class Hub(Dataset):
    """A dataset from the Hugging Face Hub."""

    name = "hub"
    Options = HubOptions

    def load(self, options: HubOptions, ctx: LoadContext) -> RawDataset:
        return load_hub(options)


@hookimpl
def register_datasets(register):
    register(Hub)
