"""Built-in metrics: accuracy, precision, recall and F1 (macro and weighted), MCC, log loss."""

from __future__ import annotations

import numpy as np
from sklearn import metrics as skm

from autoft import Metric, hookimpl


def _averaged(fn, average: str):
    def score(y_true: np.ndarray, y_pred: np.ndarray, proba: np.ndarray) -> float:
        return fn(y_true, y_pred, average=average, zero_division=0)

    return score


def _log_loss(y_true: np.ndarray, y_pred: np.ndarray, proba: np.ndarray) -> float:
    return skm.log_loss(y_true, np.clip(proba, 1e-7, 1.0), labels=np.arange(proba.shape[1]))


METRICS = [
    Metric("accuracy", lambda y, p, _: skm.accuracy_score(y, p), description="share of texts labelled right"),
    Metric("f1_macro", _averaged(skm.f1_score, "macro"), description="F1 averaged over classes"),
    Metric("f1_weighted", _averaged(skm.f1_score, "weighted"), description="F1 averaged by class support"),
    Metric("precision_macro", _averaged(skm.precision_score, "macro"), description="precision averaged over classes"),
    Metric("precision_weighted", _averaged(skm.precision_score, "weighted"), description="precision by support"),
    Metric("recall_macro", _averaged(skm.recall_score, "macro"), description="recall averaged over classes"),
    Metric("recall_weighted", _averaged(skm.recall_score, "weighted"), description="recall by support"),
    Metric("mcc", lambda y, p, _: skm.matthews_corrcoef(y, p), description="Matthews correlation coefficient"),
    Metric("log_loss", _log_loss, greater_is_better=False, description="cross-entropy of the probabilities"),
]


@hookimpl
def register_metrics(register):
    for metric in METRICS:
        register(metric)
