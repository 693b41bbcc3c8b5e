"""Small FOCUS CSV files of daily spend, for budget tests: one row per (day, team, ...)."""

from __future__ import annotations

import csv
import json
from collections.abc import Callable
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

HEADER = ["ChargePeriodStart", "ChargePeriodEnd", "BilledCost", "EffectiveCost", "BillingCurrency",
          "ChargeCategory", "ServiceName", "ProviderName", "SubAccountId", "Tags"]


def days(first: date, last: date) -> list[date]:
    """``first`` to ``last``, both included."""
    return [first + timedelta(days=i) for i in range((last - first).days + 1)]


def write_daily(path: Path, first: date, last: date, cost: Callable[[date], Decimal | str | int],
                tags: dict | None = None, currency: str = "USD", service: str = "Compute Engine",
                provider: str = "Google Cloud", rows: list | None = None) -> Path:
    """Write one row per day with ``cost(day)``; ``rows`` appends more (already complete) rows."""
    path.parent.mkdir(parents=True, exist_ok=True)
    out = [row(d, cost(d), tags, currency, service, provider) for d in days(first, last)]
    out.extend(rows or [])
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(HEADER)
        writer.writerows(out)
    return path


def row(day: date, cost, tags: dict | None = None, currency: str = "USD", service: str = "Compute Engine",
        provider: str = "Google Cloud") -> list:
    value = str(cost)
    return [f"{day.isoformat()}T00:00:00Z", f"{(day + timedelta(days=1)).isoformat()}T00:00:00Z", value, value,
            currency, "Usage", service, provider, "acct-1", json.dumps(tags or {})]
