from dataclasses import dataclass
from typing import Literal

import pytest

from autoft.errors import ConfigError
from autoft.options import Choice, Range, option, parse


@dataclass(frozen=True)
class Opts:
    rate: float = option(0.1, "a rate", gt=0, lt=1)
    count: int = option(2, "a count", ge=1)
    mode: Literal["a", "b"] = option("a", "a mode")
    names: list[str] = option([], "names")
    flag: bool = option(False, "a flag")
    scale: float = option(1.0, "a scale")


def test_fixed_values_keep_their_types():
    out = parse(Opts, {"rate": 0.5, "count": 3, "mode": "b", "names": ["x", "y"], "flag": True}, "f: [t]")
    assert out == {"rate": 0.5, "count": 3, "mode": "b", "names": ("x", "y"), "flag": True}


def test_an_integer_is_accepted_where_a_number_is_wanted():
    out = parse(Opts, {"scale": 2}, "f")
    assert out == {"scale": 2.0} and isinstance(out["scale"], float)


def test_bounds_are_checked():
    with pytest.raises(ConfigError, match="rate: 0.0 is out of range; must be above 0 and below 1"):
        parse(Opts, {"rate": 0}, "f")


def test_ranges_and_choices_when_searchable():
    out = parse(
        Opts,
        {"rate": {"low": 1e-4, "high": 0.5, "log": True}, "count": [1, 2, 4], "mode": {"choices": ["a", "b"]}},
        "f",
        searchable=True,
    )
    assert out["rate"] == Range(1e-4, 0.5, True, None, integer=False)
    assert out["count"] == Choice((1, 2, 4))
    assert out["mode"] == Choice(("a", "b"))


def test_integer_range_stays_integer():
    out = parse(Opts, {"count": {"low": 1, "high": 8}}, "f", searchable=True)
    assert out["count"].integer


@pytest.mark.parametrize(
    "table, message",
    [
        ({"rat": 0.1}, "unknown key 'rat'; valid keys: count, flag, mode, names, rate, scale"),
        ({"count": "two"}, "count: expected an integer, got 'two'"),
        ({"count": 1.5}, "count: expected an integer, got 1.5"),
        ({"flag": 1}, "flag: expected true or false, got 1"),
        ({"mode": "c"}, "mode: 'c' is not one of 'a', 'b'"),
        ({"names": "x"}, "names: expected a list of a string, got 'x'"),
        ({"count": 0}, "count: 0 is out of range; must be at least 1"),
    ],
)
def test_bad_values_name_the_key_and_what_is_valid(table, message):
    with pytest.raises(ConfigError) as err:
        parse(Opts, table, "study.toml: [t]")
    assert str(err.value) in (f"study.toml: [t] {message}", f"study.toml: [t]: {message}")


@pytest.mark.parametrize(
    "value, message",
    [
        ({"low": 0.5, "high": 0.1}, "low (0.5) must be below high (0.1)"),
        ({"low": 0.0, "high": 0.5, "log": True}, "a log range needs low > 0, got 0.0"),
        ({"low": 0.1}, "a range needs both 'low' and 'high'"),
        ({"low": 0.1, "high": 0.5, "steps": 2}, "unknown range key 'steps'"),
        ([], "a list of choices must not be empty"),
        ({"low": 0.1, "high": 0.5, "log": True, "step": 0.1}, "cannot have both 'log' and 'step'"),
    ],
)
def test_bad_ranges(value, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse(Opts, {"rate": value}, "f", searchable=True)


def test_ranges_are_refused_where_nothing_is_searched():
    with pytest.raises(ConfigError, match="expected a number, got a table"):
        parse(Opts, {"rate": {"low": 0.1, "high": 0.2}}, "f")


def test_missing_required_key():
    @dataclass(frozen=True)
    class Needs:
        path: str = option(help="a path")

    with pytest.raises(ConfigError, match="missing required key 'path'"):
        parse(Needs, {}, "f: [dataset]")
