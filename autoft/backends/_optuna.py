"""The Optuna backend: an ask-and-tell loop over the study storage (SQLite by default).

It keeps every trial worker busy: it asks Optuna for a configuration whenever a
worker is free, answers each evaluation with Optuna's pruning decision, and
tells Optuna the outcome when the trial ends.
"""

from __future__ import annotations

import math
import warnings
from typing import TYPE_CHECKING, Any

import optuna
from optuna.trial import TrialState

from ..workers import wait_any
from ._base import Backend

if TYPE_CHECKING:
    from ..study import Session
    from ..trial import TrialOutcome


def make_sampler(sampler: str, seed: int, startup_trials: int) -> optuna.samplers.BaseSampler:
    if sampler == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    with warnings.catch_warnings():  # multivariate and group are marked experimental, and are what we want:
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)  # the strategy decides the space
        return optuna.samplers.TPESampler(seed=seed, n_startup_trials=startup_trials, multivariate=True, group=True)


def make_pruner(pruner: str, startup_trials: int) -> optuna.pruners.BasePruner:
    if pruner == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=startup_trials, n_warmup_steps=0)
    if pruner == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=1, reduction_factor=3)
    return optuna.pruners.NopPruner()


def tell(study: optuna.Study, trial: Any, outcome: TrialOutcome) -> None:
    """Record a trial's outcome: its attributes, then its state and value."""
    for key, value in outcome.attrs().items():
        trial.set_user_attr(key, value)
    if outcome.state == "complete" and outcome.value is not None and math.isfinite(outcome.value):
        study.tell(trial, outcome.value)
    elif outcome.state == "pruned":
        study.tell(trial, state=TrialState.PRUNED)
    else:
        if outcome.state == "complete":
            trial.set_user_attr("reason", "the objective is not a finite number")
        study.tell(trial, state=TrialState.FAIL)


class OptunaBackend(Backend):
    name = "optuna"

    def optimize(self, session: Session) -> None:
        study = session.study
        running: dict[Any, tuple[Any, Any]] = {}
        if session.should_stop():  # nothing to run: start no workers
            return
        try:
            while True:
                for worker in [w for w in session.workers if not w.busy]:
                    if session.should_stop():  # asked only when a worker is free for another trial
                        break
                    with warnings.catch_warnings():  # we record heartbeats ourselves (Session.heartbeat)
                        warnings.filterwarnings("ignore", message="Heartbeat of storage")
                        trial = study.ask()
                    running[worker] = (trial, None)  # from here on, an interruption fails this trial
                    config = session.space.suggest(trial)
                    session.trial_started(trial, config)
                    bar = session.display.trial(trial.number, session.summary(config))
                    bar.on_eval = self._pruning(session, trial)
                    bar.on_progress = lambda: session.heartbeat([t for t, _ in running.values()])
                    running[worker] = (trial, bar)
                    worker.start(trial.number, config, bar)
                if not running:
                    return
                session.heartbeat([trial for trial, _ in running.values()])
                for worker, outcome in wait_any(running):
                    trial, bar = running[worker]
                    tell(study, trial, outcome)
                    del running[worker]
                    bar.close(outcome.state)
                    session.trial_ended(trial.number, outcome)
        except KeyboardInterrupt as stop:
            reason = "terminated (SIGTERM)" if type(stop).__name__ == "Terminated" else "interrupted (Ctrl-C)"
            for trial, bar in running.values():
                try:
                    trial.set_user_attr("reason", reason)
                    study.tell(trial, state=TrialState.FAIL)
                except optuna.exceptions.UpdateFinishedTrialError:
                    pass  # it was recorded just before the interruption
                if bar is not None:
                    bar.close("interrupted")
            session.write_leaderboard()
            raise

    @staticmethod
    def _pruning(session: Session, trial: Any):
        def report(index: int, epoch: float, metrics: dict[str, float]) -> bool:
            value = metrics[session.objective.name]
            if not math.isfinite(value):
                return False
            trial.report(value, index)
            return trial.should_prune()

        return report
