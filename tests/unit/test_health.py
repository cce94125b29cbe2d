"""What /health concludes from agent progress, the broker and its other inputs."""

from __future__ import annotations

import asyncio
import socket
from types import SimpleNamespace

from streams.processing.progress import AgentProgress, stalls
from streams.web.health import HealthReport, agent_problems, broker_problem, stall_problem
from xsell.processes import free_port


def test_a_partition_with_records_waiting_and_nothing_taken_for_the_stall_time_stalls() -> None:
    agent = AgentProgress("transactions", "t", since=0.0)
    agent.took(0, 41)
    agent.took(2, 5)
    agent.taken_at.update({0: 100.0, 2: 100.0})
    ends, committed = {0: 50, 1: 9, 2: 6}, {1: 9}
    assert stalls(agent, ends, committed, now=129.0, stall_s=30) == []  # not yet
    (stall,) = stalls(agent, ends, committed, now=131.0, stall_s=30)
    assert (stall.partition, stall.waiting) == (0, 8)  # 1 and 2 are read to their end
    assert "partition 0 has 8 record(s) waiting on t" in stall_problem(agent, stall)
    # Partition 2 has records again and took one lately: only 0 stalls.
    agent.took(2, 6)
    agent.taken_at[2] = 120.0
    assert [s.partition for s in stalls(agent, {**ends, 2: 9}, {}, now=131.0, stall_s=30)] == [0]


def test_a_rebalance_forgets_old_offsets_and_restarts_the_stall_clock() -> None:
    agent = AgentProgress("profiles", "p", since=0.0)
    agent.took(3, 99)
    agent.reassigned()
    assert agent.next_offset == {}
    assert stalls(agent, {3: 500}, {}, now=agent.since + 60, stall_s=30) == []  # nothing known
    assert stalls(agent, {3: 500}, {3: 400}, now=agent.since + 29, stall_s=30) == []
    assert stalls(agent, {3: 500}, {3: 400}, now=agent.since + 31, stall_s=30)[0].waiting == 100


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
