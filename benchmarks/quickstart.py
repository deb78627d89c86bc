"""The README's quickstart, timed: ``autoft study run studies/quickstart.toml`` into a temporary folder."""

from __future__ import annotations

import sys
from pathlib import Path

from .common import ROOT
from .search import run_study_process


def run(workdir: Path) -> dict:
    out = workdir / "quickstart-runs"
    study = ROOT / "studies" / "quickstart.toml"
    cmd = [sys.executable, "-m", "autoft", "study", "run", str(study), "--no-progress"]
    cmd += ["--set", f'study.output_dir="{out}"']
    result = run_study_process(cmd, out / "quickstart", "quickstart", workdir / "quickstart.log")
    return {"command": "autoft study run studies/quickstart.toml --set study.output_dir='\"<tmp>\"'", **result}
