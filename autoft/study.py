"""Running a study: load and check everything, search, keep the leaderboard, export the best model.

The order protects what is already on disk: the study file, the plugins, the
data and the model are all loaded and checked before the run folder is touched.
"""

from __future__ import annotations

import os
import socket
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import TrialState
from rich.markup import escape

from . import leaderboard
from .backends import get_backend
from .backends._optuna import make_pruner, make_sampler
from .checkpoints import CheckpointStore
from .config import StudyConfig
from .display import StudyDisplay
from .errors import StudyError, first_line
from .leaderboard import fmt
from .metrics import Metric
from .options import is_searched
from .plugins import Registry
from .processes import pid_alive
from .space import SearchSpace, TrialConfig
from .training import Reporter
from .trial import TrialOutcome
from .workbench import Workbench
from .workers import InlineWorker, ProcessWorker, Worker, wait_any

#: a study stops after this many failed trials in a row (something is wrong with every configuration)
MAX_FAILURES_IN_A_ROW = 3
FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)
#: running trials record a heartbeat this often (seconds); a trial silent for GRACE seconds is failed
HEARTBEAT = 20
GRACE = 120


def _rdb_storage(url: str, attempts: int = 5) -> optuna.storages.RDBStorage:
    """Open (and on first use create) an Optuna RDB storage.

    Processes that open a new storage at the same moment (workers joining a study, a dashboard)
    race to create its tables; the loser sees "already exists" and simply opens it again.
    """
    engine_kwargs = {"connect_args": {"timeout": 60}} if url.startswith("sqlite") else None
    for attempt in range(attempts):
        try:
            with warnings.catch_warnings():  # heartbeats are marked experimental; cross-machine studies need them
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                return optuna.storages.RDBStorage(
                    url, engine_kwargs=engine_kwargs, heartbeat_interval=HEARTBEAT, grace_period=GRACE
                )
        except Exception as exc:
            text = str(exc).lower()
            raced = "already exists" in text or "unique" in text or "duplicate" in text
            if not raced or attempt == attempts - 1:
                raise
            time.sleep(0.2 * (attempt + 1))
    raise AssertionError("unreachable")


def open_study(config: StudyConfig, identity: dict | None = None, *, create: bool = True) -> optuna.Study:
    """Create or load the Optuna study; refuse one that was made for other data or another model."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    url = config.storage_url
    try:
        storage = _rdb_storage(url)
    except Exception as exc:
        raise StudyError(f"{config.path}: [study] storage {url!r}: cannot open: {first_line(exc)}") from exc
    sampler = make_sampler(config.search.sampler, config.study.seed, config.search.startup_trials)
    pruner = make_pruner(config.search.pruner, config.search.startup_trials)
    existing = {s.study_name: s for s in storage.get_all_studies()}
    if config.name not in existing and not create:
        raise StudyError(f"study '{config.name}' is not in storage {url}")
    if config.name in existing:
        direction = existing[config.name].direction.name.lower()
        if direction != config.search.direction:
            raise StudyError(
                f"{config.path}: study '{config.name}' in {url} was created to {direction} and this file asks "
                f"to {config.search.direction}; use another [study] name"
            )
        kept = existing[config.name].user_attrs.get("autoft")
        if identity and kept:
            for key in ("dataset", "labels", "model", "max_length"):
                if kept.get(key) != identity.get(key):
                    raise StudyError(
                        f"{config.path}: study '{config.name}' in {url} was created with {key} {kept.get(key)!r}, "
                        f"this file gives {identity.get(key)!r}; use another [study] name to start a new study"
                    )
    study = optuna.create_study(
        storage=storage,
        study_name=config.name,
        sampler=sampler,
        pruner=pruner,
        direction=config.search.direction,
        load_if_exists=True,
    )
    if identity and "autoft" not in study.user_attrs:
        study.set_user_attr("autoft", identity)
    return study


def identity(bench: Workbench) -> dict:
    """What must stay the same for a stored study to be resumed."""
    return {
        "dataset": bench.data.fingerprint,
        "labels": list(bench.data.label_names),
        "model": bench.config.model.name,
        "max_length": bench.config.model.max_length,
    }


@dataclass
class Session:
    """One run of a study in this process: what backends call while they search."""

    config: StudyConfig
    registry: Registry
    bench: Workbench
    study: optuna.Study
    display: StudyDisplay
    n_trials: int

    def __post_init__(self) -> None:
        self._workers: list[Worker] | None = None
        self.space = SearchSpace(self.config, self.registry)
        self.store = CheckpointStore(self.config.run_dir, self.config.maximize)
        self.started = time.monotonic()
        self.failures_in_a_row = 0
        self.last_failure = ""
        self.ran = 0  # trials this process ran to an end
        self.timed_out = False
        self.last_heartbeat = 0.0

    @property
    def objective(self) -> Metric:
        return self.bench.objective

    def start_workers(self) -> None:
        """Start the trial workers; they load the model while this process goes on (tokenizing)."""
        if self._workers is None:
            self._workers = start_workers(self.bench, self.display)

    @property
    def workers(self) -> list[Worker]:
        """The trial workers, ready for trials; started on first use (a study with nothing left to run starts none)."""
        self.start_workers()
        for worker in self._workers:
            worker.ready(self.bench.cache)
        return self._workers

    def stop_workers(self) -> None:
        """No more trials here: let idle worker processes end while this process finishes up."""
        for worker in self._workers or []:
            worker.stop()

    def close(self) -> None:
        for worker in self._workers or []:
            worker.close()

    def finished_count(self) -> int:
        return len(self.study.get_trials(deepcopy=False, states=FINISHED))

    def should_stop(self) -> bool:
        """Whether to start no more trials: those finished and running (on any worker) reach n_trials."""
        states = (*FINISHED, TrialState.RUNNING)
        if len(self.study.get_trials(deepcopy=False, states=states)) >= self.n_trials:
            return True
        if self.config.search.timeout and time.monotonic() - self.started > self.config.search.timeout:
            if not self.timed_out:
                self.display.print(f"timeout of {self.config.search.timeout:g} s reached; no new trials")
            self.timed_out = True
            return True
        return self.failures_in_a_row >= MAX_FAILURES_IN_A_ROW

    def heartbeat(self, trials: list[Any]) -> None:
        """Tell the storage these trials are alive (so other machines do not fail them as stale)."""
        now = time.monotonic()
        if now - self.last_heartbeat < HEARTBEAT:
            return
        self.last_heartbeat = now
        for trial in trials:
            self.study._storage.record_heartbeat(trial._trial_id)

    def wait_for_others(self) -> None:
        """Wait for trials other workers are still running, so the best model is chosen among all."""
        announced = False
        while True:
            fail_stale(self.study)
            running = self.study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
            if not running:
                return
            if not announced:
                numbers = ", ".join(str(t.number) for t in running)
                self.display.print(f"waiting for trial(s) {numbers} on other workers")
                announced = True
            time.sleep(2)

    def summary(self, config: TrialConfig) -> str:
        """A short label for a trial's bar: strategy, learning rate, epochs, batch size, searched options."""
        hp = config.hp
        parts = [f"{config.strategy:<6}", f"lr={fmt(hp.learning_rate)}", f"ep={hp.epochs}", f"bs={hp.batch_size}"]
        for key, value in self.config.strategies[config.strategy].options.items():
            if is_searched(value):
                parts.append(f"{key}={fmt(getattr(config.options, key))}")
        return " ".join(parts)

    def trial_started(self, trial: Any, config: TrialConfig) -> None:
        trial.set_user_attr("config", config.to_dict())
        trial.set_user_attr("strategy", config.strategy)
        trial.set_user_attr("model", self.config.model.name)
        trial.set_user_attr("host", socket.gethostname())
        trial.set_user_attr("pid", os.getpid())

    def run(self, number: int, config: TrialConfig, events: Reporter, *, keep: bool = False) -> TrialOutcome:
        """Train one trial and wait for it; ``keep`` saves its model whatever its score."""
        worker = self.workers[0]
        worker.start(number, config, events, keep=keep)
        while True:
            for _, outcome in wait_any([worker]):
                return outcome

    def trial_ended(self, number: int, outcome: TrialOutcome) -> None:
        """After the backend recorded a trial: checkpoints, leaderboard, display, plugins."""
        if outcome.state == "failed":
            self.failures_in_a_row += 1
            self.last_failure = outcome.reason
        else:
            self.failures_in_a_row = 0
        self.ran += 1
        best = best_trial(self.study)
        trials = self.study.get_trials(deepcopy=False)
        finished = {t.number for t in trials if t.state.is_finished()}
        self.store.settle(best.number if best else None, best.value if best else None, finished)
        rows = self.write_leaderboard(trials)
        self.display.finished(
            number, outcome.state, outcome.value, outcome.reason, (best.number, best.value) if best else None
        )
        row = next((r for r in rows if r["trial"] == number), None)
        self.registry.hook.trial_finished(study_name=self.config.name, record=row)

    def write_leaderboard(self, trials: list | None = None) -> list[dict]:
        """Rewrite the leaderboard files from ``trials`` (default: the study's trials now)."""
        trials = self.study.get_trials(deepcopy=False) if trials is None else trials
        rows = leaderboard.rows_from_trials(trials, self.objective.name, self.config.maximize)
        leaderboard.write(self.config.run_dir, rows, self.objective.name)
        return rows


def best_trial(study: optuna.Study) -> optuna.trial.FrozenTrial | None:
    try:
        return study.best_trial
    except ValueError:
        return None


def mark_interrupted(study: optuna.Study) -> list[int]:
    """Fail the trials left RUNNING by a process of this machine that no longer exists."""
    host = socket.gethostname()
    marked = []
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        pid = t.user_attrs.get("pid")
        if t.user_attrs.get("host") != host or not isinstance(pid, int) or pid_alive(pid):
            continue
        optuna.trial.Trial(study, t._trial_id).set_user_attr("reason", "interrupted (its process ended)")
        study.tell(t.number, state=TrialState.FAIL)
        marked.append(t.number)
    return marked


def fail_stale(study: optuna.Study) -> list[int]:
    """Fail running trials whose worker stopped sending heartbeats (on any machine); return their numbers."""
    from optuna.storages._heartbeat import is_heartbeat_enabled

    storage = study._storage
    if not is_heartbeat_enabled(storage):
        return []
    failed = []
    for trial_id in storage._get_stale_trial_ids(study._study_id):
        try:
            storage.set_trial_user_attr(trial_id, "reason", f"no heartbeat for {GRACE} s (its worker stopped)")
            storage.set_trial_state_values(trial_id, state=TrialState.FAIL)
        except optuna.exceptions.UpdateFinishedTrialError:
            continue  # another worker failed it first
        failed.append(storage.get_trial_number_from_id(trial_id))
    return sorted(failed)


def gpu_ids(setting: str | tuple[int, ...]) -> list[int]:
    """GPU indices to use: "auto" is every GPU torch sees, "none" is none, or a list of indices."""
    if setting == "none":
        return []
    if setting == "auto":
        import torch

        return list(range(torch.cuda.device_count()))  # asks NVML; CUDA stays uninitialised here
    return list(setting)


def start_workers(bench: Workbench, display: StudyDisplay) -> list[Worker]:
    """Trial workers for this machine: ``trials_per_gpu`` per GPU, or ``cpu_trials`` without one.

    Each worker process sees only its GPU (CUDA_VISIBLE_DEVICES). ``isolation = "none"``
    runs trials in this process instead (one at a time).
    """
    search = bench.config.search
    if search.isolation == "none" or not sys.platform.startswith("linux"):
        return [InlineWorker(bench)]
    gpus = gpu_ids(search.gpus) if bench.config.train.device in ("auto", "cuda") else []
    lanes = [{"CUDA_VISIBLE_DEVICES": str(g)} for g in gpus for _ in range(search.trials_per_gpu)]
    lanes = lanes or [
        {"CUDA_VISIBLE_DEVICES": ""} if gpus == [] and bench.config.train.device == "cpu" else {}
        for _ in range(search.cpu_trials)
    ]
    where = f"{len(gpus)} GPU(s)" if gpus else "the CPU"
    display.print(f"[dim]starting {len(lanes)} trial worker(s) on {where} (each loads the model once)[/]")
    spec = bench.spec()
    workers: list[Worker] = []
    try:
        for i, env in enumerate(lanes):
            workers.append(ProcessWorker(spec, env, name=f"autoft-worker-{i}"))
    except BaseException:
        for worker in workers:
            worker.close()
        raise
    return workers


@dataclass
class StudyResult:
    run_dir: Path
    rows: list[dict]
    best: dict | None
    ran: int


def run_study(
    config: StudyConfig,
    registry: Registry,
    display: StudyDisplay,
    *,
    n_trials: int | None = None,
    finalize_best: bool = True,
) -> StudyResult:
    """Load and check, then search until ``n_trials`` trials are finished, then export the best.

    ``finalize_best=False`` is a worker joining a study: it runs trials and leaves the
    test evaluation and the best model to the study's own run.
    """
    from .export import finalize, write_study_report
    from .fsutil import write_text
    from .summary import describe_data
    from .tomlw import dumps

    bench = Workbench.load(config, registry)
    run_dir = config.run_dir
    created = not run_dir.exists()
    run_dir.mkdir(parents=True, exist_ok=True)
    try:
        study = open_study(config, identity(bench))
    except BaseException:
        if created and not any(run_dir.iterdir()):
            run_dir.rmdir()
        raise
    interrupted = mark_interrupted(study) + fail_stale(study)
    if interrupted:
        display.print(f"marked interrupted trial(s) {', '.join(map(str, interrupted))} as failed")
    target = n_trials or config.search.n_trials
    session = Session(config, registry, bench, study, display, target)
    backend = get_backend(config.search.backend)
    try:
        early = backend.uses_workers and not session.should_stop()
        if early:
            session.start_workers()  # they load the model while this process tokenizes
        bench.tokenize(run_dir / "cache")
        describe_data(bench, display)
        display.print("search space: " + escape(" · ".join(f"{k} {v}" for k, v in session.space.rows())))
        if early:
            session.workers  # noqa: B018 - ready now: a model that fails to load stops us before we write
        write_text(run_dir / "study.toml", dumps(config.raw))
        done = session.finished_count()
        display.print(
            f"study [bold]{config.name}[/]: {done} of {target} trials finished; "
            f"{max(0, target - done)} to run · storage {config.storage_url}"
        )
        with display:
            backend.optimize(session)
            best = None
            if finalize_best:
                session.wait_for_others()
                best = finalize(session)
            rows = session.write_leaderboard()
            if finalize_best:
                write_study_report(session, rows, best)
    finally:
        session.close()
    if session.failures_in_a_row >= MAX_FAILURES_IN_A_ROW:
        raise StudyError(
            f"{MAX_FAILURES_IN_A_ROW} trials failed in a row, so the study stopped; the last said: "
            f"{session.last_failure}"
        )
    if finalize_best:
        registry.hook.study_finished(study_name=config.name, run_dir=str(run_dir), best=best)
    return StudyResult(run_dir, rows, best, session.ran)
