"""best/README.md: a Hugging Face model card, and a best/ that plain transformers loads to the same predictions."""

from __future__ import annotations

import pytest
import yaml

TEXTS = ["great product, works well", "broke after a day, awful", "it is fine I guess", "love it", "terrible support"]


@pytest.mark.parametrize(
    "strategy, space",
    [*((name, {}) for name in ("full", "head", "body", "two_stage", "lora")), ("full", {"head": "mlp"})],
    ids=["full", "head", "body", "two_stage", "lora-merged", "mlp-head"],
)
def test_the_card_and_plain_transformers_agree_with_autoft_predict(strategy, space, study_file, tmp_path, cli):
    from transformers import pipeline

    from autoft.predict import Predictor

    path = study_file(
        strategies={strategy: {}},
        search={"n_trials": 1, "isolation": "none"},
        space={"epochs": 1, "learning_rate": 5e-3, **space},
    )
    assert cli("study", "run", path, "--no-progress").code == 0
    best = tmp_path / "runs" / "tiny" / "best"
    text = (best / "README.md").read_text()
    front, body = text.split("---\n", 2)[1:]
    meta = yaml.safe_load(front)
    assert meta["library_name"] == "transformers" and meta["pipeline_tag"] == "text-classification"
    results = meta["model-index"][0]["results"][0]
    assert results["dataset"]["split"] == "test"
    metrics = __import__("json").loads((best / "metrics.json").read_text())
    assert {m["type"]: m["value"] for m in results["metrics"]}["accuracy"] == pytest.approx(metrics["test"]["accuracy"])
    assert "majority baseline" in body and "## Intended use and limitations" in body

    ours = Predictor(best, device="cpu")(TEXTS).labels
    if space.get("head") == "mlp":
        assert "plain `transformers` cannot" in body and "autoft predict" in body
        return
    assert 'pipeline("text-classification"' in body
    classify = pipeline("text-classification", model=str(best), device="cpu")
    theirs = [r["label"] for r in classify(TEXTS, truncation=True, max_length=32)]
    assert theirs == ours
