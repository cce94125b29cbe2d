"""A minimal worker for the round-trip test: a topic -> a Faust agent -> Redis.

Run as `python -m tests.integration.roundtrip_worker TOPIC`; it finds the broker and Redis
the way every `xsell` command does (settings, else the embedded stack's run file).
"""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator

import faust

from rules_store.settings import load_settings
from rules_store.store.redis_store import open_redis
from streams.kafka.app import create_app, declare_topic
from xsell.embedded import resolve_endpoints


def main(topic_name: str) -> None:
    settings = load_settings()
    endpoints = resolve_endpoints(settings)
    app = create_app(settings, endpoints, app_id=f"roundtrip-{topic_name}", web_enabled=False)
    topic = declare_topic(app, topic_name, settings)
    store = open_redis(settings, endpoints)

    @app.agent(topic)
    async def copy_to_redis(stream: faust.StreamT[bytes]) -> AsyncIterator[None]:
        async for event in stream.events():
            key = event.key.decode() if isinstance(event.key, bytes) else str(event.key)
            store.set(f"{topic_name}:{key}", event.value)
            yield None

    sys.argv = [sys.argv[0], "worker", "--loglevel", "warn"]
    app.main()


if __name__ == "__main__":
    main(sys.argv[1])
