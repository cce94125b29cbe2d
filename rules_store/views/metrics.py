"""A worker's figures and their Prometheus text form: plain counting, no I/O.

The worker counts where it already handles each thing (an event taken, an alert queued,
a dead letter queued); `/metrics` renders the counts with the figures only the web side
knows (consumer lag, the active bundle) in Prometheus' text exposition format 0.0.4.
"""

from __future__ import annotations

import time
from bisect import bisect_left
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

# Event→alert latency in seconds: from tens of milliseconds (a quiet worker) to the
# seconds a saturated one or a held fetch on the embedded broker takes.
LATENCY_BUCKETS_S: tuple[float, ...] = (
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
)


@dataclass
class Histogram:
    """Cumulative-bucket histogram as Prometheus exposes it.

    >>> h = Histogram((0.1, 1.0))
    >>> for v in (0.05, 0.5, 5.0): h.observe(v)
    >>> h.cumulative(), h.count, round(h.total, 2)
    ([1, 2, 3], 3, 5.55)
    """

    bounds: tuple[float, ...] = LATENCY_BUCKETS_S
    counts: list[int] = field(default_factory=list)  # per bucket, the last one is +Inf
    count: int = 0
    total: float = 0.0

    def __post_init__(self) -> None:
        if not self.counts:
            self.counts = [0] * (len(self.bounds) + 1)

    def observe(self, value: float) -> None:
        self.counts[bisect_left(self.bounds, value)] += 1
        self.count += 1
        self.total += value

    def cumulative(self) -> list[int]:
        out, running = [], 0
        for n in self.counts:
            running += n
            out.append(running)
        return out


@dataclass
class EngineMetrics:
    """What one worker has done since it started."""

    events_in: Counter[str] = field(default_factory=Counter)  # by input: transactions, ...
    alerts: Counter[str] = field(default_factory=Counter)  # by type: cross_sell, churn, ...
    dead_letters: int = 0
    stalls: Counter[str] = field(default_factory=Counter)  # by input topic
    # Profile fields whose value was outside their list and got the unknown code, by field.
    unseen_values: Counter[str] = field(default_factory=Counter)
    latency: Histogram = field(default_factory=Histogram)

    def count_events(self, source: str, n: int = 1) -> None:
        self.events_in[source] += n

    def count_dead_letter(self) -> None:
        self.dead_letters += 1

    def count_stall(self, topic: str) -> None:
        self.stalls[topic] += 1

    def count_unseen(self, fields: Iterable[str]) -> None:
        self.unseen_values.update(fields)

    def count_alerts(
        self,
        kinds: Iterable[str],
        *,
        event_ts_s: float | None = None,
        now_s: float | None = None,
    ) -> None:
        """Count alerts by type; with the triggering event's Kafka timestamp, observe the
        event→alert latency of each (alerts raised by a day close have no such event)."""
        now = time.time() if now_s is None else now_s
        for kind in kinds:
            self.alerts[kind] += 1
            if event_ts_s is not None:
                self.latency.observe(max(0.0, now - event_ts_s))


ALERT_TYPES: tuple[str, ...] = ("cross_sell", "retention", "churn")
INPUTS: tuple[str, ...] = ("transactions", "profiles", "snapshot")


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _number(value: float) -> str:
    return repr(float(value)) if isinstance(value, float) else str(value)


def render_prometheus(
    metrics: EngineMetrics,
    *,
    bundle_version: str | None,
    lag: Mapping[str, int],
) -> str:
    """The metrics in Prometheus' text format; `lag` is records behind per input topic.

    >>> text = render_prometheus(EngineMetrics(), bundle_version="v1", lag={"t": 3})
    >>> 'xsell_consumer_lag{topic="t"} 3' in text, 'xsell_bundle_info{version="v1"} 1' in text
    (True, True)
    """
    lines: list[str] = []

    def family(name: str, kind: str, help_text: str) -> None:
        lines.append(f"# HELP {name} {help_text}")
        lines.append(f"# TYPE {name} {kind}")

    family("xsell_events_in_total", "counter", "Input records taken by this worker, by input.")
    for source in sorted(set(INPUTS) | set(metrics.events_in)):
        lines.append(
            f'xsell_events_in_total{{input="{_label(source)}"}} {metrics.events_in[source]}'
        )
    family("xsell_alerts_total", "counter", "Alerts this worker queued for sending, by type.")
    for kind in sorted(set(ALERT_TYPES) | set(metrics.alerts)):
        lines.append(f'xsell_alerts_total{{type="{_label(kind)}"}} {metrics.alerts[kind]}')
    family("xsell_dead_letters_total", "counter", "Invalid records sent to the dead-letter topic.")
    lines.append(f"xsell_dead_letters_total {metrics.dead_letters}")
    family(
        "xsell_partition_stalls_total",
        "counter",
        "Partitions found stalled (records waiting, none taken) and sent back to their "
        "committed offset, by input topic.",
    )
    for topic in sorted(metrics.stalls):
        lines.append(
            f'xsell_partition_stalls_total{{topic="{_label(topic)}"}} {metrics.stalls[topic]}'
        )
    family(
        "xsell_unseen_values_total",
        "counter",
        "Profile values outside their field's list, encoded as the unknown code, by field.",
    )
    for name in sorted(metrics.unseen_values):
        lines.append(
            f'xsell_unseen_values_total{{field="{_label(name)}"}} {metrics.unseen_values[name]}'
        )
    family(
        "xsell_consumer_lag",
        "gauge",
        "Records not yet committed on this worker's partitions, by input topic.",
    )
    for topic in sorted(lag):
        lines.append(f'xsell_consumer_lag{{topic="{_label(topic)}"}} {lag[topic]}')
    name = "xsell_event_to_alert_seconds"
    family(name, "histogram", "From the triggering event's Kafka timestamp to the alert queued.")
    histogram = metrics.latency
    for bound, n in zip((*histogram.bounds, None), histogram.cumulative(), strict=True):
        le = "+Inf" if bound is None else _number(bound)
        lines.append(f'{name}_bucket{{le="{le}"}} {n}')
    lines.append(f"{name}_sum {_number(histogram.total)}")
    lines.append(f"{name}_count {histogram.count}")
    family("xsell_bundle_info", "gauge", "The bundle version this worker serves (value 1).")
    if bundle_version is not None:
        lines.append(f'xsell_bundle_info{{version="{_label(bundle_version)}"}} 1')
    return "\n".join(lines) + "\n"
