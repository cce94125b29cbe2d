"""`xsell up` in a real subprocess: other commands find it; nothing outlives it, however it ends."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from xsell.runfile import RunInfo, pid_alive, read_run_file

XSELL = str(Path(sys.executable).with_name("xsell"))


def _start_up(state_dir: Path) -> tuple[subprocess.Popen[str], RunInfo]:
    process = subprocess.Popen(
        [XSELL, "up"],
        env={**os.environ, "XSELL_STATE_DIR": str(state_dir)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        info = read_run_file(state_dir / "embedded.json")
        if info is not None:
            return process, info
        if process.poll() is not None:
            break
        time.sleep(0.1)
    process.kill()
    out, err = process.communicate()
    pytest.fail(f"`xsell up` did not announce a stack:\n{out}\n{err}")


def _wait_gone(pids: list[int], within_s: float = 15.0) -> list[int]:
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        alive = [pid for pid in pids if pid_alive(pid)]
        if not alive:
            return []
        time.sleep(0.1)
    return [pid for pid in pids if pid_alive(pid)]


@pytest.mark.parametrize("how", ["SIGINT", "SIGTERM", "SIGKILL"])
def test_no_broker_or_redis_outlives_xsell_up(tmp_path: Path, how: str) -> None:
    process, info = _start_up(tmp_path)
    children = [pid for pid in (info.broker_pid, info.redis_pid) if pid is not None]
    assert len(children) == 2
    assert all(pid_alive(pid) for pid in children)

    process.send_signal(getattr(signal, how))
    _, err = process.communicate(timeout=30)

    assert _wait_gone(children) == [], f"orphans left behind after {how}:\n{err}"
    if how == "SIGKILL":
        assert read_run_file(tmp_path / "embedded.json") is None  # stale: owner is dead
    else:
        assert process.returncode == 0, err
        assert "embedded stack stopped" in err
        assert not (tmp_path / "embedded.json").exists()
        assert not (tmp_path / "stacks" / str(info.pid)).exists()


def test_other_commands_find_the_running_stack_and_a_second_up_is_refused(
    tmp_path: Path,
) -> None:
    process, info = _start_up(tmp_path)
    env = {**os.environ, "XSELL_STATE_DIR": str(tmp_path)}
    try:
        doctor = subprocess.run(
            [XSELL, "doctor"], env=env, capture_output=True, text=True, timeout=60, check=False
        )
        assert doctor.returncode == 0, doctor.stdout + doctor.stderr
        assert str(info.kafka_bootstrap) in doctor.stdout
        assert "healthy" in doctor.stdout

        second = subprocess.run(
            [XSELL, "up"], env=env, capture_output=True, text=True, timeout=60, check=False
        )
        assert second.returncode == 1
        assert f"already running (pid {info.pid}" in second.stderr
    finally:
        process.send_signal(signal.SIGINT)
        process.communicate(timeout=30)
