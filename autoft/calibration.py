"""Temperature scaling (Guo et al., "On Calibration of Modern Neural Networks", ICML 2017).

One number, fitted on the validation split: the model's logits are divided by a
temperature ``T`` before the softmax. ``T > 1`` softens over-confident
probabilities; the predicted labels never change. Fitted on log-probabilities
(a per-row constant does not change a softmax), so saved probabilities suffice.
"""

from __future__ import annotations

import numpy as np

#: the temperatures searched (log-uniformly bounded): beyond these the model is not worth calibrating
BOUNDS = (0.05, 20.0)


def scale(proba: np.ndarray, temperature: float) -> np.ndarray:
    """``proba`` (rows, labels) as the model would give them with its logits divided by ``temperature``."""
    logits = np.log(np.clip(proba, 1e-12, 1.0)) / temperature
    logits -= logits.max(axis=1, keepdims=True)
    out = np.exp(logits)
    return (out / out.sum(axis=1, keepdims=True)).astype(proba.dtype, copy=False)


def nll(proba: np.ndarray, labels: np.ndarray) -> float:
    """Mean negative log-likelihood of the true labels."""
    return float(-np.mean(np.log(np.clip(proba[np.arange(len(labels)), labels], 1e-12, 1.0))))


def fit_temperature(proba: np.ndarray, labels: np.ndarray) -> float:
    """The temperature that minimises the negative log-likelihood of ``labels`` (1.0 when it would not help)."""
    from scipy.optimize import minimize_scalar  # here: predicting (scale) needs none of scipy

    if len(labels) == 0:
        return 1.0
    low, high = np.log(BOUNDS[0]), np.log(BOUNDS[1])
    best = minimize_scalar(lambda t: nll(scale(proba, float(np.exp(t))), labels), bounds=(low, high), method="bounded")
    temperature = float(np.exp(best.x))
    return temperature if nll(scale(proba, temperature), labels) < nll(proba, labels) else 1.0
