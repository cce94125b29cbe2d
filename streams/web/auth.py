"""The API's bearer token and the security headers on every answer."""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable

from aiohttp import web as aioweb

from rules_store.settings import Settings
from streams.web.answers import error_body, json_bytes

PUBLIC_PATHS = frozenset({"/", "/health"})
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; frame-ancestors 'none'"
)


def token_matches(given: str, token: bytes) -> bool:
    r"""The bearer token compared in constant time, whatever bytes the client sent.

    aiohttp decodes header bytes that are not UTF-8 with surrogateescape; encoding them back
    the same way gives the bytes sent (plain `.encode()` raised and made a 500).

    >>> token_matches("tok", b"tok"), token_matches("\udcff", b"tok"), token_matches("é", b"tok")
    (True, False, False)
    """
    return hmac.compare_digest(given.encode("utf-8", "surrogateescape"), token)


def _token_of(request: aioweb.Request) -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value:
        return value.strip()
    if request.path == "/alerts/stream":  # EventSource cannot send an Authorization header
        return request.query.get("access_token")
    return None


def auth_middleware(settings: Settings) -> Callable[..., Awaitable[aioweb.StreamResponse]]:
    """401 without the bearer token (when one is configured); security headers on every answer."""
    token = settings.api_token.get_secret_value().encode() if settings.api_token else None

    @aioweb.middleware
    async def guard(
        request: aioweb.Request,
        handler: Callable[[aioweb.Request], Awaitable[aioweb.StreamResponse]],
    ) -> aioweb.StreamResponse:
        public = request.path in PUBLIC_PATHS or request.path.startswith("/static/")
        if token is not None and not public:
            given = _token_of(request)
            if given is None or not token_matches(given, token):
                return aioweb.Response(
                    body=json_bytes(
                        error_body(
                            "unauthorized",
                            "this API wants 'Authorization: Bearer <XSELL_API_TOKEN>'"
                            + (" or ?access_token=" if request.path == "/alerts/stream" else ""),
                        )
                    ),
                    status=401,
                    content_type="application/json",
                    headers={"WWW-Authenticate": 'Bearer realm="xsell"'},
                )
        response = await handler(request)
        if not response.prepared:
            response.headers.setdefault("X-Content-Type-Options", "nosniff")
            response.headers.setdefault("Cache-Control", "no-store")
            response.headers.setdefault("Content-Security-Policy", CSP)
            response.headers.setdefault("Referrer-Policy", "no-referrer")
        return response

    return guard
