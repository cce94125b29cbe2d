"""The Faust app factory: one place that turns settings and endpoints into a configured app."""

from __future__ import annotations

from typing import Any

import faust

from rules_store.settings import Endpoints, Settings
from streams.kafka.clients import faust_credentials
from streams.kafka.table_dir import claim_table_dir, tables_base

# Tansu holds each JoinGroup for half the session timeout: Faust's default 60 s session
# means a 30 s join. Measured from worker start to partitions assigned (bench/startup.py):
# 31.6 s with defaults, 3.5 s with a 3 s session, 2.5 s with 2 s and a 0.5 s heartbeat
# (Kafka wants it <= 1/3 of the session); the rebalance timeout made no difference. Faust
# heartbeats from its consumer thread, so a busy agent does not starve them. On a real
# cluster such short sessions would evict members on a network blip: only the embedded
# broker gets them.
EMBEDDED_GROUP_TIMING: dict[str, float] = {
    "broker_session_timeout": 2.0,
    "broker_heartbeat_interval": 0.5,
}


def group_timing(endpoints: Endpoints) -> dict[str, float]:
    """Consumer-group timing for this broker: short for the embedded one, Faust's defaults else."""
    return dict(EMBEDDED_GROUP_TIMING) if endpoints.embedded_broker else {}


def create_app(
    settings: Settings,
    endpoints: Endpoints,
    *,
    app_id: str = "xsell-engine",
    web_enabled: bool = True,
    **overrides: Any,
) -> faust.App:
    """A Faust app bound to the configured (or embedded) broker.

    Topics are created beforehand by `ensure_topics` with the configured partition count
    and declared on the app with `declare_topic`, never left to broker auto-creation.
    """
    datadir = settings.state_dir / "faust" / app_id
    datadir.parent.mkdir(parents=True, exist_ok=True)  # Faust creates only the last level
    if settings.table_store == "rocksdb":
        tabledir = claim_table_dir(tables_base(settings, endpoints, app_id))
    else:
        tabledir = datadir / "tables"  # never written: the tables are in memory
    options: dict[str, Any] = {
        "broker": [f"kafka://{server}" for server in endpoints.kafka_bootstrap.split(",")],
        "broker_credentials": faust_credentials(settings, endpoints),
        "topic_partitions": settings.topic_partitions,
        "topic_replication_factor": settings.topic_replication,
        "store": f"{settings.table_store}://",
        "table_standby_replicas": settings.standby_replicas,
        "datadir": str(datadir),
        "tabledir": str(tabledir),
        "web_enabled": web_enabled,
        "web_host": settings.web_host,
        "web_bind": settings.web_host,  # Faust binds 0.0.0.0 by default, whatever web_host says
        "web_port": settings.web_port,
        # Faust's table views would serve customers' holdings to anyone who can connect.
        "web_tables_enabled": False,
        "web_graph_enabled": False,
        # aiohttp refuses larger bodies (413); the API checks the same limit itself first.
        "web_application_options": {"client_max_size": settings.api_max_body_bytes},
        "consumer_auto_offset_reset": "earliest",
        "producer_linger": settings.producer_linger_ms / 1000,
        "autodiscover": False,
        **group_timing(endpoints),
        **overrides,
    }
    return faust.App(app_id, **options)


def declare_topic(app: faust.App, name: str, settings: Settings) -> faust.TopicT:
    """A raw-bytes topic with the configured partitions; decoding is the agent's job, so a
    malformed record reaches our validation instead of crashing Faust's decoder."""
    return app.topic(
        name,
        partitions=settings.topic_partitions,
        replicas=settings.topic_replication,
        key_type=bytes,
        value_type=bytes,
        key_serializer="raw",
        value_serializer="raw",
    )
