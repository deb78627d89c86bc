"""Synchronous successive halving: trials wait at each rung for the rest of their bracket.

Optuna's ``SuccessiveHalvingPruner`` (``pruner = "asha"``) decides at once, from the
trials that reached a rung before: on a few trials the first ones meet no rival there
and train to their end however poor they are (docs/performance.md). Here
(``pruner = "sha"``) a bracket of trials each trains to its first rung and waits
there, its process stopped, until every trial of the bracket has reached it; the
best ``1/factor`` of them go on to the next rung, the others end, pruned with the
score they reached; and so on until one is left, which trains to its end.

A bracket's rung ``k`` is a trial's first evaluation at or past ``first * factor**k``
(thousandths of an epoch, ``autoft.rungs``) and past the least training its trials were
last compared at: trials compared at half an epoch are next compared at their first
epoch's end. Trials evaluate at different points (``eval_every`` counts steps, of which a
larger batch makes fewer; near ``rung_min_samples`` one batch size reaches a rung inside the
first epoch that another misses): one whose last evaluation is at the
next rung already waits on without training, so the bracket next compares its trials at
the same point where their evaluations allow (a batch-32 trial first scored at one epoch,
when the batch-16 trials were scored at half of one, meets them again at one epoch rather
than training a second). A trial that ends before a rung (its last epoch, a failure) counts
in its cohort's size but takes no place at the next rung: the best ``1/factor`` places go to
trials still waiting, so one that completed leading at a rung does not end the bracket.
A waiting trial keeps its memory: a bracket takes no more trials once the memory left
would not hold another (``WorkerPool.room_to_wait``), and compares those it has.

This module only decides; the search backend starts, resumes and ends the trials
(``plugins/backends/optuna.py``), on workers that can stop a trial's process
(:attr:`autoft.workers.Worker.can_pause`).
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field

#: a reporter's answer to an evaluation: wait here until resumed (then the answer comes)
PAUSE = "pause"


@dataclass
class _Member:
    number: int
    score: float = math.nan  # its last reported score
    resource: int = 0  # and how far it had trained then
    waiting: bool = False  # stopped at its rung
    ended: bool = False


@dataclass
class _Bracket:
    size: int  # trials it takes
    threshold: int  # the resource at which its trials next wait (its next rung)
    members: dict[int, _Member] = field(default_factory=dict)
    level: int = 0  # the rung its trials are on their way to
    cohort: list[int] = field(default_factory=list)  # the trials compared at ``level``
    closed: bool = False  # takes no more trials
    solo: bool = False  # one trial left: it trains to its end without waiting

    @property
    def done(self) -> bool:
        return self.closed and all(m.ended for m in self.members.values())


class SynchronousHalving:
    """The decisions of synchronous successive halving over a study's trials, bracket after bracket.

    ``bracket``: trials a bracket takes (a last bracket takes the remainder when fewer than
    ``factor`` would be left for another); ``first``: the smallest rung's resource; ``maximize``:
    the objective's direction. The backend tells it what happens (:meth:`began`, :meth:`rule` at
    each evaluation, :meth:`ended`, :meth:`close` when no more trials will start) and asks it what
    to do (:meth:`may_begin`, :meth:`next_resume`).
    """

    def __init__(self, trials: int, first: int, factor: int, maximize: bool, bracket: int | None = None):
        self.left = trials  # trials still to begin
        self.first = max(1, first)
        self.factor = factor
        self.maximize = maximize
        self.bracket_size = bracket or factor**2
        self.brackets: list[_Bracket] = []
        self._of: dict[int, _Bracket] = {}
        self.resumes: deque[tuple[int, bool]] = deque()  # waiting trials to resume: (number, stop)

    # --- what the backend asks --------------------------------------------------------------------

    def may_begin(self) -> bool:
        """Whether a new trial may start now: the open bracket has room, or the last one has compared its
        trials at their first rung (or they all ended)."""
        if self.left <= 0:
            return False
        last = self.brackets[-1] if self.brackets else None
        return last is None or not last.closed or last.level > 0 or last.done

    def next_resume(self, parked: set[int]) -> tuple[int, bool] | None:
        """The first waiting trial to resume among ``parked`` (those ready to be): (number, stop)."""
        for job in self.resumes:
            if job[0] in parked:
                self.resumes.remove(job)
                return job
        return None

    @property
    def filling(self) -> bool:
        """Whether a trial begun now would join a bracket still taking trials (and wait at its first rung)."""
        return bool(self.brackets) and not self.brackets[-1].closed

    @property
    def waiting(self) -> set[int]:
        """Trials waiting at a rung (or to be resumed)."""
        return {m.number for b in self.brackets for m in b.members.values() if m.waiting}

    # --- what the backend tells ---------------------------------------------------------------------

    def began(self, number: int) -> None:
        if not self.brackets or self.brackets[-1].closed:
            size = self.bracket_size if self.left - self.bracket_size >= self.factor else self.left
            self.brackets.append(_Bracket(size=max(1, size), threshold=self.first))
        bracket = self.brackets[-1]
        bracket.members[number] = _Member(number)
        bracket.cohort.append(number)
        self._of[number] = bracket
        self.left -= 1
        if len(bracket.members) >= bracket.size:
            bracket.closed = True
            self._settle(bracket)

    def rule(self, number: int, value: float, resource: int, final: bool) -> bool | str:
        """A trial's evaluation: False (go on), True (stop, pruned) or :data:`PAUSE` (wait at this rung)."""
        bracket = self._of.get(number)
        if bracket is None:
            return False
        member = bracket.members[number]
        member.score, member.resource = value, resource
        if final or bracket.solo or resource < bracket.threshold:
            return False
        member.waiting = True
        self._settle(bracket)
        # the last of its rung: it has its answer already, and need not stop to hear it
        for job in list(self.resumes):
            if job[0] == number:
                self.resumes.remove(job)
                member.waiting = False
                return job[1]
        return PAUSE

    def ended(self, number: int, value: float | None = None) -> None:
        """A trial ended (complete, pruned or failed); ``value``: its last reported score, if any."""
        bracket = self._of.get(number)
        if bracket is None:
            return
        member = bracket.members[number]
        member.ended, member.waiting = True, False
        if value is not None and math.isnan(member.score):
            member.score = value
        self._settle(bracket)

    def close(self, bracket_only: bool = False) -> None:
        """No more trials will start (n_trials, timeout, budget): the open bracket compares those it has.

        ``bracket_only``: only the open bracket takes no more (memory would not hold another waiting
        trial); later trials start a new one once it has compared its trials.
        """
        if not bracket_only:
            self.left = 0
        for bracket in self.brackets:
            if not bracket.closed:
                bracket.closed = True
                self._settle(bracket)

    # --- the rule itself ----------------------------------------------------------------------------

    def _settle(self, bracket: _Bracket) -> None:
        """When every trial of the cohort waits at the rung or has ended, keep the best 1/factor."""
        if not bracket.closed or bracket.solo:
            return
        cohort = [bracket.members[n] for n in bracket.cohort]
        if not all(m.waiting or m.ended for m in cohort) or not any(m.waiting for m in cohort):
            return
        # the rung's places go to trials that can use them: one that ended at or before the rung (its
        # last epoch) is done, and passes its place to the next best still waiting, so a short trial
        # that leads at a rung does not end the bracket (it would have, finpb-cpu seed 1, 2026-11-28)
        keep = max(1, math.ceil(len(cohort) / self.factor))
        ranked = sorted((m for m in cohort if m.waiting), key=self._rank)
        going, stopped = ranked[:keep], ranked[keep:]
        bracket.level += 1
        bracket.cohort = [m.number for m in going]
        bracket.solo = len(going) <= 1
        # the next rung: geometric, and past the least training among those going on (so one trains, at least)
        least = min((m.resource for m in going), default=0)
        bracket.threshold = max(self.first * self.factor**bracket.level, least + 1)
        # those already there wait on, stopped (unless one is left: it trains to its end)
        training = going if bracket.solo else [m for m in going if m.resource < bracket.threshold]
        self.resumes.extend((m.number, True) for m in stopped)  # first: they free their memory
        self.resumes.extend((m.number, False) for m in training)  # best first
        for m in stopped + training:
            m.waiting = False

    def _rank(self, member: _Member) -> tuple[int, float]:
        """Best first; a trial without a score (it failed first) last."""
        if math.isnan(member.score):
            return (1, 0.0)
        return (0, -member.score if self.maximize else member.score)
