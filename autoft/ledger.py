"""The ledger: everything a study's Optuna storage holds, and the only module that touches Optuna's private API.

It opens (and on first use creates) the storage and the study, refuses to resume a
study made for other data, another model or another objective, asks for trials and
records their outcomes, keeps running trials' heartbeats, and fails trials whose
process ended (this machine) or whose worker went silent (any machine).
"""

from __future__ import annotations

import datetime
import math
import os
import socket
import time
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from .errors import StudyError, first_line, stop_signals_held
from .processes import pid_alive
from .rungs import min_resource
from .sampling import SpaceFillingTPE

if TYPE_CHECKING:
    from .config import StudyConfig
    from .trial import TrialOutcome

FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)
#: running trials record a heartbeat this often (seconds); a trial silent for GRACE seconds is failed
HEARTBEAT = 20
GRACE = 120
#: a RUNNING trial that has named no owner (host and pid) this many seconds after it started is orphaned
ORPHAN_AFTER = 60
#: what must stay the same for a stored study to be resumed (the keys of :func:`Ledger.open`'s identity)
IDENTITY = ("dataset", "labels", "model", "max_length", "models", "objective", "weights")


def rdb_storage(url: str, attempts: int = 5) -> optuna.storages.RDBStorage:
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


def make_sampler(sampler: str, seed: int, startup_trials: int) -> optuna.samplers.BaseSampler:
    if sampler == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    return SpaceFillingTPE(seed, startup_trials)  # multivariate, grouped TPE after a Sobol start


def make_pruner(config: StudyConfig) -> optuna.pruners.BasePruner:
    """The study's pruner; its steps are the rungs' resources (thousandths of an epoch: ``autoft.rungs``)."""
    search = config.search
    first = min_resource(config.rungs, search.reduction_factor)
    if search.pruner in ("asha", "auto"):  # asynchronous successive halving: rungs at first * factor**k
        # ("auto" where trials cannot wait; where they can, autoft.halving decides instead of a pruner)
        return optuna.pruners.SuccessiveHalvingPruner(
            min_resource=first, reduction_factor=search.reduction_factor, min_early_stopping_rate=0
        )
    if search.pruner == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=search.startup_trials, n_warmup_steps=0)
    if search.pruner == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=first, reduction_factor=search.reduction_factor)
    return optuna.pruners.NopPruner()


class Ledger:
    """One study in its storage."""

    def __init__(self, study: optuna.Study, url: str):
        self.study = study
        self.url = url

    @classmethod
    def open(cls, config: StudyConfig, identity: dict | None = None) -> Ledger:
        """Create or load the study; refuse one that was made for other data, model, objective or direction."""
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        url = config.storage_url
        try:
            storage = rdb_storage(url)
        except Exception as exc:
            raise StudyError(f"{config.path}: [study] storage {url!r}: cannot open: {first_line(exc)}") from exc
        try:
            _check_stored(storage, config, identity)
            study = optuna.create_study(
                storage=storage,
                study_name=config.name,
                sampler=make_sampler(config.search.sampler, config.study.seed, config.search.startup_trials),
                pruner=make_pruner(config),
                direction=config.search.direction,
                load_if_exists=True,
            )
        except StudyError:
            raise
        except Exception as exc:  # a damaged or foreign database behind a storage that opened
            raise StudyError(
                f"{config.path}: [study] storage {url!r}: cannot read the study ({first_line(exc)}); "
                "restore the database or point [study] storage at another one"
            ) from exc
        kept = study.user_attrs.get("autoft")
        if identity and (not kept or any(k not in kept for k in identity)):
            study.set_user_attr("autoft", {**identity, **(kept or {})})
        return cls(study, url)

    @staticmethod
    def check_resume(config: StudyConfig, identity: dict) -> None:
        """Refuse what :meth:`open` refuses of a stored study (other data, model, weights, objective, direction),
        writing nothing: for an SQLite file that exists (a server's study is checked when a run opens it)."""
        url = config.storage_url
        if not url.startswith("sqlite:///") or not Path(url[len("sqlite:///") :]).is_file():
            return
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        try:
            storage = rdb_storage(url)
        except Exception:  # noqa: BLE001 -- a damaged database: check_sqlite named it, or the run will
            return
        _check_stored(storage, config, identity)

    @property
    def name(self) -> str:
        return self.study.study_name

    # --- reading -----------------------------------------------------------------------------

    @stop_signals_held()
    def trials(self, states: tuple[TrialState, ...] | None = None) -> list[FrozenTrial]:
        return self.study.get_trials(deepcopy=False, states=states)

    def finished_count(self) -> int:
        return len(self.trials(FINISHED))

    def started_count(self) -> int:
        """Trials finished or running (on any worker)."""
        return len(self.trials((*FINISHED, TrialState.RUNNING)))

    @stop_signals_held()
    def best(self) -> FrozenTrial | None:
        """The best completed trial, or None."""
        try:
            return self.study.best_trial
        except ValueError:
            return None

    # --- a trial's life ------------------------------------------------------------------------

    @stop_signals_held()
    def ask(self) -> optuna.Trial:
        """A new RUNNING trial, owned at once: its host and pid come first, so a later run can fail it
        if this process dies (an ownerless trial is failed after ORPHAN_AFTER seconds anyway)."""
        with warnings.catch_warnings():  # heartbeats are recorded by the search (Ledger.heartbeat)
            warnings.filterwarnings("ignore", message="Heartbeat of storage")
            handle = self.study.ask()
        handle.set_user_attr("pid", os.getpid())
        handle.set_user_attr("host", socket.gethostname())
        return handle

    @staticmethod
    @stop_signals_held()
    def started(handle: optuna.Trial, attrs: dict[str, Any]) -> None:
        """Record what a trial runs with."""
        for key, value in attrs.items():
            handle.set_user_attr(key, value)

    @stop_signals_held()
    def tell(self, handle: optuna.Trial, outcome: TrialOutcome) -> None:
        """Record a trial's outcome: its attributes, then its state and value.

        A complete trial whose objective is not a finite number (a metric gave NaN) is failed, here and in
        ``outcome`` itself, so that what the study shows and counts is what the storage holds.
        """
        if outcome.state == "complete" and (outcome.value is None or not math.isfinite(outcome.value)):
            outcome.state, outcome.reason = "failed", "the objective is not a finite number"
        for key, value in outcome.attrs().items():
            handle.set_user_attr(key, value)
        if outcome.state == "complete":
            self.study.tell(handle, outcome.value)
        elif outcome.state == "pruned":
            self.study.tell(handle, state=TrialState.PRUNED)
        else:
            self.study.tell(handle, state=TrialState.FAIL)

    @stop_signals_held()
    def fail(self, handle: optuna.Trial, reason: str) -> None:
        """Fail a running trial with a reason (a no-op if it was recorded meanwhile)."""
        try:
            handle.set_user_attr("reason", reason)
            self.study.tell(handle, state=TrialState.FAIL)
        except optuna.exceptions.UpdateFinishedTrialError:
            pass

    @stop_signals_held()
    def heartbeat(self, handles: list[optuna.Trial]) -> None:
        """Tell the storage these trials are alive (so other machines do not fail them as stale)."""
        for handle in handles:
            self.study._storage.record_heartbeat(handle._trial_id)

    # --- trials nobody runs any more ---------------------------------------------------------------

    @stop_signals_held()
    def mark_interrupted(self) -> list[int]:
        """Fail the trials left RUNNING by a process of this machine that no longer exists, and trials that
        named no owner ORPHAN_AFTER seconds after they started."""
        host = socket.gethostname()
        marked = []
        now = datetime.datetime.now()
        for t in self.trials((TrialState.RUNNING,)):
            pid = t.user_attrs.get("pid")
            if "host" not in t.user_attrs or not isinstance(pid, int):
                # asked, then its process died before it could say whose it is
                age = (now - t.datetime_start).total_seconds() if t.datetime_start else ORPHAN_AFTER
                if age < ORPHAN_AFTER:
                    continue
            elif t.user_attrs["host"] != host or pid_alive(pid):
                continue
            self.fail(optuna.trial.Trial(self.study, t._trial_id), "interrupted (its process ended)")
            marked.append(t.number)
        return marked

    @stop_signals_held()
    def fail_stale(self) -> list[int]:
        """Fail running trials whose worker stopped sending heartbeats (on any machine); return their numbers."""
        from optuna.storages._heartbeat import is_heartbeat_enabled

        storage = self.study._storage
        if not is_heartbeat_enabled(storage):
            return []
        failed = []
        for trial_id in storage._get_stale_trial_ids(self.study._study_id):
            try:
                storage.set_trial_user_attr(trial_id, "reason", f"no heartbeat for {GRACE} s (its worker stopped)")
                storage.set_trial_state_values(trial_id, state=TrialState.FAIL)
            except optuna.exceptions.UpdateFinishedTrialError:
                continue  # another worker failed it first
            failed.append(storage.get_trial_number_from_id(trial_id))
        return sorted(failed)

    def wait_for_running(self, announce) -> None:
        """Wait until no trial runs anywhere (so the best model is chosen among all); ``announce`` them once."""
        announced = False
        while True:
            self.mark_interrupted()
            self.fail_stale()
            running = self.trials((TrialState.RUNNING,))
            if not running:
                return
            if not announced:
                announce([t.number for t in running])
                announced = True
            time.sleep(2)


def storage_of_run(run_dir: Path) -> str:
    """The storage URL of a run folder: its study.toml's ``[study] storage``, else its study.db.

    A study.toml that cannot be read is an error, not a reason to guess: a PostgreSQL study's
    folder may hold an unrelated study.db. A study.db (or any SQLite storage file) that is not a
    whole SQLite database is an error naming it: it is the study's record, never rebuilt.
    """
    from .saved import DamagedFile, read_toml, run_folder_hint

    run_dir = Path(run_dir)
    if not run_dir.exists():
        raise StudyError(f"'{run_dir}' does not exist; give a run folder (runs/<study>)")
    if not run_dir.is_dir():
        raise StudyError(f"'{run_dir}' is not a folder; give a run folder (runs/<study>)")
    path = run_dir / "study.toml"
    fix = "it is a copy of the study file you ran: copy that file over it, or delete it (a run writes it again)"
    storage: Any = ""
    if path.exists():
        try:
            raw = read_toml(path, fix)
        except DamagedFile as exc:
            raise StudyError(str(exc)) from exc
        study = raw.get("study", {})
        if not isinstance(study, dict):
            raise StudyError(f"'{path}': [study] is not a table; {fix}")
        storage = study.get("storage", "")
        if not isinstance(storage, str):
            raise StudyError(f"'{path}': [study] storage must be a URL string, got {storage!r}; {fix}")
    if not storage:
        if not (run_dir / "study.db").is_file():
            raise StudyError(f"'{run_dir}' has no study.db; {run_folder_hint(run_dir, 'study.db')}")
        storage = f"sqlite:///{run_dir / 'study.db'}"
    if storage.startswith("sqlite:///"):
        check_sqlite(Path(storage[len("sqlite:///") :]))
    return storage


def check_sqlite(path: Path) -> None:
    """A SQLite storage file, if there, must be a whole database (``PRAGMA quick_check``, read-only)."""
    import contextlib
    import sqlite3

    if not path.is_file():
        return  # none yet: Optuna creates it
    fix = "it holds the study's trials and is never rebuilt: restore it from a backup, or move it away to start afresh"
    if path.stat().st_size == 0:
        raise StudyError(f"'{path}' cannot be read (empty file, 0 bytes: its trials are gone); {fix}")
    try:
        with contextlib.closing(sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=60)) as db:
            found = db.execute("PRAGMA quick_check").fetchall()
            tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        problem = "" if found == [("ok",)] else str(found[0][0]) if found else "no answer to a check"
    except sqlite3.Error as exc:
        problem = first_line(exc)
    if problem:
        raise StudyError(f"'{path}' cannot be read (damaged SQLite database: {problem}); {fix}")
    if tables and "studies" not in tables:
        raise StudyError(
            f"'{path}' is a SQLite database, but not an Optuna study storage (its tables: "
            f"{', '.join(sorted(tables)[:5])}); move it away, or point [study] storage elsewhere"
        )


def _check_stored(storage: Any, config: StudyConfig, identity: dict | None) -> None:
    """Refuse a study of this name in ``storage`` that was made for other data, model, objective or direction."""
    existing = {s.study_name: s for s in storage.get_all_studies()}
    if config.name in existing:
        _check_identity(config, config.storage_url, existing[config.name], identity)


def _check_identity(config: StudyConfig, url: str, stored: Any, identity: dict | None) -> None:
    direction = stored.direction.name.lower()
    if direction != config.search.direction:
        raise StudyError(
            f"{config.path}: study '{config.name}' in {url} was created to {direction} and this file asks "
            f"to {config.search.direction}; use another [study] name"
        )
    kept = stored.user_attrs.get("autoft")
    if not (identity and kept):
        return
    for key in IDENTITY:
        if key in kept and key in identity and kept[key] != identity[key]:
            if key == "weights":
                raise StudyError(
                    f"{config.path}: the weights in the model folder changed since study '{config.name}' in {url} "
                    f"began (fingerprint {'; '.join(kept[key])}, now {'; '.join(identity[key])}); put the earlier "
                    "weights back, or use another [study] name to start a new study"
                )
            raise StudyError(
                f"{config.path}: study '{config.name}' in {url} was created with {key} {kept[key]!r}, "
                f"this file gives {identity[key]!r}; use another [study] name to start a new study"
            )
