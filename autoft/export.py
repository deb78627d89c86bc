"""The best trial, once: evaluated on the test split and saved with its tokenizer and config.

``runs/<study>/best/`` holds a plain Hugging Face model folder (safetensors) with
the tokenizer, ``study.toml`` (the resolved study file), ``trial.json`` (the
trial's configuration and validation scores) and ``metrics.json`` (validation
and test scores, and the majority-class baseline). It is built in a temporary
folder and swapped in, so it is never half-written.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from html import escape
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import tomli_w
import torch

from .calibration import fit_temperature, scale
from .card import model_card
from .errors import ModelError, type_and_first_line
from .fsutil import write_folder, write_json, write_text
from .heads import read_head
from .metrics import compute
from .saved import CALIBRATION, TASK, DamagedFile, check_folder, load_trained, read_json, read_text, task_inputs
from .space import SearchSpace, TrialConfig
from .training import autocast_dtype, predict_proba
from .trial import PREDICTIONS, saved_predictions

if TYPE_CHECKING:
    from .checkpoints import CheckpointStore
    from .display import StudyDisplay
    from .ledger import Ledger
    from .metrics import Objective
    from .workbench import Workbench
    from .workers import WorkerPool

BEST = "best"
EVALUATION = "evaluation"


def existing_best(run_dir: Path) -> dict | None:
    """``best/metrics.json`` of a finished export, or None: none yet, or a file of ``best/`` or ``evaluation/``
    is damaged (truncated, garbled, NaN weights), and both are rebuilt."""
    run_dir = Path(run_dir)
    try:
        metrics = read_json(run_dir / BEST / "metrics.json", "")
        check_folder(run_dir / BEST, "")
        if (run_dir / EVALUATION).is_dir():
            check_folder(run_dir / EVALUATION, "")
    except (DamagedFile, OSError):
        return None
    return metrics


def finalize(
    ledger: Ledger, bench: Workbench, store: CheckpointStore, display: StudyDisplay, workers: WorkerPool
) -> dict | None:
    """Evaluate the study's best trial on test and save it to ``best/`` (with its evaluation), unless done.

    The best trial's checkpoint is used when this machine kept it; otherwise the trial is
    trained again (seeded) on one of ``workers``, which are stopped once no training is left.
    """
    best = ledger.best()
    if best is None:
        return None
    config = TrialConfig.from_dict(best.user_attrs["config"], bench.registry)
    bench = bench.for_model(config.model)  # the workbench of the model the best trial fine-tuned
    run_dir = bench.config.run_dir
    done = existing_best(run_dir)
    if done and done.get("trial") == best.number and (run_dir / EVALUATION / "evaluation.json").is_file():
        return done
    checkpoint = _checkpoint(best, config, store, display, workers)
    workers.stop()  # no more training: they end while the best model is evaluated
    display.print(f"evaluating trial {best.number} on the test split ({len(bench.data.test)} rows)")
    model, _ = load_trained(checkpoint, tokenizer=False)
    model.to(bench.device)
    test = bench.encoded["test"]
    raw = _proba(model, bench, "test", checkpoint)
    calibrate = bench.calibrates
    validation = bench.encoded["validation"]
    temperature = 1.0
    if calibrate:
        temperature = fit_temperature(_proba(model, bench, "validation", checkpoint), validation.labels)
    proba = scale(raw, temperature) if calibrate else raw
    thresholds = None
    if bench.task == "multi_label":  # each label's decision threshold, tuned on validation
        from .evaluation_multilabel import tune_thresholds

        thresholds = tune_thresholds(validation.labels, _proba(model, bench, "validation", checkpoint))
    metrics = _test_metrics(best, bench, proba, thresholds)
    if calibrate:
        metrics["calibration"] = {"temperature": temperature, "fitted_on": "validation"}
    evaluation = write_evaluation(
        run_dir / EVALUATION,
        model,
        bench.tokenizer,
        bench.data.test.texts,
        test.labels,
        proba,
        metrics["label_names"],
        max_length=bench.config.model.max_length,
        device=bench.device,
        uncalibrated=raw if calibrate else None,
        temperature=temperature,
        pairs=bench.data.test.pairs,
        train_mean=float(np.mean(bench.encoded["train"].labels)) if bench.regression else None,
        thresholds=thresholds,
    )
    if "attributions_skipped" in evaluation:
        display.print(f"warning: token attributions skipped: {evaluation['attributions_skipped']}")
    write_folder(run_dir / BEST, lambda folder: _fill_best(folder, checkpoint, bench, best, metrics, evaluation))
    shutil.rmtree(checkpoint / PREDICTIONS, ignore_errors=True)  # used: the checkpoint is its model again
    del model
    return metrics


def _proba(model: Any, bench: Workbench, split: str, checkpoint: Path) -> np.ndarray:
    """Class probabilities of one split (the model's own, before any temperature).

    The trial scored them when it saved the checkpoint, holding its weights; they are scored here
    only when it did not (or they do not fit).
    """
    saved = saved_predictions(checkpoint, bench, split)
    if saved is not None:
        return saved
    settings, device = bench.config.train, bench.device
    dtype = autocast_dtype(settings.precision, device)
    size = settings.eval_batch_size
    return predict_proba(model, bench.encoded[split], batch_size=size, device=device, pad_id=bench.pad_id, dtype=dtype)


def _checkpoint(
    best: Any, config: TrialConfig, store: CheckpointStore, display: StudyDisplay, workers: WorkerPool
) -> Path:
    """The folder of the best trial's trained model (``config``), trained again if this machine did not keep it."""
    if not store.has(best.number):
        display.print(f"retraining trial {best.number}: its model was not kept on this machine")
        bar = display.trial(best.number, "retrain")
        outcome = workers.run(best.number, config, _BarReporter(bar), keep=True)
        bar.close(outcome.state)
        if not store.has(best.number):
            raise ModelError(f"could not rebuild the model of trial {best.number}: {outcome.reason or outcome.state}")
    return store.path(best.number)


class _BarReporter:
    """Progress of a retraining on its bar (nothing to prune)."""

    def __init__(self, bar: Any):
        self.bar = bar

    def progress(self, step: int, total: int, loss: float | None) -> None:
        self.bar.progress(step, total)

    def evaluated(self, index: int, epoch: float, metrics: dict[str, float], resource: int, final: bool) -> bool:
        return False


def _test_metrics(best: Any, bench: Workbench, proba: np.ndarray, thresholds: np.ndarray | None = None) -> dict:
    """``metrics.json``: validation and test scores of the best trial, and the baseline: the majority
    class, or for regression the mean train target (``mean_baseline``)."""
    test = bench.encoded["test"]
    names = list(bench.label_names)
    train = bench.encoded["train"].labels
    if bench.regression:
        mean = float(np.mean(train))
        baseline = compute(bench.metrics, test.labels, np.full((len(test), 1), mean, dtype=np.float32))
        base = {"mean_baseline": {"prediction": mean, "rmse": baseline["rmse"], "mae": baseline["mae"]}}
    elif bench.task == "multi_label":  # the commonest set of labels, given to every text
        sets, counts = np.unique(np.asarray(train) > 0, axis=0, return_counts=True)
        common = sets[int(np.argmax(counts))]
        label = ", ".join(n for n, on in zip(names, common) if on) or "(none)"
        accuracy = float(np.mean(((np.asarray(test.labels) > 0) == common).all(axis=1)))
        base = {"majority_baseline": {"label": label, "accuracy": accuracy}}
    else:
        majority = int(np.bincount(train, minlength=len(names)).argmax())
        accuracy = float(np.mean(test.labels == majority))
        base = {"majority_baseline": {"label": names[majority], "accuracy": accuracy}}
    return {
        "study": bench.config.name,
        "trial": best.number,
        "task": bench.task,
        **({"thresholds": dict(zip(names, map(float, thresholds)))} if thresholds is not None else {}),
        "objective": bench.config.objective.name,
        "validation": best.user_attrs.get("metrics", {}),
        "test": compute(bench.metrics, test.labels, proba, thresholds),
        "test_rows": len(test),
        **base,
        "label_names": names,
    }


def _fill_best(folder: Path, checkpoint: Path, bench: Workbench, best: Any, metrics: dict, evaluation: dict) -> None:
    """``best/``: the checkpoint, the tokenizer, the resolved study file, the trial, its scores, its model card."""
    for item in checkpoint.iterdir():
        if item.name == PREDICTIONS:  # the trial's scores of the splits, read above
            continue
        target = folder / item.name
        if item.is_dir():
            shutil.copytree(item, target)
        else:
            shutil.copy2(item, target)
    bench.tokenizer.save_pretrained(folder)
    write_text(folder / "study.toml", tomli_w.dumps(bench.config.raw_of_model()))
    write_json(
        folder / "trial.json",
        {
            "trial": best.number,
            "params": best.params,
            "config": best.user_attrs["config"],
            "validation": best.user_attrs.get("metrics", {}),
            "history": best.user_attrs.get("history", []),
        },
    )
    write_json(folder / "metrics.json", metrics)
    task = {"task": bench.data.task, "inputs": task_inputs(bench.data.paired, bench.data.text_columns)}
    if "thresholds" in metrics:
        task["thresholds"] = metrics["thresholds"]
    write_json(folder / TASK, task)
    if "calibration" in metrics:
        write_json(folder / CALIBRATION, metrics["calibration"])
    space = SearchSpace(bench.config, bench.registry).rows()
    card = model_card(bench, best, metrics, evaluation, space, custom_head=read_head(folder) is not None)
    write_text(folder / "README.md", card)


def write_evaluation(
    folder: Path,
    model: Any,
    tokenizer: Any,
    texts: list[str],
    labels: np.ndarray,
    proba: np.ndarray,
    names: list[str],
    *,
    max_length: int,
    device: torch.device,
    explain: int = 5,
    uncalibrated: np.ndarray | None = None,
    temperature: float = 1.0,
    pairs: list[str] | None = None,
    train_mean: float | None = None,
    thresholds: np.ndarray | None = None,
) -> dict:
    """The evaluation folder, built whole and swapped in: reports, plots, mistakes and their token attributions.

    ``uncalibrated``: the probabilities before temperature scaling, for the before/after reliability diagrams;
    ``pairs``: the second texts of sentence pairs. A regression model (``proba`` one column of predictions,
    ``names`` the target's name) gets :func:`~autoft.evaluation_regression.evaluate_regression`'s files,
    with ``train_mean`` as its baseline.
    """
    from .attributions import explain_misclassified
    from .evaluation import evaluate_predictions

    summary: dict = {}
    if np.ndim(labels) == 2:  # multi-label
        from .evaluation_multilabel import evaluate_multilabel

        cuts = np.full(len(names), 0.5) if thresholds is None else np.asarray(thresholds)

        def multi(tmp: Path) -> None:
            summary.update(evaluate_multilabel(texts, labels, proba, names, cuts, tmp, pairs=pairs))
            np.save(tmp / "proba.npy", proba)
            if explain:  # the surest wrong decisions, towards the label each was about
                from .attributions import explain_rows

                def explained() -> tuple[str, str]:
                    rows = pd.read_csv(tmp / "mistakes.csv", keep_default_na=False, dtype=str).head(explain)
                    targets = [names.index(label) for label in rows.get("label", [])]
                    predicted = [f"{m}: {label}" for m, label in zip(rows.get("mistake", []), rows.get("label", []))]
                    true = rows.get("true", pd.Series()).tolist()
                    return explain_rows(
                        model, tokenizer, rows, targets, predicted, true, max_length=max_length, device=device
                    )

                write_attributions(tmp, explained, summary)

        write_folder(folder, multi)
        return summary
    if proba.shape[1] == 1:
        from .evaluation_regression import evaluate_regression

        mean = float(np.mean(labels)) if train_mean is None else train_mean

        def regression(tmp: Path) -> None:
            summary.update(evaluate_regression(texts, labels, proba[:, 0], names[0], tmp, train_mean=mean, pairs=pairs))
            np.save(tmp / "predictions.npy", proba[:, 0])
            if explain:  # the largest errors, towards the one output: what raised or lowered each prediction
                from .attributions import explain_rows

                def explained() -> tuple[str, str]:
                    rows = pd.read_csv(tmp / "largest_errors.csv", keep_default_na=False, dtype={"text": str})
                    rows = rows.head(explain)
                    predicted = [f"{v:.3g}" for v in rows.get("predicted", [])]
                    true = [f"{v:.3g}" for v in rows.get("true", [])]
                    return explain_rows(
                        model, tokenizer, rows, [0] * len(rows), predicted, true, max_length=max_length, device=device
                    )

                write_attributions(tmp, explained, summary)

        write_folder(folder, regression)
        return summary

    def fill(tmp: Path) -> None:
        summary.update(
            evaluate_predictions(
                texts, labels, proba, names, tmp, uncalibrated=uncalibrated, temperature=temperature, pairs=pairs
            )
        )
        np.save(tmp / "proba.npy", proba)
        if explain:
            write_attributions(
                tmp,
                lambda: explain_misclassified(
                    model, tokenizer, tmp, names, max_length=max_length, device=device, n=explain
                ),
                summary,
            )

    write_folder(folder, fill)
    return summary


def write_attributions(folder: Path, explained: Callable[[], tuple[str, str]], summary: dict) -> None:
    """attributions.html and .md from ``explained()``, or a note of why there are none.

    Attributions explain the model; they are not the model. A failure while computing them (captum missing,
    an architecture captum cannot walk, memory) leaves a note in both files and ``summary["attributions_skipped"]``
    instead of costing the study its evaluation, its exported model and its report.
    """
    try:
        html, md = explained()
    except Exception as exc:  # noqa: BLE001 -- any failure: the rest of the evaluation stands
        reason = type_and_first_line(exc)
        summary["attributions_skipped"] = reason
        html = f"<p>Token attributions were not computed: {escape(reason)}</p>"
        md = f"Token attributions were not computed: {reason}\n"
    write_text(folder / "attributions.html", html)
    write_text(folder / "attributions.md", md)


def write_study_report(
    run_dir: Path, ledger: Ledger, objective: Objective, rows: list[dict], best: dict | None
) -> tuple[Path, Path]:
    """report.html and report.md for the run folder, from the storage and the evaluation folder."""
    from .report import write_report

    evaluation_dir = run_dir / EVALUATION
    fix = f"delete the folder '{evaluation_dir}' and run the study again to rebuild it"

    def read(name: str) -> str:
        path = evaluation_dir / name
        return read_text(path, fix) if path.is_file() else ""

    path = evaluation_dir / "evaluation.json"
    return write_report(
        run_dir,
        study=ledger.study,
        rows=rows,
        objective=objective,
        best=best,
        evaluation=read_json(path, fix) if path.is_file() else None,
        attributions_html=read("attributions.html"),
        attributions_md=read("attributions.md"),
    )
