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


def die_with_parent(parent: int) -> None:
    """Linux: have the kernel kill this process when its parent ``parent`` dies (kill -9 included).

    A parent that died between starting this process and this call is caught too: the process
    has already been handed to another parent, so it ends at once.
    """
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL("libc.so.6", use_errno=True)
            libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
        except OSError:  # pragma: no cover - not glibc
            pass
    if os.getppid() != parent:
        os._exit(1)
