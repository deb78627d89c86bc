"""The search's time: a budget (``[search] budget = "20m"``, ``--budget 20m``) and a forecast of the whole study.

The forecast is made once per run, from the training throughput of a trial's first
steps (:class:`FirstSteps`) and the planned work (trials left x the space's mean epochs x training
rows, plus their evaluations), before any trial has finished; it is an upper bound,
since a pruner stops most trials early. The budget is a deadline on the wall clock:
no trial starts that cannot reach its first rung before it, and a running trial
that meets it evaluates once more and ends, so the search overruns it by at most
one evaluation; then the best model found is scored and exported as usual.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

from .options import Choice, Range

#: a forecast longer than this gets advice on what to shrink
LONG = 3600.0

_DURATION = re.compile(r"(?:(?P<h>\d+(?:\.\d+)?)h)?(?:(?P<m>\d+(?:\.\d+)?)m(?:in)?)?(?:(?P<s>\d+(?:\.\d+)?)s)?")


def parse_duration(text: str) -> float:
    """Seconds in a duration such as "20m", "1h30m", "90s" or "45" (seconds); ValueError if it is none."""
    value = str(text).strip().lower().replace(" ", "")
    if re.fullmatch(r"\d+(\.\d+)?", value):
        seconds = float(value)
    else:
        match = _DURATION.fullmatch(value)
        if not value or not match or not any(match.groupdict().values()):
            raise ValueError(f"{text!r} is not a duration; use hours, minutes or seconds, such as 20m, 1h30m or 90s")
        parts = {k: float(v or 0) for k, v in match.groupdict().items()}
        seconds = parts["h"] * 3600 + parts["m"] * 60 + parts["s"]
    if not math.isfinite(seconds) or seconds <= 0:
        raise ValueError(f"{text!r} is not a positive duration; such as 20m, 1h30m or 90s")
    return seconds


def format_duration(seconds: float) -> str:
    """'1 h 05 min', '4 min 10 s' or '35 s'."""
    seconds = max(0, round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes:02d} min"
    if minutes:
        return f"{minutes} min {secs:02d} s"
    return f"{secs} s"


def mean_of(value: Any) -> float:
    """The mean of a numeric [space] value: fixed, a Choice or a Range."""
    if isinstance(value, Range):
        return (float(value.low) + float(value.high)) / 2
    if isinstance(value, Choice):
        return sum(float(v) for v in value.values) / len(value.values)
    return float(value)


class FirstSteps:
    """Times one trial's uninterrupted training for the forecast: its samples a second once it has
    trained ``after`` seconds and 3 steps.

    A trial that waits at a rung for its bracket (``pruner = "sha"``) or ends before then gives way:
    the next trial to report is timed afresh, and a wait is never counted as training.
    """

    def __init__(self, after: float):
        self.after = after
        self.trial: Any = None  # the trial timed (a RunningTrial: number, waited, waiting_since)
        self.start = (0.0, 0, 0.0)  # (time, step, seconds it had waited) when it was first timed

    def report(self, trial: Any, step: int, batch_size: int, now: float, running: Any) -> float | None:
        """A progress report of ``trial``; ``running``: the trial numbers not yet ended. Samples a
        second once measured, else None."""
        timed = self.trial
        if timed is not trial:
            if timed is not None and timed.waiting_since is None and timed.number in running:
                return None  # another trial is being timed
            self.trial, self.start = trial, (now, step, trial.waited)
            return None
        began, first, waited = self.start
        if trial.waited != waited:  # it waited at a rung since: time it from here
            self.start = (now, step, trial.waited)
            return None
        if now - began < self.after or step - first < 3:
            return None
        return (step - first) * batch_size / (now - began)


@dataclass(frozen=True)
class Forecast:
    """The planned work of the trials left, and the throughput measured on this machine."""

    trials: int
    epochs: float  # the space's mean epochs per trial
    train_rows: int
    validation_rows: int
    evaluations: float  # per trial: epoch ends and rungs
    samples_per_second: float  # one trial's, while the others in flight run beside it
    test_rows: int = 0  # scored once, for the best trial, after the search
    lanes: int = 1  # trials in flight at once

    @property
    def test_seconds(self) -> float:
        return self.test_rows / (3 * self.samples_per_second)

    @property
    def seconds(self) -> float:
        training = self.trials * self.epochs * self.train_rows / self.samples_per_second
        # evaluation runs forward only: about a third of a training step's work per row
        scoring = self.trials * self.evaluations * self.validation_rows / (3 * self.samples_per_second)
        return (training + scoring) / min(self.lanes, max(1, self.trials)) + self.test_seconds

    def text(self, shrink: list[str]) -> str:
        """One line for the console; past an hour, it names the settings that shrink the study."""
        line = (
            f"forecast: at most {format_duration(self.seconds)} for the {self.trials} trial(s) left "
            f"(about {self.epochs:g} epochs of {self.train_rows:,} rows each at {self.samples_per_second:.0f} "
            f"samples/s{f' in each of {self.lanes} trials at once' if self.lanes > 1 else ''}, measured in the "
            "first trial's first steps; the pruner stops most trials sooner)"
        )
        if self.test_seconds >= 60:
            line += f", {format_duration(self.test_seconds)} of it scoring the {self.test_rows:,} test rows once"
        if self.seconds > LONG:
            line += "; over an hour on this machine: to shrink it, lower " + ", ".join(shrink)
        return line
