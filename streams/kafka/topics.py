"""Every topic name the engine uses, built in one place from the configured prefix."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class TopicNames:
    """The engine's topics; `all()` is what gets created before any client uses them.

    >>> TopicNames("bank1").cross_sell_alerts
    'bank1.alerts.cross_sell'
    """

    prefix: str

    @property
    def transactions(self) -> str:
        return f"{self.prefix}.transactions"

    @property
    def profiles(self) -> str:
        return f"{self.prefix}.profiles"

    @property
    def holdings_snapshot(self) -> str:
        return f"{self.prefix}.holdings.snapshot"

    @property
    def outcomes(self) -> str:
        """Answers to offers, keyed by customer id like the transactions (co-partitioned)."""
        return f"{self.prefix}.outcomes"

    @property
    def cross_sell_alerts(self) -> str:
        return f"{self.prefix}.alerts.cross_sell"

    @property
    def churn_alerts(self) -> str:
        return f"{self.prefix}.alerts.churn"

    @property
    def dead_letters(self) -> str:
        return f"{self.prefix}.dead_letters"

    @property
    def engine_group(self) -> str:
        """The workers' Faust app id, which is also their consumer group."""
        return f"{self.prefix}-engine"

    @property
    def holdings_changelog(self) -> str:
        """Faust's changelog of the workers' holdings table (Faust creates it)."""
        return f"{self.engine_group}-holdings-changelog"

    def all(self) -> tuple[str, ...]:
        return (
            self.transactions,
            self.profiles,
            self.holdings_snapshot,
            self.outcomes,
            self.cross_sell_alerts,
            self.churn_alerts,
            self.dead_letters,
        )
