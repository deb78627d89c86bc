"""What a person sees while a study runs: a progress bar per trial and the best so far (rich)."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from .leaderboard import compact_rows, fmt
from .options import is_searched


def make_console(stderr: bool = False) -> Console:
    return Console(stderr=stderr, highlight=False)


class StudyDisplay:
    """Progress bars for trials, one line per finished trial, and the leaderboard at the end."""

    def __init__(self, console: Console, objective: str, enabled: bool = True):
        self.console = console
        self.objective = objective
        self.progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(bar_width=30),
            MofNCompleteColumn(),
            TextColumn("{task.fields[note]}"),
            TimeElapsedColumn(),
            console=console,
            transient=False,
            disable=not enabled,
        )

    def __enter__(self) -> StudyDisplay:
        self.progress.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.progress.stop()

    def print(self, *args: Any, **kw: Any) -> None:
        self.progress.console.print(*args, **kw)

    def trial(self, number: int, summary: str) -> TrialBar:
        task = self.progress.add_task(f"trial {number:>3} {summary}", total=None, note="")
        return TrialBar(self, task)

    def finished(
        self, number: int, state: str, value: float | None, reason: str, best: tuple[int, float] | None
    ) -> None:
        mark = {"complete": "[green]✓[/]", "pruned": "[yellow]✂[/]", "failed": "[red]✗[/]"}.get(state, "?")
        text = f"{mark} trial {number} {state}"
        if value is not None:
            text += f" {self.objective}={fmt(value)}"
        if reason:
            text += f" ({escape(reason)})"
        if best is not None:
            text += f" · best {self.objective}={fmt(best[1])} (trial {best[0]})"
        self.print(text)


class TrialBar:
    """A trial's progress bar: steps done, the last evaluation, and a final note."""

    def __init__(self, display: StudyDisplay, task: Any):
        self.display = display
        self.task = task

    def progress(self, step: int, total: int) -> None:
        self.display.progress.update(self.task, completed=step, total=total)

    def evaluated(self, epoch: float, value: float | None, waits: bool = False) -> None:
        """Show the last evaluation; ``waits``: the trial waits there for the rest of its bracket."""
        note = f"epoch {epoch:g} {self.display.objective}={fmt(value)}"
        self.display.progress.update(self.task, note=f"{note} · waits for its bracket" if waits else note)

    def close(self, note: str) -> None:
        """Freeze the bar (and its clock) with a final note."""
        task = next(t for t in self.display.progress.tasks if t.id == self.task)
        total = task.total or task.completed or 1
        completed = total if note == "complete" else task.completed
        self.display.progress.update(self.task, total=total, completed=completed, note=note)
        self.display.progress.stop_task(self.task)


def trial_summary(config: Any, searched_options: dict[str, Any]) -> str:
    """A short label for a trial's bar: strategy, learning rate, epochs, batch size, the searched options."""
    hp = config.hp
    parts = [f"{config.strategy:<6}", f"lr={fmt(hp.learning_rate)}", f"ep={hp.epochs}", f"bs={hp.batch_size}"]
    for key, value in searched_options.items():
        if is_searched(value):
            parts.append(f"{key}={fmt(getattr(config.options, key))}")
    return " ".join(parts)


def leaderboard_table(rows: list[dict], objective: str, limit: int | None = None) -> Table:
    header, cells = compact_rows(rows, objective)
    table = Table(show_lines=False, header_style="bold", title="leaderboard", title_justify="left")
    keep = (
        [i for i, h in enumerate(header) if h != "note"] if not any(r["reason"] for r in rows) else range(len(header))
    )
    for i in keep:
        table.add_column(header[i], overflow="fold")
    for row in cells[:limit]:
        table.add_row(*[row[i] for i in keep])
    return table
