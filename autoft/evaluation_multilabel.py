"""A multi-label model on test, looked at closely: thresholds, per-label scores and curves, surest mistakes.

:func:`tune_thresholds` picks each label's decision threshold on validation (the one with the
best F1 for that label); :func:`evaluate_multilabel` writes into one folder (``runs/<study>/evaluation``):

- ``classification_report.json|txt``: precision, recall, F1 and support per label, with micro, macro
  and samples averages
- ``pr_curves.png``: precision against recall per label, with average precision and the threshold used
- ``mistakes.csv``: the wrong decisions (a label given that is not there, or one missed), surest first
- ``evaluation.json``: the summary it returns
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import average_precision_score, classification_report, precision_recall_curve

from .fsutil import write_bytes, write_json, write_text
from .plots import plt, png
from .scores import hamming_loss, subset_accuracy

FILES = {
    "classification_report_json": "classification_report.json",
    "classification_report_txt": "classification_report.txt",
    "pr_curves_png": "pr_curves.png",
    "mistakes_csv": "mistakes.csv",
}

#: the decision thresholds tried per label
GRID = np.round(np.arange(0.05, 0.951, 0.05), 2)


def tune_thresholds(y_true: np.ndarray, proba: np.ndarray) -> np.ndarray:
    """Per label, the threshold of :data:`GRID` with the best F1 on these rows (0.5 for a label they lack)."""
    y_true = np.asarray(y_true) > 0
    out = np.full(proba.shape[1], 0.5)
    for j in range(proba.shape[1]):
        positives = y_true[:, j].sum()
        if positives == 0:
            continue
        predicted = proba[:, j][:, None] >= GRID[None, :]
        hits = (predicted & y_true[:, j][:, None]).sum(axis=0)
        f1 = 2 * hits / np.maximum(predicted.sum(axis=0) + positives, 1)
        out[j] = GRID[int(np.argmax(f1))]  # the lowest of equal F1s
    return out


def evaluate_multilabel(
    texts: list[str],
    y_true: np.ndarray,
    proba: np.ndarray,
    label_names: list[str],
    thresholds: np.ndarray,
    out_dir: Path,
    *,
    pairs: list[str] | None = None,
    top_mistakes: int | None = None,
) -> dict:
    """Write the evaluation files of label probabilities ``proba`` (rows, labels) into ``out_dir``; return a summary."""
    y_true = (np.asarray(y_true) > 0).astype(int)
    proba = np.asarray(proba, dtype=float)
    names = [str(n) for n in label_names]
    if proba.shape != y_true.shape or proba.shape[1] != len(names) or len(texts) != len(proba):
        raise ValueError(f"need (rows, {len(names)}) labels and probabilities for every text, not {proba.shape}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    y_pred = (proba >= thresholds[None, :]).astype(int)
    report = classification_report(y_true, y_pred, target_names=names, output_dict=True, zero_division=0)
    write_json(out_dir / FILES["classification_report_json"], report)
    text = classification_report(y_true, y_pred, target_names=names, zero_division=0, digits=4)
    write_text(out_dir / FILES["classification_report_txt"], text)
    ap = [
        float(average_precision_score(y_true[:, j], proba[:, j])) if y_true[:, j].any() else None
        for j in range(len(names))
    ]
    write_bytes(out_dir / FILES["pr_curves_png"], _pr_png(y_true, proba, names, ap, thresholds))
    wrong = mistakes_frame(texts, y_true, proba, names, thresholds, pairs)
    n_wrong = len(wrong)
    write_text(
        out_dir / FILES["mistakes_csv"],
        (wrong if top_mistakes is None else wrong.head(top_mistakes)).to_csv(index=False),
    )
    summary = {
        "task": "multi_label",
        "rows": len(y_true),
        "subset_accuracy": subset_accuracy(y_true, y_pred),
        "hamming_loss": hamming_loss(y_true, y_pred),
        "thresholds": {n: float(t) for n, t in zip(names, thresholds)},
        "average_precision": {n: ap[j] for j, n in enumerate(names)},
        "n_mistakes": n_wrong,
        "label_names": names,
        "classification_report": report,
        "files": dict(FILES),
    }
    write_json(out_dir / "evaluation.json", summary)
    return summary


def mistakes_frame(
    texts: list[str],
    y_true: np.ndarray,
    proba: np.ndarray,
    names: list[str],
    thresholds: np.ndarray,
    pairs: list[str] | None = None,
) -> pd.DataFrame:
    """Each wrong decision: the text, the label, given or missed, its probability and the row's true labels.

    Surest first: a label given with probability 0.99 that is not there, or missed at 0.01.
    """
    y_pred = proba >= thresholds[None, :]
    rows, cols = np.nonzero(y_pred != (y_true > 0))
    sureness = np.where(y_pred[rows, cols], proba[rows, cols], 1 - proba[rows, cols])
    order = np.argsort(-sureness, kind="stable")
    rows, cols = rows[order], cols[order]
    second = {} if pairs is None else {"text_pair": [pairs[r] for r in rows]}
    return pd.DataFrame(
        {
            "text": [texts[r] for r in rows],
            **second,
            "label": [names[c] for c in cols],
            "mistake": ["given, not there" if y_pred[r, c] else "missed" for r, c in zip(rows, cols)],
            "probability": proba[rows, cols],
            "true": [", ".join(names[j] for j in np.flatnonzero(y_true[r])) for r in rows],
        }
    )


def _pr_png(y_true: np.ndarray, proba: np.ndarray, names: list[str], ap: list, thresholds: np.ndarray) -> bytes:
    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    for j, name in enumerate(names):
        if ap[j] is None:
            continue
        precision, recall, _ = precision_recall_curve(y_true[:, j], proba[:, j])
        ax.step(recall, precision, where="post", label=f"{name} (AP {ap[j]:.3f}, threshold {thresholds[j]:.2f})")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("recall")
    ax.set_ylabel("precision")
    ax.set_title("Precision-recall per label (test)")
    ax.legend(loc="best", fontsize="x-small", frameon=False)
    return png(fig)
