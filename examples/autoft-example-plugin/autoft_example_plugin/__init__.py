"""An example autoft plugin: the ``text_folders`` dataset and the ``cohen_kappa`` metric.

autoft finds this module through the ``autoft`` entry point in pyproject.toml
and calls the hooks below once, handing each a ``register`` callback.
"""

from __future__ import annotations

from autoft import hookimpl

from .metrics import COHEN_KAPPA
from .text_folders import TextFolders

__all__ = ["COHEN_KAPPA", "TextFolders"]


@hookimpl
def register_datasets(register):
    register(TextFolders)


@hookimpl
def register_metrics(register):
    register(COHEN_KAPPA)
