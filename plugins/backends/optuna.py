"""The ``optuna`` backend (default): an ask-and-tell loop that keeps every trial worker busy.

Whenever a worker is free it begins a trial (Optuna's sampler picks its
configuration) and runs it on a free worker that already holds the trial's model
if one does; each evaluation is answered with the study pruner's decision, and
each ended trial is recorded; on Ctrl-C or SIGTERM the running trials are failed
with that reason.
"""

from __future__ import annotations

from autoft import Backend, RunningTrial, Search, hookimpl


class OptunaBackend(Backend):
    """Trials on this machine's trial workers, pruned by the study's Optuna pruner."""

    name = "optuna"

    def optimize(self, search: Search, options: object) -> None:
        if search.should_stop():  # nothing to run: start no workers
            return
        running: dict[object, RunningTrial] = {}
        try:
            while True:
                idle = search.workers.idle()
                while idle and not search.should_stop():  # asked only when a worker is free for another trial
                    trial = search.begin(prune=RunningTrial.should_prune)
                    worker = search.workers.pick(idle, trial.config.model)  # one that holds its model, if any
                    idle.remove(worker)
                    running[worker] = trial
                    worker.start(trial.number, trial.config, trial)
                if not running:
                    return
                search.heartbeat()
                for worker, outcome in search.workers.wait():
                    search.end(running.pop(worker), outcome)
        except KeyboardInterrupt as stop:
            search.interrupt(stop)
            raise


@hookimpl
def register_backends(register):
    register(OptunaBackend)
