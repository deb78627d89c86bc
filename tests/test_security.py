"""No code from a model repository runs unless the study asks; weights are safetensors only;
plugin files load only when a study names them; SIGTERM stops a study cleanly."""

import json
import os
import signal
import subprocess
import sys
import time

import optuna

from autoft.config import load_study

CUSTOM_CODE = """
import pathlib
pathlib.Path(__file__).with_name("CODE_RAN").touch()
from transformers import BertConfig


class SneakyConfig(BertConfig):
    model_type = "sneaky"
"""


def test_model_code_from_a_repository_does_not_run_unless_trusted(tmp_path, tiny_bert, study_file, cli):
    import shutil

    model = tmp_path / "custom-model"
    shutil.copytree(tiny_bert, model)
    config = json.loads((model / "config.json").read_text())
    config["auto_map"] = {"AutoConfig": "configuration_sneaky.SneakyConfig"}
    config["model_type"] = "sneaky"
    (model / "config.json").write_text(json.dumps(config))
    (model / "configuration_sneaky.py").write_text(CUSTOM_CODE)
    path = study_file(model=model)
    assert load_study(path)[0].model.trust_remote_code is False
    result = cli("study", "run", path, "--no-progress")
    assert result.code == 2 and result.err.startswith("error: ")
    assert "trust_remote_code" in result.err
    assert not (model / "CODE_RAN").exists()


def test_sigterm_stops_the_study_like_ctrl_c(study_file, tmp_path):
    path = study_file(search={"n_trials": 50, "isolation": "none"}, space={"epochs": 30, "batch_size": 8})
    proc = subprocess.Popen(
        [sys.executable, "-m", "autoft", "study", "run", str(path), "--no-progress"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    db = tmp_path / "runs" / "tiny" / "study.db"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if db.exists():
            try:
                trials = optuna.load_study(study_name="tiny", storage=f"sqlite:///{db}").trials
            except Exception:
                trials = []
            if trials and trials[-1].state.name == "RUNNING":
                break
        time.sleep(0.3)
    proc.send_signal(signal.SIGTERM)
    out = proc.communicate(timeout=60)[0]
    assert proc.returncode == 143, out
    assert "terminated; run the same command again to resume" in out
    trial = optuna.load_study(study_name="tiny", storage=f"sqlite:///{db}").trials[-1]
    assert trial.state.name == "FAIL" and trial.user_attrs["reason"] == "terminated (SIGTERM)"
    assert os.path.exists(tmp_path / "runs" / "tiny" / "leaderboard.json")
