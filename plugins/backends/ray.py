"""The ``ray`` backend: the same study on a local Ray, or on a Ray cluster.

Ray Tune runs the trials (each in its own Ray worker process, with the CPUs and
the fraction of a GPU the study asks for) and schedules them (ASHA stops poor
trials early, or none). The search algorithm is Optuna: :class:`StudySearcher`
begins every trial through the study's own search, so the leaderboard, the best
model and the report come out exactly as under the Optuna backend, and the study
can switch backends and resume. Tokens travel through Ray's object store, so
cluster nodes need no copy of the data. Ray's own trial folders are removed when
the search ends: only autoft's best model is kept.
"""

from __future__ import annotations

import json
import math
import os
import shutil
from dataclasses import asdict, dataclass
from typing import Any, Literal

from autoft import Backend, RunningTrial, Search, hookimpl, option


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

    from autoft.trial import TrialOutcome

    class StudySearcher(Searcher):
        """The study's search as Ray Tune's search algorithm (Optuna samples, over the study's storage)."""

        def __init__(self, search: Search):
            super().__init__(metric="objective", mode="max" if search.objective.maximize else "min")
            self.search = search
            self.running: dict[str, RunningTrial] = {}

        def __getstate__(self) -> dict:
            # Ray pickles the search algorithm to restore its own runs; autoft resumes from the study
            # storage instead, so the live search stays behind.
            return {"metric": self.metric, "mode": self.mode}

        def get_state(self) -> dict:
            return {}

        def set_state(self, state: dict) -> None:
            pass

        def suggest(self, trial_id: str) -> dict | None:
            if self.search.should_stop():
                return Searcher.FINISHED
            trial = self.search.begin()  # no pruning rule: the scheduler stops trials
            self.running[trial_id] = trial
            return {"number": trial.number, "config": trial.config.to_dict()}

        def on_trial_result(self, trial_id: str, result: dict) -> None:
            if "evaluation" not in result:  # an outcome without a last evaluation of its own
                return
            trial = self.running[trial_id]
            metrics = {self.search.objective.name: result["score"]}
            final = "outcome" in result
            trial.evaluated(result["evaluation"] - 1, result.get("epoch", 0.0), metrics, result["resource"], final)

        def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
            trial = self.running.pop(trial_id)
            if result and "outcome" in result:
                outcome = TrialOutcome(**json.loads(result["outcome"]))
            elif error:
                outcome = TrialOutcome(state="failed", reason="the Ray trial process failed (see Ray's logs)")
            else:
                last = (result or {}).get("objective")
                outcome = TrialOutcome(state="pruned", value=last, reason="stopped early by the ASHA scheduler")
            self.search.end(trial, outcome)

    return StudySearcher


def _heartbeat_callback(searcher: Any):
    from ray.tune import Callback

    class Heartbeat(Callback):
        """Keep the running trials' heartbeats fresh while Tune runs (between evaluations too).

        It reaches the search through the searcher, whose pickled state leaves the live search
        behind (Ray pickles its callbacks with the run's state).
        """

        def on_step_begin(self, iteration: int, trials: list, **info: Any) -> None:
            searcher.search.heartbeat()

    return Heartbeat()


def ray_trial(config: dict, spec: Any, tokens: dict, model_tokens: dict | None = None) -> None:
    """A Ray Tune trainable: one autoft trial, reporting each evaluation and then its outcome.

    ``tokens`` are the first model's, ``model_tokens`` the other candidate models' (a study that searches
    the model); the trial's process loads its own model only."""
    from ray import tune

    from autoft.checkpoints import CheckpointStore
    from autoft.space import TrialConfig
    from autoft.workers import guarded_trial

    model = config["config"].get("model", "")
    bench = spec.build(tokens, model_tokens, load=model)
    trial_config = TrialConfig.from_dict(config["config"], bench.registry)
    bench = bench.for_model(model)
    objective = bench.config.objective.name

    class Reporter:
        last: dict = {}

        def progress(self, step: int, total: int, loss: float | None) -> None:
            pass

        def evaluated(self, index: int, epoch: float, metrics: dict[str, float], resource: int, final: bool) -> bool:
            report = {"score": metrics[objective], "evaluation": index + 1, "epoch": epoch, "resource": resource}
            if final:  # reported with the outcome: a scheduler that stops a trial here would lose it
                self.last = report
            else:
                tune.report({"objective": metrics[objective], **report, **metrics})
            return False  # the scheduler decides, by stopping this process

    reporter = Reporter()
    store = CheckpointStore(bench.config.run_dir, bench.config.objective)
    outcome = guarded_trial(bench, config["number"], trial_config, reporter, store)
    value = outcome.value if outcome.value is not None else math.nan
    # the outcome travels as JSON text: Tune flattens nested dicts in results
    tune.report({"objective": value, **reporter.last, "outcome": json.dumps(asdict(outcome))})


class RayBackend(Backend):
    """Ray Tune runs and schedules the trials; the study's Optuna sampler picks them."""

    name = "ray"
    Options = RayOptions
    uses_workers = False  # Ray starts its own worker processes

    def optimize(self, search: Search, options: RayOptions) -> None:
        os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")  # autoft shows progress; Ray's own tables stay quiet
        import ray
        from ray import tune
        from ray.tune.schedulers import ASHAScheduler, FIFOScheduler

        if search.should_stop():
            return
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
            bench = search.bench
            trainable = tune.with_resources(
                tune.with_parameters(
                    ray_trial, spec=bench.spec(portable=True), tokens=bench.encoded, model_tokens=bench.model_tokens()
                ),
                {"cpu": options.cpus_per_trial, "gpu": gpus},
            )
            horizon, first = search.horizon(), search.first_rung()
            scheduler = (
                ASHAScheduler(  # the rungs of the study's own pruner: first * factor**k thousandths of an epoch
                    time_attr="resource",
                    max_t=horizon,
                    grace_period=first,
                    reduction_factor=search.config.search.reduction_factor,
                    stop_last_trials=False,
                )  # a trial that reaches max_t still reports its outcome
                if options.scheduler == "asha" and horizon > first
                else FIFOScheduler()
            )
            searcher = _searcher_class()(search)
            ray_dir = search.config.run_dir.resolve() / "ray"
            tuner = tune.Tuner(
                trainable,
                tune_config=tune.TuneConfig(
                    metric="objective",
                    mode="max" if search.objective.maximize else "min",
                    search_alg=searcher,
                    scheduler=scheduler,
                    num_samples=search.remaining(),
                    max_concurrent_trials=options.max_concurrent_trials or None,
                ),
                run_config=tune.RunConfig(
                    name=search.config.name,
                    storage_path=str(ray_dir),
                    verbose=0,
                    callbacks=[_heartbeat_callback(searcher)],
                ),
            )
            try:
                tuner.fit()
            except KeyboardInterrupt as stop:
                search.interrupt(stop)
                raise
            shutil.rmtree(ray_dir, ignore_errors=True)
        finally:
            if started_here:
                ray.shutdown()


@hookimpl
def register_backends(register):
    register(RayBackend)
