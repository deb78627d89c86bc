"""A local autoft plugin: one Python file that a study names, with no package to install.

    [study]
    plugins = ["local_plugin.py"]     # relative to the study file

    [dataset]
    type = "label_lines"
    path = "data/intents"             # data/intents/<label>.txt, one example per line

It registers the ``label_lines`` dataset and, when the study ends, writes a
one-line summary of the best trial to ``best.txt`` in the run folder.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from autoft import DataError, Dataset, LoadContext, RawDataset, Split, hookimpl, option


@dataclass(frozen=True)
class LabelLinesOptions:
    path: str = option(help="folder with one <label>.txt file per label, one example per line")
    suffix: str = option(".txt", "the suffix of the label files")
    encoding: str = option("utf-8", "text encoding of the files")
    comment: str = option("#", "lines starting with this are skipped; empty keeps every line")


class LabelLines(Dataset):
    """One text file per label, one example per line (blank lines skipped)."""

    name = "label_lines"
    Options = LabelLinesOptions

    def load(self, options: LabelLinesOptions, ctx: LoadContext) -> RawDataset:
        folder = ctx.path(options.path)
        if not folder.is_dir():
            raise DataError(f"[dataset] path: '{folder}' is not a folder")
        files = sorted(f for f in folder.iterdir() if f.is_file() and f.name.endswith(options.suffix))
        if len(files) < 2:
            raise DataError(f"{folder}: found {len(files)} '*{options.suffix}' files; give one per label, two or more")
        texts, labels = [], []
        for f in files:
            label = f.name[: -len(options.suffix)] if options.suffix else f.name
            lines = [line.strip() for line in read_lines(f, options.encoding)]
            kept = [line for line in lines if line and not (options.comment and line.startswith(options.comment))]
            if not kept:
                raise DataError(f"{f}: no examples (every line is blank or a comment)")
            texts += kept
            labels += [label] * len(kept)
        return RawDataset({"train": Split(texts, labels)}, source=str(folder))


def read_lines(path: Path, encoding: str) -> list[str]:
    try:
        return path.read_text(encoding=encoding).splitlines()
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: cannot decode as {encoding} at byte {exc.start}; set encoding") from exc


@hookimpl
def register_datasets(register):
    register(LabelLines)


@hookimpl
def study_finished(study_name, run_dir, best):
    """Write the best trial's test scores to <run_dir>/best.txt (an event hook: it registers nothing)."""
    if best is None:
        return
    name, test = best["objective"], best["test"]
    line = (
        f"{study_name}: best trial {best['trial']}, test {name} {test[name]:.3f}, accuracy {test['accuracy']:.3f} "
        f"on {best['test_rows']} rows (majority class: {best['majority_baseline']['accuracy']:.3f})\n"
    )
    (Path(run_dir) / "best.txt").write_text(line)
