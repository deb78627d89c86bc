"""The Trainer side of the search, in its own process: ``Trainer.hyperparameter_search(backend="optuna")``.

As in the reference script (``peer_baseline.py``): tokenize with the model's tokenizer, ``model_init`` loads
the pretrained model from disk for every trial, evaluation every epoch, TPE seeded with the spec's seed (also
the training seed), Optuna's default (median) pruner. The space (learning rate, epochs, batch size) comes from
the spec. A callback records when each trial trains and evaluates, so setup time can be told apart; each
trial's ``datetime_complete`` goes out too, so the caller can place it against the process's launch.

Usage: python -m benchmarks.hf_search SPEC.json OUT.json
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

STARTED = time.perf_counter()


def main(argv: list[str]) -> int:
    import optuna
    import pandas as pd
    import torch
    from transformers import (
        AutoModelForSequenceClassification,
        AutoTokenizer,
        DataCollatorWithPadding,
        Trainer,
        TrainerCallback,
    )

    from .throughput import LoopSettings, accuracy, trainer_args

    spec = json.loads(Path(argv[0]).read_text())
    imported = time.perf_counter()
    train = pd.read_parquet(spec["train"])
    val = pd.read_parquet(spec["validation"])
    num_labels = int(max(train.label.max(), val.label.max())) + 1
    tok = AutoTokenizer.from_pretrained(spec["model_path"])
    train_ds = TokenDataset(tok(train.text.tolist(), truncation=True, max_length=spec["max_length"]), train.label)
    val_ds = TokenDataset(tok(val.text.tolist(), truncation=True, max_length=spec["max_length"]), val.label)
    tokenized = time.perf_counter()

    class Timeline(TrainerCallback):
        """Per trial: when training began and ended, and each evaluation's seconds and accuracy."""

        def __init__(self):
            self.trials: list[dict] = []

        def on_train_begin(self, args, state, control, **kw):
            self.trials.append({"begin": time.perf_counter(), "end": None, "eval_s": 0.0, "accuracy": []})

        def on_evaluate(self, args, state, control, metrics=None, **kw):
            self.trials[-1]["eval_s"] += metrics["eval_runtime"]
            self.trials[-1]["accuracy"].append(metrics["eval_accuracy"])

        def on_train_end(self, args, state, control, **kw):
            if self.trials[-1]["end"] is None:
                self.trials[-1]["end"] = time.perf_counter()

    def model_init(trial=None):
        return AutoModelForSequenceClassification.from_pretrained(
            spec["model_path"], num_labels=num_labels, dtype=torch.float32
        )

    def space(trial):
        return hp_space(trial, spec["space"])

    settings = LoopSettings(
        batch_size=32,
        epochs=1,
        precision=spec["precision"],
        warmup_ratio=0.0,
        dataloader_workers=spec["dataloader_workers"],
        seed=spec["seed"],
    )
    timeline = Timeline()
    trainer = Trainer(
        model_init=model_init,
        args=trainer_args(spec["output_dir"], settings, spec["device"], eval_strategy="epoch", logging_steps=1000),
        train_dataset=train_ds,
        eval_dataset=val_ds,
        data_collator=DataCollatorWithPadding(tok),
        compute_metrics=accuracy,
        callbacks=[timeline],
    )
    storage = optuna.storages.InMemoryStorage()
    search_started = time.perf_counter()
    best = trainer.hyperparameter_search(
        direction="maximize",
        backend="optuna",
        hp_space=space,
        n_trials=spec["trials"],
        compute_objective=lambda m: m["eval_accuracy"],
        sampler=optuna.samplers.TPESampler(seed=spec["seed"]),
        storage=storage,
        study_name="hf",
    )
    ended = time.perf_counter()
    trials = trial_rows(optuna.load_study(study_name="hf", storage=storage).trials, timeline.trials)
    result = {
        "import_s": imported - STARTED,
        "tokenize_s": tokenized - imported,
        "search_s": ended - search_started,
        "in_process_s": ended - STARTED,
        "best_validation": best.objective,
        "best_validation_any_epoch": max((a for t in trials for a in t["validation_each_epoch"]), default=None),
        "best_trial": int(best.run_id),
        "best_params": best.hyperparameters,
        "trials": trials,
        "sampler": f"TPESampler(seed={spec['seed']}), n_startup_trials=10 (Optuna default)",
        "pruner": "Optuna default: MedianPruner(n_startup_trials=5)",
        "trial_value": "accuracy of the last evaluation (Trainer's hyperparameter_search)",
        "optimizer": str(trainer.args.optim),
    }
    Path(argv[1]).write_text(json.dumps(result, indent=1))
    return 0


def hp_space(trial, space: dict) -> dict:
    """The Trainer's arguments for one trial, sampled from ``space`` (autoft's [space] keys and forms)."""
    lr, epochs = space["learning_rate"], space["epochs"]
    return {
        "learning_rate": trial.suggest_float("learning_rate", lr["low"], lr["high"], log=lr.get("log", False)),
        "num_train_epochs": trial.suggest_int("num_train_epochs", epochs["low"], epochs["high"]),
        "per_device_train_batch_size": trial.suggest_categorical("per_device_train_batch_size", space["batch_size"]),
    }


class TokenDataset:
    """Tokenizer output and labels, item by item (as the reference script does)."""

    def __init__(self, encoding, labels):
        self.encoding, self.labels = encoding, labels.to_numpy()

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> dict:
        item = {k: v[i] for k, v in self.encoding.items()}
        item["labels"] = int(self.labels[i])
        return item


def trial_rows(frozen: list, timeline: list[dict]) -> list[dict]:
    """Each trial's state, parameters, value and seconds: whole trial, training, evaluation, setup (the rest)."""
    rows = []
    for t, times in zip(frozen, timeline):
        duration = (t.datetime_complete - t.datetime_start).total_seconds() if t.datetime_complete else None
        end = times["end"] or times["begin"]
        train_s = max(0.0, end - times["begin"] - times["eval_s"])
        rows.append(
            {
                "trial": t.number,
                "state": t.state.name.lower(),
                "params": t.params,
                "value": t.value,
                "validation_each_epoch": times["accuracy"],
                "duration_s": duration,
                "train_s": train_s,
                "eval_s": times["eval_s"],
                "setup_s": duration - train_s - times["eval_s"] if duration is not None else None,
                "datetime_complete": t.datetime_complete.isoformat() if t.datetime_complete else None,
            }
        )
    return rows


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
