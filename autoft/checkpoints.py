"""Keeping the best trial's trained model so it need not be trained again.

A trial that finishes with a score better than every completed trial so far
saves its model to ``checkpoints/trial-<n>/`` (written to a temporary folder,
then renamed). Once the backend has recorded the trial, :meth:`settle` keeps only
the checkpoint of the study's best completed trial. Processes on one machine
coordinate through a lock file.
"""

from __future__ import annotations

import math
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import ModelError
from .fsutil import locked, write_json
from .processes import pid_alive

if TYPE_CHECKING:
    from .metrics import Objective


class CheckpointStore:
    def __init__(self, run_dir: Path, objective: Objective):
        self.root = Path(run_dir) / "checkpoints"
        self.objective = objective

    def path(self, number: int) -> Path:
        return self.root / f"trial-{number}"

    def has(self, number: int) -> bool:
        """Whether trial ``number``'s checkpoint is here, whole: a damaged one counts as none (it is retrained)."""
        from .saved import DamagedFile, check_model_folder, read_head_spec, read_safetensors

        folder = self.path(number)
        if not (folder / "config.json").is_file():
            return False
        try:
            check_model_folder(folder)
            read_head_spec(folder, "")
            for weights in folder.glob("*.safetensors"):
                read_safetensors(weights, "")
        except (DamagedFile, ModelError):
            return False
        return True

    def _best_value(self) -> float | None:
        """The value of the best checkpoint so far; a missing or damaged best.json is ignored (rewritten by settle)."""
        from .saved import DamagedFile, read_json

        try:
            value = read_json(self.root / "best.json", "").get("value")
        except DamagedFile:
            return None
        ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
        return float(value) if ok else None

    def claim(self, number: int, value: float, *, always: bool = False) -> Path | None:
        """A temporary folder to save trial ``number`` into if ``value`` beats the best so far (or ``always``)."""
        with locked(self.root / ".lock"):
            if not always and not self.objective.better(value, self._best_value()):
                return None
        folder = Path(tempfile.mkdtemp(dir=self.root, prefix=f".trial-{number}.pid{os.getpid()}.", suffix=".tmp"))
        os.chmod(folder, 0o755)
        return folder

    def commit(self, number: int, folder: Path) -> None:
        """Move a saved trial folder into place."""
        target = self.path(number)
        with locked(self.root / ".lock"):
            if target.is_dir() and not target.is_symlink():
                shutil.rmtree(target)
            elif target.exists() or target.is_symlink():
                target.unlink()  # not a checkpoint: a stray file in its place
            folder.rename(target)

    def settle(self, best_number: int | None, best_value: float | None, finished: set[int]) -> None:
        """Record the study's best completed trial; delete the checkpoints of other finished trials.

        Checkpoints of trials still running elsewhere are left alone, and so are
        temporary folders of live processes.
        """
        with locked(self.root / ".lock"):
            if best_number is not None:
                write_json(self.root / "best.json", {"trial": best_number, "value": best_value})
            for child in self.root.glob("trial-*"):
                number = int(child.name.split("-", 1)[1]) if child.name.split("-", 1)[1].isdigit() else None
                if number != best_number and number in finished:
                    shutil.rmtree(child, ignore_errors=True)
            for child in self.root.glob(".trial-*.tmp"):
                match = re.search(r"\.pid(\d+)\.", child.name)
                if match is None or not pid_alive(int(match.group(1))):
                    shutil.rmtree(child, ignore_errors=True)


class KeepStore:
    """A checkpoint store that takes a trial's model whatever its score (to rebuild a missing best)."""

    def __init__(self, store: CheckpointStore):
        self.store = store

    def claim(self, number: int, value: float) -> Path:
        return self.store.claim(number, value, always=True)

    def commit(self, number: int, folder: Path) -> None:
        self.store.commit(number, folder)
