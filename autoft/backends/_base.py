"""The one interface between a search backend and the study it searches.

A backend only schedules: it decides when to start a trial, where it runs and
when to stop it early. Everything else about a trial's life is the study's and
happens in one place, behind :class:`Search`: asking the storage for a trial and
sampling its configuration (:meth:`Search.begin`), recording its outcome, the
checkpoints, the leaderboard and the observer hooks (:meth:`Search.end`), and
failing it when the study is interrupted (:meth:`Search.interrupt`).

A backend is a plugin (``register_backends``) with an ``Options`` dataclass, the
``[search.<name>]`` table of a study file.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from ..halving import PAUSE, SynchronousHalving

if TYPE_CHECKING:
    from ..config import StudyConfig
    from ..metrics import Objective
    from ..space import TrialConfig
    from ..trial import TrialOutcome
    from ..workbench import Workbench
    from ..workers import WorkerPool

#: a backend's pruning rule: called after each reported evaluation of a trial; True stops it (pruned),
#: :data:`autoft.halving.PAUSE` has it wait at this evaluation until the backend resumes it (only on a
#: worker that ``can_pause``)
Pruning = Callable[["RunningTrial"], "bool | str"]


@dataclass(frozen=True)
class NoBackendOptions:
    """A backend without settings of its own."""


@dataclass
class RunningTrial:
    """A trial between :meth:`Search.begin` and :meth:`Search.end`, and the reporter its training loop talks to.

    Each event fans out: progress to the bar and the heartbeat; each evaluation to the bar, the
    heartbeat, the storage (the intermediate score a pruner reads) and the backend's ``prune`` rule.
    """

    number: int
    config: TrialConfig
    handle: Any  # the storage's trial (an optuna.Trial)
    objective: str
    bar: Any
    heartbeat: Callable[[], None]
    prune: Pruning | None = None
    evaluations: int = 0
    #: told of every progress report (the study's forecast watches the first trial's first steps)
    watch: Callable[[RunningTrial, int, int], None] | None = None
    #: its last reported evaluation: the objective's value, the resource it was reached at, whether its last
    value: float = math.nan
    resource: int = 0
    final: bool = False
    #: when its first evaluation came (``time.monotonic()``), or None
    first_evaluated: float | None = None
    #: seconds it has waited at rungs for its bracket (``pruner = "sha"``); since when it waits now, or None
    waited: float = 0.0
    waiting_since: float | None = None

    def resumed(self) -> None:
        """Count a wait at a rung as over (its first event after the wait, or its end)."""
        if self.waiting_since is not None:
            self.waited += time.monotonic() - self.waiting_since
            self.waiting_since = None

    def progress(self, step: int, total: int, loss: float | None) -> None:
        self.resumed()
        self.bar.progress(step, total)
        self.heartbeat()
        if self.watch is not None:
            self.watch(self, step, total)

    def evaluated(self, index: int, epoch: float, metrics: dict[str, float], resource: int, final: bool) -> bool | str:
        """Show and record the evaluation (at step ``resource``); return the backend's pruning decision.

        The rule is asked at the last evaluation too (a successive-halving pruner records the rung it
        reached), but its answer is not taken: a trial that has done all its work is never pruned.
        """
        self.resumed()
        self.evaluations += 1
        if self.first_evaluated is None:
            self.first_evaluated = time.monotonic()
        value = metrics.get(self.objective, math.nan)
        self.heartbeat()
        if not math.isfinite(value):
            self.bar.evaluated(epoch, value)
            return False
        self.value, self.resource, self.final = value, resource, final
        self.handle.report(value, resource)
        decision = self.prune(self) if self.prune else False
        waits = decision == PAUSE and not final
        self.bar.evaluated(epoch, value, waits=waits)
        if final:
            return False
        if waits:
            self.waiting_since = time.monotonic()
            return PAUSE
        return bool(decision)

    def should_prune(self) -> bool:
        """The study pruner's decision on the scores reported so far (a ready-made ``prune`` rule)."""
        return bool(self.handle.should_prune())


class Search:
    """What a backend is handed: the study's side of every trial's life."""

    config: StudyConfig
    objective: Objective
    #: the trial workers of this machine (only for backends with ``uses_workers``)
    workers: WorkerPool
    #: the study's data, tokens and model reference, for backends that start their own trial
    #: processes (``bench.spec(portable=True)`` and ``bench.encoded`` travel to them)
    bench: Workbench

    def remaining(self) -> int:
        """Trials still to finish (counting every worker's)."""
        raise NotImplementedError

    def should_stop(self) -> bool:
        """Whether to start no more trials (n_trials reached, timeout, or too many failures in a row)."""
        raise NotImplementedError

    def begin(self, prune: Pruning | None = None) -> RunningTrial:
        """Ask the storage for a trial, sample its configuration, record it, and show it.

        ``prune(trial)`` is asked after each reported evaluation; ``RunningTrial.should_prune`` is the
        study's pruner. Without a rule the trial is never stopped by autoft (a scheduler may stop it).
        """
        raise NotImplementedError

    def end(self, trial: RunningTrial, outcome: TrialOutcome) -> None:
        """Record a trial's outcome: storage, checkpoints, leaderboard, display and observer hooks."""
        raise NotImplementedError

    def interrupt(self, stop: BaseException) -> None:
        """Fail every begun trial not yet ended (Ctrl-C or SIGTERM: ``stop``), then rewrite the leaderboard."""
        raise NotImplementedError

    def horizon(self) -> int:
        """The most resource a trial of this study reports (a scheduler's ``max_t``): its longest
        reported training in thousandths of an epoch (``autoft.rungs``)."""
        raise NotImplementedError

    def first_rung(self) -> int:
        """Successive halving's smallest rung (a scheduler's grace period): ``autoft.rungs.min_resource``."""
        raise NotImplementedError

    def heartbeat(self) -> None:
        """Tell the storage the running trials are alive (rate-limited; call it as often as you like)."""
        raise NotImplementedError

    def halving(self) -> SynchronousHalving | None:
        """Synchronous successive halving's decisions for this run, when the study's pruner asks for it
        (trials wait at each rung; a backend whose workers ``can_pause`` resumes them), else None."""
        return None


class Backend:
    """Base class of search backend plugins: set ``name`` (and ``Options``); implement :meth:`optimize`."""

    name: ClassVar[str] = ""
    Options: ClassVar[type] = NoBackendOptions
    #: whether trials run on autoft's own trial workers (``search.workers``), started early for it
    uses_workers: ClassVar[bool] = True

    def optimize(self, search: Search, options: Any) -> None:
        """Run trials until ``search.should_stop()``; ``options`` is the ``[search.<name>]`` table."""
        raise NotImplementedError
