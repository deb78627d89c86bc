"""Several worker processes share one study through its storage: SQLite, or a real PostgreSQL server."""

import glob
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time

import optuna
import pytest


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def postgres():
    """A throwaway PostgreSQL server on loopback (Debian's postgresql package), stopped afterwards."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not found:
        pytest.skip("no PostgreSQL server installed (apt-get install postgresql)")
    pytest.importorskip("psycopg", reason="psycopg is not installed (pip install -e '.[postgres]')")
    bin_dir = os.path.dirname(found[-1])
    data = tempfile.mkdtemp(prefix="autoft-pg-")
    as_postgres = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    if as_postgres:
        shutil.chown(data, "postgres")
    port = free_port()
    run = lambda *cmd: subprocess.run([*as_postgres, *cmd], check=True, capture_output=True)  # noqa: E731
    run(f"{bin_dir}/initdb", "-D", data, "-A", "trust", "-U", "postgres")
    log = os.path.join(data, "server.log")  # the server keeps its output: not our pipes, or run() never returns
    run(f"{bin_dir}/pg_ctl", "-D", data, "-l", log, "-o", f"-h 127.0.0.1 -p {port} -k {data}", "-w", "start")
    try:
        run(f"{bin_dir}/createdb", "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", "autoft")
        yield f"postgresql://postgres@127.0.0.1:{port}/autoft"
    finally:
        run(f"{bin_dir}/pg_ctl", "-D", data, "-m", "immediate", "stop")
        shutil.rmtree(data, ignore_errors=True)


def autoft(*args):
    return subprocess.Popen(
        [sys.executable, "-m", "autoft", *map(str, args)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_two_workers_finish_one_study_and_the_study_run_exports_the_best(backend, study_file, cli, tmp_path, request):
    storage = f"sqlite:///{tmp_path / 'shared.db'}" if backend == "sqlite" else request.getfixturevalue("postgres")
    path = study_file(
        study={"storage": storage},
        search={"n_trials": 6},
        space={"learning_rate": {"low": 5e-3, "high": 1.5e-2, "log": True}, "epochs": 2, "batch_size": 16},
    )
    workers = [autoft("study", "worker", path, "--storage", storage, "--no-progress") for _ in range(2)]
    outputs = [w.communicate(timeout=600)[0] for w in workers]
    assert [w.returncode for w in workers] == [0, 0], outputs
    study = optuna.load_study(study_name="tiny", storage=storage)
    trials = study.trials
    assert len({t.number for t in trials}) == len(trials)  # none run twice
    assert not [t for t in trials if not t.state.is_finished()]  # none lost or left running
    finished = [t for t in trials if t.state.name in ("COMPLETE", "PRUNED")]
    assert len(finished) >= 6
    pids = {t.user_attrs["pid"] for t in trials}
    assert pids <= {w.pid for w in workers} and len(pids) == 2  # both workers took trials
    assert "worker done" in outputs[0] and "worker done" in outputs[1]
    ran = [int(re.search(r"worker done: ran (\d+) trial", out).group(1)) for out in outputs]
    assert sorted(ran) == sorted(sum(t.user_attrs["pid"] == w.pid for t in trials) for w in workers)

    # the study's own run has nothing left to train: it evaluates and saves the best of all workers' trials
    main = cli("study", "run", path, "--no-progress")
    assert main.code == 0, main.err
    assert "trials finished; 0 to run" in main.out  # nothing left to train: it only exports
    metrics = json.loads((tmp_path / "runs" / "tiny" / "best" / "metrics.json").read_text())
    assert metrics["trial"] == study.best_trial.number


def test_a_worker_fails_stale_trials_of_a_worker_that_vanished(study_file, tmp_path, monkeypatch):
    """A trial whose worker stopped sending heartbeats (another machine, gone) is failed, then re-run."""
    from autoft import ledger as ledger_module
    from autoft.config import load_study

    storage = f"sqlite:///{tmp_path / 'shared.db'}"
    monkeypatch.setattr(ledger_module, "GRACE", 1)
    config, _ = load_study(study_file(study={"storage": storage}))
    ledger = ledger_module.Ledger.open(config)
    trial = ledger.ask()
    ledger.started(trial, {"host": "some-other-machine"})
    ledger.heartbeat([trial])
    time.sleep(2.5)
    assert ledger.fail_stale() == [trial.number]
    frozen = ledger.trials()[0]
    assert frozen.state.name == "FAIL" and frozen.user_attrs["reason"] == "no heartbeat for 1 s (its worker stopped)"


def test_each_gpu_gets_its_own_workers(study_file, monkeypatch):
    """One worker process per GPU lane, pinned with CUDA_VISIBLE_DEVICES (GPUs faked: CI has none)."""
    from autoft import workers as workers_module
    from autoft.config import load_study
    from autoft.display import StudyDisplay, make_console
    from autoft.workbench import Workbench

    monkeypatch.setattr(workers_module, "gpu_ids", lambda setting: [0, 1])
    before = os.environ.get("CUDA_VISIBLE_DEVICES")
    config, registry = load_study(study_file(search={"trials_per_gpu": 2}))
    bench = Workbench.load(config, registry)
    assert [lane["CUDA_VISIBLE_DEVICES"] for lane in workers_module.worker_lanes(bench)] == ["0", "0", "1", "1"]
    config, registry = load_study(study_file(search={"trials_per_gpu": 1}))
    bench = Workbench.load(config, registry)
    # started before tokenizing, as a study does: they load the model meanwhile, then take the cache
    pool = workers_module.WorkerPool(bench, StudyDisplay(make_console(), "accuracy", enabled=False))
    pool.start()
    try:
        bench.tokenize(config.run_dir / "cache")
        workers = pool.workers  # each process sees its own GPU alone
        assert [w.info["cuda_visible_devices"] for w in workers] == ["0", "1"]
        assert len({w.info["pid"] for w in workers}) == 2
        assert [w.in_worker for w in workers] == [True, True]  # the default on a GPU: one CUDA context
    finally:
        pool.close()
    assert os.environ.get("CUDA_VISIBLE_DEVICES") == before  # the study process's own view is unchanged


def test_trials_sharing_the_cpu_each_train_on_their_share_of_its_cores(study_file, monkeypatch):
    """Without a GPU, ``cpu_trials = "auto"`` runs two trials at once, each worker's torch on half the cores;
    the default runs one, on all of them."""
    from autoft import workers as workers_module
    from autoft.config import load_study
    from autoft.display import StudyDisplay, make_console
    from autoft.workbench import Workbench

    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(workers_module, "cpu_cores", lambda: 2)
    config, registry = load_study(study_file(search={"cpu_trials": "auto"}, train={"device": "cpu"}))
    bench = Workbench.load(config, registry)
    assert workers_module.worker_lanes(bench) == [{"CUDA_VISIBLE_DEVICES": "", "OMP_NUM_THREADS": "1"}] * 2
    pool = workers_module.WorkerPool(bench, StudyDisplay(make_console(), "accuracy", enabled=False))
    pool.start()
    try:
        bench.tokenize(config.run_dir / "cache")
        assert [w.info["threads"] for w in pool.workers] == [1, 1]
        assert [w.in_worker for w in pool.workers] == [False, False]  # the default on the CPU: a fork a trial
        assert pool.lanes == 2
        spare = pool.workers[1]
        pool.keep(1)  # a resumed study with one trial left to start
        assert pool.lanes == 1 and len(pool.workers) == 1
        spare.process.join(10)
        assert not spare.process.is_alive()
    finally:
        pool.close()
    assert "OMP_NUM_THREADS" not in os.environ  # the study process keeps all its cores

    monkeypatch.setattr(workers_module, "cpu_cores", lambda: 8)
    assert workers_module.worker_lanes(bench)[0]["OMP_NUM_THREADS"] == "4"
    monkeypatch.setenv("OMP_NUM_THREADS", "3")  # the user's own setting wins
    assert all("OMP_NUM_THREADS" not in lane for lane in workers_module.worker_lanes(bench))
    monkeypatch.setattr(workers_module, "cpu_cores", lambda: 1)  # one core: one trial at a time
    assert workers_module.worker_lanes(bench) == [{"CUDA_VISIBLE_DEVICES": ""}]
    config, registry = load_study(study_file(search={"cpu_trials": "auto", "n_trials": 1}))
    assert len(workers_module.worker_lanes(Workbench.load(config, registry))) == 1  # no worker without a trial
    config, registry = load_study(study_file())
    (lane,) = workers_module.worker_lanes(Workbench.load(config, registry))  # the default: one trial, all cores
    assert "OMP_NUM_THREADS" not in lane
    config, registry = load_study(study_file(search={"cpu_trials": 3}))
    monkeypatch.setattr(workers_module, "cpu_cores", lambda: 8)
    assert len(workers_module.worker_lanes(Workbench.load(config, registry))) == 3


def _open_at_once(url, barrier):
    from autoft.ledger import rdb_storage

    barrier.wait()
    rdb_storage(url)
    return True


def test_processes_that_open_a_new_storage_at_the_same_moment_all_get_it(tmp_path):
    # workers started together (or a dashboard opened as a study starts) race to create the tables
    import multiprocessing

    ctx = multiprocessing.get_context("fork")
    for attempt in range(3):
        url = f"sqlite:///{tmp_path / f'race{attempt}.db'}"
        with multiprocessing.Manager() as manager, ctx.Pool(4) as pool:
            barrier = manager.Barrier(4)
            assert pool.starmap(_open_at_once, [(url, barrier)] * 4) == [True] * 4
        assert optuna.storages.RDBStorage(url).get_all_studies() == []


def test_a_trial_whose_process_died_before_naming_itself_is_failed_once_orphaned(study_file, monkeypatch):
    """kill -9 between asking for a trial and recording its owner must not block later runs forever."""
    from autoft import ledger as ledger_module
    from autoft.config import load_study

    config, _ = load_study(study_file())
    config.run_dir.mkdir(parents=True)
    ledger = ledger_module.Ledger.open(config)
    orphan = ledger.study.ask()  # as if the process died right after: no host, no pid
    owned = ledger.ask()  # this process: alive, so left alone
    assert ledger.mark_interrupted() == []  # too young to call orphaned
    monkeypatch.setattr(ledger_module, "ORPHAN_AFTER", 0)
    assert ledger.mark_interrupted() == [orphan.number]
    states = {t.number: t.state.name for t in ledger.trials()}
    assert states == {orphan.number: "FAIL", owned.number: "RUNNING"}


FAULTS = '''
import os
from pathlib import Path

from autoft import hookimpl
from autoft_plugins.strategies.full import Full


class Logged(Full):
    """Full fine-tuning that notes the process each trial trains in; the first trial raises an error
    no trial expects, the second ends its process."""

    name = "logged"

    def prepare(self, model, options):
        if next(model.parameters()).device.type != "meta":  # a trial, not the study's check
            log = Path(os.environ["AUTOFT_TEST_PIDS"])
            before = len(log.read_text().split()) if log.exists() else 0
            with log.open("a") as f:
                f.write(f"{os.getpid()}\\n")
            if before == 0:
                raise RuntimeError("CUDA error: an illegal memory access was encountered")
            if before == 1:
                os._exit(70)
        return super().prepare(model, options)


@hookimpl
def register_strategies(register):
    register(Logged)
'''


def test_trials_in_the_worker_share_its_process_and_a_crash_gets_a_new_worker(study_file, cli, tmp_path, monkeypatch):
    """isolation = "worker": trials run one after another in the worker process itself (on a GPU, one CUDA
    context for all); a trial that raises or kills it fails alone, and the next trial gets a new worker."""
    (tmp_path / "faults.py").write_text(FAULTS)
    pids = tmp_path / "pids.txt"
    monkeypatch.setenv("AUTOFT_TEST_PIDS", str(pids))
    path = study_file(
        study={"plugins": ["faults.py"]},
        strategies={"logged": {}},
        search={"n_trials": 2, "isolation": "worker"},
        space={"learning_rate": 5e-3, "epochs": 1, "batch_size": 16},
    )
    result = cli("study", "run", path, "--no-progress")
    assert result.code == 0, result.err
    trials = optuna.load_study(study_name="tiny", storage=f"sqlite:///{tmp_path / 'runs/tiny/study.db'}").trials
    assert [t.state.name for t in trials] == ["FAIL", "FAIL", "COMPLETE", "COMPLETE"]  # 2 that finish
    assert trials[0].user_attrs["reason"] == "RuntimeError: CUDA error: an illegal memory access was encountered"
    assert trials[1].user_attrs["reason"] == "trial worker died (trial process exited with code 70 before reporting)"
    raised, died, *later = map(int, pids.read_text().split())
    assert os.getpid() not in (raised, died, *later)  # never in the study process
    assert len({raised, died, later[0]}) == 3  # a new worker after each fault
    assert len(later) == 2 and later[0] == later[1]  # then one process for both trials


def test_by_default_trials_run_in_the_worker_on_a_gpu_and_in_a_process_each_on_the_cpu(study_file):
    from autoft.workers import runs_in_worker

    gpu, cpu, user = {"CUDA_VISIBLE_DEVICES": "1"}, {"CUDA_VISIBLE_DEVICES": ""}, {}
    assert [runs_in_worker("auto", env) for env in (gpu, cpu, user)] == [True, False, False]
    assert [runs_in_worker("process", env) for env in (gpu, cpu)] == [False, False]
    assert [runs_in_worker("worker", env) for env in (gpu, cpu, user)] == [True, True, True]
