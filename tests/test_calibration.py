"""Temperature scaling: it recovers the temperature that made probabilities over-confident, and keeps labels."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from autoft.calibration import fit_temperature, nll, scale
from autoft.evaluation import expected_calibration_error


def calibrated_sample(rows: int, k: int, seed: int):
    """Labels drawn from the probabilities themselves: perfectly calibrated by construction."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(0, 2.0, size=(rows, k))
    proba = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    labels = np.array([rng.choice(k, p=p) for p in proba])
    return proba, labels


@settings(max_examples=15, deadline=None, derandomize=True)
@given(true_t=st.floats(0.3, 4.0), k=st.integers(2, 6), seed=st.integers(0, 10_000))
def test_fitting_undoes_a_known_temperature(true_t, k, seed):
    proba, labels = calibrated_sample(3000, k, seed)
    distorted = scale(proba, 1 / true_t)  # logits multiplied by true_t: over-confident when true_t > 1
    fitted = fit_temperature(distorted, labels)
    assert abs(np.log(fitted) - np.log(true_t)) < 0.25
    fixed = scale(distorted, fitted)
    assert nll(fixed, labels) <= nll(distorted, labels) + 1e-9
    assert (fixed.argmax(1) == distorted.argmax(1)).all()
    assert np.allclose(fixed.sum(1), 1.0, atol=1e-6)


def test_an_over_confident_model_gets_a_lower_ece():
    proba, labels = calibrated_sample(4000, 3, 1)
    confident = scale(proba, 0.3)
    fixed = scale(confident, fit_temperature(confident, labels))
    assert expected_calibration_error(labels, fixed) < expected_calibration_error(labels, confident) / 2


def test_a_calibrated_model_keeps_temperature_one_or_close():
    proba, labels = calibrated_sample(4000, 3, 2)
    assert abs(fit_temperature(proba, labels) - 1.0) < 0.15
    assert fit_temperature(proba[:0], labels[:0]) == 1.0


def test_the_best_model_is_calibrated_on_validation_and_predict_applies_it(study_file, tmp_path, cli):
    import json

    import torch

    from autoft.predict import Predictor
    from autoft.saved import load_trained

    texts = ["great value", "awful, broke at once", "fine", "love it so much"]
    path = study_file(search={"n_trials": 1, "isolation": "none"}, space={"epochs": 1, "learning_rate": 5e-3})
    assert cli("study", "run", path, "--no-progress").code == 0
    run = tmp_path / "runs" / "tiny"
    temperature = json.loads((run / "best" / "calibration.json").read_text())["temperature"]
    evaluation = json.loads((run / "evaluation" / "evaluation.json").read_text())
    assert evaluation["temperature"] == temperature and "ece_uncalibrated" in evaluation
    assert (run / "evaluation" / "reliability_uncalibrated.png").is_file()
    assert "after temperature scaling" in (run / "report.md").read_text()

    predictor = Predictor(run / "best", device="cpu")
    model, tokenizer = load_trained(run / "best")
    with torch.no_grad():
        enc = tokenizer(texts, padding=True, truncation=True, max_length=32, return_tensors="pt")
        raw = torch.softmax(model(**enc).logits, -1).numpy()
    assert np.allclose(predictor.proba(texts), scale(raw, temperature), atol=1e-5)

    off = study_file(
        "off.toml",
        study={"name": "off"},
        train={"calibrate": False},
        search={"n_trials": 1, "isolation": "none"},
        space={"epochs": 1},
    )
    assert cli("study", "run", off, "--no-progress").code == 0
    assert not (tmp_path / "runs" / "off" / "best" / "calibration.json").exists()
    assert "ece_uncalibrated" not in json.loads(
        (tmp_path / "runs" / "off" / "evaluation" / "evaluation.json").read_text()
    )
