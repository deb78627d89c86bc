"""Each strategy trains the parameters it promises and leaves the rest exactly as they were."""

import numpy as np
import pytest
import torch
from autoft_plugins.metrics import METRICS

from autoft.features import encode
from autoft.models import BaseModel, load_tokenizer, resolve
from autoft.plugins import load_plugins
from autoft.testing import sentiment_rows
from autoft.training import Hyperparams, TrainSettings, train

METRIC_TABLE = {m.name: m for m in METRICS}


@pytest.fixture(scope="module")
def registry():
    return load_plugins()


def setup_for(folder):
    ref = resolve(str(folder), folder.parent)
    tok = load_tokenizer(ref)
    base = BaseModel(ref, ("neg", "pos"))
    texts, labels = sentiment_rows(64, seed=2)
    y = np.array([0 if lab == "neg" else 1 for lab in labels])
    return base, tok, encode(tok, texts[:48], y[:48], 32), encode(tok, texts[48:], y[48:], 32)


def train_with(registry, folder, name, options=None, epochs=1):
    base, tok, tr, va = setup_for(folder)
    strategy = registry.strategy(name)()
    opts = options or strategy.Options()
    model = strategy.prepare(base.fresh(0), opts)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    hp = Hyperparams(learning_rate=1e-2, epochs=epochs, batch_size=16, weight_decay=0.0, warmup_ratio=0.0)
    phases = strategy.phases(model, opts, hp)
    train(
        model,
        phases,
        tr,
        va,
        hp=hp,
        settings=TrainSettings(early_stopping_patience=0),
        objective=METRIC_TABLE["accuracy"],
        metrics=METRIC_TABLE,
        device=torch.device("cpu"),
        pad_id=tok.pad_token_id,
        seed=0,
    )
    changed = {n for n, p in model.named_parameters() if not torch.equal(p.detach(), before[n])}
    return strategy, opts, model, changed, set(before)


def test_full_trains_everything(registry, tiny_bert):
    _, _, _, changed, names = train_with(registry, tiny_bert, "full")
    # every parameter that receives a gradient moves (the token-type table has one row in use; the pooler too)
    assert {n for n in names if "word_embeddings" not in n} - changed <= {
        "bert.embeddings.token_type_embeddings.weight"
    }
    assert "classifier.weight" in changed and "bert.encoder.layer.0.attention.self.query.weight" in changed


def test_full_can_freeze_embeddings_and_lower_layers(registry, tiny_bert):
    options = registry.strategy("full").Options(freeze_embeddings=True, freeze_layers=1)
    _, _, _, changed, _ = train_with(registry, tiny_bert, "full", options)
    assert not any(".embeddings." in n or ".layer.0." in n for n in changed)
    assert any(".layer.1." in n for n in changed) and "classifier.weight" in changed


@pytest.mark.parametrize(
    "arch, head",
    [
        ("tiny_bert", {"classifier.weight", "classifier.bias"}),
        ("tiny_distilbert", {"pre_classifier.weight", "pre_classifier.bias", "classifier.weight", "classifier.bias"}),
        (
            "tiny_roberta",
            {
                "classifier.dense.weight",
                "classifier.dense.bias",
                "classifier.out_proj.weight",
                "classifier.out_proj.bias",
            },
        ),
    ],
)
def test_head_trains_only_the_classifier_head(registry, request, arch, head):
    folder = request.getfixturevalue(arch)
    options = registry.strategy("head").Options(include_pooler=False)
    _, _, _, changed, _ = train_with(registry, folder, "head", options)
    assert changed == head


def test_head_with_pooler(registry, tiny_bert):
    _, _, _, changed, _ = train_with(registry, tiny_bert, "head")
    assert changed == {"classifier.weight", "classifier.bias", "bert.pooler.dense.weight", "bert.pooler.dense.bias"}


@pytest.mark.parametrize(
    "arch, targets",
    [
        ("tiny_bert", ("query", "key", "value")),
        ("tiny_distilbert", ("q_lin", "k_lin", "v_lin")),
        ("tiny_roberta", ("query", "key", "value")),
    ],
)
def test_lora_trains_adapters_and_head_and_merges_on_export(registry, request, arch, targets):
    folder = request.getfixturevalue(arch)
    strategy, opts, model, changed, _ = train_with(registry, folder, "lora")
    adapters = {n for n in changed if "lora_" in n}
    heads = {n for n in changed if "modules_to_save" in n}
    assert adapters and heads and changed == adapters | heads
    assert {n.split(".lora_")[0].rsplit(".", 1)[-1] for n in adapters} == set(targets)
    base = BaseModel(resolve(str(folder), folder.parent), ("neg", "pos")).fresh(0)
    merged = strategy.export(model, opts)
    assert type(merged) is type(base)
    original = dict(base.named_parameters())
    for name, p in merged.named_parameters():
        moved = not torch.equal(p.detach(), original[name].detach())
        in_target = any(f".{t}.weight" in name for t in targets)
        is_head = not name.startswith(base.base_model_prefix + ".")
        assert moved == (in_target or is_head), name
