"""The search space of a study, and sampling one trial's configuration from it.

Sampling goes through Optuna's define-by-run trial API (``suggest_*``), which
both backends offer. Parameter names: ``strategy`` (when there is more than one),
the ``[space]`` keys (``learning_rate``, ...), and ``<strategy>.<key>`` for a
strategy's own options and its overrides of ``[space]``, which are sampled only
in trials of that strategy.
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
    """Everything a trial trains with: the strategy, its options and the training hyperparameters."""

    strategy: str
    options: Any
    hp: Hyperparams

    def to_dict(self) -> dict:
        return {
            "strategy": self.strategy,
            "options": dataclasses.asdict(self.options),
            "hyperparams": dataclasses.asdict(self.hp),
        }

    @classmethod
    def from_dict(cls, data: dict, registry: Registry) -> TrialConfig:
        options_cls = registry.strategy(data["strategy"]).Options
        fields = {f.name for f in dataclasses.fields(options_cls)}
        options = options_cls(**{k: _untuple(v) for k, v in data["options"].items() if k in fields})
        return cls(data["strategy"], options, Hyperparams(**data["hyperparams"]))


def _untuple(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value


class SearchSpace:
    def __init__(self, config: StudyConfig, registry: Registry):
        self.config = config
        self.registry = registry

    def suggest(self, trial: Any) -> TrialConfig:
        """Sample a configuration with an Optuna-style ``trial``."""
        names = list(self.config.strategies)
        strategy = trial.suggest_categorical("strategy", names) if len(names) > 1 else names[0]
        chosen = self.config.strategies[strategy]
        hp_values = {}
        for key, value in self.config.space.items():
            if key not in chosen.overrides:
                hp_values[key] = _sample(trial, key, value)
        for key, value in chosen.overrides.items():
            hp_values[key] = _sample(trial, f"{strategy}.{key}", value)
        option_values = {k: _sample(trial, f"{strategy}.{k}", v) for k, v in chosen.options.items()}
        options = self.registry.strategy(strategy).Options(**option_values)
        return TrialConfig(strategy, options, Hyperparams(**hp_values))

    def most_reported_epochs(self) -> int:
        """The most epochs any trial of this space reports to the search (each strategy at its largest settings)."""
        most = 1
        for name, chosen in self.config.strategies.items():
            hp_values = {k: _largest(v) for k, v in {**self.config.space, **chosen.overrides}.items()}
            option_values = {k: _largest(v) for k, v in chosen.options.items()}
            strategy = self.registry.strategy(name)()
            most = max(most, strategy.reported_epochs(strategy.Options(**option_values), Hyperparams(**hp_values)))
        return most

    def rows(self) -> list[tuple[str, str]]:
        """(parameter, values) for display: what is searched and what is fixed."""
        out = []
        if len(self.config.strategies) > 1:
            out.append(("strategy", " | ".join(self.config.strategies)))
        for key, value in self.config.space.items():
            out.append((key, describe(value)))
        for name, strategy in self.config.strategies.items():
            for key, value in {**strategy.overrides, **strategy.options}.items():
                out.append((f"{name}.{key}", describe(value)))
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
