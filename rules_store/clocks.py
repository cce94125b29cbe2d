"""Each partition's event-time day and the customers who live in it.

Churn days close by event time: when a partition's events reach a new day, every
customer of that partition has the days before it judged, so a customer who went silent
after draining their accounts is still flagged. The worker and the crash tests'
no-crash reference both step through this.
"""

from __future__ import annotations

from collections.abc import Iterable

from rules_store.holdings import CustomerState


class PartitionClocks:
    def __init__(self) -> None:
        self.customers: dict[int, set[str]] = {}
        self.day: dict[int, str] = {}  # partition -> latest event day seen

    def learn(self, states: Iterable[CustomerState]) -> None:
        """Take partitions and days from stored states (after a restart or a rebalance)."""
        for state in states:
            for partition in {int(source.rpartition(":")[2]) for source in state.positions}:
                self.add(partition, state.customer_id)
                latest = state.assets.latest
                if latest and latest > self.day.get(partition, ""):
                    self.day[partition] = latest

    def add(self, partition: int, customer: str) -> None:
        self.customers.setdefault(partition, set()).add(customer)

    def advance(self, partition: int, day: str) -> list[str]:
        """Note an event of `day`; the customers whose earlier days are now closed
        (none unless the partition reached a new day)."""
        known = self.day.get(partition)
        self.day[partition] = max(day, known or day)
        if known is None or day <= known:
            return []
        return sorted(self.customers.get(partition, ()))
