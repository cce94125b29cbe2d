"""What `/health` reports: each agent taking its records, the broker, Redis, the live feed.

Two levels of trouble. *Failing* (503): the worker cannot do its job and a restart or an
operator is needed: a partition has records waiting and its committed offset has not
moved for `XSELL_STALL_SECONDS` (the stall watch, streams/stall_watch.py, restarts it),
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
from dataclasses import dataclass

from streams.processing.progress import AgentProgress, Stall
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


def stall_problem(agent: AgentProgress, stall: Stall) -> str:
    """
    >>> stall_problem(AgentProgress("transactions", "t"), Stall(2, 120, 31.0))
    'agent transactions: partition 2 has 120 record(s) waiting on t and its committed offset has not moved for 31 s'
    """
    return (
        f"agent {agent.name}: partition {stall.partition} has {stall.waiting} record(s) "
        f"waiting on {agent.topic} and its committed offset has not moved for "
        f"{stall.idle_s:.0f} s"
    )


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
    """Agents whose loop ended, and the partitions the stall watch finds stalled."""
    ended = [
        f"agent {agent.name}: its loop ended; restart the worker"
        for agent in ctx.progress.values()
        if not agent.running
    ]
    return ended + [stall_problem(agent, stall) for agent, stall in ctx.stalls()]


async def assess(ctx: WebContext) -> HealthReport:
    failing, degraded = [], []
    if ctx.app.rebalancing or ctx.app.in_recovery:
        degraded.append("rebalancing or recovering tables: records wait until it ends")
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
