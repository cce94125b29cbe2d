"""The one module that talks to Redis."""

from __future__ import annotations

import redis

from rules_store.settings import Endpoints, Settings


def open_redis(settings: Settings, endpoints: Endpoints, *, timeout_s: float = 5.0) -> redis.Redis:
    """A client for the configured (or embedded) Redis; credentials come only from settings."""
    options: dict[str, object] = {"socket_timeout": timeout_s, "socket_connect_timeout": timeout_s}
    if not endpoints.embedded_redis:
        password = settings.redis_password
        options["username"] = settings.redis_username
        options["password"] = password.get_secret_value() if password else None
        if settings.redis_ssl_cafile and endpoints.redis_url.startswith("rediss://"):
            options["ssl_ca_certs"] = str(settings.redis_ssl_cafile)
    return redis.Redis.from_url(endpoints.redis_url, **options)  # type: ignore[arg-type]
