"""Search backends: the interface a backend plugin implements (Optuna and Ray Tune are built-in plugins)."""

from __future__ import annotations

from ._base import Backend, NoBackendOptions, Pruning, RunningTrial, Search

__all__ = ["Backend", "NoBackendOptions", "Pruning", "RunningTrial", "Search"]
