"""The best model's predictions on test, looked at closely: per-class report, curves, calibration, mistakes.

:func:`evaluate_predictions` writes into one folder (``runs/<study>/evaluation``):

- ``classification_report.json|txt``: precision, recall, F1 and support per class, with averages
- ``confusion_matrix.csv|png``: rows are true labels, columns predicted labels
- ``pr_curves.png`` and ``roc_curves.png``: one-vs-rest per class, with average precision and AUC
- ``reliability.png``: accuracy against top-class confidence, with the expected calibration error
- ``misclassified.csv``: the wrong predictions, most confident first
- ``evaluation.json``: the summary it returns
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import (
    average_precision_score,
    classification_report,
    confusion_matrix,
    precision_recall_curve,
    roc_auc_score,
    roc_curve,
)

from .fsutil import write_bytes, write_json, write_text
from .plots import plt, png

FILES = {
    "classification_report_json": "classification_report.json",
    "classification_report_txt": "classification_report.txt",
    "confusion_matrix_csv": "confusion_matrix.csv",
    "confusion_matrix_png": "confusion_matrix.png",
    "pr_curves_png": "pr_curves.png",
    "roc_curves_png": "roc_curves.png",
    "reliability_png": "reliability.png",
    "misclassified_csv": "misclassified.csv",
}


def evaluate_predictions(
    texts: list[str],
    y_true: np.ndarray,
    proba: np.ndarray,
    label_names: list[str],
    out_dir: Path,
    *,
    top_misclassified: int | None = None,
    uncalibrated: np.ndarray | None = None,
    temperature: float = 1.0,
    pairs: list[str] | None = None,
) -> dict:
    """Write the evaluation files for predictions ``proba`` (rows, labels) into ``out_dir``; return the summary.

    ``top_misclassified`` keeps only that many rows in ``misclassified.csv`` (``n_misclassified`` counts all).
    ``uncalibrated``: the probabilities before temperature scaling (``proba`` being after, at ``temperature``);
    their ECE and reliability diagram are written beside the calibrated ones.
    Scores of a class absent from ``y_true`` (or, for AUC, of a class that is every row) are None.
    ``pairs``: each row's second text, for sentence pairs (``misclassified.csv`` gains a ``text_pair`` column).
    """
    y_true = np.asarray(y_true, dtype=int)
    proba = np.asarray(proba, dtype=float)
    names = [str(n) for n in label_names]
    k = len(names)
    if proba.ndim != 2 or proba.shape[1] != k:
        raise ValueError(f"proba must have shape (rows, {k}) for {k} labels, not {proba.shape}")
    if not (len(texts) == len(y_true) == len(proba)) or len(y_true) == 0:
        raise ValueError(
            f"need as many texts, labels and probability rows, and at least one: {len(texts)}, "
            f"{len(y_true)}, {len(proba)}"
        )
    if y_true.min() < 0 or y_true.max() >= k:
        raise ValueError(f"labels must be ids in 0..{k - 1}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    y_pred = proba.argmax(axis=1)
    labels = list(range(k))

    report = classification_report(y_true, y_pred, labels=labels, target_names=names, output_dict=True, zero_division=0)
    write_json(out_dir / FILES["classification_report_json"], report)
    write_text(
        out_dir / FILES["classification_report_txt"],
        classification_report(y_true, y_pred, labels=labels, target_names=names, zero_division=0, digits=4),
    )

    matrix = confusion_matrix(y_true, y_pred, labels=labels)
    frame = pd.DataFrame(matrix, index=pd.Index(names, name="true \\ predicted"), columns=names)
    write_text(out_dir / FILES["confusion_matrix_csv"], frame.to_csv())
    write_bytes(out_dir / FILES["confusion_matrix_png"], _confusion_png(matrix, names))

    ap, auc = per_class_scores(y_true, proba)
    write_bytes(out_dir / FILES["pr_curves_png"], _pr_png(y_true, proba, names, ap))
    write_bytes(out_dir / FILES["roc_curves_png"], _roc_png(y_true, proba, names, auc))

    files = dict(FILES)
    ece = expected_calibration_error(y_true, proba)
    write_bytes(out_dir / FILES["reliability_png"], _reliability_png(y_true, proba, ece))
    calibration = {}
    if uncalibrated is not None:
        before = expected_calibration_error(y_true, np.asarray(uncalibrated, dtype=float))
        files["reliability_uncalibrated_png"] = "reliability_uncalibrated.png"
        png_before = _reliability_png(y_true, np.asarray(uncalibrated, dtype=float), before, note="before scaling")
        write_bytes(out_dir / files["reliability_uncalibrated_png"], png_before)
        calibration = {"temperature": temperature, "ece_uncalibrated": before}

    wrong = misclassified_frame(texts, y_true, proba, names, pairs)
    n_wrong = len(wrong)
    if top_misclassified is not None:
        wrong = wrong.head(top_misclassified)
    write_text(out_dir / FILES["misclassified_csv"], wrong.to_csv(index=False))

    summary = {
        "rows": len(y_true),
        "accuracy": float(np.mean(y_pred == y_true)),
        "average_precision": {n: ap[i] for i, n in enumerate(names)},
        "roc_auc": {n: auc[i] for i, n in enumerate(names)},
        "macro_average_precision": _mean(ap),
        "macro_roc_auc": _mean(auc),
        "ece": ece,
        "n_misclassified": n_wrong,
        "label_names": names,
        "classification_report": report,
        **calibration,
        "files": files,
    }
    write_json(out_dir / "evaluation.json", summary)
    return summary


def expected_calibration_error(y_true: np.ndarray, proba: np.ndarray, bins: int = 15) -> float:
    """Top-label ECE: over equal-width confidence bins, the row-weighted gap between accuracy and confidence."""
    conf, correct, index = _top_label(y_true, proba, bins)
    ece = 0.0
    for b in range(bins):
        inside = index == b
        if inside.any():
            ece += inside.mean() * abs(correct[inside].mean() - conf[inside].mean())
    return float(ece)


def per_class_scores(y_true: np.ndarray, proba: np.ndarray) -> tuple[list[float | None], list[float | None]]:
    """One-vs-rest average precision and ROC AUC per class; None where the class cannot be scored."""
    ap: list[float | None] = []
    auc: list[float | None] = []
    for c in range(proba.shape[1]):
        positive = y_true == c
        ap.append(float(average_precision_score(positive, proba[:, c])) if positive.any() else None)
        auc.append(float(roc_auc_score(positive, proba[:, c])) if 0 < positive.sum() < len(positive) else None)
    return ap, auc


def misclassified_frame(
    texts: list[str], y_true: np.ndarray, proba: np.ndarray, names: list[str], pairs: list[str] | None = None
) -> pd.DataFrame:
    """The wrong rows: text (and text_pair), true and predicted label, their probabilities; surest mistake first."""
    y_pred = proba.argmax(axis=1)
    wrong = np.flatnonzero(y_pred != y_true)
    second = {} if pairs is None else {"text_pair": [pairs[i] for i in wrong]}
    frame = pd.DataFrame(
        {
            "text": [texts[i] for i in wrong],
            **second,
            "true": [names[y_true[i]] for i in wrong],
            "predicted": [names[y_pred[i]] for i in wrong],
            "probability": proba[wrong, y_pred[wrong]],
            "true_probability": proba[wrong, y_true[wrong]],
        }
    )
    return frame.sort_values("probability", ascending=False, kind="stable").reset_index(drop=True)


def _top_label(y_true: np.ndarray, proba: np.ndarray, bins: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Top-class confidence, whether it was right, and its bin (bins are (lo, hi], the first holds 0)."""
    proba = np.asarray(proba, dtype=float)
    conf = proba.max(axis=1)
    correct = (proba.argmax(axis=1) == np.asarray(y_true)).astype(float)
    index = np.clip(np.ceil(conf * bins).astype(int) - 1, 0, bins - 1)
    return conf, correct, index


def _mean(values: list[float | None]) -> float | None:
    scored = [v for v in values if v is not None]
    return float(np.mean(scored)) if scored else None


def _legend(ax, k: int) -> None:
    """In the plot for a few classes; beside it, in columns, for many."""
    if k <= 8:
        ax.legend(loc="best", fontsize="small", frameon=False)
    else:
        ax.legend(loc="center left", bbox_to_anchor=(1.02, 0.5), fontsize="x-small", ncol=(k - 1) // 20 + 1)


def _confusion_png(matrix: np.ndarray, names: list[str]) -> bytes:
    k = len(names)
    side = min(3.0 + 0.45 * k, 14.0)
    fig, ax = plt.subplots(figsize=(side + 1.0, side))
    totals = matrix.sum(axis=1, keepdims=True)
    share = np.divide(matrix, totals, out=np.zeros(matrix.shape, dtype=float), where=totals > 0)
    image = ax.imshow(share, cmap="Blues", vmin=0.0, vmax=1.0)
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="share of the true label")
    if k <= 30:
        for i in range(k):
            for j in range(k):
                color = "white" if share[i, j] > 0.5 else "black"
                ax.text(j, i, str(matrix[i, j]), ha="center", va="center", color=color, fontsize=9 if k <= 10 else 6)
    ax.set_xticks(range(k), names, rotation=45 if k > 3 else 0, ha="right" if k > 3 else "center")
    ax.set_yticks(range(k), names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title("Confusion matrix (test)")
    return png(fig)


def _pr_png(y_true: np.ndarray, proba: np.ndarray, names: list[str], ap: list[float | None]) -> bytes:
    fig, ax = plt.subplots(figsize=(6, 4.5))
    for c, name in enumerate(names):
        if ap[c] is None:
            continue
        precision, recall, _ = precision_recall_curve(y_true == c, proba[:, c])
        ax.step(recall, precision, where="post", label=f"{name} (AP {ap[c]:.3f})")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("recall")
    ax.set_ylabel("precision")
    ax.set_title("Precision-recall per class (one-vs-rest)")
    _legend(ax, len(names))
    return png(fig)


def _roc_png(y_true: np.ndarray, proba: np.ndarray, names: list[str], auc: list[float | None]) -> bytes:
    fig, ax = plt.subplots(figsize=(6, 4.5))
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey", linewidth=1, label="chance")
    for c, name in enumerate(names):
        if auc[c] is None:
            continue
        fpr, tpr, _ = roc_curve(y_true == c, proba[:, c])
        ax.plot(fpr, tpr, label=f"{name} (AUC {auc[c]:.3f})")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("false positive rate")
    ax.set_ylabel("true positive rate")
    ax.set_title("ROC per class (one-vs-rest)")
    _legend(ax, len(names) + 1)
    return png(fig)


def _reliability_png(y_true: np.ndarray, proba: np.ndarray, ece: float, bins: int = 15, note: str = "") -> bytes:
    conf, correct, index = _top_label(y_true, proba, bins)
    counts = np.bincount(index, minlength=bins)
    filled = counts > 0
    accuracy = np.bincount(index, weights=correct, minlength=bins)[filled] / counts[filled]
    mean_conf = np.bincount(index, weights=conf, minlength=bins)[filled] / counts[filled]
    edges = np.linspace(0.0, 1.0, bins + 1)
    centers = (edges[:-1] + edges[1:])[filled] / 2
    width = 1.0 / bins
    fig, (ax, hist) = plt.subplots(
        2, 1, figsize=(5.5, 5.5), sharex=True, gridspec_kw={"height_ratios": [3, 1], "hspace": 0.08}
    )
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey", linewidth=1, label="perfect calibration")
    ax.bar(centers, accuracy, width=width, edgecolor="black", color="#4c72b0", alpha=0.85, label="accuracy")
    ax.bar(
        centers,
        mean_conf - accuracy,
        bottom=accuracy,
        width=width,
        fill=False,
        hatch="//",
        edgecolor="#c44e52",
        linewidth=0.8,
        label="gap to mean confidence",
    )
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_ylabel("accuracy")
    ax.set_title(f"Reliability{f' {note}' if note else ''} (top-class confidence, {bins} bins): ECE = {ece:.4f}")
    ax.legend(loc="upper left", fontsize="small", frameon=False)
    hist.bar((edges[:-1] + edges[1:]) / 2, counts, width=width, color="grey", edgecolor="black")
    hist.set_xlabel("confidence of the predicted class")
    hist.set_ylabel("rows")
    return png(fig)
