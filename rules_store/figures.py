"""Figures a stored document may hold: finite numbers only.

JSON has no NaN or Infinity, yet Python's `json` reads and writes them as `NaN` and
`Infinity` literals. A bundle or model holding one would be served as invalid JSON and
compare false with everything, so both codecs refuse it, naming where it is.
"""

from __future__ import annotations

import math
from typing import Any


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
    try:
        text = repr(value)
    except ValueError:  # an integer too long to print
        text = f"an integer of more than {len(str(2**64))} digits"
    if len(text) > 40:
        text = f"{text[:20]}…{text[-10:]}"
    return f"{where}: expected a finite number, got {text}"


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
