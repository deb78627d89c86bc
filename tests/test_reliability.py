"""Faults and interruptions lose nothing: kill -9, Ctrl-C, out of memory, failing trials."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest

from autoft.processes import pid_alive

PLUGINS = '''
import torch
import autoft
from autoft import hookimpl
from autoft_plugins.strategies.full import Full


class Greedy(Full):
    """Full fine-tuning on a pretend GPU that runs out of memory above 8 texts per training batch."""

    name = "greedy"

    def prepare(self, model, options):
        model = super().prepare(model, options)
        forward = model.forward

        def guarded(*args, **kwargs):
            ids = kwargs.get("input_ids")
            if model.training and ids is not None and ids.shape[0] > 8:
                raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
            return forward(*args, **kwargs)

        model.forward = guarded
        return model


class Gated(Full):
    """Full fine-tuning whose second and later trials wait while a gate file exists."""

    name = "gated"

    def prepare(self, model, options):
        import os, pathlib, time
        if next(model.parameters()).device.type == "meta":  # the study's check before the first trial
            return super().prepare(model, options)
        calls = pathlib.Path(os.environ["AUTOFT_TEST_GATE"] + ".calls")
        calls.mkdir(exist_ok=True)
        (calls / str(os.getpid())).touch()
        while len(list(calls.iterdir())) >= 2 and os.path.exists(os.environ["AUTOFT_TEST_GATE"]):
            time.sleep(0.1)
        return super().prepare(model, options)


class Broken(Full):
    """A strategy whose every trial fails: an impossible combination."""

    name = "broken"

    def prepare(self, model, options):
        if next(model.parameters()).device.type == "meta":  # passes the study's check, fails in the trial
            return model
        raise ValueError("this combination cannot train")


class Deaf(Full):
    """Full fine-tuning whose check in the study process swallows a Ctrl-C, as some libraries do."""

    name = "deaf"

    def prepare(self, model, options):
        import os, pathlib, time
        if next(model.parameters()).device.type == "meta":
            gate = pathlib.Path(os.environ["AUTOFT_TEST_GATE"])
            pathlib.Path(f"{gate}.checking").touch()
            while gate.exists():
                try:
                    time.sleep(0.05)
                except KeyboardInterrupt:  # swallowed: the study must still stop
                    gate.unlink()
        return super().prepare(model, options)


@hookimpl
def register_strategies(register):
    register(Greedy)
    register(Gated)
    register(Broken)
    register(Deaf)
'''


def autoft(*args, **kw):
    return subprocess.Popen(
        [sys.executable, "-m", "autoft", *map(str, args)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        **kw,
    )


def finish(proc, timeout):
    """The output of a study process started in its own session; on timeout, what was left running."""
    try:
        return proc.communicate(timeout=timeout)[0]
    except subprocess.TimeoutExpired:
        left = subprocess.run(["ps", "-s", str(proc.pid), "-o", "pid,ppid,stat,cmd"], capture_output=True, text=True)
        os.killpg(proc.pid, signal.SIGKILL)
        raise AssertionError(f"still running after {timeout}s (stdout held open):\n{left.stdout}") from None


def load(run_dir: Path, name="tiny"):
    return optuna.load_study(study_name=name, storage=f"sqlite:///{run_dir / 'study.db'}")


def wait_for(predicate, timeout=120.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.2)
    return False


def states(run_dir):
    try:
        return [t.state.name for t in load(run_dir).trials]
    except Exception:
        return []


def owned_running(run_dir) -> bool:
    """Trial 0 complete and trial 1 running with its owner recorded (a kill before that is another test's case:
    tests/test_workers.py, the orphaned trial)."""
    try:
        trials = load(run_dir).trials
    except Exception:
        return False
    return [t.state.name for t in trials[:2]] == ["COMPLETE", "RUNNING"] and "pid" in trials[1].user_attrs


def descendants(pid: int) -> list[int]:
    out = subprocess.run(["ps", "-eo", "pid,ppid"], capture_output=True, text=True).stdout.split("\n")[1:]
    children: dict[int, list[int]] = {}
    for line in out:
        if line.strip():
            p, pp = map(int, line.split())
            children.setdefault(pp, []).append(p)
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


@pytest.fixture
def gated_study(study_file, tmp_path, monkeypatch):
    """A study whose second trial waits at a gate (a file) until the test removes it."""
    (tmp_path / "plugins.py").write_text(PLUGINS)
    gate = tmp_path / "gate"
    gate.touch()
    monkeypatch.setenv("AUTOFT_TEST_GATE", str(gate))
    path = study_file(
        study={"plugins": ["plugins.py"]},
        strategies={"gated": {}},
        search={"n_trials": 3},
        space={"learning_rate": 5e-3, "epochs": 1, "batch_size": 16},
    )
    return path, gate


def test_kill_9_loses_no_completed_trial_and_resume_reruns_the_interrupted_one(gated_study, tmp_path):
    study, gate = gated_study
    run_dir = tmp_path / "runs" / "tiny"
    proc = autoft("study", "run", study, "--no-progress")
    assert wait_for(lambda: owned_running(run_dir)), proc.communicate()[0]
    children = descendants(proc.pid)
    assert children, "the trial worker runs in its own process"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    # the worker and the trial's process die with the study process
    assert wait_for(lambda: not any(pid_alive(c) for c in children), 20)
    assert states(run_dir)[:2] == ["COMPLETE", "RUNNING"]
    board = json.loads((run_dir / "leaderboard.json").read_text())  # whole, not half-written
    assert [r["state"] for r in board["trials"]][:1] == ["complete"]

    gate.unlink()
    again = autoft("study", "run", study, "--no-progress")
    out = again.communicate(timeout=300)[0]
    assert again.returncode == 0, out
    assert "marked interrupted trial(s) 1 as failed" in out
    trials = load(run_dir).trials
    assert trials[0].state.name == "COMPLETE" and trials[1].state.name == "FAIL"
    assert trials[1].user_attrs["reason"].startswith("interrupted")
    assert sum(t.state.name in ("COMPLETE", "PRUNED") for t in trials) == 3
    metrics = json.loads((run_dir / "best" / "metrics.json").read_text())
    assert metrics["trial"] == load(run_dir).best_trial.number


def test_ctrl_c_stops_cleanly_with_exit_130_and_leaves_a_study_to_resume(gated_study, tmp_path):
    """What a resume needs is left: the finished trial, the running one failed with its reason (the resumes
    themselves are run after kill -9 above and after SIGTERM in test_preflight)."""
    study, _ = gated_study
    run_dir = tmp_path / "runs" / "tiny"
    proc = autoft("study", "run", study, "--no-progress", start_new_session=True)
    assert wait_for(lambda: states(run_dir)[:2] == ["COMPLETE", "RUNNING"]), proc.communicate()[0]
    os.killpg(proc.pid, signal.SIGINT)  # what a terminal sends to the whole foreground group
    out = finish(proc, 60)
    assert proc.returncode == 130, out
    assert "interrupted; run the same command again to resume" in out
    assert "Traceback" not in out and "Warning" not in out, out  # a clean stop: no noise from the shutdown
    trials = load(run_dir).trials
    assert [t.state.name for t in trials] == ["COMPLETE", "FAIL"]
    assert trials[1].user_attrs["reason"] == "interrupted (Ctrl-C)"
    board = json.loads((run_dir / "leaderboard.json").read_text())
    assert {r["trial"]: r["state"] for r in board["trials"]} == {0: "complete", 1: "failed"}


def test_a_trial_process_whose_worker_died_before_it_was_set_up_ends_too(tmp_path):
    # the window between fork and PR_SET_PDEATHSIG: a worker killed right then must not leave an orphan
    from autoft.processes import die_with_parent

    orphaned, survived = tmp_path / "orphaned", tmp_path / "survived"
    worker = os.fork()
    if worker == 0:
        try:
            parent = os.getpid()
            if os.fork() == 0:  # the trial process, set up only once its worker is gone
                while os.getppid() == parent:
                    time.sleep(0.01)
                orphaned.touch()
                die_with_parent(parent)
                survived.touch()
        finally:
            os._exit(0)
    os.waitpid(worker, 0)
    assert wait_for(orphaned.exists, 20)
    time.sleep(0.5)
    assert not survived.exists()


def test_out_of_memory_is_retried_with_half_the_micro_batch(tmp_path, study_file, cli):
    (tmp_path / "oom.py").write_text(PLUGINS)
    path = study_file(
        study={"plugins": ["oom.py"]},
        strategies={"greedy": {}},
        search={"n_trials": 1, "isolation": "none"},  # the retry is the loop's, in any process
        space={"learning_rate": 5e-3, "epochs": 1, "batch_size": 16},
    )
    result = cli("study", "run", path, "--no-progress")
    assert result.code == 0, result.err
    trial = load(tmp_path / "runs" / "tiny").trials[0]
    assert trial.state.name == "COMPLETE"
    assert trial.user_attrs["reason"] == "out of memory at micro-batch 16: retried with 2 micro-batches of 8"


def test_out_of_memory_twice_fails_the_trial_alone(tmp_path, study_file, cli):
    (tmp_path / "oom.py").write_text(PLUGINS)
    path = study_file(
        study={"plugins": ["oom.py"], "seed": 1},  # a seed whose first trials draw both strategies
        strategies={"greedy": {}, "full": {}},
        search={"n_trials": 2},
        space={"learning_rate": 5e-3, "epochs": 1, "batch_size": 32},
    )
    result = cli("study", "run", path, "--no-progress")
    assert result.code == 0, result.err
    trials = load(tmp_path / "runs" / "tiny").trials
    greedy = [t for t in trials if t.params["strategy"] == "greedy"]
    assert greedy and all(t.state.name == "FAIL" for t in greedy)
    assert all(t.user_attrs["reason"].startswith("out of memory with micro-batches of 16") for t in greedy)
    assert sum(t.state.name == "COMPLETE" for t in trials) == 2  # the study went on to its budget
    board = (tmp_path / "runs" / "tiny" / "leaderboard.md").read_text()
    assert "out of memory with micro-batches of 16" in board


def test_a_failing_trial_is_recorded_with_its_reason_and_the_study_goes_on(tmp_path, study_file, cli):
    (tmp_path / "bad.py").write_text(PLUGINS)
    path = study_file(
        study={"plugins": ["bad.py"]},
        strategies={"broken": {}, "full": {}},
        search={"n_trials": 3},
        space={"learning_rate": 5e-3, "epochs": 1, "batch_size": 16},
    )
    assert cli("study", "run", path, "--no-progress").code == 0
    trials = load(tmp_path / "runs" / "tiny").trials
    failed = [t for t in trials if t.state.name == "FAIL"]
    assert failed and all(t.user_attrs["reason"] == "ValueError: this combination cannot train" for t in failed)


def test_a_study_whose_every_trial_fails_stops_with_the_reason(tmp_path, study_file, cli):
    (tmp_path / "bad.py").write_text(PLUGINS)
    path = study_file(
        study={"plugins": ["bad.py"]}, strategies={"broken": {}}, search={"n_trials": 10, "isolation": "none"}
    )
    result = cli("study", "run", path, "--no-progress")
    assert result.code == 2
    assert "3 trials failed in a row" in result.err and "this combination cannot train" in result.err
    assert len(load(tmp_path / "runs" / "tiny").trials) == 3
    assert (tmp_path / "runs" / "tiny" / "leaderboard.csv").is_file()


def test_a_ctrl_c_that_a_library_swallows_still_stops_the_study(study_file, tmp_path, monkeypatch):
    """Code under C-level attribute probes (PyObject_HasAttr) or a bare except can eat the KeyboardInterrupt;
    the study process notes the signal itself and stops at its next check, before writing anything."""
    (tmp_path / "plugins.py").write_text(PLUGINS)
    gate = tmp_path / "gate"
    gate.touch()
    monkeypatch.setenv("AUTOFT_TEST_GATE", str(gate))
    path = study_file(study={"plugins": ["plugins.py"]}, strategies={"deaf": {}}, search={"isolation": "none"})
    proc = autoft("study", "run", path, "--no-progress", start_new_session=True)
    assert wait_for(Path(f"{gate}.checking").exists), proc.communicate()[0]
    os.killpg(proc.pid, signal.SIGINT)
    out = finish(proc, 60)
    assert proc.returncode == 130, out
    assert "interrupted; run the same command again to resume" in out and "Traceback" not in out, out
    assert not (tmp_path / "runs").exists()  # stopped before the run folder was made


def test_sigterm_stops_the_study_like_ctrl_c(gated_study, tmp_path):
    study, _ = gated_study
    run_dir = tmp_path / "runs" / "tiny"
    proc = autoft("study", "run", study, "--no-progress", start_new_session=True)
    assert wait_for(lambda: states(run_dir)[:2] == ["COMPLETE", "RUNNING"]), proc.communicate()[0]
    proc.send_signal(signal.SIGTERM)  # what a scheduler or `kill` sends
    out = finish(proc, 60)
    assert proc.returncode == 143, out
    assert "terminated; run the same command again to resume" in out
    assert "Traceback" not in out and "Warning" not in out, out
    trial = load(run_dir).trials[1]
    assert trial.state.name == "FAIL" and trial.user_attrs["reason"] == "terminated (SIGTERM)"
    assert json.loads((run_dir / "leaderboard.json").read_text())["trials"]


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT])
def test_a_stop_signal_in_the_middle_of_recording_an_outcome_waits_for_the_whole_record(stop, study_file, monkeypatch):
    """Ctrl-C or SIGTERM while a trial's outcome is being written: the outcome is recorded whole, then the
    signal stops the study. Raised halfway, it left the trial RUNNING with half its attributes (the
    interruption then failed a trial that had finished), or a transaction holding SQLite's lock."""
    from autoft import errors
    from autoft.config import load_study
    from autoft.ledger import Ledger
    from autoft.outcome import TrialOutcome

    config, _ = load_study(study_file())
    config.run_dir.mkdir(parents=True)
    ledger = Ledger.open(config)
    trial = ledger.ask()
    write = trial.set_user_attr

    def write_then_signal(key, value):
        write(key, value)
        if key == "metrics":  # the first of the outcome's attributes
            os.kill(os.getpid(), stop)

    monkeypatch.setattr(trial, "set_user_attr", write_then_signal)
    errors.forget_stop_signals()
    previous = signal.signal(stop, errors.on_stop_signal)
    try:
        with pytest.raises(KeyboardInterrupt) as raised:
            ledger.tell(trial, TrialOutcome(state="complete", value=0.9, metrics={"accuracy": 0.9}))
    finally:
        signal.signal(stop, previous)
        errors.forget_stop_signals()
    assert isinstance(raised.value, errors.Terminated) == (stop == signal.SIGTERM)
    (recorded,) = ledger.trials()
    assert recorded.state.name == "COMPLETE" and recorded.value == 0.9
    assert recorded.user_attrs["metrics"] == {"accuracy": 0.9}
    ledger.fail(trial, "terminated (SIGTERM)")  # what the interruption then writes: a no-op, and no wait
    assert ledger.trials()[0].state.name == "COMPLETE"


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT])
def test_a_stop_signal_just_after_the_storage_made_a_trial_fails_it(stop, tmp_path, study_file, cli, monkeypatch):
    """The storage holds a new trial before Optuna's ask() returns it; a signal in between left that trial
    RUNNING, failed by no one (until a later run found it orphaned). It is failed now, with the reason."""
    import optuna

    ask = optuna.study.Study.ask

    def ask_then_signal(self, *args, **kwargs):
        trial = ask(self, *args, **kwargs)
        os.kill(os.getpid(), stop)
        return trial

    monkeypatch.setattr(optuna.study.Study, "ask", ask_then_signal)
    result = cli("study", "run", study_file(search={"n_trials": 2}), "--no-progress")
    assert result.code == (143 if stop == signal.SIGTERM else 130), result.err
    (trial,) = load(tmp_path / "runs" / "tiny").trials
    reason = "terminated (SIGTERM)" if stop == signal.SIGTERM else "interrupted (Ctrl-C)"
    assert trial.state.name == "FAIL" and trial.user_attrs["reason"] == reason


NAN_METRIC = """
import autoft
from autoft import hookimpl


@hookimpl
def register_metrics(register):
    register(autoft.Metric("undefined", lambda y, p, proba: float("nan")))
"""


def test_trials_whose_objective_is_nan_are_failed_everywhere(tmp_path, study_file, cli):
    """Failed in the storage, on screen (not '✓ complete') and in the count of failures in a row that stops a
    study, which ends in one line, exit 2, with no best model."""
    (tmp_path / "nan_metric.py").write_text(NAN_METRIC)
    path = study_file(
        study={"plugins": ["nan_metric.py"]},
        search={"n_trials": 5, "objective": "undefined"},
        space={"epochs": 1, "batch_size": 16},
    )
    result = cli("study", "run", path, "--no-progress")
    assert result.code == 2 and result.err.count("\n") == 1, result.err
    assert "3 trials failed in a row" in result.err and "the objective is not a finite number" in result.err
    assert "✓" not in result.out and result.out.count("✗") == 3
    assert [t.state.name for t in load(tmp_path / "runs" / "tiny").trials] == ["FAIL"] * 3
    assert not (tmp_path / "runs" / "tiny" / "best").exists()


def test_a_study_that_ends_with_no_complete_trial_says_so_and_exits_2(tmp_path, study_file, cli):
    """A budget spent before any trial completes: one line naming it, not an exit 0 with nothing saved."""
    result = cli("study", "run", study_file(), "--budget", "1s", "--no-progress")
    assert result.code == 2 and result.err.count("\n") == 1, result.err
    assert "no trial completed, so no model was evaluated or saved" in result.err
    assert not (tmp_path / "runs" / "tiny" / "best").exists()
