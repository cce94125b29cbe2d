"""Notice a partition that stopped moving, say what the consumer holds for it, and send it
back to its committed offset.

A partition assigned to this worker with records at its end that its agent took none of
for `XSELL_STALL_SECONDS` is stalled (never during a rebalance or a table recovery,
when records wait by design). faust-streaming has an open report of partitions that
stop being fetched after rebalances (faust-streaming#629); our kill -9 test met it about
once in 20 two-worker runs. Each stall is logged with Faust's and aiokafka's state for
the partition (streams/compat/consumer_state.py), counted in /metrics, and recovered by
seeking the partition to its committed offset and resuming it: re-read records are
harmless, state updates being idempotent. /health reports the stalls it sees.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping

import faust
from faust.types import TP

from rules_store.views.metrics import EngineMetrics
from streams.compat.consumer_state import describe_partition
from streams.processing.progress import AgentProgress, Stall, stalls

log = logging.getLogger(__name__)


class StallWatch:
    def __init__(
        self,
        app: faust.App,
        progress: Mapping[str, AgentProgress],
        metrics: EngineMetrics,
        *,
        stall_s: float,
    ) -> None:
        self.app, self.progress, self.metrics, self.stall_s = app, progress, metrics, stall_s

    @property
    def interval_s(self) -> float:
        """How often `check` runs: often enough to act soon after `stall_s`."""
        return max(1.0, min(5.0, self.stall_s / 3))

    def current(self) -> list[tuple[AgentProgress, Stall]]:
        """The stalled partitions now, with their agents."""
        app = self.app
        if app.rebalancing or app.in_recovery:
            return []
        committed = app.monitor.tp_committed_offsets
        assigned = app.consumer.assignment()
        now = time.monotonic()
        found = []
        for agent in self.progress.values():
            ends = {}
            for tp in assigned:
                if tp.topic != agent.topic:
                    continue
                try:
                    end = app.consumer.highwater(tp)
                except Exception as exc:  # not fetched yet: nothing known
                    log.debug("no end offset for %s yet: %s", tp, exc)
                    continue
                if end is not None:
                    ends[tp.partition] = end
            ours = {tp.partition: o for tp, o in committed.items() if tp.topic == agent.topic}
            found += [(agent, s) for s in stalls(agent, ends, ours, now=now, stall_s=self.stall_s)]
        return found

    async def check(self) -> None:
        """Log, count and restart each stalled partition."""
        for agent, stall in self.current():
            tp = TP(agent.topic, stall.partition)
            committed = self.app.monitor.tp_committed_offsets.get(tp)
            log.warning(
                "partition stalled topic=%s partition=%s waiting=%d idle_s=%.0f "
                "committed=%s state=%s; seeking back to the committed offset",
                tp.topic,
                tp.partition,
                stall.waiting,
                stall.idle_s,
                committed,
                json.dumps(describe_partition(self.app, tp), default=str),
            )
            self.metrics.count_stall(tp.topic)
            try:
                if committed is not None:
                    await self.app.consumer.seek(tp, committed)
                self.app.consumer.resume_partitions({tp})
            except Exception as exc:  # e.g. the broker is away: the next check tries again
                log.warning("could not restart %s: %s", tp, exc)
                continue
            agent.restarted(stall.partition)
