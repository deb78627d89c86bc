"""Search backends: Optuna (default) and Ray Tune, behind one small interface."""

from __future__ import annotations

from ._base import Backend


def get_backend(name: str) -> Backend:
    if name == "optuna":
        from ._optuna import OptunaBackend

        return OptunaBackend()
    if name == "ray":
        from ._ray import RayBackend

        return RayBackend()
    raise ValueError(f"unknown backend {name!r}")


__all__ = ["Backend", "get_backend"]
