"""The Ray Tune backend: the same study on a local Ray, or on a Ray cluster.

Ray Tune runs the trials (each in its own Ray worker process, with the CPUs and
the fraction of a GPU the study asks for) and schedules them (ASHA stops poor
trials early, or none). The search algorithm is Optuna: :class:`StudySearcher`
samples every configuration from the study's own Optuna storage with the study's
sampler, so the leaderboard, the best model and the report come out exactly as
under the Optuna backend, and the study can switch backends and resume. Tokens
travel through Ray's object store, so cluster nodes need no copy of the data.
Ray's own trial folders are removed when the search ends: only autoft's best
model is kept.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import warnings
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, Literal

from ..options import option
from ._base import Backend

if TYPE_CHECKING:
    from ..study import Session


@dataclass(frozen=True)
class RayOptions:
    """The ``[search.ray]`` table."""

    address: str = option("", "Ray cluster to join: empty starts a local Ray; 'auto' or 'ray://host:10001'")
    scheduler: Literal["asha", "none"] = option("asha", "stop poor trials early (ASHA), or run every trial out")
    cpus_per_trial: float = option(1.0, "CPUs each trial reserves", gt=0)
    gpus_per_trial: float = option(
        1.0, "GPUs each trial reserves (0.5 packs two trials on a GPU); 0 without GPUs", ge=0
    )
    max_concurrent_trials: int = option(0, "trials at once; 0 lets the resources decide", ge=0)


def _searcher_class():
    from ray.tune.search import Searcher

    from ..trial import TrialOutcome
    from ._optuna import tell

    class StudySearcher(Searcher):
        """Optuna as Ray Tune's search algorithm, over the study's own storage and search space."""

        def __init__(self, session: Session):
            super().__init__(metric="objective", mode="max" if session.config.maximize else "min")
            self.session = session
            self.running: dict[str, tuple[Any, Any]] = {}

        def __getstate__(self) -> dict:
            # Ray pickles the search algorithm to restore its own runs; autoft resumes from the study
            # storage instead, so the live session stays behind.
            return {"metric": self.metric, "mode": self.mode}

        def get_state(self) -> dict:
            return {}

        def set_state(self, state: dict) -> None:
            pass

        def suggest(self, trial_id: str) -> dict | None:
            session = self.session
            if session.should_stop():
                return Searcher.FINISHED
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", message="Heartbeat of storage")
                trial = session.study.ask()
            config = session.space.suggest(trial)
            session.trial_started(trial, config)
            bar = session.display.trial(trial.number, session.summary(config))
            self.running[trial_id] = (trial, bar)
            return {"number": trial.number, "config": config.to_dict()}

        def on_trial_result(self, trial_id: str, result: dict) -> None:
            trial, bar = self.running[trial_id]
            if "outcome" in result:
                return
            value = result["objective"]
            if math.isfinite(value):
                trial.report(value, result["evaluation"] - 1)
            bar.evaluated(result["evaluation"] - 1, result.get("epoch", 0.0), {self.session.objective.name: value})
            self.session.heartbeat([t for t, _ in self.running.values()])

        def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
            trial, bar = self.running.pop(trial_id)
            if result and "outcome" in result:
                outcome = TrialOutcome(**json.loads(result["outcome"]))
            elif error:
                outcome = TrialOutcome(state="failed", reason="the Ray trial process failed (see Ray's logs)")
            else:
                last = (result or {}).get("objective")
                outcome = TrialOutcome(state="pruned", value=last, reason="stopped early by the ASHA scheduler")
            tell(self.session.study, trial, outcome)
            bar.close(outcome.state)
            self.session.trial_ended(trial.number, outcome)

    return StudySearcher


def _heartbeat_callback(searcher: Any):
    from ray.tune import Callback

    class Heartbeat(Callback):
        """Keep the running trials' heartbeats fresh while Tune runs (between evaluations too)."""

        def on_step_begin(self, iteration: int, trials: list, **info: Any) -> None:
            searcher.session.heartbeat([t for t, _ in searcher.running.values()])

    return Heartbeat()


def ray_trial(config: dict, spec: Any, tokens: dict) -> None:
    """A Ray Tune trainable: one autoft trial, reporting each evaluation and then its outcome."""
    from ray import tune

    from ..checkpoints import CheckpointStore
    from ..space import TrialConfig
    from ..workers import guarded_trial

    bench = spec.build(tokens)
    trial_config = TrialConfig.from_dict(config["config"], bench.registry)
    objective = bench.objective.name

    class Reporter:
        def progress(self, step: int, total: int, loss: float | None) -> None:
            pass

        def evaluated(self, index: int, epoch: float, metrics: dict[str, float]) -> bool:
            tune.report({"objective": metrics[objective], "evaluation": index + 1, "epoch": epoch, **metrics})
            return False  # the scheduler decides, by stopping this process

    store = CheckpointStore(bench.config.run_dir, bench.config.maximize)
    outcome = guarded_trial(bench, config["number"], trial_config, Reporter(), store)
    value = outcome.value if outcome.value is not None else float("nan")
    # the outcome travels as JSON text: Tune flattens nested dicts in results
    tune.report({"objective": value, "evaluation": len(outcome.history), "outcome": json.dumps(asdict(outcome))})


class RayBackend(Backend):
    name = "ray"
    uses_workers = False  # Ray starts its own worker processes

    def optimize(self, session: Session) -> None:
        os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")  # autoft shows progress; Ray's own tables stay quiet
        import ray
        from ray import tune
        from ray.tune.schedulers import ASHAScheduler, FIFOScheduler

        if session.should_stop():
            return
        options: RayOptions = session.config.search.ray
        started_here = not ray.is_initialized()
        if started_here:
            env = {"OMP_WAIT_POLICY": os.environ.get("OMP_WAIT_POLICY", "PASSIVE"), "TOKENIZERS_PARALLELISM": "false"}
            ray.init(
                address=options.address or None,
                include_dashboard=False,
                log_to_driver=False,
                logging_level="ERROR",
                runtime_env={"env_vars": env},
            )
        try:
            gpus = options.gpus_per_trial if ray.cluster_resources().get("GPU", 0) else 0
            bench = session.bench
            trainable = tune.with_resources(
                tune.with_parameters(ray_trial, spec=bench.spec(portable=True), tokens=bench.encoded),
                {"cpu": options.cpus_per_trial, "gpu": gpus},
            )
            max_epochs = max_evaluations(session)
            scheduler = (
                ASHAScheduler(
                    time_attr="evaluation", max_t=max_epochs, grace_period=1, reduction_factor=3, stop_last_trials=False
                )  # a trial that reaches max_t still reports its outcome
                if options.scheduler == "asha" and max_epochs > 1
                else FIFOScheduler()
            )
            remaining = session.n_trials - session.finished_count()
            searcher = _searcher_class()(session)
            ray_dir = session.config.run_dir.resolve() / "ray"
            tuner = tune.Tuner(
                trainable,
                tune_config=tune.TuneConfig(
                    metric="objective",
                    mode="max" if session.config.maximize else "min",
                    search_alg=searcher,
                    scheduler=scheduler,
                    num_samples=remaining,
                    max_concurrent_trials=options.max_concurrent_trials or None,
                ),
                run_config=tune.RunConfig(
                    name=session.config.name,
                    storage_path=str(ray_dir),
                    verbose=0,
                    callbacks=[_heartbeat_callback(searcher)],
                ),
            )
            tuner.fit()
            shutil.rmtree(ray_dir, ignore_errors=True)
        finally:
            if started_here:
                ray.shutdown()


def max_evaluations(session: Session) -> int:
    """The most evaluations a trial can report (ASHA's horizon): the most epochs the space allows."""
    if session.config.train.eval_every:
        return 10_000
    tables = [session.config.space, *(s.overrides for s in session.config.strategies.values())]
    epochs = max([_largest(t["epochs"]) for t in tables if "epochs" in t] or [3])
    head = max(
        [_largest(s.options["head_epochs"]) for s in session.config.strategies.values() if "head_epochs" in s.options]
        or [0]
    )
    return int(epochs + head)


def _largest(value: Any) -> float:
    from ..options import Choice, Range

    if isinstance(value, Range):
        return value.high
    if isinstance(value, Choice):
        return max(value.values)
    return value
