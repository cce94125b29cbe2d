"""The contact policy: which offer, if any, a customer may be sent now (by event time).

- never a product already held (the offers already exclude them);
- not the same product again within the cool-down (default 30 days);
- at most `max_per_day` alerts per customer per day (the event's own calendar day);
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from rules_store.domain.rules import Offer


@dataclass(frozen=True)
class ContactPolicy:
    cooldown_days: int = 30
    max_per_day: int = 2


def pick_offer(
    offers: Sequence[Offer],
    items: Sequence[str],
    *,
    last_offered: Mapping[str, str],
    alert_day: str | None,
    alerts_on_day: int,
    ts: datetime,
    policy: ContactPolicy,
) -> Offer | None:
    """The best offer the policy allows now, or None.

    >>> from rules_store.domain.rules import Offer
    >>> o = [Offer(0, 0.9, None, True), Offer(1, 0.5, None, True)]
    >>> now = datetime.fromisoformat("2026-11-23T10:00:00+08:00")
    >>> pick_offer(o, ["a", "b"], last_offered={"a": "2026-11-20T09:00:00+08:00"}, alert_day=None,
    ...            alerts_on_day=0, ts=now, policy=ContactPolicy()).item
    1
    """
    if alert_day == ts.date().isoformat() and alerts_on_day >= policy.max_per_day:
        return None
    cooldown = timedelta(days=policy.cooldown_days)
    for offer in offers:
        previous = last_offered.get(items[offer.item])
        if previous is None or ts - datetime.fromisoformat(previous) >= cooldown:
            return offer
    return None
