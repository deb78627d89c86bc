"""The frozen-body feature cache: the head trained on cached features is the head trained on tokens; the body
runs once per run; only phases whose body is frozen use it."""

from __future__ import annotations

import threading
from dataclasses import replace

import numpy as np
import pytest
import torch

from autoft import feature_cache
from autoft.anatomy import backbone_prefix, body_frozen, set_train_modes
from autoft.features import encode
from autoft.heads import HeadSpec, install_head
from autoft.metrics import Objective
from autoft.models import BaseModel, load_tokenizer, resolve
from autoft.plugins import load_plugins
from autoft.testing import sentiment_rows
from autoft.training import Hyperparams, TrainSettings, predict_proba, train
from autoft_plugins.metrics import METRICS

METRIC_TABLE = {m.name: m for m in METRICS}
CPU = torch.device("cpu")
HP = Hyperparams(learning_rate=1e-2, epochs=2, batch_size=16, warmup_ratio=0.0)


@pytest.fixture(scope="module")
def registry():
    return load_plugins()


@pytest.fixture(scope="module")
def tiny(request):
    """(base model, tokenizer, train split, validation split) of a tiny model, by fixture name; made once each."""
    made = {}

    def get(arch: str):
        if arch not in made:
            folder = request.getfixturevalue(arch)
            ref = resolve(str(folder), folder.parent)
            tok = load_tokenizer(ref)
            texts, labels = sentiment_rows(64, seed=3)
            y = np.array([0 if lab == "neg" else 1 for lab in labels])
            made[arch] = (
                BaseModel(ref, ("neg", "pos")),
                tok,
                encode(tok, texts[:48], y[:48], 32),
                encode(tok, texts[48:], y[48:], 32),
            )
        return made[arch]

    return get


def head_model(registry, base, strategy="head", options=None, head: HeadSpec | None = None, seed=0):
    """A fresh model prepared by ``strategy``, and its phases with :data:`HP`."""
    plugin = registry.strategy(strategy)()
    opts = options or plugin.Options()
    model = base.fresh(seed)
    if head is not None:
        install_head(model, head, seed)
    model = plugin.prepare(model, opts)
    return model, plugin.phases(model, opts, HP)


def cached_forwards(model, phases, tr, va, pad_id, folder):
    return feature_cache.frozen_body_forwards(
        model,
        phases,
        {"train": tr, "validation": va},
        folder=folder,
        device=CPU,
        pad_id=pad_id,
        dtype=None,
        batch_size=64,
    )


def fit(model, phases, tr, va, pad_id, forwards=None):
    return train(
        model,
        phases,
        tr,
        va,
        hp=HP,
        settings=TrainSettings(early_stopping_patience=0),
        objective=Objective("accuracy"),
        metrics=METRIC_TABLE,
        device=CPU,
        pad_id=pad_id,
        seed=0,
        forwards=forwards,
    )


def proba(model, va, pad_id):
    """Predictions of the whole model on tokens, whichever way it was trained."""
    return predict_proba(model, va, batch_size=64, device=CPU, pad_id=pad_id, dtype=None)


@pytest.mark.parametrize(
    "arch, head",
    [
        ("tiny_bert", None),  # the pooler trains with the classifier (the head strategy's default)
        ("tiny_distilbert", None),  # pre_classifier + classifier on the first token
        ("tiny_roberta", None),  # dense + out_proj on the sequence output
        ("tiny_bert", HeadSpec(hidden_size=16, dropout=0.2)),  # autoft's MLP head, with its own dropout
        ("tiny_roberta", HeadSpec(hidden_size=16, dropout=0.2)),
    ],
)
def test_cached_and_uncached_head_training_agree(registry, tiny, tmp_path, arch, head):
    base, tok, tr, va = tiny(arch)
    uncached, phases = head_model(registry, base, head=head)
    plain = fit(uncached, phases, tr, va, tok.pad_token_id)
    model, phases = head_model(registry, base, head=head)
    forwards = cached_forwards(model, phases, tr, va, tok.pad_token_id, tmp_path / "features")
    assert forwards is not None
    cached = fit(model, phases, tr, va, tok.pad_token_id, forwards)
    for (name, a), (_, b) in zip(uncached.named_parameters(), model.named_parameters()):
        # float rounding (other padding when the features were computed) moves some weights by ~1e-5 after AdamW
        torch.testing.assert_close(a, b, atol=1e-4, rtol=1e-3, msg=lambda m, name=name: f"{name}: {m}")
    np.testing.assert_allclose(proba(model, va, tok.pad_token_id), proba(uncached, va, tok.pad_token_id), atol=1e-4)
    assert [h["accuracy"] for h in cached.history] == [h["accuracy"] for h in plain.history]
    losses = [h["train_loss"] for h in plain.history]
    assert [h["train_loss"] for h in cached.history] == pytest.approx(losses, abs=1e-5)  # rounded to 6 places


def test_the_dropout_before_the_classifier_acts_on_cached_features(registry, tiny, tmp_path):
    """BERT's dropout between the pooled output and the classifier still acts in training on the cached path."""
    base, tok, tr, va = tiny("tiny_bert")
    trained = []
    for p in (0.1, 0.0):
        model, phases = head_model(registry, base)
        model.dropout.p = p
        fit(model, phases, tr, va, tok.pad_token_id, cached_forwards(model, phases, tr, va, tok.pad_token_id, tmp_path))
        trained.append(model.classifier.weight.detach().clone())
    assert not torch.allclose(trained[0], trained[1])


def test_a_frozen_body_trains_in_eval_mode_and_its_head_in_training_mode(registry, tiny):
    base, _, _, _ = tiny("tiny_bert")
    model, phases = head_model(registry, base)
    set_train_modes(model, phases[0].params)
    assert not any(m.training for m in model.bert.modules()) and model.dropout.training
    full, full_phases = head_model(registry, base, "full")
    set_train_modes(full, full_phases[0].params)
    assert all(m.training for m in full.modules())


def test_padding_and_batching_do_not_change_the_features(tiny):
    base, tok, tr, _ = tiny("tiny_distilbert")
    backbone = base.fresh(0).distilbert
    one = feature_cache.compute_features(backbone, tr, batch_size=1, device=CPU, pad_id=tok.pad_token_id, dtype=None)
    many = feature_cache.compute_features(backbone, tr, batch_size=48, device=CPU, pad_id=tok.pad_token_id, dtype=None)
    assert one.shape == (48, 64) and one.dtype == np.float32
    np.testing.assert_allclose(one, many, atol=1e-5)


@pytest.mark.parametrize(
    "strategy, options, cached",
    [
        ("head", {"include_pooler": False}, True),
        ("head", {}, True),
        ("two_stage", {}, True),  # its head stage; the second stage trains the body on tokens
        ("full", {"freeze_embeddings": True, "freeze_layers": 2}, True),  # every layer frozen: pooler + classifier
        ("full", {"freeze_embeddings": True, "freeze_layers": 1}, False),
        ("full", {}, False),
        ("body", {}, False),
        ("lora", {}, False),
    ],
)
def test_only_phases_with_a_frozen_body_use_the_cache(registry, tiny, tmp_path, strategy, options, cached):
    base, tok, tr, va = tiny("tiny_bert")
    plugin = registry.strategy(strategy)()
    model, phases = head_model(registry, base, strategy, plugin.Options(**options))
    forwards = cached_forwards(model, phases, tr, va, tok.pad_token_id, tmp_path)
    assert (forwards is not None) == cached
    assert (tmp_path / "train.npy").is_file() == cached
    if forwards is not None:
        used = [isinstance(forwards(phase, tr), feature_cache.HeadOnFeatures) for phase in phases]
        assert used == [body_frozen(model, phase.params) for phase in phases] and used[0]
        assert not isinstance(forwards(phases[0], tr.subset(np.arange(8))), feature_cache.HeadOnFeatures)


def test_a_head_that_reads_more_than_the_first_token_trains_on_tokens(registry, tiny, tmp_path):
    """A pooler that reads the last position: the check at the trial's start turns the cache off."""

    class LastTokenPooler(torch.nn.Module):
        def __init__(self, size):
            super().__init__()
            self.dense = torch.nn.Linear(size, size)

        def forward(self, hidden):
            return torch.tanh(self.dense(hidden[:, -1]))

    base, tok, tr, va = tiny("tiny_bert")
    model, phases = head_model(registry, base)
    model.bert.pooler = LastTokenPooler(64)
    phases = [replace(phases[0], params=[n for n, _ in model.named_parameters() if not n.startswith("bert.")])]
    assert cached_forwards(model, phases, tr, va, tok.pad_token_id, tmp_path) is None
    assert not (tmp_path / "train.npy").exists()


def test_the_key_follows_the_body_not_the_head_or_labels(tiny):
    base, _, _, _ = tiny("tiny_bert")
    a, b = base.fresh(0), base.fresh(1)  # other classifier weights
    with torch.no_grad():
        b.bert.pooler.dense.weight.add_(1.0)  # the pooler runs per step: not part of the features
    assert feature_cache.body_fingerprint(a) == feature_cache.body_fingerprint(b)
    with torch.no_grad():
        b.bert.encoder.layer[1].output.dense.bias.add_(1e-3)
    assert feature_cache.body_fingerprint(a) != feature_cache.body_fingerprint(b)
    key = feature_cache.cache_key("tokens-1", "body", None)
    assert len({key, feature_cache.cache_key("tokens-2", "body", None)}) == 2
    assert key != feature_cache.cache_key("tokens-1", "body", torch.bfloat16)


def test_damaged_files_are_computed_again_and_two_workers_compute_once(tmp_path, tiny):
    _, _, tr, va = tiny("tiny_bert")
    splits = {"train": tr, "validation": va}
    calls = []
    started = threading.Event()

    def compute(enc):
        calls.append(len(enc))
        started.set()
        threading.Event().wait(0.2)  # long enough for the other worker to reach the lock
        return np.full((len(enc), 4), float(len(enc)), dtype=np.float32)

    results = []
    workers = [
        threading.Thread(target=lambda: results.append(feature_cache.load_or_compute(tmp_path, splits, compute)))
    ]
    workers[0].start()
    started.wait()
    workers.append(
        threading.Thread(target=lambda: results.append(feature_cache.load_or_compute(tmp_path, splits, compute)))
    )
    workers[1].start()
    for w in workers:
        w.join()
    assert calls == [48, 16] and sorted(computed for _, computed in results) == [False, True]
    for arrays, _ in results:
        assert arrays["train"].shape == (48, 4) and float(arrays["validation"][0, 0]) == 16.0
    (tmp_path / "train.npy").write_bytes(b"\x93NUMPY garbled")
    arrays, computed = feature_cache.load_or_compute(tmp_path, splits, compute)
    assert computed and calls == [48, 16, 48, 16] and arrays["train"].shape == (48, 4)
    assert not list(tmp_path.glob(".*.tmp"))  # every file was written to a temporary name and renamed


def test_trials_share_one_computation_of_the_body(study_file, monkeypatch):
    """Through run_trial: the first head trial computes the features, later head and two_stage trials reuse them."""
    from autoft.config import load_study
    from autoft.space import TrialConfig
    from autoft.trial import run_trial
    from autoft.workbench import Workbench

    config, registry = load_study(study_file())
    bench = Workbench.load(config, registry)
    bench.tokenize(config.run_dir / "cache")
    computed, head_calls = [], []
    compute = feature_cache.compute_features
    monkeypatch.setattr(
        feature_cache, "compute_features", lambda *a, **k: computed.append(len(a[1])) or compute(*a, **k)
    )
    call = feature_cache.HeadOnFeatures.__call__
    monkeypatch.setattr(
        feature_cache.HeadOnFeatures, "__call__", lambda self, rows: head_calls.append(1) or call(self, rows)
    )
    hp = Hyperparams(learning_rate=1e-2, epochs=1, batch_size=16)

    def trial(number, strategy):
        options = registry.strategy(strategy).Options()
        head_calls.clear()
        outcome = run_trial(bench, number, TrialConfig(strategy, options, hp))
        assert outcome.state == "complete"
        return len(head_calls)

    assert trial(0, "head") > 0
    assert computed == [len(bench.encoded["train"]), len(bench.encoded["validation"])]
    (folder,) = (config.run_dir / "cache").glob("features-*")
    stamp = [(p.name, p.stat().st_ino, p.stat().st_mtime_ns) for p in sorted(folder.glob("*.npy"))]
    assert [name for name, _, _ in stamp] == ["train.npy", "validation.npy"]
    assert trial(1, "head") > 0
    assert trial(2, "two_stage") > 0
    assert trial(3, "full") == 0
    assert len(computed) == 2  # not computed again
    assert [(p.name, p.stat().st_ino, p.stat().st_mtime_ns) for p in sorted(folder.glob("*.npy"))] == stamp
    assert len(list((config.run_dir / "cache").glob("features-*"))) == 1
    # switched off, a head trial trains on tokens
    bench.config = replace(config, train=replace(config.train, feature_cache=False))
    assert trial(4, "head") == 0


def test_body_frozen_judges_by_identity_not_names(registry, tiny):
    base, _, _, _ = tiny("tiny_bert")
    model, phases = head_model(registry, base, "lora")
    assert backbone_prefix(model) == "bert"
    assert not body_frozen(model, phases[0].params)  # its adapters sit in the body, under other names
