"""Two checkouts' workers on one embedded stack, alternating: is a change faster?

On a shared machine the figures of `bench/stream.py` move by half from one run to the
next, more than most changes. Here the worker code of two checkouts runs in turns (A B,
then B A, ...) on the same broker, bundle and events, so both see the same noise:

- drain: one worker drains N queued events (events/s, as `bench/stream.py`), and the
  worker's CPU seconds over its life (start-up included: the steps' cost, less noisy
  than the rate, which the group's commits every ~3 s quantize);
- latency: one worker while events are replayed at RATE/s for 15 s (event→alert p50/p99).

The worker of a checkout is `xsell worker` run with PYTHONPATH at that checkout (this
venv's packages, that checkout's code) and PYTHONSAFEPATH set: `python -m` otherwise puts
the current directory first on the path, and from a checkout's root both sides ran that
checkout's code. Each side's code is checked before the rounds. Make the other checkout
with, for instance, `git worktree add /tmp/before <commit>`.

Run: .venv/bin/python bench/stream_ab.py --before /tmp/before [--after .] [--rounds 2]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from rich.console import Console
from rich.table import Table

# bench/ is on sys.path when run as a script: the stream bench's scenario and figures.
from stream import CUSTOMERS, Scenario, drain_rate, latency  # type: ignore[import-not-found]

from rules_store.bundle.schema import RETAIL_SCHEMA
from rules_store.settings import Settings
from training.event_generator import EventPlan, generate_events
from training.generate import generate_retail, write_retail
from training.retail import TrainParams, train_retail
from xsell.embedded import EmbeddedStack
from xsell.replaying import History, snapshot_lines

console = Console()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--before", type=Path, required=True, help="the baseline checkout")
    parser.add_argument("--after", type=Path, default=Path(__file__).resolve().parents[1])
    parser.add_argument("--rounds", type=int, default=2, help="turns of each checkout")
    parser.add_argument("--events", type=int, default=100_000, help="events to drain")
    parser.add_argument("--rate", type=float, default=5_000, help="replay rate for latency")
    args = parser.parse_args()
    checkouts = {"before": args.before.resolve(), "after": args.after.resolve()}
    for name, path in checkouts.items():
        if not (path / "streams" / "worker.py").is_file():
            parser.error(f"--{name} {path} is not a checkout of this project")
    for name, path in checkouts.items():
        found = _code_of(path)
        if found != path:
            parser.error(f"--{name}: a worker would run the code in {found}, not {path}")
    workdir = Path(tempfile.mkdtemp(prefix="xsell-bench-ab-"))
    os.environ["XSELL_STATE_DIR"] = str(workdir / "state")
    frame = generate_retail(CUSTOMERS, seed=3, dirty_share=0.0)
    write_retail(frame, workdir / "customers.del", "del")
    bundle = train_retail(workdir / "customers.del", RETAIL_SCHEMA, TrainParams(seed=3)).bundle
    plan = EventPlan(days=30, events_per_customer_day=args.events / (CUSTOMERS * 30), drainers=50)
    generated = generate_events(frame, RETAIL_SCHEMA, plan)
    snapshot, _ = snapshot_lines(
        frame, RETAIL_SCHEMA.id_column, History(plan.as_of, generated.months)
    )
    replayed = generated.lines[: int(args.rate * 15)]
    drains: dict[str, list[float]] = {name: [] for name in checkouts}
    cpus: dict[str, list[float]] = {name: [] for name in checkouts}
    p99s: dict[str, list[float]] = {name: [] for name in checkouts}
    table = Table(title=f"A/B on one stack, {args.rounds} round(s); work dir {workdir}")
    columns = (
        "round",
        "checkout",
        "drain events/s",
        "worker CPU",
        f"latency at {args.rate:,.0f}/s",
    )
    for column in columns:
        table.add_column(column)
    with EmbeddedStack(Settings(state_dir=workdir / "state")) as stack:
        for turn in range(args.rounds):
            order = list(checkouts) if turn % 2 == 0 else list(reversed(checkouts))
            for name in order:
                _run_code_of(checkouts[name])
                cpu: list[float] = []
                scenario = Scenario(stack, bundle, snapshot, workdir)
                rate = drain_rate(scenario, generated.lines, 1, cpu)
                p50, p99 = latency(Scenario(stack, bundle, snapshot, workdir), replayed, args.rate)
                drains[name].append(rate)
                cpus[name].append(cpu[0])
                p99s[name].append(p99 or float("nan"))
                shown = f"p50 {p50:,.0f} ms, p99 {p99:,.0f} ms" if p50 and p99 else "no alerts"
                table.add_row(str(turn + 1), name, f"{rate:,.0f}", f"{cpu[0]:.1f} s", shown)
                console.print(
                    f"round {turn + 1} {name}: {rate:,.0f} events/s, CPU {cpu[0]:.1f} s, {shown}"
                )
    drain_ratio = statistics.median(drains["after"]) / statistics.median(drains["before"])
    cpu_ratio = statistics.median(cpus["after"]) / statistics.median(cpus["before"])
    p99_ratio = statistics.median(p99s["after"]) / statistics.median(p99s["before"])
    table.add_row(
        "median",
        "after / before",
        f"{drain_ratio:.2f}x",
        f"{cpu_ratio:.2f}x",
        f"p99 {p99_ratio:.2f}x",
    )
    console.print(table)


def _run_code_of(checkout: Path) -> None:
    """Workers started from now on (they inherit the environment) run `checkout`'s code."""
    os.environ["PYTHONPATH"] = str(checkout)
    os.environ["PYTHONSAFEPATH"] = "1"  # no current directory ahead of PYTHONPATH


def _code_of(checkout: Path) -> Path:
    """The checkout whose code a worker started with `checkout`'s environment imports."""
    _run_code_of(checkout)
    found = subprocess.run(
        [sys.executable, "-c", "import streams.worker as w; print(w.__file__)"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    return Path(found).resolve().parents[1]


if __name__ == "__main__":
    main()
