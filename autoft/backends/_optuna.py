"""The Optuna backend: an ask-and-tell loop over the study storage (SQLite by default)."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import optuna
from optuna.trial import TrialState

from ._base import Backend

if TYPE_CHECKING:
    from ..study import Session


def make_sampler(sampler: str, seed: int, startup_trials: int) -> optuna.samplers.BaseSampler:
    if sampler == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    return optuna.samplers.TPESampler(seed=seed, n_startup_trials=startup_trials, multivariate=True, group=True)


def make_pruner(pruner: str, startup_trials: int) -> optuna.pruners.BasePruner:
    if pruner == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=startup_trials, n_warmup_steps=0)
    if pruner == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=1, reduction_factor=3)
    return optuna.pruners.NopPruner()


class OptunaBackend(Backend):
    name = "optuna"

    def optimize(self, session: Session) -> None:
        study = session.study
        while not session.should_stop():
            trial = study.ask()
            config = session.space.suggest(trial)
            session.trial_started(trial, config)
            bar = session.display.trial(trial.number, session.summary(config))

            def report(index: int, epoch: float, metrics: dict[str, float], _trial=trial) -> bool:
                value = metrics[session.objective.name]
                if not math.isfinite(value):
                    return False
                _trial.report(value, index)
                return _trial.should_prune()

            bar.on_eval = report
            outcome = session.run(trial.number, config, bar)
            for key, value in outcome.attrs().items():
                trial.set_user_attr(key, value)
            if outcome.state == "complete" and outcome.value is not None and math.isfinite(outcome.value):
                study.tell(trial, outcome.value)
            elif outcome.state == "pruned":
                study.tell(trial, state=TrialState.PRUNED)
            else:
                if outcome.state == "complete":
                    trial.set_user_attr("reason", "objective is not a finite number")
                study.tell(trial, state=TrialState.FAIL)
            bar.close(outcome.state)
            session.trial_ended(trial.number, outcome)
