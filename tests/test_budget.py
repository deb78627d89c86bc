"""The search's budget (a deadline: no trial starts that cannot reach its first rung, a running trial ends
at it) and the forecast of the whole study."""

import dataclasses
import json
import time

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from autoft import search
from autoft.budget import FirstSteps, Forecast, format_duration, parse_duration
from autoft.features import encode
from autoft.metrics import Objective
from autoft.models import BaseModel, load_tokenizer, resolve
from autoft.strategies import Phase
from autoft.testing import sentiment_rows
from autoft.training import Hyperparams, TrainSettings, train
from autoft_plugins.metrics import METRICS


@given(h=st.integers(0, 48), m=st.integers(0, 600), s=st.integers(0, 5000))
def test_durations_read_as_people_write_them(h, m, s):
    text = "".join(f"{v}{unit}" for v, unit in ((h, "h"), (m, "m"), (s, "s")) if v)
    if not text:
        with pytest.raises(ValueError):
            parse_duration("0s")
        return
    assert parse_duration(text) == 3600 * h + 60 * m + s
    assert parse_duration(text.upper()) == parse_duration(text)
    assert abs(parse_duration(str(3600 * h + 60 * m + s)) - parse_duration(text)) < 1e-9
    assert format_duration(parse_duration(text))  # never empty


@given(st.text(alphabet=st.characters(blacklist_categories=("Nd",)), max_size=12))
def test_text_without_a_number_is_refused_with_what_would_do(text):
    with pytest.raises(ValueError) as err:
        parse_duration(text)
    assert "such as 20m" in str(err.value) and "\n" not in str(err.value)


def test_a_forecast_past_an_hour_names_what_shrinks_it():
    slow = Forecast(
        trials=20,
        epochs=3,
        train_rows=25_000,
        validation_rows=2_000,
        evaluations=6,
        samples_per_second=30,
        test_rows=25_000,
    )
    assert slow.seconds > 3600
    assert "of it scoring the 25,000 test rows once" in slow.text([])
    assert "over an hour" in slow.text(["dataset.max_train_rows (now 25,000 rows)"])
    assert "dataset.max_train_rows" in slow.text(["dataset.max_train_rows (now 25,000 rows)"])
    quick = Forecast(trials=2, epochs=1, train_rows=500, validation_rows=100, evaluations=4, samples_per_second=50)
    assert quick.seconds < 60 and "over an hour" not in quick.text(["x"])
    # trials side by side: the search's work is shared among them, the best trial's test split is scored once
    side_by_side = dataclasses.replace(slow, lanes=2)
    assert side_by_side.seconds == pytest.approx((slow.seconds - slow.test_seconds) / 2 + slow.test_seconds)
    assert "in each of 2 trials at once" in side_by_side.text([])


def test_a_trial_at_the_deadline_evaluates_once_more_and_ends(tiny_bert):
    ref = resolve(str(tiny_bert), tiny_bert.parent)
    tok = load_tokenizer(ref)
    texts, labels = sentiment_rows(120, seed=3)
    y = np.array([0 if lab == "neg" else 1 for lab in labels])
    tr, va = encode(tok, texts[:80], y[:80], 32), encode(tok, texts[80:], y[80:], 32)
    model = BaseModel(ref, ("neg", "pos")).fresh(0)
    names = [n for n, _ in model.named_parameters()]
    calls = []

    class Recorder:
        def progress(self, step, total, loss):
            pass

        def evaluated(self, index, epoch, metrics, resource, final):
            calls.append((epoch, final))
            return True  # a pruner that would stop it: the deadline's evaluation is the trial's last, not pruned

    result = train(
        model,
        [Phase("full", names, 1e-3, 3)],
        tr,
        va,
        hp=Hyperparams(learning_rate=1e-3, epochs=3, batch_size=8),
        settings=TrainSettings(early_stopping_patience=0),
        objective=Objective("accuracy", maximize=True),
        metrics={m.name: m for m in METRICS},
        device=torch.device("cpu"),
        pad_id=tok.pad_token_id,
        seed=0,
        reporter=Recorder(),
        deadline=time.time(),  # already here: the first step is the last
    )
    assert result.out_of_time and not result.pruned
    assert calls == [(0.1, True)] and result.epochs_trained == 0.1
    assert "validation_rows" not in result.history[0] and result.best_metrics  # a full evaluation, kept


def test_the_forecast_times_training_not_a_wait_at_a_rung():
    """Under ``pruner = "sha"`` the first trial may wait for its bracket before the forecast has timed
    it: the next trial is timed instead, and a wait never counts as training."""
    from types import SimpleNamespace

    a, b = (SimpleNamespace(number=n, waited=0.0, waiting_since=None) for n in (0, 1))
    clock = FirstSteps(after=5.0)
    running = {0, 1}
    assert clock.report(a, 0, 16, now=0.0, running=running) is None
    assert clock.report(a, 4, 16, now=2.0, running=running) is None  # 2 s: too soon
    a.waiting_since = 2.0  # trial 0 waits at its first rung
    assert clock.report(b, 0, 32, now=2.5, running=running) is None  # trial 1 is timed from here
    a.waiting_since, a.waited = None, 30.0  # trial 0 resumes 30 s later: not the one timed
    assert clock.report(a, 5, 16, now=32.5, running=running) is None
    assert clock.report(b, 10, 32, now=7.5, running=running) == pytest.approx(10 * 32 / 5.0)

    clock = FirstSteps(after=5.0)
    c = SimpleNamespace(number=2, waited=0.0, waiting_since=None)
    clock.report(c, 0, 8, now=0.0, running={2})
    c.waited = 100.0  # it waited (and nobody else reported meanwhile): timed again from its return
    assert clock.report(c, 3, 8, now=101.0, running={2}) is None
    assert clock.report(c, 13, 8, now=107.0, running={2}) == pytest.approx(10 * 8 / 6.0)


def test_a_study_with_a_budget_stops_starting_trials_and_exports_the_best(study_file, cli, tmp_path, monkeypatch):
    monkeypatch.setattr(search, "FORECAST_AFTER", 0.0)
    path = study_file(
        search={"n_trials": 200, "isolation": "none"},
        space={"epochs": 1, "batch_size": 8},
    )
    result = cli("study", "run", path, "--no-progress", "--budget", "8s")
    assert result.code == 0, result.err
    assert "budget of 8s" in result.out and "forecast: at most" in result.out
    run_dir = tmp_path / "runs" / "tiny"
    rows = json.loads((run_dir / "leaderboard.json").read_text())["trials"]
    assert 1 <= len(rows) < 200
    assert json.loads((run_dir / "best" / "metrics.json").read_text())["test"]


def test_a_budget_that_is_not_a_duration_is_one_line_naming_the_key(study_file, cli):
    result = cli("study", "run", study_file(search={"budget": "twenty minutes"}))
    assert result.code == 2
    assert "[search] budget: 'twenty minutes' is not a duration" in result.err and result.err.count("\n") == 1
