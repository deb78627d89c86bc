"""The autoft exception family. Only the CLI turns these into messages for the user."""

from __future__ import annotations

import contextlib
import errno
import os
import re
import signal
import threading
from collections.abc import Iterator


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message, or its type's name when it has none (for one-line errors)."""
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


def one_line(text: str) -> str:
    """``text`` with line breaks and other control characters escaped (``\\n``), for one-line messages."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def type_and_first_line(exc: BaseException, limit: int = 300) -> str:
    """``"ValueError: <first line>"`` (the line cut at ``limit``), or the type's name alone when it says nothing."""
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0][:limit]}" if lines else type(exc).__name__


#: what the machine's storage refuses, rather than autoft or its input: a full disk, a quota, a read-only mount
STORAGE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS})
#: the same, as libraries that are not Python's own say it (safetensors' Rust writer, SQLite through SQLAlchemy)
STORAGE_WORDS = ("No space left on device", "Disk quota exceeded", "database or disk is full", "Read-only file system")
_TEMPORARY = re.compile(r"/\.([^/]+?)\.[A-Za-z0-9_]{8}\.tmp(?=/|$)")  # fsutil's temporary siblings


def storage_refusal(exc: BaseException) -> str | None:
    """One line on a write the storage refused (disk full, quota, read-only), found anywhere in ``exc``'s
    chain; None for any other error (a bug keeps its traceback)."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, OSError) and seen.errno in STORAGE_ERRNOS:
            target = seen.filename2 or seen.filename  # a copy's target is its second name
            name = _TEMPORARY.sub(r"/\1", str(target)) if target else None
            return f"cannot write{f' {name!r}' if name else ''}: {os.strerror(seen.errno)}"
        words = next((w for w in STORAGE_WORDS if w in str(seen)), None)
        if words:
            return f"cannot write: {words}"
        seen = seen.__cause__ or seen.__context__
    return None


def require(packages: tuple[str, ...], feature: str, extra: str) -> None:
    """Fail in one line when an optional dependency of ``feature`` is missing, naming the extra to install."""
    import importlib.util

    missing = [name for name in packages if importlib.util.find_spec(name) is None]
    if missing:
        verb = "is" if len(missing) == 1 else "are"
        raise ConfigError(
            f"{feature} needs {' and '.join(missing)}, which {verb} not installed: pip install 'autoft[{extra}]'"
        )


class AutoftError(Exception):
    """Base of every error autoft reports to the user as one line."""

    exit_code = 2


class ConfigError(AutoftError):
    """A study file, or an option in it, is invalid."""


class PluginError(AutoftError):
    """A plugin cannot be loaded, or names clash, or a name is unknown."""


class DataError(AutoftError):
    """A dataset cannot be read or fails validation."""


class ModelError(AutoftError):
    """A model or tokenizer cannot be found or loaded."""


class StudyError(AutoftError):
    """A study cannot run: storage, resume or run-folder problems."""


class Terminated(KeyboardInterrupt):
    """SIGTERM (a scheduler or ``kill`` stopping the study): handled like Ctrl-C, reported as exit 143."""


#: the stop signal the study process received, if any (``on_stop_signal``); ``raise_if_stopped`` acts on it
_stopped: list[int] = []
_held = 0  # how many :func:`stop_signals_held` blocks are open


def on_stop_signal(signum: int, frame: object) -> None:
    """The study process's handler for Ctrl-C and SIGTERM: note the signal, then raise its exception.

    A library can swallow that exception: CPython's C-level attribute probes (``PyObject_HasAttr``
    before 3.13) drop any exception raised under them, so a Ctrl-C that lands while transformers
    imports its modules lazily can vanish, and the study went on to wait for ever on a worker the
    same Ctrl-C had stopped. The note stays; the study process checks it where it waits.
    """
    _stopped.append(signum)
    if not _held:
        raise_if_stopped()


@contextlib.contextmanager
def stop_signals_held() -> Iterator[None]:
    """Hold Ctrl-C and SIGTERM until the block is done, then raise the one that came meanwhile.

    For writes to the study's storage (also a decorator): raised in the middle of one, the signal could
    record half a trial's outcome, or leave a transaction holding SQLite's lock, on which the interrupted
    study's own last writes would wait (60 s, the storage's timeout). A signal before the block is left to
    the code that already saw it (the interruption's own writes run in these blocks).
    """
    global _held
    if threading.current_thread() is not threading.main_thread():  # signals reach the main thread only
        yield
        return
    before = len(_stopped)
    _held += 1
    try:
        yield
    finally:
        _held -= 1
    if not _held and len(_stopped) > before:
        raise_if_stopped()


def raise_if_stopped() -> None:
    """Raise the exception of the last stop signal received (again, where a library swallowed it)."""
    if _stopped:
        raise Terminated() if _stopped[-1] == signal.SIGTERM else KeyboardInterrupt()


def forget_stop_signals() -> None:
    _stopped.clear()


class TrialFailed(Exception):
    """A trial could not finish; the study records the reason and goes on."""
