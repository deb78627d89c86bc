"""Custom classification heads: an MLP in place of the model's final linear classifier.

Any strategy can use it: the MLP takes the place of the last linear layer that
maps to the labels (``classifier`` in BERT and DistilBERT, ``classifier.out_proj``
in RoBERTa), so the model's own pooling and pre-classifier layers stay. A saved
model with a custom head carries ``autoft_head.json``; :func:`load_with_head`
rebuilds the head before loading the weights.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

from torch import nn

from .anatomy import head_modules
from .models import init_new_parameters
from .settings import HeadSpec

HEAD_FILE = "autoft_head.json"
ACTIVATIONS = {"gelu": nn.GELU, "relu": nn.ReLU, "tanh": nn.Tanh, "silu": nn.SiLU}


def mlp(in_features: int, out_features: int, spec: HeadSpec, **factory) -> nn.Sequential:
    """The MLP; ``factory`` (``device``, ``dtype``) goes to its linear layers."""
    return nn.Sequential(
        nn.Linear(in_features, spec.hidden_size, **factory),
        ACTIVATIONS[spec.activation](),
        nn.Dropout(spec.dropout),
        nn.Linear(spec.hidden_size, out_features, **factory),
    )


def final_classifier(model: nn.Module) -> str:
    """Qualified name of the last linear layer of the head that outputs one value per label."""
    num_labels = model.config.num_labels
    found = ""
    for top in head_modules(model):
        for name, module in getattr(model, top).named_modules(prefix=top):
            if isinstance(module, nn.Linear) and module.out_features == num_labels:
                found = name
    if not found:
        raise ValueError(f"cannot find the final classifier layer of {type(model).__name__}")
    return found


def install_head(model: nn.Module, spec: HeadSpec, seed: int) -> nn.Module:
    """Replace the final classifier with an MLP initialised from ``seed``; return the model."""
    name = final_classifier(model)
    parent_name, _, attr = name.rpartition(".")
    parent = model.get_submodule(parent_name) if parent_name else model
    old: nn.Linear = getattr(parent, attr)
    # built without initialising (nor drawing from the global random state), then initialised as new parameters are
    head = mlp(old.in_features, old.out_features, spec, device="meta", dtype=old.weight.dtype)
    setattr(parent, attr, head.to_empty(device=old.weight.device))
    init_new_parameters(model, [f"{name}.{n}" for n, _ in head.named_parameters()], seed)
    return model


def save_head(folder: Path, spec: HeadSpec | None) -> None:
    if spec is not None:
        (Path(folder) / HEAD_FILE).write_text(json.dumps(asdict(spec)))


def read_head(folder: Path) -> HeadSpec | None:
    path = Path(folder) / HEAD_FILE
    return HeadSpec(**json.loads(path.read_text())) if path.is_file() else None
