"""The run file: how a running embedded stack tells other `xsell` commands where it is."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

from rules_store.store.files import atomic_path


@dataclass(frozen=True)
class RunInfo:
    pid: int  # the `xsell` process that owns the stack
    kafka_bootstrap: str | None
    redis_url: str | None
    broker_pid: int | None
    redis_pid: int | None
    started_at: str


def pid_alive(pid: int) -> bool:
    """True while `pid` runs; a zombie (dead, not yet reaped) counts as gone."""
    if Path("/proc/self/stat").exists():
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except FileNotFoundError:
            return False
        return stat.rpartition(")")[2].split()[0] != "Z"
    try:  # no procfs: a signal-0 probe
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def write_run_file(path: Path, info: RunInfo) -> None:
    """Write atomically, so a reader never sees half a file."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(asdict(info), indent=2), encoding="utf-8")


def read_run_file(path: Path) -> RunInfo | None:
    """The live stack's info, or None when there is no file or its owner has died."""
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        info = RunInfo(**raw)
    except (FileNotFoundError, json.JSONDecodeError, TypeError):
        return None
    return info if pid_alive(info.pid) else None


def remove_run_file(path: Path, owner_pid: int) -> None:
    """Remove the file only if it is still ours (another stack may have replaced it)."""
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (FileNotFoundError, json.JSONDecodeError):
        return
    if raw.get("pid") == owner_pid:
        path.unlink(missing_ok=True)
