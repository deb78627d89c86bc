"""Where things are inside a Hugging Face sequence classifier: head, body, embeddings, layers.

Strategies and the training loop use these to choose what trains; they work
for any model whose backbone sits under ``model.base_model_prefix`` (BERT,
DistilBERT, RoBERTa, DeBERTa, ELECTRA, XLM-R, MPNet, ...).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # torch is imported where a function needs it: `autoft plugins list` loads no torch
    from torch import nn

#: attention projections for LoRA's "attention" target set, by model type
ATTENTION_MODULES = {
    "bert": ["query", "key", "value"],
    "roberta": ["query", "key", "value"],
    "xlm-roberta": ["query", "key", "value"],
    "camembert": ["query", "key", "value"],
    "electra": ["query", "key", "value"],
    "albert": ["query", "key", "value"],
    "distilbert": ["q_lin", "k_lin", "v_lin"],
    "deberta": ["in_proj"],
    "deberta-v2": ["query_proj", "key_proj", "value_proj"],
    "mpnet": ["q", "k", "v"],
    "modernbert": ["Wqkv"],
}


def backbone_prefix(model: nn.Module) -> str:
    prefix = getattr(model, "base_model_prefix", "")
    if prefix and hasattr(model, prefix):
        return prefix
    raise ValueError(f"{type(model).__name__} has no backbone attribute; autoft cannot tell head from body")


def head_modules(model: nn.Module) -> list[str]:
    """Names of the top-level modules outside the backbone that hold parameters (the classifier head)."""
    prefix = backbone_prefix(model)
    return [name for name, m in model.named_children() if name != prefix and any(True for _ in m.parameters())]


def is_head(model: nn.Module, param_name: str) -> bool:
    return not param_name.startswith(backbone_prefix(model) + ".")


def pooler_of(backbone: nn.Module) -> nn.Module | None:
    """The backbone's pooler (BERT-style models have one), or None."""
    from torch import nn

    pooler = getattr(backbone, "pooler", None)
    return pooler if isinstance(pooler, nn.Module) else None


def body_frozen(model: nn.Module, trainable) -> bool:
    """True when the parameters named ``trainable`` include nothing of the backbone but its pooler.

    Such a body is a fixed feature extractor: the head (with the pooler, when it trains) learns on
    what the body reads, and the body's output can be computed once (:mod:`autoft.feature_cache`).
    Parameters are matched by identity, so a wrapped model (peft's LoRA) is judged by what it
    really trains; a model autoft cannot take apart counts as not frozen.
    """
    try:
        backbone = getattr(model, backbone_prefix(model))
    except (ValueError, AttributeError):
        return False
    pooler = pooler_of(backbone)
    body = {id(p) for p in backbone.parameters()} - {id(p) for p in (pooler.parameters() if pooler else ())}
    params = dict(model.named_parameters())
    return not any(id(params[n]) in body for n in trainable if n in params)


def set_train_modes(model: nn.Module, trainable) -> None:
    """Training mode for a phase that trains ``trainable``: a frozen body (see :func:`body_frozen`) runs in eval mode.

    A frozen feature extractor has no dropout inside it, so its features do not depend on the
    step; the head keeps its own dropout (BERT's dropout before the classifier, the MLP head's).
    """
    model.train()
    if body_frozen(model, trainable):
        getattr(model, backbone_prefix(model)).eval()


def layer_list(model: nn.Module) -> tuple[str, nn.ModuleList]:
    """The backbone's stack of transformer layers: (qualified name, module list)."""
    backbone = getattr(model, backbone_prefix(model))
    n = getattr(model.config, "num_hidden_layers", None) or getattr(model.config, "n_layers", None)
    from torch import nn

    best: tuple[str, nn.ModuleList] | None = None
    for name, module in backbone.named_modules():
        if isinstance(module, nn.ModuleList) and len(module) > 0 and (n is None or len(module) == n):
            if best is None or len(name) < len(best[0]):
                best = (name, module)
    if best is None:
        raise ValueError(f"cannot find the transformer layers of {type(model).__name__}")
    return f"{backbone_prefix(model)}.{best[0]}", best[1]


def layer_depth(model: nn.Module) -> dict[str, int]:
    """Each parameter's depth: 0 for embeddings, i + 1 for layer i, num_layers + 1 for the rest and the head."""
    layers_name, layers = layer_list(model)
    pattern = re.compile(re.escape(layers_name) + r"\.(\d+)\.")
    top = len(layers) + 1
    depths = {}
    for name, _ in model.named_parameters():
        match = pattern.match(name)
        if match:
            depths[name] = int(match.group(1)) + 1
        elif is_embedding(model, name):
            depths[name] = 0
        else:
            depths[name] = top
    return depths


def is_embedding(model: nn.Module, param_name: str) -> bool:
    prefix = backbone_prefix(model)
    return param_name.startswith(f"{prefix}.embeddings.") or param_name.startswith(f"{prefix}.embed")


def set_trainable(model: nn.Module, predicate) -> None:
    """``requires_grad`` for each parameter from ``predicate(name)``."""
    for name, p in model.named_parameters():
        p.requires_grad_(bool(predicate(name)))


def lora_targets(model: nn.Module, which: str | tuple[str, ...]) -> list[str] | str:
    """LoRA target modules: ``"auto"`` and ``"attention"`` (query/key/value), ``"all-linear"``, or names."""
    if isinstance(which, (tuple, list)):
        return list(which)
    if which == "all-linear":
        return "all-linear"
    if which not in ("auto", "attention"):
        return [which]  # one module name
    model_type = getattr(model.config, "model_type", "")
    if model_type in ATTENTION_MODULES:
        return ATTENTION_MODULES[model_type]
    from torch import nn

    names = {n.rsplit(".", 1)[-1] for n, m in model.named_modules() if isinstance(m, nn.Linear)}
    for candidates in ATTENTION_MODULES.values():
        if set(candidates) <= names:
            return list(candidates)
    return "all-linear"
