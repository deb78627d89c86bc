"""What a study loads once and every trial shares: the checked data, its tokens, the base model.

The study process builds a :class:`Workbench` from the study file (data,
tokenizer, tokens). A trial worker process rebuilds a lighter one from a
:class:`WorkbenchSpec`: the study's tables, the token cache (memory-mapped)
and the model reference; it loads the base model once and forks each trial.
A study that searches the model has one workbench per candidate
(:meth:`Workbench.for_model`): the same data, its own tokenizer, tokens and base
model, loaded when a trial first needs it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .config import DatasetSection, StudyConfig, parse_study
from .data import LoadContext, PreparedData, RawDataset, prepare
from .errors import AutoftError, ConfigError, DataError, type_and_first_line
from .metrics import Metric, for_task
from .models import BaseModel, ModelRef, check_model, load_tokenizer, resolve
from .plugins import Registry

if TYPE_CHECKING:
    import torch

    from .features import Encoded


def load_data(config: StudyConfig, registry: Registry) -> PreparedData:
    """Load the study's dataset through its plugin and check it."""
    return load_dataset(
        config.dataset, config.dataset_options, registry, config.base_dir, config.study.seed, str(config.path)
    )


def load_dataset(
    section: DatasetSection,
    options: Any,
    registry: Registry,
    base_dir: Path,
    seed: int,
    where: str,
    *,
    whole: bool = False,
) -> PreparedData:
    """Load a [dataset] table's data through its plugin, split and check it.

    ``whole`` (``autoft evaluate --data``): data that comes as one table, with no splits of its own, is
    every split, every row of it, rather than carved into train, validation and test.
    """
    plugin = registry.dataset(section.type)()
    where = f"{where}: [dataset] ({section.type})"
    try:
        raw = plugin.load(options, LoadContext(base_dir=base_dir, seed=seed))
    except AutoftError:
        raise
    except (Exception, SystemExit) as exc:  # noqa: BLE001 -- a plugin's failure, any kind: one line naming it
        raise DataError(f"{where}: {type_and_first_line(exc)}") from exc
    if not isinstance(raw, RawDataset):
        raise DataError(
            f"{where}: the plugin's load() gave {type(raw).__name__}, not an autoft.RawDataset; "
            "return RawDataset({'train': Split(texts, labels)})"
        )
    whole = whole and set(raw.splits) == {"train"}
    if whole:
        table = raw.splits["train"]
        raw = dataclasses.replace(raw, splits={"train": table, "validation": table, "test": table})
    return prepare(
        raw,
        whole=whole,
        seed=seed,
        validation_size=section.validation_size,
        test_size=section.test_size,
        where=where,
        max_rows={s: getattr(section, f"max_{s}_rows") for s in ("train", "validation", "test")},
        task=section.task,
    )


#: the objective of a study whose file names none, per task
DEFAULT_OBJECTIVES = {"classification": "accuracy", "regression": "rmse", "multi_label": "f1_micro"}


def fit_task(config: StudyConfig, registry: Registry, data: PreparedData) -> StudyConfig:
    """The study as it applies to its data's task: an objective of that task.

    A study file without ``[search] objective`` gets its task's default (written into the
    resolved study, so workers and the saved ``study.toml`` agree); one naming a metric of the
    other task is an error naming the metrics that would do.
    """
    metrics = registry.metric_table()
    search = config.raw.get("search", {})
    default = DEFAULT_OBJECTIVES[data.task]
    if config.search.objective == default or (
        "objective" in search and data.task in metrics[config.search.objective].tasks
    ):
        return config
    if "objective" in search:
        valid = ", ".join(name for name, m in metrics.items() if data.task in m.tasks)
        what = {"regression": "a number (regression)", "multi_label": "sets of labels (multi-label)"}.get(
            data.task, "classes"
        )
        raise ConfigError(
            f"{config.path}: [search] objective '{config.search.objective}' does not score this study's task: "
            f"it predicts {what}; use one of {valid}"
        )
    raw = {**config.raw, "search": {**search, "objective": default}}
    return parse_study(config.path, raw, registry)[0]


def model_ref(config: StudyConfig) -> ModelRef:
    return resolve(
        config.model.name,
        config.base_dir,
        revision=config.model.revision or None,
        trust_remote_code=config.model.trust_remote_code,
    )


@dataclass
class Workbench:
    """Everything a trial needs, loaded once per study (or once per trial worker)."""

    config: StudyConfig
    registry: Registry
    label_names: tuple[str, ...]
    ref: ModelRef
    pad_id: int | None  # None until the tokenizer is loaded (:meth:`add_tokenizer`)
    data: PreparedData | None = None
    tokenizer: Any = None
    encoded: dict[str, Encoded] | None = None
    cache: Path | None = None
    tokens_cached: bool = False
    deadline: float | None = None  # the budget's end on the wall clock (time.time()): trials end there
    task: str = "classification"  # or regression, multi_label: what the data's labels are
    alias: str = ""  # the model's alias among the study's candidates (``StudyConfig.models``)
    _base: BaseModel | None = field(default=None, repr=False)
    _siblings: dict[str, Workbench] = field(default_factory=dict, repr=False)

    @classmethod
    def load(cls, config: StudyConfig, registry: Registry) -> Workbench:
        """Load and check the data and the tokenizer. Writes nothing."""
        bench = cls.with_data(config, registry)
        bench.add_tokenizer()
        return bench

    @classmethod
    def with_data(cls, config: StudyConfig, registry: Registry) -> Workbench:
        """Load and check the data, and find the model: enough for trial workers to start loading it.

        The tokenizer comes next (:meth:`add_tokenizer`). Writes nothing.
        """
        data = load_data(config, registry)
        config = fit_task(config, registry, data)
        return cls(
            config, registry, data.label_names, model_ref(config), None, data, task=data.task, alias=config.first_model
        )

    def for_model(self, alias: str) -> Workbench:
        """The workbench of one candidate model (``alias``; "" or the first: this one), made on first need.

        It shares the data; its tokenizer, tokens and base model are its own.
        """
        if not alias or alias == self.alias or not self.config.searches_models:
            return self
        if alias not in self.config.models:
            raise ConfigError(f"{self.config.path}: no model '{alias}' in this study; its models: "
                              + ", ".join(self.config.models))  # fmt: skip
        if alias not in self._siblings:
            config = self.config.for_model(alias)
            self._siblings[alias] = Workbench(
                config, self.registry, self.label_names, model_ref(config), None, self.data, task=self.task, alias=alias
            )
        sibling = self._siblings[alias]
        sibling.deadline = self.deadline
        return sibling

    def every_model(self) -> list[Workbench]:
        """This workbench and every other candidate's, in the study's order."""
        return [self.for_model(alias) for alias in self.config.models] or [self]

    def add_tokenizer(self) -> None:
        """Load each model's tokenizer (its padding id with it) and check the model's files."""
        for bench in self.every_model():
            tokenizer = load_tokenizer(bench.ref)
            check_model(bench.ref)
            bench.tokenizer, bench.pad_id = tokenizer, int(tokenizer.pad_token_id)

    def tokenize(self, cache_dir: Path | None) -> None:
        """Each model's tokens (models that share a tokenizer and max_length share one cache)."""
        from .features import encode_splits

        for bench in self.every_model():
            bench.encoded, bench.cache, bench.tokens_cached = encode_splits(
                bench.tokenizer, self.data, bench.config.model.max_length, cache_dir
            )

    def use_cache(self, folder: Path) -> None:
        """Take the tokens from a cache folder another process wrote (memory-mapped, pages shared)."""
        from .features import load_encoded

        self.encoded, self.cache, self.tokens_cached = load_encoded(folder), folder, True

    @property
    def base(self) -> BaseModel:
        """The pretrained model, loaded on first use."""
        if self._base is None:
            self._base = BaseModel(self.ref, self.label_names, self.task)
        return self._base

    @property
    def regression(self) -> bool:
        """Whether the study predicts a number (one output, named by the one label name) rather than a class."""
        return self.task == "regression"

    @property
    def calibrates(self) -> bool:
        """Whether the best model gets a temperature (``[train] calibrate``; classifiers only)."""
        return self.config.train.calibrate and self.task == "classification"

    @property
    def scores_validation(self) -> bool:
        """Whether the best model's validation probabilities are needed: to calibrate, or to tune the
        multi-label decision thresholds."""
        return self.calibrates or self.task == "multi_label"

    @property
    def metrics(self) -> dict[str, Metric]:
        """The metrics of the study's task (every one is computed at every evaluation)."""
        return for_task(self.registry.metric_table(), self.task)

    @property
    def device(self) -> torch.device:
        from .training import resolve_device

        return resolve_device(self.config.train.device)

    def spec(self, portable: bool = False) -> WorkbenchSpec:
        """What a trial worker needs to rebuild this workbench.

        A portable spec leaves out the token cache's path; the tokens travel with it instead
        (through Ray's object store, to machines that do not share this one's disk). A spec made
        before tokenizing has no cache either: its workers are handed the cache once it is written (and
        the padding id, when the spec was made before the tokenizer was loaded).
        """
        cache = None if portable else self.cache
        others = {
            bench.alias: ModelSpec(bench.ref, bench.pad_id, None if portable else bench.cache)
            for bench in self.every_model()
            if bench is not self
        }
        return WorkbenchSpec(
            self.config.path,
            self.config.raw,
            self.label_names,
            self.ref,
            self.pad_id,
            cache,
            self.deadline,
            self.task,
            others,
        )

    def model_tokens(self) -> dict[str, dict[str, Encoded]]:
        """Every other candidate's tokens, by alias (what a portable spec's workers need with ``encoded``)."""
        return {bench.alias: bench.encoded for bench in self.every_model() if bench is not self}


@dataclass(frozen=True)
class ModelSpec:
    """One more candidate model for a worker: where it is, its padding id and its token cache."""

    ref: ModelRef
    pad_id: int | None
    cache: Path | None


@dataclass(frozen=True)
class WorkbenchSpec:
    """A picklable recipe for a workbench in another process."""

    path: Path
    raw: dict
    label_names: tuple[str, ...]
    ref: ModelRef
    pad_id: int | None
    cache: Path | None
    deadline: float | None = None
    task: str = "classification"
    others: dict[str, ModelSpec] = field(default_factory=dict)  # the other candidate models, by alias

    def build(
        self,
        tokens: dict[str, Encoded] | None = None,
        model_tokens: dict[str, dict[str, Encoded]] | None = None,
        load: str = "",
    ) -> Workbench:
        """The workbench with a base model loaded (``load``: that candidate's; "" the first's), and ``tokens``
        (``model_tokens`` for the other candidates) or the caches' tokens.

        Without either, ``encoded`` stays None until :meth:`Workbench.use_cache`.
        """
        config, registry = parse_study(self.path, self.raw)
        bench = Workbench(
            config,
            registry,
            self.label_names,
            self.ref,
            self.pad_id,
            encoded=tokens,
            deadline=self.deadline,
            task=self.task,
            alias=config.first_model,
        )
        if tokens is None and self.cache is not None:
            bench.use_cache(self.cache)
        for alias, other in self.others.items():
            sibling = bench.for_model(alias)
            sibling.ref, sibling.pad_id = other.ref, other.pad_id
            if model_tokens and alias in model_tokens:
                sibling.encoded = model_tokens[alias]
            elif other.cache is not None:
                sibling.use_cache(other.cache)
        bench.for_model(load).base  # noqa: B018 - load the model once, before trials fork
        return bench
