"""Each worker's RocksDB tables in a directory of its own, released when it dies."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

from rules_store.settings import Endpoints, Settings
from streams.kafka.table_dir import claim_table_dir, tables_base

HOLD = """
import sys, time
from pathlib import Path
from streams.kafka.table_dir import claim_table_dir
print(claim_table_dir(Path(sys.argv[1])).name, flush=True)
time.sleep(60)
"""


def test_two_workers_of_one_machine_get_two_directories(tmp_path: Path) -> None:
    first, second = claim_table_dir(tmp_path), claim_table_dir(tmp_path)
    assert (first.name, second.name) == ("worker-0", "worker-1")


def test_a_killed_workers_directory_goes_to_the_next_worker(tmp_path: Path) -> None:
    with subprocess.Popen(
        [sys.executable, "-c", HOLD, str(tmp_path)], stdout=subprocess.PIPE, text=True
    ) as holder:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "worker-0"
        assert claim_table_dir(tmp_path).name == "worker-1"  # held by the live process
        holder.send_signal(signal.SIGKILL)
    assert claim_table_dir(tmp_path).name == "worker-0"


def test_tables_live_beside_the_embedded_broker_unless_configured(tmp_path: Path) -> None:
    embedded = Endpoints("b:1", "redis://r", True, True, stack_dir=tmp_path / "stack")
    cluster = Endpoints("b:1", "redis://r", False, False)
    settings = Settings(state_dir=tmp_path / "state")
    assert tables_base(settings, embedded, "g") == tmp_path / "stack" / "tables" / "g"
    assert tables_base(settings, cluster, "g") == tmp_path / "state" / "tables" / "g"
    configured = Settings(state_dir=tmp_path / "state", table_dir=tmp_path / "t")
    assert tables_base(configured, embedded, "g") == tmp_path / "t" / "g"
