"""Trial workers: trials outside the study process, so a crash or a leak stays out of it.

A :class:`ProcessWorker` is a fresh Python process (started with ``spawn``, so
no thread pool or CUDA state of the study process leaks into it). It rebuilds
the workbench once (study tables, memory-mapped tokens, the base model) and then
runs trials, talking to the study process over its pipe (progress, each
evaluation, which the study process answers with prune or go on, and the
outcome). How (``[search] isolation``):

- ``process``: it forks a child per trial, which inherits everything loaded; a
  child that dies (segfault, out of memory) fails its trial and the worker goes on.
- ``worker``: it runs its trials itself, one after another, so a GPU's CUDA
  context and loaded kernels serve every trial (a fresh process per trial costs
  about 1.2 s a trial on an H100, docs/performance.md). A trial that raises
  leaves the process in a state it cannot vouch for: the worker retires after
  reporting it, and the next trial on that lane starts a new worker.
- ``auto`` (default): ``worker`` on a GPU, ``process`` on the CPU (where a fork
  costs little).

Workers and their children die with the study process (kill -9 included) and
ignore Ctrl-C, which the study process handles. An :class:`InlineWorker` runs
trials in the study process itself (``isolation = "none"``). A :class:`WorkerPool`
is this machine's set of workers: placed on the GPUs (``trials_per_gpu`` each) or
the CPU, started as soon as the data is loaded, so they load the model while the study process
loads the tokenizer, checks the study and tokenizes.
"""

from __future__ import annotations

import contextlib
import mmap
import multiprocessing
import os
import signal
import sys
import time
import traceback
from collections.abc import Iterable
from multiprocessing.connection import wait
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from .checkpoints import CheckpointStore, KeepStore
from .errors import AutoftError, StudyError, TrialFailed, raise_if_stopped, type_and_first_line
from .gpus import gpu_ids
from .halving import PAUSE
from .outcome import TrialOutcome
from .processes import die_with_parent
from .space import TrialConfig
from .threads import cpu_cores, omp_wait_policy

if TYPE_CHECKING:
    from .training import Reporter

PROGRESS_INTERVAL = 0.25  # seconds between progress messages
START_TIMEOUT = 600  # seconds a worker may take to load the model


def failure_reason(exc: BaseException) -> str:
    if isinstance(exc, AutoftError):  # its message names the culprit (a metric plugin, a file) already
        return str(exc)
    text = type_and_first_line(exc)
    if "out of memory" in text.lower():
        return f"out of memory: {str(exc).strip().splitlines()[0][:200]}"
    return text


def guarded_trial(bench: Any, number: int, config: TrialConfig, reporter: Any, store: Any) -> TrialOutcome:
    """Run a trial; an exception becomes a failed outcome with its reason."""
    return attempt_trial(bench, number, config, reporter, store)[0]


def attempt_trial(bench: Any, number: int, config: TrialConfig, reporter: Any, store: Any) -> tuple[TrialOutcome, bool]:
    """Run a trial: its outcome, and whether it raised an error the trial did not expect (not a
    :class:`TrialFailed`), after which the process may hold a broken CUDA context or leaked memory."""
    from .trial import run_trial  # imported by a worker process before its trials (:func:`_worker_main`)

    try:
        return run_trial(bench, number, config, reporter, store), False
    except TrialFailed as exc:
        return TrialOutcome(state="failed", reason=str(exc)), False
    except Exception as exc:  # a trial's error must not end the study
        return TrialOutcome(state="failed", reason=failure_reason(exc)), True


def runs_in_worker(isolation: str, env: dict[str, str]) -> bool:
    """Whether a worker with this environment runs its trials itself rather than forking one per trial:
    ``worker``, or ``auto`` on a GPU lane (its ``CUDA_VISIBLE_DEVICES`` names a GPU)."""
    return isolation == "worker" or (isolation == "auto" and bool(env.get("CUDA_VISIBLE_DEVICES")))


class Parked(NamedTuple):
    """A trial waiting at a rung on a worker (``pruner = "sha"``)."""

    events: Reporter  # its reporter, again once it resumes
    process: Any  # the worker process that holds its stopped process: the trial is lost if that one ends
    memory: int  # bytes its process holds of its own (weights, optimizer state)


class Worker:
    """Runs one trial at a time; the study process may drive several workers at once."""

    def __init__(self) -> None:
        self.number: int | None = None
        self.events: Reporter | None = None
        self.outcome: TrialOutcome | None = None
        self.held: set[str] = set()  # the models (aliases) this worker has loaded for its trials
        self.parked: dict[int, Parked] = {}  # trials paused at a rung here, by number

    #: whether a trial can pause at a rung and resume later (:data:`autoft.halving.PAUSE`), only
    #: where each trial has a process of its own to stop
    can_pause: bool = False

    @property
    def busy(self) -> bool:
        return self.number is not None

    def resume(self, number: int, stop: bool) -> None:
        """Resume a trial paused here; ``stop``: it ends at once, pruned (its answer at the rung)."""
        raise NotImplementedError

    def start(self, number: int, config: TrialConfig, events: Reporter, keep: bool = False) -> None:
        """Begin a trial; ``keep`` saves its model whatever its score."""
        raise NotImplementedError

    def finished(self) -> TrialOutcome | None:
        """The outcome, once, when the current trial has ended; else None."""
        if self.outcome is None:
            return None
        outcome, self.outcome, self.number, self.events = self.outcome, None, None, None
        return outcome

    def ready(self, tokens: Path | None = None, pad_id: int | None = None, models: dict | None = None) -> None:
        """Wait until the worker can run trials.

        ``tokens``: the token cache, if it was started without; ``pad_id``: the tokenizer's padding id,
        if it was started before the tokenizer was loaded; ``models``: the same for each other candidate
        model, ``{alias: (token cache, padding id)}``.
        """

    def stop(self) -> None:
        """Ask the worker to end once idle, without waiting."""

    def close(self) -> None:
        pass


class InlineWorker(Worker):
    """Runs trials in the study process itself."""

    def __init__(self, bench: Any):
        super().__init__()
        self.bench = bench
        self.store = CheckpointStore(bench.config.run_dir, bench.config.objective)

    def start(self, number: int, config: TrialConfig, events: Reporter, keep: bool = False) -> None:
        self.number, self.events = number, events
        self.held.add(config.model)
        bench = self.bench.for_model(config.model)
        self.outcome = guarded_trial(bench, number, config, events, KeepStore(self.store) if keep else self.store)


class ProcessWorker(Worker):
    """A worker process: forks a child per trial, or (``in_worker``) runs its trials itself.

    A worker that ended (it retired after a trial that raised, or it died) is started
    again, from the same spec and environment, when its next trial begins.
    """

    def __init__(self, spec: Any, env: dict[str, str] | None = None, name: str = "worker", in_worker: bool = False):
        super().__init__()
        self.name = name
        self.spec = spec
        self.env = dict(env or {})
        self.in_worker = in_worker
        self._handover: tuple = (None, None, None)  # what ready() was given, for a restart
        self._launch()

    def _launch(self) -> None:
        self.info: dict = {}  # what the worker process reports when it is ready: pid, the GPU it sees
        self._retiring = False
        ctx = multiprocessing.get_context("spawn")
        self.conn, child_conn = ctx.Pipe()
        env = {"OMP_WAIT_POLICY": omp_wait_policy(), **self.env}  # for library users, who skip the command line
        saved = {k: os.environ.get(k) for k in env}
        os.environ.update(env)
        # The worker ignores Ctrl-C from its first instruction (an ignored signal stays ignored across exec,
        # and Python then installs no KeyboardInterrupt handler): a Ctrl-C while it starts or unpickles its
        # data must not print its traceback; the study process handles the interruption.
        sigint = signal.signal(signal.SIGINT, signal.SIG_IGN) if _main_thread() else None
        try:
            self.process = ctx.Process(
                target=_worker_main, args=(self.spec, child_conn, self.in_worker), name=self.name, daemon=True
            )
            self.process.start()
        finally:
            if sigint is not None:
                signal.signal(signal.SIGINT, sigint)
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value
        child_conn.close()
        self._needs_tokens = self.spec.cache is None  # started before tokenizing: it waits for the cache
        self._ready = self._stopping = False

    def ready(self, tokens: Path | None = None, pad_id: int | None = None, models: dict | None = None) -> None:
        """Wait until the worker has loaded everything, handing it the token cache first if its spec had none.

        A worker starts loading the model as soon as it is made, so the study process can
        tokenize meanwhile and hand over the tokens when they are written.
        """
        if self._ready:
            return
        self._handover = (tokens, pad_id, models)
        if self._needs_tokens:
            if tokens is None:
                raise ValueError("this worker was started before tokenizing: give it the token cache")
            others = {alias: (str(cache), pad) for alias, (cache, pad) in (models or {}).items()}
            try:
                self.conn.send(("tokens", str(tokens), pad_id, others))
            except OSError:  # it ended already (its model did not load): its message says why
                pass
        self._wait_ready()
        self._ready = True

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            raise_if_stopped()  # a Ctrl-C a library swallowed still stops the wait
            if self.conn.poll(0.2):
                try:
                    message = self.conn.recv()
                except (EOFError, OSError):
                    break
                if message[0] == "ready":
                    self.info = message[1]
                    return
                if message[0] == "error":
                    self.close()
                    raise StudyError(message[1])
            elif not self.process.is_alive():
                break
        self.close()
        raise StudyError(f"the trial worker process could not start ({_death(self.process.exitcode)})")

    @property
    def can_pause(self) -> bool:  # type: ignore[override]
        return not self.in_worker

    @property
    def ended(self) -> bool:
        """The worker process is gone or going: it retired after a trial, or died."""
        return self._retiring or not self.process.is_alive()

    def start(self, number: int, config: TrialConfig, events: Reporter, keep: bool = False) -> None:
        if self.ended:
            self._restart()
        self.number, self.events, self.outcome = number, events, None
        self.held.add(config.model)
        self._done: TrialOutcome | None = None
        self.conn.send(("trial", number, config.to_dict(), keep))

    def resume(self, number: int, stop: bool) -> None:
        parked = self.parked.pop(number)
        self.number, self.events, self.outcome = number, parked.events, None
        self._done = None
        if parked.process is not self.process or self.ended:  # the trial died with its worker
            self.outcome = TrialOutcome(state="failed", reason="its trial worker ended while it waited at a rung")
            return
        self.conn.send(("resume", number))
        self.conn.send(bool(stop))  # read by the trial's process once the worker has continued it

    def _restart(self) -> None:
        """A new worker process in place of one that ended, loaded as the first was."""
        self.close()
        self.held = set()
        self._launch()
        self.ready(*self._handover)

    def pump(self) -> None:
        """Handle every message waiting from the worker."""
        while self.busy and self.outcome is None and self.conn.poll(0):
            try:
                message = self.conn.recv()
            except EOFError:
                self.lost()
                return
            kind = message[0]
            if kind == "progress":
                self.events.progress(*message[1:])
            elif kind == "eval":
                self.conn.send(self.events.evaluated(*message[1:]))
            elif kind == "done":
                self._done = message[1]
            elif kind == "paused":  # the trial waits at its rung: this worker is free for another
                self.parked[self.number] = Parked(self.events, self.process, message[2])
                self.number, self.events = None, None
                return
            elif kind == "exit":
                self.outcome = self._done or TrialOutcome(state="failed", reason=_death(message[2]))
                self._retiring = len(message) > 3 and bool(message[3])

    def lost(self) -> None:
        """The worker process is gone mid-trial: the trial fails with how it ended; the next starts a new one."""
        self.process.join(timeout=5)  # its pipe closed as it exited: let it finish, for its exit status
        self.outcome = TrialOutcome(state="failed", reason=f"trial worker died ({_death(self.process.exitcode)})")
        self._retiring = True

    def stop(self) -> None:
        """Ask an idle worker to end, without waiting (it exits while the study process goes on)."""
        if not self.busy and not self._stopping:
            self._stopping = True
            with contextlib.suppress(OSError, ValueError):
                self.conn.send(("stop",))

    def close(self) -> None:
        """Stop the worker and wait for it; a trial still running is killed with it.

        A busy worker gets SIGTERM, which it turns into a normal exit (its semaphores released: killed,
        the resource tracker would report them leaked at shutdown), and SIGKILL after 10 s; its trial's
        process dies with it. A worker still loading has nothing to finish: it is killed at once.
        """
        if not self.busy and self._ready:
            self.stop()
            self.process.join(timeout=10)
        elif self._ready and self.process.is_alive():
            self.process.terminate()
            self.process.join(timeout=10)
        if self.process.is_alive():
            self.process.kill()
            self.process.join()
        self.conn.close()


def wait_any(workers: Iterable[Worker], timeout: float = 0.5) -> list[tuple[Worker, TrialOutcome]]:
    """Pump busy workers until at least one trial ends (or ``timeout`` passes); return the ended trials."""
    raise_if_stopped()
    busy = [w for w in workers if w.busy]
    ended = [(w, o) for w in busy if (o := w.finished()) is not None]
    if ended:
        return ended
    processes = [w for w in busy if isinstance(w, ProcessWorker)]
    if not processes:
        return []
    ready = wait([w.conn for w in processes] + [w.process.sentinel for w in processes], timeout)
    for w in processes:
        if w.conn in ready or w.process.sentinel in ready:
            w.pump()
            if w.outcome is None and not w.process.is_alive() and not w.conn.poll(0):
                w.lost()
    return [(w, o) for w in busy if (o := w.finished()) is not None]


def cpu_lanes(setting: str | int, cores: int) -> int:
    """How many trials train at once on a machine without a GPU.

    ``auto`` is 2 where there are 2 or more cores: a small model's step does not use many cores well
    (MiniLM-L6 on 2 cores: two trials on a core each train about 1.3 times the samples a second of one
    trial on both, docs/performance.md). The default is 1: with two in flight, which trial reaches a rung
    or ends first depends on timing, so a seeded study no longer gives the same trials run to run.
    """
    if setting == "auto":
        return 2 if cores >= 2 else 1
    return int(setting)


def worker_lanes(bench: Any) -> list[dict[str, str]]:
    """The environment of each trial worker: ``trials_per_gpu`` per GPU, or ``cpu_trials`` without one.

    Trials sharing the CPU each get their share of its cores (``OMP_NUM_THREADS``, which torch reads
    when it starts), unless the user set ``OMP_NUM_THREADS``: left alone, each would start a thread
    per core and the trials would fight over them.
    """
    search, device = bench.config.search, bench.config.train.device
    gpus = gpu_ids(search.gpus) if device in ("auto", "cuda") else []
    lanes = [{"CUDA_VISIBLE_DEVICES": str(g)} for g in gpus for _ in range(search.trials_per_gpu)]
    if lanes:
        return lanes
    cores = cpu_cores()
    count = max(1, min(cpu_lanes(search.cpu_trials, cores), search.n_trials))
    env = {"CUDA_VISIBLE_DEVICES": ""} if device == "cpu" else {}
    if count > 1 and "OMP_NUM_THREADS" not in os.environ:
        env["OMP_NUM_THREADS"] = str(max(1, cores // count))
    return [dict(env) for _ in range(count)]


class WorkerPool:
    """This machine's trial workers, started on first need and made ready on first use.

    Each worker process sees only its GPU (CUDA_VISIBLE_DEVICES). ``isolation = "none"``
    runs trials in the study process instead (one at a time).
    """

    def __init__(self, bench: Any, display: Any):
        self.bench = bench
        self.display = display
        self._workers: list[Worker] | None = None
        self._started = ""  # what start said, or would have said
        self._where = ""  # where the workers run, in words

    def start(self, *, quiet: bool = False) -> None:
        """Start the workers; they load the model while this process goes on (checking, tokenizing).

        ``quiet``: say it later (:meth:`announce`), once the study knows it has trials to run.
        """
        if self._workers is not None:
            return
        if self.bench.config.search.isolation == "none" or not sys.platform.startswith("linux"):
            self._workers = [InlineWorker(self.bench)]
            return
        lanes = worker_lanes(self.bench)
        isolation = self.bench.config.search.isolation
        gpus = sorted({env["CUDA_VISIBLE_DEVICES"] for env in lanes if env.get("CUDA_VISIBLE_DEVICES")})
        threads = lanes[0].get("OMP_NUM_THREADS")
        self._where = f"{len(gpus)} GPU(s)" if gpus else f"the CPU, {threads} core(s) each" if threads else "the CPU"
        self._started = self._starting(len(lanes))
        if not quiet:
            self.announce()
        spec = self.bench.spec()
        workers: list[Worker] = []
        try:
            for i, env in enumerate(lanes):
                in_worker = runs_in_worker(isolation, env)
                workers.append(ProcessWorker(spec, env, name=f"autoft-worker-{i}", in_worker=in_worker))
        except BaseException:
            for worker in workers:
                worker.close()
            raise
        self._workers = workers

    def _starting(self, count: int) -> str:
        return f"[dim]starting {count} trial worker(s) on {self._where} (each loads the model once)[/]"

    def keep(self, count: int) -> None:
        """Close the workers past the first ``count`` (one always stays): a resumed study may have fewer
        trials left to start than there are lanes, and a spare worker would hold a model for nothing."""
        count = max(1, count)
        if self._workers is None or len(self._workers) <= count:
            return
        spare, self._workers = self._workers[count:], self._workers[:count]
        for worker in spare:
            worker.close()
        if self._started:
            self._started = self._starting(count)

    def announce(self) -> None:
        """Say that the workers started (after a quiet :meth:`start`)."""
        if self._started:
            self.display.print(self._started)

    @property
    def workers(self) -> list[Worker]:
        """Every worker, ready for trials (a model that fails to load stops the study here)."""
        self.start()
        others = {b.alias: (b.cache, b.pad_id) for b in self.bench.every_model() if b is not self.bench}
        for worker in self._workers:
            worker.ready(self.bench.cache, self.bench.pad_id, others)
        return self._workers

    @property
    def lanes(self) -> int:
        """How many trials run at once here: the workers started (1 before :meth:`start`)."""
        return len(self._workers) if self._workers is not None else 1

    def idle(self) -> list[Worker]:
        return [w for w in self.workers if not w.busy]

    def pick(self, idle: list[Worker], model: str) -> Worker:
        """The idle worker for a trial of ``model`` (an alias): one that holds it already, else the one
        holding the fewest other models (it loads this one once, for this and later trials).

        Every worker loads the study's first model when it starts.
        """
        if model in ("", self.bench.alias):
            return idle[0]
        holding = [w for w in idle if model in w.held]
        return holding[0] if holding else min(idle, key=lambda w: len(w.held))

    def room_to_wait(self) -> bool:
        """Whether the memory left here would hold another trial waiting at a rung, with as much again to
        spare: a waiting trial keeps its weights and optimizer state (``pruner = "sha"``)."""
        sizes = [parked.memory for w in self._workers or [] for parked in w.parked.values()]
        left = available_memory()
        return not sizes or left is None or left > 2 * max(sizes)

    def wait(self, timeout: float = 0.5) -> list[tuple[Worker, TrialOutcome]]:
        """The trials that ended (waiting up to ``timeout`` for one)."""
        return wait_any(self._workers or [], timeout)

    def run(self, number: int, config: TrialConfig, events: Reporter, *, keep: bool = False) -> TrialOutcome:
        """Train one trial and wait for it; ``keep`` saves its model whatever its score."""
        worker = self.workers[0]
        worker.start(number, config, events, keep=keep)
        while True:
            for _, outcome in wait_any([worker]):
                return outcome

    def stop(self) -> None:
        """No more trials here: idle worker processes end while this process finishes up."""
        for worker in self._workers or []:
            worker.stop()

    def close(self) -> None:
        """End every worker (one still loading at once); a later need starts new ones."""
        for worker in self._workers or []:
            worker.close()
        self._workers = None


# --- inside the worker process -------------------------------------------------------------------


class _PipeReporter:
    def __init__(self, conn: Any, gate: Any = None):
        self.conn = conn
        self.gate = gate  # a byte shared with the worker: 1 while this trial waits at a rung
        self.last = 0.0

    def progress(self, step: int, total: int, loss: float | None) -> None:
        now = time.monotonic()
        if now - self.last >= PROGRESS_INTERVAL or step == total:
            self.last = now
            self.conn.send(("progress", step, total, loss))

    def evaluated(self, index: int, epoch: float, metrics: dict[str, float], resource: int, final: bool) -> bool:
        self.conn.send(("eval", index, epoch, metrics, resource, final))
        answer = self.conn.recv()
        if answer == PAUSE:  # wait, stopped, until the study resumes this trial; then its answer comes
            self.gate[0] = 1  # so the worker can tell this stop from Ctrl-Z's
            while self.gate[0]:  # a continue the worker did not send (fg after Ctrl-Z) is no resume
                os.kill(os.getpid(), signal.SIGSTOP)
            answer = self.conn.recv()
        return bool(answer)


def _worker_main(spec: Any, conn: Any, in_worker: bool = False) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, _exit_on_sigterm)  # ProcessWorker.close, while a trial runs
    die_with_parent(multiprocessing.parent_process().pid)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    import warnings

    warnings.filterwarnings("ignore", category=FutureWarning)
    from . import trial  # noqa: F401 - what every trial runs (torch and all), imported once, before trials fork

    try:
        bench = spec.build()
        _warm_up_metrics(bench)
        if in_worker:
            _warm_up_device(bench.device)  # while the study process tokenizes: the trials share it
        if bench.encoded is None:  # started before the study process tokenized: wait for its cache
            command = conn.recv()
            if command[0] != "tokens":
                return
            bench.use_cache(Path(command[1]))
            if command[2] is not None:  # started before the study process loaded the tokenizer
                bench.pad_id = command[2]
            for alias, (cache, pad_id) in command[3].items():  # the other candidate models' tokens
                other = bench.for_model(alias)
                other.use_cache(Path(cache))
                other.pad_id = pad_id
    except EOFError:  # the study process is gone
        return
    except Exception as exc:
        conn.send(("error", str(exc) if str(exc) else failure_reason(exc)))
        return
    store = CheckpointStore(bench.config.run_dir, bench.config.objective)
    _shared_locks()
    import torch

    where = {"pid": os.getpid(), "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES")}
    conn.send(("ready", {**where, "threads": torch.get_num_threads()}))
    parked: dict[int, tuple[int, mmap.mmap]] = {}  # trial number -> the process (and gate) of a waiting trial
    while True:
        try:
            command = conn.recv()
        except (EOFError, OSError):
            return
        if command[0] == "resume":  # its answer follows on the pipe, for the trial's process to read
            pid, gate = parked.pop(command[1])
            gate[0] = 0
            os.kill(pid, signal.SIGCONT)
            _wait_for_trial(conn, command[1], pid, gate, parked)
            continue
        if command[0] != "trial":
            return
        _, number, config_dict, keep = command
        config = TrialConfig.from_dict(config_dict, bench.registry)
        trial_bench = bench.for_model(config.model)
        try:
            trial_bench.base  # noqa: B018 - each model loads once per worker, before its trials fork
        except Exception as exc:
            conn.send(("done", TrialOutcome(state="failed", reason=f"model {config.model}: {failure_reason(exc)}")))
            conn.send(("exit", number, 0))
            continue
        if in_worker:
            outcome, raised = attempt_trial(
                trial_bench, number, config, _PipeReporter(conn), KeepStore(store) if keep else store
            )
            conn.send(("done", outcome))
            conn.send(("exit", number, 0, raised))
            if raised:  # a broken CUDA context or leaked memory must not reach the next trial
                return
            continue
        worker = os.getpid()
        gate = mmap.mmap(-1, 1)  # shared with the trial's process: 1 while it waits at a rung (pruner = "sha")
        mask = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})  # held until each side has its handler
        pid = os.fork()
        if pid == 0:  # the trial's own process
            signal.signal(signal.SIGTERM, signal.SIG_DFL)  # not the worker's way out: a trial just ends
            signal.pthread_sigmask(signal.SIG_SETMASK, mask)
            code = 0
            try:
                die_with_parent(worker)
                store = KeepStore(store) if keep else store
                outcome = guarded_trial(trial_bench, number, config, _PipeReporter(conn, gate), store)
                conn.send(("done", outcome))
            except BaseException:  # pragma: no cover - last resort
                traceback.print_exc()
                code = 1
            finally:
                os._exit(code)
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)
        _wait_for_trial(conn, number, pid, gate, parked)


def _wait_for_trial(conn: Any, number: int, pid: int, gate: mmap.mmap, parked: dict) -> None:
    """Wait while a trial's process runs: until it ends, or stops itself to pause at a rung (it is parked).

    While it runs, only it reads and writes the pipe; the worker takes the pipe back when it stops or ends.
    A stop the trial did not ask for (Ctrl-Z stops the whole process group; ``fg`` continues it) is no pause.
    """
    while True:
        _, status = os.waitpid(pid, os.WUNTRACED)
        if not os.WIFSTOPPED(status):
            break
        if gate[0]:
            parked[number] = (pid, gate)
            conn.send(("paused", number, private_memory(pid)))
            return
    conn.send(("exit", number, os.waitstatus_to_exitcode(status)))


def private_memory(pid: int) -> int:
    """Bytes of memory a process holds of its own (not shared with the process it was forked from), 0 if unknown."""
    try:
        text = Path(f"/proc/{pid}/smaps_rollup").read_text()
    except OSError:
        return 0
    fields = dict(line.split(":", 1) for line in text.splitlines()[1:] if ":" in line)
    kb = sum(int(fields.get(k, "0 kB").split()[0]) for k in ("Private_Clean", "Private_Dirty", "Swap"))
    return kb * 1024


def available_memory() -> int | None:
    """Bytes of memory the system can give without swapping (Linux's MemAvailable), or None."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def _exit_on_sigterm(signum: int, frame: Any) -> None:
    """End the worker as a normal exit would: multiprocessing's finalizers release what it holds."""
    raise SystemExit(128 + signum)


def _warm_up_device(device: Any) -> None:
    """Create the GPU's context and its matrix-multiply handle before the first trial needs them.

    Only a worker that runs its trials itself may: a CUDA context does not survive a fork.
    """
    import torch

    if device.type != "cuda":
        return
    x = torch.ones(8, 8, device=device)
    with torch.autocast("cuda", dtype=torch.bfloat16, enabled=torch.cuda.is_bf16_supported()):
        (x @ x).sum().item()


def _shared_locks() -> None:
    """Create, before forking, the locks libraries would otherwise create in each trial's process.

    tqdm (peft and transformers use it) makes a multiprocessing lock on first use; made in a trial's
    process, which ends with os._exit, it would be reported as leaked.
    """
    from tqdm import tqdm

    tqdm.get_lock()


def _warm_up_metrics(bench: Any) -> None:
    """Score each metric once, before forking, so that trials inherit the libraries metrics import on first use.

    Metric plugins import their libraries (scikit-learn) when first computed, not when loaded; without
    this, every trial's process would import them again at its first evaluation. A metric that fails
    on these uniform probabilities fails for real, with its reason, in the trial.
    """
    import numpy as np

    k = len(bench.label_names)
    if k == 1:  # regression: numbers, and predictions as one column
        labels = np.arange(4, dtype=np.float32)
        proba = labels[:, None] + 0.5
        predicted = proba[:, 0]
    else:
        labels = np.arange(2 * k) % k
        proba = np.full((len(labels), k), 1.0 / k, dtype=np.float32)
        predicted = proba.argmax(axis=1)
    for metric in bench.metrics.values():
        with contextlib.suppress(Exception):
            metric(labels, predicted, proba)


def _main_thread() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()


def _death(code: int | None) -> str:
    if code is not None and code < 0:
        name = signal.Signals(-code).name
        hint = " (out of memory?)" if -code == signal.SIGKILL else ""
        return f"trial process was killed by {name}{hint}"
    return f"trial process exited with code {code} before reporting"
