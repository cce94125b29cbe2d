"""`xsell tail`: follow alerts as a branch app would (a kafka-python consumer group)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import click
from kafka import KafkaConsumer
from kafka.errors import KafkaError
from kafka.structs import OffsetAndMetadata, TopicPartition

from rules_store.errors import ServiceUnavailableError
from rules_store.settings import Endpoints, Settings
from streams.kafka.app import EMBEDDED_GROUP_TIMING
from streams.kafka.clients import ensure_topics, kafka_python_options
from streams.kafka.topics import TopicNames
from xsell.alert_lines import describe
from xsell.console import out
from xsell.embedded import resolve_endpoints
from xsell.options import json_option

TYPES = ("cross_sell", "churn", "dead_letters")


def _topics(names: TopicNames) -> dict[str, str]:
    return {
        names.cross_sell_alerts: "cross_sell",
        names.churn_alerts: "churn",
        names.dead_letters: "dead_letters",
    }


def group_consumer(
    settings: Settings, endpoints: Endpoints, topics: list[str], *, group: str, earliest: bool
) -> KafkaConsumer:
    """A consumer in `group`; the caller commits what it has handled (`Follower`)."""
    # The embedded broker holds a JoinGroup for half the session timeout: the workers' timing.
    timing = (
        {
            "session_timeout_ms": int(EMBEDDED_GROUP_TIMING["broker_session_timeout"] * 1000),
            "heartbeat_interval_ms": int(EMBEDDED_GROUP_TIMING["broker_heartbeat_interval"] * 1000),
        }
        if endpoints.embedded_broker
        else {}
    )
    try:
        return KafkaConsumer(
            *topics,
            group_id=group,
            auto_offset_reset="earliest" if earliest else "latest",
            enable_auto_commit=False,
            client_id="xsell-tail",
            **timing,
            **kafka_python_options(settings, endpoints),
        )
    except KafkaError as exc:
        msg = f"Kafka at {endpoints.kafka_bootstrap} does not answer: {exc}"
        raise ServiceUnavailableError(msg) from exc


class Follower:
    """Records of a group consumer, committing only those handed out.

    Auto-commit would also commit records fetched but not yet shown (say after `--max`),
    and the next run would skip them.
    """

    def __init__(self, consumer: KafkaConsumer, kinds: dict[str, str]) -> None:
        self.consumer = consumer
        self.kinds = kinds
        self._done: dict[TopicPartition, OffsetAndMetadata] = {}

    def records(self, *, idle_s: float | None) -> Iterator[tuple[str, dict[str, Any], int]]:
        """(kind, record, broker timestamp ms) per record until `idle_s` pass with none."""
        last = committed = time.monotonic()
        while idle_s is None or time.monotonic() - last < idle_s:
            fetched = self.consumer.poll(timeout_ms=200)
            if not self.consumer.assignment():
                last = time.monotonic()  # still joining the group: not idle yet
            for batch in fetched.values():
                for message in batch:
                    last = time.monotonic()
                    self._done[TopicPartition(message.topic, message.partition)] = (
                        OffsetAndMetadata(message.offset + 1, "", -1)
                    )
                    try:
                        record = json.loads(message.value)
                    except ValueError:
                        continue  # the engine writes JSON only; anything else is not ours
                    yield self.kinds[message.topic], record, message.timestamp
            if time.monotonic() - committed > 1.0:
                self.commit()
                committed = time.monotonic()

    def commit(self) -> None:
        if self._done:
            self.consumer.commit(offsets=dict(self._done))
            self._done.clear()

    def close(self) -> None:
        try:
            self.commit()
        finally:
            self.consumer.close(autocommit=False)


@click.command("tail")
@click.option(
    "--type",
    "types",
    type=click.Choice(TYPES),
    multiple=True,
    help="What to follow; repeat for several (default: cross_sell and churn alerts).",
)
@click.option("--branch", help="Only alerts for this branch_id.")
@click.option(
    "--group",
    help="Consumer group; its committed offsets make a restart resume where it stopped "
    "(default: xsell-tail-BRANCH, or xsell-tail-all).",
)
@click.option(
    "--from-beginning",
    is_flag=True,
    help="A new group starts at the oldest alert (default: only new ones).",
)
@json_option
@click.option("--max", "limit", type=click.IntRange(min=1), help="Stop after this many records.")
@click.option(
    "--idle",
    type=click.FloatRange(min=0, min_open=True),
    help="Stop after this many seconds without a record (default: run until Ctrl-C).",
)
@click.pass_obj
def tail_cmd(
    settings: Settings,
    types: tuple[str, ...],
    branch: str | None,
    group: str | None,
    from_beginning: bool,
    as_json: bool,
    limit: int | None,
    idle: float | None,
) -> None:
    """Follow alerts as they arrive, one readable line each (or JSON with --json).

    A branch app would do the same: a consumer group on the alert topics, filtered by
    branch. Offsets are committed, so stopping and starting again skips nothing.
    """
    endpoints = resolve_endpoints(settings)
    names = TopicNames(settings.topic_prefix)
    ensure_topics(settings, endpoints, names.all())
    wanted = set(types or ("cross_sell", "churn"))
    kinds = {topic: kind for topic, kind in _topics(names).items() if kind in wanted}
    consumer = group_consumer(
        settings,
        endpoints,
        list(kinds),
        group=group or f"xsell-tail-{branch or 'all'}",
        earliest=from_beginning,
    )
    follower = Follower(consumer, kinds)
    shown = 0
    try:
        for kind, record, _ in follower.records(idle_s=idle):
            if branch is not None and kind != "dead_letters" and record.get("branch_id") != branch:
                continue
            out.print(
                json.dumps(record, ensure_ascii=False) if as_json else describe(kind, record),
                markup=False,
                highlight=False,
            )
            shown += 1
            if limit is not None and shown >= limit:
                break
    except KeyboardInterrupt:
        pass
    finally:
        follower.close()
