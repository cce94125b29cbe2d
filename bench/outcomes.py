"""Adaptive ranking against the static order and the oracle, and what the adaptive score costs.

1. Regret: `training/outcome_simulation.py`'s network (4 segments × 8 products, hidden
   acceptance = the ranker's figure × a product appeal it cannot see), ALERTS alerts per
   world, three worlds. Prints acceptance rates and cumulative regret against the oracle at
   checkpoints, and writes the regret curve to bench/results/outcomes_regret.png.
2. Cost per offer: `arrange_offers` over a customer's offers (the decline cool-down, Beta posterior +
   Thompson draw per candidate), against the baseline step it is added to: the bundle's
   precomputed offers for the customer's holdings (`OfferIndex.offers`, what the worker
   does per event today), interleaved in rounds so both see the same machine.

Run: .venv/bin/python bench/outcomes.py [--alerts N] [--rounds N]
"""

from __future__ import annotations

import argparse
import statistics
import time
from datetime import datetime
from pathlib import Path

import matplotlib as mpl

mpl.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

# The same synthetic bundle as the offers bench (bench/ is on sys.path when run as a script).
from recommend import _bundle  # type: ignore[import-not-found]
from rich.console import Console
from rich.table import Table

from rules_store.domain.acceptance import AdaptivePolicy, ArmKey, Tally
from rules_store.domain.adaptive import arrange_offers
from rules_store.domain.offers import OfferIndex
from rules_store.domain.outcomes import OfferLedger, OutcomePolicy
from training.outcome_simulation import make_world, simulate

OUT = Path(__file__).parent / "results"
TS = datetime.fromisoformat("2026-11-23T10:00:00+08:00")
POLICIES = ("static", "adaptive", "oracle")


def regret(alerts: int, console: Console) -> None:
    table = Table(title=f"Simulated outcomes: {alerts:,} alerts per world")
    for column in (
        "world",
        "alerts",
        "static rate",
        "adaptive rate",
        "oracle rate",
        "static regret",
        "adaptive regret",
        "adaptive / static regret",
    ):
        table.add_column(column, justify="right")
    figure, axes = plt.subplots(1, 3, figsize=(13, 3.6), sharey=False)
    for world_seed, ax in zip(range(3), axes, strict=True):
        world = make_world(4, 8, world_seed)
        runs = {
            p: simulate(world, alerts=alerts, seed=100 + world_seed, policy=p) for p in POLICIES
        }
        for checkpoint in (alerts // 10, alerts // 2, alerts):
            i = checkpoint - 1
            rate = {p: runs[p].hits[i] / checkpoint for p in POLICIES}
            static, adaptive = runs["static"].regret[i], runs["adaptive"].regret[i]
            table.add_row(
                str(world_seed),
                f"{checkpoint:,}",
                f"{rate['static']:.3f}",
                f"{rate['adaptive']:.3f}",
                f"{rate['oracle']:.3f}",
                f"{static:,.0f}",
                f"{adaptive:,.0f}",
                f"{adaptive / static:.2f}×",
            )
        for p, colour in zip(("static", "adaptive"), ("#e45756", "#4c78a8"), strict=True):
            ax.plot(np.arange(1, alerts + 1), runs[p].regret, label=p, color=colour)
        ax.set_title(f"world {world_seed}")
        ax.set_xlabel("alerts")
        ax.set_ylabel("cumulative regret (expected acceptances lost)")
        ax.legend()
    console.print(table)
    OUT.mkdir(exist_ok=True)
    figure.tight_layout()
    figure.savefig(OUT / "outcomes_regret.png", dpi=110)
    plt.close(figure)
    console.print(f"regret curve: {OUT / 'outcomes_regret.png'}")


def cost(rounds: int, console: Console) -> None:

    rng = np.random.default_rng(7)
    bundle = _bundle(8, rng)
    index = OfferIndex(bundle)
    names = bundle.items
    holdings = [int(rng.integers(1, 255)) for _ in range(5_000)]
    segments = [int(rng.integers(4)) for _ in holdings]
    book = {
        ArmKey("v1", s, p): Tally(int(rng.integers(50)), int(rng.integers(200)))
        for s in range(4)
        for p in names
    }
    policy, outcomes = AdaptivePolicy(), OutcomePolicy()
    ledger = OfferLedger(declined={names[0]: TS.isoformat()})  # one product cooling down

    def baseline() -> int:
        n = 0
        for s, held in zip(segments, holdings, strict=True):
            n += len(index.offers(s, held))
        return n

    def adaptive() -> int:
        n = 0
        for i, (s, held) in enumerate(zip(segments, holdings, strict=True)):
            offers = index.offers(s, held)
            n += len(
                arrange_offers(
                    offers,
                    names,
                    ledger=ledger,
                    ts=TS,
                    outcomes=outcomes,
                    adaptive=policy,
                    book=book,
                    version="v1",
                    segment=s,
                    trigger=f"c{i}/e{i}",
                )
            )
        return n

    times: dict[str, list[float]] = {"baseline": [], "adaptive": []}
    offers = baseline()
    for _ in range(rounds):
        for name, step in (("baseline", baseline), ("adaptive", adaptive)):
            start = time.perf_counter()
            step()
            times[name].append(time.perf_counter() - start)
    base = statistics.median(times["baseline"]) / len(holdings) * 1e6
    full = statistics.median(times["adaptive"]) / len(holdings) * 1e6
    added = (full - base) * len(holdings) / offers
    table = Table(
        title=f"Adaptive score cost ({len(holdings):,} events, {offers:,} offers, median of {rounds} rounds)"
    )
    for column in ("step", "µs per event", "ratio to baseline"):
        table.add_column(column, justify="right")
    table.add_row("precomputed offers (baseline)", f"{base:.2f}", "1.00×")
    table.add_row("+ adaptive score", f"{full:.2f}", f"{full / base:.2f}×")
    console.print(table)
    console.print(f"adaptive score adds {added:.2f} µs per offer (bar: 10 µs)")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--alerts", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    console = Console()
    regret(args.alerts, console)
    cost(args.rounds, console)


if __name__ == "__main__":
    main()
