"""Champion and challenger: which bundle serves a customer, and how the two arms compare.

A customer's arm is a hash of their id, not a random draw, so every worker, every restart
and every replay puts them in the same arm, and a share of 0.2 always means the same 20%.
"""

from __future__ import annotations

import hashlib
import math
from typing import Literal, NamedTuple

Arm = Literal["champion", "challenger"]


def assign_arm(customer_id: str, share: float) -> Arm:
    """The challenger serves the customers whose id hashes below `share`.

    >>> assign_arm("C001", 0.0), assign_arm("C001", 1.0)
    ('champion', 'challenger')
    """
    digest = hashlib.sha256(f"arm\x1f{customer_id}".encode()).digest()
    position = int.from_bytes(digest[:8], "big") / 2**64  # uniform in [0, 1)
    return "challenger" if position < share else "champion"


class Rate(NamedTuple):
    """An acceptance rate with its 95% Wilson interval (sound at small counts and at 0 or 1)."""

    accepted: int
    alerts: int
    rate: float | None
    low: float | None
    high: float | None


_Z95 = 1.959963984540054


def acceptance_rate(accepted: int, alerts: int) -> Rate:
    """
    >>> r = acceptance_rate(20, 100)
    >>> round(r.rate, 2), round(r.low, 3), round(r.high, 3)
    (0.2, 0.133, 0.289)
    >>> acceptance_rate(0, 0).rate is None
    True
    """
    if alerts == 0:
        return Rate(accepted, alerts, None, None, None)
    p = accepted / alerts
    z2 = _Z95**2
    centre = (p + z2 / (2 * alerts)) / (1 + z2 / alerts)
    half = _Z95 * math.sqrt(p * (1 - p) / alerts + z2 / (4 * alerts**2)) / (1 + z2 / alerts)
    return Rate(accepted, alerts, p, max(0.0, centre - half), min(1.0, centre + half))


def uplift(challenger: Rate, champion: Rate) -> float | None:
    """The challenger's rate relative to the champion's (0.1 = 10% better), when both exist."""
    if challenger.rate is None or not champion.rate:
        return None
    return challenger.rate / champion.rate - 1
