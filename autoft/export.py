"""The best trial, once: evaluated on the test split and saved with its tokenizer and config.

``runs/<study>/best/`` holds a plain Hugging Face model folder (safetensors) with
the tokenizer, ``study.toml`` (the resolved study file), ``trial.json`` (the
trial's configuration and validation scores) and ``metrics.json`` (validation
and test scores, and the majority-class baseline). It is built in a temporary
folder and swapped in, so it is never half-written.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .errors import ModelError, first_line
from .fsutil import write_folder, write_json, write_text
from .heads import install_head, read_head
from .metrics import compute
from .models import quiet_transformers
from .space import TrialConfig
from .tomlw import dumps as toml_dumps
from .training import autocast_dtype, predict_proba

BEST = "best"
EVALUATION = "evaluation"


def existing_best(run_dir: Path) -> dict | None:
    try:
        return json.loads((Path(run_dir) / BEST / "metrics.json").read_text())
    except (OSError, ValueError):
        return None


def finalize(session: Any) -> dict | None:
    """Evaluate the study's best trial on test and save it to ``best/`` (with its evaluation), unless done."""
    from .study import best_trial

    best = best_trial(session.study)
    if best is None:
        return None
    run_dir = session.config.run_dir
    done = existing_best(run_dir)
    if done and done.get("trial") == best.number and (run_dir / EVALUATION / "evaluation.json").is_file():
        return done
    config = TrialConfig.from_dict(best.user_attrs["config"], session.registry)
    if not session.store.has(best.number):
        session.display.print(f"retraining trial {best.number}: its model was not kept on this machine")
        bar = session.display.trial(best.number, "retrain")
        outcome = session.run(best.number, config, bar, keep=True)
        bar.close(outcome.state)
        if not session.store.has(best.number):
            raise ModelError(f"could not rebuild the model of trial {best.number}: {outcome.reason or outcome.state}")
    session.stop_workers()  # no more training: they end while the best model is evaluated
    checkpoint = session.store.path(best.number)
    bench = session.bench
    session.display.print(f"evaluating trial {best.number} on the test split ({len(bench.data.test)} rows)")
    model, _ = load_trained(checkpoint, tokenizer=False)
    device = bench.device
    model.to(device)
    test = bench.encoded["test"]
    proba = predict_proba(
        model,
        test,
        batch_size=bench.config.train.eval_batch_size,
        device=device,
        pad_id=bench.pad_id,
        dtype=autocast_dtype(bench.config.train.precision, device),
    )
    names = list(bench.label_names)
    majority = int(np.bincount(bench.encoded["train"].labels, minlength=len(names)).argmax())
    metrics = {
        "study": session.config.name,
        "trial": best.number,
        "objective": session.objective.name,
        "validation": best.user_attrs.get("metrics", {}),
        "test": compute(bench.metrics, test.labels, proba),
        "test_rows": len(test),
        "majority_baseline": {"label": names[majority], "accuracy": float(np.mean(test.labels == majority))},
        "label_names": names,
    }
    write_evaluation(
        run_dir / EVALUATION,
        model,
        bench.tokenizer,
        bench.data.test.texts,
        test.labels,
        proba,
        names,
        max_length=bench.config.model.max_length,
        device=device,
    )

    def fill(folder: Path) -> None:
        for item in checkpoint.iterdir():
            target = folder / item.name
            if item.is_dir():
                shutil.copytree(item, target)
            else:
                shutil.copy2(item, target)
        bench.tokenizer.save_pretrained(folder)
        write_text(folder / "study.toml", toml_dumps(session.config.raw))
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

    write_folder(run_dir / BEST, fill)
    del model
    return metrics


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
) -> dict:
    """The evaluation folder, built whole and swapped in: reports, plots, mistakes and their token attributions."""
    from .attributions import explain_misclassified
    from .evaluation import evaluate_predictions

    summary: dict = {}

    def fill(tmp: Path) -> None:
        summary.update(evaluate_predictions(texts, labels, proba, names, tmp))
        np.save(tmp / "proba.npy", proba)
        if explain:
            html, md = explain_misclassified(
                model, tokenizer, tmp, names, max_length=max_length, device=device, n=explain
            )
            write_text(tmp / "attributions.html", html)
            write_text(tmp / "attributions.md", md)

    write_folder(folder, fill)
    return summary


def write_study_report(session: Any, rows: list[dict], best: dict | None) -> tuple[Path, Path]:
    """report.html and report.md for the run folder, from the storage and the evaluation folder."""
    from .report import write_report

    run_dir = session.config.run_dir
    evaluation_dir = run_dir / EVALUATION

    def read(name: str) -> str:
        path = evaluation_dir / name
        return path.read_text() if path.is_file() else ""

    text = read("evaluation.json")
    evaluation = json.loads(text) if text else None
    return write_report(
        run_dir,
        study=session.study,
        rows=rows,
        objective=session.objective.name,
        maximize=session.config.maximize,
        best=best,
        evaluation=evaluation,
        attributions_html=read("attributions.html"),
        attributions_md=read("attributions.md"),
    )


def load_trained(folder: Path, tokenizer: bool = True) -> tuple[Any, Any]:
    """A fine-tuned model (safetensors only) and, if asked, its tokenizer, from a saved folder.

    A custom head (``autoft_head.json``) is rebuilt before the weights are loaded.
    """
    from transformers import AutoConfig, AutoModelForSequenceClassification, AutoTokenizer

    quiet_transformers()
    folder = Path(folder)
    if not (folder / "config.json").is_file():
        raise ModelError(f"'{folder}' is not a saved model folder (no config.json)")
    try:
        head = read_head(folder)
        if head is None:
            model = AutoModelForSequenceClassification.from_pretrained(
                folder, use_safetensors=True, dtype=torch.float32
            )
        else:
            model = AutoModelForSequenceClassification.from_config(AutoConfig.from_pretrained(folder))
            install_head(model, head, seed=0)
            load_safetensors(model, folder)
        tok = AutoTokenizer.from_pretrained(folder) if tokenizer else None
    except ModelError:
        raise
    except Exception as exc:
        first = first_line(exc)
        raise ModelError(f"cannot load the model in '{folder}': {first}") from exc
    model.eval()
    return model, tok


def load_safetensors(model: torch.nn.Module, folder: Path) -> None:
    """Load every weight of ``model`` from the folder's safetensors files; a missing weight is an error."""
    from safetensors.torch import load_file

    files = sorted(folder.glob("*.safetensors"))
    if not files:
        raise ModelError(f"'{folder}' has no .safetensors weights")
    state: dict[str, torch.Tensor] = {}
    for f in files:
        state.update(load_file(f))
    missing, _ = model.load_state_dict(state, strict=False)
    persistent = {n for n, _ in model.named_parameters()}
    lost = sorted(set(missing) & persistent)
    if lost:
        raise ModelError(f"'{folder}' lacks weights for {', '.join(lost[:3])}")
