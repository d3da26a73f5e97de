"""Checking a task's options when it is built: types against the defaults, then ranges.

A task's options come from configs and studies (``[task_options]``), so a typo or a
hostile value must fail at once with one clear line naming the key, not as a failed
training (``proxy_steps = "x"``) or an obscure torch error (``width = 0``). Every option
must have the type of its default (an int where the default is an int; a float option
takes an int too; numbers finite), and a task may declare ``option_rules``: ``{key:
rule}``, a rule being a callable that returns an error text or None. Rules are inherited
and merged along the class hierarchy, so a subclass only adds its own keys.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from ..textutil import show

Rule = Callable[[Any], "str | None"]


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v) -> bool:
    return (_is_int(v) or isinstance(v, float)) and math.isfinite(v)


def integer(lo: int | None = None, hi: int | None = None) -> Rule:
    """An integer in [lo, hi] (either bound may be None)."""
    def rule(v):
        if not _is_int(v):
            return "expected an integer"
        if (lo is not None and v < lo) or (hi is not None and v > hi):
            return _bounds(lo, hi)
        return None
    return rule


def multiple_of(k: int, lo: int, hi: int) -> Rule:
    """An integer in [lo, hi] divisible by ``k`` (image sizes of strided networks)."""
    def rule(v):
        if not _is_int(v):
            return "expected an integer"
        if not lo <= v <= hi or v % k:
            return f"must be a multiple of {k} in {lo}..{hi}"
        return None
    return rule


def number(lo: float | None = None, hi: float | None = None, positive: bool = False) -> Rule:
    """A finite number in [lo, hi]; ``positive``: also > 0."""
    def rule(v):
        if not _is_number(v):
            return "expected a finite number"
        if positive and v <= 0:
            return "must be > 0" + ("" if hi is None else f" and <= {hi:g}")
        if (lo is not None and v < lo) or (hi is not None and v > hi):
            return _bounds(lo, hi)
        return None
    return rule


def choice(*values) -> Rule:
    """One of ``values``."""
    def rule(v):
        return None if v in values and type(v) in {type(x) for x in values} else (
            "must be one of " + ", ".join(repr(x) for x in values))
    return rule


def int_pair(lo: int, hi: int) -> Rule:
    """``[a, b]``: two integers with lo <= a <= b <= hi."""
    def rule(v):
        if not (isinstance(v, (list, tuple)) and len(v) == 2 and all(_is_int(x) for x in v)):
            return "expected [min, max], two integers"
        if not lo <= v[0] <= v[1] <= hi:
            return f"must satisfy {lo} <= min <= max <= {hi}"
        return None
    return rule


def optional(rule: Rule) -> Rule:
    """None (the option is off, e.g. a proxy override that follows the full schedule), or
    what ``rule`` accepts."""
    def check(v):
        return None if v is None else rule(v)
    return check


def _bounds(lo, hi) -> str:
    def f(x):
        return str(x) if _is_int(x) else f"{x:g}"

    if lo is not None and hi is not None:
        return f"must be in {f(lo)}..{f(hi)}"
    return f"must be >= {f(lo)}" if lo is not None else f"must be <= {f(hi)}"


def _type_error(value, default) -> str | None:
    """The value must have the type of its default (None: any JSON value)."""
    if default is None:
        return None
    if isinstance(default, bool):
        return None if isinstance(value, bool) else "expected true or false"
    if _is_int(default):
        return None if _is_int(value) else "expected an integer"
    if isinstance(default, float):
        return None if _is_number(value) else "expected a finite number"
    if isinstance(default, str):
        return None if isinstance(value, str) else "expected a string"
    if isinstance(default, (list, tuple)):
        return None if isinstance(value, (list, tuple)) else "expected a list"
    if isinstance(default, dict):
        return None if isinstance(value, dict) else "expected a table"
    return None


def rules_of(cls: type) -> dict[str, Rule]:
    """``option_rules`` merged along the class hierarchy (subclasses win)."""
    rules: dict[str, Rule] = {}
    for klass in reversed(cls.__mro__):
        rules.update(vars(klass).get("option_rules") or {})
    return rules


def check_options(task) -> None:
    """``TaskError`` naming the first bad option of ``task.config`` (type, then range)."""
    from .base import TaskError

    rules = rules_of(type(task))
    for key, value in task.config.items():
        if value is None and key in rules:  # None is valid where the rule says so
            err = rules[key](value)
        else:
            err = _type_error(value, task.defaults.get(key))
        if err is None and key in rules and value is not None:
            err = rules[key](value)
        if err is None and isinstance(value, float) and not math.isfinite(value):
            err = "expected a finite number"
        if err:
            raise TaskError(f"task {task.name}: option {key} = {show(value)}: {err}")
