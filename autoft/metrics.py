"""Metrics: what a plugin registers, and computing them from predictions."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Metric:
    """A score computed from true label ids, predicted ids and class probabilities.

    ``fn(y_true, y_pred, proba)`` returns a float; ``proba`` has one column per label.
    ``greater_is_better`` sets the study direction when the metric is the objective.
    """

    name: str
    fn: Callable[[np.ndarray, np.ndarray, np.ndarray], float]
    greater_is_better: bool = True
    description: str = ""

    def __call__(self, y_true: np.ndarray, y_pred: np.ndarray, proba: np.ndarray) -> float:
        return float(self.fn(y_true, y_pred, proba))


def compute(metrics: Mapping[str, Metric], y_true: np.ndarray, proba: np.ndarray) -> dict[str, float]:
    """Every metric for one set of predictions; ``proba`` is (rows, labels)."""
    y_pred = proba.argmax(axis=1)
    return {name: m(y_true, y_pred, proba) for name, m in metrics.items()}


def better(metric: Metric, a: float, b: float | None) -> bool:
    """Whether score ``a`` beats ``b`` (None is beaten by anything)."""
    if b is None or np.isnan(b):
        return not np.isnan(a)
    return a > b if metric.greater_is_better else a < b
