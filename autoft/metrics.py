"""Metrics: what a plugin registers, and computing them from predictions."""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np

from .errors import PluginError, type_and_first_line


@dataclass(frozen=True)
class Metric:
    """A score computed from true label ids, predicted ids and class probabilities.

    ``fn(y_true, y_pred, proba)`` returns a float; ``proba`` has one column per label.
    ``greater_is_better`` sets the study direction when the metric is the objective.
    ``tasks`` are the tasks it scores: for ``regression`` it gets true and predicted numbers, and
    ``proba`` is the predictions as one column; for ``multi_label``, 0/1 matrices (rows, labels) of
    true and predicted labels, and ``proba`` each label's probability.
    """

    name: str
    fn: Callable[[np.ndarray, np.ndarray, np.ndarray], float]
    greater_is_better: bool = True
    description: str = ""
    tasks: tuple[str, ...] = ("classification",)

    def __call__(self, y_true: np.ndarray, y_pred: np.ndarray, proba: np.ndarray) -> float:
        """The score as a float; a function that fails or gives no number is named (a PluginError)."""
        try:
            value = self.fn(y_true, y_pred, proba)
        except Exception as exc:
            raise PluginError(f"metric '{self.name}' failed: {type_and_first_line(exc)}") from exc
        try:
            return float(value)
        except (TypeError, ValueError) as exc:
            raise PluginError(f"metric '{self.name}' returned {_short(value)}, not a number") from exc


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else f"{text[:57]}..."


def task_of(y_true: np.ndarray, proba: np.ndarray) -> str:
    """The task predictions are of: one column is a regression's, a 0/1 matrix of labels a multi-label's."""
    if np.ndim(y_true) == 2:
        return "multi_label"
    return "regression" if proba.shape[1] == 1 else "classification"


def compute(
    metrics: Mapping[str, Metric], y_true: np.ndarray, proba: np.ndarray, thresholds: np.ndarray | None = None
) -> dict[str, float]:
    """Every metric of the predictions' task; ``proba`` is (rows, labels), or (rows, 1) numbers for regression.

    Multi-label predictions are the labels whose probability reaches ``thresholds`` (0.5 each by default).
    """
    task = task_of(y_true, proba)
    if task == "regression":
        y_pred = proba[:, 0]
    elif task == "multi_label":
        y_pred = (proba >= (0.5 if thresholds is None else thresholds)).astype(np.int64)
        y_true = np.asarray(y_true).astype(np.int64)
    else:
        y_pred = proba.argmax(axis=1)
    # a score that is ill-defined here (one class in a split; a constant prediction) is its value (0 or NaN)
    # in the leaderboard; scikit-learn's and SciPy's warnings about it would break into the study's display
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return {name: m(y_true, y_pred, proba) for name, m in for_task(metrics, task).items()}


def for_task(metrics: Mapping[str, Metric], task: str) -> dict[str, Metric]:
    """The metrics that score ``task``'s predictions."""
    return {name: m for name, m in metrics.items() if task in m.tasks}


@dataclass(frozen=True)
class Objective:
    """What a study optimises: a metric's name and the direction the study ranks it by.

    The one place that decides which of two scores is better: the training loop (which
    evaluation's weights to keep), the checkpoint store, the leaderboard, the report and
    the search backends all ask it. A missing or NaN score is beaten by any number.
    """

    name: str
    maximize: bool = True

    @property
    def direction(self) -> str:
        """Optuna's word for it: ``maximize`` or ``minimize``."""
        return "maximize" if self.maximize else "minimize"

    def better(self, a: float | None, b: float | None) -> bool:
        """Whether score ``a`` beats ``b`` (None and NaN beat nothing and are beaten by any number)."""
        if a is None or math.isnan(a):
            return False
        if b is None or math.isnan(b):
            return True
        return a > b if self.maximize else a < b

    def rank_key(self, value: float | None) -> tuple[bool, float]:
        """A sort key that puts the best score first and missing scores last."""
        if value is None or math.isnan(value):
            return (True, 0.0)
        return (False, -value if self.maximize else value)

    def best(self, values):
        """The best of ``values`` (numbers, None or NaN); None when none is a number."""
        best = None
        for value in values:
            if self.better(value, best):
                best = value
        return best
