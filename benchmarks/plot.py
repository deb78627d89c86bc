"""The search over time: best-so-far validation score against seconds since each process was launched.

One line per seed per side. A side's line steps up when a complete trial ends with a better value than any
before it, and runs flat to the end of the process (a cross), so the time after the last trial counts too.
Each side plots its own trial value: the Trainer's is the accuracy of the trial's last evaluation
(``hyperparameter_search``'s objective), autoft's the trial's best evaluation. Pruned trials are left out,
as both sides leave them out when they pick the best trial.
"""

from __future__ import annotations

from pathlib import Path

SIDES = {"trainer": ("Trainer", "tab:blue"), "autoft": ("autoft", "tab:orange")}
DASHES = ["-", "--", ":", "-."]


def best_so_far(trials: list[dict]) -> tuple[list[float], list[float]]:
    """(seconds since launch, best value so far) at each complete trial that raised the best."""
    done = sorted(
        (t["ended_s"], t["value"])
        for t in trials
        if t.get("state") == "complete" and t.get("ended_s") is not None and t.get("value") is not None
    )
    xs: list[float] = []
    ys: list[float] = []
    for ended, value in done:
        if not ys or value > ys[-1]:
            xs.append(ended)
            ys.append(value)
    return xs, ys


def search_over_time(runs: list[dict], title: str, path: Path) -> Path:
    """Write the PNG for ``runs`` (the search section's per-seed rows) to ``path``."""
    from autoft.plots import plt, png

    fig, ax = plt.subplots(figsize=(7.5, 4.5))
    for i, run in enumerate(runs):
        for side, (name, color) in SIDES.items():
            result = run[side]
            xs, ys = best_so_far(result["trials"])
            if not xs:
                continue
            end = max(result["wall_s"], xs[-1])
            style = DASHES[i % len(DASHES)]
            ax.step(
                xs + [end],
                ys + [ys[-1]],
                where="post",
                color=color,
                linestyle=style,
                marker="o",
                markevery=list(range(len(xs))),
                markersize=4,
                label=f"{name}, seed {run['seed']}",
            )
            ax.plot([end], [ys[-1]], marker="x", color=color, markersize=8)
    ax.set_xlabel("seconds since the process was launched (× = process ended)")
    ax.set_ylabel("best validation accuracy so far")
    ax.set_xlim(left=0)
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="best")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(png(fig))
    return path
