"""The benchmark harness runs end to end with --smoke (speed is measured there, never asserted here)."""

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from autoft.testing import sentiment_rows

ROOT = Path(__file__).resolve().parents[1]


def write_imdb_like(folder: Path) -> Path:
    """train.parquet and test.parquet with IMDb's columns (text, label 0/1), generated on the spot."""
    folder.mkdir()
    for split, rows, seed in (("train", 200, 0), ("test", 100, 1)):
        texts, labels = sentiment_rows(rows, seed)
        frame = pd.DataFrame({"text": texts, "label": [int(label == "pos") for label in labels]})
        frame.to_parquet(folder / f"{split}.parquet")
    return folder


def test_smoke_run_reports_both_sides_and_their_ratios(tmp_path):
    data = write_imdb_like(tmp_path / "imdb")
    out = tmp_path / "results.json"
    cmd = [sys.executable, "-m", "benchmarks", "--smoke", "--data", str(data), "--out", str(out)]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-4000:]

    results = json.loads(out.read_text())
    figures = {"throughput": ("samples_per_s", "epoch_s"), "search": ("wall_s", "best_validation")}
    for section, keys in figures.items():
        part = results[section]
        for key in keys:
            trainer, autoft = part["trainer"][key], part["autoft"][key]
            assert trainer > 0 and autoft > 0, (section, key)
            assert part["ratios"][key] == pytest.approx(autoft / trainer), (section, key)
    assert len(results["search"]["autoft"]["trials"]) == len(results["search"]["trainer"]["trials"]) == 1
    assert results["search"]["autoft"]["setup_s_per_trial"] is not None
    assert results["environment"]["torch"] and results["environment"]["transformers"]
    assert results["environment"]["device_name"] and results["date"]
    assert "autoft/Trainer" in proc.stdout and "training throughput" in proc.stdout
