"""Running a trial in its own process, so its memory and a crash stay with it.

The study process forks a child per trial. The child inherits the loaded data,
tokens and base model (copy-on-write: nothing is reloaded), trains, and talks to
the parent through a pipe: progress, each evaluation (the parent answers whether
to prune), and the outcome. If the child dies (a segfault, the out-of-memory
killer), the trial fails with that reason and the study goes on. The child dies
with its parent, and ignores Ctrl-C (the parent handles it).
"""

from __future__ import annotations

import ctypes
import multiprocessing
import os
import signal
import sys
import time
import traceback
from collections.abc import Callable
from typing import Any

from .errors import TrialFailed
from .trial import TrialOutcome

PROGRESS_INTERVAL = 0.25  # seconds between progress messages


class TrialEvents:
    """What the parent does with a trial's progress and evaluations (the backend fills these in)."""

    def progress(self, step: int, total: int, loss: float | None) -> None:
        pass

    def evaluated(self, index: int, epoch: float, metrics: dict[str, float]) -> bool:
        return False


def can_fork() -> bool:
    return sys.platform.startswith("linux") and "fork" in multiprocessing.get_all_start_methods()


def execute(work: Callable[[Any], TrialOutcome], events: TrialEvents, isolate: bool) -> TrialOutcome:
    """Run ``work(reporter)`` in a child process (or here, if not ``isolate``); return its outcome.

    Exceptions inside the work become a failed outcome with the reason.
    """
    if not isolate or not can_fork():
        return _guarded(work, events)
    return _in_child(work, events)


def _guarded(work: Callable[[Any], TrialOutcome], reporter: Any) -> TrialOutcome:
    try:
        return work(reporter)
    except TrialFailed as exc:
        return TrialOutcome(state="failed", reason=str(exc))
    except Exception as exc:  # a trial's error must not end the study
        return TrialOutcome(state="failed", reason=failure_reason(exc))


def failure_reason(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    first = text[0] if text else ""
    if "out of memory" in first.lower():
        return f"out of memory: {first[:200]}"
    return f"{type(exc).__name__}: {first[:300]}" if first else type(exc).__name__


class _PipeReporter:
    def __init__(self, conn: Any):
        self.conn = conn
        self.last = 0.0

    def progress(self, step: int, total: int, loss: float | None) -> None:
        now = time.monotonic()
        if now - self.last >= PROGRESS_INTERVAL or step == total:
            self.last = now
            self.conn.send(("progress", step, total, loss))

    def evaluated(self, index: int, epoch: float, metrics: dict[str, float]) -> bool:
        self.conn.send(("eval", index, epoch, metrics))
        return bool(self.conn.recv())


def _child(work: Callable[[Any], TrialOutcome], conn: Any) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _die_with_parent()
    try:
        outcome = _guarded(work, _PipeReporter(conn))
    except BaseException:  # pragma: no cover - last resort
        outcome = TrialOutcome(state="failed", reason=traceback.format_exc(limit=1).strip().splitlines()[-1])
    conn.send(("done", outcome))
    conn.close()


def _die_with_parent() -> None:
    """Linux: have the kernel kill this process when its parent dies (kill -9 included)."""
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except OSError:  # pragma: no cover - not glibc
        pass


def _in_child(work: Callable[[Any], TrialOutcome], events: TrialEvents) -> TrialOutcome:
    ctx = multiprocessing.get_context("fork")
    parent_conn, child_conn = ctx.Pipe()
    process = ctx.Process(target=_child, args=(work, child_conn), daemon=True)
    process.start()
    child_conn.close()
    outcome: TrialOutcome | None = None
    try:
        while outcome is None:
            if parent_conn.poll(0.2):
                try:
                    message = parent_conn.recv()
                except EOFError:
                    break
                kind = message[0]
                if kind == "progress":
                    events.progress(*message[1:])
                elif kind == "eval":
                    parent_conn.send(events.evaluated(*message[1:]))
                elif kind == "done":
                    outcome = message[1]
            elif not process.is_alive():
                # drain anything sent just before exit
                if parent_conn.poll(0):
                    continue
                break
    except BaseException:
        process.kill()
        process.join()
        raise
    finally:
        parent_conn.close()
    process.join(timeout=30)
    if outcome is None:
        return TrialOutcome(state="failed", reason=_death(process.exitcode))
    return outcome


def _death(code: int | None) -> str:
    if code is not None and code < 0:
        name = signal.Signals(-code).name
        hint = " (out of memory?)" if -code == signal.SIGKILL else ""
        return f"trial process was killed by {name}{hint}"
    return f"trial process exited with code {code} before reporting"


def worker_pid() -> int:
    return os.getpid()
