"""No code from a model repository runs unless the study asks (safetensors-only weights and local plugin
files named by the study are tested in test_bad_input and test_plugins)."""

import json

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
