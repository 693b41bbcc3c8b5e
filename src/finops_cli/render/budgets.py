"""Render budget statuses as a table, JSON or Markdown (the JSON is documented in docs/budgets.md)."""

from __future__ import annotations

import json
from typing import Any, TextIO

from finops_cli.analyses.budgets import BudgetStatus, period_label
from finops_cli.periods import iso
from finops_cli.render import Format, decimal_text, money, percent

BAR_WIDTH = 20
STYLE = {None: "green", "info": "cyan", "warning": "yellow", "critical": "red", "emergency": "bold red"}


def bar(status: BudgetStatus, width: int = BAR_WIDTH) -> str:
    """█ spent, ▒ forecast to the period end, ░ the rest of the budget; ▶ past 100 %."""
    used, projected = status.used, status.forecast_used
    if used is None:
        return ""
    spent = min(round(used * width), width)
    ahead = min(round((projected or 0) * width), width) - spent if projected is not None else 0
    text = "█" * spent + "▒" * max(ahead, 0)
    text += "░" * (width - len(text))
    return text + ("▶" if max(used, projected or 0) > 1 else " ")


def state_text(status: BudgetStatus) -> str:
    if status.period is None:
        return "not started"
    crossed = [t for t in status.thresholds if t.crossed]
    if not crossed:
        return "ok"
    worst = status.severity
    top = max((t for t in crossed if t.threshold.severity == worst), key=lambda t: t.limit)
    return f"{worst} ({top.threshold.label(status.config.currency)})"


def forecast_text(status: BudgetStatus) -> str:
    f = status.forecast
    if f is None:
        return "-"
    if f.confidence == "exact":
        return money(f.amount)
    return f"{money(f.amount)} ({f.confidence})"


def render(statuses: list[BudgetStatus], fmt: Format, out: TextIO, console_width: int | None = None,
           extra: dict[str, Any] | None = None) -> None:
    if fmt is Format.json:
        json.dump({**as_json(statuses), **(extra or {})}, out, indent=2)
        out.write("\n")
    elif fmt is Format.markdown:
        out.write(markdown(statuses))
    elif fmt is Format.table:
        _table(statuses, out, console_width)
    else:
        from finops_cli.errors import UsageError

        raise UsageError(f"budget check has no {fmt} format (use table, json or markdown)")


def _name(status: BudgetStatus) -> str:
    return ("  " * (status.depth - 1) + "└ " if status.depth else "") + status.name


def _table(statuses: list[BudgetStatus], out: TextIO, width: int | None) -> None:
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    table = Table(box=None, pad_edge=False, header_style="bold")
    for title, justify in (("budget", "left"), ("period", "left"), ("spend", "right"), ("forecast", "right"),
                           ("amount", "right"), ("used", "right"), ("", "left"), ("status", "left")):
        table.add_column(title, justify=justify, no_wrap=True)
    for s in statuses:
        c = s.config
        style = STYLE.get(s.severity, "green")
        period = period_label(c, s.period) if s.period else "-"
        table.add_row(Text(_name(s)), period, money(s.spend), forecast_text(s), money(c.amount, c.currency),
                      percent(s.used), Text(bar(s), style=style), Text(state_text(s), style=style))
    Console(file=out, width=width or 200, highlight=False).print(table)


def markdown(statuses: list[BudgetStatus]) -> str:
    lines = ["| budget | period | spend | forecast | amount | used | status |",
             "|---|---|---:|---:|---:|---:|---|"]
    for s in statuses:
        c = s.config
        name = "&nbsp;&nbsp;" * 2 * s.depth + (f"└ {s.name}" if s.depth else s.name)
        period = period_label(c, s.period) if s.period else "-"
        lines.append(f"| {name} | {period} | {money(s.spend)} | {forecast_text(s)} | "
                     f"{money(c.amount, c.currency)} | {percent(s.used)} | {state_text(s)} |")
    notes = [f"- **{s.name}**: {n}" for s in statuses for n in s.warnings + s.notes]
    return "\n".join(lines) + "\n" + ("\n" + "\n".join(notes) + "\n" if notes else "")


def as_json(statuses: list[BudgetStatus]) -> dict[str, Any]:
    return {"budgets": [_budget_json(s) for s in statuses]}


def _budget_json(s: BudgetStatus) -> dict[str, Any]:
    c, f = s.config, s.forecast
    return {
        "name": c.name,
        "parent": c.parent,
        "children": s.children,
        "children_amount": decimal_text(s.children_amount),
        "children_spend": decimal_text(s.children_spend),
        "depth": s.depth,
        "scope": c.scope,
        "rolled_up": s.rolled_up,
        "period": None if s.period is None else {"kind": c.period, "label": period_label(c, s.period),
                                                 "start": iso(s.period.start), "end": iso(s.period.end)},
        "cost": c.cost,
        "currency": c.currency,
        "amount": decimal_text(c.amount),
        "spend": decimal_text(s.spend),
        "used": None if s.used is None else round(s.used, 6),
        "forecast": None if f is None else {
            "amount": decimal_text(f.amount), "lower": decimal_text(f.lower), "upper": decimal_text(f.upper),
            "used": None if s.forecast_used is None else round(s.forecast_used, 6),
            "confidence": f.confidence, "method": f.method, "days_observed": f.days_observed},
        "status": s.severity or ("not started" if s.period is None else "ok"),
        "thresholds": [
            {"key": t.threshold.key, "label": t.threshold.label(c.currency), "basis": t.threshold.basis,
             "severity": t.threshold.severity, "limit": decimal_text(t.limit), "crossed": t.crossed,
             "notify": t.channels, "waiting": t.waiting}
            for t in s.thresholds
        ],
        "other_currencies": {k: decimal_text(v) for k, v in s.other_currencies.items()},
        "sources": s.sources,
        "warnings": s.warnings,
        "notes": s.notes,
    }
