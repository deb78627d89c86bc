"""A search backend in one short file: trials one at a time, until the best stops improving.

    [study]
    plugins = ["patience_backend.py"]   # relative to the study file

    [search]
    backend = "patience"
    n_trials = 50                       # an upper bound

    [search.patience]
    patience = 5                        # stop after 5 trials in a row that did not beat the best

The backend only schedules. The study's side of each trial (sampling its
configuration, recording the outcome, checkpoints, leaderboard, pruning) is
``search.begin`` and ``search.end``.
"""

from __future__ import annotations

from dataclasses import dataclass

from autoft import Backend, RunningTrial, Search, hookimpl, option


@dataclass(frozen=True)
class PatienceOptions:
    patience: int = option(5, "trials in a row without a new best before the search stops", ge=1)


class PatienceBackend(Backend):
    """Sequential trials on the first trial worker, stopped early when the best stalls."""

    name = "patience"
    Options = PatienceOptions

    def optimize(self, search: Search, options: PatienceOptions) -> None:
        best, stalled = None, 0
        while stalled < options.patience and not search.should_stop():
            trial = search.begin(prune=RunningTrial.should_prune)
            try:
                outcome = search.workers.run(trial.number, trial.config, trial)
            except KeyboardInterrupt as stop:
                search.interrupt(stop)
                raise
            search.end(trial, outcome)
            improved = outcome.state == "complete" and search.objective.better(outcome.value, best)
            best, stalled = (outcome.value, 0) if improved else (best, stalled + 1)


@hookimpl
def register_backends(register):
    register(PatienceBackend)
