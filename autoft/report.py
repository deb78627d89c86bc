"""The study report: one self-contained ``report.html`` (images inlined) and a ``report.md`` beside it.

Both tell the same story: what was searched and what won, the leaderboard, how the
search went (history, parameter importances, strategies side by side), and how the
best model does on the test split (per-class report, confusion matrix, curves,
calibration, its most confident mistakes and the tokens behind them).
"""

from __future__ import annotations

import base64
import html
import io
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib
import numpy as np
import pandas as pd

from .errors import first_line
from .fsutil import write_bytes, write_text
from .leaderboard import fmt, table_rows, trainable

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

EVALUATION = "evaluation"
DPI = 110
MISCLASSIFIED_ROWS = 20
IMAGES = [
    ("confusion_matrix_png", "Confusion matrix"),
    ("pr_curves_png", "Precision-recall curves"),
    ("roc_curves_png", "ROC curves"),
    ("reliability_png", "Reliability diagram"),
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


def write_report(
    run_dir: Path,
    *,
    study: Any,
    rows: list[dict],
    objective: str,
    maximize: bool,
    best: dict | None,
    evaluation: dict | None,
    attributions_html: str = "",
    attributions_md: str = "",
) -> tuple[Path, Path]:
    """Write ``run_dir/report.html`` and ``run_dir/report.md``; return their paths.

    ``rows`` are leaderboard rows, ``best`` is ``best/metrics.json`` and ``evaluation`` what
    :func:`autoft.evaluation.evaluate_predictions` returned for ``run_dir/evaluation``; either may be None.
    """
    run_dir = Path(run_dir)
    figures = run_dir / EVALUATION
    html_doc = _Doc()
    md = _Md()
    name = getattr(study, "study_name", None) or (best or {}).get("study") or run_dir.name
    html_doc.title(f"autoft report: {name}")
    md.title(f"autoft report: {name}")

    summary = _summary(name, rows, objective, maximize, best)
    html_doc.section("Summary")
    md.section("Summary")
    html_doc.pairs(summary)
    md.pairs(summary)
    if best:
        header, cells = _scores_table(best)
        if cells:
            caption = "Best trial: validation and test scores"
            html_doc.paragraph(caption)
            html_doc.table(header, cells)
            md.paragraph(caption)
            md.table(header, cells)

    html_doc.section("Leaderboard")
    md.section("Leaderboard")
    if rows:
        header, cells = table_rows(rows, objective)
        html_doc.table(header, cells)
        md.table(header, cells)
    else:
        html_doc.paragraph("No trials yet.")
        md.paragraph("No trials yet.")

    html_doc.section("Optimisation history")
    md.section("Optimisation history")
    history = _history_png(rows, objective, maximize)
    _figure(
        html_doc,
        md,
        figures,
        "history.png",
        history,
        "Objective per completed trial and best so far",
        "No complete trial yet.",
    )

    html_doc.section("Hyperparameter importances")
    md.section("Hyperparameter importances")
    importances, why = _importances(study)
    if importances:
        header = ["parameter", "importance"]
        cells = [[k, f"{v:.3f}"] for k, v in importances.items()]
        _figure(html_doc, md, figures, "importances.png", _importances_png(importances), "fANOVA importance", "")
        html_doc.table(header, cells)
        md.table(header, cells)
    else:
        html_doc.paragraph(why)
        md.paragraph(why)

    html_doc.section("Strategies")
    md.section("Strategies")
    header, cells = strategy_rows(rows, objective, maximize)
    if cells:
        html_doc.table(header, cells)
        md.table(header, cells)
    else:
        html_doc.paragraph("No trials yet.")
        md.paragraph("No trials yet.")

    html_doc.section("Test set: best model")
    md.section("Test set: best model")
    if not evaluation:
        note = "No test evaluation yet: it runs once the study has a complete trial."
        html_doc.paragraph(note)
        md.paragraph(note)
    else:
        facts = _evaluation_facts(evaluation)
        html_doc.pairs(facts)
        md.pairs(facts)
        report = evaluation.get("classification_report")
        if report:
            header, cells = report_rows(report)
            html_doc.table(header, cells)
            md.table(header, cells)
        files = evaluation.get("files", {})
        html_doc.open_figures()
        for key, caption in IMAGES:
            file = files.get(key)
            if file and (figures / file).is_file():
                html_doc.image((figures / file).read_bytes(), caption)
                md.image(f"{EVALUATION}/{file}", caption)
        html_doc.close_figures()

        html_doc.section("Most confident mistakes")
        md.section("Most confident mistakes")
        wrong = figures / files.get("misclassified_csv", "misclassified.csv")
        header, cells = misclassified_rows(wrong)
        total = evaluation.get("n_misclassified")
        if cells:
            note = f"The first {len(cells)} of {total} misclassified test rows, most confident first."
            html_doc.paragraph(note)
            html_doc.table(header, [[_clip(c, 500) if i == 0 else c for i, c in enumerate(row)] for row in cells])
            md.paragraph(note)
            md.table(header, [[_clip(c) if i == 0 else c for i, c in enumerate(row)] for row in cells])
        else:
            html_doc.paragraph("No misclassified test rows.")
            md.paragraph("No misclassified test rows.")

    if attributions_html or attributions_md:
        html_doc.section("Token attributions")
        md.section("Token attributions")
        if attributions_html:
            html_doc.raw(attributions_html)
        if attributions_md:
            md.raw(attributions_md)

    html_path, md_path = run_dir / "report.html", run_dir / "report.md"
    write_text(html_path, html_doc.render(f"autoft report: {name}"))
    write_text(md_path, md.render())
    return html_path, md_path


def strategy_rows(rows: list[dict], objective: str, maximize: bool) -> tuple[list[str], list[list[str]]]:
    """Per strategy: best objective, trials (complete of all), trainable parameters, mean train s and samples/s."""
    header = ["strategy", f"best {objective}", "trials (complete)", "trainable", "mean train s", "mean samples/s"]
    groups: dict[str, list[dict]] = {}
    for r in rows:
        groups.setdefault(str(r.get("strategy") or "-"), []).append(r)
    ranked = []
    for order, (strategy, group) in enumerate(groups.items()):
        top = _best(group, objective, maximize)
        shown = top or next((r for r in group if r.get("trainable_params")), group[0])
        done = sum(1 for r in group if r["state"] == "complete")
        cell = [
            strategy,
            fmt(top[objective]) if top else "-",
            f"{len(group)} ({done})",
            trainable(shown.get("trainable_params"), shown.get("trainable_share")),
            fmt(_mean(r.get("train_seconds") for r in group), 1),
            fmt(_mean(r.get("samples_per_second") for r in group), 1),
        ]
        value = top[objective] if top else None
        ranked.append(((value is None, (-value if maximize else value) if value is not None else 0.0, order), cell))
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
    """The first ``limit`` rows of misclassified.csv as table cells."""
    header = ["text", "true", "predicted", "probability", "true probability"]
    if not Path(path).is_file():
        return header, []
    frame = pd.read_csv(path, keep_default_na=False, dtype={"text": str, "true": str, "predicted": str})
    cells = [
        [r["text"], r["true"], r["predicted"], f"{float(r['probability']):.3f}", f"{float(r['true_probability']):.3f}"]
        for r in frame.head(limit).to_dict("records")
    ]
    return header, cells


def _summary(name: str, rows: list[dict], objective: str, maximize: bool, best: dict | None) -> list[tuple[str, str]]:
    states: dict[str, int] = {}
    for r in rows:
        states[r["state"]] = states.get(r["state"], 0) + 1
    out = [
        ("study", name),
        ("objective", f"{objective} ({'maximize' if maximize else 'minimize'})"),
        ("trials", ", ".join(f"{n} {s}" for s, n in states.items()) or "none"),
    ]
    top = _best(rows, objective, maximize)
    if top:
        out.append(("best trial", f"{top['trial']} ({top['strategy']}): validation {objective} {fmt(top[objective])}"))
    else:
        out.append(("best trial", "none: no trial has completed"))
    if best:
        test = best.get("test") or {}
        score = test.get(best.get("objective", objective))
        if score is not None:
            out.append(
                (f"test {best.get('objective', objective)}", f"{fmt(score)} on {best.get('test_rows', '?')} rows")
            )
        if "accuracy" in test and best.get("objective", objective) != "accuracy":
            out.append(("test accuracy", fmt(test["accuracy"])))
        base = best.get("majority_baseline")
        if base:
            out.append(("majority baseline", f"always '{base['label']}': accuracy {fmt(base['accuracy'])}"))
    return out


def _scores_table(best: dict) -> tuple[list[str], list[list[str]]]:
    validation, test = best.get("validation") or {}, best.get("test") or {}
    names = list(dict.fromkeys([*test, *validation]))
    return ["metric", "validation", "test"], [[n, fmt(validation.get(n)), fmt(test.get(n))] for n in names]


def _evaluation_facts(evaluation: dict) -> list[tuple[str, str]]:
    def scores(key: str) -> str:
        return ", ".join(f"{k} {fmt(v, 3)}" for k, v in (evaluation.get(key) or {}).items())

    return [
        ("rows", str(evaluation.get("rows", "-"))),
        ("accuracy", fmt(evaluation.get("accuracy"))),
        ("macro average precision", fmt(evaluation.get("macro_average_precision"))),
        ("macro ROC AUC", fmt(evaluation.get("macro_roc_auc"))),
        ("expected calibration error", fmt(evaluation.get("ece"))),
        ("average precision per class", scores("average_precision") or "-"),
        ("ROC AUC per class", scores("roc_auc") or "-"),
        ("misclassified", str(evaluation.get("n_misclassified", "-"))),
    ]


def _best(rows: list[dict], objective: str, maximize: bool) -> dict | None:
    done = [r for r in rows if r["state"] == "complete" and r.get(objective) is not None]
    if not done:
        return None
    return (max if maximize else min)(done, key=lambda r: r[objective])


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


def _history_png(rows: list[dict], objective: str, maximize: bool) -> bytes | None:
    done = sorted(
        (r for r in rows if r["state"] == "complete" and r.get(objective) is not None), key=lambda r: r["trial"]
    )
    if not done:
        return None
    x = [r["trial"] for r in done]
    y = [r[objective] for r in done]
    best = np.maximum.accumulate(y) if maximize else np.minimum.accumulate(y)
    fig, ax = plt.subplots(figsize=(7, 3.8))
    ax.scatter(x, y, s=22, color="#4c72b0", zorder=3, label=f"{objective} (complete trial)")
    ax.step(x, best, where="post", color="#dd8452", linewidth=2, label="best so far")
    ax.set_xlabel("trial")
    ax.set_ylabel(f"validation {objective}")
    ax.set_title("Optimisation history")
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small", frameon=False, loc="lower right" if maximize else "upper right")
    return _png(fig)


def _importances_png(importances: dict[str, float]) -> bytes:
    names = list(importances)[::-1]
    values = [importances[n] for n in names]
    fig, ax = plt.subplots(figsize=(6, 0.9 + 0.35 * len(names)))
    ax.barh(names, values, color="#4c72b0")
    ax.set_xlabel("importance (fANOVA, sums to 1)")
    ax.set_title("Hyperparameter importances")
    ax.set_xlim(0, max(values + [0.01]) * 1.1)
    return _png(fig)


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


def _figure(doc: _Doc, md: _Md, folder: Path, file: str, png: bytes | None, caption: str, missing: str) -> None:
    if png is None:
        doc.paragraph(missing)
        md.paragraph(missing)
        return
    write_bytes(folder / file, png)
    doc.image(png, caption)
    md.image(f"{EVALUATION}/{file}", caption)


def _clip(text: str, limit: int = 200) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


def _numeric(cell: str) -> bool:
    try:
        float(cell.split(" ")[0].rstrip("%kM"))
        return True
    except ValueError:
        return False


class _Doc:
    """An HTML page built in order; every text is escaped, every image inlined."""

    def __init__(self) -> None:
        self.parts: list[str] = []

    def title(self, text: str) -> None:
        self.parts.append(f"<h1>{html.escape(text)}</h1>")

    def section(self, text: str) -> None:
        self.parts.append(f"<h2>{html.escape(text)}</h2>")

    def paragraph(self, text: str) -> None:
        self.parts.append(f'<p class="muted">{html.escape(text)}</p>')

    def pairs(self, pairs: list[tuple[str, str]]) -> None:
        body = "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>" for k, v in pairs)
        self.parts.append(f"<table>{body}</table>")

    def table(self, header: Sequence[str], cells: list[list[str]]) -> None:
        head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
        body = "".join(
            "<tr>"
            + "".join(
                f'<td class="num">{html.escape(c)}</td>' if _numeric(c) else f"<td>{html.escape(c)}</td>" for c in row
            )
            + "</tr>"
            for row in cells
        )
        self.parts.append(
            f'<div class="scroll"><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>'
        )

    def image(self, png: bytes, caption: str) -> None:
        data = base64.b64encode(png).decode("ascii")
        self.parts.append(
            f'<figure><img src="data:image/png;base64,{data}" alt="{html.escape(caption)}">'
            f"<figcaption>{html.escape(caption)}</figcaption></figure>"
        )

    def open_figures(self) -> None:
        self.parts.append('<div class="figures">')

    def close_figures(self) -> None:
        self.parts.append("</div>")

    def raw(self, fragment: str) -> None:
        self.parts.append(fragment)

    def render(self, title: str) -> str:
        return (
            '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
            '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
            f"<title>{html.escape(title)}</title>\n<style>{CSS}</style>\n</head>\n<body>\n"
            + "\n".join(self.parts)
            + "\n</body>\n</html>\n"
        )


class _Md:
    """A Markdown document built in order; table cells are escaped, images are relative links."""

    def __init__(self) -> None:
        self.parts: list[str] = []

    def title(self, text: str) -> None:
        self.parts.append(f"# {_md_text(text)}")

    def section(self, text: str) -> None:
        self.parts.append(f"## {_md_text(text)}")

    def paragraph(self, text: str) -> None:
        self.parts.append(_md_text(text))

    def pairs(self, pairs: list[tuple[str, str]]) -> None:
        self.parts.append("\n".join(f"- **{_md_text(k)}**: {_md_text(v)}" for k, v in pairs))

    def table(self, header: Sequence[str], cells: list[list[str]]) -> None:
        lines = ["| " + " | ".join(_md_cell(h) for h in header) + " |", "|" + "---|" * len(header)]
        lines += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in cells]
        self.parts.append("\n".join(lines))

    def image(self, path: str, caption: str) -> None:
        self.parts.append(f"![{_md_text(caption)}]({path})")

    def raw(self, fragment: str) -> None:
        self.parts.append(fragment.rstrip("\n"))

    def render(self) -> str:
        return "\n\n".join(self.parts) + "\n"


def _md_text(text: str) -> str:
    return " ".join(str(text).split()).replace("<", "&lt;").replace("*", "\\*").replace("_", "\\_")


def _md_cell(text: str) -> str:
    return " ".join(str(text).split()).replace("<", "&lt;").replace("|", "\\|")
