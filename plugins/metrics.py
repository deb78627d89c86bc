"""Built-in metrics: accuracy, precision, recall and F1 (binary, macro, micro and weighted), MCC, log
loss; for multi-label also samples-F1 and Hamming loss (accuracy is then subset accuracy); for
regression RMSE, MAE, R², Pearson and Spearman correlation.

scikit-learn is imported when a metric is first computed, not when the plugin loads
(``autoft plugins list`` and ``autoft --help`` stay quick).
"""

from __future__ import annotations

from functools import partial

import numpy as np

from autoft import Metric, hookimpl, scores


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


def _score(score):
    """A score of ``autoft.scores`` (the formulas the best model's evaluation reports too) as a metric."""

    def metric(y_true: np.ndarray, y_pred: np.ndarray, proba: np.ndarray) -> float:
        return score(y_true, y_pred)

    return metric


def _log_loss(y_true: np.ndarray, y_pred: np.ndarray, proba: np.ndarray) -> float:
    return _sklearn("log_loss")(y_true, np.clip(proba, 1e-7, 1.0), labels=np.arange(proba.shape[1]))


REGRESSION = ("regression",)
#: scikit-learn's averaged scores take a multi-label 0/1 matrix as they take class ids
BOTH = ("classification", "multi_label")
MULTI_LABEL = ("multi_label",)


METRICS = [
    Metric(
        "accuracy",
        _plain("accuracy_score"),
        description="share of texts labelled right (multi-label: with exactly the right set)",
        tasks=BOTH,
    ),
    Metric("f1", _f1, description="F1 of the second label with two labels (GLUE's for MRPC), else f1_macro"),
    Metric("f1_macro", _averaged("f1_score", "macro"), description="F1 averaged over classes", tasks=BOTH),
    Metric("f1_micro", _averaged("f1_score", "micro"), description="F1 of all decisions pooled", tasks=BOTH),
    Metric("f1_samples", _averaged("f1_score", "samples"), description="F1 per text, averaged", tasks=MULTI_LABEL),
    Metric("f1_weighted", _averaged("f1_score", "weighted"), description="F1 averaged by support", tasks=BOTH),
    Metric("precision_macro", _averaged("precision_score", "macro"), description="precision averaged", tasks=BOTH),
    Metric("precision_weighted", _averaged("precision_score", "weighted"), description="by support", tasks=BOTH),
    Metric("recall_macro", _averaged("recall_score", "macro"), description="recall averaged", tasks=BOTH),
    Metric("recall_weighted", _averaged("recall_score", "weighted"), description="recall by support", tasks=BOTH),
    Metric(
        "hamming_loss",
        _score(scores.hamming_loss),
        greater_is_better=False,
        description="share of wrong label decisions",
        tasks=MULTI_LABEL,
    ),
    Metric("mcc", _plain("matthews_corrcoef"), description="Matthews correlation coefficient"),
    Metric("log_loss", _log_loss, greater_is_better=False, description="cross-entropy of the probabilities"),
    Metric(
        "rmse", _score(scores.rmse), greater_is_better=False, description="root mean squared error", tasks=REGRESSION
    ),
    Metric("mae", _score(scores.mae), greater_is_better=False, description="mean absolute error", tasks=REGRESSION),
    Metric("r2", _score(scores.r2), description="coefficient of determination", tasks=REGRESSION),
    Metric(
        "pearson", _score(partial(scores.correlation, "pearson")), description="Pearson correlation", tasks=REGRESSION
    ),
    Metric(
        "spearman",
        _score(partial(scores.correlation, "spearman")),
        description="Spearman rank correlation",
        tasks=REGRESSION,
    ),
]


@hookimpl
def register_metrics(register):
    for metric in METRICS:
        register(metric)
