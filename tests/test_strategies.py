"""Each strategy trains the parameters it promises and leaves the rest exactly as they were."""

import numpy as np
import pytest
import torch

from autoft.features import encode
from autoft.metrics import Objective
from autoft.models import BaseModel, load_tokenizer, resolve
from autoft.plugins import load_plugins
from autoft.testing import sentiment_rows
from autoft.training import Hyperparams, TrainSettings, train
from autoft_plugins.metrics import METRICS

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


def fit(model, phases, tr, va, hp, pad_id, settings=None, reporter=None):
    """Train on the CPU (seed 0) with accuracy as the objective; no early stopping unless ``settings`` says."""
    return train(
        model,
        phases,
        tr,
        va,
        hp=hp,
        settings=settings or TrainSettings(rungs=0, early_stopping_patience=0),
        objective=Objective("accuracy"),
        metrics=METRIC_TABLE,
        device=torch.device("cpu"),
        pad_id=pad_id,
        seed=0,
        reporter=reporter,
    )


def train_with(registry, folder, name, options=None, epochs=1):
    base, tok, tr, va = setup_for(folder)
    strategy = registry.strategy(name)()
    opts = options or strategy.Options()
    model = strategy.prepare(base.fresh(0), opts)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    hp = Hyperparams(learning_rate=1e-2, epochs=epochs, batch_size=16, weight_decay=0.0, warmup_ratio=0.0)
    phases = strategy.phases(model, opts, hp)
    fit(model, phases, tr, va, hp, tok.pad_token_id)
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


def test_body_trains_everything_but_the_head(registry, tiny_distilbert):
    _, _, model, changed, names = train_with(registry, tiny_distilbert, "body")
    head = {n for n in names if n.startswith(("classifier.", "pre_classifier."))}
    assert not changed & head
    assert any(".transformer.layer.0." in n for n in changed) and any(".transformer.layer.1." in n for n in changed)


def test_two_stage_trains_the_head_first_then_everything(registry, tiny_bert):
    base, tok, tr, va = setup_for(tiny_bert)
    strategy = registry.strategy("two_stage")()
    opts = strategy.Options(head_learning_rate=1e-2, head_epochs=1, include_pooler=False)
    model = strategy.prepare(base.fresh(0), opts)
    start = {n: p.detach().clone() for n, p in model.named_parameters()}
    hp = Hyperparams(learning_rate=1e-2, epochs=1, batch_size=16, weight_decay=0.0, warmup_ratio=0.0)
    phases = strategy.phases(model, opts, hp)
    assert [(p.name, p.reported) for p in phases] == [("head", False), ("full", True)]
    snapshots, reported = [], []

    class Snap:
        def progress(self, *args):
            pass

        def evaluated(self, index, epoch, metrics, resource, final):
            reported.append(index)
            return False

    def run(phase_list, reporter=None):
        fit(model, phase_list, tr, va, hp, tok.pad_token_id, reporter=reporter)
        snapshots.append({n: p.detach().clone() for n, p in model.named_parameters()})

    run(phases[:1])
    run(phases[1:])
    after_head = {n for n, t in snapshots[0].items() if not torch.equal(t, start[n])}
    after_all = {n for n, t in snapshots[1].items() if not torch.equal(t, start[n])}
    assert after_head == {"classifier.weight", "classifier.bias"}
    assert "bert.encoder.layer.0.attention.self.query.weight" in after_all and after_head < after_all
    # both stages in one run: only the second stage's evaluation reaches the pruner
    model = strategy.prepare(base.fresh(0), opts)
    run(strategy.phases(model, opts, hp), Snap())
    assert reported == [1]


@pytest.mark.parametrize(
    "arch, final",
    [
        ("tiny_bert", "classifier"),
        ("tiny_distilbert", "classifier"),
        ("tiny_roberta", "classifier.out_proj"),
    ],
)
def test_an_mlp_head_replaces_the_final_classifier(request, arch, final):
    from autoft.heads import HeadSpec, final_classifier, install_head

    folder = request.getfixturevalue(arch)
    model = BaseModel(resolve(str(folder), folder.parent), ("a", "b", "c")).fresh(0)
    assert final_classifier(model) == final
    install_head(model, HeadSpec(hidden_size=24, dropout=0.0, activation="relu"), seed=1)
    mlp = model.get_submodule(final)
    assert [type(m).__name__ for m in mlp] == ["Linear", "ReLU", "Dropout", "Linear"]
    assert mlp[0].out_features == 24 and mlp[-1].out_features == 3
    ids = torch.tensor([[2, 10, 11, 3]])
    assert model(input_ids=ids).logits.shape == (1, 3)


@pytest.mark.parametrize("which, targets", [("value", {"value"}), (["query", "value"], {"query", "value"})])
def test_lora_adapts_the_modules_a_study_names(registry, tiny_bert, which, targets):
    strategy = registry.strategy("lora")()
    _, _, _, changed, _ = train_with(registry, tiny_bert, "lora", strategy.Options(target_modules=which))
    assert {n.split(".lora_")[0].rsplit(".", 1)[-1] for n in changed if "lora_" in n} == targets


@pytest.mark.parametrize("strategy_name", ["head", "lora", "full"])
def test_an_mlp_head_trains_with_any_strategy_and_survives_saving(registry, tiny_bert, tmp_path, strategy_name):
    from autoft.heads import install_head
    from autoft.saved import load_trained
    from autoft.space import TrialConfig
    from autoft.trial import save_trained

    base, tok, tr, va = setup_for(tiny_bert)
    strategy = registry.strategy(strategy_name)()
    opts = strategy.Options()
    hp = Hyperparams(learning_rate=1e-2, epochs=1, batch_size=16, head="mlp", head_hidden_size=16)
    model = strategy.prepare(install_head(base.fresh(0), hp.head_spec(), seed=0), opts)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    fit(model, strategy.phases(model, opts, hp), tr, va, hp, tok.pad_token_id, settings=TrainSettings())
    changed = {n for n, p in model.named_parameters() if not torch.equal(p.detach(), before[n])}
    assert any("classifier" in n and n.endswith("3.weight") for n in changed)  # the MLP's output layer
    model.eval()
    ids = torch.tensor([[2, 10, 11, 12, 3]])
    expected = model(input_ids=ids).logits.detach()
    save_trained(model, strategy, TrialConfig(strategy_name, opts, hp), tmp_path / "saved")
    tok.save_pretrained(tmp_path / "saved")
    loaded, _ = load_trained(tmp_path / "saved")
    torch.testing.assert_close(loaded(input_ids=ids).logits, expected, atol=1e-5, rtol=1e-4)
