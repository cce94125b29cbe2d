"""The churn-drop test of seed 001, kept continuously by event time.

A customer's financial assets (every product but 贷款和信用卡) are followed day by day:
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
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from typing import Any

from rules_store.catalog import FINANCIAL_ASSETS
from rules_store.events import InvalidEventError

BASELINE_MONTHS = 3


def financial_assets(balances: Mapping[str, float]) -> float:
    """The total the churn test follows: every financial asset, loans and cards excluded."""
    return round(sum(balances.get(product, 0.0) for product in FINANCIAL_ASSETS), 2)


def month_of(day: str) -> str:
    return day[:7]


def _previous_month(month: str) -> str:
    first = date.fromisoformat(f"{month}-01")
    return (first - timedelta(days=1)).isoformat()[:7]


def _month_days(month: str) -> list[str]:
    first = date.fromisoformat(f"{month}-01")
    days, day = [], first
    while day.month == first.month:
        days.append(day.isoformat())
        day += timedelta(days=1)
    return days


def _next_day(day: str) -> str:
    return (date.fromisoformat(day) + timedelta(days=1)).isoformat()


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

    def to_dict(self) -> dict[str, Any]:
        return {
            "day": self.day,
            "month_avg": self.month_avg,
            "baseline_avg": self.baseline_avg,
            "drop": self.drop,
            "days_counted": self.days_counted,
            "baseline_months": list(self.baseline_months),
        }

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> ChurnFigures:
        return cls(
            day=str(raw["day"]),
            month_avg=float(raw["month_avg"]),
            baseline_avg=float(raw["baseline_avg"]),
            drop=float(raw["drop"]),
            days_counted=int(raw["days_counted"]),
            baseline_months=tuple(str(m) for m in raw["baseline_months"]),
        )


@dataclass(frozen=True)
class AssetHistory:
    days: Mapping[str, float] = field(default_factory=dict)  # day -> end-of-day total
    months: Mapping[str, float] = field(default_factory=dict)  # month -> average daily total
    since: str | None = None  # first day whose total is known
    latest: str | None = None  # latest day of an event of this customer
    judged: str | None = None  # last closed day the drop test ran on
    alerted_month: str | None = None  # month of the last churn alert
    risk: ChurnFigures | None = None  # the alert's figures while flagged

    def to_dict(self) -> dict[str, Any]:
        return {
            "days": dict(self.days),
            "months": dict(self.months),
            "since": self.since,
            "latest": self.latest,
            "judged": self.judged,
            "alerted_month": self.alerted_month,
            "risk": self.risk.to_dict() if self.risk else None,
        }

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> AssetHistory:
        return cls(
            days={str(k): float(v) for k, v in raw.get("days", {}).items()},
            months={str(k): float(v) for k, v in raw.get("months", {}).items()},
            since=raw.get("since"),
            latest=raw.get("latest"),
            judged=raw.get("judged"),
            alerted_month=raw.get("alerted_month"),
            risk=ChurnFigures.from_dict(raw["risk"]) if raw.get("risk") else None,
        )

    @property
    def now(self) -> str | None:
        """The customer's event-time day: their latest event, or the day after the last
        day closed for them by the stream's watermark."""
        after_judged = _next_day(self.judged) if self.judged else None
        return max(filter(None, (self.latest, after_judged)), default=None)

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
        if self.since is None:
            return None
        changes = sorted(self.days.items())
        at, total, totals = 0, None, []
        for day in _month_days(month):
            if through is not None and day > through:
                break
            while at < len(changes) and changes[at][0] <= day:
                total = changes[at][1]
                at += 1
            if total is not None and day >= self.since:
                totals.append(total)
        return (sum(totals) / len(totals), len(totals)) if totals else None


def snapshot_history(record: Mapping[str, Any]) -> tuple[str | None, dict[str, float]]:
    """The optional balance history of a snapshot row: `as_of` (the day its balances close,
    YYYY-MM-DD) and `months` (YYYY-MM -> average daily financial assets)."""
    as_of, months = record.get("as_of"), record.get("months") or {}
    if as_of is not None:
        try:
            as_of = date.fromisoformat(str(as_of)).isoformat()
        except ValueError as exc:
            msg = f"snapshot field 'as_of' must be a date YYYY-MM-DD, got {as_of!r}"
            raise InvalidEventError(msg) from exc
    if not isinstance(months, Mapping):
        msg = f"snapshot field 'months' must map YYYY-MM to an average, got {months!r}"
        raise InvalidEventError(msg)
    parsed = {}
    for month, value in months.items():
        try:
            date.fromisoformat(f"{month}-01")
        except (TypeError, ValueError) as exc:
            msg = f"snapshot field 'months': {month!r} is not a month YYYY-MM"
            raise InvalidEventError(msg) from exc
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
            msg = f"snapshot field 'months': {month} must be a number >= 0, got {value!r}"
            raise InvalidEventError(msg)
        parsed[str(month)] = float(value)
    return as_of, parsed


def with_snapshot(
    history: AssetHistory, total: float, *, as_of: str | None, months: Mapping[str, float]
) -> AssetHistory:
    """The snapshot's balances (end of day `as_of`) and months table (month -> average)."""
    merged = {**history.months, **months}
    if as_of is None:
        return replace(history, months=merged)
    return replace(
        history,
        days={**history.days, as_of: total},
        months=merged,
        since=min(filter(None, (history.since, as_of))),
        latest=max(filter(None, (history.latest, as_of))),
    )


@dataclass(frozen=True)
class ChurnPolicy:
    threshold: float = 0.5  # a drop above this share raises an alert
    grace_days: int = 3  # how late an event may still correct the days it touches


DEFAULT_CHURN = ChurnPolicy()


class TooLateError(InvalidEventError):
    """An event dated before the grace period: it may no longer change closed days."""


def on_event(history: AssetHistory, day: str, total: float, policy: ChurnPolicy) -> AssetHistory:
    """The history after an event dated `day` left the financial assets at `total`.

    A late event that corrects a closed day has that day judged again (which may raise
    the month's alert: `alerted_month` changes). A customer at risk whose balance is
    back above the threshold is cleared at once.
    """
    late = is_late(history, day)
    history = with_event(history, day, total, grace_days=policy.grace_days)
    if late and history.judged is not None and day <= history.judged:
        return _judge(history, history.judged, policy.threshold)
    if history.risk and total >= (1 - policy.threshold) * history.risk.baseline_avg:
        history = replace(history, risk=None)
    return history


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
        return replace(
            history,
            days={**history.days, day: total},
            since=min(filter(None, (history.since, day))),
            latest=max(filter(None, (history.latest, day))),
        )
    if days_between(day, now) > grace_days:
        msg = f"event dated {day} is more than {grace_days} days before the customer's {now}"
        raise TooLateError(msg)
    change = round(total - history.days[max(history.days)], 2)
    days = {d: (round(v + change, 2) if d >= day else v) for d, v in history.days.items()}
    if day not in days and (before := history.total_on(day)) is not None:
        days[day] = round(before + change, 2)
    return replace(history, days=days, since=min(filter(None, (history.since, day))))


def drop_on(history: AssetHistory, day: str) -> ChurnFigures | None:
    """The drop test on `day`, or None when three months of history or the month's own
    days are missing, or the baseline is zero."""
    month = month_of(day)
    baseline_months, averages, prev = [], [], month
    for _ in range(BASELINE_MONTHS):
        prev = _previous_month(prev)
        average = history.month_average(prev)
        if average is None:
            return None
        baseline_months.append(prev)
        averages.append(average[0])
    baseline = sum(averages) / len(averages)
    current = history.month_average(month, through=day)
    if current is None or baseline <= 0:
        return None
    return ChurnFigures(  # rounded as they are shown, so a state's JSON form is exact
        day=day,
        month_avg=round(current[0], 2),
        baseline_avg=round(baseline, 2),
        drop=round(1 - current[0] / baseline, 4),
        days_counted=current[1],
        baseline_months=tuple(baseline_months),
    )


def close_days(
    history: AssetHistory, until: str, policy: ChurnPolicy
) -> tuple[AssetHistory, list[ChurnFigures]]:
    """Judge every day before `until` not judged yet; the figures of the alerts raised.

    At most one alert per customer per month: on the first closed day whose drop exceeds
    the threshold, `alerted_month` becomes that month and `risk` holds the figures.
    """
    if history.since is None:
        return history, []
    day = _next_day(history.judged) if history.judged else history.since
    alerts = []
    while day < until:
        judged = _judge(history, day, policy.threshold)
        if (figures := new_alert(history, judged)) is not None:
            alerts.append(figures)
        history, day = judged, _next_day(day)
    return _fold(history, policy.grace_days), alerts


def _judge(history: AssetHistory, day: str, threshold: float) -> AssetHistory:
    month = month_of(day)
    risk = history.risk if history.risk and month_of(history.risk.day) == month else None
    figures = drop_on(history, day)
    if figures is not None and figures.drop > threshold and history.alerted_month != month:
        risk = figures
        history = replace(history, alerted_month=month)
    elif risk is not None and figures is not None:
        total = history.total_on(day) or 0.0
        if total >= (1 - threshold) * figures.baseline_avg:
            risk = None  # the balance is back above the threshold
    return replace(history, judged=max(filter(None, (history.judged, day))), risk=risk)


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
    old = sorted({month_of(d) for d in history.days if month_of(d) < open_from})
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
    return replace(history, days=days, months=kept)
