"""The formulas behind the built-in regression and multi-label scores, in one place.

The metric plugins (``autoft_plugins.metrics``) score trials with them, and the evaluation of the best
model (``evaluation_regression``, ``evaluation_multilabel``) reports them, so both give the same numbers.
numpy only; scipy is imported when a correlation is first computed.
"""

from __future__ import annotations

import numpy as np


def rmse(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    return float(np.sqrt(np.mean((np.asarray(y_pred, dtype=np.float64) - np.asarray(y_true, dtype=np.float64)) ** 2)))


def mae(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    return float(np.mean(np.abs(np.asarray(y_pred, dtype=np.float64) - np.asarray(y_true, dtype=np.float64))))


def r2(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """1 - squared error / the targets' spread; 0 where the targets do not vary (as scikit-learn's r2_score)."""
    y_true = np.asarray(y_true, dtype=np.float64)
    error = np.asarray(y_pred, dtype=np.float64) - y_true
    spread = float(np.sum((y_true - y_true.mean()) ** 2))
    squared = float(np.sum(error**2))  # as scikit-learn: an error whose square underflows counts as none
    if spread == 0:
        return 1.0 if squared == 0 else 0.0
    return 1 - squared / spread


def correlation(kind: str, y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Pearson's (``kind="pearson"``) or Spearman's correlation; 0 where it is undefined (a constant side)."""
    from scipy import stats

    y_true, y_pred = np.asarray(y_true, dtype=np.float64), np.asarray(y_pred, dtype=np.float64)
    if np.ptp(y_pred) == 0 or np.ptp(y_true) == 0:
        return 0.0
    return float({"pearson": stats.pearsonr, "spearman": stats.spearmanr}[kind](y_true, y_pred)[0])


def regression(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
    """RMSE, MAE, R², Pearson and Spearman correlation."""
    return {
        "rmse": rmse(y_true, y_pred),
        "mae": mae(y_true, y_pred),
        "r2": r2(y_true, y_pred),
        "pearson": correlation("pearson", y_true, y_pred),
        "spearman": correlation("spearman", y_true, y_pred),
    }


def subset_accuracy(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """The share of rows whose whole set of labels is right (0/1 matrices, rows by labels)."""
    return float(np.mean((np.asarray(y_pred) == np.asarray(y_true)).all(axis=1)))


def hamming_loss(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """The share of wrong yes/no decisions (0/1 matrices, rows by labels)."""
    return float(np.mean(np.asarray(y_true) != np.asarray(y_pred)))
