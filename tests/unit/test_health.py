"""What /health concludes from agent progress, the broker and its other inputs."""

from __future__ import annotations

import asyncio
import socket
from types import SimpleNamespace

from streams.processing.progress import AgentProgress, CommitClocks
from streams.web.health import HealthReport, agent_problems, broker_problem, stall_problem
from xsell.processes import free_port


def test_a_commit_that_stands_still_while_records_wait_stalls_its_partition_only() -> None:
    clocks = CommitClocks(stall_s=30)
    ends, committed = {0: 50, 1: 9, 2: 6}, {0: 42, 1: 9, 2: 6}
    assert clocks.observe(ends, committed, now=100.0) == []
    assert clocks.observe(ends, committed, now=129.0) == []  # not yet
    (stall,) = clocks.observe(ends, committed, now=131.0)
    assert (stall.partition, stall.waiting) == (0, 8)  # 1 and 2 are read to their end
    agent = AgentProgress("transactions", "t")
    assert "partition 0 has 8 record(s) waiting on t" in stall_problem(agent, stall)
    # Partition 2 gets records and commits them as they come: only 0 stalls.
    assert [s.partition for s in clocks.observe({**ends, 2: 9}, committed, now=140.0)] == [0]
    assert [
        s.partition for s in clocks.observe({**ends, 2: 12}, {**committed, 2: 9}, now=180.0)
    ] == [0]


def test_a_rebalance_a_restart_or_a_partition_moving_away_starts_the_time_again() -> None:
    clocks = CommitClocks(stall_s=30)
    clocks.observe({3: 500}, {3: 400}, now=0.0)
    clocks.quiet(20.0)
    assert clocks.observe({3: 500}, {3: 400}, now=45.0) == []
    clocks.restarted(3, 60.0)
    assert clocks.observe({3: 500}, {3: 400}, now=85.0) == []
    assert clocks.observe({}, {}, now=95.0) == []  # no longer ours: forgotten
    assert clocks.observe({3: 500}, {3: 400}, now=100.0) == []


def test_an_agent_whose_loop_ended_fails_whatever_its_partitions_hold() -> None:
    agent = AgentProgress("snapshot", "s")
    agent.running = False
    ctx = SimpleNamespace(progress={"s": agent}, stalls=list)
    assert agent_problems(ctx) == ["agent snapshot: its loop ended; restart the worker"]  # type: ignore[arg-type]


def test_failing_gives_503_and_degraded_still_200() -> None:
    assert (HealthReport().status, HealthReport().http_status) == ("ok", 200)
    degraded = HealthReport(degraded=("Redis: down",))
    assert (degraded.status, degraded.http_status) == ("degraded", 200)
    failing = HealthReport(failing=("broker unreachable",), degraded=("Redis: down",))
    assert (failing.status, failing.http_status) == ("failing", 503)


def test_the_broker_probe_tells_a_listening_port_from_a_closed_one() -> None:
    with socket.create_server(("127.0.0.1", 0)) as server:
        port = server.getsockname()[1]
        assert asyncio.run(broker_problem(f"127.0.0.1:{port}")) is None
        closed = free_port()
        assert asyncio.run(broker_problem(f"127.0.0.1:{closed},127.0.0.1:{port}")) is None
    problem = asyncio.run(broker_problem(f"127.0.0.1:{closed}"))
    assert problem is not None
    assert problem.startswith(f"broker unreachable: 127.0.0.1:{closed}")
