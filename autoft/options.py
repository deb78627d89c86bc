"""Typed option tables: a TOML table becomes a frozen dataclass, checked key by key.

Every option class (core sections, and each plugin's ``Options``) is a dataclass.
:func:`parse` checks that each key names a field and that each value has the
field's type, and reports the first problem as a :class:`ConfigError` naming
the key and what would be valid. Searchable tables (the ``[space]`` and
strategy tables) also accept a range ``{low, high, log, step}`` or a choice
(a list, or ``{choices = [...]}``) where a single value would go.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from dataclasses import dataclass
from typing import Any, Literal, Union

from .errors import ConfigError

#: the largest integer an option takes (TOML's own limit: 64-bit signed)
MAX_INT = 2**63 - 1


@dataclass(frozen=True)
class Range:
    """A numeric range to search: ``{low = 1e-5, high = 1e-3, log = true}``."""

    low: float
    high: float
    log: bool = False
    step: float | None = None
    integer: bool = False

    def suggest(self, trial: Any, name: str) -> float | int:
        if self.integer:
            return trial.suggest_int(name, int(self.low), int(self.high), step=int(self.step or 1), log=self.log)
        return trial.suggest_float(name, float(self.low), float(self.high), step=self.step, log=self.log)

    def describe(self) -> str:
        scale = ", log" if self.log else ""
        step = f", step {self.step}" if self.step else ""
        return f"{self.low}..{self.high}{scale}{step}"


@dataclass(frozen=True)
class Choice:
    """A set of values to choose from: ``[16, 32, 64]`` or ``{choices = [...]}``."""

    values: tuple

    def suggest(self, trial: Any, name: str) -> Any:
        keys = [_choice_key(v) for v in self.values]
        key = trial.suggest_categorical(name, keys)
        return self.values[keys.index(key)]

    def describe(self) -> str:
        return " | ".join(str(v) for v in self.values)


def _choice_key(value: Any) -> Any:
    """Optuna accepts only scalars as categorical choices; represent others as text."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return repr(value)


def is_searched(value: Any) -> bool:
    return isinstance(value, (Range, Choice))


def option(
    default: Any = dataclasses.MISSING,
    help: str = "",  # noqa: A002
    *,
    gt: float | None = None,
    ge: float | None = None,
    le: float | None = None,
    lt: float | None = None,
) -> Any:
    """A dataclass field with help text and numeric bounds, for option classes."""
    meta = {"help": help, "bounds": (gt, ge, le, lt)}
    if isinstance(default, (list, dict, set)):
        value = default
        return dataclasses.field(default_factory=lambda: type(value)(value), metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


def parse(cls: type, table: Any, where: str, *, searchable: bool = False, extra: type | None = None) -> dict:
    """Check ``table`` against the dataclass ``cls``; return field name -> value (or Range/Choice).

    ``where`` names the place for messages, such as ``"studies/x.toml: [model]"``.
    Missing fields keep their defaults (a missing required field is an error).
    ``extra``, another option class, adds its fields as optional keys.
    """
    if not isinstance(table, dict):
        raise ConfigError(f"{where}: expected a table, got {_kind(table)}")
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    accepted = {name: typing.get_type_hints(cls)[name] for name in fields}
    everything = dict(fields)
    if extra is not None:
        extra_hints = typing.get_type_hints(extra)
        for f in dataclasses.fields(extra):
            if f.init and f.name not in accepted:
                accepted[f.name] = extra_hints[f.name]
                everything[f.name] = f
    out: dict[str, Any] = {}
    for key, value in table.items():
        if key not in accepted:
            valid = ", ".join(sorted(accepted)) or "none"
            raise ConfigError(f"{where}: unknown key '{key}'; valid keys: {valid}")
        out[key] = _value(accepted[key], value, f"{where} {key}", searchable)
        _check_bounds(everything[key].metadata.get("bounds"), out[key], f"{where} {key}")
    for name, f in fields.items():
        if name not in out and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise ConfigError(f"{where}: missing required key '{name}' ({_type_name(accepted[name])})")
    return out


def _check_bounds(bounds: tuple | None, value: Any, where: str) -> None:
    if not bounds or all(b is None for b in bounds):
        return
    if isinstance(value, Range):
        values = [value.low, value.high]
    elif isinstance(value, Choice):
        values = list(value.values)
    else:
        values = [value]
    limits = [(b, text) for b, text in zip(bounds, ("above", "at least", "at most", "below")) if b is not None]
    tests = {
        "above": lambda v, b: v > b,
        "at least": lambda v, b: v >= b,
        "at most": lambda v, b: v <= b,
        "below": lambda v, b: v < b,
    }
    for v in values:
        if not isinstance(v, (int, float)) or isinstance(v, bool):
            continue
        if not all(tests[text](v, b) for b, text in limits):
            wanted = " and ".join(f"{text} {b}" for b, text in limits)
            raise ConfigError(f"{where}: {v} is out of range; must be {wanted}")


def build(cls: type, table: Any, where: str) -> Any:
    """Parse a table with no searched values and return the dataclass instance."""
    return cls(**parse(cls, table, where))


def _value(tp: Any, value: Any, where: str, searchable: bool) -> Any:
    if searchable and not _is_list_type(tp):
        if isinstance(value, dict) and "choices" in value:
            if set(value) != {"choices"}:
                raise ConfigError(f"{where}: a choice table has only the key 'choices'")
            value = value["choices"]
            if not isinstance(value, list):
                raise ConfigError(f"{where}: 'choices' must be a list")
        if isinstance(value, list):
            if not value:
                raise ConfigError(f"{where}: a list of choices must not be empty")
            return _choice(tp, value, where)
        if isinstance(value, dict) and {"low", "high"} & set(value) and not _accepts_dict(tp):
            return _range(tp, value, where)
    elif searchable and isinstance(value, dict) and "choices" in value:
        choices = value["choices"]
        if set(value) != {"choices"} or not isinstance(choices, list) or not choices:
            raise ConfigError(f"{where}: a choice table has only the key 'choices', a non-empty list")
        return _choice(tp, choices, where)
    return check(tp, value, where)


def _choice(tp: Any, values: list, where: str) -> Choice:
    """A choice from a non-empty list: every value checked, none twice."""
    checked = tuple(check(tp, v, where) for v in values)
    seen: list = []
    for v in checked:
        if any(type(v) is type(s) and v == s for s in seen):
            raise ConfigError(f"{where}: choice {_show(v)} is listed twice; list each choice once")
        seen.append(v)
    return Choice(checked)


def _range(tp: Any, value: dict, where: str) -> Range:
    unknown = set(value) - {"low", "high", "log", "step"}
    if unknown:
        raise ConfigError(f"{where}: unknown range key '{sorted(unknown)[0]}'; a range has low, high, log, step")
    if "low" not in value or "high" not in value:
        raise ConfigError(f"{where}: a range needs both 'low' and 'high'")
    base = _numeric_base(tp)
    if base is None:
        raise ConfigError(f"{where}: a range needs a numeric option, this one is {_type_name(tp)}")
    low, high = check(base, value["low"], f"{where}.low"), check(base, value["high"], f"{where}.high")
    log = value.get("log", False)
    if not isinstance(log, bool):
        raise ConfigError(f"{where}.log: expected true or false, got {_kind(log)}")
    step = value.get("step")
    if step is not None:
        step = check(base, step, f"{where}.step")
        if step <= 0:
            raise ConfigError(f"{where}.step: must be positive, got {step}")
        if log:
            raise ConfigError(f"{where}: a range cannot have both 'log' and 'step'")
    if not low < high:
        raise ConfigError(f"{where}: low ({low}) must be below high ({high})")
    if step is not None and step > high - low:
        raise ConfigError(f"{where}.step: {step} is more than high - low ({high - low:g}); use a smaller step")
    if log and low <= 0:
        raise ConfigError(f"{where}: a log range needs low > 0, got {low}")
    return Range(low, high, log, step, integer=base is int)


def _numeric_base(tp: Any) -> type | None:
    if tp in (int, float):
        return tp
    for arg in _union_args(tp):
        if arg in (float, int):
            return arg
    return None


def _union_args(tp: Any) -> tuple:
    if typing.get_origin(tp) in (Union, types.UnionType):
        return typing.get_args(tp)
    return ()


def _is_list_type(tp: Any) -> bool:
    if typing.get_origin(tp) in (list, tuple):
        return True
    return any(_is_list_type(a) for a in _union_args(tp))


def _accepts_dict(tp: Any) -> bool:
    if typing.get_origin(tp) is dict or tp is dict:
        return True
    return any(_accepts_dict(a) for a in _union_args(tp))


def check(tp: Any, value: Any, where: str) -> Any:
    """Return ``value`` if it has type ``tp`` (ints pass as floats, lists as tuples), else raise."""
    origin = typing.get_origin(tp)
    if tp is Any:
        return value
    if origin in (Union, types.UnionType):
        errors = []
        for arg in typing.get_args(tp):
            try:
                return check(arg, value, where)
            except ConfigError as exc:
                errors.append(exc)
        raise ConfigError(f"{where}: expected {_type_name(tp)}, got {_show(value)}")
    if tp is type(None):
        if value is None:
            return None
        raise ConfigError(f"{where}: expected nothing, got {_show(value)}")
    if origin is Literal:
        allowed = typing.get_args(tp)
        if value in allowed and type(value) in {type(a) for a in allowed}:
            return value
        raise ConfigError(f"{where}: {_show(value)} is not one of {', '.join(_show(a) for a in allowed)}")
    if tp is bool:
        if isinstance(value, bool):
            return value
    elif tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            if abs(value) > MAX_INT:
                raise ConfigError(f"{where}: {_short(value)} is too large; integers go up to {MAX_INT}")
            return value
    elif tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            if isinstance(value, int) and abs(value) > MAX_INT:
                raise ConfigError(f"{where}: {_short(value)} is too large for a number here")
            if isinstance(value, float) and not math.isfinite(value):
                raise ConfigError(f"{where}: expected a finite number, got {value}")
            return float(value)
    elif tp is str:
        if isinstance(value, str):
            return value
    elif origin in (list, tuple):
        if isinstance(value, (list, tuple)):
            (item,) = typing.get_args(tp)[:1] or (Any,)
            return tuple(check(item, v, f"{where}[{i}]") for i, v in enumerate(value))
    elif origin is dict:
        if isinstance(value, dict):
            ktp, vtp = typing.get_args(tp)
            return {check(ktp, k, where): check(vtp, v, f"{where}.{k}") for k, v in value.items()}
    elif dataclasses.is_dataclass(tp):
        return build(tp, value, where)
    else:  # pragma: no cover - a programming error in an option class
        raise TypeError(f"unsupported option type {tp!r} at {where}")
    raise ConfigError(f"{where}: expected {_type_name(tp)}, got {_show(value)}")


def _type_name(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin in (Union, types.UnionType):
        return " or ".join(_type_name(a) for a in typing.get_args(tp))
    if origin is Literal:
        return "one of " + ", ".join(_show(a) for a in typing.get_args(tp))
    if origin in (list, tuple):
        (item,) = typing.get_args(tp)[:1] or (Any,)
        return f"a list of {_type_name(item)}"
    if origin is dict:
        return "a table"
    names = {bool: "true or false", int: "an integer", float: "a number", str: "a string", type(None): "nothing"}
    return names.get(tp, getattr(tp, "__name__", str(tp)))


def _short(value: int) -> str:
    text = str(value)
    return text if len(text) <= 30 else f"{text[:12]}...({len(text)} digits)"


def _kind(value: Any) -> str:
    return {dict: "a table", list: "a list", str: "a string", bool: "a boolean"}.get(type(value), type(value).__name__)


def _show(value: Any) -> str:
    if isinstance(value, str):
        return repr(value) if len(value) <= 60 else f"{value[:40]!r}... ({len(value)} characters)"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return "a table"
    text = str(value)
    return text if len(text) <= 80 else f"{text[:60]}... ({len(text)} characters)"
