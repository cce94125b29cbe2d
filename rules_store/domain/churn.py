"""The churn-drop test of seed 001, kept continuously by event time.

A customer's financial assets (the catalog's products marked `financial_asset`; in seed
001's catalog every product but 贷款和信用卡) are followed day by day:
`days` holds the end-of-day total on the days it changed, and a day without events
carries the last total forward. `months` holds closed months' average daily balances
(from the snapshot's months table, or folded from `days` once a month is past the
grace period).

A day is judged once it is closed (the stream's event time has moved past it), so a
movement undone the same day (a reversal) never raises an alert. The test on day D:
the month-to-date average daily balance through D against the mean of the previous
three months' averages; a drop above the threshold gives one alert per customer per
month. The customer stays flagged at churn risk until a day ends with the balance back
above the threshold, or the month ends.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from functools import cache
from typing import Any

from rules_store.domain.events import InvalidEventError
from rules_store.domain.frozen import evolve
from rules_store.validation import finite_number, plausible_day, show

BASELINE_MONTHS = 3


def month_of(day: str) -> str:
    return day[:7]


@cache
def _previous_month(month: str) -> str:
    first = date.fromisoformat(f"{month}-01")
    return (first - timedelta(days=1)).isoformat()[:7]


@cache
def _month_days(month: str) -> tuple[str, ...]:
    first = date.fromisoformat(f"{month}-01")
    days, day = [], first
    while day.month == first.month:
        days.append(day.isoformat())
        day += timedelta(days=1)
    return tuple(days)


@cache
def _next_month(month: str) -> str:
    return _next_day(_month_days(month)[-1])[:7]


@cache
def _next_day(day: str) -> str:
    return (date.fromisoformat(day) + timedelta(days=1)).isoformat()


@cache
def _previous_day(day: str) -> str:
    return (date.fromisoformat(day) - timedelta(days=1)).isoformat()


def days_between(first: str, last: str) -> int:
    return (date.fromisoformat(last) - date.fromisoformat(first)).days


@dataclass(frozen=True)
class ChurnFigures:
    """Why a customer is (or is not) at churn risk on a closed day."""

    day: str  # the last day counted
    month_avg: float  # month-to-date average daily financial assets
    baseline_avg: float  # mean of the previous three months' averages
    drop: float  # 1 - month_avg / baseline_avg
    days_counted: int  # days of the month counted in month_avg
    baseline_months: tuple[str, ...]


@dataclass(frozen=True)
class AssetHistory:
    days: Mapping[str, float] = field(default_factory=dict)  # day -> end-of-day total
    months: Mapping[str, float] = field(default_factory=dict)  # month -> average daily total
    since: str | None = None  # first day whose total is known
    latest: str | None = None  # latest day of an event of this customer
    judged: str | None = None  # last closed day the drop test ran on
    alerted_month: str | None = None  # month of the last churn alert
    risk: ChurnFigures | None = None  # the alert's figures while flagged
    # The first day whose close can change anything (an alert, the flag, a new month):
    # a silent customer's balance is constant, so the day its month-to-date average
    # crosses the threshold is known in advance, and the days before need no judging
    # (judging them late gives the same result: each day is judged on its own totals).
    due: str | None = None

    @property
    def now(self) -> str | None:
        """The customer's event-time day: their latest event, or the day after the last
        day closed for them by the stream's watermark."""
        judged, latest = self.judged, self.latest
        if not judged:
            return latest
        after_judged = _next_day(judged)
        return after_judged if not latest or after_judged > latest else latest

    def total_on(self, day: str) -> float | None:
        """End-of-day total on `day`, carried forward; None before anything is known."""
        if self.since is None or day < self.since:
            return None
        keys = sorted(self.days)
        at = bisect.bisect_right(keys, day)
        return self.days[keys[at - 1]] if at else None

    def month_average(self, month: str, through: str | None = None) -> tuple[float, int] | None:
        """(average daily total, days counted) of `month`, through `through` if given."""
        if through is None and month in self.months:
            return self.months[month], len(_month_days(month))
        total, count = self.month_totals(month, through)
        return (total / count, count) if count else None

    def month_totals(self, month: str, through: str | None = None) -> tuple[float, int]:
        """(sum of end-of-day totals, days counted) of `month`'s known days, through
        `through` if given.

        Walks the days the total changed, not every day of the month (the cross-sell
        path asks for a month or two per event), adding day by day as `_Carried` does,
        so the sums are the same to the last bit.
        """
        days = _month_days(month)
        first = max(days[0], self.since or days[-1])
        last = days[-1] if through is None else min(days[-1], through)
        if self.since is None or first > last:
            return 0.0, 0
        changes = sorted(self.days)
        at = bisect.bisect_right(changes, first)
        value = self.days[changes[at - 1]] if at else None
        total, count, day = 0.0, 0, int(first[8:])
        for key in changes[at:]:
            if key > last:
                break
            if value is not None:
                for _ in range(int(key[8:]) - day):
                    total += value
                    count += 1
            value, day = self.days[key], int(key[8:])
        if value is not None:
            for _ in range(int(last[8:]) + 1 - day):
                total += value
                count += 1
        return total, count


class _Carried:
    """End-of-day totals carried forward, read day by day in increasing order."""

    def __init__(self, history: AssetHistory) -> None:
        self.since = history.since
        self.changes = sorted(history.days.items())
        self.at = 0
        self.value: float | None = None

    def on(self, day: str) -> float | None:
        while self.at < len(self.changes) and self.changes[self.at][0] <= day:
            self.value = self.changes[self.at][1]
            self.at += 1
        return None if self.since is None or day < self.since else self.value


def snapshot_history(record: Mapping[str, Any]) -> tuple[str | None, dict[str, float]]:
    """The optional balance history of a snapshot row: `as_of` (the day its balances close,
    YYYY-MM-DD) and `months` (YYYY-MM -> average daily financial assets)."""
    as_of, months = record.get("as_of"), record.get("months") or {}
    if as_of is not None:
        try:
            day = date.fromisoformat(as_of) if isinstance(as_of, str) else None
        except ValueError:
            day = None
        if day is None:
            msg = f"snapshot field 'as_of' must be a date YYYY-MM-DD, got {show(as_of)}"
            raise InvalidEventError(msg)
        as_of = plausible_day(day, "snapshot field 'as_of'", InvalidEventError).isoformat()
    if not isinstance(months, Mapping):
        msg = f"snapshot field 'months' must map YYYY-MM to an average, got {show(months)}"
        raise InvalidEventError(msg)
    parsed = {}
    for month, value in months.items():
        try:
            first = date.fromisoformat(f"{month}-01")
        except (TypeError, ValueError) as exc:
            msg = f"snapshot field 'months': {show(month)} is not a month YYYY-MM"
            raise InvalidEventError(msg) from exc
        where = f"snapshot field 'months': {month}"
        plausible_day(first, where, InvalidEventError)
        average = finite_number(value, where, InvalidEventError)
        if average < 0:
            msg = f"{where} must be a number >= 0, got {average!r}"
            raise InvalidEventError(msg)
        parsed[str(month)] = average
    return as_of, parsed


MIN_BASELINE = 0.01  # average daily financial assets below which no drop is measured


@dataclass(frozen=True)
class ChurnPolicy:
    threshold: float = 0.5  # a drop above this share raises an alert
    grace_days: int = 3  # how late an event may still correct the days it touches


DEFAULT_CHURN = ChurnPolicy()


def with_snapshot(
    history: AssetHistory,
    total: float,
    *,
    as_of: str | None,
    months: Mapping[str, float],
    policy: ChurnPolicy = DEFAULT_CHURN,
) -> AssetHistory:
    """The snapshot's balances (end of day `as_of`) and months table (month -> average)."""
    merged = {**history.months, **months}
    if as_of is None:
        return evolve(history, months=merged)
    return _put_off(
        _due_now(
            evolve(
                history,
                days={**history.days, as_of: total},
                months=merged,
                since=min(filter(None, (history.since, as_of))),
                latest=max(filter(None, (history.latest, as_of))),
            )
        ),
        policy.threshold,
    )


PUT_OFF_MONTHS = 2  # months `_put_off` looks ahead: each costs a baseline, per event


class TooLateError(InvalidEventError):
    """An event dated before the grace period: it may no longer change closed days."""


def on_event(history: AssetHistory, day: str, total: float, policy: ChurnPolicy) -> AssetHistory:
    """The history after an event dated `day` left the financial assets at `total`.

    A late event that corrects a closed day has that day judged again (which may raise
    the month's alert: `alerted_month` changes). A customer at risk whose balance is
    back above the threshold is cleared at once.
    """
    now = history.now
    risk = history.risk
    if risk and total >= (1 - policy.threshold) * risk.baseline_avg:
        risk = None
    if now is None or day >= now:  # the usual event: `with_event`'s first case in one copy
        since = min(history.since, day) if history.since else day
        due = _next_day(history.judged) if history.judged else since  # `_due_now`
        latest = max(history.latest, day) if history.latest else day
        days = {**history.days, day: total}
        moved = evolve(history, days=days, since=since, latest=latest, risk=risk, due=due)
        return _put_off(moved, policy.threshold)
    history = with_event(history, day, total, grace_days=policy.grace_days)
    if history.judged is not None and day <= history.judged:
        return _judge(history, history.judged, policy.threshold)
    return _put_off(evolve(history, risk=risk), policy.threshold)


def _put_off(history: AssetHistory, threshold: float) -> AssetHistory:
    """`due` moved past the months in which nothing can happen: with no flag set and every
    total (the days known, the balance carried between them) above a month's floor, no
    month-to-date average of that month can fall below it, so it raises no alert until a
    balance moves again (and then `due` is worked out anew). Looks at the month of the
    first day not judged yet and the next one, so most customers are judged about every
    other month instead of the day after each event. In the first month, the average
    through the last day judged was at or above the floor, or no day was judged yet."""
    first = history.due
    if first is None or history.risk is not None:
        return history  # a flag clears (or its month ends) only at a judged day
    start = first
    for _ in range(PUT_OFF_MONTHS):
        month = month_of(start)
        end = f"{_next_month(month)}-01"
        if history.alerted_month != month and (baseline := _baseline(history, month)):
            floor = (1 - threshold) * baseline[0]
            carried = history.total_on(start)
            if carried is None or carried < floor:
                break
            if any(v < floor for d, v in history.days.items() if start < d < end):
                break
        start = end
    return history if start == first else evolve(history, due=start)


def is_late(history: AssetHistory, day: str) -> bool:
    """Whether an event dated `day` comes after later days of this customer were recorded."""
    return history.now is not None and day < history.now


def with_event(history: AssetHistory, day: str, total: float, *, grace_days: int) -> AssetHistory:
    """The history after an event dated `day` left the financial assets at `total` (now).

    An event on or after the customer's current day sets that day's total. An earlier
    one (late, within `grace_days`) shifts every total from its day on by the change it
    made, so the days it touches are corrected; an older one raises TooLateError.
    """
    now = history.now
    if now is None or day >= now or not history.days:
        return _due_now(
            evolve(
                history,
                days={**history.days, day: total},
                since=min(filter(None, (history.since, day))),
                latest=max(filter(None, (history.latest, day))),
            )
        )
    if days_between(day, now) > grace_days:
        msg = f"event dated {day} is more than {grace_days} days before the customer's {now}"
        raise TooLateError(msg)
    change = round(total - history.days[max(history.days)], 2)
    days = {d: (round(v + change, 2) if d >= day else v) for d, v in history.days.items()}
    if day not in days and (before := history.total_on(day)) is not None:
        days[day] = round(before + change, 2)
    return _due_now(evolve(history, days=days, since=min(filter(None, (history.since, day)))))


def _baseline(history: AssetHistory, month: str) -> tuple[float, tuple[str, ...]] | None:
    """The mean of the three previous months' averages and those months, or None when
    one is missing or the mean is zero."""
    months, closed, averages = _baseline_months(month), history.months, []
    for previous in months:
        average = closed.get(previous)  # `month_average`'s first case, without a tuple
        if average is None:
            found = history.month_average(previous)
            if found is None:
                return None
            average = found[0]
        averages.append(average)
    baseline = sum(averages) / len(averages)
    # Below a cent a month there is nothing to lose, and a ratio to it could overflow.
    return (baseline, months) if baseline >= MIN_BASELINE else None


@cache
def _baseline_months(month: str) -> tuple[str, ...]:
    """The BASELINE_MONTHS months before `month`, latest first."""
    months, previous = [], month
    for _ in range(BASELINE_MONTHS):
        previous = _previous_month(previous)
        months.append(previous)
    return tuple(months)


def _figures(
    day: str, total: float, count: int, baseline: tuple[float, tuple[str, ...]]
) -> ChurnFigures:
    average = total / count
    return ChurnFigures(  # rounded as they are shown, so a state's JSON form is exact
        day=day,
        month_avg=round(average, 2),
        baseline_avg=round(baseline[0], 2),
        drop=round(1 - average / baseline[0], 4),
        days_counted=count,
        baseline_months=baseline[1],
    )


def drop_on(history: AssetHistory, day: str) -> ChurnFigures | None:
    """The drop test on `day`, or None when three months of history or the month's own
    days are missing, or the baseline is under MIN_BASELINE."""
    baseline = _baseline(history, month_of(day))
    total, count = history.month_totals(month_of(day), through=day)
    return _figures(day, total, count, baseline) if baseline and count else None


Verdict = tuple[ChurnFigures | None, str | None, ChurnFigures | None]  # risk, alerted, raised


def _verdict(
    day: str,
    risk: ChurnFigures | None,
    alerted: str | None,
    figures: ChurnFigures | None,
    total: float | None,
    threshold: float,
) -> Verdict:
    """The flag and the month's alert after judging `day` with its figures."""
    month = month_of(day)
    if risk is not None and month_of(risk.day) != month:
        risk = None  # the month ended
    if figures is None:
        return risk, alerted, None
    if figures.drop > threshold and alerted != month:
        return figures, month, figures
    if risk is not None and (total or 0.0) >= (1 - threshold) * figures.baseline_avg:
        risk = None  # the balance is back above the threshold
    return risk, alerted, None


def close_days(
    history: AssetHistory, until: str, policy: ChurnPolicy
) -> tuple[AssetHistory, list[ChurnFigures]]:
    """Judge every day before `until` not judged yet; the figures of the alerts raised.

    At most one alert per customer per month: on the first closed day whose drop exceeds
    the threshold, `alerted_month` becomes that month and `risk` holds the figures.
    The month-to-date sums run along the days, so judging many days costs little more
    than judging one.
    """
    if history.since is None:
        return history, []
    day = _next_day(history.judged) if history.judged else history.since
    if day >= until:
        return history, []
    risk, alerted, judged = history.risk, history.alerted_month, day
    alerts = []
    carried = _Carried(history)
    while day < until:
        month = month_of(day)
        baseline = _baseline(history, month)
        total, count = history.month_totals(month, through=_previous_day(day))
        for each in _month_days(month)[int(day[8:]) - 1 :]:
            if each >= until:
                break
            if (value := carried.on(each)) is not None:
                total += value
                count += 1
            figures = _figures(each, total, count, baseline) if baseline and count else None
            risk, alerted, raised = _verdict(each, risk, alerted, figures, value, policy.threshold)
            if raised is not None:
                alerts.append(raised)
            judged = each
        day = f"{_next_month(month)}-01"
    history = evolve(history, judged=judged, risk=risk, alerted_month=alerted)
    first = _next_day(judged)
    if _must_judge(history, first):
        next_due = first
    else:  # the running sums say when, with no second pass over the month
        balance = carried.on(first)
        through = (total + balance, count + 1) if balance is not None else (total, count)
        next_due = _due_at_constant(history, first, baseline, *through, balance, policy.threshold)
    history = _put_off(evolve(history, due=next_due), policy.threshold)
    return _fold(history, policy.grace_days), alerts


def _due_now(history: AssetHistory) -> AssetHistory:
    """A balance moved: the next close judges from the first day not judged yet."""
    return evolve(history, due=_first_unjudged(history))


def _first_unjudged(history: AssetHistory) -> str | None:
    if history.since is None:
        return None
    return _next_day(history.judged) if history.judged else history.since


def _must_judge(history: AssetHistory, first: str) -> bool:
    """A new month (the baseline and the flag change), or a balance moved on a day not
    judged yet."""
    return first.endswith("-01") or bool(history.days and max(history.days) >= first)


def _due_at_constant(
    history: AssetHistory,
    first: str,
    baseline: tuple[float, tuple[str, ...]] | None,
    total: float,
    count: int,
    balance: float | None,
    threshold: float,
) -> str:
    """`due` when the balance stays at `balance` from `first` on; `total` and `count`
    are the month's sums through `first`."""
    month = month_of(first)
    next_month = f"{_next_month(month)}-01"
    if baseline is None or not count or balance is None:
        return next_month  # a new month may bring a baseline
    floor = (1 - threshold) * baseline[0]
    drop = round(1 - total / count / baseline[0], 4)
    at_risk = history.risk is not None and month_of(history.risk.day) == month
    alerts = drop > threshold and history.alerted_month != month
    if alerts or (at_risk and balance >= floor):  # an alert, or the flag clears
        return first
    if history.alerted_month == month or balance >= floor:
        return next_month  # no second alert this month; or the average never falls
    # Days after `first` at `balance`: (total + balance * n) / (count + n) < floor when
    # n > (total - floor * count) / (floor - balance). One day early, against rounding.
    n = math.floor((total - floor * count) / (floor - balance)) + 1
    crossing = (date.fromisoformat(first) + timedelta(days=max(n - 1, 0))).isoformat()
    return min(crossing, next_month)


def _judge(history: AssetHistory, day: str, threshold: float) -> AssetHistory:
    """Judge one day again (a late event corrected it)."""
    risk, alerted, _ = _verdict(
        day, history.risk, history.alerted_month, drop_on(history, day),
        history.total_on(day), threshold,
    )  # fmt: skip
    return evolve(history, risk=risk, alerted_month=alerted)


def new_alert(before: AssetHistory, after: AssetHistory) -> ChurnFigures | None:
    """The figures of the churn alert raised by one judgement, if it raised one."""
    if after.alerted_month != before.alerted_month and after.risk is not None:
        return after.risk
    return None


def _fold(history: AssetHistory, grace_days: int) -> AssetHistory:
    """Close months no late event can reach any more: their days become one average, and
    only the months the baseline needs are kept."""
    now = history.now
    if now is None:
        return history
    open_from = month_of((date.fromisoformat(now) - timedelta(days=grace_days)).isoformat())
    # Every month from the first recorded day's, including months carried forward whole
    # (no event in them): their average is lost once their earlier days are dropped.
    old, month = [], month_of(min(history.days)) if history.days else open_from
    while month < open_from:
        old.append(month)
        month = _next_month(month)
    if not old:
        return history
    months = dict(history.months)
    for month in old:
        if month not in months and (average := history.month_average(month)) is not None:
            months[month] = average[0]
    # The last old day stays: later days carry its total forward.
    last_old = max(d for d in history.days if month_of(d) < open_from)
    days = {d: v for d, v in history.days.items() if d >= last_old}
    keep, month = set(), open_from
    for _ in range(BASELINE_MONTHS):
        month = _previous_month(month)
        keep.add(month)
    kept = {m: v for m, v in months.items() if m in keep or m >= open_from}
    return evolve(history, days=days, months=kept)
