"""JSON as RFC 8259 has it, for the web API and the live alert feed: no NaN or Infinity in
either direction, and a bounded nesting depth in.

Python's `json` reads `NaN`, `Infinity` and `1e400` (as inf) and writes them back, which
no other JSON reader accepts; and it recurses once per nesting level, so a small body
nested 10,000 deep raises RecursionError. `loads_strict` turns each of these into a
`JSONInputError` that names where the value is, and `dumps_strict` refuses to write a
non-finite number rather than send invalid JSON.
"""

from __future__ import annotations

import json
import math
from typing import Any

from rules_store.errors import XsellError

MAX_DEPTH = 32  # arrays and objects; an API body needs 3


class JSONInputError(XsellError, ValueError):
    """Bytes that are not strict JSON: `field` names where (`body` for the whole document)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def loads_strict(raw: bytes | str, *, max_depth: int = MAX_DEPTH) -> Any:
    """The decoded document; a JSONInputError for anything RFC 8259 does not allow.

    >>> loads_strict(b'{"asset_months": {"2026-01": 5}}')
    {'asset_months': {'2026-01': 5}}
    >>> loads_strict(b'{"asset_months": {"2026-01": NaN}}')
    Traceback (most recent call last):
    ...
    rules_store.strict_json.JSONInputError: asset_months.2026-01: NaN is not a JSON number; ...
    >>> loads_strict(b"[" * 40 + b"]" * 40)
    Traceback (most recent call last):
    ...
    rules_store.strict_json.JSONInputError: body: nested deeper than 32 levels of arrays and objects
    """
    too_deep = JSONInputError(
        "body", f"nested deeper than {max_depth} levels of arrays and objects"
    )
    try:
        value = json.loads(raw)
    except RecursionError:
        raise too_deep from None
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError, > 4300 digits
        raise JSONInputError("body", f"not JSON: {exc}") from None
    _check(value, max_depth, too_deep)
    return value


def _check(document: Any, max_depth: int, too_deep: JSONInputError) -> None:
    # Iterative: the point is not to recurse once per level. NaN, Infinity and floats
    # too large for a double (read as inf) are found here rather than by json's
    # parse_constant, so the error can say which field holds them.
    stack: list[tuple[Any, str, int]] = [(document, "", 0)]
    while stack:
        value, path, depth = stack.pop()
        if isinstance(value, float) and not math.isfinite(value):
            shown = "NaN" if math.isnan(value) else "Infinity (or a number beyond 1.8e308)"
            raise JSONInputError(
                path or "body", f"{shown} is not a JSON number; send a finite number"
            )
        if isinstance(value, dict | list):
            if depth >= max_depth:
                raise too_deep
            items = value.items() if isinstance(value, dict) else enumerate(value)
            for key, item in items:
                where = f"{path}[{key}]" if isinstance(value, list) else f"{path}.{key}"
                stack.append((item, where.removeprefix("."), depth + 1))


def dumps_strict(value: Any) -> str:
    """`value` as JSON text; ValueError for a NaN or infinite float anywhere inside.

    >>> dumps_strict({"drop": 0.25, "name": "存款"})
    '{"drop": 0.25, "name": "存款"}'
    >>> dumps_strict({"drop": float("inf")})
    Traceback (most recent call last):
    ...
    ValueError: Out of range float values are not JSON compliant...
    """
    return json.dumps(value, ensure_ascii=False, allow_nan=False)
