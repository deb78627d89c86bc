import base64
import html
import json
import re
import subprocess
from pathlib import Path

import numpy as np
import optuna
import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.trial import TrialState, create_trial

from autoft import leaderboard
from autoft.attributions import attributions_html, attributions_markdown
from autoft.evaluation import evaluate_predictions
from autoft.metrics import Objective
from autoft.report import Section, build_report, strategy_rows, write_report

CHROMIUM = Path("/usr/bin/chromium")
NAMES = ["negative", "neutral", "positive"]
IMG = re.compile(r"<img\b[^>]*>")
ACCURACY = Objective("accuracy", maximize=True)
TRIALS = [  # strategy, learning rate, epochs, value, state, trainable params, train seconds
    ("full", 3e-5, 2, 0.71, TrialState.COMPLETE, 22_700_000, 40.0),
    ("lora", 1e-3, 3, 0.80, TrialState.COMPLETE, 150_000, 25.0),
    ("full", 5e-5, 3, 0.76, TrialState.COMPLETE, 22_700_000, 55.0),
    ("lora", 3e-4, 2, 0.62, TrialState.PRUNED, 150_000, 10.0),
    ("full", 1e-4, 2, None, TrialState.FAIL, None, None),
    ("lora", 2e-3, 4, 0.78, TrialState.COMPLETE, 150_000, 30.0),
]


def make_study(trials=TRIALS, name="reviews") -> optuna.Study:
    study = optuna.create_study(study_name=name, direction="maximize")
    for strategy, lr, epochs, value, state, params, seconds in trials:
        attrs = {"strategy": strategy, "reason": "pruned at epoch 1" if state == TrialState.PRUNED else ""}
        if params:
            attrs.update(
                trainable_params=params,
                trainable_share=params / 22_700_000,
                train_seconds=seconds,
                samples_per_second=800 / seconds,
                peak_memory_mb=900.0,
                metrics={"accuracy": value, "f1_macro": value - 0.02},
            )
        if state == TrialState.PRUNED:
            attrs["value"] = value
        study.add_trial(
            create_trial(
                state=state,
                value=value if state == TrialState.COMPLETE else None,
                params={"strategy": strategy, "learning_rate": lr, "epochs": epochs},
                distributions={
                    "strategy": CategoricalDistribution(["full", "lora"]),
                    "learning_rate": FloatDistribution(1e-5, 3e-3, log=True),
                    "epochs": IntDistribution(2, 4),
                },
                user_attrs=attrs,
            )
        )
    return study


def rows_of(study):
    return leaderboard.rows_from_trials(study.get_trials(), ACCURACY)


def sample_predictions():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 120)
    proba = rng.dirichlet([1, 1, 1], 120)
    proba[np.arange(120), y] += 0.25
    proba /= proba.sum(1, keepdims=True)
    texts = [f"review {i}: it was <fine> & cheap | ok" for i in range(120)]
    return texts, y, proba


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    """The run folder (its evaluation written) and write_report's keyword arguments."""
    run_dir = tmp_path_factory.mktemp("runs") / "reviews"
    texts, y, proba = sample_predictions()
    evaluation = evaluate_predictions(texts, y, proba, NAMES, run_dir / "evaluation")
    best = {
        "study": "reviews",
        "trial": 1,
        "objective": "accuracy",
        "validation": {"accuracy": 0.80, "f1_macro": 0.78},
        "test": {"accuracy": evaluation["accuracy"], "f1_macro": 0.7},
        "test_rows": 120,
        "majority_baseline": {"label": "positive", "accuracy": 0.38},
        "label_names": NAMES,
    }
    pairs = [[("it", 0.2), ("was", -0.1), ("<fine>", 1.0)]]
    args = (["it was <fine>"], ["positive"], ["negative"], pairs)
    study = make_study()
    return run_dir, dict(
        study=study,
        rows=rows_of(study),
        objective=ACCURACY,
        best=best,
        evaluation=evaluation,
        attributions_html=attributions_html(*args),
        attributions_md=attributions_markdown(*args),
    )


@pytest.fixture(scope="module")
def report(inputs):
    run_dir, kwargs = inputs
    html_path, md_path = write_report(run_dir, **kwargs)
    return run_dir, html_path, md_path


def test_report_files_are_written_in_the_run_folder(report):
    run_dir, html_path, md_path = report
    assert html_path == run_dir / "report.html" and md_path == run_dir / "report.md"
    assert (run_dir / "evaluation" / "history.png").is_file()
    assert (run_dir / "evaluation" / "importances.png").is_file()
    assert not [p.name for p in run_dir.iterdir() if p.name.startswith(".")]


def test_html_is_self_contained_with_every_image_inlined(report):
    _, html_path, _ = report
    page = html_path.read_text()
    for external in ('src="http', "src='http", 'href="http', "<script", "<link", "@import", "url("):
        assert external not in page, external
    images = IMG.findall(page)
    assert len(images) == 6  # history, importances, confusion matrix, PR, ROC, reliability
    for tag in images:
        data = re.search(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', tag)
        assert data, tag[:80]
        assert base64.b64decode(data.group(1)).startswith(b"\x89PNG")


def test_html_tells_the_story(report):
    _, html_path, _ = report
    page = html_path.read_text()
    for section in (
        "Summary",
        "Leaderboard",
        "Optimisation history",
        "Hyperparameter importances",
        "Strategies",
        "Test set: best model",
        "Most confident mistakes",
        "Token attributions",
    ):
        assert f"<h2>{section}</h2>" in page
    assert "<title>autoft report: reviews</title>" in page
    assert "always &#x27;positive&#x27;: accuracy 0.38" in page  # the majority baseline
    assert "weighted avg" in page and "macro avg" in page
    assert ": it was &lt;fine&gt; &amp; cheap | ok</td>" in page  # a misclassified row
    assert "<fine>" not in page  # user text is escaped everywhere


def test_markdown_references_images_that_exist(report):
    run_dir, _, md_path = report
    md = md_path.read_text()
    links = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", md)
    assert len(links) == 6
    for link in links:
        assert link.startswith("evaluation/") and (run_dir / link).is_file()
    assert "| rank | trial | state | accuracy |" in md
    assert "predicted **positive**, true **negative**" in md


def test_markdown_shows_the_first_20_mistakes_most_confident_first(report):
    run_dir, _, md_path = report
    md = md_path.read_text()
    n_wrong = json.loads((run_dir / "evaluation" / "evaluation.json").read_text())["n_misclassified"]
    section = md.split("## Most confident mistakes", 1)[1].split("## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| review")]
    assert len(rows) == 20
    assert f"The first 20 of {n_wrong} misclassified" in section and n_wrong > 20
    probabilities = [float(r.split(" | ")[-2]) for r in rows]
    assert probabilities == sorted(probabilities, reverse=True)
    assert ": it was &lt;fine> & cheap \\| ok |" in rows[0]  # no tag, no broken table


def test_html_and_markdown_carry_the_documents_sections_in_order(inputs, report):
    run_dir, kwargs = inputs
    _, html_path, md_path = report
    sections = [block.text for block in build_report(run_dir, **kwargs) if isinstance(block, Section)]
    assert len(sections) == 8 and sections[-1] == "Token attributions"
    assert [html.unescape(h) for h in re.findall(r"<h2>(.*?)</h2>", html_path.read_text())] == sections
    assert re.findall(r"^## (.*)$", md_path.read_text(), flags=re.MULTILINE) == sections


def test_strategies_are_compared_best_first():
    header, cells = strategy_rows(rows_of(make_study()), ACCURACY)
    assert header[:3] == ["strategy", "best accuracy", "trials (complete)"]
    assert [c[0] for c in cells] == ["lora", "full"]
    lora, full = cells
    assert lora[1] == "0.8" and lora[2] == "3 (2)"
    assert lora[3] == "0.15M (0.7%)" and full[3] == "22.70M (100.0%)"
    assert full[4] == "47.5"  # mean of 40 and 55 s; the failed trial has none
    assert lora[4] == fmt_mean([25.0, 10.0, 30.0])


def fmt_mean(values):
    return leaderboard.fmt(float(np.mean(values)), 1)


def test_minimize_picks_the_lowest(tmp_path):
    study = make_study()
    lowest = Objective("accuracy", maximize=False)
    rows = leaderboard.rows_from_trials(study.get_trials(), lowest)
    _, cells = strategy_rows(rows, lowest)
    assert [c[:2] for c in cells] == [["full", "0.71"], ["lora", "0.78"]]


def test_report_without_complete_trials_or_evaluation(tmp_path):
    failed = [("full", 1e-4, 2, None, TrialState.FAIL, None, None)]
    for study in (optuna.create_study(study_name="empty"), make_study(failed, "failed")):
        run_dir = tmp_path / study.study_name
        html_path, md_path = write_report(
            run_dir, study=study, rows=rows_of(study), objective=ACCURACY, best=None, evaluation=None
        )
        page, md = html_path.read_text(), md_path.read_text()
        assert "No complete trial yet." in page and "no trial has completed" in md
        assert "Not enough trials" in page and "No test evaluation yet" in md
        assert "<img" not in page and "![" not in md


def test_importances_need_two_complete_trials(tmp_path):
    one = [TRIALS[0], TRIALS[3]]  # one complete, one pruned
    study = make_study(one, "one")
    _, md_path = write_report(
        tmp_path, study=study, rows=rows_of(study), objective=ACCURACY, best=None, evaluation=None
    )
    md = md_path.read_text()
    assert "Not enough trials" in md
    assert "![Objective per completed trial and best so far](evaluation/history.png)" in md
    assert not (tmp_path / "evaluation" / "importances.png").exists()


def test_importances_need_a_parameter_that_varied(tmp_path):
    same = [("full", 3e-5, 2, 0.7, TrialState.COMPLETE, 10, 1.0), ("full", 3e-5, 2, 0.8, TrialState.COMPLETE, 10, 1.0)]
    study = make_study(same, "same")
    _, md_path = write_report(
        tmp_path, study=study, rows=rows_of(study), objective=ACCURACY, best=None, evaluation=None
    )
    assert "no parameter took two values" in md_path.read_text()


@pytest.mark.skipif(not CHROMIUM.is_file(), reason="needs /usr/bin/chromium (apt-get install chromium)")
def test_report_renders_in_headless_chromium_with_every_image_loaded(report, tmp_path):
    _, html_path, _ = report
    page = html_path.read_text()
    expected = len(IMG.findall(page))
    probe = (
        "<script>window.addEventListener('load', () => {"
        "const images = [...document.images];"
        "const loaded = images.filter((i) => i.complete && i.naturalWidth > 0).length;"
        "const marker = document.createElement('div'); marker.id = 'image-check';"
        "marker.textContent = `images loaded ${loaded} of ${images.length}`;"
        "document.body.appendChild(marker);});</script>"
    )
    check = tmp_path / "check.html"
    check.write_text(page.replace("</body>", probe + "</body>"))
    result = subprocess.run(
        [
            str(CHROMIUM),
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={tmp_path / 'profile'}",
            "--virtual-time-budget=5000",
            "--dump-dom",
            check.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    dom = result.stdout
    assert "autoft report: reviews</h1>" in dom, result.stderr[-2000:]
    assert f"images loaded {expected} of {expected}</div>" in dom
    assert expected == 6
