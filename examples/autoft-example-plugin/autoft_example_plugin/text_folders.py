"""The ``text_folders`` dataset: one text file per example, in a folder named after its label.

    reviews/                      or, with splits:   reviews/train/pos/001.txt
      pos/001.txt  pos/002.txt                       reviews/train/neg/...
      neg/001.txt  ...                               reviews/test/pos/...

Split folders are ``train``, ``validation`` (or ``valid``, ``val``, ``dev``) and
``test``; splits without a folder are carved from train by autoft.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from autoft import DataError, Dataset, LoadContext, RawDataset, Split, option

SPLIT_FOLDERS = {"train": "train", "validation": "validation", "valid": "validation", "val": "validation"}
SPLIT_FOLDERS |= {"dev": "validation", "test": "test"}


@dataclass(frozen=True)
class TextFoldersOptions:
    path: str = option(help="folder of label folders, or of train/validation/test folders holding label folders")
    pattern: str = option("*.txt", "which files in a label folder are examples (a glob)")
    encoding: str = option("utf-8", "text encoding of the files")
    labels: list[str] = option([], "label folders to use, in this order; default: every folder, sorted")


class TextFolders(Dataset):
    """Text files in label-named folders (the layout of IMDb's aclImdb and many corpora)."""

    name = "text_folders"
    Options = TextFoldersOptions

    def load(self, options: TextFoldersOptions, ctx: LoadContext) -> RawDataset:
        root = ctx.path(options.path)
        if not root.is_dir():
            raise DataError(f"[dataset] path: '{root}' is not a folder")
        folders = {SPLIT_FOLDERS[d.name.lower()]: d for d in sorted(root.iterdir()) if d.name.lower() in SPLIT_FOLDERS}
        if folders and "train" not in folders:
            raise DataError(f"{root}: has {', '.join(sorted(folders))} folders but no train folder")
        folders = folders or {"train": root}
        names = list(options.labels) or sorted(d.name for d in folders["train"].iterdir() if d.is_dir())
        if len(names) < 2:
            raise DataError(f"{folders['train']}: found {len(names)} label folders; a classifier needs at least two")
        notes: list[str] = []
        splits = {split: self._split(folder, names, options, notes) for split, folder in folders.items()}
        return RawDataset(splits, names, source=str(root), notes=notes)

    def _split(self, folder: Path, names: list[str], options: TextFoldersOptions, notes: list[str]) -> Split:
        texts, labels, empty = [], [], 0
        for label in names:
            label_dir = folder / label
            if not label_dir.is_dir():
                present = ", ".join(sorted(d.name for d in folder.iterdir() if d.is_dir())) or "none"
                raise DataError(f"{folder}: no label folder '{label}' (labels); folders present: {present}")
            files = sorted(f for f in label_dir.glob(options.pattern) if f.is_file())
            if not files:
                raise DataError(f"{label_dir}: no files match '{options.pattern}' (pattern)")
            for f in files:
                text = read_text(f, options.encoding)
                if text:
                    texts.append(text)
                    labels.append(label)
                else:
                    empty += 1
        if empty:
            notes.append(f"{folder}: skipped {empty} empty files")
        return Split(texts, labels)


def read_text(path: Path, encoding: str) -> str:
    try:
        return path.read_text(encoding=encoding).strip()
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: cannot decode as {encoding} at byte {exc.start}; set encoding") from exc
    except LookupError as exc:
        raise DataError(f"[dataset] encoding: {exc}") from exc
