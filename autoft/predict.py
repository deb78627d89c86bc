"""Predicting labels for new texts with a saved model (batched, sorted by length, no gradients)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import tomllib

from .export import load_trained
from .features import encode
from .training import autocast_dtype, predict_proba, resolve_device


@dataclass
class Predictions:
    texts: list[str]
    label_names: list[str]
    proba: np.ndarray

    @property
    def labels(self) -> list[str]:
        return [self.label_names[i] for i in self.proba.argmax(axis=1)]


class Predictor:
    """A saved model and its tokenizer, ready to label texts."""

    def __init__(self, folder: str | Path, device: str = "auto", batch_size: int = 64, max_length: int | None = None):
        self.model, self.tokenizer = load_trained(Path(folder))
        self.device = resolve_device(device)
        self.model.to(self.device)
        self.batch_size = batch_size
        self.max_length = max_length or trained_max_length(Path(folder), self.tokenizer)
        config = self.model.config
        self.label_names = [config.id2label[i] for i in range(config.num_labels)]

    def __call__(self, texts: list[str]) -> Predictions:
        enc = encode(self.tokenizer, texts, np.zeros(len(texts), dtype=np.int64), self.max_length)
        proba = predict_proba(
            self.model,
            enc,
            batch_size=self.batch_size,
            device=self.device,
            pad_id=int(self.tokenizer.pad_token_id),
            dtype=autocast_dtype("auto", self.device),
        )
        return Predictions(list(texts), self.label_names, proba)


def trained_max_length(folder: Path, tokenizer) -> int:
    """The max_length the model was trained with (from its study.toml), else the tokenizer's limit."""
    try:
        with open(folder / "study.toml", "rb") as f:
            return int(tomllib.load(f).get("model", {}).get("max_length", 128))
    except (OSError, tomllib.TOMLDecodeError, ValueError):
        limit = tokenizer.model_max_length
        return limit if limit and limit < 100_000 else 512


def read_texts(path: Path) -> list[str]:
    """One text per line; blank lines are skipped."""
    return [line.rstrip("\n") for line in Path(path).read_text(encoding="utf-8").splitlines() if line.strip()]
