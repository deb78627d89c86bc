"""Predicting labels for new texts with a saved model (batched, sorted by length, no gradients)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from . import tables
from .errors import ConfigError, DataError
from .features import encode
from .saved import load_trained, trained_max_length
from .training import autocast_dtype, predict_proba, resolve_device

__all__ = ["Predictions", "Predictor", "read_table", "read_texts", "trained_max_length", "write_table"]


@dataclass
class Predictions:
    texts: list[str]
    label_names: list[str]
    proba: np.ndarray

    @property
    def labels(self) -> list[str]:
        return [self.label_names[i] for i in self.proba.argmax(axis=1)]

    def frame(self) -> pd.DataFrame:
        """label, probability of that label, and one p(<label>) column per class."""
        out = pd.DataFrame({"label": self.labels, "probability": self.proba.max(axis=1)})
        for i, name in enumerate(self.label_names):
            out[f"p({name})"] = self.proba[:, i]
        return out


class Predictor:
    """A saved model and its tokenizer, ready to label texts."""

    def __init__(self, folder: str | Path, device: str = "auto", batch_size: int = 128, max_length: int | None = None):
        self.model, self.tokenizer = load_trained(Path(folder))
        self.device = resolve_device(device)
        self.model.to(self.device)
        self.batch_size = batch_size
        self.max_length = max_length or trained_max_length(Path(folder), self.tokenizer)
        config = self.model.config
        self.label_names = [config.id2label[i] for i in range(config.num_labels)]

    def proba(self, texts: list[str]) -> np.ndarray:
        enc = encode(self.tokenizer, texts, np.zeros(len(texts), dtype=np.int64), self.max_length)
        return predict_proba(
            self.model,
            enc,
            batch_size=self.batch_size,
            device=self.device,
            pad_id=int(self.tokenizer.pad_token_id),
            dtype=autocast_dtype("auto", self.device),
        )

    def __call__(self, texts: list[str]) -> Predictions:
        return Predictions(list(texts), self.label_names, self.proba(list(texts)))


def read_texts(path: Path) -> list[str]:
    """One text per line; blank lines are skipped."""
    return [line.rstrip("\n") for line in Path(path).read_text(encoding="utf-8").splitlines() if line.strip()]


def read_table(path: Path, text_column: str) -> pd.DataFrame:
    """The ``--input`` table of texts (CSV, TSV, JSON Lines, JSON or Parquet); its text column must be there."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"--input '{path}' does not exist")
    if tables.format_of(path) is None:
        raise ConfigError(f"--input '{path}': use a .csv, .tsv, .jsonl, .json or .parquet file")
    try:
        frame = tables.read_table(path)
    except DataError as exc:
        cause = exc.__cause__
        if isinstance(cause, UnicodeDecodeError):  # predict has no encoding to set, unlike a study's [dataset]
            raise DataError(f"--input '{path}': not UTF-8 text at byte {cause.start}; save it as UTF-8") from exc
        raise
    tables.require_columns(frame, [text_column], path, "--text-column")
    return frame


def _kind(path: Path) -> str:
    """The format of an output file; compressed files are not written."""
    kind = tables.SUFFIXES.get(path.suffix.lower())
    if kind is None:
        raise ConfigError(f"'{path}': use a .csv, .tsv, .jsonl, .json or .parquet file")
    return kind


def write_table(frame: pd.DataFrame, path: Path) -> None:
    from .fsutil import write_bytes, write_text

    kind = _kind(path)
    if kind == "csv":
        write_text(path, frame.to_csv(index=False))
    elif kind == "tsv":
        write_text(path, frame.to_csv(index=False, sep="\t"))
    elif kind in ("jsonl", "json"):
        write_text(path, frame.to_json(orient="records", lines=kind == "jsonl", force_ascii=False))
    else:
        import io

        buf = io.BytesIO()
        frame.to_parquet(buf, index=False)
        write_bytes(path, buf.getvalue())
