"""Bounds every parser and codec shares: numbers, text, days, and a bounded echo.

Records come from systems we do not control. Anything the state or the standard library
cannot hold (an integer of 400 digits, 9999-12-31 plus a day, a string of a megabyte in
an error message) is refused here with the caller's error class, never raised later as
an OverflowError deep inside the pure steps. Stored documents (bundles, models) hold
finite figures only: JSON has no NaN or Infinity, though Python's `json` reads and writes
them as literals, and one would be served as invalid JSON.
"""

from __future__ import annotations

import json
import math
import reprlib
from collections.abc import Callable
from datetime import date
from typing import Any

MAX_MAGNITUDE = 1e15  # above any balance a bank holds; well inside float's exact integers
MAX_TEXT = 256  # ids, product names, branches, channels
FIRST_DAY = date(1970, 1, 1)  # event days outside [FIRST_DAY, LAST_DAY) are refused
LAST_DAY = date(2200, 1, 1)

_echo = reprlib.Repr()
_echo.maxstring = _echo.maxother = 80
_echo.maxlevel, _echo.maxlist, _echo.maxdict = 2, 4, 4


def show(value: Any) -> str:
    """A short repr for error messages, whatever arrived (a 1 MB string, JSON 900 deep).

    >>> show("x" * 1000)[:12], len(show("x" * 1000)) <= 80
    ("'xxxxxxxxxxx", True)
    """
    try:
        return _echo.repr(value)
    except (RecursionError, ValueError):  # ValueError: int too long to print
        return f"<{type(value).__name__}>"


def is_finite_number(value: Any) -> bool:
    """Whether `finite_number` accepts `value` (asked without building its message)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    # Compared before any float(): a 400-digit integer would overflow.
    return -MAX_MAGNITUDE <= value <= MAX_MAGNITUDE and math.isfinite(value)


def is_short_text(value: Any) -> bool:
    """Whether `short_text` accepts `value` (asked without building its message)."""
    return isinstance(value, str) and bool(value.strip()) and len(value) <= MAX_TEXT


def finite_number(value: Any, where: str, error: type[Exception]) -> float:
    """`value` as a float when it is a number within `MAX_MAGNITUDE`, else `error`.

    >>> finite_number(12, "field 'amount'", ValueError)
    12.0
    >>> finite_number(10**400, "field 'amount'", ValueError)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: field 'amount' must be a finite number within ±1e+15, got 1000...000
    """
    if is_finite_number(value):
        return float(value)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        msg = f"{where} must be a finite number, got {show(value)}"
    else:
        msg = f"{where} must be a finite number within ±{MAX_MAGNITUDE:g}, got {show(value)}"
    raise error(msg)


def short_text(value: Any, where: str, error: type[Exception]) -> str:
    """A non-empty string of at most `MAX_TEXT` characters, else `error`."""
    if is_short_text(value):
        return str(value)
    if not isinstance(value, str) or not value.strip():
        msg = f"{where} must be a non-empty string, got {show(value)}"
    else:
        msg = f"{where} must be at most {MAX_TEXT} characters, got {len(value)}"
    raise error(msg)


def plausible_day(day: date, where: str, error: type[Exception]) -> date:
    """`day` when it lies in [FIRST_DAY, LAST_DAY): date arithmetic stays far from year 1 and 9999."""
    if not FIRST_DAY <= day < LAST_DAY:
        msg = (
            f"{where}: {day.isoformat()} is outside {FIRST_DAY.isoformat()}..{LAST_DAY.isoformat()}"
        )
        raise error(msg)
    return day


def expect(value: Any, kind: type | tuple[type, ...], where: str, error: type[Exception]) -> Any:
    """`value` when it is a `kind` (a bool is no number), else `error` naming `where`.

    >>> expect(True, (int, float), "rules[0].lift", ValueError)
    Traceback (most recent call last):
    ...
    ValueError: rules[0].lift should be int or float, found bool
    """
    if (isinstance(value, bool) and kind is not bool) or not isinstance(value, kind):
        names = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
        msg = f"{where} should be {names}, found {type(value).__name__}"
        raise error(msg)
    return value


def finite_figure(value: Any, where: str, error: type[Exception]) -> float:
    """A stored figure: any finite number (no magnitude bound), else `error` naming `where`."""
    number = as_finite(expect(value, (int, float), where, error))
    if number is None:
        raise error(not_finite(where, value))
    return number


def checked_json(
    document: Any, read: Callable[[Any], object], error: type[Exception], what: str
) -> bytes:
    """`document` as UTF-8 JSON (sorted keys), read back by its own reader first: what no
    reader would take (a NaN figure, say) is refused here and never stored."""
    payload = json.dumps(document, ensure_ascii=False, sort_keys=True).encode()
    try:
        read(json.loads(payload))
    except error as exc:
        msg = f"{exc}; refusing to write this {what}"
        raise error(msg) from exc
    return payload


def as_finite(value: int | float) -> float | None:
    """`value` as a float; None when it is NaN, infinite or too large for a float.

    >>> as_finite(3), as_finite(float("nan")), as_finite(10**400)
    (3.0, None, None)
    """
    try:
        number = float(value)
    except OverflowError:
        return None
    return number if math.isfinite(number) else None


def not_finite(where: str, value: Any) -> str:
    """The message for a non-finite figure.

    >>> not_finite("rules[3].lift", float("nan"))
    'rules[3].lift: expected a finite number, got nan'
    """
    return f"{where}: expected a finite number, got {show(value)}"


def find_non_finite(value: Any, where: str) -> str | None:
    """The first non-finite number inside plain values (dicts, lists), as a message.

    >>> find_non_finite({"silhouette": {"2": 0.4, "3": float("inf")}}, "metrics")
    'metrics.silhouette.3: expected a finite number, got inf'
    >>> find_non_finite({"rows": 12, "name": "x"}, "metrics") is None
    True
    """
    pending = [(where, value)]  # a stack, not recursion: a document may nest deeply
    while pending:
        path, item = pending.pop()
        if isinstance(item, bool):
            continue
        if isinstance(item, int | float):
            if as_finite(item) is None:
                return not_finite(path, item)
        elif isinstance(item, dict):
            pending += reversed([(f"{path}.{key}", child) for key, child in item.items()])
        elif isinstance(item, list | tuple):
            pending += reversed([(f"{path}[{i}]", child) for i, child in enumerate(item)])
    return None
