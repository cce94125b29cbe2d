"""Health probes for the broker and Redis: used to wait for the embedded stack and by `doctor`."""

from __future__ import annotations

import socket
from dataclasses import dataclass

import redis
from kafka.errors import KafkaError

from rules_store.errors import ServiceUnavailableError
from rules_store.settings import Endpoints, Settings
from rules_store.store.redis_store import open_redis
from streams.kafka.clients import open_admin


@dataclass(frozen=True)
class BrokerReport:
    bootstrap: str
    cluster_id: str | None
    brokers: int
    api_version: str
    topics: dict[str, int]  # name -> partitions


@dataclass(frozen=True)
class RedisReport:
    url: str
    version: str
    mode: str
    used_memory: str


def _check_reachable(bootstrap: str, timeout_s: float) -> None:
    """Fail fast, and without kafka-python's retries, when no bootstrap server accepts TCP."""
    errors = []
    for server in bootstrap.split(","):
        host, _, port = server.strip().rpartition(":")
        try:
            socket.create_connection((host, int(port)), timeout=timeout_s).close()
        except OSError as exc:
            errors.append(f"{server.strip()}: {exc.strerror or exc}")
        else:
            return
    msg = f"no Kafka broker accepts connections ({'; '.join(errors)})"
    raise ServiceUnavailableError(msg)


def probe_broker(
    settings: Settings, endpoints: Endpoints, *, timeout_s: float = 5.0
) -> BrokerReport:
    """A metadata round trip: cluster, brokers and topics with their partition counts."""
    _check_reachable(endpoints.kafka_bootstrap, timeout_s)
    admin = open_admin(settings, endpoints, timeout_s=timeout_s)
    try:
        cluster = admin.describe_cluster()
        names = sorted(admin.list_topics())
        described = admin.describe_topics(names) if names else []
        version = admin._client.check_version()  # noqa: SLF001 - kafka-python has no public call
    except KafkaError as exc:
        msg = f"Kafka at {endpoints.kafka_bootstrap} failed a metadata request: {exc}"
        raise ServiceUnavailableError(msg) from exc
    finally:
        admin.close()
    return BrokerReport(
        bootstrap=endpoints.kafka_bootstrap,
        cluster_id=cluster.get("cluster_id"),
        brokers=len(cluster.get("brokers", [])),
        api_version=".".join(str(part) for part in version),
        topics={topic["name"]: len(topic["partitions"]) for topic in described},
    )


def probe_redis(settings: Settings, endpoints: Endpoints, *, timeout_s: float = 5.0) -> RedisReport:
    """PING, then the server's version and memory from INFO."""
    client = open_redis(settings, endpoints, timeout_s=timeout_s)
    try:
        client.ping()
        info = client.info("server") | client.info("memory")
    except redis.RedisError as exc:
        msg = f"Redis at {endpoints.redis_url} does not answer: {exc}"
        raise ServiceUnavailableError(msg) from exc
    finally:
        client.close()
    return RedisReport(
        url=endpoints.redis_url,
        version=str(info.get("redis_version", "?")),
        mode=str(info.get("redis_mode", "?")),
        used_memory=str(info.get("used_memory_human", "?")),
    )
