"""A branch app's alert consumer, small enough to copy: kafka-python only, no xsell import.

    pip install kafka-python
    python branch_client.py --bootstrap kafka1:9092 --branch b03

It joins a consumer group (one per branch app: several copies share the work), reads the
engine's alert topics, keeps the alerts of its branch, drops repeats by `alert_id` (a
restarted engine worker may send an alert again, with the same id) and commits the
offsets of what it has handled, so a restart resumes where it stopped. Replace `handle`
with what the branch does: a task in the CRM, a message to the relationship manager.
Alerts carry ids (customer, branch, alert, event), never names or documents.

Of what one poll brings, the most valuable customers come first (the alert's `value`, a
percentile). When the customer answers an offer, `record_answer` tells the engine
(accepted, declined or ignored); `--answer` records the same answer for every offer shown,
to try it out.
"""

from __future__ import annotations

import argparse
import json
import time
from collections import OrderedDict
from datetime import UTC, datetime
from typing import Any

from kafka import KafkaConsumer, KafkaProducer


def handle(alert: dict[str, Any]) -> None:
    """What the branch does with one alert; here, print one line."""
    if alert["type"] == "cross_sell":
        why = alert.get("evidence", {})
        reason = (
            f"holds {'+'.join(why['antecedents'])}, lift {why['lift']:.2f}"
            if why.get("antecedents")
            else "most held in the segment"
        )
        print(f"{alert['ts']} offer {alert['product']} to {alert['customer_id']} ({reason})")
    elif alert["type"] == "retention":
        print(f"{alert['ts']} call {alert['customer_id']}: churn risk (not {alert['instead_of']})")
    else:
        print(f"{alert['ts']} churn warning {alert['customer_id']}: {alert.get('explanation', '')}")


def record_answer(
    producer: KafkaProducer, topic_prefix: str, alert: dict[str, Any], outcome: str, branch: str
) -> None:
    """Send the customer's answer to a cross-sell offer to the engine's outcomes topic.

    Keyed by the customer (the alert's `customer_id`), as the engine's outcome topic is, so
    the answer reaches the worker that holds the customer's offers.
    """
    answer = {
        "alert_id": alert["alert_id"],
        "outcome": outcome,  # accepted | declined | ignored
        "ts": datetime.now(UTC).isoformat(timespec="seconds"),
        "channel": "branch",
        "branch_id": branch,
    }
    producer.send(
        f"{topic_prefix}.outcomes",
        key=str(alert["customer_id"]).encode(),
        value=json.dumps(answer).encode(),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--bootstrap", required=True, help="Kafka bootstrap servers host:port")
    parser.add_argument("--branch", required=True, help="only this branch_id's alerts")
    parser.add_argument("--topic-prefix", default="xsell", help="the engine's XSELL_TOPIC_PREFIX")
    parser.add_argument("--group", help="consumer group (default: branch-app-BRANCH)")
    parser.add_argument(
        "--from-beginning", action="store_true", help="a new group reads old alerts too"
    )
    parser.add_argument("--idle", type=float, help="stop after this many seconds without an alert")
    parser.add_argument(
        "--session-timeout-ms",
        type=int,
        default=10_000,
        help="group session timeout (the embedded test broker joins faster with 2000)",
    )
    parser.add_argument(
        "--answer",
        choices=("accepted", "declined", "ignored"),
        help="record this answer for every offer shown (to try the outcomes loop)",
    )
    args = parser.parse_args()

    consumer = KafkaConsumer(
        f"{args.topic_prefix}.alerts.cross_sell",
        f"{args.topic_prefix}.alerts.churn",
        bootstrap_servers=args.bootstrap.split(","),
        group_id=args.group or f"branch-app-{args.branch}",
        enable_auto_commit=False,  # commit only what was handled
        auto_offset_reset="earliest" if args.from_beginning else "latest",
        session_timeout_ms=args.session_timeout_ms,
        heartbeat_interval_ms=args.session_timeout_ms // 4,
    )
    producer = KafkaProducer(bootstrap_servers=args.bootstrap.split(",")) if args.answer else None
    seen: OrderedDict[str, None] = OrderedDict()  # recent alert ids, to drop repeats
    last = time.monotonic()
    try:
        while args.idle is None or time.monotonic() - last < args.idle:
            batches = consumer.poll(timeout_ms=500)
            if not consumer.assignment():
                last = time.monotonic()  # still joining the group
            fresh = []
            for records in batches.values():
                for record in records:
                    last = time.monotonic()
                    alert = json.loads(record.value)
                    if alert.get("branch_id") != args.branch or alert["alert_id"] in seen:
                        continue
                    seen[alert["alert_id"]] = None
                    if len(seen) > 100_000:
                        seen.popitem(last=False)
                    fresh.append(alert)
            # The most valuable customers first, within what this poll brought.
            for alert in sorted(fresh, key=lambda a: -(a.get("value") or 0)):
                handle(alert)
                if producer is not None and alert["type"] == "cross_sell":
                    record_answer(producer, args.topic_prefix, alert, args.answer, args.branch)
            if producer is not None:
                producer.flush()  # answers sent before the alerts are committed as handled
            if batches:
                consumer.commit()  # everything polled so far has been handled
    except KeyboardInterrupt:
        pass
    finally:
        consumer.close()
        if producer is not None:
            producer.close()


if __name__ == "__main__":
    main()
