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
from datetime import datetime
from typing import Any

import faust

from rules_store.alerts import after_event
from rules_store.bundle import Bundle
from rules_store.contact import ContactPolicy
from rules_store.events import InvalidEventError, decode_json, parse_timestamp, parse_transaction
from rules_store.holdings import (
    CustomerState,
    apply_profile,
    apply_snapshot,
    apply_transaction,
)
from rules_store.offers import OfferIndex
from rules_store.schema import SchemaError, encode_profile
from rules_store.settings import Endpoints, Settings
from streams.app import create_app, declare_topic
from streams.dead_letters import dead_letter
from streams.faust_fixes import install_faust_fixes
from streams.tansu import EMBEDDED_FETCH_WAIT_MS, install_changelog_fence, install_fetch_wait
from streams.topics import TopicNames

log = logging.getLogger(__name__)


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
    names = TopicNames(settings.topic_prefix)
    install_faust_fixes()
    if endpoints.embedded_broker:
        install_changelog_fence()
    if settings.fetch_max_wait_ms is not None or endpoints.embedded_broker:
        install_fetch_wait(settings.fetch_max_wait_ms or EMBEDDED_FETCH_WAIT_MS)
    app = create_app(settings, endpoints, app_id=app_id or names.engine_group)
    transactions = declare_topic(app, names.transactions, settings)
    snapshots = declare_topic(app, names.holdings_snapshot, settings)
    profiles = declare_topic(app, names.profiles, settings)
    dead_letters = declare_topic(app, names.dead_letters, settings)
    alerts = declare_topic(app, names.cross_sell_alerts, settings)
    holdings = app.Table(
        "holdings",
        default=None,
        partitions=settings.topic_partitions,
        key_type=str,
        value_type=bytes,
    )
    policy = ContactPolicy(settings.cooldown_days, settings.max_alerts_per_day)

    def state_of(customer: str) -> CustomerState:
        stored = holdings.get(customer)
        return CustomerState.from_dict(json.loads(stored)) if stored else CustomerState(customer)

    async def reject(event: faust.EventT[bytes], reason: str) -> None:
        message = event.message
        record = dead_letter(
            reason=reason,
            raw=event.value,
            key=event.key,
            topic=message.topic,
            partition=message.partition,
            offset=message.offset,
        )
        await dead_letters.send(key=event.key, value=record)

    async def update_and_alert(
        event: faust.EventT[bytes],
        customer: str,
        apply: Callable[[CustomerState, str, int], CustomerState | None],
        *,
        event_id: str,
        ts: datetime,
    ) -> None:
        """Apply one event to a customer's state, then alert if the contact policy allows."""
        source, offset = f"{event.message.topic}:{event.message.partition}", event.message.offset
        before = state_of(customer)
        stored, to_send = after_event(
            before,
            apply(before, source, offset),
            source=source,
            offset=offset,
            event_id=event_id,
            ts=ts,
            active=active.get(),  # one bundle for the whole event
            policy=policy,
        )
        if stored is not None:
            holdings[customer] = json.dumps(stored.to_dict()).encode()
        for alert in to_send:
            await alerts.send(key=customer.encode(), value=alert.encode())

    async def on_transaction(event: faust.EventT[bytes]) -> None:
        try:
            tx = parse_transaction(decode_json(event.value))
        except InvalidEventError as exc:
            await reject(event, str(exc))
            return
        await update_and_alert(
            event,
            tx.customer_id,
            lambda state, source, offset: apply_transaction(
                state, tx, source=source, offset=offset
            ),
            event_id=tx.event_id,
            ts=tx.ts,
        )

    async def on_profile(event: faust.EventT[bytes]) -> None:
        current = active.get()
        try:
            if current is None:
                msg = "no active bundle yet: a profile cannot be encoded without its schema"
                raise InvalidEventError(msg)
            schema, unknown = current[1].schema, current[1].unknown_policy
            record = decode_json(event.value)
            customer = _customer_of(record, schema.id_column)
            ts = parse_timestamp(record.get("ts"))
            encode_profile(schema, record, unknown=unknown)  # validate before touching state
        except (InvalidEventError, SchemaError) as exc:
            await reject(event, f"profile: {exc}" if isinstance(exc, SchemaError) else str(exc))
            return
        await update_and_alert(
            event,
            customer,
            lambda state, source, offset: apply_profile(
                state, record, schema, unknown=unknown, source=source, offset=offset
            ),
            event_id=str(record.get("event_id") or f"profile:{customer}:{ts.isoformat()}"),
            ts=ts,
        )

    async def on_snapshot_row(event: faust.EventT[bytes]) -> None:
        source, offset = f"{event.message.topic}:{event.message.partition}", event.message.offset
        current = active.get()
        try:
            if current is None:
                msg = "no active bundle yet: a snapshot row cannot be encoded without its schema"
                raise InvalidEventError(msg)
            bundle = current[1]
            record = decode_json(event.value)
            customer = _customer_of(record, bundle.schema.id_column)
            after = apply_snapshot(
                state_of(customer),
                record,
                bundle.schema,
                unknown=bundle.unknown_policy,
                source=source,
                offset=offset,
            )
        except InvalidEventError as exc:
            await reject(event, str(exc))
            return
        if after is not None:
            holdings[customer] = json.dumps(after.to_dict()).encode()

    @app.agent(transactions)
    async def process_transactions(stream: faust.StreamT[bytes]) -> AsyncIterator[None]:
        async for event in stream.events():
            await on_transaction(event)
            yield None

    @app.agent(profiles)
    async def process_profiles(stream: faust.StreamT[bytes]) -> AsyncIterator[None]:
        async for event in stream.events():
            await on_profile(event)
            yield None

    @app.agent(snapshots)
    async def load_snapshot_rows(stream: faust.StreamT[bytes]) -> AsyncIterator[None]:
        async for event in stream.events():
            await on_snapshot_row(event)
            yield None

    return app
