"""The study's side of every trial's life, whatever backend schedules it: :class:`StudySearch`.

A backend calls :meth:`~StudySearch.begin` to start a trial (ask the ledger, sample
the configuration, record who runs it, show its bar, wire its reporter),
:meth:`~StudySearch.end` when it is over (record the outcome, keep the best
checkpoint, rewrite the leaderboard, tell the observer plugins) and
:meth:`~StudySearch.interrupt` on Ctrl-C or SIGTERM. It also decides when to
start no more trials.
"""

from __future__ import annotations

import time
from typing import Any

from .backends import Pruning, RunningTrial, Search
from .budget import FirstSteps, Forecast, format_duration, mean_of
from .checkpoints import CheckpointStore
from .config import StudyConfig
from .display import StudyDisplay, trial_summary
from .errors import StudyError, Terminated, stop_signals_held
from .halving import SynchronousHalving
from .leaderboard import rows_from_trials, write
from .ledger import HEARTBEAT, Ledger
from .outcome import TrialOutcome
from .plugins import Registry
from .rungs import PER_EPOCH, min_resource
from .space import SearchSpace
from .workbench import Workbench
from .workers import WorkerPool

#: a study stops after this many failed trials in a row (something is wrong with every configuration)
MAX_FAILURES_IN_A_ROW = 3
#: seconds of the first trial's training after which the study's forecast is printed
FORECAST_AFTER = 5.0


class StudySearch(Search):
    """One run of a study's search in this process."""

    def __init__(
        self,
        config: StudyConfig,
        registry: Registry,
        bench: Workbench,
        ledger: Ledger,
        display: StudyDisplay,
        workers: WorkerPool,
        n_trials: int,
    ):
        self.config = config
        self.registry = registry
        self.bench = bench
        self.ledger = ledger
        self.display = display
        self.workers = workers
        self.n_trials = n_trials
        self.objective = config.objective
        self.space = SearchSpace(config, registry)
        self.store = CheckpointStore(config.run_dir, self.objective)
        self.started = time.monotonic()
        self.failures_in_a_row = 0
        self.last_failure = ""
        self.ran = 0  # trials this process ran to an end
        self.timed_out = False
        self.deadline = bench.deadline  # the budget's end on the wall clock (time.time()), or None
        self.out_of_budget = False
        self._last_heartbeat = 0.0
        self._running: dict[int, tuple[Any, Any]] = {}  # number -> (storage handle, bar or None)
        self._began: dict[int, float] = {}
        self._first_rung_seconds: list[float] = []  # per trial ended here: seconds to its first evaluation
        self._first_steps = FirstSteps(FORECAST_AFTER)
        self._forecast_done = False

    def remaining(self) -> int:
        return max(0, self.n_trials - self.ledger.finished_count())

    def should_stop(self) -> bool:
        if self.ledger.started_count() >= self.n_trials:
            return True
        timeout = self.config.search.timeout
        if timeout and time.monotonic() - self.started > timeout:
            if not self.timed_out:
                self.display.print(f"timeout of {timeout:g} s reached; no new trials")
            self.timed_out = True
            return True
        if self.deadline is not None and self._out_of_budget():
            return True
        return self.failures_in_a_row >= MAX_FAILURES_IN_A_ROW

    def _out_of_budget(self) -> bool:
        """Whether the budget is spent, or too little of it is left for a trial to reach its first rung."""
        left = self.deadline - time.time()
        need = min(self._first_rung_seconds, default=0.0)
        if left > need and left > 0:
            return False
        if not self.out_of_budget:
            budget = self.config.search.budget
            self.display.print(
                f"budget of {budget} spent; no new trials"
                if left <= 0
                else f"budget of {budget}: {format_duration(left)} left, less than a trial takes to its first "
                f"evaluation here (about {format_duration(need)}); no new trials"
            )
        self.out_of_budget = True
        return True

    def begin(self, prune: Pruning | None = None) -> RunningTrial:
        with stop_signals_held():  # a stop signal inside ask() left the new trial RUNNING, failed by no one
            handle = self.ledger.ask()
            self._running[handle.number] = (handle, None)  # from here on, an interruption fails this trial
        config = self.space.suggest(handle)
        model = self.config.for_model(config.model).model.name  # the model's name or path, as the study gives it
        self.ledger.started(handle, {"config": config.to_dict(), "strategy": config.strategy, "model": model})
        options = self.config.strategies[config.strategy].options
        label = trial_summary(config, options)
        bar = self.display.trial(handle.number, f"{config.model} {label}" if config.model else label)
        self._running[handle.number] = (handle, bar)
        self._began[handle.number] = time.monotonic()
        watch = None if self._forecast_done else self._watch
        return RunningTrial(handle.number, config, handle, self.objective.name, bar, self.heartbeat, prune, watch=watch)

    def end(self, trial: RunningTrial, outcome: TrialOutcome) -> None:
        trial.resumed()  # a trial resumed only to end pruned sends nothing more
        outcome.waited_seconds = round(trial.waited, 3)
        self.ledger.tell(trial.handle, outcome)
        self._running.pop(trial.number, None)
        began = self._began.pop(trial.number, None)
        if outcome.state != "failed" and began is not None and trial.first_evaluated is not None:
            # how long a trial takes to its first evaluation here: setup, the first rung's training, scoring
            # (measured: a trial that then waited at its rung would overstate it by its wait)
            self._first_rung_seconds.append(trial.first_evaluated - began)
        trial.bar.close(outcome.state)
        if outcome.state == "failed":
            self.failures_in_a_row += 1
            self.last_failure = outcome.reason
        else:
            self.failures_in_a_row = 0
        self.ran += 1
        best = self.ledger.best()
        trials = self.ledger.trials()
        finished = {t.number for t in trials if t.state.is_finished()}
        self.store.settle(best.number if best else None, best.value if best else None, finished)
        rows = self.write_leaderboard(trials)
        self.display.finished(
            trial.number, outcome.state, outcome.value, outcome.reason, (best.number, best.value) if best else None
        )
        row = next((r for r in rows if r["trial"] == trial.number), None)
        self.registry.notify(
            "trial_finished", study_name=self.config.name, record=row, history=list(outcome.history), config=self.config
        )

    def _watch(self, trial: RunningTrial, step: int, total: int) -> None:
        """Forecast the study from a trial's training throughput, once it has run for a few seconds."""
        if self._forecast_done:
            return
        per_second = self._first_steps.report(trial, step, trial.config.hp.batch_size, time.monotonic(), self._running)
        if per_second is None:
            return
        self._forecast_done = True
        epochs = mean_of(self.config.space.get("epochs", trial.config.hp.epochs))
        forecast = Forecast(
            trials=self.remaining(),
            epochs=epochs,
            train_rows=len(self.bench.encoded["train"]),
            validation_rows=len(self.bench.encoded["validation"]),
            evaluations=epochs + self.config.rungs,
            samples_per_second=per_second,
            test_rows=len(self.bench.encoded.get("test", ())),
            lanes=self.workers.lanes,
        )
        model = self.config.model
        shrink = [
            f"dataset.max_train_rows (now {len(self.bench.encoded['train']):,} rows)",
            f"dataset.max_test_rows (now {len(self.bench.encoded.get('test', ())):,} rows)",
            f"model.max_length (now {model.max_length})",
            f"search.n_trials (now {self.n_trials})",
            "or set search.budget (such as --budget 30m)" if self.deadline is None else "",
        ]
        self.display.print(forecast.text([s for s in shrink if s]))

    def interrupt(self, stop: BaseException) -> None:
        reason = "terminated (SIGTERM)" if isinstance(stop, Terminated) else "interrupted (Ctrl-C)"
        for handle, bar in self._running.values():
            self.ledger.fail(handle, reason)
            if bar is not None:
                bar.close("interrupted")
        self._running.clear()
        self.write_leaderboard()

    def heartbeat(self) -> None:
        now = time.monotonic()
        if now - self._last_heartbeat < HEARTBEAT:
            return
        self._last_heartbeat = now
        self.ledger.heartbeat([handle for handle, _ in self._running.values()])

    def horizon(self) -> int:
        return self.space.most_reported_epochs() * PER_EPOCH

    def first_rung(self) -> int:
        return min_resource(self.config.rungs, self.config.search.reduction_factor)

    def halving(self) -> SynchronousHalving | None:
        """Synchronous successive halving for this run's trials (``pruner = "sha"``, or ``"auto"`` where
        every worker can pause a trial), else None: the study's pruner decides alone."""
        pruner = self.config.search.pruner
        if pruner not in ("sha", "auto"):
            return None
        if not all(w.can_pause for w in self.workers.workers):
            if pruner == "auto":
                return None
            raise StudyError(
                f'{self.config.path}: [search] pruner: "sha" stops a waiting trial\'s process, and the trials here '
                'run one after another in a worker process (isolation "auto" on a GPU); set isolation = "process", '
                'or pruner = "asha"'
            )
        factor = self.config.search.reduction_factor
        return SynchronousHalving(self.remaining(), self.first_rung(), factor, self.objective.maximize)

    def write_leaderboard(self, trials: list | None = None) -> list[dict]:
        """Rewrite the leaderboard files from ``trials`` (default: the study's trials now)."""
        rows = rows_from_trials(self.ledger.trials() if trials is None else trials, self.objective)
        write(self.config.run_dir, rows, self.objective.name)
        return rows
