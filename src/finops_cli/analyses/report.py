"""Cost by any dimensions over a window: the library behind ``finops report``.

Sums are exact (DuckDB DECIMAL, Python Decimal). Currencies are never added together: every
row and total is per BillingCurrency. Rows always add up to the total (``--top`` folds the
rest into one ``(other)`` row), so every ``--by`` view of a window reconciles with every other.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any

from finops_cli.analyses.dimensions import (
    Dimension,
    Filter,
    cost_column,
    MAX_REQUIRED,
    derived_columns,
    parse_filters,
    resolve,
)
from finops_cli.config.model import AllocationConfig
from finops_cli.errors import UsageError
from finops_cli.periods import Window

SERIES_MIN_DAYS = 4  # a trend sparkline needs a few days to say anything


@dataclass
class ReportRequest:
    by: list[str]
    window: Window
    cost: str = "effective"
    filters: list[str] = field(default_factory=list)
    top: int | None = None
    untagged_top: int = 5
    series: bool = False
    allocations: str = "auto"  # see ALLOCATION_MODES


@dataclass
class ReportRow:
    keys: tuple[str | None, ...]
    currency: str | None
    cost: Decimal
    share: float | None = None
    series: list[Decimal] | None = None
    other: bool = False  # the folded remainder of --top


@dataclass
class UntaggedTag:
    tag: str
    currency: str | None
    cost: Decimal
    share: float | None


@dataclass
class UntaggedResource:
    resource: str | None
    provider: str | None
    service: str | None
    currency: str | None
    cost: Decimal
    missing: list[str]


@dataclass
class Report:
    request: ReportRequest
    dimensions: list[Dimension]
    rows: list[ReportRow]
    totals: dict[str | None, Decimal]
    row_count: int  # source rows in the window
    untagged: list[UntaggedTag]
    untagged_resources: list[UntaggedResource]
    days: list[date]
    required: list[str]
    # Allocation cost (Kubernetes) the report left out because the cloud rows already carry it.
    left_out: dict[str | None, Decimal] = field(default_factory=dict)
    left_out_sources: list[str] = field(default_factory=list)

    @property
    def currencies(self) -> list[str | None]:
        return list(self.totals)

    @property
    def single_currency(self) -> str | None:
        return self.currencies[0] if len(self.totals) == 1 else None


def share(part: Decimal, whole: Decimal) -> float | None:
    return None if not whole else float(part / whole)


# Allocation rows (Kubernetes OpenCost/Kubecost) re-divide spend the cloud rows already bill.
#   auto: leave them out, unless --filter source=... picks sources by name; include: add them
#   (double counts the cluster next to its cloud bill); only: nothing but them; exclude: never.
ALLOCATION_MODES = ("auto", "include", "exclude", "only")


def allocation_types(con) -> list[str]:
    """Source types in the store whose rows only re-divide other sources' spend."""
    from finops_cli.sources import REGISTRY

    present = [r[0] for r in con.execute("SELECT DISTINCT x_SourceType FROM costs "
                                         "WHERE AllocatedMethodId IS NOT NULL").fetchall()]
    return sorted(t for t in present if t in REGISTRY and REGISTRY[t].allocation_only)


def allocation_sql(types: list[str]) -> tuple[str, list[Any]]:
    if not types:
        return "false", []
    return f"(AllocatedMethodId IS NOT NULL AND x_SourceType IN ({', '.join('?' for _ in types)}))", list(types)


def effective_allocation_mode(mode: str, filters: list[Filter]) -> str:
    if mode not in ALLOCATION_MODES:
        raise UsageError(f"--allocations: {mode!r} is not one of {', '.join(ALLOCATION_MODES)}")
    if mode == "auto":
        picks_sources = any(f.dimension.name == "source" and not f.negate for f in filters)
        return "include" if picks_sources else "exclude"
    return mode


def window_clause(window: Window, filters: list[Filter], allocations: str = "include",
                  allocation_types: list[str] | None = None) -> tuple[str, list[Any]]:
    clauses = ["ChargePeriodStart >= ?", "ChargePeriodStart < ?"]
    params: list[Any] = [window.start, window.end]
    for f in filters:
        sql, values = f.sql()
        clauses.append(sql)
        params.extend(values)
    mode = effective_allocation_mode(allocations, filters)
    if mode != "include" and allocation_types:
        sql, values = allocation_sql(allocation_types)
        clauses.append(sql if mode == "only" else f"NOT {sql}")
        params.extend(values)
    elif mode == "only":
        clauses.append("false")
    return " AND ".join(clauses), params


def build_report(con, allocation: AllocationConfig, request: ReportRequest) -> Report:
    if not request.by:
        raise UsageError("report needs at least one --by DIMENSION (e.g. --by team)")
    dims = [resolve(name, allocation) for name in request.by]
    if len({d.name for d in dims}) != len(dims):
        raise UsageError("the same dimension was given twice to --by")
    cost = cost_column(request.cost)
    filters = parse_filters(request.filters, allocation)
    types = allocation_types(con)
    where, params = window_clause(request.window, filters, request.allocations, types)
    days = request.window.day_list()
    want_series = request.series and len(days) >= SERIES_MIN_DAYS

    required = list(allocation.required)[:MAX_REQUIRED]
    mask = missing_mask(con, allocation)
    # Grouping by the missing-tags bitmask as well gives untagged spend from the same scan as the rows.
    dim_select = ", ".join(f"{d.sql} AS d{i}" for i, d in enumerate(dims))
    dim_names = ", ".join(f"d{i}" for i in range(len(dims)))
    if want_series:
        sql = f"""
            WITH g AS (
              SELECT {dim_select}, BillingCurrency AS currency, {mask} AS mask,
                     CAST(ChargePeriodStart AS DATE) AS day, SUM({cost}) AS cost, count(*) AS n
              FROM costs WHERE {where} GROUP BY ALL)
            SELECT {dim_names}, currency, mask, SUM(cost) AS cost, SUM(n) AS n,
                   map_from_entries(list(struct_pack(k := day, v := cost))) AS series
            FROM g GROUP BY {dim_names}, currency, mask"""
    else:
        sql = f"""
            SELECT {dim_select}, BillingCurrency AS currency, {mask} AS mask, SUM({cost}) AS cost,
                   count(*) AS n, NULL AS series
            FROM costs WHERE {where} GROUP BY ALL"""
    raw = con.execute(sql, params).fetchall()

    width = len(dims)
    merged: dict[tuple, ReportRow] = {}
    totals: dict[str | None, Decimal] = {}
    untagged_totals: dict[str | None, list[Decimal]] = {}
    row_count = 0
    for rec in raw:
        keys, currency, bits = tuple(rec[:width]), rec[width], rec[width + 1] or 0
        amount, n, series = rec[width + 2] or Decimal(0), rec[width + 3], rec[width + 4]
        row_count += n
        totals[currency] = totals.get(currency, Decimal(0)) + amount
        sums = untagged_totals.setdefault(currency, [Decimal(0)] * len(required))
        for i in range(len(required)):
            if bits & (1 << i):
                sums[i] += amount
        daily = [series.get(day, Decimal(0)) or Decimal(0) for day in days] if series is not None else None
        row = merged.get((keys, currency))
        if row is None:
            merged[(keys, currency)] = ReportRow(keys, currency, amount, series=daily)
        else:  # the same row with another combination of missing tags
            row.cost += amount
            if daily is not None:
                row.series = [x + y for x, y in zip(row.series, daily)]
    rows = list(merged.values())
    totals = dict(sorted(totals.items(), key=lambda kv: (-abs(kv[1]), kv[0] or "")))
    order = {c: i for i, c in enumerate(totals)}
    rows.sort(key=lambda r: (order[r.currency], -r.cost, tuple("" if k is None else str(k) for k in r.keys)))
    rows = _fold_top(rows, request.top, width)
    for row in rows:
        row.share = share(row.cost, totals[row.currency])

    untagged = [UntaggedTag(name, currency, untagged_totals[currency][i], share(untagged_totals[currency][i], total))
                for currency, total in totals.items() for i, name in enumerate(required)]
    resources = _untagged_resources(con, required, mask, cost, where, params, request.untagged_top)
    left_out, left_out_sources = _left_out(con, request, filters, types, cost)
    return Report(request, dims, rows, totals, row_count, untagged, resources, days, required,
                  left_out, left_out_sources)


def _left_out(con, request: ReportRequest, filters: list[Filter], types: list[str], cost: str):
    """Allocation cost in the window that the report did not add, per currency, and its sources."""
    if not types or effective_allocation_mode(request.allocations, filters) != "exclude":
        return {}, []
    where, params = window_clause(request.window, filters, "only", types)
    raw = con.execute(f"SELECT BillingCurrency, x_SourceName, SUM({cost}) FROM costs WHERE {where} "
                      "GROUP BY ALL ORDER BY 2", params).fetchall()
    amounts: dict[str | None, Decimal] = {}
    for currency, _source, amount in raw:
        amounts[currency] = amounts.get(currency, Decimal(0)) + (amount or Decimal(0))
    return amounts, sorted({r[1] for r in raw})


def _fold_top(rows: list[ReportRow], top: int | None, width: int) -> list[ReportRow]:
    if not top:
        return rows
    out: list[ReportRow] = []
    kept: dict[str | None, int] = {}
    rest: dict[str | None, ReportRow] = {}
    for row in rows:
        if kept.get(row.currency, 0) < top:
            kept[row.currency] = kept.get(row.currency, 0) + 1
            out.append(row)
            continue
        other = rest.get(row.currency)
        if other is None:
            other = rest[row.currency] = ReportRow(("(other)",) + ("",) * (width - 1), row.currency, Decimal(0),
                                                   series=[Decimal(0)] * len(row.series) if row.series else None,
                                                   other=True)
        other.cost += row.cost
        if other.series is not None and row.series is not None:
            other.series = [a + b for a, b in zip(other.series, row.series)]
    for currency, other in rest.items():
        # keep the folded row at the end of its currency block
        index = max(i for i, r in enumerate(out) if r.currency == currency) + 1
        out.insert(index, other)
    return out


def missing_mask(con, allocation: AllocationConfig) -> str:
    """SQL for the missing-required-tags bitmask: the store's precomputed column when it is in step with
    these allocation settings, else computed from the tags (the same answer, slower on big stores)."""
    derived = derived_columns(allocation)
    row = con.execute("SELECT value FROM meta WHERE key = 'derived_fingerprint'").fetchone()
    return "x_MissingTags" if row and row[0] == derived.fingerprint else f"({derived.missing_tags_sql})"


def _untagged_resources(con, required, mask, cost, where, params, top_n):
    """The largest resources that lack at least one required tag."""
    if not required or not top_n:
        return []
    raw = con.execute(
        f"""SELECT COALESCE(ResourceId, ResourceName) AS resource, any_value(COALESCE(ProviderName,
                   ServiceProviderName)), any_value(ServiceName), BillingCurrency, SUM({cost}) AS c, bit_or({mask})
            FROM costs WHERE {where} AND {mask} != 0 GROUP BY resource, BillingCurrency
            HAVING SUM({cost}) > 0 ORDER BY c DESC LIMIT {int(top_n)}""",
        params,
    ).fetchall()
    return [UntaggedResource(rec[0], rec[1], rec[2], rec[3], rec[4],
                             [name for i, name in enumerate(required) if rec[5] & (1 << i)]) for rec in raw]
