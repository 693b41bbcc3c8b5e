"""Renderers: turn analysis results into text for people (table, markdown) or programs (json, csv)."""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal
from enum import Enum

SPARK = "▁▂▃▄▅▆▇█"


class Format(str, Enum):
    table = "table"
    json = "json"
    csv = "csv"
    markdown = "markdown"

    def __str__(self) -> str:
        return self.value


def decimal_text(value: Decimal | None) -> str | None:
    """Exact decimal text for machines: no float, no exponent, trailing zeros trimmed to 2 places."""
    if value is None:
        return None
    text = format(value, "f")
    if "." in text:
        whole, frac = text.split(".")
        frac = frac.rstrip("0")
        frac = frac + "0" * (2 - len(frac)) if len(frac) < 2 else frac
        text = f"{whole}.{frac}"
    else:
        text += ".00"
    return "0.00" if text in ("-0.00",) else text


def money(value: Decimal | None, currency: str | None = None) -> str:
    """Rounded amount for people: 2 places with thousands separators, more for sub-cent amounts."""
    if value is None:
        return "-"
    places = Decimal("0.01") if value == 0 or abs(value) >= Decimal("0.01") else Decimal("0.000001")
    text = f"{value.quantize(places, rounding=ROUND_HALF_EVEN):,}"
    if text.startswith("-") and value.quantize(places) == 0:
        text = text[1:]
    return f"{text} {currency}" if currency else text


def percent(fraction: float | None) -> str:
    return "-" if fraction is None else f"{fraction * 100:.1f}%"


SPARK_WIDTH = 31


def sparkline(series: list[Decimal] | None) -> str:
    """One character per day, or per bucket of days when the window is longer than a month."""
    if not series:
        return ""
    if len(series) > SPARK_WIDTH:
        size = -(-len(series) // SPARK_WIDTH)
        series = [sum(series[i:i + size], Decimal(0)) for i in range(0, len(series), size)]
    low = min(min(series), Decimal(0))
    high = max(series)
    if high == low:
        return SPARK[0] * len(series)
    scale = (len(SPARK) - 1) / (high - low)
    return "".join(SPARK[int((v - low) * scale)] for v in series)
