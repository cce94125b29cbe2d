"""Acceptance per arm and product, as `xsell bundles report` prints it and the dashboard
draws it, from the counts the workers keep (rules_store/store/acceptance_store.py)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

from rules_store.domain.acceptance import ArmKey, Tally
from rules_store.domain.arms import Rate, acceptance_rate, uplift


class Line(NamedTuple):
    product: str  # "all" for the arm's total
    tally: Tally
    rate: Rate  # accepted over settled offers

    @property
    def pending(self) -> int:
        return max(self.tally.sent - self.tally.settled, 0)


class ArmReport(NamedTuple):
    arm: str  # champion | challenger
    version: str
    share: float  # of customers
    total: Line
    products: list[Line]
    uplift: float | None  # the challenger's rate against the champion's


def _line(product: str, tally: Tally) -> Line:
    return Line(product, tally, acceptance_rate(tally.accepted, tally.settled))


def arms_report(
    champion: str,
    challenger: tuple[str, float] | None,
    read: Callable[[str], Mapping[ArmKey, Tally]],
) -> list[ArmReport]:
    """The champion's and the challenger's (version, share) figures; `read` gives a
    version's counts by (version, segment, product), summed over partitions."""
    arms = [("champion", champion, 1 - challenger[1] if challenger else 1.0)]
    if challenger:
        arms.append(("challenger", challenger[0], challenger[1]))
    reports: list[ArmReport] = []
    for arm, version, share in arms:
        by_product: dict[str, Tally] = {}
        for key, tally in read(version).items():
            by_product[key.product] = by_product.get(key.product, Tally()) + tally
        total = _line("all", sum(by_product.values(), Tally()))
        lift = uplift(total.rate, reports[0].total.rate) if reports else None
        products = [_line(p, t) for p, t in sorted(by_product.items())]
        reports.append(ArmReport(arm, version, share, total, products, lift))
    return reports


def _line_json(line: Line) -> dict[str, Any]:
    t, r = line.tally, line.rate
    return {
        "product": line.product,
        "alerts": t.sent,
        "pending": line.pending,
        "accepted": t.accepted,
        "declined": t.declined,
        "ignored": t.ignored,
        "rate": r.rate,
        "low": r.low,
        "high": r.high,
    }


def arms_json(reports: list[ArmReport]) -> dict[str, Any]:
    """`GET /acceptance`: per arm its total and per-product lines."""
    return {
        "arms": [
            {
                "arm": r.arm,
                "version": r.version,
                "share": r.share,
                "uplift": r.uplift,
                **_line_json(r.total),
                "products": [_line_json(line) for line in r.products],
            }
            for r in reports
        ]
    }
