"""A flush's changelog records go out a batch per partition, on the embedded broker: each
record lands in its partition in order, and the store learns the offset each batch ends at."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections import defaultdict
from pathlib import Path

from faust.types import TP
from kafka import KafkaConsumer

from streams.compat.changelog_batches import ChangelogBatches
from streams.compat.rocks_store import HoldingsStore, HoldingsTable
from streams.kafka.app import create_app
from streams.kafka.clients import ensure_topics, kafka_python_options
from streams.processing.outbox import Stored
from xsell.embedded import EmbeddedStack


def test_records_reach_their_partitions_in_order_and_the_store_their_end_offsets(
    stack: EmbeddedStack, tmp_path: Path
) -> None:
    app_id = f"b{uuid.uuid4().hex[:8]}"
    settings = stack.settings.model_copy(update={"state_dir": tmp_path})
    app = create_app(
        settings, stack.endpoints, app_id=app_id, web_enabled=False, Table=HoldingsTable
    )
    table = app.Table(
        "holdings",
        default=None,
        partitions=settings.topic_partitions,
        key_type=str,
        value_type=bytes,
    )
    ensure_topics(settings, stack.endpoints, (table.changelog_topic_name,))
    states = [
        Stored(i % 3, f"客户{i}", json.dumps({"n": i, "pad": "x" * 300}).encode())
        for i in range(60)
    ]

    async def write() -> None:
        await app.producer.start()
        try:
            # ~330 bytes a record: about 6 a batch, so every partition gets several.
            batches = ChangelogBatches(table, batch_bytes=2_000)
            for start in range(0, len(states), 7):
                await batches.add(states[start : start + 7])
            await batches.close()
        finally:
            await app.producer.stop()

    asyncio.run(write())

    consumer = KafkaConsumer(
        table.changelog_topic_name,
        auto_offset_reset="earliest",
        consumer_timeout_ms=3000,
        **kafka_python_options(settings, stack.endpoints),
    )
    found: dict[int, list[tuple[int, str, bytes]]] = defaultdict(list)
    for message in consumer:
        found[message.partition].append((message.offset, json.loads(message.key), message.value))
    consumer.close()
    for partition in range(3):
        want = [(s.customer, s.value) for s in states if s.partition == partition]
        assert [(k, v) for _, k, v in found[partition]] == want
    store = table.data
    assert isinstance(store, HoldingsStore)
    assert {p: store.persisted_offset(TP(table.changelog_topic_name, p)) for p in range(3)} == {
        p: found[p][-1][0] for p in range(3)
    }
    assert store._pending == {}  # nothing was set through the table: nothing waits
    assert store.get(states[-1].customer) == states[-1].value  # on disk with its offset
