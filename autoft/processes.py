"""Small process helpers: is a process alive, and dying with the parent."""

from __future__ import annotations

import ctypes
import os
import signal
import sys


def pid_alive(pid: int) -> bool:
    """Whether a process with this id exists on this machine (zombies count as gone)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def die_with_parent() -> None:
    """Linux: have the kernel kill this process when its parent dies (kill -9 included)."""
    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except OSError:  # pragma: no cover - not glibc
        pass
