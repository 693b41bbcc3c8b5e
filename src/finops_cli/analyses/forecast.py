"""Forecast a period's spend to its end from the spend so far (the method of docs/budgets.md).

A weekday-weighted run rate, robust to one-off spikes and honest about young periods:

1. Daily spend of the scope over the period so far and up to ``HISTORY_DAYS`` before it, from
   the first day with data. Only *complete* days teach the model: days before today and no
   later than the last day with data (billing data arrives late; a missing day is not a $0 day).
2. Weekday factors, once at least two weeks are known: median spend of each weekday over the
   median of all days (medians, so one spike does not make its weekday look expensive). Fewer days: every factor is 1 (no pattern can be told from noise yet).
3. The level is the median of the last ``LEVEL_DAYS`` deseasonalised days (spend / factor), so
   a one-day spike is counted once in the actual spend but not extrapolated; a lasting change
   moves the median after a few days.
4. Forecast = spend so far + level x factor for each remaining day (a partly billed day adds
   only what it still misses).
5. An 80 % interval from the robust spread (MAD) of the deseasonalised days, covering day-to-day
   noise and the uncertainty of the level itself; with fewer than ``MIN_DAYS`` days the spread is
   at least half the level. The confidence label follows the data: low below ``MIN_DAYS`` days
   or when the interval is wider than 25 % of the forecast, medium below two weeks or 10 %.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from statistics import median

HISTORY_DAYS = 28
LEVEL_DAYS = 7
MIN_DAYS = 3
SEASONAL_DAYS = 14
Z80 = 1.2816  # two-sided 80 % normal interval
METHOD = "weekday-weighted run rate"


@dataclass
class SpendForecast:
    amount: Decimal
    lower: Decimal
    upper: Decimal
    confidence: str  # exact | high | medium | low
    method: str
    days_observed: int  # complete days the model learnt from
    notes: list[str] = field(default_factory=list)


def _cents(value: float | Decimal) -> Decimal:
    return Decimal(str(value)).quantize(Decimal("0.01"), rounding=ROUND_HALF_EVEN)


def confidence_label(amount: Decimal, lower: Decimal, upper: Decimal, days: int) -> str:
    if days < MIN_DAYS:
        return "low"
    half = (upper - lower) / 2
    width = float(half / amount) if amount else (0.0 if not half else math.inf)
    if width > 0.25:
        return "low"
    if days < SEASONAL_DAYS or width > 0.10:
        return "medium"
    return "high"


def forecast_period(daily: dict[date, Decimal], start: date, end: date, today: date) -> SpendForecast:
    """``daily``: spend per day (any days; those outside history and period are ignored).

    ``start``/``end``: the period's first day and its exclusive end day; ``today``: the current UTC day.
    """
    spent = sum((v for d, v in daily.items() if start <= d < end), Decimal(0))
    if today >= end:
        return SpendForecast(spent, spent, spent, "exact", "period ended", 0)
    data_days = [d for d, v in daily.items() if d < end and v]
    if not data_days:
        return SpendForecast(spent, spent, spent, "low", METHOD, 0,
                             ["no spend in this scope yet: nothing to extrapolate"])
    first = max(min(data_days), start - timedelta(days=HISTORY_DAYS))
    last_complete = min(today - timedelta(days=1), max(data_days))
    known = [first + timedelta(days=i) for i in range((last_complete - first).days + 1)]
    values = {d: float(daily.get(d, 0)) for d in known}
    notes: list[str] = []

    factors = [1.0] * 7
    if len(known) >= SEASONAL_DAYS:
        overall = median(values.values())
        if overall > 0:
            for weekday in range(7):
                days = [values[d] for d in known if d.weekday() == weekday]
                factors[weekday] = median(days) / overall if days else 1.0

    # A weekday that never costs anything (factor 0) says nothing about the level.
    informative = [d for d in known if factors[d.weekday()] > 0]
    deseasonalised = {d: values[d] / factors[d.weekday()] for d in informative}
    recent = [deseasonalised[d] for d in informative[-LEVEL_DAYS:]]
    level = median(recent) if recent else 0.0
    spread_base = list(deseasonalised.values())
    mad = 1.4826 * median(abs(x - median(spread_base)) for x in spread_base) if spread_base else 0.0
    if len(known) < MIN_DAYS:
        mad = max(mad, 0.5 * level)
        notes.append(f"only {len(known)} complete day{'s' if len(known) != 1 else ''} of data: "
                     f"low confidence")
    peak = max(known, key=lambda d: values[d]) if known else None
    if peak is not None and level > 0 and values[peak] > 3 * level * factors[peak.weekday()] and len(known) >= MIN_DAYS:
        notes.append(f"{peak.isoformat()} cost {values[peak] / (level * factors[peak.weekday()]):.1f}x a usual "
                     f"day; counted once, not extrapolated")

    remaining = [last_complete + timedelta(days=i + 1) for i in range((end - last_complete).days - 1)]
    remaining = [d for d in remaining if d >= start]
    expected = Decimal(0)
    for d in remaining:
        missing = Decimal(str(level * factors[d.weekday()])) - daily.get(d, Decimal(0))
        expected += max(missing, Decimal(0))
    amount = spent + _cents(expected)
    n, k = len(remaining), max(len(recent), 1)
    half = _cents(Z80 * math.sqrt(n * mad ** 2 + (n * mad) ** 2 / k))
    lower, upper = max(spent, amount - half), amount + half
    return SpendForecast(amount, lower, upper, confidence_label(amount, lower, upper, len(known)), METHOD,
                         len(known), notes)
