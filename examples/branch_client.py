"""A branch app's alert consumer, small enough to copy: kafka-python only, no xsell import.

    pip install kafka-python
    python branch_client.py --bootstrap kafka1:9092 --branch b03

It joins a consumer group (one per branch app: several copies share the work), reads the
engine's alert topics, keeps the alerts of its branch, drops repeats by `alert_id` (a
restarted engine worker may send an alert again, with the same id) and commits the
offsets of what it has handled, so a restart resumes where it stopped. Replace `handle`
with what the branch does: a task in the CRM, a message to the relationship manager.
Alerts carry ids (customer, branch, alert, event), never names or documents.
"""

from __future__ import annotations

import argparse
import json
import time
from collections import OrderedDict
from typing import Any

from kafka import KafkaConsumer


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
    seen: OrderedDict[str, None] = OrderedDict()  # recent alert ids, to drop repeats
    last = time.monotonic()
    try:
        while args.idle is None or time.monotonic() - last < args.idle:
            batches = consumer.poll(timeout_ms=500)
            if not consumer.assignment():
                last = time.monotonic()  # still joining the group
            for records in batches.values():
                for record in records:
                    last = time.monotonic()
                    alert = json.loads(record.value)
                    if alert.get("branch_id") != args.branch or alert["alert_id"] in seen:
                        continue
                    seen[alert["alert_id"]] = None
                    if len(seen) > 100_000:
                        seen.popitem(last=False)
                    handle(alert)
            if batches:
                consumer.commit()  # everything polled so far has been handled
    except KeyboardInterrupt:
        pass
    finally:
        consumer.close()


if __name__ == "__main__":
    main()
