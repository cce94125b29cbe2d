"""`xsell tail` as a branch app: a consumer group that resumes where it stopped, filtered by branch."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
from kafka import KafkaProducer

from rules_store.settings import Settings
from streams.kafka.clients import ensure_topics, kafka_python_options
from streams.kafka.topics import TopicNames
from tests.cli import run_cli
from xsell.embedded import EmbeddedStack


def _alert(n: int, branch: str) -> dict[str, object]:
    return {
        "alert_id": f"id{n:04d}",
        "type": "cross_sell",
        "customer_id": f"c{n}",
        "branch_id": branch,
        "ts": f"2026-11-02T09:{n:02d}:00+08:00",
        "product": "国债",
        "segment": 1,
        "evidence": {"antecedents": ["存款"], "confidence": 0.5, "lift": 1.5},
    }


def test_tail_resumes_from_its_committed_offsets_and_filters_by_branch(
    stack: EmbeddedStack,
    stack_env: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    prefix = f"t{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv("XSELL_TOPIC_PREFIX", prefix)
    settings: Settings = stack.settings.model_copy(update={"topic_prefix": prefix})
    names = TopicNames(prefix)
    ensure_topics(settings, stack.endpoints, names.all())
    producer = KafkaProducer(**kafka_python_options(settings, stack.endpoints))
    for n in range(10):
        alert = _alert(n, "b1" if n % 2 else "b2")
        producer.send(
            names.cross_sell_alerts,
            key=str(alert["customer_id"]).encode(),
            value=json.dumps(alert, ensure_ascii=False).encode(),
        )
    producer.flush()
    producer.close()

    def tail(*args: str) -> list[str]:
        code, output = run_cli(["tail", "--from-beginning", "--idle", "3", *args], capsys)
        assert code == 0, output
        return [line for line in output.splitlines() if line.strip()]

    first = tail("--group", "g1", "--max", "4")
    rest = tail("--group", "g1")
    assert len(first) == 4
    assert len(rest) == 6
    ids = {line.rsplit("[", 1)[1].rstrip("]") for line in first + rest}
    assert ids == {f"id{n:04d}"[:8] for n in range(10)}  # none skipped, none repeated
    assert "cross-sell 国债 (segment 1; holds 存款 → conf 0.50, lift 1.50)" in first[0]
    assert tail("--group", "g1") == []  # all committed

    only_b1 = [json.loads(line) for line in tail("--group", "g2", "--branch", "b1", "--json")]
    assert sorted(a["alert_id"] for a in only_b1) == [f"id{n:04d}" for n in range(1, 10, 2)]
