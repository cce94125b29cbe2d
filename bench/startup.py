"""Start-up figures of the embedded runtime, as ratios against baselines measured in this run.

1. Embedded stack (Tansu + redis-server until a metadata request and a PING succeed),
   against the cost of starting a bare Python interpreter on this machine.
2. Faust worker: process start -> partitions assigned, with the embedded group timing
   (streams/kafka/app.py) against Faust's default timing on the same broker.

Run: make bench   (or .venv/bin/python bench/startup.py --runs 5)
"""

from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.progress import track
from rich.table import Table

from rules_store.settings import Settings
from streams.kafka.clients import ensure_topics
from xsell.embedded import EmbeddedStack

HERE = Path(__file__).resolve().parent


def _python_start_s() -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", "pass"], check=True)
    return time.perf_counter() - started


def _stack_start_s(state_dir: Path) -> float:
    started = time.perf_counter()
    with EmbeddedStack(Settings(state_dir=state_dir), announce=False):
        return time.perf_counter() - started


def _join_s(stack: EmbeddedStack, profile: str, topic: str) -> float:
    result = subprocess.run(
        [
            sys.executable,
            str(HERE / "join_worker.py"),
            stack.endpoints.kafka_bootstrap,
            profile,
            topic,
        ],
        capture_output=True,
        text=True,
        timeout=180,
        cwd=HERE.parent,
        check=False,
    )
    found = re.search(r"ASSIGNED (\d+\.\d+)", result.stdout + result.stderr)
    if found:
        return float(found.group(1))
    msg = f"{profile} worker never got partitions:\n{result.stderr[-2000:]}"
    raise RuntimeError(msg)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=5, help="repetitions of each fast measurement")
    parser.add_argument(
        "--default-runs",
        type=int,
        default=1,
        help="repetitions with Faust's default timing (~30 s each)",
    )
    args = parser.parse_args()
    console = Console()
    state = Path(tempfile.mkdtemp(prefix="xsell-bench-"))

    python_s = [_python_start_s() for _ in track(range(args.runs), description="python start")]
    stack_s = [_stack_start_s(state) for _ in track(range(args.runs), description="embedded stack")]

    with EmbeddedStack(Settings(state_dir=state), announce=False) as stack:
        ensure_topics(stack.settings, stack.endpoints, ("bench.join",))
        tuned = [
            _join_s(stack, "tuned", "bench.join")
            for _ in track(range(args.runs), description="join, tuned")
        ]
        default = [
            _join_s(stack, "default", "bench.join")
            for _ in track(range(args.default_runs), description="join, Faust default")
        ]

    table = Table(title="embedded runtime start-up (median of runs; min-max)", title_justify="left")
    for column in ("figure", "median", "range", "baseline", "ratio"):
        table.add_column(column, justify="right" if column != "figure" else "left")

    def row(name: str, values: list[float], base_name: str, base: list[float]) -> None:
        med, base_med = statistics.median(values), statistics.median(base)
        table.add_row(
            name,
            f"{med:.2f} s",
            f"{min(values):.2f}-{max(values):.2f}",
            f"{base_name} {base_med:.2f} s",
            f"{med / base_med:.2f}x",
        )

    row("stack ready (broker + Redis)", stack_s, "python -c pass", python_s)
    row("worker start -> partitions assigned", tuned, "Faust default timing", default)
    console.print(table)


if __name__ == "__main__":
    main()
