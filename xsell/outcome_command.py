"""`xsell outcome ALERT_ID accepted|declined|ignored`: record a customer's answer to an offer."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import click
from kafka import KafkaProducer

from rules_store.domain.acceptance import OUTCOMES
from rules_store.domain.outcomes import outcome_record, parse_outcome
from rules_store.settings import Settings
from streams.kafka.clients import ensure_topics, kafka_python_options
from streams.kafka.topics import TopicNames
from xsell.console import out
from xsell.embedded import resolve_endpoints


@click.command("outcome")
@click.argument("alert_id")
@click.argument("outcome", type=click.Choice(OUTCOMES))
@click.option("--channel", help="Where the answer was given (branch, app, phone…).")
@click.option("--branch-id", help="The branch that recorded it (the alert's branch_id).")
@click.option(
    "--ts",
    help="When the customer answered (ISO 8601 with a UTC offset); default: now.",
)
@click.pass_obj
def outcome_cmd(
    settings: Settings,
    alert_id: str,
    outcome: str,
    channel: str | None,
    branch_id: str | None,
    ts: str | None,
) -> None:
    """Record the customer's answer to the offer of ALERT_ID (from its cross-sell alert).

    The answer goes to the outcomes topic, keyed by the customer the alert id names, and
    the worker that holds that customer counts it once: a second answer for the same alert
    counts nothing. A declined product is not offered to that customer again for
    XSELL_DECLINE_COOLDOWN_DAYS.
    """
    record = {
        "alert_id": alert_id,
        "outcome": outcome,
        "ts": ts or datetime.now(UTC).isoformat(timespec="seconds"),
        "channel": channel,
        "branch_id": branch_id,
    }
    try:
        report = parse_outcome(record)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None
    endpoints = resolve_endpoints(settings)
    names = TopicNames(settings.topic_prefix)
    ensure_topics(settings, endpoints, names.all())
    producer = KafkaProducer(**kafka_python_options(settings, endpoints))
    try:
        sent = producer.send(
            names.outcomes,
            key=report.customer_id.encode(),
            value=json.dumps(outcome_record(report), ensure_ascii=False).encode(),
        ).get(timeout=30)
    finally:
        producer.close()
    out.print(
        f"recorded {report.outcome} for alert {report.alert_id} (customer {report.customer_id})"
        f" → {sent.topic}[{sent.partition}] offset {sent.offset}",
        highlight=False,
    )
