"""Cohen's kappa: agreement with the true labels beyond what chance would give."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import cohen_kappa_score

from autoft import Metric


def cohen_kappa(y_true: np.ndarray, y_pred: np.ndarray, proba: np.ndarray) -> float:
    """1 is perfect agreement, 0 is chance; NaN-free when a split has one class."""
    if len(np.union1d(y_true, y_pred)) < 2:
        return float(np.array_equal(y_true, y_pred))
    return float(cohen_kappa_score(y_true, y_pred))


COHEN_KAPPA = Metric("cohen_kappa", cohen_kappa, description="Cohen's kappa: agreement beyond chance")
