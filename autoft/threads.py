"""The threads of autoft's processes: the tokenizer's, OpenMP's, and each trial's share of the cores.

Light on purpose (the standard library only): the command line applies
:func:`set_process_defaults` before it imports anything heavy.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

#: set where autoft turned the tokenizer's threads off itself (the user set nothing)
THREADS_OFF_BY_AUTOFT = "_AUTOFT_TOKENIZERS_OFF"


def set_process_defaults() -> None:
    """What autoft's command line sets for itself and the processes it starts, where the user set nothing.

    The fast tokenizer's threads go off (trials fork; a fork after they ran would warn, or deadlock
    with them in use): :func:`tokenizer_threads` turns them on while a study tokenizes. OpenMP threads
    that spin while they wait collapse (100x slower) when the cores are shared with anything else;
    sleeping costs little when they are not. Both must be set before the libraries load.
    """
    if "TOKENIZERS_PARALLELISM" not in os.environ:
        os.environ["TOKENIZERS_PARALLELISM"] = "false"
        os.environ[THREADS_OFF_BY_AUTOFT] = "1"
    os.environ["OMP_WAIT_POLICY"] = omp_wait_policy()


def omp_wait_policy() -> str:
    """OpenMP's wait policy for autoft's processes: the user's, else PASSIVE (threads sleep while they wait)."""
    return os.environ.get("OMP_WAIT_POLICY", "PASSIVE")


@contextlib.contextmanager
def tokenizer_threads() -> Iterator[None]:
    """The fast tokenizer's threads on while a study tokenizes its splits (16 cores: several times faster).

    Only where :func:`set_process_defaults` turned them off: here they run while nothing forks, and
    are off again before anything can; a value the user set is kept.
    """
    if os.environ.get(THREADS_OFF_BY_AUTOFT) != "1":
        yield
        return
    os.environ["TOKENIZERS_PARALLELISM"] = "true"
    try:
        yield
    finally:
        os.environ["TOKENIZERS_PARALLELISM"] = "false"


def cpu_cores() -> int:
    """The cores this process may run on (its affinity, which containers and ``taskset`` narrow)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # not Linux
        return max(1, os.cpu_count() or 1)
