"""The tpe sampler's start: its first trials spread over the space (a scrambled Sobol sequence), seeded."""

from __future__ import annotations

import math

import optuna
from hypothesis import given, settings
from hypothesis import strategies as st

from autoft.ledger import make_sampler

LOW, HIGH = 1e-5, 2e-4


def first_trials(seed: int, n: int = 8, startup: int = 4) -> list[dict]:
    """``n`` trials asked before any finishes (a bracket of synchronous successive halving), as autoft's
    space suggests them: learning rate (log), epochs, batch size."""
    study = optuna.create_study(sampler=make_sampler("tpe", seed, startup), direction="maximize")
    out = []
    for _ in range(n):
        trial = study.ask()
        trial.suggest_float("learning_rate", LOW, HIGH, log=True)
        trial.suggest_int("epochs", 1, 4)
        trial.suggest_categorical("batch_size", [16, 32])
        out.append(trial.params)
    return out


def eighth(lr: float) -> int:
    return int(8 * (math.log(lr) - math.log(LOW)) / (math.log(HIGH) - math.log(LOW)))


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 2**31 - 1))
def test_the_first_trials_fall_one_in_each_eighth_of_the_learning_rate_range(seed):
    """Trials 1-7 (trial 0 is drawn at random: the sequence learns the space from it) take seven
    different eighths of the log range; eight random draws often bunch in one half of it."""
    params = first_trials(seed)
    assert len({eighth(p["learning_rate"]) for p in params[1:]}) == 7
    assert {p["batch_size"] for p in params[1:]} == {16, 32}


def test_the_same_seed_gives_the_same_trials_and_another_seed_others():
    assert first_trials(3) == first_trials(3)
    assert first_trials(3) != first_trials(4)


def test_after_the_startup_trials_tpe_follows_the_best():
    """Once ``startup`` trials have finished, trials come from TPE: with the best scores at the highest
    learning rates, most new trials go there."""
    study = optuna.create_study(sampler=make_sampler("tpe", 0, 8), direction="maximize")
    for _ in range(8):
        trial = study.ask()
        lr = trial.suggest_float("learning_rate", LOW, HIGH, log=True)
        study.tell(trial, eighth(lr))
    later = []
    for _ in range(10):
        trial = study.ask()
        lr = trial.suggest_float("learning_rate", LOW, HIGH, log=True)
        later.append(eighth(lr))
        study.tell(trial, eighth(lr))
    assert sum(e >= 4 for e in later) >= 8


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 2**31 - 1))
def test_a_space_with_per_strategy_parameters_repeats_no_trial(seed):
    """Strategies with learning rates of their own (full, lora): the first trials, asked before any
    finishes, are all different."""
    study = optuna.create_study(sampler=make_sampler("tpe", seed, 8), direction="maximize")
    trials = []
    for _ in range(8):
        trial = study.ask()
        strategy = trial.suggest_categorical("strategy", ["full", "lora"])
        trial.suggest_categorical("epochs", [2, 3])
        if strategy == "full":
            trial.suggest_float("learning_rate", LOW, HIGH, log=True)
        else:
            trial.suggest_float("lora.learning_rate", 1e-3, 5e-3, log=True)
            trial.suggest_categorical("lora.r", [8, 16])
        trials.append(tuple(sorted(trial.params.items())))
    assert len(set(trials)) == len(trials)
