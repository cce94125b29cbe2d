from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from xsell.runfile import RunInfo, pid_alive, read_run_file, remove_run_file, write_run_file


def _info(pid: int) -> RunInfo:
    return RunInfo(
        pid=pid,
        kafka_bootstrap="127.0.0.1:1",
        redis_url="redis://127.0.0.1:2/0",
        broker_pid=None,
        redis_pid=None,
        started_at="2026-01-01T00:00:00+00:00",
    )


def _dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_run_file_round_trips_for_a_live_owner(tmp_path: Path) -> None:
    path = tmp_path / "embedded.json"
    write_run_file(path, _info(os.getpid()))
    assert read_run_file(path) == _info(os.getpid())


def test_run_file_of_a_dead_owner_is_ignored(tmp_path: Path) -> None:
    path = tmp_path / "embedded.json"
    write_run_file(path, _info(_dead_pid()))
    assert read_run_file(path) is None


def test_missing_or_corrupt_run_file_reads_as_no_stack(tmp_path: Path) -> None:
    path = tmp_path / "embedded.json"
    assert read_run_file(path) is None
    path.write_text("{not json", encoding="utf-8")
    assert read_run_file(path) is None


def test_run_file_is_removed_only_by_its_owner(tmp_path: Path) -> None:
    path = tmp_path / "embedded.json"
    write_run_file(path, _info(os.getpid()))
    remove_run_file(path, owner_pid=os.getpid() + 1)
    assert path.exists()
    remove_run_file(path, owner_pid=os.getpid())
    assert not path.exists()


def test_zombie_process_counts_as_dead() -> None:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    try:
        os.waitid(os.P_PID, process.pid, os.WEXITED | os.WNOWAIT)  # exited, not yet reaped
        assert not pid_alive(process.pid)
    finally:
        process.wait()
    assert pid_alive(os.getpid())
