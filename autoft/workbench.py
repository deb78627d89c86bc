"""What a study loads once and every trial shares: the checked data, its tokens, the base model."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from .config import StudyConfig
from .data import LoadContext, PreparedData, prepare
from .errors import DataError
from .features import Encoded, encode_splits
from .metrics import Metric
from .models import BaseModel, ModelRef, load_tokenizer, resolve
from .plugins import Registry
from .training import resolve_device


def load_data(config: StudyConfig, registry: Registry) -> PreparedData:
    """Load the study's dataset through its plugin and check it."""
    plugin = registry.dataset(config.dataset.type)()
    where = f"{config.path}: [dataset] ({config.dataset.type})"
    ctx = LoadContext(base_dir=config.base_dir, seed=config.study.seed)
    try:
        raw = plugin.load(config.dataset_options, ctx)
    except DataError:
        raise
    except (OSError, ValueError, KeyError, UnicodeDecodeError) as exc:
        raise DataError(f"{where}: {type(exc).__name__}: {exc}") from exc
    return prepare(
        raw,
        seed=config.study.seed,
        validation_size=config.dataset.validation_size,
        test_size=config.dataset.test_size,
        where=where,
    )


def model_ref(config: StudyConfig) -> ModelRef:
    return resolve(
        config.model.name,
        config.base_dir,
        revision=config.model.revision or None,
        trust_remote_code=config.model.trust_remote_code,
    )


@dataclass
class Workbench:
    """Everything a trial needs, loaded once per study (and inherited by trial processes)."""

    config: StudyConfig
    registry: Registry
    data: PreparedData
    ref: ModelRef
    tokenizer: Any
    base: BaseModel
    encoded: dict[str, Encoded] | None = None
    tokens_cached: bool = False

    @classmethod
    def load(cls, config: StudyConfig, registry: Registry) -> Workbench:
        """Load and check data, tokenizer and model. Writes nothing."""
        data = load_data(config, registry)
        ref = model_ref(config)
        tokenizer = load_tokenizer(ref)
        base = BaseModel(ref, data.label_names)
        return cls(config, registry, data, ref, tokenizer, base)

    def tokenize(self, cache_dir: Path | None) -> None:
        self.encoded, self.tokens_cached = encode_splits(
            self.tokenizer, self.data, self.config.model.max_length, cache_dir
        )

    @property
    def metrics(self) -> dict[str, Metric]:
        return self.registry.metric_table()

    @property
    def objective(self) -> Metric:
        return self.registry.metric(self.config.search.objective)

    @property
    def device(self) -> torch.device:
        return resolve_device(self.config.train.device)

    @property
    def pad_id(self) -> int:
        return int(self.tokenizer.pad_token_id)
