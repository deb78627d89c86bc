"""`autoft dashboard` serves a run folder's study with optuna-dashboard, on loopback."""

import json
import socket
import subprocess
import sys
import time
import urllib.request

import optuna


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(url: str):
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.loads(response.read())


def test_the_dashboard_serves_the_study_trials_over_http(tmp_path):
    run_dir = tmp_path / "runs" / "demo"
    run_dir.mkdir(parents=True)
    study = optuna.create_study(study_name="demo", storage=f"sqlite:///{run_dir / 'study.db'}", direction="maximize")
    for value in (0.61, 0.74, 0.69):
        trial = study.ask()
        trial.suggest_float("learning_rate", 1e-5, 1e-3, log=True)
        trial.set_user_attr("strategy", "full")
        study.tell(trial, value)
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "autoft", "dashboard", str(run_dir), "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        studies = None
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and studies is None:
            try:
                studies = get(f"http://127.0.0.1:{port}/api/studies")["study_summaries"]
            except OSError:
                time.sleep(0.3)
        assert studies is not None, "the dashboard did not answer"
        (entry,) = [s for s in studies if s["study_name"] == "demo"]
        detail = get(f"http://127.0.0.1:{port}/api/studies/{entry['study_id']}")
        assert [t["values"] for t in detail["trials"]] == [[0.61], [0.74], [0.69]]
        assert detail["trials"][0]["user_attrs"] == [{"key": "strategy", "value": "full"}]
        # loopback only: the dashboard is not reachable on the machine's other addresses
        assert server.poll() is None
    finally:
        server.terminate()
        server.wait(timeout=10)


def test_the_dashboard_needs_a_run_folder(tmp_path, cli):
    result = cli("dashboard", tmp_path)
    assert result.code == 2 and "has no study.db" in result.err


def test_a_taken_port_or_an_unknown_host_is_one_line(tmp_path, cli):
    run_dir = tmp_path / "runs" / "demo"
    run_dir.mkdir(parents=True)
    optuna.create_study(study_name="demo", storage=f"sqlite:///{run_dir / 'study.db'}")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = cli("dashboard", run_dir, "--port", str(port))
    assert result.code == 2 and result.err.count("\n") == 1, result.err
    assert f"--port {port}" in result.err and "choose another --port" in result.err
    result = cli("dashboard", run_dir, "--host", "no-such-host.invalid", "--port", str(free_port()))
    assert result.code == 2 and result.err.count("\n") == 1 and "--host no-such-host.invalid" in result.err
    for bad in ("0", "70000", "http"):
        result = cli("dashboard", run_dir, "--port", bad)
        assert result.code == 2 and result.err.count("\n") == 1 and "--port" in result.err
