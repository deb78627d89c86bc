"""What can be checked before the first trial beyond the study file: its settings against the model and the data.

Each check fails with one line naming the study file, the key and what would be valid,
before anything is written: the model's limits (positions, depth, what each strategy
needs of it, tried on a weightless copy), the labels class weights name, the devices
and GPUs asked for, and a tokenizer that does not fit the texts.
"""

from __future__ import annotations

import copy
import dataclasses
import itertools
from typing import TYPE_CHECKING, Any

import numpy as np

from .errors import ConfigError, ModelError, PluginError, type_and_first_line
from .gpus import gpu_count
from .metrics import compute
from .options import Choice, Range

if TYPE_CHECKING:
    from .workbench import Workbench

#: model types whose position ids start after the padding index (usable positions = max_position_embeddings - pad - 1)
OFFSET_POSITIONS = {"roberta", "xlm-roberta", "camembert", "longformer", "mpnet", "data2vec-text", "xmod", "ernie_m"}
#: share of unknown tokens in a sample of training texts above which the tokenizer does not fit the data
MAX_UNKNOWN_SHARE = 0.5


def check_study(bench: Workbench) -> None:
    """Every check (those about a model for each model the study may fine-tune); raises an AutoftError (one
    line) on the first problem."""
    check_class_weights(bench)
    check_devices(bench)
    check_metrics(bench)
    for candidate in bench.every_model():
        config = model_config(candidate)
        check_positions(candidate, config)
        check_tokenizer_fits(candidate)
        check_strategies(candidate, config)


def model_config(bench: Workbench) -> Any:
    from transformers import AutoConfig

    ref = bench.ref
    return AutoConfig.from_pretrained(ref.path, revision=ref.revision, trust_remote_code=ref.trust_remote_code)


def position_limit(config: Any) -> int | None:
    """The most tokens the model can take, from its position embeddings (None: no fixed limit)."""
    limit = getattr(config, "max_position_embeddings", None)
    if not isinstance(limit, int) or getattr(config, "position_embedding_type", "absolute") != "absolute":
        return None
    if config.model_type in OFFSET_POSITIONS:
        limit -= (getattr(config, "pad_token_id", None) or 0) + 1
    return limit


def check_positions(bench: Workbench, config: Any) -> None:
    limit = position_limit(config)
    asked = bench.config.model.max_length
    if limit is not None and asked > limit:
        raise ConfigError(
            f"{bench.config.path}: [model] max_length {asked} is more than model '{bench.ref.name}' can take "
            f"({limit} positions); use at most {limit}"
        )


def _values(value: Any) -> list[Any]:
    """Every value a fixed setting, a choice or a range can take at its ends."""
    if isinstance(value, Choice):
        return list(value.values)
    if isinstance(value, Range):
        return [value.low, value.high]
    return [value]


def _space_tables(bench: Workbench) -> list[tuple[str, dict]]:
    config = bench.config
    strategies = [(f"[strategies.{n}]", s.overrides) for n, s in config.strategies.items()]
    models = [(f"[models.{a}]", m.overrides) for a, m in config.models.items() if m.overrides]
    return [("[space]", config.space), *strategies, *models]


def check_class_weights(bench: Workbench) -> None:
    labels = list(bench.label_names)
    for table, values in _space_tables(bench):
        if bench.regression:
            for key, off in (("class_weights", "none"), ("label_smoothing", 0.0)):
                if any(v != off for v in _values(values.get(key, off))):
                    raise ConfigError(
                        f"{bench.config.path}: {table} {key} applies to classes, and this study predicts a number "
                        f"(regression); drop {key}"
                    )
            continue
        if bench.task == "multi_label" and any(v != 0.0 for v in _values(values.get("label_smoothing", 0.0))):
            raise ConfigError(
                f"{bench.config.path}: {table} label_smoothing applies to one class per text, and this study "
                "is multi-label; drop label_smoothing"
            )
        for weights in _values(values.get("class_weights", "none")):
            if not isinstance(weights, dict):
                continue
            unknown = [k for k in weights if k not in labels]
            if unknown:
                raise ConfigError(
                    f"{bench.config.path}: {table} class_weights names {', '.join(map(repr, unknown))}, "
                    f"not a label of the data; labels: {', '.join(labels)}"
                )


def check_metrics(bench: Workbench) -> None:
    """Each metric a trial computes, given the validation labels predicted right: one that fails or gives no
    number there fails every trial (the study stopped after three of them)."""
    labels = np.asarray(bench.data.validation.labels)
    if bench.regression:
        proba = labels.astype(np.float32).reshape(-1, 1)
    elif bench.task == "multi_label":
        proba = labels.astype(np.float32) * 0.8 + 0.1
    else:
        proba = np.full(
            (len(labels), len(bench.label_names)), 0.1 / max(len(bench.label_names) - 1, 1), dtype=np.float32
        )
        proba[np.arange(len(labels)), labels] = 0.9
    try:
        compute(bench.metrics, labels, proba)
    except PluginError as exc:
        raise PluginError(f"{bench.config.path}: {exc} (on the validation labels predicted right)") from exc


def check_devices(bench: Workbench) -> None:
    config = bench.config
    count = gpu_count()
    device = config.train.device
    if device.startswith("cuda"):
        index = int(device.partition(":")[2] or 0)
        if index >= count:
            seen = f"GPUs 0-{count - 1}" if count else "no CUDA GPU"
            raise ConfigError(f"{config.path}: [train] device {device!r}: torch sees {seen}; use auto or cpu")
    gpus = config.search.gpus
    if isinstance(gpus, (list, tuple)) and device != "cpu":
        missing = [g for g in gpus if not 0 <= g < count]
        if missing:
            seen = f"GPUs 0-{count - 1}" if count else "no CUDA GPU"
            raise ConfigError(
                f"{config.path}: [search] gpus names GPU(s) {', '.join(map(str, missing))}, but torch sees {seen}; "
                'use "auto", "none" or indices that exist'
            )


def check_tokenizer_fits(bench: Workbench, sample: int = 200) -> None:
    """A tokenizer that turns most words of the training texts into its unknown token is the wrong one."""
    tokenizer = bench.tokenizer
    unk = tokenizer.unk_token_id
    if unk is None:
        return
    texts = [t for t in bench.data.train.texts[:sample] if t.strip()]
    ids = [i for row in tokenizer(texts, add_special_tokens=False, truncation=True)["input_ids"] for i in row]
    if ids and sum(i == unk for i in ids) / len(ids) > MAX_UNKNOWN_SHARE:
        share = sum(i == unk for i in ids) / len(ids)
        raise ModelError(
            f"the tokenizer of model '{bench.ref.name}' turns {share:.0%} of the training texts' tokens into its "
            f"unknown token {tokenizer.unk_token!r}; is it the model's own tokenizer (tokenizer files in the folder)?"
        )


def _option_sets(options: dict[str, Any]):
    """The strategy's options with each searched value at its ends (every choice), one key varied at a time."""
    base = {k: _values(v)[0] for k, v in options.items()}
    yield base, None
    for key, value in options.items():
        for candidate in _values(value)[1:]:
            yield {**base, key: candidate}, key


def check_strategies(bench: Workbench, config: Any) -> None:
    """Prepare every strategy, at the ends of its options, on a weightless (meta-device) copy of the model."""
    import torch
    from transformers import AutoModelForSequenceClassification

    from .settings import Hyperparams

    config = copy.deepcopy(config)
    config.num_labels = len(bench.label_names)
    with torch.device("meta"):
        skeleton = AutoModelForSequenceClassification.from_config(config, trust_remote_code=bench.ref.trust_remote_code)
    for name, chosen in bench.config.strategies.items():
        cls = bench.registry.strategy(name)
        fields = {f.name for f in dataclasses.fields(cls.Options)}
        for values, key in itertools.islice(_option_sets(chosen.options), 64):
            options = cls.Options(**{k: v for k, v in values.items() if k in fields})
            strategy = cls()
            what = f" {key} = {values[key]!r}" if key else ""
            try:
                model = strategy.prepare(copy.deepcopy(skeleton), options)
                built = isinstance(model, torch.nn.Module)
                problem = _plan_problem(model, strategy.phases(model, options, Hyperparams()) if built else None)
            except Exception as exc:
                raise ConfigError(
                    f"{bench.config.path}: [strategies.{name}]{what} does not fit model '{bench.ref.name}': "
                    f"{type_and_first_line(exc)}"
                ) from exc
            if problem:
                raise ConfigError(
                    f"{bench.config.path}: [strategies.{name}]{what} on model '{bench.ref.name}': {problem}"
                )


def _plan_problem(model: Any, phases: Any) -> str | None:
    """What a strategy's prepared model and phases would fail every trial on (an optimizer with nothing to
    train, or a trial with no training at all), or None."""
    import torch

    from .strategies import Phase

    if not isinstance(model, torch.nn.Module):
        return f"the strategy's prepare() returned {type(model).__name__}, not the model to train"
    if not isinstance(phases, list) or not phases or not all(isinstance(p, Phase) for p in phases):
        given = f"an empty {type(phases).__name__}" if isinstance(phases, list) and not phases else repr(phases)[:60]
        return f"the strategy's phases() gave {given}, not a list of autoft.Phase"
    names = {n for n, _ in model.named_parameters()}
    for phase in phases:
        if not phase.params:
            return f"phase '{phase.name}' trains no parameter (did prepare() freeze them all?)"
        unknown = [p for p in phase.params if p not in names]
        if unknown:
            return f"phase '{phase.name}' trains {unknown[0]!r}, which the model does not have"
    return None
