"""The stream worker: transactions and snapshot rows -> holdings table -> cross-sell alerts.

Agents stay linear: decode, call the pure logic (rules_store), update the table, emit.
An event that fails validation goes to the dead-letter topic and the agent goes on; it
never raises, so Faust never restarts it.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import AsyncIterator, Callable
from typing import Any

import faust

from rules_store.alerts import cross_sell_alert, offer_on_change
from rules_store.bundle import Bundle
from rules_store.events import InvalidEventError, decode_json, parse_transaction
from rules_store.holdings import CustomerState, apply_snapshot, apply_transaction
from rules_store.offers import OfferIndex
from rules_store.settings import Endpoints, Settings
from streams.app import create_app, declare_topic
from streams.dead_letters import dead_letter
from streams.topics import TopicNames

log = logging.getLogger(__name__)

Apply = Callable[[CustomerState, dict[str, Any], str, int], CustomerState | None]


class ActiveBundle:
    """The bundle in use and its offer index, swapped as one when a new version arrives."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._current: tuple[str, Bundle, OfferIndex] | None = None

    def update(self, version: str, bundle: Bundle) -> None:
        index = OfferIndex(bundle)  # built before the swap: events never wait for it
        with self._lock:
            self._current = (version, bundle, index)
        log.info("serving bundle version=%s", version)

    def get(self) -> tuple[str, Bundle, OfferIndex] | None:
        with self._lock:
            return self._current


def _customer_of(record: dict[str, Any], id_column: str) -> str:
    customer = record.get("customer_id", record.get(id_column))
    if not isinstance(customer, str) or not customer:
        msg = f"missing field 'customer_id' (or {id_column!r})"
        raise InvalidEventError(msg)
    return customer


def build_worker(
    settings: Settings, endpoints: Endpoints, active: ActiveBundle, *, app_id: str | None = None
) -> faust.App:
    app = create_app(
        settings, endpoints, app_id=app_id or f"{settings.topic_prefix}-engine", web_enabled=False
    )
    names = TopicNames(settings.topic_prefix)
    transactions = declare_topic(app, names.transactions, settings)
    snapshots = declare_topic(app, names.holdings_snapshot, settings)
    dead_letters = declare_topic(app, names.dead_letters, settings)
    alerts = declare_topic(app, names.cross_sell_alerts, settings)
    holdings = app.Table(
        "holdings",
        default=None,
        partitions=settings.topic_partitions,
        key_type=str,
        value_type=bytes,
    )

    async def handle(event: faust.EventT[bytes], apply: Apply, *, alert: bool) -> None:
        message = event.message
        source = f"{message.topic}:{message.partition}"
        try:
            record = decode_json(event.value)
            current = active.get()
            id_column = current[1].schema.id_column if current else "客户编号"
            customer = _customer_of(record, id_column)
            stored = holdings.get(customer)
            before = (
                CustomerState.from_dict(json.loads(stored)) if stored else CustomerState(customer)
            )
            after = apply(before, record, source, message.offset)
        except InvalidEventError as exc:
            await dead_letters.send(
                key=event.key,
                value=dead_letter(
                    reason=str(exc),
                    raw=event.value,
                    key=event.key,
                    topic=message.topic,
                    partition=message.partition,
                    offset=message.offset,
                ),
            )
            return
        if after is None:
            return  # already applied before a restart
        holdings[customer] = json.dumps(after.to_dict()).encode()
        if not alert or current is None:
            return
        version, bundle, index = current
        decided = offer_on_change(before.held, after.held, after.features, bundle, index)
        if decided is None:
            return
        segment, offer = decided
        value = cross_sell_alert(
            customer_id=customer,
            branch_id=after.branch_id,
            ts=str(record.get("ts")),
            event_id=str(record.get("event_id")),
            bundle_version=version,
            segment=segment,
            offer=offer,
            rank=1,
            items=bundle.items,
        )
        await alerts.send(
            key=customer.encode(), value=json.dumps(value, ensure_ascii=False).encode()
        )

    def apply_tx(
        state: CustomerState, record: dict[str, Any], source: str, offset: int
    ) -> CustomerState | None:
        tx = parse_transaction(record)
        return apply_transaction(state, tx, source=source, offset=offset)

    def apply_row(
        state: CustomerState, record: dict[str, Any], source: str, offset: int
    ) -> CustomerState | None:
        current = active.get()
        if current is None:
            msg = "no active bundle yet: a snapshot row cannot be encoded without its schema"
            raise InvalidEventError(msg)
        bundle = current[1]
        return apply_snapshot(
            state,
            record,
            bundle.schema,
            unknown=bundle.unknown_policy,
            source=source,
            offset=offset,
        )

    @app.agent(transactions)
    async def process_transactions(stream: faust.StreamT[bytes]) -> AsyncIterator[None]:
        async for event in stream.events():
            await handle(event, apply_tx, alert=True)
            yield None

    @app.agent(snapshots)
    async def load_snapshot_rows(stream: faust.StreamT[bytes]) -> AsyncIterator[None]:
        async for event in stream.events():
            await handle(event, apply_row, alert=False)
            yield None

    return app
