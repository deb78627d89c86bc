"""Ratios between the two sides, and the table printed at the end."""

from __future__ import annotations


def ratio(autoft: float | None, trainer: float | None) -> float | None:
    """autoft / Trainer (None when either is missing or the Trainer's is zero)."""
    if autoft is None or trainer is None or trainer == 0:
        return None
    return autoft / trainer


#: (section, key, label, unit, which direction is better for autoft)
ROWS = [
    ("throughput", "samples_per_s", "training throughput", "samples/s", "higher"),
    ("throughput", "epoch_s", "epoch wall time", "s", "lower"),
    ("throughput", "validation_accuracy", "validation accuracy (check)", "", "higher"),
    ("search", "wall_s", "search wall time", "s", "lower"),
    ("search", "best_validation", "best validation accuracy", "", "higher"),
    ("search", "setup_s_per_trial", "setup per trial (mean)", "s", "lower"),
]


def add_ratios(results: dict) -> None:
    """Put ``ratios`` (autoft / Trainer) into each section that has both sides."""
    for section in ("throughput", "search"):
        part = results.get(section)
        if not part:
            continue
        part["ratios"] = {
            key: ratio(part["autoft"].get(key), part["trainer"].get(key)) for sec, key, *_ in ROWS if sec == section
        }


def table(results: dict) -> str:
    lines = []
    if results.get("throughput") or results.get("search"):
        lines.append(f"{'':34} {'Trainer':>12} {'autoft':>12} {'autoft/Trainer':>15}  better")
    for section, key, label, unit, direction in ROWS:
        part = results.get(section)
        if not part:
            continue
        t, a = part["trainer"].get(key), part["autoft"].get(key)
        name = f"{label} ({unit})" if unit else label
        lines.append(f"{name:34} {_fmt(t):>12} {_fmt(a):>12} {_fmt(part['ratios'].get(key), 3):>15}  {direction}")
    summary = results.get("summary")
    if summary:
        lines.extend(seed_lines(summary))
    quick = results.get("quickstart")
    if quick:
        test = quick.get("test") or {}
        lines.append(
            f"quickstart: {quick['wall_s']:.1f} s wall, {len(quick['trials'])} trials, "
            f"setup per trial {_fmt(quick['setup_s_per_trial'])} s, best test accuracy {_fmt(test.get('accuracy'))}, "
            f"macro-F1 {_fmt(test.get('f1_macro'))}"
        )
    return "\n".join(lines)


def seed_lines(summary: dict) -> list[str]:
    """The search per seed, and the medians over seeds (the search rows above are medians too)."""
    lines = [
        f"search per seed ({summary['preset']}): wall s Trainer / autoft (ratio), best validation (autoft - Trainer)"
    ]
    for row in summary["per_seed"]:
        lines.append(
            f"  seed {row['seed']} ({row['first']} first): {_fmt(row['trainer_wall_s'])} / {_fmt(row['autoft_wall_s'])}"
            f" ({_fmt(row['wall_ratio'], 3)}), {_fmt(row['trainer_best_validation'])} / "
            f"{_fmt(row['autoft_best_validation'])} ({_signed(row['best_validation_delta'])})"
        )
    lines.append(
        f"median over {len(summary['per_seed'])} seed(s): wall ratio {_fmt(summary['wall_ratio'], 3)}, "
        f"best validation delta {_signed(summary['best_validation_delta'])}"
    )
    return lines


def _signed(value: float | None) -> str:
    return "-" if value is None else f"{value:+.3f}"


def _fmt(value: float | None, digits: int | None = None) -> str:
    if value is None:
        return "-"
    if digits is None:
        digits = 3 if abs(value) < 10 else 1
    return f"{value:.{digits}f}"
