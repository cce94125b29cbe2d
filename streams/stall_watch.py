"""Notice a partition that stopped moving, say what the consumer holds for it, and send it
back to its committed offset.

A partition assigned to this worker with records past its committed offset is stalled
when that offset has not moved for `XSELL_STALL_SECONDS` (rebalances and table
recoveries, when records wait by design, do not count). Our two-worker kill -9 test met
such partitions about once in 20 runs: the owner "ready", its committed offset frozen for
minutes (faust-streaming#629 reports partitions no longer fetched after rebalances).
Such a partition may never have been fetched, so the consumer knows neither its end nor
a position: the watch asks the broker for the end offsets (taking the fetched end when
later) and starts from the committed offsets Faust sought to. Each stall is logged with
Faust's and aiokafka's state for the partition (streams/compat/consumer_state.py),
counted in /metrics, and recovered by seeking the partition to its committed offset and
resuming it (records read again are harmless: state updates are idempotent). /health
reports what the last check found.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Mapping

import faust
from faust.types import TP

from rules_store.views.metrics import EngineMetrics
from streams.compat.consumer_state import committed_offsets, describe_partition
from streams.processing.progress import AgentProgress, CommitClocks, Stall

log = logging.getLogger(__name__)


class StallWatch:
    def __init__(
        self,
        app: faust.App,
        progress: Mapping[str, AgentProgress],
        metrics: EngineMetrics,
        *,
        stall_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.app, self.progress, self.metrics, self.clock = app, progress, metrics, clock
        self.stall_s = stall_s
        self.clocks = {topic: CommitClocks(stall_s=stall_s) for topic in progress}
        self.found: list[tuple[AgentProgress, Stall]] = []  # at the last check

    @property
    def interval_s(self) -> float:
        """How often `check` runs: often enough to act soon after `stall_s`."""
        return max(1.0, min(5.0, self.stall_s / 3))

    def current(self) -> list[tuple[AgentProgress, Stall]]:
        """The stalled partitions the last check found, with their agents."""
        return list(self.found)

    async def check(self) -> None:
        """Find the stalled partitions; log, count and restart each."""
        self.found = await self._find()
        for agent, stall in self.found:
            await self._restart(agent, stall)

    async def _find(self) -> list[tuple[AgentProgress, Stall]]:
        app = self.app
        now = self.clock()
        if app.rebalancing or app.in_recovery:
            for clocks in self.clocks.values():
                clocks.quiet(now)
            return []
        ours = {tp for tp in app.consumer.assignment() if tp.topic in self.progress}
        ends = await self._ends(ours) if ours else {}
        starts = await self._starts(ours) if ours else {}
        found = []
        for topic, agent in self.progress.items():
            stalls = self.clocks[topic].observe(
                {tp.partition: end for tp, end in ends.items() if tp.topic == topic},
                {tp.partition: o for tp, o in starts.items() if tp.topic == topic},
                now=now,
            )
            found += [(agent, stall) for stall in stalls]
        return found

    async def _ends(self, tps: set[TP]) -> dict[TP, int]:
        """Each partition's end: the broker's answer, or the end the last fetch saw when
        later (the embedded broker answers with the start of the last record batch)."""
        ends = dict(await self.app.consumer.highwaters(*tps))
        for tp in tps:
            try:
                fetched = self.app.consumer.highwater(tp)
            except Exception as exc:  # not fetched yet: only the broker's answer
                log.debug("no fetched end offset for %s: %s", tp, exc)
                continue
            if fetched is not None and fetched > ends.get(tp, -1):
                ends[tp] = fetched
        return ends

    async def _starts(self, tps: set[TP]) -> dict[TP, int]:
        """Where reading a partition resumes: its committed offset, or where the topic
        begins for one with none (the consumer starts at the earliest offset)."""
        starts = {tp: o for tp, o in committed_offsets(self.app).items() if tp in tps}
        if missing := tps - starts.keys():
            starts |= await self.app.consumer.earliest_offsets(*missing)
        return starts

    async def _restart(self, agent: AgentProgress, stall: Stall) -> None:
        tp = TP(agent.topic, stall.partition)
        committed = (await self._starts({tp})).get(tp)
        log.warning(
            "partition stalled topic=%s partition=%s waiting=%d idle_s=%.0f committed=%s "
            "taken_to=%s state=%s; seeking back to the committed offset",
            tp.topic,
            tp.partition,
            stall.waiting,
            stall.idle_s,
            committed,
            agent.next_offset.get(tp.partition),
            json.dumps(describe_partition(self.app, tp), default=str),
        )
        self.metrics.count_stall(tp.topic)
        try:
            if committed is not None:
                await self.app.consumer.seek(tp, committed)
            self.app.consumer.resume_partitions({tp})
        except Exception as exc:  # e.g. the broker is away: the next check tries again
            log.warning("could not restart %s: %s", tp, exc)
            return
        self.clocks[agent.topic].restarted(stall.partition, self.clock())
