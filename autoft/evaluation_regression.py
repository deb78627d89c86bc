"""A regression model's predictions on test, looked at closely: errors, predicted against true, residuals.

:func:`evaluate_regression` writes into one folder (``runs/<study>/evaluation``), as
:func:`autoft.evaluation.evaluate_predictions` does for classifiers:

- ``predicted_vs_true.png``: each test row's prediction against its target, with the diagonal
- ``residuals.png``: prediction minus target against the prediction, and their histogram
- ``largest_errors.csv``: the rows predicted furthest from their target, largest first
- ``evaluation.json``: the summary it returns (RMSE, MAE, R², Pearson, Spearman, the mean baseline)
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from .fsutil import write_bytes, write_json, write_text
from .plots import plt, png
from .scores import regression

FILES = {
    "predicted_vs_true_png": "predicted_vs_true.png",
    "residuals_png": "residuals.png",
    "largest_errors_csv": "largest_errors.csv",
}


def evaluate_regression(
    texts: list[str],
    y_true: np.ndarray,
    y_pred: np.ndarray,
    target: str,
    out_dir: Path,
    *,
    train_mean: float,
    pairs: list[str] | None = None,
    top_errors: int | None = None,
) -> dict:
    """Write the evaluation files of predictions ``y_pred`` of targets ``y_true`` into ``out_dir``; return the summary.

    ``train_mean`` is the baseline's constant prediction (the mean train target); ``pairs`` the second
    texts of sentence pairs (``largest_errors.csv`` gains a ``text_pair`` column).
    """
    y_true = np.asarray(y_true, dtype=np.float64)
    y_pred = np.asarray(y_pred, dtype=np.float64).reshape(-1)
    if not (len(texts) == len(y_true) == len(y_pred)) or len(y_true) == 0:
        raise ValueError(f"need as many texts, targets and predictions, and one at least: {len(texts)}, {len(y_true)}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    scores = regression(y_true, y_pred)
    baseline = regression(y_true, np.full_like(y_true, train_mean))
    write_bytes(out_dir / FILES["predicted_vs_true_png"], _scatter_png(y_true, y_pred, target, scores))
    write_bytes(out_dir / FILES["residuals_png"], _residuals_png(y_true, y_pred, target))
    errors = largest_errors(texts, y_true, y_pred, pairs)
    write_text(
        out_dir / FILES["largest_errors_csv"],
        (errors if top_errors is None else errors.head(top_errors)).to_csv(index=False),
    )
    summary = {
        "task": "regression",
        "rows": len(y_true),
        "target": target,
        **scores,
        "mean_baseline": {"prediction": float(train_mean), "rmse": baseline["rmse"], "mae": baseline["mae"]},
        "files": dict(FILES),
    }
    write_json(out_dir / "evaluation.json", summary)
    return summary


def largest_errors(
    texts: list[str], y_true: np.ndarray, y_pred: np.ndarray, pairs: list[str] | None = None
) -> pd.DataFrame:
    """Every row with its target, prediction and error (prediction minus target), largest error first."""
    second = {} if pairs is None else {"text_pair": list(pairs)}
    frame = pd.DataFrame(
        {"text": list(texts), **second, "true": y_true, "predicted": y_pred, "error": np.asarray(y_pred) - y_true}
    )
    order = np.argsort(-np.abs(frame["error"].to_numpy()), kind="stable")
    return frame.iloc[order].reset_index(drop=True)


def _scatter_png(y_true: np.ndarray, y_pred: np.ndarray, target: str, scores: dict[str, float]) -> bytes:
    fig, ax = plt.subplots(figsize=(5.5, 5))
    ax.scatter(y_true, y_pred, s=8, alpha=0.4, linewidths=0)
    low = float(min(y_true.min(), y_pred.min()))
    high = float(max(y_true.max(), y_pred.max()))
    ax.plot([low, high], [low, high], color="grey", linewidth=1, linestyle="--")
    ax.set_xlabel(f"true {target}")
    ax.set_ylabel(f"predicted {target}")
    ax.set_title(f"Predicted against true (test): RMSE {scores['rmse']:.3f}, Spearman {scores['spearman']:.3f}")
    return png(fig)


def _residuals_png(y_true: np.ndarray, y_pred: np.ndarray, target: str) -> bytes:
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    residual = y_pred - y_true
    left.scatter(y_pred, residual, s=8, alpha=0.4, linewidths=0)
    left.axhline(0, color="grey", linewidth=1, linestyle="--")
    left.set_xlabel(f"predicted {target}")
    left.set_ylabel("prediction − true")
    left.set_title("Residuals against the prediction (test)")
    right.hist(residual, bins=40)
    right.set_xlabel("prediction − true")
    right.set_ylabel("rows")
    right.set_title("Residuals")
    return png(fig)
