"""The study report: one self-contained ``report.html`` (images inlined) and a ``report.md`` beside it.

Both tell the same story: what was searched and what won, the leaderboard, how the
search went (history, parameter importances, strategies side by side), and how the
best model does on the test split (per-class report, confusion matrix, curves,
calibration, its most confident mistakes and the tokens behind them). The story is
built once, as a document (a list of blocks), and rendered by :func:`to_html` and
:func:`to_markdown`.
"""

from __future__ import annotations

import base64
import html
import math
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import accumulate
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .errors import first_line
from .fsutil import write_bytes, write_text
from .leaderboard import fmt, searched_models, table_rows, trainable
from .metrics import Objective
from .plots import plt, png

EVALUATION = "evaluation"
MISCLASSIFIED_ROWS = 20
HTML_CLIP, MD_CLIP = 500, 200  # characters of free text a table cell shows
NO_TRIALS = "No trials yet."
IMAGES = [
    ("confusion_matrix_png", "Confusion matrix"),
    ("pr_curves_png", "Precision-recall curves"),
    ("roc_curves_png", "ROC curves"),
    ("reliability_png", "Reliability diagram"),
    ("reliability_uncalibrated_png", "Reliability diagram before temperature scaling"),
    ("predicted_vs_true_png", "Predicted against true"),
    ("residuals_png", "Residuals"),
]

CSS = """
body{font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:2em auto;max-width:1200px;color:#222;
padding:0 1em;line-height:1.45}
h1{font-size:1.6em;margin-bottom:.2em}h2{font-size:1.25em;margin-top:1.8em;border-bottom:1px solid #ddd}
table{border-collapse:collapse;font-size:.85em;margin:.5em 0}
th,td{border:1px solid #ddd;padding:3px 7px;text-align:left;vertical-align:top}
th{background:#f4f4f4}td.num{text-align:right;font-variant-numeric:tabular-nums}
.scroll{overflow-x:auto}.muted{color:#666}.figures{display:flex;flex-wrap:wrap;gap:1em}
figure{margin:0}figcaption{font-size:.85em;color:#555}img{max-width:100%;height:auto}
"""


@dataclass(frozen=True)
class Title:
    text: str


@dataclass(frozen=True)
class Section:
    text: str


@dataclass(frozen=True)
class Paragraph:
    text: str


@dataclass(frozen=True)
class Pairs:
    pairs: list[tuple[str, str]]


@dataclass(frozen=True)
class Table:
    """Columns in ``clip`` hold free text, which each renderer shortens to its own limit."""

    header: Sequence[str]
    cells: list[list[str]]
    clip: tuple[int, ...] = ()


@dataclass(frozen=True)
class Figure:
    """A PNG saved at ``path`` (relative to the report); without one, the ``missing`` note."""

    path: str
    caption: str
    png: bytes | None
    missing: str = ""


@dataclass(frozen=True)
class Gallery:
    """Figures side by side."""

    figures: list[Figure]


@dataclass(frozen=True)
class Raw:
    """A ready-made fragment for each format; an empty one is left out."""

    html: str = ""
    md: str = ""


Block = Title | Section | Paragraph | Pairs | Table | Figure | Gallery | Raw


def write_report(
    run_dir: Path,
    *,
    study: Any,
    rows: list[dict],
    objective: Objective,
    best: dict | None,
    evaluation: dict | None,
    attributions_html: str = "",
    attributions_md: str = "",
) -> tuple[Path, Path]:
    """Write ``run_dir/report.html``, ``run_dir/report.md`` and its figures; return the two paths.

    The arguments are :func:`build_report`'s.
    """
    run_dir = Path(run_dir)
    doc = build_report(
        run_dir,
        study=study,
        rows=rows,
        objective=objective,
        best=best,
        evaluation=evaluation,
        attributions_html=attributions_html,
        attributions_md=attributions_md,
    )
    for figure in _figures(doc):  # the evaluation's own are on disk already
        path = run_dir / figure.path
        if figure.png is not None and not (path.is_file() and path.read_bytes() == figure.png):
            write_bytes(path, figure.png)
    html_path, md_path = run_dir / "report.html", run_dir / "report.md"
    write_text(html_path, to_html(doc))
    write_text(md_path, to_markdown(doc))
    return html_path, md_path


def build_report(
    run_dir: Path,
    *,
    study: Any,
    rows: list[dict],
    objective: Objective,
    best: dict | None,
    evaluation: dict | None,
    attributions_html: str = "",
    attributions_md: str = "",
) -> list[Block]:
    """The report as a document.

    ``rows`` are leaderboard rows, ``best`` is ``best/metrics.json`` and ``evaluation`` what
    :func:`autoft.evaluation.evaluate_predictions` returned for ``run_dir/evaluation``; either may be None.
    """
    run_dir = Path(run_dir)
    name = getattr(study, "study_name", None) or (best or {}).get("study") or run_dir.name
    doc: list[Block] = [
        Title(f"autoft report: {name}"),
        Section("Summary"),
        Pairs(_summary(name, rows, objective, best)),
    ]
    header, cells = _scores_table(best) if best else ([], [])
    if cells:
        doc += [Paragraph("Best trial: validation and test scores"), Table(header, cells)]
    doc += [Section("Leaderboard"), Table(*table_rows(rows, objective.name)) if rows else Paragraph(NO_TRIALS)]
    doc += _search(study, rows, objective)
    doc += _test(run_dir, evaluation)
    if attributions_html or attributions_md:
        doc += [Section("Token attributions"), Raw(attributions_html, attributions_md)]
    return doc


def to_html(doc: list[Block]) -> str:
    """One self-contained page: every text escaped, every image inlined."""
    title = next((block.text for block in doc if isinstance(block, Title)), "autoft report")
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{html.escape(title)}</title>\n<style>{CSS}</style>\n</head>\n<body>\n"
        + "\n".join(part for part in map(_html, doc) if part)
        + "\n</body>\n</html>\n"
    )


def to_markdown(doc: list[Block]) -> str:
    """Markdown: table cells escaped, images linked by their path relative to the report."""
    return "\n\n".join(part for part in map(_md, doc) if part) + "\n"


def strategy_rows(rows: list[dict], objective: Objective, by: str = "strategy") -> tuple[list[str], list[list[str]]]:
    """Per strategy (``by="model"``: per model), best first: best objective, trials (complete of all),
    trainable, mean train s and samples/s."""
    name = objective.name
    header = [by, f"best {name}", "trials (complete)", "trainable", "mean train s", "mean samples/s"]
    groups: dict[str, list[dict]] = {}
    for r in rows:
        groups.setdefault(str(r.get(by) or "-"), []).append(r)
    ranked = []
    for order, (strategy, group) in enumerate(groups.items()):
        top = _best(group, objective)
        shown = top or next((r for r in group if r.get("trainable_params")), group[0])
        done = sum(1 for r in group if r["state"] == "complete")
        cell = [
            strategy,
            fmt(top[name]) if top else "-",
            f"{len(group)} ({done})",
            trainable(shown.get("trainable_params"), shown.get("trainable_share")),
            fmt(_mean(r.get("train_seconds") for r in group), 1),
            fmt(_mean(r.get("samples_per_second") for r in group), 1),
        ]
        ranked.append(((objective.rank_key(top[name] if top else None), order), cell))
    return header, [cell for _, cell in sorted(ranked, key=lambda item: item[0])]


def report_rows(report: dict) -> tuple[list[str], list[list[str]]]:
    """sklearn's classification report (output_dict) as table cells: per class, then the averages."""
    header = ["label", "precision", "recall", "F1", "support"]
    cells = []
    for label, scores in report.items():
        if label == "accuracy":
            continue
        cells.append(
            [
                str(label),
                f"{scores['precision']:.4f}",
                f"{scores['recall']:.4f}",
                f"{scores['f1-score']:.4f}",
                str(int(scores["support"])),
            ]
        )
    if "accuracy" in report:
        support = next((int(s["support"]) for k, s in report.items() if k == "macro avg"), "")
        cells.append(["accuracy", "", "", f"{report['accuracy']:.4f}", str(support)])
    return header, cells


def misclassified_rows(path: Path, limit: int = MISCLASSIFIED_ROWS) -> tuple[list[str], list[list[str]]]:
    """The first ``limit`` rows of misclassified.csv as table cells (both texts of a sentence pair)."""
    header = ["text", "true", "predicted", "probability", "true probability"]
    if not Path(path).is_file():
        return header, []
    columns = {"text": str, "text_pair": str, "true": str, "predicted": str}
    frame = pd.read_csv(path, keep_default_na=False, dtype=columns)
    paired = "text_pair" in frame.columns
    if paired:
        header = ["text", "second text", *header[1:]]
    cells = [
        [r["text"], *([r["text_pair"]] if paired else [])]
        + [r["true"], r["predicted"], f"{float(r['probability']):.3f}", f"{float(r['true_probability']):.3f}"]
        for r in frame.head(limit).to_dict("records")
    ]
    return header, cells


def _summary(name: str, rows: list[dict], objective: Objective, best: dict | None) -> list[tuple[str, str]]:
    states: dict[str, int] = {}
    for r in rows:
        states[r["state"]] = states.get(r["state"], 0) + 1
    out = [
        ("study", name),
        ("objective", f"{objective.name} ({objective.direction})"),
        ("trials", ", ".join(f"{n} {s}" for s, n in states.items()) or "none"),
    ]
    top = _best(rows, objective)
    if top:
        value = fmt(top[objective.name])
        how = f"{top['model']}, {top['strategy']}" if top.get("model") else top["strategy"]
        out.append(("best trial", f"{top['trial']} ({how}): validation {objective.name} {value}"))
    else:
        out.append(("best trial", "none: no trial has completed"))
    if best:
        test, metric = best.get("test") or {}, best.get("objective", objective.name)
        if test.get(metric) is not None:
            out.append((f"test {metric}", f"{fmt(test[metric])} on {best.get('test_rows', '?')} rows"))
        if "accuracy" in test and metric != "accuracy":
            out.append(("test accuracy", fmt(test["accuracy"])))
        base = best.get("majority_baseline")
        if base:
            out.append(("majority baseline", f"always '{base['label']}': accuracy {fmt(base['accuracy'])}"))
        mean = best.get("mean_baseline")
        if mean:
            out.append(("mean baseline", f"always {fmt(mean['prediction'])}: rmse {fmt(mean['rmse'])}"))
    return out


def _search(study: Any, rows: list[dict], objective: Objective) -> list[Block]:
    """History, importances and strategies."""
    history = _history_png(rows, objective)
    doc: list[Block] = [
        Section("Optimisation history"),
        Figure(
            f"{EVALUATION}/history.png",
            "Objective per completed trial and best so far",
            history,
            "No complete trial yet.",
        ),
        Section("Hyperparameter importances"),
    ]
    importances, why = _importances(study)
    if importances:
        doc += [
            Figure(f"{EVALUATION}/importances.png", "fANOVA importance", _importances_png(importances)),
            Table(["parameter", "importance"], [[k, f"{v:.3f}"] for k, v in importances.items()]),
        ]
    else:
        doc.append(Paragraph(why))
    if searched_models(rows):  # which backbone won, and how each did
        doc += [Section("Models"), Table(*strategy_rows(rows, objective, by="model"))]
    header, cells = strategy_rows(rows, objective)
    return doc + [Section("Strategies"), Table(header, cells) if cells else Paragraph(NO_TRIALS)]


def _test(run_dir: Path, evaluation: dict | None) -> list[Block]:
    """The best model on test: scores, per-class report, the evaluation's figures, its mistakes."""
    doc: list[Block] = [Section("Test set: best model")]
    if not evaluation:
        return doc + [Paragraph("No test evaluation yet: it runs once the study has a complete trial.")]
    if evaluation.get("task") == "regression":
        return doc + _regression_test(run_dir, evaluation)
    if evaluation.get("task") == "multi_label":
        return doc + _multilabel_test(run_dir, evaluation)
    doc.append(Pairs(_evaluation_facts(evaluation)))
    if evaluation.get("classification_report"):
        doc.append(Table(*report_rows(evaluation["classification_report"])))
    files = evaluation.get("files", {})
    paths = [(f"{EVALUATION}/{files[key]}", caption) for key, caption in IMAGES if files.get(key)]
    doc.append(Gallery([Figure(p, c, (run_dir / p).read_bytes()) for p, c in paths if (run_dir / p).is_file()]))
    doc.append(Section("Most confident mistakes"))
    header, cells = misclassified_rows(run_dir / EVALUATION / files.get("misclassified_csv", "misclassified.csv"))
    if not cells:
        return doc + [Paragraph("No misclassified test rows.")]
    total = evaluation.get("n_misclassified")
    note = f"The first {len(cells)} of {total} misclassified test rows, most confident first."
    return doc + [Paragraph(note), Table(header, cells, clip=(0,))]


def _scores_table(best: dict) -> tuple[list[str], list[list[str]]]:
    validation, test = best.get("validation") or {}, best.get("test") or {}
    names = list(dict.fromkeys([*test, *validation]))
    return ["metric", "validation", "test"], [[n, fmt(validation.get(n)), fmt(test.get(n))] for n in names]


def _ece(evaluation: dict) -> str:
    """ECE, and before temperature scaling when the model was calibrated."""
    after = fmt(evaluation.get("ece"))
    if "ece_uncalibrated" not in evaluation:
        return after
    before, t = fmt(evaluation["ece_uncalibrated"]), fmt(evaluation.get("temperature"), 3)
    return f"{after} after temperature scaling (T = {t}, fitted on validation); {before} before"


def _multilabel_test(run_dir: Path, evaluation: dict) -> list[Block]:
    """A multi-label model on test: set scores, per-label report and curves, its surest wrong decisions."""
    thresholds = ", ".join(f"{k} {fmt(v)}" for k, v in (evaluation.get("thresholds") or {}).items())
    facts = [
        ("rows", str(evaluation.get("rows", "-"))),
        ("subset accuracy", fmt(evaluation.get("subset_accuracy"))),
        ("Hamming loss", fmt(evaluation.get("hamming_loss"))),
        ("decision thresholds (tuned on validation)", thresholds or "-"),
        ("wrong decisions", str(evaluation.get("n_mistakes", "-"))),
    ]
    files = evaluation.get("files", {})
    paths = [(f"{EVALUATION}/{files[key]}", caption) for key, caption in IMAGES if files.get(key)]
    doc: list[Block] = [Pairs(facts)]
    if evaluation.get("classification_report"):
        doc.append(Table(*report_rows(evaluation["classification_report"])))
    doc.append(Gallery([Figure(p, c, (run_dir / p).read_bytes()) for p, c in paths if (run_dir / p).is_file()]))
    doc.append(Section("Surest mistakes"))
    path = run_dir / EVALUATION / files.get("mistakes_csv", "mistakes.csv")
    frame = pd.read_csv(path, keep_default_na=False, dtype=str) if path.is_file() else pd.DataFrame()
    if frame.empty:
        return doc + [Paragraph("No wrong decisions on test.")]
    frame = frame.head(MISCLASSIFIED_ROWS)
    columns = [c for c in ("text", "text_pair", "label", "mistake", "probability", "true") if c in frame.columns]
    cells = [[r[c] for c in columns] for r in frame.to_dict("records")]
    note = f"The {len(cells)} surest wrong decisions on test (a label given that is not there, or one missed)."
    return doc + [Paragraph(note), Table(columns, cells, clip=(0,))]


def _regression_test(run_dir: Path, evaluation: dict) -> list[Block]:
    """A regression model on test: its errors and correlations, the plots, the rows furthest off."""
    base = evaluation.get("mean_baseline") or {}
    facts = [("rows", str(evaluation.get("rows", "-")))]
    facts += [(name, fmt(evaluation.get(name))) for name in ("rmse", "mae", "r2", "pearson", "spearman")]
    facts.append(("mean baseline", f"always {fmt(base.get('prediction'))}: rmse {fmt(base.get('rmse'))}"))
    files = evaluation.get("files", {})
    paths = [(f"{EVALUATION}/{files[key]}", caption) for key, caption in IMAGES if files.get(key)]
    doc: list[Block] = [
        Pairs(facts),
        Gallery([Figure(p, c, (run_dir / p).read_bytes()) for p, c in paths if (run_dir / p).is_file()]),
        Section("Largest errors"),
    ]
    path = run_dir / EVALUATION / files.get("largest_errors_csv", "largest_errors.csv")
    if not path.is_file():
        return doc + [Paragraph("No predictions.")]
    frame = pd.read_csv(path, keep_default_na=False, dtype={"text": str, "text_pair": str}).head(MISCLASSIFIED_ROWS)
    columns = [c for c in ("text", "text_pair", "true", "predicted", "error") if c in frame.columns]
    cells = [[r[c] if isinstance(r[c], str) else fmt(r[c]) for c in columns] for r in frame.to_dict("records")]
    note = f"The {len(cells)} test rows predicted furthest from their target."
    return doc + [Paragraph(note), Table(columns, cells, clip=(0,))]


def _evaluation_facts(evaluation: dict) -> list[tuple[str, str]]:
    def scores(key: str) -> str:
        return ", ".join(f"{k} {fmt(v, 3)}" for k, v in (evaluation.get(key) or {}).items())

    return [
        ("rows", str(evaluation.get("rows", "-"))),
        ("accuracy", fmt(evaluation.get("accuracy"))),
        ("macro average precision", fmt(evaluation.get("macro_average_precision"))),
        ("macro ROC AUC", fmt(evaluation.get("macro_roc_auc"))),
        ("expected calibration error", _ece(evaluation)),
        ("average precision per class", scores("average_precision") or "-"),
        ("ROC AUC per class", scores("roc_auc") or "-"),
        ("misclassified", str(evaluation.get("n_misclassified", "-"))),
    ]


def _best(rows: list[dict], objective: Objective) -> dict | None:
    """The first complete row with the best objective; None when none has a score."""
    top = None
    for r in rows:
        if r["state"] == "complete" and objective.better(r.get(objective.name), top[objective.name] if top else None):
            top = r
    return top


def _mean(values) -> float | None:
    found = [float(v) for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))]
    return float(np.mean(found)) if found else None


def _importances(study: Any) -> tuple[dict[str, float], str]:
    import optuna
    from optuna.importance import FanovaImportanceEvaluator, get_param_importances

    not_enough = "Not enough trials to rank the hyperparameters (it needs 2 complete trials that searched one)."
    if study is None:
        return {}, not_enough
    complete = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    if len(complete) < 2:
        return {}, not_enough
    common = set.intersection(*(set(t.params) for t in complete))
    varied = sorted(p for p in common if len({repr(t.params[p]) for t in complete}) > 1)
    if not varied:
        return {}, "Not enough trials to rank the hyperparameters: no parameter took two values in complete trials."
    try:
        found = get_param_importances(study, evaluator=FanovaImportanceEvaluator(seed=0), params=varied)
    except Exception as exc:  # optuna refuses some studies: say so, not fail
        first = first_line(exc)
        return {}, f"Not enough trials to rank the hyperparameters ({first})."
    if not found:
        return {}, not_enough
    return {k: float(v) for k, v in found.items()}, ""


def _history_png(rows: list[dict], objective: Objective) -> bytes | None:
    name = objective.name
    done = sorted((r for r in rows if r["state"] == "complete" and r.get(name) is not None), key=lambda r: r["trial"])
    if not done:
        return None
    x = [r["trial"] for r in done]
    y = [r[name] for r in done]
    best = list(accumulate(y, lambda top, v: v if objective.better(v, top) else top))
    fig, ax = plt.subplots(figsize=(7, 3.8))
    ax.scatter(x, y, s=22, color="#4c72b0", zorder=3, label=f"{name} (complete trial)")
    ax.step(x, best, where="post", color="#dd8452", linewidth=2, label="best so far")
    ax.set_xlabel("trial")
    ax.set_ylabel(f"validation {name}")
    ax.set_title("Optimisation history")
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small", frameon=False, loc="lower right" if objective.maximize else "upper right")
    return png(fig)


def _importances_png(importances: dict[str, float]) -> bytes:
    names = list(importances)[::-1]
    values = [importances[n] for n in names]
    fig, ax = plt.subplots(figsize=(6, 0.9 + 0.35 * len(names)))
    ax.barh(names, values, color="#4c72b0")
    ax.set_xlabel("importance (fANOVA, sums to 1)")
    ax.set_title("Hyperparameter importances")
    ax.set_xlim(0, max(values + [0.01]) * 1.1)
    return png(fig)


def _figures(doc: list[Block]):
    for block in doc:
        if isinstance(block, Figure):
            yield block
        elif isinstance(block, Gallery):
            yield from block.figures


def _html(block: Block) -> str:
    e = html.escape
    match block:
        case Title(text):
            return f"<h1>{e(text)}</h1>"
        case Section(text):
            return f"<h2>{e(text)}</h2>"
        case Paragraph(text):
            return f'<p class="muted">{e(text)}</p>'
        case Pairs(pairs):
            return "<table>" + "".join(f"<tr><th>{e(k)}</th><td>{e(v)}</td></tr>" for k, v in pairs) + "</table>"
        case Table(header, cells, clip):
            head = "".join(f"<th>{e(h)}</th>" for h in header)
            body = "".join(
                "<tr>"
                + "".join(
                    f'<td class="num">{e(c)}</td>' if _numeric(c) else f"<td>{e(c)}</td>"
                    for c in (_clip(c, HTML_CLIP) if i in clip else c for i, c in enumerate(row))
                )
                + "</tr>"
                for row in cells
            )
            return f'<div class="scroll"><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>'
        case Figure(_, _, None, missing):
            return _html(Paragraph(missing))
        case Figure(_, caption, data):
            inline = base64.b64encode(data).decode("ascii")
            return (
                f'<figure><img src="data:image/png;base64,{inline}" alt="{e(caption)}">'
                f"<figcaption>{e(caption)}</figcaption></figure>"
            )
        case Gallery(figures):
            return "\n".join(['<div class="figures">', *map(_html, figures), "</div>"])
        case Raw(fragment, _):
            return fragment
    raise TypeError(f"not a report block: {block!r}")


def _md(block: Block) -> str:
    match block:
        case Title(text):
            return f"# {_md_text(text)}"
        case Section(text):
            return f"## {_md_text(text)}"
        case Paragraph(text):
            return _md_text(text)
        case Pairs(pairs):
            return "\n".join(f"- **{_md_text(k)}**: {_md_text(v)}" for k, v in pairs)
        case Table(header, cells, clip):
            lines = ["| " + " | ".join(_md_cell(h) for h in header) + " |", "|" + "---|" * len(header)]
            lines += [
                "| " + " | ".join(_md_cell(_clip(c, MD_CLIP) if i in clip else c) for i, c in enumerate(row)) + " |"
                for row in cells
            ]
            return "\n".join(lines)
        case Figure(_, _, None, missing):
            return _md_text(missing)
        case Figure(path, caption):
            return f"![{_md_text(caption)}]({path})"
        case Gallery(figures):
            return "\n\n".join(map(_md, figures))
        case Raw(_, fragment):
            return fragment.rstrip("\n")
    raise TypeError(f"not a report block: {block!r}")


def _clip(text: str, limit: int = 200) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


def _numeric(cell: str) -> bool:
    try:
        float(cell.split(" ")[0].rstrip("%kM"))
        return True
    except ValueError:
        return False


def _md_text(text: str) -> str:
    return " ".join(str(text).split()).replace("<", "&lt;").replace("*", "\\*").replace("_", "\\_")


def _md_cell(text: str) -> str:
    return " ".join(str(text).split()).replace("<", "&lt;").replace("|", "\\|")
