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

from .errors import ModelError
from .fsutil import write_folder, write_json, write_text
from .metrics import compute
from .models import quiet_transformers
from .space import TrialConfig
from .tomlw import dumps as toml_dumps
from .training import autocast_dtype, predict_proba

BEST = "best"


def existing_best(run_dir: Path) -> dict | None:
    try:
        return json.loads((Path(run_dir) / BEST / "metrics.json").read_text())
    except (OSError, ValueError):
        return None


def finalize(session: Any) -> dict | None:
    """Evaluate the study's best trial on test and save it to ``best/``, unless already done."""
    from .study import best_trial

    best = best_trial(session.study)
    if best is None:
        return None
    run_dir = session.config.run_dir
    done = existing_best(run_dir)
    if done and done.get("trial") == best.number:
        return done
    config = TrialConfig.from_dict(best.user_attrs["config"], session.registry)
    if not session.store.has(best.number):
        session.display.print(f"retraining trial {best.number}: its model was not kept on this machine")
        bar = session.display.trial(best.number, "retrain")
        outcome = session.run(best.number, config, bar, keep=True)
        bar.close(outcome.state)
        if not session.store.has(best.number):
            raise ModelError(f"could not rebuild the model of trial {best.number}: {outcome.reason or outcome.state}")
    checkpoint = session.store.path(best.number)
    bench = session.bench
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
    test_scores = compute(bench.metrics, test.labels, proba)
    train_labels = bench.encoded["train"].labels
    majority = int(np.bincount(train_labels).argmax())
    metrics = {
        "study": session.config.name,
        "trial": best.number,
        "objective": session.objective.name,
        "validation": best.user_attrs.get("metrics", {}),
        "test": test_scores,
        "test_rows": len(test),
        "majority_baseline": {
            "label": bench.data.label_names[majority],
            "accuracy": float(np.mean(test.labels == majority)),
        },
        "label_names": list(bench.data.label_names),
    }

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
        np.save(folder / "test_proba.npy", proba)
        write_json(folder / "metrics.json", metrics)

    write_folder(run_dir / BEST, fill)
    del model
    return metrics


def load_trained(folder: Path, tokenizer: bool = True) -> tuple[Any, Any]:
    """A fine-tuned model (safetensors only) and, if asked, its tokenizer, from a saved folder."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    quiet_transformers()
    folder = Path(folder)
    if not (folder / "config.json").is_file():
        raise ModelError(f"'{folder}' is not a saved model folder (no config.json)")
    try:
        model = AutoModelForSequenceClassification.from_pretrained(folder, use_safetensors=True, dtype=torch.float32)
        tok = AutoTokenizer.from_pretrained(folder) if tokenizer else None
    except Exception as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelError(f"cannot load the model in '{folder}': {first}") from exc
    model.eval()
    return model, tok
