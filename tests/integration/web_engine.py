"""A small running engine for the web tests: a trained bundle in Redis, `xsell worker`
processes on their own web ports, customers loaded from snapshot rows, and HTTP helpers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kafka import KafkaProducer

from rules_store.bundle.model import Bundle
from rules_store.bundle.schema import RETAIL_SCHEMA
from rules_store.settings import Settings
from rules_store.store.redis_store import BundleStore, open_redis
from streams.kafka.clients import ensure_topics, kafka_python_options
from streams.kafka.topics import TopicNames
from training.generate import generate_retail, write_retail
from training.retail import TrainParams, train_retail
from xsell.embedded import EmbeddedStack
from xsell.processes import free_port

XSELL = str(Path(sys.executable).with_name("xsell"))
TOKEN = "test-token-not-a-secret"
MAX_BODY = 4096
WAIT_S = 90.0


@dataclass
class Reply:
    status: int
    headers: Mapping[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def request(
    url: str,
    *,
    token: str | None = TOKEN,
    method: str = "GET",
    body: bytes | None = None,
    content_type: str = "application/json",
) -> Reply:
    headers = {"Content-Type": content_type} if body is not None else {}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    req = urllib.request.Request(url, data=body, method=method, headers=headers)  # noqa: S310 - loopback test URL
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:  # noqa: S310
            return Reply(resp.status, dict(resp.headers), resp.read())
    except urllib.error.HTTPError as exc:
        return Reply(exc.code, dict(exc.headers), exc.read())


@dataclass
class WorkerProcess:
    """`xsell worker` on its own web port, its output in a log file."""

    env: dict[str, str]
    log_path: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [XSELL, "worker"],
            env={**self.env, "XSELL_WEB_PORT": str(self.port)},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def log_tail(self) -> str:
        return self.log_path.read_text(errors="replace")[-3000:]

    def health(self) -> dict[str, Any] | None:
        try:
            reply = request(f"{self.url}/health", token=None)
        except OSError:
            return None
        return reply.json() if reply.status == 200 else None


@dataclass
class Engine:
    settings: Settings
    stack: EmbeddedStack
    names: TopicNames
    bundle: Bundle
    version: str
    workers: list[WorkerProcess]
    rows: list[dict[str, Any]]  # the customers loaded from snapshot rows

    def send(self, topic: str, records: list[tuple[str, bytes]]) -> None:
        producer = KafkaProducer(**kafka_python_options(self.settings, self.stack.endpoints))
        for key, value in records:
            producer.send(topic, key=key.encode(), value=value)
        producer.flush()
        producer.close()

    def send_transactions(self, events: list[dict[str, Any]]) -> None:
        self.send(
            self.names.transactions,
            [(e["customer_id"], json.dumps(e, ensure_ascii=False).encode()) for e in events],
        )

    def wait_for_assignment(self) -> None:
        """Until the workers share all partitions between them, each holding some."""
        deadline = time.monotonic() + WAIT_S
        while time.monotonic() < deadline:
            healths = [w.health() for w in self.workers]
            if all(healths):
                owned = [set(h["partitions"]) for h in healths if h]
                if all(owned) and set().union(*owned) == set(range(self.settings.topic_partitions)):
                    return
            time.sleep(0.5)
        logs = "\n---\n".join(w.log_tail() for w in self.workers)
        raise AssertionError(f"workers did not share the partitions within {WAIT_S}s:\n{logs}")

    def wait_for_customers(self) -> None:
        deadline = time.monotonic() + WAIT_S
        pending = [r["客户编号"] for r in self.rows]
        while pending and time.monotonic() < deadline:
            pending = [
                c for c in pending if request(f"{self.workers[0].url}/customers/{c}").status != 200
            ]
            if pending:
                time.sleep(0.5)
        assert not pending, f"{len(pending)} customers not loaded: {self.workers[0].log_tail()}"


def worker_env(stack: EmbeddedStack, prefix: str) -> dict[str, str]:
    """A worker's environment on the session stack with its own prefixes and the API token."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("XSELL_")}
    return env | {
        "XSELL_STATE_DIR": str(stack.settings.state_dir),
        "XSELL_TOPIC_PREFIX": prefix,
        "XSELL_REDIS_KEY_PREFIX": prefix,
        "XSELL_API_TOKEN": TOKEN,
    }


def lacking_wealth_rows(customers: Any, n: int) -> list[dict[str, Any]]:
    return [r for r in customers.to_dict("records") if r["理财余额"] == 0][:n]


@contextmanager
def running_engine(
    stack: EmbeddedStack, tmp_path: Path, *, workers: int, customers: int = 24
) -> Iterator[Engine]:
    """A bundle trained on 2,000 synthetic customers, `workers` workers (token set, small
    body limit), and `customers` of them loaded from snapshot rows."""
    prefix = f"web{uuid.uuid4().hex[:8]}"
    settings = stack.settings.model_copy(
        update={"topic_prefix": prefix, "redis_key_prefix": prefix}
    )
    names = TopicNames(prefix)
    data = generate_retail(2_000, seed=8, dirty_share=0.0)
    path = tmp_path / "customers.del"
    write_retail(data, path, "del")
    bundle = train_retail(path, RETAIL_SCHEMA, TrainParams(segments=3)).bundle
    store = BundleStore(open_redis(settings, stack.endpoints), prefix)
    version = store.publish(bundle)
    store.activate(version)
    ensure_topics(settings, stack.endpoints, names.all())
    env = worker_env(stack, prefix) | {
        "XSELL_API_MAX_BODY_BYTES": str(MAX_BODY),
        "XSELL_LOG_FORMAT": "text",
    }
    procs = [WorkerProcess(env, tmp_path / f"worker{i}.log") for i in range(workers)]
    engine = Engine(
        settings, stack, names, bundle, version, procs, lacking_wealth_rows(data, customers)
    )
    try:
        for proc in procs:
            proc.start()
        engine.wait_for_assignment()
        engine.send(
            names.holdings_snapshot,
            [(r["客户编号"], json.dumps(r, ensure_ascii=False).encode()) for r in engine.rows],
        )
        engine.wait_for_customers()
        yield engine
    finally:
        for proc in procs:
            proc.stop()
