"""Worker for bench/startup.py: prints seconds from process start to first partition assignment."""

from __future__ import annotations

import os
import sys
import time

STARTED = time.perf_counter()

import faust  # noqa: E402 - the clock starts before the imports on purpose

from rules_store.settings import Endpoints, Settings  # noqa: E402
from streams.kafka.app import create_app, declare_topic  # noqa: E402


def main(bootstrap: str, profile: str, topic_name: str) -> None:
    settings = Settings(kafka_brokers=bootstrap, redis_url="redis://unused:1/0")
    # "default" presents the broker as a real cluster, so the app keeps Faust's timing.
    endpoints = Endpoints(
        bootstrap, "redis://unused:1/0", embedded_broker=profile == "tuned", embedded_redis=True
    )
    app = create_app(settings, endpoints, app_id=f"bench-join-{os.getpid()}", web_enabled=False)
    topic = declare_topic(app, topic_name, settings)

    @app.agent(topic)
    async def drain(stream: faust.StreamT[bytes]) -> None:
        async for _ in stream:
            pass

    @app.on_partitions_assigned.connect  # type: ignore[misc, arg-type]
    async def report(_app: faust.App, assigned: set[object], **_: object) -> None:
        if assigned:
            print(f"ASSIGNED {time.perf_counter() - STARTED:.3f}", flush=True)
            os._exit(0)

    sys.argv = [sys.argv[0], "worker", "--loglevel", "warn"]
    app.main()


if __name__ == "__main__":
    main(*sys.argv[1:4])
