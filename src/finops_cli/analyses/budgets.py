"""Evaluate budgets over the store: spend in the current period, forecast, crossed thresholds.

A budget's scope is a set of report filters (``analyses.dimensions``), so a budget on
``team: search`` counts exactly what ``finops report --filter team=search`` shows. Only spend
in the budget's currency counts; other currencies in scope are reported, never converted.
A parent without a scope of its own rolls its children up: its spend is the union of their
scopes (a row in two children's scopes counts once).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal

from finops_cli.analyses.dimensions import cost_column, parse_filters
from finops_cli.analyses.forecast import HISTORY_DAYS, SpendForecast, confidence_label, forecast_period
from finops_cli.analyses.report import allocation_types, effective_allocation_mode, window_clause
from finops_cli.budgets.config import SEVERITIES, BudgetConfig, Threshold
from finops_cli.errors import UsageError
from finops_cli.periods import Window, add_months, midnight, utcnow

ANCHOR = date(2000, 1, 3)  # a Monday: weekly periods start on Mondays unless `start` says otherwise

# (source name, window, scope filters) -> the provider's forecast, or None
ProviderForecast = Callable[[str, Window, dict[str, list[str]]], "object | None"]


@dataclass
class ThresholdStatus:
    threshold: Threshold
    limit: Decimal
    crossed: bool
    channels: list[str]
    waiting: str | None = None  # why a forecasted threshold was not evaluated


@dataclass
class BudgetStatus:
    config: BudgetConfig
    depth: int
    children: list[str]
    period: Window | None  # None: the budget has not started yet
    spend: Decimal = Decimal(0)
    forecast: SpendForecast | None = None
    other_currencies: dict[str, Decimal] = field(default_factory=dict)
    thresholds: list[ThresholdStatus] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)  # problems a person should fix or know about
    rolled_up: bool = False
    children_amount: Decimal | None = None  # sum of the comparable children's budgets
    children_spend: Decimal | None = None  # and of their spend

    @property
    def name(self) -> str:
        return self.config.name

    @property
    def used(self) -> float | None:
        return float(self.spend / self.config.amount) if self.config.amount else None

    @property
    def forecast_used(self) -> float | None:
        if self.forecast is None or not self.config.amount:
            return None
        return float(self.forecast.amount / self.config.amount)

    @property
    def severity(self) -> str | None:
        """The highest severity among crossed thresholds (None: all clear)."""
        crossed = [t.threshold.severity for t in self.thresholds if t.crossed]
        return max(crossed, key=SEVERITIES.index) if crossed else None


def period_window(budget: BudgetConfig, now: datetime) -> Window | None:
    """The budget's period containing ``now`` (UTC, calendar-aligned, end exclusive)."""
    today = now.date()
    if budget.start and today < budget.start:
        return None
    kind = budget.period
    if kind == "daily":
        return Window(midnight(today), midnight(today + timedelta(days=1)))
    if kind == "weekly":
        anchor = budget.start or ANCHOR
        first = today - timedelta(days=(today - anchor).days % 7)
        return Window(midnight(first), midnight(first + timedelta(days=7)))
    months = {"monthly": 1, "quarterly": 3, "yearly": 12}[kind]
    anchor = budget.start or date(2000, 1, 1)
    elapsed = (today.year - anchor.year) * 12 + today.month - anchor.month
    first = add_months(anchor, elapsed - elapsed % months)
    return Window(midnight(first), midnight(add_months(first, months)))


def period_label(budget: BudgetConfig, window: Window) -> str:
    first = window.start.date()
    if budget.period == "daily":
        return first.isoformat()
    if budget.period == "monthly":
        return first.strftime("%Y-%m")
    if budget.period == "yearly" and first.month == 1:
        return str(first.year)
    if budget.period == "quarterly" and first.month in (1, 4, 7, 10):
        return f"{first.year}-Q{(first.month - 1) // 3 + 1}"
    last = (window.end - timedelta(days=1)).date()
    return f"{first.isoformat()}..{last.isoformat()}"


def tree_order(budgets: list[BudgetConfig]) -> list[tuple[BudgetConfig, int]]:
    """Budgets depth-first in config order, each with its depth in the hierarchy."""
    names = {b.name for b in budgets}
    children: dict[str | None, list[BudgetConfig]] = {}
    for b in budgets:
        children.setdefault(b.parent if b.parent in names else None, []).append(b)
    out: list[tuple[BudgetConfig, int]] = []

    def walk(parent: str | None, depth: int) -> None:
        for b in children.get(parent, []):
            out.append((b, depth))
            walk(b.name, depth + 1)

    walk(None, 0)
    return out


class _Scopes:
    """SQL for each budget's scope, rolling scope-less parents up from their children."""

    def __init__(self, budgets: list[BudgetConfig], allocation):
        self.by_name = {b.name: b for b in budgets}
        self.children = {b.name: [c.name for c in budgets if c.parent == b.name] for b in budgets}
        self.allocation = allocation

    def clause(self, name: str) -> tuple[str | None, list]:
        budget = self.by_name[name]
        if budget.scope is None and self.children[name]:
            parts, params = [], []
            for child in self.children[name]:
                sql, values = self.clause(child)
                if sql is None:  # a child that takes everything makes the union everything
                    return None, []
                parts.append(f"({sql})")
                params.extend(values)
            return " OR ".join(parts), params
        filters = parse_filters(budget.filter_specs(), self.allocation)
        if not filters:
            return None, []
        parts, params = [], []
        for f in filters:
            sql, values = f.sql()
            parts.append(sql)
            params.extend(values)
        return " AND ".join(parts), params

    def rolled_up(self, name: str) -> bool:
        return self.by_name[name].scope is None and bool(self.children[name])


def evaluate(con, budgets: list[BudgetConfig], allocation, *, names: list[str] | None = None,
             now: datetime | None = None, provider_forecast: ProviderForecast | None = None) -> list[BudgetStatus]:
    now = now or utcnow()
    known = {b.name for b in budgets}
    unknown = [n for n in names or [] if n not in known]
    if unknown:
        raise UsageError(f"no budget named {', '.join(map(repr, unknown))} (budgets: {', '.join(known) or 'none'})")
    scopes = _Scopes(budgets, allocation)
    out = []
    for budget, depth in tree_order(budgets):
        if names and budget.name not in names:
            continue
        status = BudgetStatus(budget, depth, scopes.children[budget.name], period_window(budget, now),
                              rolled_up=scopes.rolled_up(budget.name))
        if status.period is None:
            status.notes.append(f"starts on {budget.start.isoformat()}")
        else:
            _measure(con, status, scopes, now, provider_forecast)
        _check_children(status, scopes)
        out.append(status)
    _roll_up(out)
    return out


def _roll_up(statuses: list[BudgetStatus]) -> None:
    by_name = {s.name: s for s in statuses}
    for status in statuses:
        kids = [by_name[c] for c in status.children if c in by_name]
        comparable = [k for k in kids if k.config.currency == status.config.currency
                      and k.config.period == status.config.period and k.period is not None]
        if not comparable:
            continue
        status.children_amount = sum((k.config.amount for k in comparable), Decimal(0))
        status.children_spend = sum((k.spend for k in comparable), Decimal(0))
        status.notes.append(f"children spent {status.children_spend:,.2f} of the {status.children_amount:,.2f} "
                            f"{status.config.currency} budgeted for them")


def _measure(con, status: BudgetStatus, scopes: _Scopes, now: datetime,
             provider_forecast: ProviderForecast | None) -> None:
    budget, window = status.config, status.period
    cost = cost_column(budget.cost)
    scope_sql, scope_params = scopes.clause(budget.name)
    history = Window(window.start - timedelta(days=HISTORY_DAYS), window.end)
    # Like `report`: Kubernetes allocation rows re-divide cloud spend, so they count only when the scope
    # picks their source by name.
    filters = [] if scopes.rolled_up(budget.name) else parse_filters(budget.filter_specs(), scopes.allocation)
    where, params = window_clause(history, [], effective_allocation_mode("auto", filters), allocation_types(con))
    if scope_sql:
        where, params = f"{where} AND ({scope_sql})", params + scope_params
    rows = con.execute(
        f"SELECT CAST(ChargePeriodStart AS DATE), BillingCurrency, x_SourceName, SUM({cost}) FROM costs "
        f"WHERE {where} GROUP BY ALL", params).fetchall()
    daily: dict[date, Decimal] = {}
    sources: set[str] = set()
    first, end = window.start.date(), window.end.date()
    for day, currency, source, amount in rows:
        amount = amount or Decimal(0)
        in_period = first <= day < end
        if currency == budget.currency:
            daily[day] = daily.get(day, Decimal(0)) + amount  # history days too: the forecast learns from them
        elif in_period:
            status.other_currencies[currency] = status.other_currencies.get(currency, Decimal(0)) + amount
        if in_period:
            sources.add(source)
    status.sources = sorted(sources)
    status.spend = sum((v for d, v in daily.items() if first <= d < end), Decimal(0))
    if status.other_currencies:
        listed = ", ".join(f"{v:,.2f} {c}" for c, v in sorted(status.other_currencies.items()))
        status.warnings.append(f"spend in other currencies is not counted: {listed} (a budget has one currency, "
                            f"{budget.currency})")
    status.forecast = forecast_period(daily, first, end, now.date())
    if provider_forecast and len(status.sources) == 1 and not status.rolled_up and now < window.end:
        _provider(status, daily, now, provider_forecast)
    status.notes.extend(status.forecast.notes)
    for threshold in budget.thresholds:
        limit = threshold.limit(budget.amount)
        waiting = None
        if threshold.basis == "actual":
            value = status.spend
        else:
            value = status.forecast.amount
            if status.forecast.confidence == "low":
                waiting = "forecast confidence is low: forecasted thresholds wait for more data"
        crossed = waiting is None and value >= limit and (limit > 0 or value > 0)
        status.thresholds.append(ThresholdStatus(threshold, limit, crossed, budget.channels_of(threshold), waiting))


def _provider(status: BudgetStatus, daily: dict[date, Decimal], now: datetime, provider_forecast) -> None:
    """Use the source's own forecast where all of the budget's data comes from that one source."""
    budget, window = status.config, status.period
    source = status.sources[0]
    rest = Window(midnight(now.date()), window.end)
    filters = {dim: (v if isinstance(v, list) else [v]) for dim, v in (budget.scope or {}).items()}
    try:
        theirs = provider_forecast(source, rest, filters)
    except Exception as exc:  # a provider forecast is a bonus: fall back to ours, and say why
        status.forecast.notes.append(f"{source}'s own forecast failed ({getattr(exc, 'message', exc)}); "
                                     f"using finops' forecast")
        return
    if theirs is None:
        return
    if theirs.currency != budget.currency:
        status.forecast.notes.append(f"{source}'s forecast is in {theirs.currency}, not {budget.currency}: "
                                     f"using finops' forecast")
        return
    before_today = sum((v for d, v in daily.items() if window.start.date() <= d < now.date()), Decimal(0))
    amount = max(before_today + theirs.mean, status.spend)
    lower = before_today + theirs.lower if theirs.lower is not None else amount
    upper = before_today + theirs.upper if theirs.upper is not None else amount
    ours = status.forecast
    label = confidence_label(amount, lower, upper, max(ours.days_observed, 14))
    level = f" ({theirs.confidence:.0%} interval)" if theirs.confidence else ""
    status.forecast = SpendForecast(amount, max(lower, status.spend), upper, label,
                                    f"{source} provider forecast{level}", ours.days_observed,
                                    [n for n in ours.notes if "counted once" not in n])


def _check_children(status: BudgetStatus, scopes: _Scopes) -> None:
    kids = [scopes.by_name[c] for c in status.children]
    if not kids:
        return
    budget = status.config
    comparable = [k for k in kids if k.currency == budget.currency and k.period == budget.period]
    if len(comparable) != len(kids):
        status.notes.append("children with another currency or period are not compared with this budget")
    total = sum((k.amount for k in comparable), Decimal(0))
    if total > budget.amount:
        status.warnings.append(f"children's budgets add up to {total:,.2f} {budget.currency}, more than this "
                            f"budget's {budget.amount:,.2f} {budget.currency}")


class SourceForecasts:
    """Ask a configured source for its own forecast (``Source.forecast``); None where it offers none."""

    def __init__(self, config):
        self.config = config
        self._built: dict[str, object] = {}

    def _source(self, name: str):
        if name not in self._built:
            from finops_cli.sources.base import Source
            from finops_cli.sync import build_source

            try:
                source = build_source(self.config, self.config.source(name))
            except Exception:  # the store holds a source no longer configured: no forecast from it
                source = None
            offers = source is not None and type(source).forecast is not Source.forecast
            self._built[name] = source if offers else None
        return self._built[name]

    def offers(self, name: str) -> bool:
        return self._source(name) is not None

    def __call__(self, source_name: str, window: Window, filters: dict[str, list[str]]):
        source = self._source(source_name)
        return source.forecast(window, filters) if source is not None else None


FORECAST_SCOPE = "budget-forecast"


def cached_daily(provider_forecast: ProviderForecast, store) -> ProviderForecast:
    """At most one provider forecast per (source, scope, period end) and UTC day, kept in the store.

    Provider forecasts cost money (Cost Explorer: 0.01 USD a request) and change slowly; an hourly
    cron would otherwise pay for 24 of them a day per budget.
    """
    import json

    from finops_cli.sources.base import Forecast

    def ask(source_name: str, window: Window, filters: dict[str, list[str]]):
        key = f"{source_name}|{json.dumps(filters, sort_keys=True)}|{window.end.isoformat()}"
        day = window.start.date().isoformat()
        saved = store.get_state(FORECAST_SCOPE, key)
        if saved:
            record = json.loads(saved)
            if record.get("day") == day:
                answer = record.get("forecast")
                return None if answer is None else Forecast(**{
                    k: (Decimal(v) if k in ("mean", "lower", "upper") and v is not None else v)
                    for k, v in answer.items()})
        offers = getattr(provider_forecast, "offers", None)
        if offers is not None and not offers(source_name):
            return None  # a source without forecasts: nothing to ask, nothing to remember
        answer = provider_forecast(source_name, window, filters)
        fields = None if answer is None else {
            "mean": str(answer.mean), "currency": answer.currency, "confidence": answer.confidence,
            "lower": None if answer.lower is None else str(answer.lower),
            "upper": None if answer.upper is None else str(answer.upper)}
        store.set_state(FORECAST_SCOPE, key, json.dumps({"day": day, "forecast": fields}))
        return answer

    return ask
