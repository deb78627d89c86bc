"""MLflow tracking (``[tracking] mlflow = true``): a run per trial, and a ``best`` run with the model and report.

Each trial becomes a run named ``trial-<n>`` in the experiment ``[tracking] mlflow_experiment``
(default: the study name): its strategy and sampled parameters as params; every evaluation's
``train/loss``, ``epoch`` and ``validation/<metric>`` at its optimizer step; its best validation
scores and cost once; tags ``study``, ``strategy``, ``state``, ``reason``, ``trial``, ``kind``.
The run's status is FINISHED (complete), KILLED (pruned) or FAILED. When the study ends, a run
named ``best`` holds the best trial's ``test/<metric>`` and ``best_validation/<metric>`` scores and,
as artifacts, ``best/`` (the model), ``evaluation/``, ``report.html``, ``report.md`` and the
leaderboard; a resumed study's new ``best`` run renames the earlier one ``best-superseded``.

The default store is SQLite in the run folder (``sqlite:///<run folder>/mlflow.db``, artifacts in
``<run folder>/mlartifacts``): offline, and what MLflow 3 recommends over a ``./mlruns`` file store.
``mlflow ui --backend-store-uri sqlite:///runs/<study>/mlflow.db`` shows it.
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
from pathlib import Path
from typing import Any

from autoft import hookimpl
from autoft_plugins.tracking import best_summary, evaluation_scalars, guarded, mlflow_uri, trial_params, trial_summary

#: a trial's state -> its MLflow run status
STATUS = {"complete": "FINISHED", "pruned": "KILLED", "failed": "FAILED"}
#: MLflow's limits on one log_batch call, and on a param's and a tag's value
PARAMS_PER_BATCH, METRICS_PER_BATCH, PARAM_LENGTH, TAG_LENGTH = 100, 1000, 6000, 8000
#: what the ``best`` run keeps of the run folder: (file or folder, artifact path)
ARTIFACTS = (
    ("best", "best"),
    ("evaluation", "evaluation"),
    ("report.html", None),
    ("report.md", None),
    ("leaderboard.csv", None),
    ("leaderboard.md", None),
)

_clients: dict[str, Any] = {}


@hookimpl
def trial_finished(study_name, record, history, config):
    if config is None or not config.tracking.mlflow or record is None:
        return
    uri = mlflow_uri(config)
    guarded("MLflow", uri, f"trial {record['trial']}", lambda: log_trial(uri, study_name, record, history, config))


@hookimpl
def study_finished(study_name, run_dir, best, config):
    if config is None or not config.tracking.mlflow or best is None:
        return
    uri = mlflow_uri(config)
    guarded("MLflow", uri, "the best model", lambda: log_best(uri, study_name, Path(run_dir), best, config))


def log_trial(uri: str, study_name: str, record: dict, history: list[dict], config: Any) -> str:
    """Log one trial as a run; return its id."""
    from mlflow.entities import Metric, Param

    client = _client(uri)
    end = _now()
    duration = record.get("duration_seconds")
    tags = {
        "study": study_name,
        "kind": "trial",
        "trial": str(record["trial"]),
        "strategy": record.get("strategy", ""),
        "state": record["state"],
        "reason": (record.get("reason") or "")[:TAG_LENGTH],
        "objective": config.objective.name,
    }
    run = client.create_run(
        _experiment(client, uri, config),
        start_time=end - int(duration * 1000) if duration else end,
        tags=tags,
        run_name=f"trial-{record['trial']}",
    )
    run_id = run.info.run_id
    try:
        params = [Param(k, _text(v)) for k, v in trial_params(record).items()]
        metrics = [
            Metric(k, v, end, int(entry["step"])) for entry in history for k, v in evaluation_scalars(entry).items()
        ]
        last_step = int(history[-1]["step"]) if history else 0
        metrics += [Metric(k, v, end, last_step) for k, v in trial_summary(record).items()]
        _log(client, run_id, params, metrics)
    except BaseException:
        with contextlib.suppress(Exception):  # the first failure is the one to report
            client.set_terminated(run_id, "FAILED")
        raise
    client.set_terminated(run_id, STATUS.get(record["state"], "FINISHED"), end_time=_now())
    return run_id


def log_best(uri: str, study_name: str, run_dir: Path, best: dict, config: Any) -> str:
    """Log the study's best trial (test scores, model, report) as a run named ``best``; return its id."""
    from mlflow.entities import Metric, Param

    client = _client(uri)
    experiment = _experiment(client, uri, config)
    number = best["trial"]
    tags = {"study": study_name, "kind": "best", "trial": str(number), "objective": best.get("objective", "")}
    found = client.search_runs(
        [experiment],
        filter_string=f"tags.kind = 'trial' AND tags.trial = '{number}' AND tags.study = '{_quoted(study_name)}'",
        order_by=["attributes.start_time DESC"],
        max_results=1,
    )
    if found:
        tags["trial_run_id"] = found[0].info.run_id
        tags["strategy"] = found[0].data.tags.get("strategy", "")
    earlier = client.search_runs(
        [experiment], filter_string=f"tags.kind = 'best' AND tags.study = '{_quoted(study_name)}'"
    )
    for old in earlier:  # a resumed study: the newest run named best is the best
        if old.info.run_name == "best":
            client.update_run(old.info.run_id, name="best-superseded")
    run = client.create_run(experiment, tags=tags, run_name="best")
    run_id = run.info.run_id
    try:
        trial = run_dir / "best" / "trial.json"
        params = json.loads(trial.read_text()).get("params", {}) if trial.is_file() else {}
        now = _now()
        metrics = [Metric(k, v, now, 0) for k, v in best_summary(best).items()]
        _log(client, run_id, [Param(k, _text(v)) for k, v in params.items()], metrics)
        for name, artifact_path in ARTIFACTS:
            path = run_dir / name
            if path.is_dir():
                client.log_artifacts(run_id, str(path), artifact_path)
            elif path.is_file():
                client.log_artifact(run_id, str(path), artifact_path)
    except BaseException:
        with contextlib.suppress(Exception):  # the first failure is the one to report
            client.set_terminated(run_id, "FAILED")
        raise
    client.set_terminated(run_id, "FINISHED")
    return run_id


def _client(uri: str) -> Any:
    if uri not in _clients:
        for name in ("mlflow.store.db.utils", "alembic"):  # table creation chatter on a new SQLite store
            logging.getLogger(name).setLevel(logging.WARNING)
        from mlflow import MlflowClient

        _clients[uri] = MlflowClient(tracking_uri=uri)
    return _clients[uri]


def _experiment(client: Any, uri: str, config: Any) -> str:
    """The study's experiment id (created on first use; in the default store, with artifacts in the run folder)."""
    name = config.tracking.mlflow_experiment or config.name
    found = client.get_experiment_by_name(name)
    if found is not None:
        if found.lifecycle_stage == "deleted":
            raise RuntimeError(
                f"the MLflow experiment '{name}' is deleted; restore it or set [tracking] mlflow_experiment"
            )
        return found.experiment_id
    artifacts = None if config.tracking.mlflow_tracking_uri else (config.run_dir / "mlartifacts").resolve().as_uri()
    return client.create_experiment(name, artifact_location=artifacts)


def _log(client: Any, run_id: str, params: list, metrics: list) -> None:
    for i in range(0, len(params), PARAMS_PER_BATCH):
        client.log_batch(run_id, params=params[i : i + PARAMS_PER_BATCH])
    for i in range(0, len(metrics), METRICS_PER_BATCH):
        client.log_batch(run_id, metrics=metrics[i : i + METRICS_PER_BATCH])


def _text(value: Any) -> str:
    return str(value)[:PARAM_LENGTH]


def _quoted(text: str) -> str:
    return text.replace("\\", "\\\\").replace("'", "\\'")


def _now() -> int:
    return int(time.time() * 1000)
