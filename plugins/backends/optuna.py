"""The ``optuna`` backend (default): an ask-and-tell loop that keeps every trial worker busy.

Whenever a worker is free it begins a trial (Optuna's sampler picks its
configuration) and runs it on a free worker that already holds the trial's model
if one does; each evaluation is answered with the study pruner's decision, and
each ended trial is recorded; on Ctrl-C or SIGTERM the running trials are failed
with that reason.

Under synchronous successive halving (``pruner = "sha"``, the CPU's default,
``autoft.halving``) a trial may instead wait at a rung, its process stopped on the
worker that ran it, which takes other trials meanwhile; a free worker first resumes
the waiting trials the halving has decided on (to go on, or to end pruned), then
begins new ones while the halving has room for them.
"""

from __future__ import annotations

from autoft import Backend, RunningTrial, Search, hookimpl


class OptunaBackend(Backend):
    """Trials on this machine's trial workers, pruned by the study's Optuna pruner (or halved in brackets)."""

    name = "optuna"

    def optimize(self, search: Search, options: object) -> None:
        if search.should_stop():  # nothing to run: start no workers
            return
        halving = search.halving()
        if halving is not None:

            def rule(trial: RunningTrial) -> bool | str:
                return halving.rule(trial.number, trial.value, trial.resource, trial.final)

        else:
            rule = RunningTrial.should_prune
        running: dict[object, RunningTrial] = {}  # worker -> the trial it runs
        waiting: dict[int, RunningTrial] = {}  # trial number -> a trial waiting at its rung
        try:
            while True:
                idle = search.workers.idle()
                while idle:  # asked only when a worker is free for another trial
                    stop = search.should_stop()
                    if halving is not None:
                        if stop:
                            halving.close()  # no more trials will join: those waiting are compared
                        parked = {n: w for w in idle for n in w.parked}
                        job = halving.next_resume(set(parked))
                        if job is not None:
                            number, prune = job
                            worker = parked[number]
                            idle.remove(worker)
                            running[worker] = trial = waiting.pop(number)
                            trial.resumed()  # its wait ends here (not at its next report, a step later)
                            worker.resume(number, prune)
                            continue
                        if halving.filling and not search.workers.room_to_wait():
                            halving.close(bracket_only=True)  # memory for no more waiting trials: compare these
                            continue
                        if not halving.may_begin():
                            break
                    if stop:
                        break
                    trial = search.begin(prune=rule)
                    if halving is not None:
                        halving.began(trial.number)
                    worker = search.workers.pick(idle, trial.config.model)  # one that holds its model, if any
                    idle.remove(worker)
                    running[worker] = trial
                    worker.start(trial.number, trial.config, trial)
                if not running:
                    if not waiting:
                        return
                    if halving is not None and not halving.resumes:
                        halving.close()  # nothing runs and nothing can start: compare the waiting trials
                        if not halving.resumes:
                            raise RuntimeError(f"trials {sorted(waiting)} wait at a rung with nothing to resume them")
                    continue
                search.heartbeat()
                for worker, outcome in search.workers.wait():
                    trial = running.pop(worker)
                    if halving is not None:
                        halving.ended(trial.number, trial.value)
                    search.end(trial, outcome)
                for worker in [w for w, t in running.items() if t.number in w.parked]:  # now waiting at a rung
                    trial = running.pop(worker)
                    waiting[trial.number] = trial
        except KeyboardInterrupt as stop:
            search.interrupt(stop)
            raise


@hookimpl
def register_backends(register):
    register(OptunaBackend)
