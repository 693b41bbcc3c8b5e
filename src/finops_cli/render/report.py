"""Render a ``Report`` as a table, JSON, CSV or Markdown.

The JSON object is a stable, documented interface (docs/json.md):
``{"currency", "start", "end", "cost", "by", "rows", "total", "totals", "row_count", "untagged"}``.
"""

from __future__ import annotations

import csv
import io
import json
from typing import Any, TextIO

from finops_cli.analyses.report import Report, ReportRow
from finops_cli.periods import iso
from finops_cli.render import Format, decimal_text, money, percent, sparkline

COST_TITLES = {"effective": "Effective cost", "billed": "Billed cost", "list": "List cost",
               "contracted": "Contracted cost"}


def render(report: Report, fmt: Format, out: TextIO, console_width: int | None = None) -> None:
    if fmt is Format.json:
        json.dump(as_json(report), out, indent=2)
        out.write("\n")
    elif fmt is Format.csv:
        _csv(report, out)
    elif fmt is Format.markdown:
        out.write(_markdown(report))
    elif fmt is Format.table:
        _table(report, out, console_width)
    else:  # pragma: no cover - Format is exhaustive
        raise AssertionError(fmt)


def _key(row: ReportRow, index: int) -> str | None:
    value = row.keys[index]
    if row.other:
        return value or None
    return None if value is None else str(value)


def as_json(report: Report) -> dict[str, Any]:
    names = [d.name for d in report.dimensions]
    rows = []
    for row in report.rows:
        item: dict[str, Any] = {name: _key(row, i) for i, name in enumerate(names)}
        item["currency"] = row.currency
        item["cost"] = decimal_text(row.cost)
        item["share"] = None if row.share is None else round(row.share, 6)
        if row.other:
            item["other"] = True
        rows.append(item)
    single = report.single_currency
    return {
        "currency": single,
        "start": iso(report.request.window.start),
        "end": iso(report.request.window.end),
        "cost": report.request.cost,
        "by": names,
        "filters": report.request.filters,
        "rows": rows,
        "total": decimal_text(report.totals[single]) if len(report.totals) == 1 else None,
        "totals": {c: decimal_text(v) for c, v in report.totals.items()},
        "row_count": report.row_count,
        "untagged": {
            "tags": [
                {"tag": t.tag, "currency": t.currency, "cost": decimal_text(t.cost),
                 "share": None if t.share is None else round(t.share, 6)}
                for t in report.untagged
            ],
            "top_resources": [
                {"resource": r.resource, "provider": r.provider, "service": r.service, "currency": r.currency,
                 "cost": decimal_text(r.cost), "missing": r.missing}
                for r in report.untagged_resources
            ],
        },
    }


def _csv(report: Report, out: TextIO) -> None:
    writer = csv.writer(out, lineterminator="\n")
    names = [d.name for d in report.dimensions]
    writer.writerow(names + ["currency", "cost", "share"])
    for row in report.rows:
        writer.writerow([_key(row, i) or "" for i in range(len(names))]
                        + [row.currency or "", decimal_text(row.cost), "" if row.share is None else f"{row.share:.6f}"])


def _label(row: ReportRow, index: int, report: Report) -> str:
    value = _key(row, index)
    if value is None:
        return "" if row.other else report.dimensions[index].missing_label
    return value


def _title(report: Report, currency: str | None) -> str:
    by = " × ".join(d.name for d in report.dimensions)
    window = report.request.window
    span = f"{window.start:%Y-%m-%d} .. {window.end:%Y-%m-%d} (end exclusive)"
    return f"{COST_TITLES[report.request.cost]} by {by}, {span}" + (f", {currency}" if currency else "")


def _table(report: Report, out: TextIO, width: int | None) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(file=out, width=width, highlight=False, soft_wrap=False)
    if not report.rows:
        console.print(f"No cost in {report.request.window.label()} for this selection.", markup=False)
        return
    with_trend = any(r.series for r in report.rows)
    for currency, total in report.totals.items():
        table = Table(title=_title(report, currency), title_justify="left", show_footer=True, expand=False)
        for i, dim in enumerate(report.dimensions):
            table.add_column(dim.name, footer="Total" if i == 0 else "", overflow="fold")
        table.add_column("cost", justify="right", footer=money(total, currency))
        table.add_column("share", justify="right", footer="100.0%")
        if with_trend:
            table.add_column(f"trend ({len(report.days)} d)", no_wrap=True)
        for row in report.rows:
            if row.currency != currency:
                continue
            cells = [_label(row, i, report) for i in range(len(report.dimensions))]
            cells += [money(row.cost), percent(row.share)]
            if with_trend:
                cells.append(sparkline(row.series))
            table.add_row(*cells, style="dim" if row.other else None)
        console.print(table)
    _untagged_text(report, console)


def _untagged_text(report: Report, console) -> None:
    from rich.markup import escape

    flagged = [t for t in report.untagged if t.cost and t.share and abs(t.share) >= 0.0005]
    if not flagged:
        if report.untagged and report.rows:
            console.print(f"All spend carries the required tags ({', '.join(report.required)}).")
        return
    console.print("[yellow]Untagged spend[/yellow] (missing required allocation tags):")
    for t in flagged:
        console.print(f"  {escape(t.tag):<14} {money(t.cost, t.currency):>20}  {percent(t.share):>6} of spend")
    if report.untagged_resources:
        console.print("  Top untagged resources:")
        for r in report.untagged_resources:
            what = r.resource or f"(no resource id: {r.service or 'aggregated'} from {r.provider or 'unknown'})"
            console.print(f"    {money(r.cost, r.currency):>20}  {escape(what)}  missing: {', '.join(r.missing)}",
                          markup=True)


def _markdown(report: Report) -> str:
    lines: list[str] = []
    names = [d.name for d in report.dimensions]
    for currency, total in report.totals.items():
        lines.append(f"### {_title(report, currency)}\n")
        lines.append("| " + " | ".join(names + ["cost", "share"]) + " |")
        lines.append("|" + "---|" * len(names) + "---:|---:|")
        for row in report.rows:
            if row.currency != currency:
                continue
            cells = [_md(_label(row, i, report)) for i in range(len(names))]
            lines.append("| " + " | ".join(cells + [money(row.cost), percent(row.share)]) + " |")
        lines.append("| **Total** | " + " | ".join([""] * (len(names) - 1) + [f"**{money(total, currency)}**",
                                                                            "100.0%"]) + " |")
        lines.append("")
    flagged = [t for t in report.untagged if t.cost]
    if flagged:
        lines.append("**Untagged spend** (missing required allocation tags):\n")
        for t in flagged:
            lines.append(f"- `{t.tag}`: {money(t.cost, t.currency)} ({percent(t.share)} of spend)")
        lines.append("")
    return "\n".join(lines)


def _md(text: str) -> str:
    return text.replace("|", "\\|")
