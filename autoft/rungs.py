"""Multi-fidelity search: where a trial is evaluated and how far along it is.

A trial's progress (its *resource*, what a pruner or scheduler compares trials at)
is counted in thousandths of an epoch of its reported phases: ``500`` is half an
epoch, ``3000`` three epochs. Besides every epoch's end, the loop evaluates at
rungs inside the first reported epoch, after 1/2**k of it (k = rungs .. 1: with
three, after 1/8, 1/4 and 1/2), so a poor configuration can be stopped after an
eighth of an epoch instead of a whole one. Those early evaluations are reported
at their nominal resource (an eighth is ``125`` whatever the batch size), so
trials with other batch sizes meet at the same steps, and they score a seeded,
stratified sample of the validation split; epoch ends score all of it.
"""

from __future__ import annotations

import math

import numpy as np

from .data import strata

#: resource units per epoch: a resource of 1000 is one epoch of the reported phases
PER_EPOCH = 1000


def first_epoch_rungs(steps_per_epoch: int, batch_size: int, rungs: int, min_samples: int = 1) -> dict[int, int]:
    """Optimizer step (from 1) -> nominal resource of each rung inside the first epoch.

    Rungs that fall on the same step as a smaller one, on the epoch's end, or before ``min_samples``
    training texts are dropped: on a small dataset an eighth of an epoch is a handful of steps, after
    which every configuration still scores like chance, and comparing them there would prune at random.
    The minimum counts texts, not steps, so every batch size of a search keeps the same rungs (a larger
    batch reaches each fraction of the epoch in fewer steps, with as many texts seen) and trials are
    compared at the same point. Successive halving then first compares trials at the first rung left (or the
    epoch's end).
    """
    out: dict[int, int] = {}
    for k in range(rungs, 0, -1):
        step = math.ceil(steps_per_epoch / 2**k)
        # before the epoch's last step every batch is full: step * batch_size texts trained
        if step * batch_size >= min_samples and step < steps_per_epoch and step not in out:
            out[step] = PER_EPOCH // 2**k
    return out


def min_resource(rungs: int, factor: int) -> int:
    """Successive halving's smallest rung: ``PER_EPOCH / factor**m``, at or before the first reported rung.

    Its rungs (``min_resource * factor**k``) then land on epoch ends (``factor**k`` epochs, k >= m)
    where the loop reports; a ladder such as 125, 375, 1125 would miss the first epoch's end and
    let a poor trial train a second epoch before its next comparison.
    """
    first = PER_EPOCH // 2**rungs
    resource, m = PER_EPOCH, 0
    while resource > first:
        m += 1
        resource = PER_EPOCH // factor**m  # floored: factor**k * resource <= factor**k epochs' report
    return max(1, resource)


def resource_of(epochs: float) -> int:
    """The resource of an evaluation after ``epochs`` reported epochs (not at a nominal rung)."""
    return max(1, round(epochs * PER_EPOCH))


def stratified_rows(labels: np.ndarray, size: int, seed: int = 0) -> np.ndarray:
    """A seeded sample of ``size`` row indices with each label in its share (all rows when size covers them).

    Every label keeps at least one row; the rows come back sorted, so the sample is the same set
    whatever the trial. Regression targets (floats) are stratified by decile, multi-label rows (0/1
    rows) by their rarest label.
    """
    if np.ndim(labels) == 2:
        labels = strata(labels, "multi_label")
    elif np.asarray(labels).dtype.kind == "f":
        labels = strata(labels, "regression")
    n = len(labels)
    if size <= 0 or size >= n:
        return np.arange(n)
    rng = np.random.default_rng(seed)
    values, counts = np.unique(labels, return_counts=True)
    share = counts / n * size
    take = np.maximum(1, np.floor(share)).astype(int)
    while take.sum() > max(size, len(values)):  # the one row every label keeps came from the largest labels
        take[np.argmax(take)] -= 1
    while take.sum() < size:  # the rows left over go to the labels furthest below their share, with rows to give
        take[np.argmax(np.where(take < counts, share - take, -np.inf))] += 1
    picked = [rng.choice(np.flatnonzero(labels == v), size=t, replace=False) for v, t in zip(values, take)]
    return np.sort(np.concatenate(picked))
