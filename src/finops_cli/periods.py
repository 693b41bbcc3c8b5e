"""Time windows: UTC, start inclusive, end exclusive, always.

A window given as dates ``--start 2024-09-01 --end 2024-10-01`` covers all of September
and nothing of October 1st. ``--end`` is exclusive everywhere in finops, like in FOCUS
and Cost Explorer; the classic peer bug is to treat it as inclusive and drop a day.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone

from finops_cli.errors import UsageError

UTC = timezone.utc


@dataclass(frozen=True)
class Window:
    """[start, end) in UTC; both naive datetimes holding UTC (the store's convention)."""

    start: datetime
    end: datetime

    def __post_init__(self):
        if self.end <= self.start:
            raise UsageError(f"empty time window: the end ({self.end:%Y-%m-%d}) must be after the start "
                             f"({self.start:%Y-%m-%d}); the end date is exclusive")

    @property
    def days(self) -> float:
        return (self.end - self.start).total_seconds() / 86400

    def day_list(self) -> list[date]:
        first = self.start.date()
        last = (self.end - timedelta(microseconds=1)).date()
        return [first + timedelta(days=i) for i in range((last - first).days + 1)]

    def label(self) -> str:
        return f"{iso(self.start)} .. {iso(self.end)}"

    def as_json(self) -> dict[str, str]:
        return {"start": iso(self.start), "end": iso(self.end)}


def iso(moment: datetime) -> str:
    """FOCUS date-time text: ``2024-01-01T00:00:00Z``."""
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def utcnow() -> datetime:
    """Now in UTC as a naive datetime. FINOPS_NOW (ISO date-time) pins it for demos and tests."""
    import os

    pinned = os.environ.get("FINOPS_NOW")
    if pinned:
        return parse_moment(pinned, "FINOPS_NOW")
    return datetime.now(UTC).replace(tzinfo=None)


def today() -> date:
    return utcnow().date()


def midnight(day: date) -> datetime:
    return datetime.combine(day, time.min)


def parse_moment(text: str, what: str) -> datetime:
    """A date (``2024-09-01``) or ISO date-time; an offset is converted to UTC."""
    value = text.strip()
    try:
        if len(value) == 10:
            return midnight(date.fromisoformat(value))
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise UsageError(f"{what}: {text!r} is not a date (expected YYYY-MM-DD or an ISO 8601 date-time)") from None
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return moment


_MONTH = re.compile(r"^(\d{4})-(\d{2})$")
_QUARTER = re.compile(r"^(\d{4})-?Q([1-4])$", re.IGNORECASE)
_YEAR = re.compile(r"^(\d{4})$")


def period_window(text: str) -> Window:
    """``2024-09`` (a month), ``2024-Q3`` (a quarter), ``2024`` (a year) or ``2024-09-15`` (a day)."""
    value = text.strip()
    if m := _MONTH.match(value):
        year, month = int(m.group(1)), int(m.group(2))
        if not 1 <= month <= 12:
            raise UsageError(f"--period: {text!r} has no month {month}")
        start = date(year, month, 1)
        return Window(midnight(start), midnight(add_months(start, 1)))
    if m := _QUARTER.match(value):
        start = date(int(m.group(1)), 3 * (int(m.group(2)) - 1) + 1, 1)
        return Window(midnight(start), midnight(add_months(start, 3)))
    if m := _YEAR.match(value):
        year = int(m.group(1))
        return Window(midnight(date(year, 1, 1)), midnight(date(year + 1, 1, 1)))
    try:
        day = date.fromisoformat(value)
    except ValueError:
        raise UsageError(
            f"--period: {text!r} is not a period (expected YYYY-MM, YYYY-Qn, YYYY or YYYY-MM-DD)"
        ) from None
    return Window(midnight(day), midnight(day + timedelta(days=1)))


def add_months(day: date, months: int) -> date:
    index = day.year * 12 + day.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)


_DURATION = re.compile(r"^\s*(\d+)\s*(m|min|h|d|w|mo)\s*$", re.IGNORECASE)
_UNIT_SECONDS = {"m": 60, "min": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_duration(text: str | int | float, what: str = "duration") -> timedelta:
    """``30m``, ``6h``, ``3d``, ``2w``; a bare number is seconds."""
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        return timedelta(seconds=text)
    m = _DURATION.match(str(text))
    if not m or m.group(2).lower() == "mo":
        raise UsageError(f"{what}: {text!r} is not a duration (expected e.g. 30m, 6h, 3d, 2w)")
    return timedelta(seconds=int(m.group(1)) * _UNIT_SECONDS[m.group(2).lower()])


def last_window(text: str, now: datetime | None = None) -> Window:
    """``--last 30d``: the 30 calendar days that end with today (today included, so far).

    ``--last 3m`` is the current calendar month and the two before it.
    """
    m = re.match(r"^\s*(\d+)\s*(d|w|m)\s*$", text, re.IGNORECASE)
    if not m or int(m.group(1)) == 0:
        raise UsageError(f"--last: {text!r} is not a span (expected e.g. 7d, 30d, 4w, 3m)")
    count, unit = int(m.group(1)), m.group(2).lower()
    end_day = (now or utcnow()).date() + timedelta(days=1)
    if unit == "m":  # whole calendar months, the current one included
        start_day = add_months((end_day - timedelta(days=1)).replace(day=1), -(count - 1))
    else:
        start_day = end_day - timedelta(days=count * (7 if unit == "w" else 1))
    return Window(midnight(start_day), midnight(end_day))


def resolve_window(
    start: str | None = None,
    end: str | None = None,
    period: str | None = None,
    last: str | None = None,
    default_last: str = "30d",
) -> Window:
    """Turn the report options into one window; exactly one way of saying it is allowed."""
    given = [name for name, value in (("--period", period), ("--last", last)) if value]
    if start or end:
        given.append("--start/--end")
    if len(given) > 1:
        raise UsageError(f"use only one of {', '.join(given)}")
    if period:
        return period_window(period)
    if last:
        return last_window(last)
    if start or end:
        begin = parse_moment(start, "--start") if start else None
        finish = parse_moment(end, "--end") if end else midnight(today() + timedelta(days=1))
        if begin is None:
            raise UsageError("--end needs --start as well (the end date is exclusive)")
        return Window(begin, finish)
    return last_window(default_last)
