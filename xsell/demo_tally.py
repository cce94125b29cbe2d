"""What `xsell demo` counts while alerts arrive: by type, dead letters, event→alert latency."""

from __future__ import annotations

from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass
class Tally:
    sent_at: dict[str, float]  # event_id -> wall-clock send time (the replay fills it)
    alerts: Counter[str] = field(default_factory=Counter)
    dead_letters: int = 0
    latencies_ms: list[float] = field(default_factory=list)
    recent: deque[tuple[str, dict[str, Any], float | None]] = field(
        default_factory=lambda: deque(maxlen=12)
    )
    churned: set[str] = field(default_factory=set)  # customers with a churn alert

    def add(self, kind: str, record: dict[str, Any], broker_ts_ms: int) -> None:
        """One record from an output topic; `broker_ts_ms` is when the worker produced it."""
        if kind == "dead_letters":
            self.dead_letters += 1
            self.recent.append((kind, record, None))
            return
        self.alerts[str(record.get("type", kind))] += 1
        if record.get("type") == "churn":
            self.churned.add(str(record.get("customer_id")))
        sent = self.sent_at.get(str(record.get("event_id")))
        latency = None if sent is None else max(broker_ts_ms / 1000 - sent, 0.0) * 1000
        if latency is not None:
            self.latencies_ms.append(latency)
        self.recent.append((kind, record, latency))

    def latency_ms(self, q: float) -> float | None:
        """The q-th percentile of event→alert latency, or None before the first alert."""
        return float(np.percentile(self.latencies_ms, q)) if self.latencies_ms else None
