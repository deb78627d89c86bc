"""Running a study: load and check everything, search, keep the leaderboard, export the best model.

The order protects what is already on disk: the study file, the plugins, the
data and the model are all loaded and checked before the run folder is touched.
Each step has its own module: the storage (:mod:`autoft.ledger`), the trial
workers (:mod:`autoft.workers`), a trial's life (:mod:`autoft.search`), the
scheduling (a backend plugin), the best model (:mod:`autoft.export`).
"""

from __future__ import annotations

import contextlib
import importlib
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import tomli_w
from rich.markup import escape

from . import preflight
from .config import StudyConfig
from .display import StudyDisplay
from .errors import StudyError, raise_if_stopped
from .fsutil import write_text
from .ledger import Ledger, check_sqlite, storage_of_run
from .models import weights_fingerprint
from .plugins import Registry
from .search import MAX_FAILURES_IN_A_ROW, StudySearch
from .summary import describe_data
from .workbench import Workbench
from .workers import WorkerPool

#: what exporting the best model imports (plots, scikit-learn, captum, the model card), imported while the
#: study waits for its workers and trials rather than after the last trial
EXPORT_MODULES = (
    "autoft.export",
    "sklearn.metrics",
    "autoft.evaluation",
    "autoft.report",
    "captum.attr",
    "autoft.attributions",
    "huggingface_hub",
    "scipy.optimize",
)


def check_study(config: StudyConfig, registry: Registry) -> Workbench:
    """Every check a run makes before the first trial (data, model, settings against both, the run folder).

    Writes nothing; returns the loaded workbench.
    """
    check_run_folder(config)
    bench = Workbench.load(config, registry)
    preflight.check_study(bench)
    Ledger.check_resume(config, identity(bench))  # a stored study of this name: the same data, model, objective
    return bench


def check_run_folder(config: StudyConfig) -> None:
    """A run folder that holds another storage's study is not written over (its leaderboard, its study.toml)."""
    run_dir = config.run_dir
    if config.storage_url.startswith("sqlite:///"):
        check_sqlite(Path(config.storage_url[len("sqlite:///") :]))  # a damaged database, before anything runs
    if run_dir.exists() and not run_dir.is_dir():
        raise StudyError(f"{config.path}: the run folder '{run_dir}' is a file; move it, or set [study] output_dir")
    if not ((run_dir / "study.toml").exists() or (run_dir / "study.db").exists()):
        return
    stored = storage_of_run(run_dir)
    if not same_storage(stored, config.storage_url):
        raise StudyError(
            f"{config.path}: run folder '{run_dir}' belongs to the study in {stored}, not {config.storage_url}; "
            "point [study] storage (or --storage) at it, or use another [study] name or output_dir"
        )


def same_storage(a: str, b: str) -> bool:
    """Whether two storage URLs name one storage (SQLite files compared by their resolved paths)."""
    prefix = "sqlite:///"
    if a.startswith(prefix) and b.startswith(prefix):
        return Path(a[len(prefix) :]).resolve() == Path(b[len(prefix) :]).resolve()
    return a == b


def identity(bench: Workbench) -> dict:
    """What must stay the same for a stored study to be resumed."""
    config = bench.config
    return {
        "dataset": bench.data.fingerprint,
        "labels": list(bench.data.label_names),
        "model": bench.config.model.name,
        "max_length": bench.config.model.max_length,
        # the candidate models (alias, model, max_length): the search's choices must stay the same
        "models": [f"{c.alias}: {c.section.name}, max_length {c.section.max_length}" for c in config.models.values()],
        "objective": bench.config.objective.name,
        # a local model folder's weights: trials of other weights would be ranked as if they were the same model
        "weights": [f"{b.alias or b.config.model.name}: {weights_fingerprint(b.ref)}" for b in bench.every_model()],
    }


def import_in_background(names: tuple[str, ...]) -> threading.Thread:
    """Import modules in a thread while this process mostly waits (on its workers, on trials).

    One that fails to import is left alone: it fails again, with its reason, where it is used.
    """

    def run() -> None:
        for name in names:
            with contextlib.suppress(Exception):
                importlib.import_module(name)

    thread = threading.Thread(target=run, name="autoft-imports", daemon=True)
    thread.start()
    return thread


@dataclass
class StudyResult:
    run_dir: Path
    rows: list[dict]
    best: dict | None
    ran: int
    objective: str = ""  # the metric the study ranked by (a study file without one gets its task's default)


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
    budget = config.budget_seconds
    deadline = time.time() + budget if budget else None  # counted from here: loading and checking are in it
    check_run_folder(config)  # the checks of check_study, with the workers starting once the data is loaded
    bench = Workbench.with_data(config, registry)
    config = bench.config  # as it applies to the data's task (its objective)
    display.objective = config.search.objective
    bench.deadline = deadline
    backend = registry.backend(config.search.backend)()
    run_dir = config.run_dir
    workers = WorkerPool(bench, display)
    if backend.uses_workers:
        workers.start(quiet=True)  # they load the model while this process checks, opens the storage, tokenizes
    try:
        bench.add_tokenizer()
        preflight.check_study(bench)
        raise_if_stopped()  # a Ctrl-C a library swallowed while loading: before anything is written
        created = not run_dir.exists()
        try:
            run_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:  # a read-only or special file system, a full disk: before anything is written
            raise StudyError(
                f"{config.path}: cannot create the run folder '{run_dir}' ({exc.strerror or exc}); "
                "set [study] output_dir to a folder you can write in"
            ) from None
        try:
            ledger = Ledger.open(config, identity(bench))
        except BaseException:
            if created and not any(run_dir.iterdir()):
                run_dir.rmdir()
            raise
        interrupted = ledger.mark_interrupted() + ledger.fail_stale()
        if interrupted:
            display.print(f"marked interrupted trial(s) {', '.join(map(str, interrupted))} as failed")
        target = n_trials or config.search.n_trials
        search = StudySearch(config, registry, bench, ledger, display, workers, target)
        workers.keep(target - ledger.started_count())  # a resumed study may need fewer workers than lanes
    except BaseException:
        workers.close()
        raise
    imports = None
    try:
        early = backend.uses_workers and not search.should_stop()
        if early:
            workers.announce()
        else:
            workers.close()  # no trials to run here: workers still loading end now
        if finalize_best:
            imports = import_in_background(EXPORT_MODULES)
        bench.tokenize(run_dir / "cache")
        raise_if_stopped()
        describe_data(bench, display)
        display.print("search space: " + escape(" · ".join(f"{k} {v}" for k, v in search.space.rows())))
        if early:
            workers.workers  # noqa: B018 - ready now: a model that fails to load stops us before we write
        done = ledger.finished_count()
        if not (run_dir / "study.toml").exists() or not search.should_stop():
            write_text(run_dir / "study.toml", tomli_w.dumps(config.raw))  # the settings the next trials use
        display.print(
            f"study [bold]{config.name}[/]: {done} of {target} trials finished; "
            f"{max(0, target - done)} to run · storage {config.storage_url}"
        )
        with display:
            backend.optimize(search, config.options_of(type(backend)))
            best = None
            if finalize_best:
                from .export import finalize, write_study_report

                ledger.wait_for_running(
                    lambda numbers: display.print(f"waiting for trial(s) {numbers} on other workers")
                )
                best = finalize(ledger, bench, search.store, display, workers)
            rows = search.write_leaderboard()
            if finalize_best:
                write_study_report(run_dir, ledger, config.objective, rows, best)
    finally:
        workers.close()
        if imports is not None:
            imports.join()
    if search.failures_in_a_row >= MAX_FAILURES_IN_A_ROW:
        raise StudyError(
            f"{MAX_FAILURES_IN_A_ROW} trials failed in a row, so the study stopped; the last said: "
            f"{search.last_failure}"
        )
    if finalize_best:
        registry.notify("study_finished", study_name=config.name, run_dir=str(run_dir), best=best, config=config)
    return StudyResult(run_dir, rows, best, search.ran, config.search.objective)
