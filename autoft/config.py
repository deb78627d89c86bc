"""Study files: TOML parsed into frozen, typed objects, all checked before anything runs.

A study file has these tables (all but ``[dataset]`` optional)::

    [study]      name, seed, output_dir, storage, plugins
    [model]      name (one model, or a list of models to search), max_length, revision, trust_remote_code
    [models.<alias>]      one table per model to search: name, its own [model] settings, overrides of [space]
    [dataset]    type = "<dataset plugin>", validation_size, test_size, and the plugin's options
    [train]      fixed loop settings (autoft.training.TrainSettings)
    [search]     backend, n_trials, timeout, objective, direction, sampler, pruner, reduction_factor
    [search.<backend>]    a search backend's own settings (the backend plugin's Options)
    [space]      searchable training settings (autoft.training.Hyperparams)
    [strategies.<name>]   one table per strategy to try: its options, and overrides of [space]
    [tracking]   mlflow, tensorboard and where they write (the built-in tracking plugins)

Paths in a study file are relative to the file's folder; ``output_dir`` is
relative to the working directory.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import os
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from . import options as opts
from .budget import parse_duration
from .data import one_line_errors
from .errors import ConfigError, PluginError, one_line
from .metrics import Objective
from .options import Choice, Range, option
from .plugins import Registry, load_plugins
from .settings import Hyperparams, TrainSettings

SECTIONS = ("study", "model", "models", "dataset", "train", "search", "space", "strategies", "tracking")


@dataclass(frozen=True)
class StudySection:
    name: str = option("", "study name; defaults to the study file's name")
    seed: int = option(0, "seed for splits, sampler and every trial", ge=0, le=2**32 - 1)
    output_dir: str = option("runs", "where run folders go (relative to the working directory)")
    storage: str = option("", "Optuna storage URL; empty means sqlite in the run folder")
    plugins: list[str] = option([], "local plugin files to load (relative to the study file)")


@dataclass(frozen=True)
class ModelSection:
    name: str = option("minilm", "Hugging Face Hub id, local folder, or packaged short name (minilm)")
    max_length: int = option(128, "tokens per text after truncation", ge=8, le=8192)
    revision: str = option("", "hub revision (branch, tag or commit)")
    trust_remote_code: bool = option(False, "run model code from the hub repository (only if you trust it)")


@dataclass(frozen=True)
class DatasetSection:
    type: str = option(help="dataset plugin name")
    validation_size: float = option(0.1, "share of train held out for validation when there is none", gt=0, lt=1)
    test_size: float = option(0.1, "share of train held out for test when there is none", gt=0, lt=1)
    max_train_rows: int = option(0, "use a seeded, stratified sample of this many training rows; 0 uses all", ge=0)
    max_validation_rows: int = option(0, "the same for validation", ge=0)
    max_test_rows: int = option(0, "the same for test", ge=0)
    task: Literal["auto", "classification", "regression", "multi_label"] = option(
        "auto",
        "what the labels are: classes, numbers (regression) or lists (multi_label); auto: numbers with fractions "
        "are a regression, lists are multi-label",
    )


@dataclass(frozen=True)
class SearchSection:
    backend: str = option("optuna", "search backend plugin: optuna, ray, or a plugin's")
    n_trials: int = option(10, "trials to finish (complete or pruned), counting earlier runs", ge=1)
    timeout: float = option(0.0, "stop starting trials after this many seconds; 0 means no limit", ge=0)
    budget: str = option(
        "",
        'the search\'s time, such as "20m" or "1h30m": no trial starts that cannot reach its first evaluation '
        "in it, a running trial ends at it; empty: no budget",
    )
    objective: str = option("accuracy", "metric to optimise on the validation split")
    direction: Literal["auto", "maximize", "minimize"] = option("auto", "auto follows the metric")
    sampler: Literal["tpe", "random"] = option(
        "tpe",
        "Optuna sampler, seeded with study.seed: tpe (its first startup_trials trials a scrambled Sobol "
        "sequence, which spreads them over the space) or random",
    )
    pruner: Literal["auto", "sha", "asha", "median", "hyperband", "none"] = option(
        "auto",
        "stop poor trials early: sha (successive halving in brackets: each trial waits at a rung for the others), "
        "asha (successive halving at the rungs, each trial decided at once), median, hyperband, none, or auto "
        "(sha where each trial has a process of its own, as on the CPU; else asha)",
    )
    reduction_factor: int = option(3, "sha, asha and hyperband keep the best 1 in this many trials at each rung", ge=2)
    startup_trials: int = option(4, "trials before the sampler and the median pruner start to act", ge=0)
    isolation: Literal["auto", "process", "worker", "none"] = option(
        "auto",
        "where trials run: process (a process of its own each: memory and crashes stay with the trial), worker "
        "(one after another in a worker process, which a crash replaces: one CUDA context for all), none (in the "
        "study process), or auto (worker on a GPU, process on the CPU)",
    )
    gpus: Literal["auto", "none"] | list[int] = option("auto", "GPUs to use: auto (all), none, or indices")
    trials_per_gpu: int = option(1, "trials running at once on each GPU (small models share a GPU well)", ge=1)
    cpu_trials: Literal["auto"] | int = option(
        1,
        "trials running at once when there is no GPU, each on its share of the cores: 1, a number, or auto (2 on "
        "2 or more cores); more than 1 trains more samples a second, but which trials a seed gives then depends "
        "on timing",
        ge=1,
    )


@dataclass(frozen=True)
class TrackingSection:
    """The ``[tracking]`` table: experiment trackers the built-in tracking plugins feed (all off by default)."""

    mlflow: bool = option(False, "log each trial as an MLflow run, and the best model and report (autoft[mlflow])")
    tensorboard: bool = option(False, "write each trial's evaluations as TensorBoard events (autoft[tensorboard])")
    mlflow_tracking_uri: str = option("", "MLflow tracking URI; empty means sqlite:///<run folder>/mlflow.db")
    mlflow_experiment: str = option("", "MLflow experiment; empty means the study name")
    tensorboard_dir: str = option(
        "", "TensorBoard folder (relative to the study file); empty: <run folder>/tensorboard"
    )


#: [tracking] key -> the package it needs (an extra of autoft of the same name)
TRACKERS = {"mlflow": "mlflow", "tensorboard": "tensorboard"}


@dataclass(frozen=True)
class StrategyConfig:
    """One ``[strategies.<name>]`` table: option values and [space] overrides (each may be searched)."""

    name: str
    options: dict[str, Any]
    overrides: dict[str, Any]


@dataclass(frozen=True)
class ModelCandidate:
    """One model a study may fine-tune: its [model] settings, and overrides of [space] for its trials."""

    alias: str
    section: ModelSection
    overrides: dict[str, Any] = dataclasses.field(default_factory=dict)


@dataclass(frozen=True)
class StudyConfig:
    path: Path
    study: StudySection
    model: ModelSection
    dataset: DatasetSection
    dataset_options: Any
    train: TrainSettings
    search: SearchSection
    space: dict[str, Any]
    strategies: dict[str, StrategyConfig]
    #: every ``[search.<backend>]`` table given, parsed by that backend's Options
    backend_options: dict[str, Any]
    raw: dict
    tracking: TrackingSection = dataclasses.field(default_factory=TrackingSection)
    #: the models the search chooses among, by alias (one, the [model] table's, when it searches none)
    models: dict[str, ModelCandidate] = dataclasses.field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.study.name

    @property
    def searches_models(self) -> bool:
        """Whether the model is a searched parameter (``model``): more than one candidate."""
        return len(self.models) > 1

    @property
    def first_model(self) -> str:
        """The alias of the first candidate (the model of a study that searches none)."""
        return next(iter(self.models), "")

    def raw_of_model(self) -> dict:
        """The study's tables with ``[model]`` this config's one model (what a saved model's study.toml holds:
        its max_length is what prediction uses), without the other candidates."""
        if not self.searches_models:
            return self.raw
        raw = {k: v for k, v in self.raw.items() if k != "models"}
        return {**raw, "model": {k: v for k, v in dataclasses.asdict(self.model).items() if v != ""}}

    def for_model(self, alias: str) -> StudyConfig:
        """The study as one candidate's trials see it: ``model`` is that candidate's settings."""
        if not alias or alias not in self.models or self.models[alias].section == self.model:
            return self
        return dataclasses.replace(self, model=self.models[alias].section)

    @property
    def base_dir(self) -> Path:
        return self.path.parent

    @property
    def run_dir(self) -> Path:
        return Path(self.study.output_dir).expanduser() / self.study.name

    @property
    def storage_url(self) -> str:
        return self.study.storage or f"sqlite:///{self.run_dir / 'study.db'}"

    @property
    def maximize(self) -> bool:
        return self.search.direction == "maximize"

    @property
    def rungs(self) -> int:
        """The rungs trials evaluate at inside the first epoch: ``[train] rungs``, none without a pruner
        (nothing would act on them)."""
        return self.train.rungs if self.search.pruner != "none" else 0

    @property
    def budget_seconds(self) -> float | None:
        """``[search] budget`` in seconds, or None without one."""
        return parse_duration(self.search.budget) if self.search.budget else None

    @property
    def objective(self) -> Objective:
        """The metric the study optimises and the direction it ranks it by."""
        return Objective(self.search.objective, self.maximize)

    def options_of(self, backend: type) -> Any:
        """The ``[search.<name>]`` settings of a backend plugin (its defaults when the table is absent)."""
        return self.backend_options.get(backend.name) or backend.Options()


def read_toml(path: Path) -> dict:
    if path.is_dir():
        raise ConfigError(f"study file '{path}' is a folder; give a study file, such as studies/quickstart.toml")
    if not path.is_file():
        raise ConfigError(f"study file '{path}' does not exist")
    data = path.read_bytes()
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise ConfigError(f"{path}: UTF-16 text (as Windows PowerShell's > writes it); save the study file as UTF-8")
    try:
        return tomllib.loads(data.decode("utf-8-sig"))  # a byte-order mark (Windows editors) is not TOML's to see
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML: {exc}") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text: {exc.reason} at byte {exc.start}") from exc


def apply_overrides(
    raw: dict, overrides: list[str], path: Path, flag: str = "--set", example: str = "search.n_trials=20"
) -> dict:
    """``--set key.sub=value`` assignments (or another ``flag``'s); values are TOML (``8``, ``"lora"``,
    ``[1, 2]``), else text."""
    for item in overrides:
        key, sep, text = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ConfigError(f"{flag} {item!r}: expected key=value, such as {flag} {example}")
        try:
            value = tomllib.loads(f"v = {text}")["v"]
        except tomllib.TOMLDecodeError:
            value = text.strip()
        node = raw
        parts = key.split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"{flag} {key}: '{part}' is not a table in {path}")
        node[parts[-1]] = value
    return raw


@one_line_errors
def load_study(path: str | Path, overrides: list[str] = ()) -> tuple[StudyConfig, Registry]:
    """Read, override and check a study file; load the plugins it needs. Nothing is written."""
    path = Path(path)
    return parse_study(path, apply_overrides(read_toml(path), list(overrides), path))


@one_line_errors
def parse_study(path: Path, raw: dict, registry: Registry | None = None) -> tuple[StudyConfig, Registry]:
    """Check a study's tables (``raw``, as read from ``path``); load the plugins it names."""
    where = str(path)
    unknown = set(raw) - set(SECTIONS)
    if unknown:
        raise ConfigError(f"{where}: unknown table [{sorted(unknown)[0]}]; valid tables: {', '.join(SECTIONS)}")
    if "dataset" not in raw:
        raise ConfigError(f'{where}: missing table [dataset]; add one with type = "<dataset plugin>"')

    study = opts.build(StudySection, raw.get("study", {}), f"{where}: [study]")
    if not study.name and "name" not in raw.get("study", {}):  # an explicit "" is refused below, not renamed
        study = dataclasses.replace(study, name=path.stem)
    _check_study_name(study.name, where)
    _check_output_dir(study.output_dir, study.name, where)
    _check_plugin_files(study.plugins, path.parent, where)
    model, models = parse_models(raw, path.parent, where)
    train = opts.build(TrainSettings, raw.get("train", {}), f"{where}: [train]")
    if not re.fullmatch(r"auto|cpu|mps|cuda(:\d+)?", train.device):
        raise ConfigError(
            f"{where}: [train] device: {opts._show(train.device)} is not a device; use auto, cpu, cuda, cuda:N or mps"
        )
    plugin_files = [_relative(p, path.parent) for p in study.plugins]
    try:
        registry = registry or load_plugins(plugin_files)
    except PluginError as exc:
        raise PluginError(f"{where}: [study] plugins: {exc}") from exc
    search_raw = raw.get("search", {})
    if not isinstance(search_raw, dict):
        raise ConfigError(f"{where}: [search] must be a table")
    search_keys = {f.name for f in dataclasses.fields(SearchSection)}
    backend_tables = {k: v for k, v in search_raw.items() if k not in search_keys and isinstance(v, dict)}
    for name, table in search_raw.items():
        if name not in search_keys and not isinstance(table, dict) and name in registry.backends:
            raise ConfigError(
                f"{where}: [search] {name}: expected a table of the {name} backend's settings "
                f"([search.{name}]), got {opts._show(table)}"
            )
    search = opts.build(
        SearchSection, {k: v for k, v in search_raw.items() if k not in backend_tables}, f"{where}: [search]"
    )
    if search.budget:
        try:
            parse_duration(search.budget)
        except ValueError as exc:
            raise ConfigError(f"{where}: [search] budget: {exc}") from exc
    tracking = opts.build(TrackingSection, raw.get("tracking", {}), f"{where}: [tracking]")
    _check_tracking(tracking, where)
    _check_gpus(search.gpus, where)

    dataset, dataset_options = parse_dataset(raw["dataset"], where, registry)

    _known(registry, "backend", search.backend, where, "[search] backend")
    _check_pruner(search, where)
    backend_options = {}
    for name, table in backend_tables.items():
        backend = _known(registry, "backend", name, where, f"[search.{name}]")
        backend_options[name] = opts.build(backend.Options, table, f"{where}: [search.{name}]")

    metric = _known(registry, "metric", search.objective, where, "[search] objective")
    if search.direction == "auto":
        search = dataclasses.replace(search, direction="maximize" if metric.greater_is_better else "minimize")

    space = opts.parse(Hyperparams, raw.get("space", {}), f"{where}: [space]", searchable=True)
    _check_class_weights(space, f"{where}: [space]")
    strategies_raw = raw.get("strategies", {"full": {}})
    if not isinstance(strategies_raw, dict) or not strategies_raw:
        raise ConfigError(
            f"{where}: [strategies] needs at least one [strategies.<name>] table, such as [strategies.full]"
        )
    hp_fields = {f.name for f in dataclasses.fields(Hyperparams)}
    strategies = {}
    for name, table in strategies_raw.items():
        cls = _known(registry, "strategy", name, where, "[strategies]")
        values = opts.parse(cls.Options, table, f"{where}: [strategies.{name}]", searchable=True, extra=Hyperparams)
        own = {f.name for f in dataclasses.fields(cls.Options)}
        _check_class_weights(values, f"{where}: [strategies.{name}]")
        strategies[name] = StrategyConfig(
            name,
            {k: v for k, v in values.items() if k in own},
            {k: v for k, v in values.items() if k in hp_fields and k not in own},
        )
    config = StudyConfig(
        path=path,
        study=study,
        model=model,
        dataset=dataset,
        dataset_options=dataset_options,
        train=train,
        search=search,
        space=space,
        strategies=strategies,
        backend_options=backend_options,
        raw=raw,
        tracking=tracking,
        models=models,
    )
    _check_model_overrides(config, where)
    _check_storage(config, where)
    return config, registry


def parse_models(raw: dict, base_dir: Path, where: str) -> tuple[ModelSection, dict[str, ModelCandidate]]:
    """The [model] table and the candidates: ``[model] name`` (one name or a list), or ``[models.<alias>]``.

    Returns the first candidate's settings (``StudyConfig.model``) and every candidate by alias.
    """
    table = raw.get("model", {})
    if not isinstance(table, dict):
        raise ConfigError(f"{where}: [model] must be a table")
    names = table.get("name")
    tables = raw.get("models")
    if tables is not None and (not isinstance(tables, dict) or not tables):
        raise ConfigError(
            f"{where}: [models] needs one [models.<alias>] table per model to search, such as [models.minilm]"
        )
    if tables and "name" in table:
        raise ConfigError(
            f"{where}: [model] name and [models] both name models; list them in one place "
            "([model] name = [...] or one [models.<alias>] table each)"
        )
    if isinstance(names, list):
        if not names:
            raise ConfigError(f"{where}: [model] name: an empty list; give one model or several to search")
        bad = next((n for n in names if not isinstance(n, str)), None)
        if bad is not None:
            raise ConfigError(f"{where}: [model] name: {opts._show(bad)} is not a model name; list names as text")
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise ConfigError(f"{where}: [model] name lists '{repeated[0]}' twice; list each model once")
        tables = {n: {"name": n} for n in names}
        table = {k: v for k, v in table.items() if k != "name"}
    defaults = opts.parse(ModelSection, table, f"{where}: [model]")
    if not tables:
        model = opts.build(ModelSection, table, f"{where}: [model]")
        _check_model_name(model.name, base_dir, where)
        return model, {model.name: ModelCandidate(model.name, model)}
    model_keys = {f.name for f in dataclasses.fields(ModelSection)}
    candidates = {}
    for alias, entry in tables.items():
        key = f"[models.{alias}]"
        if not isinstance(entry, dict):
            raise ConfigError(f"{where}: {key} must be a table (name, max_length, ... and [space] overrides)")
        if not alias.strip() or not alias.isprintable() or alias != alias.strip():
            raise ConfigError(f"{where}: {key}: an alias needs printable text without spaces at the ends")
        values = opts.parse(ModelSection, entry, f"{where}: {key}", searchable=True, extra=Hyperparams)
        for name in model_keys & set(values):
            if isinstance(values[name], (Range, Choice)):
                raise ConfigError(
                    f"{where}: {key} {name} is fixed per model; to try several, add a [models.<alias>] table each"
                )
        settings = {**defaults, "name": alias, **{k: v for k, v in values.items() if k in model_keys}}
        section = opts.build(ModelSection, settings, f"{where}: {key}")
        _check_model_name(section.name, base_dir, where, key)
        _check_class_weights(values, f"{where}: {key}")
        overrides = {k: v for k, v in values.items() if k not in model_keys}
        candidates[alias] = ModelCandidate(alias, section, overrides)
    return next(iter(candidates.values())).section, candidates


def _check_model_overrides(config: StudyConfig, where: str) -> None:
    """A model's overrides of [space] are sampled as ``<alias>.<key>``: aliases apart from strategy names,
    and no key overridden by both a model and a strategy."""
    for alias, candidate in config.models.items():
        if not candidate.overrides:
            continue
        if alias in config.strategies:
            raise ConfigError(
                f"{where}: [models.{alias}] has the name of a strategy; give the model another alias "
                f'(name = "{candidate.section.name}" keeps the model)'
            )
        for name, strategy in config.strategies.items():
            both = sorted(set(candidate.overrides) & set(strategy.overrides))
            if both:
                raise ConfigError(
                    f"{where}: [models.{alias}] and [strategies.{name}] both override {both[0]}; set it in one of them"
                )


def parse_dataset(table: Any, where: str, registry: Registry) -> tuple[DatasetSection, Any]:
    """A [dataset] table: autoft's own keys, and the named plugin's options."""
    if not isinstance(table, dict):
        raise ConfigError(f"{where}: [dataset] must be a table")
    core_keys = {f.name for f in dataclasses.fields(DatasetSection)}
    if "type" not in table:
        raise ConfigError(
            f'{where}: [dataset] needs type = "<dataset plugin>"; available: {", ".join(sorted(registry.datasets))}'
        )
    dataset = opts.build(DatasetSection, {k: v for k, v in table.items() if k in core_keys}, f"{where}: [dataset]")
    plugin = _known(registry, "dataset", dataset.type, where, "[dataset] type")
    options = opts.build(plugin.Options, {k: v for k, v in table.items() if k not in core_keys}, f"{where}: [dataset]")
    return dataset, options


def _known(registry: Registry, kind: str, name: str, where: str, key: str):
    try:
        return getattr(registry, kind)(name)
    except PluginError as exc:
        raise ConfigError(f"{where}: {key}: {one_line(str(exc))}") from exc


def _relative(value: str, base_dir: Path) -> Path:
    p = Path(value).expanduser()
    return p if p.is_absolute() else base_dir / p


def _plain(value: str, where: str, key: str, what: str) -> None:
    """A name or path with no line breaks or other control characters."""
    if not value.isprintable():
        raise ConfigError(f"{where}: {key} {value!r} has a line break or control character; {what}")


def _check_study_name(name: str, where: str) -> None:
    if not name:
        raise ConfigError(f"{where}: [study] name is empty; give a name, or leave the key out to use the file's name")
    if name in (".", "..") or any(c in name for c in "/\\\0") or name.strip() != name or not name.isprintable():
        raise ConfigError(
            f"{where}: [study] name {name!r} must be a plain folder name (no slashes, spaces at the ends "
            "or control characters)"
        )
    if len(name.encode()) > 200:
        raise ConfigError(f"{where}: [study] name is {len(name.encode())} bytes long; a folder name takes at most 200")


def _check_output_dir(output_dir: str, name: str, where: str) -> None:
    """``output_dir`` is a folder, or can become one: nothing on the way to the run folder is a file."""
    if not output_dir.strip():
        raise ConfigError(f"{where}: [study] output_dir is empty; give a folder for run folders, such as 'runs'")
    _plain(output_dir, where, "[study] output_dir", "give a plain folder path, such as 'runs'")
    run_dir = Path(output_dir).expanduser() / name
    for folder in (run_dir, *run_dir.parents):
        if folder.exists() or folder.is_symlink():
            if not folder.is_dir():
                what = "the run folder" if folder == run_dir else "a folder on its way"
                if folder == Path(output_dir).expanduser():
                    what = "output_dir"
                raise ConfigError(
                    f"{where}: [study] output_dir {output_dir!r}: '{folder}' ({what}) is a file, not a folder; "
                    "set output_dir to a folder, or move the file"
                )
            if not os.access(folder, os.W_OK | os.X_OK):
                raise ConfigError(
                    f"{where}: [study] output_dir {output_dir!r}: this user cannot write in '{folder}'; "
                    "set output_dir to a folder you can write in"
                )
            return


def _check_plugin_files(plugins: tuple | list, base_dir: Path, where: str) -> None:
    seen: set[Path] = set()
    for entry in plugins:
        if not entry.strip():
            raise ConfigError(f"{where}: [study] plugins: an empty entry; list Python files, such as 'my_plugin.py'")
        _plain(entry, where, "[study] plugins entry", "list Python files, such as 'my_plugin.py'")
        path = _relative(entry, base_dir)
        if path.is_dir():
            raise ConfigError(
                f"{where}: [study] plugins: '{path}' is a folder; list Python files (.py), such as 'my_plugin.py'"
            )
        if path.is_file() and path.suffix != ".py":
            raise ConfigError(f"{where}: [study] plugins: '{path}' is not a .py file; list Python files (.py)")
        key = path.resolve()
        if key in seen:
            raise ConfigError(f"{where}: [study] plugins lists '{entry}' twice; list each file once")
        seen.add(key)


def _check_model_name(name: str, base_dir: Path, where: str, table: str = "[model]") -> None:
    what = "give a local model folder, a Hugging Face Hub id (such as 'roberta-base') or 'minilm'"
    if not name.strip():
        raise ConfigError(f"{where}: {table} name is empty; {what}")
    _plain(name, where, f"{table} name", what)
    from .models import PACKAGED

    candidate = _relative(name, base_dir)
    if name.lower() not in PACKAGED and candidate.exists() and not candidate.is_dir():
        raise ConfigError(f"{where}: {table} name: '{candidate}' is a file, not a model folder; {what}")


def _check_class_weights(values: dict, where: str) -> None:
    """A class_weights table (fixed or among choices) weighs at least one label, each above 0."""
    value = values.get("class_weights")
    for weights in value.values if isinstance(value, Choice) else [value]:
        if not isinstance(weights, dict):
            continue
        if not weights:
            raise ConfigError(
                f"{where} class_weights: an empty table; give a weight per label ({{ pos = 2.0 }}), "
                "'none' or 'balanced'"
            )
        for label, weight in weights.items():
            if not weight > 0:
                raise ConfigError(f"{where} class_weights.{label}: {weight} is out of range; a weight must be above 0")


def _check_pruner(search: SearchSection, where: str) -> None:
    """``pruner = "sha"`` stops a waiting trial's process: the optuna backend, a process per trial."""
    if search.pruner != "sha":
        return
    if search.backend != "optuna":
        raise ConfigError(
            f'{where}: [search] pruner: "sha" needs the optuna backend (its trials wait at each rung); '
            f'with backend {opts._show(search.backend)} use "asha", "median", "hyperband" or "none"'
        )
    if search.isolation in ("worker", "none"):
        raise ConfigError(
            f'{where}: [search] pruner: "sha" stops a waiting trial\'s process, and isolation '
            f'{opts._show(search.isolation)} runs trials without one each; set isolation = "process" (or "auto" '
            'without a GPU), or pruner = "asha"'
        )


def _check_gpus(gpus: Any, where: str) -> None:
    if isinstance(gpus, str):
        return
    if not gpus:
        raise ConfigError(f"{where}: [search] gpus: an empty list; give GPU indices (such as [0, 1]), 'auto' or 'none'")
    negative = [g for g in gpus if g < 0]
    if negative:
        raise ConfigError(f"{where}: [search] gpus: {negative[0]} is not a GPU index; indices start at 0")
    repeated = sorted({g for g in gpus if list(gpus).count(g) > 1})
    if repeated:
        raise ConfigError(f"{where}: [search] gpus lists GPU {repeated[0]} twice; list each GPU once")


def _check_tracking(tracking: TrackingSection, where: str) -> None:
    """A tracker switched on needs its package: one line naming the key and the extra to install."""
    for key, package in TRACKERS.items():
        if getattr(tracking, key) and importlib.util.find_spec(package) is None:
            raise ConfigError(
                f"{where}: [tracking] {key} = true needs the {package} package, which is not installed; "
                f"pip install 'autoft[{key}]'"
            )


def _check_storage(config: StudyConfig, where: str) -> None:
    url = config.study.storage
    if not url:
        return
    _plain(url, where, "[study] storage", "give a storage URL, such as sqlite:///path.db")
    schemes = ("sqlite://", "postgresql", "mysql", "oracle", "mssql", "journal:")
    if url.rstrip("/") in ("sqlite:", "sqlite:/") or url in ("sqlite:///:memory:", "sqlite://:memory:"):
        raise ConfigError(
            f"{where}: [study] storage {url!r} is an in-memory database: the study would be lost when it ends; "
            "use sqlite:///path.db, or leave it empty for study.db in the run folder"
        )
    if not url.startswith(schemes):
        raise ConfigError(
            f"{where}: [study] storage {url!r} is not a storage URL; use sqlite:///path.db, "
            "postgresql://user@host/db, mysql://user@host/db, or leave it empty"
        )


def describe(value: Any) -> str:
    if isinstance(value, (Range, Choice)):
        return value.describe()
    return str(value)
