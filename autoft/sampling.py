"""The ``tpe`` sampler: Optuna's TPE, whose first trials spread over the space instead of falling at random.

TPE models the space from finished trials; until ``startup_trials`` have finished it
samples each trial independently at random, and a handful of random draws can all
miss the good region (eight learning rates of which seven fall in the lowest half of
the range: docs/performance.md). Bayesian optimisation tools start from a
space-filling design instead (SMAC and BoTorch a Sobol sequence): so does this sampler.
While fewer than ``startup_trials`` trials have finished, it samples from a scrambled,
seeded Sobol sequence (Optuna's ``QMCSampler``), whose first 2**k points fall one in
each 1/2**k of every parameter's range; then TPE takes over. Under synchronous
successive halving (``pruner = "sha"``) every trial of a first bracket starts before
any finishes, so the whole bracket is space-filling. The first trial of a study is
drawn at random (QMCSampler learns the space from it).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import optuna
from optuna.distributions import BaseDistribution
from optuna.samplers import BaseSampler, QMCSampler, RandomSampler, TPESampler
from optuna.trial import FrozenTrial, TrialState

_FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)


class SpaceFillingTPE(BaseSampler):
    """TPE after ``startup`` finished trials; a scrambled Sobol sequence before (both seeded with ``seed``)."""

    def __init__(self, seed: int, startup: int):
        with warnings.catch_warnings():  # QMCSampler, multivariate and group are marked experimental: wanted
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            self._qmc = QMCSampler(
                qmc_type="sobol",
                scramble=True,
                seed=seed,
                independent_sampler=RandomSampler(seed=seed),
                warn_independent_sampling=False,  # a strategy's own options: drawn at random until TPE
            )
            self._tpe = TPESampler(seed=seed, n_startup_trials=startup, multivariate=True, group=True)
        self._startup = startup
        self._chosen: dict[int, BaseSampler] = {}  # trial id -> the sampler drawing its parameters

    def _sampler(self, study: optuna.Study, trial: FrozenTrial) -> BaseSampler:
        chosen = self._chosen.get(trial._trial_id)
        if chosen is None:
            finished = len(study.get_trials(deepcopy=False, states=_FINISHED))
            chosen = self._qmc if finished < self._startup else self._tpe
            self._chosen[trial._trial_id] = chosen
        return chosen

    def before_trial(self, study: optuna.Study, trial: FrozenTrial) -> None:
        self._sampler(study, trial).before_trial(study, trial)

    def infer_relative_search_space(self, study: optuna.Study, trial: FrozenTrial) -> dict[str, BaseDistribution]:
        sampler = self._sampler(study, trial)
        if sampler is not self._qmc:
            return sampler.infer_relative_search_space(study, trial)
        # The first trial's parameters, from the second trial on. QMCSampler, before any trial has finished,
        # takes the union of the running trials' parameters: in a space with per-strategy parameters that
        # union grows, each new union restarts the sequence, and trials repeat earlier ones exactly.
        others = [t for t in study.get_trials(deepcopy=False) if t.number != trial.number and t.distributions]
        return dict(min(others, key=lambda t: t.number).distributions) if others else {}

    def sample_relative(
        self, study: optuna.Study, trial: FrozenTrial, search_space: dict[str, BaseDistribution]
    ) -> dict[str, Any]:
        return self._sampler(study, trial).sample_relative(study, trial, search_space)

    def sample_independent(
        self, study: optuna.Study, trial: FrozenTrial, param_name: str, param_distribution: BaseDistribution
    ) -> Any:
        return self._sampler(study, trial).sample_independent(study, trial, param_name, param_distribution)

    def after_trial(
        self, study: optuna.Study, trial: FrozenTrial, state: TrialState, values: Sequence[float] | None
    ) -> None:
        self._sampler(study, trial).after_trial(study, trial, state, values)
        self._chosen.pop(trial._trial_id, None)

    def reseed_rng(self) -> None:
        self._qmc.reseed_rng()
        self._tpe.reseed_rng()
