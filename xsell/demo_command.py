"""`xsell demo`: the whole engine on the embedded stack, from synthetic data to live alerts."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import click
from kafka import KafkaConsumer, KafkaProducer
from kafka.errors import KafkaTimeoutError
from rich.console import Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from rules_store.bundle.schema import RETAIL_SCHEMA
from rules_store.errors import XsellError
from rules_store.settings import Settings
from rules_store.store.files import atomic_path
from rules_store.store.redis_store import BundleStore, open_redis
from streams.kafka.clients import ensure_topics, kafka_python_options
from streams.kafka.topics import TopicNames
from training.event_generator import EventPlan, GeneratedEvents, generate_events
from training.generate import generate_retail, write_retail
from training.loading import write_months_table
from training.outputs import save_run_bundle, write_training_outputs
from training.report import write_report
from training.retail import TrainParams, train_retail
from xsell.alert_lines import describe
from xsell.console import err, out
from xsell.demo_tally import Tally
from xsell.embedded import EmbeddedStack
from xsell.options import (
    customers_option,
    days_option,
    drainers_option,
    malformed_option,
    out_option,
    rate_option,
    seed_option,
)
from xsell.processes import free_port
from xsell.progress import stage_progress
from xsell.replaying import History, Sent, send_lines, snapshot_lines, unread

WAIT_S = 180.0  # for the worker to take in the snapshot or the events


class Worker:
    """`xsell worker` as a child process on the demo's stack, its output in a log file."""

    def __init__(self, settings: Settings, log_path: Path) -> None:
        env = {
            k: v
            for k, v in os.environ.items()
            if k not in ("XSELL_KAFKA_BROKERS", "XSELL_REDIS_URL")
        }
        env["XSELL_STATE_DIR"] = str(settings.state_dir)  # finds the stack by its run file
        self.web_port = free_port()  # not the default: a worker may hold it
        env["XSELL_WEB_PORT"] = str(self.web_port)
        self.log_path = log_path
        self._log = log_path.open("wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "xsell", "worker"],
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    def check(self) -> None:
        if self.process.poll() is not None:
            tail = self.log_path.read_text(errors="replace")[-2000:]
            msg = f"the worker exited with code {self.process.returncode}; end of {self.log_path}:\n{tail}"
            raise XsellError(msg)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()


class CatchUp:
    """Whether the workers' group has committed every record the demo sent to a topic."""

    def __init__(
        self, settings: Settings, stack: EmbeddedStack, worker: Worker, topic: str
    ) -> None:
        self.settings, self.stack, self.worker, self.topic = settings, stack, worker, topic
        self.deadline: float | None = None

    def done(self, sent: Sent) -> bool:
        """True once caught up; an error when the worker died or has not within WAIT_S."""
        self.worker.check()
        self.deadline = self.deadline or time.monotonic() + WAIT_S
        left = unread(self.settings, self.stack.endpoints, self.topic, sent.ends)
        if not left:
            return True
        if time.monotonic() > self.deadline:
            msg = (
                f"the worker has not read all of {self.topic} within {WAIT_S:.0f}s "
                f"(partition: (committed, sent up to) {left}); see {self.worker.log_path}"
            )
            raise XsellError(msg)
        return False


def _view(tally: Tally, sent: Sent, total: int) -> Group:
    p50, p99 = tally.latency_ms(50), tally.latency_ms(99)
    header = Text.assemble(
        ("events sent ", "bold"),
        f"{sent.count:,}/{total:,}   ",
        ("cross-sell ", "bold"),
        f"{tally.alerts['cross_sell']:,}   ",
        ("churn ", "bold"),
        f"{tally.alerts['churn']:,}   ",
        ("retention ", "bold"),
        f"{tally.alerts['retention']:,}   ",
        ("dead letters ", "bold"),
        f"{tally.dead_letters:,}   ",
        ("latency p50/p99 ", "bold"),
        f"{p50:,.0f}/{p99:,.0f} ms" if p50 is not None and p99 is not None else "-",
    )
    table = Table(title="latest alerts", title_justify="left", expand=True)
    table.add_column("alert", no_wrap=True, overflow="ellipsis")  # one line per alert
    table.add_column("latency", justify="right", width=9)
    for kind, record, latency in reversed(tally.recent):
        table.add_row(describe(kind, record), "" if latency is None else f"{latency:,.0f} ms")
    return Group(header, table)


def _summary(tally: Tally, sent: Sent, valid: int, planted: int, seconds: float) -> dict[str, Any]:
    return {
        "events_in": sent.count,
        "valid_events": valid,
        "alerts": dict(tally.alerts),
        "dead_letters": tally.dead_letters,
        "malformed_planted": planted,
        "latency_ms": {"p50": tally.latency_ms(50), "p99": tally.latency_ms(99)},
        "replay_and_drain_s": round(seconds, 1),
    }


def _print_summary(summary: dict[str, Any]) -> None:
    table = Table(title="demo summary", title_justify="left")
    table.add_column("measure")
    table.add_column("value", justify="right")
    table.add_row("events in", f"{summary['events_in']:,}")
    table.add_row("  of them valid", f"{summary['valid_events']:,}")
    for kind in ("cross_sell", "churn", "retention"):
        table.add_row(f"{kind} alerts", f"{summary['alerts'].get(kind, 0):,}")
    churn = summary["churn_customers"]
    table.add_row(
        "  churn: drainers flagged",
        f"{churn['flagged_drainers']} of {churn['planted_drainers']} planted"
        f" (others flagged: {churn['flagged_others']})",
    )
    table.add_row(
        "dead letters",
        f"{summary['dead_letters']:,} (malformed planted: {summary['malformed_planted']})",
    )
    for q in ("p50", "p99"):
        value = summary["latency_ms"][q]
        table.add_row(f"event→alert latency {q}", "-" if value is None else f"{value:,.0f} ms")
    table.add_row("replay + drain", f"{summary['replay_and_drain_s']} s")
    out.print(table)


@click.command("demo")
@customers_option(default=5_000, minimum=100)
@days_option
@rate_option(1_000.0)
@malformed_option(5)
@drainers_option
@seed_option()
@out_option(
    "a directory for the data, model, report, worker log and summary.json.",
    directory=True,
    default=Path("xsell-demo"),
)
@click.pass_obj
def demo_cmd(
    settings: Settings,
    customers: int,
    days: int,
    rate: float,
    malformed: int,
    drainers: int,
    seed: int,
    out_dir: Path,
) -> None:
    """Run the whole engine once on its own embedded broker and Redis, then stop.

    Generates customers and a week of their transactions, trains and activates a bundle,
    starts a worker, loads the snapshot, replays the events while the alerts show live,
    and ends with a summary: events in, alerts by type, dead letters and event→alert
    latency (also in OUT/summary.json). Everything it wrote stays in OUT.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    settings = settings.model_copy(
        update={"state_dir": out_dir / "state", "kafka_brokers": None, "redis_url": None}
    )
    names = TopicNames(settings.topic_prefix)
    worker: Worker | None = None
    producer: KafkaProducer | None = None
    with EmbeddedStack(settings) as stack:
        try:
            with stage_progress(err) as stages:
                with stages.stage(
                    f"embedded broker {stack.endpoints.kafka_bootstrap}, Redis {stack.endpoints.redis_url}"
                ):
                    ensure_topics(settings, stack.endpoints, names.all())
                with stages.stage(f"generate {customers:,} customers"):
                    snapshot_path = out_dir / "customers.del"
                    frame = generate_retail(customers, seed=seed, dirty_share=0.0)
                    write_retail(frame, snapshot_path, "del")
                with stages.stage("train segments and rules"):
                    trained = train_retail(snapshot_path, RETAIL_SCHEMA, TrainParams(seed=seed))
                    bundle = trained.bundle
                    write_training_outputs(
                        out_dir / "model",
                        bundle,
                        trained.data.ids,
                        trained.segmentation.labels,
                        trained.values,
                    )
                    write_report(out_dir / "model" / "report.html", bundle, stages.seconds)
                    save_run_bundle(out_dir / "model", bundle)  # last, as `train retail`
                with stages.stage("publish and activate the bundle"):
                    store = BundleStore(
                        open_redis(settings, stack.endpoints), settings.redis_key_prefix
                    )
                    store.activate(store.publish(bundle))
                with stages.stage(f"generate {days} days of events"):
                    plan = EventPlan(days=days, drainers=drainers, malformed=malformed, seed=seed)
                    events = generate_events(frame, RETAIL_SCHEMA, plan)
                    with atomic_path(out_dir / "events.jsonl") as tmp:
                        tmp.write_bytes(b"\n".join(events.lines) + b"\n")
                    with atomic_path(out_dir / "events.jsonl.manifest.json") as tmp:
                        tmp.write_text(
                            json.dumps(events.manifest(plan), ensure_ascii=False, indent=2)
                        )
                    write_months_table(
                        events.months, out_dir / "events.jsonl.months.csv", RETAIL_SCHEMA.id_column
                    )
                with stages.stage("start a worker"):
                    worker = Worker(settings, out_dir / "worker.log")
                producer = KafkaProducer(
                    linger_ms=5, **kafka_python_options(settings, stack.endpoints)
                )
                with stages.stage("load the snapshot into the worker's holdings"):
                    history = History(plan.as_of, events.months)
                    lines, _ = snapshot_lines(frame, RETAIL_SCHEMA.id_column, history)
                    loaded = send_lines(
                        producer, names.holdings_snapshot, lines, key_field=RETAIL_SCHEMA.id_column
                    )
                    catch_up = CatchUp(settings, stack, worker, names.holdings_snapshot)
                    while not catch_up.done(loaded):
                        time.sleep(0.5)
            summary = _replay(settings, stack, worker, producer, events, rate, malformed)
        finally:
            if producer is not None:
                with contextlib.suppress(KafkaTimeoutError):  # interrupted: unsent events go
                    producer.close(timeout=0 if sys.exc_info()[0] else None)
            if worker is not None:
                worker.stop()
    with atomic_path(out_dir / "summary.json") as tmp:
        tmp.write_text(json.dumps(summary, indent=2))
    _print_summary(summary)
    out.print(f"data, model/report.html, worker.log and summary.json are in {out_dir}/")


def _replay(
    settings: Settings,
    stack: EmbeddedStack,
    worker: Worker,
    producer: KafkaProducer,
    events: GeneratedEvents,
    rate: float,
    malformed: int,
) -> dict[str, Any]:
    """Replay in the background while the alerts show live; return the summary."""
    names = TopicNames(settings.topic_prefix)
    lines = events.lines
    sent = Sent()
    tally = Tally(sent.at)
    kinds = {
        names.cross_sell_alerts: "cross_sell",
        names.churn_alerts: "churn",
        names.dead_letters: "dead_letters",
    }
    consumer = KafkaConsumer(
        *kinds, auto_offset_reset="earliest", **kafka_python_options(settings, stack.endpoints)
    )
    failure: list[BaseException] = []

    def replay() -> None:
        try:
            send_lines(producer, names.transactions, lines, rate=rate, sent=sent)
        except BaseException as exc:  # reported by the main thread
            failure.append(exc)

    started = time.monotonic()
    sender = threading.Thread(target=replay, name="replay", daemon=True)
    sender.start()
    drained_at: float | None = None
    catch_up = CatchUp(settings, stack, worker, names.transactions)
    checked = 0.0
    try:
        with Live(_view(tally, sent, len(lines)), console=out, refresh_per_second=4) as live:
            while True:
                for batch in consumer.poll(timeout_ms=200).values():
                    for message in batch:
                        tally.add(
                            kinds[message.topic], json.loads(message.value), message.timestamp
                        )
                live.update(_view(tally, sent, len(lines)))
                if failure:
                    raise failure[0]
                worker.check()
                now = time.monotonic()
                if drained_at is None and not sender.is_alive() and now - checked > 0.5:
                    checked = now
                    if catch_up.done(sent):
                        drained_at = now
                # Once the worker has read everything, a moment more for its last alerts.
                if drained_at is not None and time.monotonic() - drained_at > 2.0:
                    break
    finally:
        consumer.close()
    valid = len(lines) - malformed
    return _summary(tally, sent, valid, malformed, time.monotonic() - started) | {
        "churn_customers": {
            "planted_drainers": len(events.drainers),
            "flagged_drainers": len(tally.churned & set(events.drainers)),
            "flagged_others": len(tally.churned - set(events.drainers)),
        }
    }
