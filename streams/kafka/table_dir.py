"""Where a worker keeps its RocksDB tables: a `worker-N` directory of its own.

RocksDB lets one process open a database; two workers on one machine (the two-worker
tests, or several workers sharing a volume) each need their own directory. A worker
takes the first `worker-N` whose lock no live process holds, and holds that lock until it
exits (a kill -9 releases it too), so a restarted worker usually finds its own tables
again. Which directory it gets never matters for correctness: each partition's database
is a prefix of its changelog with the offset it ends at (streams/compat/rocks_store.py),
and recovery reads the rest.
"""

from __future__ import annotations

import fcntl
import itertools
import logging
import os
from pathlib import Path

from rules_store.settings import Endpoints, Settings

log = logging.getLogger(__name__)

# Lock files held for the life of the process: closing one would release its directory.
_held: list[int] = []


def tables_base(settings: Settings, endpoints: Endpoints, app_id: str) -> Path:
    """XSELL_TABLE_DIR, else beside the embedded broker (its topics die with it: tables
    kept longer would claim offsets of topics that no longer exist), else the state dir."""
    if settings.table_dir is not None:
        return settings.table_dir / app_id
    if endpoints.stack_dir is not None:
        return endpoints.stack_dir / "tables" / app_id
    return settings.state_dir / "tables" / app_id


def claim_table_dir(base: Path) -> Path:
    """The first `base/worker-N` no live process holds, held by this one until it exits."""
    for n in itertools.count():
        path = base / f"worker-{n}"
        path.mkdir(parents=True, exist_ok=True)
        fd = os.open(path / ".lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            continue
        _held.append(fd)
        log.info("tables in %s", path)
        return path
    raise AssertionError  # pragma: no cover - itertools.count never ends
