"""`xsell worker`: run a stream worker; several share one consumer group."""

from __future__ import annotations

import gc
import sys
from typing import Any

import click

from rules_store.settings import Settings
from rules_store.store.acceptance_store import AcceptanceStore, DayCounts
from rules_store.store.redis_store import BundleStore, BundleWatcher, open_redis
from rules_store.views.acceptance_view import arms_json, arms_report
from streams.kafka.clients import ensure_topics
from streams.kafka.topics import TopicNames
from streams.worker import ActiveBundle, build_worker
from xsell.console import err
from xsell.embedded import resolve_endpoints


def tune_collector() -> None:
    """Every event leaves new objects that outlive many collections (customers' states):
    with Python's default thresholds the cyclic collector took a fifth of the pipeline's
    time (bench/steps.py). What exists now is left out of its scans, and young
    collections run 30 times less often."""
    gc.freeze()
    gc.set_threshold(20_000, 10, 10)


@click.command("worker")
@click.pass_obj
def worker_cmd(settings: Settings) -> None:
    """Run a stream worker: transactions and snapshot rows in, cross-sell alerts out.

    Uses the configured broker and Redis, or the running embedded stack (`xsell up`).
    Faust's web server listens on XSELL_WEB_HOST:XSELL_WEB_PORT (127.0.0.1:6066); give
    each worker on one machine its own port.
    Invalid events go to the dead-letter topic with the reason. The active bundle is
    loaded at start and reloaded when a new one is activated, without a restart.
    Ctrl-C or SIGTERM stops it cleanly; another worker in the group takes over.
    """
    endpoints = resolve_endpoints(settings)
    ensure_topics(settings, endpoints, TopicNames(settings.topic_prefix).all())
    active = ActiveBundle()
    store = BundleStore(open_redis(settings, endpoints), settings.redis_key_prefix)
    watcher = BundleWatcher(store, on_change=active.update, on_challenge=active.update_challenger)
    watcher.start()
    if active.get() is None:
        err.print(
            "no active bundle yet: records are dead-lettered (with the reason, to replay) "
            "until one is activated: its schema and catalog say what they mean"
        )
    counts = AcceptanceStore(store.client, settings.redis_key_prefix)

    def acceptance() -> dict[str, Any]:
        champion = store.active_version()
        if champion is None:
            return {"arms": []}
        challenge = store.challenger()
        pair = (challenge.version, challenge.share) if challenge else None
        return arms_json(arms_report(champion, pair, counts.read))

    # Read in the stream's path once per (version, day), then every 30 s while Redis is
    # away. A failed read ranks on the prior, so a replay may send other offers: the
    # timeout outlasts a busy machine's stalls (0.5 s did not, in kill -9 loops).
    day_counts = DayCounts(
        AcceptanceStore(open_redis(settings, endpoints, timeout_s=2.0), settings.redis_key_prefix)
    )
    app = build_worker(
        settings,
        endpoints,
        active,
        store_problem=lambda: watcher.problem or day_counts.problem,
        acceptance=acceptance,
        counts=counts,
        day_counts=day_counts,
    )
    # Faust reads its own command line, which would override the app's web settings.
    sys.argv = [
        sys.argv[0],
        "worker",
        "--web-bind",
        settings.web_host,
        "--web-host",
        settings.web_host,
        "--web-port",
        str(settings.web_port),
        "--loglevel",
        settings.log_level.lower().replace("warning", "warn"),
    ]
    tune_collector()
    try:
        app.main()
    finally:
        watcher.stop()
