"""The search space of a study, and sampling one trial's configuration from it.

Sampling goes through Optuna's define-by-run trial API (``suggest_*``), which
both backends offer. Parameter names: ``model`` and ``strategy`` (when there is
more than one of each), the ``[space]`` keys (``learning_rate``, ...),
``<strategy>.<key>`` for a strategy's own options and its overrides of
``[space]``, and ``<model alias>.<key>`` for a model's overrides of ``[space]``;
each is sampled only in trials of that strategy or model.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from .config import StudyConfig, describe
from .options import Choice, Range, is_searched
from .plugins import Registry
from .settings import Hyperparams


@dataclass(frozen=True)
class TrialConfig:
    """Everything a trial trains with: the model, the strategy, its options and the training hyperparameters."""

    strategy: str
    options: Any
    hp: Hyperparams
    model: str = ""  # the model's alias in the study (``StudyConfig.models``); "" is the study's only model

    def to_dict(self) -> dict:
        out = {
            "strategy": self.strategy,
            "options": dataclasses.asdict(self.options),
            "hyperparams": dataclasses.asdict(self.hp),
        }
        return {**out, "model": self.model} if self.model else out

    @classmethod
    def from_dict(cls, data: dict, registry: Registry) -> TrialConfig:
        options_cls = registry.strategy(data["strategy"]).Options
        fields = {f.name for f in dataclasses.fields(options_cls)}
        options = options_cls(**{k: _untuple(v) for k, v in data["options"].items() if k in fields})
        return cls(data["strategy"], options, Hyperparams(**data["hyperparams"]), data.get("model", ""))


def _untuple(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value


class SearchSpace:
    def __init__(self, config: StudyConfig, registry: Registry):
        self.config = config
        self.registry = registry

    def suggest(self, trial: Any) -> TrialConfig:
        """Sample a configuration with an Optuna-style ``trial``."""
        model = ""
        model_overrides: dict[str, Any] = {}
        if self.config.searches_models:
            model = trial.suggest_categorical("model", list(self.config.models))
            model_overrides = self.config.models[model].overrides
        names = list(self.config.strategies)
        strategy = trial.suggest_categorical("strategy", names) if len(names) > 1 else names[0]
        chosen = self.config.strategies[strategy]
        hp_values = {}
        for key, value in self.config.space.items():
            if key not in chosen.overrides and key not in model_overrides:
                hp_values[key] = _sample(trial, key, value)
        for key, value in model_overrides.items():
            hp_values[key] = _sample(trial, f"{model}.{key}", value)
        for key, value in chosen.overrides.items():
            hp_values[key] = _sample(trial, f"{strategy}.{key}", value)
        option_values = {k: _sample(trial, f"{strategy}.{k}", v) for k, v in chosen.options.items()}
        options = self.registry.strategy(strategy).Options(**option_values)
        return TrialConfig(strategy, options, Hyperparams(**hp_values), model)

    def most_reported_epochs(self) -> int:
        """The most epochs any trial of this space reports to the search (each strategy at its largest settings)."""
        most = 1
        for model in self.config.models.values() or [None]:
            overrides = model.overrides if model is not None else {}
            for name, chosen in self.config.strategies.items():
                values = {**self.config.space, **overrides, **chosen.overrides}
                hp_values = {k: _largest(v) for k, v in values.items()}
                option_values = {k: _largest(v) for k, v in chosen.options.items()}
                strategy = self.registry.strategy(name)()
                options = strategy.Options(**option_values)
                most = max(most, strategy.reported_epochs(options, Hyperparams(**hp_values)))
        return most

    def rows(self) -> list[tuple[str, str]]:
        """(parameter, values) for display: what is searched and what is fixed."""
        out = []
        if self.config.searches_models:
            out.append(("model", " | ".join(self.config.models)))
        if len(self.config.strategies) > 1:
            out.append(("strategy", " | ".join(self.config.strategies)))
        for key, value in self.config.space.items():
            out.append((key, describe(value)))
        for name, strategy in self.config.strategies.items():
            for key, value in {**strategy.overrides, **strategy.options}.items():
                out.append((f"{name}.{key}", describe(value)))
        for alias, model in self.config.models.items():
            for key, value in model.overrides.items():
                out.append((f"{alias}.{key}", describe(value)))
        return out


def _largest(value: Any, pick=max) -> Any:
    """A searched value at its largest (``pick=min``: smallest); non-numeric choices give their first."""
    if isinstance(value, Range):
        end = value.high if pick is max else value.low
        return int(end) if value.integer else end
    if isinstance(value, Choice):
        numbers = [v for v in value.values if isinstance(v, (int, float)) and not isinstance(v, bool)]
        return pick(numbers) if len(numbers) == len(value.values) else value.values[0]
    return value


def _sample(trial: Any, name: str, value: Any) -> Any:
    if is_searched(value):
        return value.suggest(trial, name)
    return value
