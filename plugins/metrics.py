"""Built-in metrics: accuracy, precision, recall and F1 (binary, macro and weighted), MCC, log loss.

scikit-learn is imported when a metric is first computed, not when the plugin loads
(``autoft plugins list`` and ``autoft --help`` stay quick).
"""

from __future__ import annotations

import numpy as np

from autoft import Metric, hookimpl


def _sklearn(name: str):
    """The function ``name`` of ``sklearn.metrics``."""
    from sklearn import metrics

    return getattr(metrics, name)


def _plain(name: str):
    def score(y_true: np.ndarray, y_pred: np.ndarray, proba: np.ndarray) -> float:
        return _sklearn(name)(y_true, y_pred)

    return score


def _averaged(name: str, average: str):
    def score(y_true: np.ndarray, y_pred: np.ndarray, proba: np.ndarray) -> float:
        return _sklearn(name)(y_true, y_pred, average=average, zero_division=0)

    return score


def _f1(y_true: np.ndarray, y_pred: np.ndarray, proba: np.ndarray) -> float:
    if proba.shape[1] == 2:  # the F1 GLUE reports for MRPC and QQP: of the second label, the positive one
        return _sklearn("f1_score")(y_true, y_pred, pos_label=1, average="binary", zero_division=0)
    return _sklearn("f1_score")(y_true, y_pred, average="macro", zero_division=0)


def _log_loss(y_true: np.ndarray, y_pred: np.ndarray, proba: np.ndarray) -> float:
    return _sklearn("log_loss")(y_true, np.clip(proba, 1e-7, 1.0), labels=np.arange(proba.shape[1]))


METRICS = [
    Metric("accuracy", _plain("accuracy_score"), description="share of texts labelled right"),
    Metric("f1", _f1, description="F1 of the second label with two labels (GLUE's for MRPC), else f1_macro"),
    Metric("f1_macro", _averaged("f1_score", "macro"), description="F1 averaged over classes"),
    Metric("f1_weighted", _averaged("f1_score", "weighted"), description="F1 averaged by class support"),
    Metric("precision_macro", _averaged("precision_score", "macro"), description="precision averaged over classes"),
    Metric("precision_weighted", _averaged("precision_score", "weighted"), description="precision by support"),
    Metric("recall_macro", _averaged("recall_score", "macro"), description="recall averaged over classes"),
    Metric("recall_weighted", _averaged("recall_score", "weighted"), description="recall by support"),
    Metric("mcc", _plain("matthews_corrcoef"), description="Matthews correlation coefficient"),
    Metric("log_loss", _log_loss, greater_is_better=False, description="cross-entropy of the probabilities"),
]


@hookimpl
def register_metrics(register):
    for metric in METRICS:
        register(metric)
