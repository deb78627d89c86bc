"""Reading a saved model folder (``runs/<study>/best/``): the model, its tokenizer and its max_length.

Only what loading needs, so ``autoft predict`` starts without the study-file,
plugin and search machinery.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import torch

from .errors import ModelError, first_line
from .heads import install_head, read_head
from .models import quiet_transformers

#: [model] max_length when a study file leaves it out (the default of autoft.config.ModelSection)
DEFAULT_MAX_LENGTH = 128


def load_trained(folder: Path, tokenizer: bool = True) -> tuple[Any, Any]:
    """A fine-tuned model (safetensors only) and, if asked, its tokenizer, from a saved folder.

    A custom head (``autoft_head.json``) is rebuilt before the weights are loaded.
    """
    from transformers import AutoConfig, AutoModelForSequenceClassification, AutoTokenizer

    quiet_transformers()
    folder = Path(folder)
    if not (folder / "config.json").is_file():
        raise ModelError(f"'{folder}' is not a saved model folder (no config.json)")
    try:
        head = read_head(folder)
        if head is None:
            model = AutoModelForSequenceClassification.from_pretrained(
                folder, use_safetensors=True, dtype=torch.float32
            )
        else:
            model = AutoModelForSequenceClassification.from_config(AutoConfig.from_pretrained(folder))
            install_head(model, head, seed=0)
            load_safetensors(model, folder)
        tok = AutoTokenizer.from_pretrained(folder) if tokenizer else None
    except ModelError:
        raise
    except Exception as exc:
        first = first_line(exc)
        raise ModelError(f"cannot load the model in '{folder}': {first}") from exc
    model.eval()
    return model, tok


def load_safetensors(model: torch.nn.Module, folder: Path) -> None:
    """Load every weight of ``model`` from the folder's safetensors files; a missing weight is an error."""
    from safetensors.torch import load_file

    files = sorted(folder.glob("*.safetensors"))
    if not files:
        raise ModelError(f"'{folder}' has no .safetensors weights")
    state: dict[str, torch.Tensor] = {}
    for f in files:
        state.update(load_file(f))
    missing, _ = model.load_state_dict(state, strict=False)
    persistent = {n for n, _ in model.named_parameters()}
    lost = sorted(set(missing) & persistent)
    if lost:
        raise ModelError(f"'{folder}' lacks weights for {', '.join(lost[:3])}")


def trained_max_length(folder: Path, tokenizer: Any) -> int:
    """The max_length the model was trained with, from the folder's study.toml.

    Without a study.toml, the tokenizer's limit (512 where it has none). A study.toml
    that cannot be read, or whose ``[model] max_length`` is not a positive integer,
    is an error: guessing would silently truncate texts differently from training.
    """
    path = Path(folder) / "study.toml"
    if not path.exists():
        limit = tokenizer.model_max_length
        return limit if limit and limit < 100_000 else 512
    fix = "restore it or pass --max-length"
    try:
        with open(path, "rb") as f:
            study = tomllib.load(f)
    except tomllib.TOMLDecodeError as exc:
        raise ModelError(f"'{path}' cannot be read (invalid TOML: {first_line(exc)}); {fix}") from exc
    except UnicodeDecodeError as exc:
        raise ModelError(f"'{path}' cannot be read (not UTF-8 text at byte {exc.start}); {fix}") from exc
    except OSError as exc:
        raise ModelError(f"'{path}' cannot be read ({exc.strerror or first_line(exc)}); {fix}") from exc
    model = study.get("model", {})
    if not isinstance(model, dict):
        raise ModelError(f"'{path}': [model] is not a table; {fix}")
    value = model.get("max_length", DEFAULT_MAX_LENGTH)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ModelError(f"'{path}': [model] max_length = {value!r} is not a positive integer; {fix}")
    return value
