"""Multi-fidelity search: rungs inside the first epoch, the sample they score, ASHA, and how far trials got."""

import json
import math
from types import SimpleNamespace

import numpy as np
import optuna
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from autoft.backends import RunningTrial
from autoft.features import encode
from autoft.leaderboard import rows_from_trials, to_markdown
from autoft.ledger import make_pruner
from autoft.metrics import Objective
from autoft.models import BaseModel, load_tokenizer, resolve
from autoft.rungs import PER_EPOCH, first_epoch_rungs, min_resource, stratified_rows
from autoft.strategies import Phase
from autoft.testing import sentiment_rows
from autoft.training import Hyperparams, TrainSettings, train
from autoft_plugins.metrics import METRICS

ACCURACY = Objective("accuracy", maximize=True)


@given(
    rows=st.integers(1, 20_000), batch=st.integers(1, 64), count=st.integers(0, 6), min_samples=st.integers(1, 2_000)
)
def test_rungs_fall_inside_the_first_epoch_at_nominal_fractions(rows, batch, count, min_samples):
    steps = math.ceil(rows / batch)
    everything = first_epoch_rungs(steps, batch, count)
    kept = first_epoch_rungs(steps, batch, count, min_samples)
    # a rung is kept exactly when the texts trained on by its step reach the minimum
    assert kept == {step: r for step, r in everything.items() if min(step * batch, rows) >= min_samples}
    assert all(1 <= step < steps for step in everything)
    assert list(everything) == sorted(everything) and len(set(everything.values())) == len(everything)
    fractions = {PER_EPOCH // 2**k: k for k in range(1, count + 1)}
    for step, resource in everything.items():  # the step where 1/2**k of the epoch is reached
        assert step == math.ceil(steps / 2 ** fractions[resource])
    if steps >= 2**count:
        assert len(everything) == count


@pytest.mark.parametrize(
    ("rows", "fractions"),
    [(1_581, {500}), (2_000, {250, 500})],  # finpb-cpu and imdb-cpu's training rows, the default minimum
)
def test_every_batch_size_of_a_space_keeps_the_same_rungs(rows, fractions):
    """The minimum counts texts: batch 16 and batch 32 are scored at the same fractions of the epoch."""
    minimum = TrainSettings().rung_min_samples
    assert set(first_epoch_rungs(math.ceil(rows / 16), 16, 3, minimum).values()) == fractions
    assert set(first_epoch_rungs(math.ceil(rows / 32), 32, 3, minimum).values()) == fractions


@given(count=st.integers(0, 6), factor=st.integers(2, 8))
def test_the_halving_ladder_starts_by_the_first_rung_and_meets_the_first_epoch_end(count, factor):
    first = min_resource(count, factor)
    assert 1 <= first <= PER_EPOCH // 2**count
    ladder = [first * factor**k for k in range(12)]
    # a rung past the half-epoch evaluation and by the epoch's end: trials are compared at the epoch's end
    assert any(PER_EPOCH // 2 < rung <= PER_EPOCH for rung in ladder)


@settings(max_examples=60)
@given(
    counts=st.lists(st.integers(1, 60), min_size=1, max_size=6),
    size=st.integers(0, 400),
    seed=st.integers(0, 2**32 - 1),
)
def test_the_validation_sample_is_stratified_seeded_and_the_same_each_time(counts, size, seed):
    labels = np.repeat(np.arange(len(counts)), counts)
    np.random.default_rng(seed).shuffle(labels)
    rows = stratified_rows(labels, size, seed)
    assert np.array_equal(rows, stratified_rows(labels, size, seed))
    assert len(np.unique(rows)) == len(rows) and np.all(np.diff(rows) > 0)
    if size == 0 or size >= len(labels):
        assert len(rows) == len(labels)
        return
    assert set(labels[rows]) == set(labels)  # every label keeps a row
    assert len(rows) == max(size, len(counts))
    shares = np.array(counts) / len(labels) * size
    lifted = int(np.sum(shares < 1))  # labels raised to one row take those rows from the others
    for label, share in enumerate(shares):  # each label near its share
        assert abs(np.sum(labels[rows] == label) - share) <= 1 + lifted


@pytest.fixture(scope="module")
def setup(tiny_bert):
    ref = resolve(str(tiny_bert), tiny_bert.parent)
    tok = load_tokenizer(ref)
    base = BaseModel(ref, ("neg", "pos"))
    texts, labels = sentiment_rows(300, seed=1)
    y = np.array([0 if lab == "neg" else 1 for lab in labels])
    return base, tok, encode(tok, texts[:160], y[:160], 32), encode(tok, texts[160:], y[160:], 32)


class Recorder:
    def __init__(self, prune=lambda resource, final: False):
        self.prune, self.calls = prune, []

    def progress(self, step, total, loss):
        pass

    def evaluated(self, index, epoch, metrics, resource, final):
        self.calls.append((round(epoch, 4), resource, final))
        return self.prune(resource, final)


def fit(setup, reporter, epochs=2, **train_settings):
    base, tok, tr, va = setup
    model = base.fresh(0)
    names = [n for n, _ in model.named_parameters()]
    hp = Hyperparams(learning_rate=3e-3, epochs=epochs, batch_size=10)  # 16 steps an epoch
    return train(
        model,
        [Phase("full", names, hp.learning_rate, hp.epochs)],
        tr,
        va,
        hp=hp,
        settings=TrainSettings(early_stopping_patience=0, rung_min_samples=1, **train_settings),
        objective=ACCURACY,
        metrics={m.name: m for m in METRICS},
        device=torch.device("cpu"),
        pad_id=tok.pad_token_id,
        seed=0,
        reporter=reporter,
    )


def test_rungs_inside_the_first_epoch_score_a_sample_and_epoch_ends_score_all(setup):
    rec = Recorder()
    result = fit(setup, rec, rungs=3, rung_validation_rows=40)
    assert rec.calls == [
        (0.125, 125, False),
        (0.25, 250, False),
        (0.5, 500, False),
        (1.0, 1000, False),
        (2.0, 2000, True),
    ]
    assert [h.get("validation_rows") for h in result.history] == [40, 40, 40, None, None]
    assert not result.pruned and result.epochs_trained == 2.0 and result.epochs_planned == 2
    assert result.best_epoch in (1.0, 2.0)  # the best weights come from full evaluations only


def test_a_trial_stopped_at_a_rung_keeps_the_score_it_reached_there(setup):
    rec = Recorder(prune=lambda resource, final: True)
    result = fit(setup, rec, rungs=3, rung_validation_rows=40)
    assert result.pruned and rec.calls == [(0.125, 125, False)]
    assert (
        result.epochs_trained == 0.125
        and result.best_epoch == 0.125
        and result.best_metrics == {k: v for k, v in result.history[0].items() if k in result.best_metrics}
    )
    assert "accuracy" in result.best_metrics


def test_a_trial_that_did_all_its_work_is_never_pruned(setup):
    rec = Recorder(prune=lambda resource, final: final)  # a rule that would stop it at its last evaluation
    result = fit(setup, rec, epochs=1, rungs=0)
    assert rec.calls == [(1.0, 1000, True)] and not result.pruned


def test_the_running_trial_asks_the_pruner_at_the_end_but_does_not_prune():
    study = optuna.create_study(direction="maximize")
    handle = study.ask()
    bar = SimpleNamespace(evaluated=lambda epoch, value, waits=False: None)  # the display bar's signature
    trial = RunningTrial(0, None, handle, "accuracy", bar, lambda: None, prune=lambda t: True)
    assert trial.evaluated(0, 0.125, {"accuracy": 0.5}, 125, final=False)
    assert not trial.evaluated(1, 1.0, {"accuracy": 0.6}, 1000, final=True)
    assert study.trials[0].intermediate_values == {125: 0.5, 1000: 0.6}


def test_asha_halves_at_the_rungs_all_trials_meet_at():
    config = SimpleNamespace(search=SimpleNamespace(pruner="asha", reduction_factor=3, startup_trials=4), rungs=3)
    pruner = make_pruner(config)
    assert isinstance(pruner, optuna.pruners.SuccessiveHalvingPruner)
    study = optuna.create_study(direction="maximize", pruner=pruner)
    first = study.ask()
    for step, value in ((125, 0.6), (500, 0.6), (1000, 0.9)):
        first.report(value, step)
        assert not first.should_prune()  # alone at its rungs: promoted
    worse = study.ask()
    worse.report(0.6, 125)
    worse.report(0.6, 500)
    assert not worse.should_prune()  # level with the other trial at the first rungs
    worse.report(0.7, 1000)
    assert worse.should_prune()  # behind it at the first epoch's end, not a second epoch later
    better = study.ask()
    better.report(0.95, 125)
    assert not better.should_prune()
    config.search.pruner = "none"
    assert isinstance(make_pruner(config), optuna.pruners.NopPruner)


def frozen(number, state, value, trained, planned=3):
    attrs = {"metrics": {"accuracy": value}, "epochs_trained": trained, "epochs_planned": planned}
    return optuna.trial.create_trial(
        state=state,
        value=value if state == optuna.trial.TrialState.COMPLETE else None,
        params={"learning_rate": 1e-4},
        distributions={"learning_rate": optuna.distributions.FloatDistribution(1e-5, 1e-3, log=True)},
        user_attrs=attrs,
    )


def test_the_leaderboard_ranks_every_trial_by_its_score_and_says_how_far_it_got():
    complete, pruned = optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED
    trials = [
        frozen(0, complete, 0.70, 3.0),
        frozen(1, pruned, 0.80, 0.5),  # stopped early, yet better than trial 0 got
        frozen(2, pruned, 0.70, 0.125),
        frozen(3, complete, 0.75, 2.0),
    ]
    for number, t in enumerate(trials):
        t.number = number
    rows = rows_from_trials(trials, ACCURACY)
    assert [(r["rank"], r["trial"], r["state"]) for r in rows] == [
        (1, 1, "pruned"),
        (2, 3, "complete"),
        (3, 0, "complete"),  # a tie: the complete trial first
        (4, 2, "pruned"),
    ]
    table = to_markdown(rows, "accuracy")
    assert "| trained |" in table and "0.5/3 ep" in table and "0.125/3 ep" in table and "3/3 ep" in table


def test_an_asha_study_evaluates_at_rungs_and_records_how_far_each_trial_got(study_file, cli, tmp_path):
    path = study_file(
        search={"n_trials": 4, "pruner": "asha", "sampler": "random", "isolation": "none"},
        space={"learning_rate": {"low": 1e-4, "high": 1.5e-2, "log": True}, "epochs": [1, 2], "batch_size": 8},
        train={"rung_validation_rows": 16, "rung_min_samples": 1, "early_stopping_patience": 0},
    )
    result = cli("study", "run", path, "--no-progress")
    assert result.code == 0, result.err
    run_dir = tmp_path / "runs" / "tiny"
    rows = json.loads((run_dir / "leaderboard.json").read_text())["trials"]
    assert len(rows) == 4 and all(r["rank"] is not None for r in rows)
    for r in rows:  # a complete trial did all its work; a pruned one stopped before
        planned = r["params"]["epochs"]
        assert r["epochs_planned"] == planned
        assert (r["epochs_trained"] == planned) == (r["state"] == "complete")
    study = optuna.load_study(study_name="tiny", storage=f"sqlite:///{run_dir / 'study.db'}")
    for t in study.trials:  # every trial met the others at the first rung: an eighth of an epoch
        assert min(t.intermediate_values) == 125
        history = t.user_attrs["history"]
        assert history[0]["validation_rows"] == 16  # early rungs score the sample
        if t.state.name == "COMPLETE":
            assert "validation_rows" not in history[-1]  # the last evaluation scores all of validation
    assert (run_dir / "best" / "metrics.json").exists()


def test_rungs_that_come_too_soon_are_left_out(setup):
    """16 steps of 10 texts an epoch: the 1/8 and 1/4 rungs (20 and 40 texts) come before a minimum of 50: left out."""
    rec = Recorder()
    base, tok, tr, va = setup
    model = base.fresh(0)
    names = [n for n, _ in model.named_parameters()]
    hp = Hyperparams(learning_rate=3e-3, epochs=1, batch_size=10)
    train(
        model,
        [Phase("full", names, hp.learning_rate, hp.epochs)],
        tr,
        va,
        hp=hp,
        settings=TrainSettings(early_stopping_patience=0, rungs=3, rung_min_samples=50),
        objective=ACCURACY,
        metrics={m.name: m for m in METRICS},
        device=torch.device("cpu"),
        pad_id=tok.pad_token_id,
        seed=0,
        reporter=rec,
    )
    assert [resource for _, resource, _ in rec.calls] == [500, 1000]  # step 8, then the epoch's end
