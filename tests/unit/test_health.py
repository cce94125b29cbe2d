"""What /health concludes from agent progress, the broker and its other inputs."""

from __future__ import annotations

import asyncio
import socket

from streams.processing.progress import AgentProgress, waiting_records
from streams.web.health import HealthReport, agent_problem, broker_problem
from xsell.processes import free_port


def test_an_agent_with_records_waiting_and_nothing_taken_for_the_stall_time_fails() -> None:
    agent = AgentProgress("transactions", "t", last_taken=100.0)
    agent.took(0, 41)
    agent.last_taken = 100.0
    waiting = waiting_records(agent, {0: 50, 1: 9}, {1: 9})
    assert waiting == 8
    assert agent_problem(agent, waiting, now=129.0, stall_s=30) is None  # not yet
    assert "8 record(s) waiting on t" in str(agent_problem(agent, waiting, now=131.0, stall_s=30))
    assert agent_problem(agent, 0, now=10_000.0, stall_s=30) is None  # idle, nothing to read


def test_a_rebalance_forgets_old_offsets_and_restarts_the_stall_clock() -> None:
    agent = AgentProgress("profiles", "p", last_taken=0.0)
    agent.took(3, 99)
    agent.reassigned()
    assert agent.next_offset == {}
    assert waiting_records(agent, {3: 500}, {}) == 0  # nothing known: nothing claimed


def test_an_agent_whose_loop_ended_fails_whatever_its_partitions_hold() -> None:
    agent = AgentProgress("snapshot", "s")
    agent.running = False
    assert "loop ended" in str(agent_problem(agent, 0, now=agent.last_taken, stall_s=30))


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
