"""Each partition's event-time day, and when each of its customers is next due a judgement.

Churn days close by event time: when an event of a partition is dated after the day a
customer of that partition is next due a judgement (`AssetHistory.due`), that customer's
days before the event's day are judged, so a customer who went silent after draining
their accounts is still flagged, and the others are not touched every day. The worker and
the crash tests' no-crash reference both step through this.

What is judged depends only on the customers' states and the event's own day, never on
which events the partition saw before: a worker that restarts from its committed offset
with a table written further (a crash between changelog writes) closes, when it reads
the same events again, exactly the days a run without the crash closed.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterable
from datetime import date, datetime

from rules_store.domain.alerts import ActiveView, Outgoing, after_day_close
from rules_store.domain.churn import ChurnPolicy
from rules_store.domain.events import InvalidEventError
from rules_store.domain.holdings import CustomerState
from rules_store.domain.state_codec import ClockView


class PartitionClocks:
    def __init__(self) -> None:
        self.day: dict[int, str] = {}  # partition -> latest event day seen
        self.due: dict[int, dict[str, str]] = {}  # partition -> customer -> due day
        # partition -> (due day, customer), earliest first; an entry whose day is no longer
        # the customer's due is stale and skipped when it comes up.
        self._queue: dict[int, list[tuple[str, str]]] = {}

    def learn(self, states: Iterable[CustomerState]) -> None:
        """Take partitions, days and due days from stored states (after a rebalance)."""
        self.learn_views(ClockView.of(state) for state in states)

    def learn_views(self, views: Iterable[ClockView]) -> None:
        """`learn` from what the clocks read of each state (`decode_clock_view`)."""
        for view in views:
            for partition in view.partitions:
                self._track(partition, view.customer_id, view.due)
                if view.latest and view.latest > self.day.get(partition, ""):
                    self.day[partition] = view.latest

    def track(self, partition: int, state: CustomerState) -> None:
        """Note a customer's new state: when its next judgement is due."""
        self._track(partition, state.customer_id, state.assets.due)

    def _track(self, partition: int, customer: str, when: str | None) -> None:
        customers = self.due.setdefault(partition, {})
        if when is None:
            customers.pop(customer, None)
        elif customers.get(customer) != when:
            customers[customer] = when
            heapq.heappush(self._queue.setdefault(partition, []), (when, customer))

    def close_days(
        self,
        partition: int,
        at: datetime,
        state_of: Callable[[str], CustomerState],
        *,
        active: ActiveView | None,
        churn: ChurnPolicy,
    ) -> list[tuple[CustomerState, list[Outgoing]]]:
        """An event of the partition at `at`: judge the customers due before its day; their
        changed states (tracked here) and the churn alerts to send."""
        changed = []
        for customer in self.advance(partition, at.date().isoformat()):
            stored, alerts = after_day_close(state_of(customer), at, active=active, churn=churn)
            if stored is not None:  # else nothing to judge until its state changes
                self.track(partition, stored)
                changed.append((stored, alerts))
        return changed

    def refuse_far_ahead(
        self, partition: int, day: date, *, today: date, max_future_days: int
    ) -> None:
        """Refuse an event dated more than `max_future_days` after both the partition's
        clock and today: taken, it would move the clock ahead, judge days that have not
        happened and make the partition's next events look late.

        >>> clocks = PartitionClocks()
        >>> clocks.refuse_far_ahead(0, date(2026, 12, 2), today=date(2026, 12, 1), max_future_days=1)
        >>> clocks.refuse_far_ahead(0, date(2027, 12, 1), today=date(2026, 12, 1), max_future_days=1)
        Traceback (most recent call last):
        ...
        rules_store.domain.events.InvalidEventError: event dated 2027-12-01 is more than 1 day(s) after 2026-12-01, the later of the partition's clock and today (XSELL_MAX_FUTURE_DAYS)
        """
        if (day - today).days <= max_future_days:
            return  # the usual event: within the bound of today, so of any later clock
        known = self.day.get(partition)
        latest = max(today, date.fromisoformat(known)) if known else today
        if (day - latest).days > max_future_days:
            msg = (
                f"event dated {day.isoformat()} is more than {max_future_days} day(s) after "
                f"{latest.isoformat()}, the later of the partition's clock and today "
                "(XSELL_MAX_FUTURE_DAYS)"
            )
            raise InvalidEventError(msg)

    def advance(self, partition: int, day: str) -> list[str]:
        """Note an event of `day`; the customers to judge now: those due before it. They
        leave the queue until `track` hands them their next due day.

        >>> from rules_store.domain.churn import AssetHistory
        >>> clocks = PartitionClocks()
        >>> clocks.track(0, CustomerState("c", assets=AssetHistory(due="2026-11-02")))
        >>> clocks.advance(0, "2026-11-02"), clocks.advance(0, "2026-11-03")
        ([], ['c'])
        >>> clocks.advance(0, "2026-11-04")  # judged: not again until tracked anew
        []
        """
        self.day[partition] = max(day, self.day.get(partition, day))
        queue = self._queue.get(partition)
        if not queue or queue[0][0] >= day:
            return []  # most events: nobody of the partition is due before their day
        customers, judge = self.due.get(partition, {}), []
        while queue and queue[0][0] < day:
            when, customer = heapq.heappop(queue)
            if customers.get(customer) == when:
                del customers[customer]
                judge.append(customer)
        return sorted(judge)
