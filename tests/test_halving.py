"""Synchronous successive halving (``pruner = "sha"``): trials wait at each rung for their bracket."""

from __future__ import annotations

import contextlib
import math
import os
import signal
import threading
from pathlib import Path

import optuna
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from autoft.halving import PAUSE, SynchronousHalving


def brackets(n: int, factor: int) -> list[int]:
    """The bracket sizes of ``n`` trials: ``factor**2`` each, a last one taking a remainder under ``factor``."""
    sizes, left = [], n
    while left:
        size = factor**2 if left - factor**2 >= factor else left
        sizes.append(size)
        left -= size
    return sizes


def run_one_lane(
    halving: SynchronousHalving,
    scores: list[float],
    evaluations: int,
    stop_after: int,
    full: set[int] = frozenset(),
    resources: list[list[int]] | None = None,
) -> dict:
    """Drive ``halving`` as the optuna backend does on one worker; each trial's score is the same at every
    evaluation (its k-th at resource factor**k, or ``resources[trial][k]`` of its ``len(resources[trial])``);
    memory holds no more waiting trials when ``full`` holds the number of trials begun. Returns
    trial -> (evaluations done, how it ended)."""
    done = {n: 0 for n in range(len(scores))}
    ended: dict[int, str] = {}
    parked: set[int] = set()

    def train(number: int, stop: bool = False) -> None:
        if stop:
            ended[number] = "pruned"
            halving.ended(number, scores[number])
            return
        while True:
            k = done[number]
            done[number] += 1
            own = resources[number] if resources else None
            final = done[number] == (len(own) if own else evaluations)
            answer = halving.rule(number, scores[number], own[k] if own else halving.factor**k, final)
            if final or answer is True:
                ended[number] = "complete" if final else "pruned"
                halving.ended(number, scores[number])
                return
            if answer == PAUSE:
                parked.add(number)
                return

    begun = 0
    for _ in range(10 * len(scores) + 10):  # every pass does something, or the search is over
        if begun >= stop_after:
            halving.close()
        job = halving.next_resume(parked)
        if job is not None:
            parked.discard(job[0])
            train(*job)
        elif halving.filling and begun in full:
            halving.close(bracket_only=True)
        elif begun < stop_after and halving.may_begin():
            halving.began(begun)
            begun += 1
            train(begun - 1)
        else:
            break
    assert not parked and not halving.waiting, "trials left waiting"
    return {n: (done[n], ended.get(n)) for n in range(begun)}


@settings(max_examples=150, deadline=None)
@given(
    st.integers(1, 30).flatmap(lambda n: st.tuples(st.permutations(range(n)), st.integers(2, 4), st.integers(1, 6))),
    st.booleans(),
)
def test_each_trial_trains_through_the_rungs_its_rank_in_its_bracket_earns(case, maximize):
    """With scores that keep their order, the best of each bracket trains to its end, and a trial of rank r
    waits at rung k and goes on only while r is within the best ceil(m / factor**k) of the m trials."""
    order, factor, evaluations = case
    scores = [float(s) if maximize else -float(s) for s in order]
    halving = SynchronousHalving(len(scores), first=1, factor=factor, maximize=maximize)
    ran = run_one_lane(halving, scores, evaluations, stop_after=len(scores))
    start = 0
    for size in brackets(len(scores), factor):
        members = range(start, start + size)
        ranked = sorted(members, key=lambda n: -order[n])
        keep = [size]
        while keep[-1] > 1:
            keep.append(math.ceil(keep[-1] / factor))
        for rank, number in enumerate(ranked):
            last_rung = max(k for k, kept in enumerate(keep) if rank < kept)  # the last rung it goes on from
            expected = evaluations if rank == 0 else min(evaluations, last_rung + 1)
            assert ran[number][0] == expected, (number, rank, ran)
            assert ran[number][1] == ("complete" if expected == evaluations else "pruned")
        start += size


@settings(max_examples=100, deadline=None)
@given(st.lists(st.floats(0, 1), min_size=1, max_size=20), st.integers(2, 4), st.integers(1, 5), st.data())
def test_a_search_stopped_early_leaves_no_trial_waiting(scores, factor, evaluations, data):
    """n_trials, a timeout or a budget may stop new trials at any point: the waiting ones are still
    compared, resumed or ended, and the best trial begun trains to its end."""
    stop_after = data.draw(st.integers(1, len(scores)))
    halving = SynchronousHalving(len(scores), first=1, factor=factor, maximize=True)
    ran = run_one_lane(halving, scores, evaluations, stop_after)
    assert len(ran) == stop_after and all(state is not None for _, state in ran.values())
    best = max(range(stop_after), key=lambda n: (scores[n], -n))
    assert ran[best] == (evaluations, "complete")


@settings(max_examples=100, deadline=None)
@given(st.lists(st.floats(0, 1), min_size=1, max_size=25), st.integers(2, 3), st.integers(1, 4), st.data())
def test_brackets_closed_early_for_memory_still_run_every_trial(scores, factor, evaluations, data):
    """When memory would not hold another waiting trial, the open bracket compares the trials it has and
    later trials start a new one: every trial still runs, none is left waiting, the best trains to its end."""
    full = set(data.draw(st.lists(st.integers(1, len(scores)), max_size=5)))
    halving = SynchronousHalving(len(scores), first=1, factor=factor, maximize=True)
    ran = run_one_lane(halving, scores, evaluations, len(scores), full)
    assert len(ran) == len(scores) and all(state is not None for _, state in ran.values())
    best = max(range(len(scores)), key=lambda n: (scores[n], -n))
    assert ran[best] == (evaluations, "complete")


def test_memory_that_would_not_hold_another_waiting_trial_is_no_room(monkeypatch):
    from autoft import workers

    pool = workers.WorkerPool(bench=None, display=None)
    worker = workers.Worker()
    pool._workers = [worker]
    assert pool.room_to_wait()  # no trial has waited yet: nothing to go by
    worker.parked[3] = workers.Parked(events=None, process=None, memory=400 * 2**20)
    monkeypatch.setattr(workers, "available_memory", lambda: 1000 * 2**20)
    assert pool.room_to_wait()
    monkeypatch.setattr(workers, "available_memory", lambda: 700 * 2**20)
    assert not pool.room_to_wait()


def test_a_trial_that_completes_leading_at_a_rung_passes_its_place_to_the_next_best():
    """finpb-cpu seed 1 (2026-11-28): at one epoch a 1-epoch trial completed at 0.885, ahead of two that had
    epochs left (0.861, 0.820); with factor 3 one place goes on, and it goes to 0.861, not to the trial that
    is done (which ended the bracket: the best stayed 0.885 where the Trainer reached 0.97)."""
    halving = SynchronousHalving(3, first=1000, factor=3, maximize=True)
    for number in range(3):
        halving.began(number)
    assert halving.rule(0, 0.885, 1000, True) is False  # its last epoch: it completes
    halving.ended(0, 0.885)
    assert halving.rule(1, 0.861, 1000, False) == PAUSE
    assert halving.rule(2, 0.820, 1000, False) is True  # the last to arrive: 1 goes on, 2 ends
    assert halving.next_resume({1}) == (1, False)
    assert halving.rule(1, 0.95, 2000, False) is False  # alone now: it trains to its end


@settings(max_examples=150, deadline=None)
@given(
    st.lists(st.tuples(st.floats(0, 1), st.integers(1, 4)), min_size=1, max_size=20),
    st.integers(2, 4),
)
def test_each_bracket_sends_its_best_waiting_trials_past_the_first_rung(trials, factor):
    """Trials of 1-4 evaluations (epochs): in each bracket of m trials, ceil(m / factor) go past the first
    rung, the best of those with training left (trials that ended there take no place), unless fewer have
    training left; the best trial with more than one evaluation trains to its end."""
    scores = [score for score, _ in trials]
    resources = [[3**k for k in range(evaluations)] for _, evaluations in trials]
    halving = SynchronousHalving(len(scores), first=1, factor=factor, maximize=True)
    ran = run_one_lane(halving, scores, 0, len(scores), resources=resources)
    start = 0
    for size in brackets(len(scores), factor):
        members = range(start, start + size)
        can_go_on = {n for n in members if len(resources[n]) > 1}
        went_on = {n for n in members if ran[n][0] > 1}
        assert len(went_on) == min(len(can_go_on), math.ceil(size / factor)), (size, ran)
        left_behind = can_go_on - went_on  # none of them scored above a trial that went on
        assert min((scores[n] for n in went_on), default=math.inf) >= max(
            (scores[n] for n in left_behind), default=-math.inf
        )
        start += size
    multi = [n for n in range(len(scores)) if len(resources[n]) > 1]
    if multi:
        best = max(multi, key=lambda n: (scores[n], -n))
        assert ran[best] == (len(resources[best]), "complete")


def test_a_trial_does_not_wait_for_rungs_below_its_next():
    """Rung k is the first evaluation at or past first * factor**k: a trial scored at half an epoch
    (past the first rung) waits there once, and next at its first evaluation past the second."""
    halving = SynchronousHalving(2, first=125, factor=2, maximize=True)
    halving.began(0)
    assert halving.rule(0, 0.5, 500, False) == PAUSE  # rung 0 (125), although past rung 1 (250) too
    halving.began(1)
    assert halving.rule(1, 0.4, 1000, False) is True  # the last to arrive: trial 0 goes on, 1 ends
    assert halving.next_resume({0}) == (0, False)
    assert halving.rule(0, 0.6, 1000, False) is False  # alone now: it trains to its end without waiting


def test_a_trial_with_fewer_evaluations_meets_the_others_at_the_same_point():
    """Batch-32 trials, first scored at one epoch (1000) when the batch-16 ones were at half (500): kept,
    such a trial waits on without training while the others train to one epoch, and is compared there."""
    halving = SynchronousHalving(4, first=125, factor=2, maximize=True)
    for number, score, resource in ((0, 0.7, 500), (1, 0.8, 1000), (2, 0.6, 500)):
        halving.began(number)
        assert halving.rule(number, score, resource, False) == PAUSE
    halving.began(3)
    assert halving.rule(3, 0.5, 1000, False) is True  # the last to arrive: 1 and 0 are kept, 3 and 2 end
    assert halving.next_resume({0, 1, 2}) == (2, True)
    assert halving.next_resume({0, 1}) == (0, False)  # trial 1 is at one epoch already: it does not train
    assert halving.next_resume({1}) is None and halving.waiting == {1}
    assert halving.rule(0, 0.75, 1000, False) is True  # both at one epoch now: trial 1 is the better
    assert halving.next_resume({1}) == (1, False)
    assert halving.rule(1, 0.85, 2000, False) is False  # alone: it trains to its end


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.floats(0, 1), st.sampled_from([1, 2, 4])), min_size=1, max_size=20), st.integers(2, 4))
def test_trials_with_different_evaluation_points_all_end_and_the_best_trains_to_its_end(trials, factor):
    """Trials that evaluate every 1, 2 or 4 units up to the same end (batch sizes): none is left waiting,
    each ends, and the best trains to its end."""
    scores = [score for score, _ in trials]
    resources = [list(range(step, 9, step)) for _, step in trials]
    halving = SynchronousHalving(len(scores), first=1, factor=factor, maximize=True)
    ran = run_one_lane(halving, scores, 0, len(scores), resources=resources)
    assert all(state is not None for _, state in ran.values())
    best = max(range(len(scores)), key=lambda n: (scores[n], -n))
    assert ran[best] == (len(resources[best]), "complete")


def halving_study(study_file, **search):
    return study_file(
        search={"n_trials": 4, "pruner": "sha", "isolation": "process", "reduction_factor": 2, **search},
        space={"learning_rate": {"low": 1e-3, "high": 2e-2, "log": True}, "epochs": 2, "batch_size": 16},
        train={"eval_batch_size": 64, "rung_min_samples": 32},
    )


def test_a_trial_that_waited_at_its_rungs_trains_as_if_it_had_not(halving_study_run):
    """Four trials, factor 2: all four wait at the first rung (1/8 epoch), two at the second (1/4), and the
    best trains to its end; the one that waited twice and went on scores exactly as it does uninterrupted."""
    from autoft.config import load_study
    from autoft.space import TrialConfig
    from autoft.trial import run_trial
    from autoft.workbench import Workbench

    path, trials = halving_study_run
    assert sorted(t.state.name for t in trials) == ["COMPLETE", "PRUNED", "PRUNED", "PRUNED"]
    assert sorted(t.user_attrs["epochs_trained"] for t in trials if t.state.name == "PRUNED") == [0.125, 0.125, 0.25]
    (winner,) = [t for t in trials if t.state.name == "COMPLETE"]
    assert winner.user_attrs["epochs_trained"] == 2.0
    # each records how long it waited for its bracket: trial 0 reached the first rung before the other three
    assert trials[0].user_attrs["waited_seconds"] > 0
    for t in trials:
        assert 0 <= t.user_attrs["waited_seconds"] <= (t.datetime_complete - t.datetime_start).total_seconds()

    config, registry = load_study(path)
    bench = Workbench.load(config, registry)
    bench.tokenize(None)
    alone = run_trial(bench, winner.number, TrialConfig.from_dict(winner.user_attrs["config"], registry))
    assert alone.state == "complete"
    assert len(alone.history) == len(winner.user_attrs["history"])
    for uninterrupted, waited in zip(alone.history, winner.user_attrs["history"]):
        assert uninterrupted == pytest.approx(waited, rel=1e-6), (uninterrupted, waited)


@pytest.fixture
def halving_study_run(study_file, cli):
    """The study run while a thread keeps continuing every stopped trial process, as ``fg`` after Ctrl-Z
    does to the whole process group: a waiting trial must stop again, not read the worker's pipe."""
    path = halving_study(study_file)
    done = threading.Event()
    continued = []

    def continue_stopped_trials() -> None:
        while not done.wait(0.05):
            for pid in stopped_descendants(os.getpid()):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGCONT)
                    continued.append(pid)

    thread = threading.Thread(target=continue_stopped_trials, daemon=True)

    def hung(*_) -> None:
        raise TimeoutError("the study hung")

    previous = signal.signal(signal.SIGALRM, hung)
    signal.alarm(300)
    thread.start()
    try:
        result = cli("study", "run", path, "--no-progress")
    finally:
        done.set()
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    assert result.code == 0, result.err
    assert continued, "no trial process was ever seen waiting"
    storage = f"sqlite:///{path.parent / 'runs' / 'tiny' / 'study.db'}"
    return path, optuna.load_study(study_name="tiny", storage=storage).trials


def stopped_descendants(root: int) -> list[int]:
    """The processes under ``root`` that are stopped (state T in /proc)."""
    parents, states = {}, {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, IndexError, ValueError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            parents[int(stat.parent.name)], states[int(stat.parent.name)] = int(fields[1]), fields[0]
    out = []
    for pid, state in states.items():
        ancestor = parents.get(pid)
        while ancestor not in (None, 0, 1, root):
            ancestor = parents.get(ancestor)
        if ancestor == root and state == "T":
            out.append(pid)
    return out


@pytest.mark.parametrize(
    ("search", "message"),
    [
        ({"isolation": "none"}, "pruner: \"sha\" stops a waiting trial's process, and isolation 'none'"),
        ({"isolation": "worker"}, "pruner: \"sha\" stops a waiting trial's process, and isolation 'worker'"),
        ({"backend": "ray"}, 'pruner: "sha" needs the optuna backend'),
    ],
)
def test_sha_where_trials_cannot_wait_is_refused_before_any_trial(study_file, cli, search, message):
    path = halving_study(study_file, **search)
    result = cli("study", "run", path, "--no-progress")
    assert result.code == 2
    assert message in result.err and "Traceback" not in result.err
    assert len(result.err.strip().splitlines()) == 1
    assert not (path.parent / "runs" / "tiny" / "study.db").exists()
