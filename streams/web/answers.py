"""How the API reads requests and writes answers: strict JSON both ways, errors as JSON."""

from __future__ import annotations

import logging
import re
from typing import Any

from aiohttp import web as aioweb
from faust.web import Request

from rules_store.strict_json import JSONInputError, dumps_strict, loads_strict
from rules_store.views.metrics import ALERT_TYPES
from rules_store.views.predict import RequestError
from streams.web.live_feed import AlertFilter

log = logging.getLogger(__name__)

# ASCII only (\w would take any script's letters and digits), whole string (`$` would
# let a final newline through), and not only dots ('.' and '..' are path segments).
CUSTOMER_ID = re.compile(r"(?!\.+\Z)[A-Za-z0-9_.-]{1,64}", re.ASCII)


def json_bytes(value: Any) -> bytes:
    """Strict JSON: ValueError for a NaN or infinite figure (see `encode_answer`)."""
    return dumps_strict(value).encode()


def encode_answer(value: Any, status: int = 200) -> tuple[int, bytes]:
    """An answer's status and strict JSON body; a 500 (logged) rather than invalid JSON.

    Inputs are checked so that no NaN or infinite figure arises; one that does is a bug.

    >>> encode_answer({"drop": float("nan")})
    (500, b'{"error": "internal", "message": "the answer was not valid JSON; see the log"}')
    """
    try:
        return status, json_bytes(value)
    except ValueError:
        log.exception("an answer was not sent: a figure in it is not valid JSON")
        return 500, json_bytes(error_body("internal", "the answer was not valid JSON; see the log"))


def valid_customer_id(customer_id: str) -> bool:
    r"""1 to 64 of A-Z a-z 0-9 _ . - and not only dots (the README's rule).

    >>> [valid_customer_id(c) for c in ("1000000000000042", "a.b-c_d", "..", "c1\n", "١٢٣")]
    [True, True, False, False, False]
    """
    return CUSTOMER_ID.fullmatch(customer_id) is not None


def error_body(error: str, message: str, **extra: Any) -> dict[str, Any]:
    return {"error": error, "message": message, **extra}


def parse_filter(query: Any) -> AlertFilter:
    """?type=cross_sell,churn&branch=b1&segment=2 (repeatable or comma-separated)."""

    def values(name: str) -> set[str]:
        return {v.strip() for raw in query.getall(name, []) for v in raw.split(",") if v.strip()}

    types = values("type")
    unknown = sorted(types - set(ALERT_TYPES))
    if unknown:
        raise RequestError(
            "type", f"unknown alert types {unknown}; expected some of {list(ALERT_TYPES)}"
        )
    branches = values("branch")
    if any(len(b) > 64 for b in branches):
        raise RequestError("branch", "a branch id is at most 64 characters")
    segments = set()
    for raw in values("segment"):
        if not raw.isdigit():
            raise RequestError("segment", f"expected segment numbers, got {raw!r}")
        segments.add(int(raw))
    return AlertFilter(frozenset(types), frozenset(branches), frozenset(segments))


def sse_event(alert: dict[str, Any]) -> bytes:
    """One alert as a server-sent event; its `alert_id` is the event id.

    The live feed publishes only alerts read as strict JSON with a plain-text `alert_id`
    (streams/web/live_feed.py), so neither the data line nor the id line can break.
    """
    return (
        f"id: {alert.get('alert_id', '')}\nevent: alert\ndata: {dumps_strict(alert)}\n\n".encode()
    )


class ApiError(Exception):
    """An answer other than 200, raised from inside a view and turned into JSON there."""

    def __init__(self, status: int, body: dict[str, Any], **headers: str) -> None:
        super().__init__(body.get("message"))
        self.status, self.body, self.headers = status, body, headers

    @classmethod
    def bad_request(cls, exc: RequestError) -> ApiError:
        return cls(400, exc.to_json())


async def read_json_body(request: Request, limit: int) -> Any:
    """The decoded JSON body; 415, 413 or 400 as an ApiError."""
    if not request.headers.get("Content-Type", "").startswith("application/json"):
        raise ApiError(
            415, error_body("unsupported_media_type", "send the body as application/json")
        )
    too_large = ApiError(
        413,
        error_body(
            "too_large", f"the body is larger than {limit} bytes (XSELL_API_MAX_BODY_BYTES)"
        ),
    )
    length = request.headers.get("Content-Length")
    if length is not None and length.isdigit() and int(length) > limit:
        raise too_large
    content = request.content  # type: ignore[attr-defined]  # aiohttp's stream (chunked too)
    raw = b""
    try:
        while len(raw) <= limit and (more := await content.read(limit + 1 - len(raw))):
            raw += more
    except aioweb.HTTPRequestEntityTooLarge:
        raise too_large from None
    if len(raw) > limit:
        raise too_large
    try:
        return loads_strict(raw)  # no NaN/Infinity, bounded depth: a 400 naming the field
    except JSONInputError as exc:
        raise ApiError.bad_request(RequestError(exc.field, exc.message)) from None
