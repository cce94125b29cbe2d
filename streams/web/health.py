"""What `/health` reports: each agent taking its records, the broker, Redis, the live feed.

Two levels of trouble. *Failing* (503): the worker cannot do its job and a restart or an
operator is needed: an agent has records waiting and took none for `XSELL_HEALTH_STALL_S`,
an agent's loop ended, the broker does not answer, the live feed's reader died.
*Degraded* (200, with the problems): it does its job with something missing that will
come back by itself or needs no restart: Redis unreachable while the cached bundle
serves, no bundle yet, a recovery in progress, the live feed reconnecting. A load
balancer or an orchestrator's liveness probe should act on the status code only.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass

from streams.processing.progress import AgentProgress, waiting_records
from streams.web.context import WebContext

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class HealthReport:
    failing: tuple[str, ...] = ()
    degraded: tuple[str, ...] = ()

    @property
    def status(self) -> str:
        return "failing" if self.failing else "degraded" if self.degraded else "ok"

    @property
    def http_status(self) -> int:
        return 503 if self.failing else 200


def agent_problem(
    progress: AgentProgress, waiting: int, *, now: float, stall_s: float
) -> str | None:
    """Why this agent fails, or None.

    >>> p = AgentProgress("transactions", "t", last_taken=0.0)
    >>> agent_problem(p, 120, now=31.0, stall_s=30.0)
    'agent transactions: 120 record(s) waiting on t and none taken for 31 s'
    >>> agent_problem(p, 0, now=31.0, stall_s=30.0) is None
    True
    """
    if not progress.running:
        return f"agent {progress.name}: its loop ended; restart the worker"
    idle = now - progress.last_taken
    if waiting > 0 and idle > stall_s:
        return (
            f"agent {progress.name}: {waiting} record(s) waiting on {progress.topic} "
            f"and none taken for {idle:.0f} s"
        )
    return None


async def broker_problem(bootstrap: str, timeout_s: float = 1.0) -> str | None:
    """None when a TCP connection to any bootstrap server opens within `timeout_s`."""
    tried = []
    for server in (s.strip() for s in bootstrap.split(",") if s.strip()):
        host, _, port = server.rpartition(":")
        try:
            _reader, writer = await asyncio.wait_for(
                asyncio.open_connection(host.strip("[]"), int(port)), timeout_s
            )
        except (OSError, TimeoutError, ValueError) as exc:
            tried.append(f"{server} ({type(exc).__name__})")
            continue
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
        return None
    return f"broker unreachable: {', '.join(tried) or 'no bootstrap server configured'}"


def agent_problems(ctx: WebContext) -> list[str]:
    """Each agent's problem, from its progress and its partitions' end offsets."""
    app = ctx.app
    committed = app.monitor.tp_committed_offsets
    assigned = app.consumer.assignment()
    now = time.monotonic()
    problems = []
    for agent in ctx.progress.values():
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
        waiting = waiting_records(agent, ends, ours)
        problem = agent_problem(agent, waiting, now=now, stall_s=ctx.settings.health_stall_s)
        if problem:
            problems.append(problem)
    return problems


async def assess(ctx: WebContext) -> HealthReport:
    failing, degraded = [], []
    if ctx.app.rebalancing or ctx.app.in_recovery:
        degraded.append("rebalancing or recovering tables: records wait until it ends")
    else:
        failing += agent_problems(ctx)
    broker = await broker_problem(ctx.endpoints.kafka_bootstrap)
    if broker:
        failing.append(broker)
    store = ctx.store_problem()
    if store:
        degraded.append(f"{store}; serving the cached bundle, if any")
    if ctx.active.get() is None:
        degraded.append("no active bundle: alerts wait for `xsell train ... --activate`")
    if not ctx.live.alive:
        failing.append("the live alert feed's reader stopped: restart the worker")
    elif ctx.live.started and not ctx.live.connected:
        degraded.append("the live alert feed is not reading yet")
    return HealthReport(tuple(failing), tuple(degraded))
