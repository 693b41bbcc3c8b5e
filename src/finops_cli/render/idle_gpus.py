"""Render an ``IdleGpuReport`` as a table (people) or JSON (programs; documented in docs/sources/kubernetes.md)."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any, TextIO

from finops_cli.analyses.idle_gpus import BUSY, IDLE, UNKNOWN, UNREQUESTED, GpuFinding, IdleGpuReport
from finops_cli.periods import iso
from finops_cli.render import decimal_text, money, percent


def as_json(report: IdleGpuReport) -> dict[str, Any]:
    return {
        "start": iso(report.window.start),
        "end": iso(report.window.end),
        "threshold": float(report.threshold),
        "currency": report.currency,
        "wasted": decimal_text(report.wasted),
        "gpu_cost": decimal_text(report.gpu_cost),
        "unknown_cost": decimal_text(report.unknown_cost),
        "gpus": [_finding(f) for f in report.findings],
    }


def _finding(f: GpuFinding) -> dict[str, Any]:
    a = f.allocation
    return {
        "status": f.status, "cluster": a.cluster, "node": a.node, "namespace": a.namespace,
        "workload": a.workload, "container": a.container, "device": a.device, "model": a.model,
        "shared": a.shared, "gpus": _number(f.gpus), "gpu_hours": _number(f.gpu_hours),
        "utilisation": None if f.utilisation is None else round(float(f.utilisation), 4),
        "gpu_cost": decimal_text(a.gpu_cost), "idle_cost": decimal_text(f.idle_cost),
    }


def _number(value: Decimal) -> str:
    text = format(value.normalize(), "f") if value else "0"
    return text


def render(report: IdleGpuReport, fmt: str, out: TextIO, width: int | None = None) -> None:
    if fmt == "json":
        json.dump(as_json(report), out, indent=2)
        out.write("\n")
        return
    from rich.console import Console
    from rich.table import Table

    console = Console(file=out, width=width, highlight=False, soft_wrap=False)
    span = f"{report.window.start:%Y-%m-%d %H:%M} .. {report.window.end:%Y-%m-%d %H:%M} UTC"
    wasteful = report.having(IDLE, UNREQUESTED)
    if not report.findings:
        console.print(f"No GPU allocations in {span}.", markup=False)
        return
    currency = report.currency
    table = Table(title=f"GPUs below {report.threshold * 100:.0f}% utilisation, {span}", title_justify="left",
                  show_footer=True)
    table.add_column("node", footer="Total wasted", overflow="fold")
    table.add_column("namespace", overflow="fold")
    table.add_column("workload", overflow="fold")
    table.add_column("GPUs", justify="right")
    table.add_column("util", justify="right")
    table.add_column("GPU h", justify="right")
    table.add_column("GPU cost", justify="right", footer=money(sum((f.allocation.gpu_cost for f in wasteful),
                                                                    Decimal(0)), currency))
    table.add_column("idle cost", justify="right", footer=money(report.wasted, currency))
    for f in wasteful:
        a = f.allocation
        workload = "(no pod requested it)" if f.status == UNREQUESTED else (a.workload or a.name)
        gpus = f"{f.gpus.normalize():f}" + (" shared" if a.shared else "")
        table.add_row(a.node or "-", a.namespace or "-", workload, gpus, percent(_float(f.utilisation)),
                      f"{f.gpu_hours:.1f}", money(a.gpu_cost, currency), money(f.idle_cost, currency))
    if wasteful:
        console.print(table)
    else:
        console.print(f"No idle GPUs in {span}: every GPU with utilisation data is at or above "
                      f"{report.threshold * 100:.0f}%.", markup=False)
    unknown = report.having(UNKNOWN)
    busy = report.having(BUSY)
    if unknown:
        names = ", ".join(f"{f.allocation.namespace}/{f.allocation.workload}" for f in unknown[:5])
        console.print(f"{len(unknown)} GPU allocation(s) costing {money(report.unknown_cost, currency)} have no "
                      f"utilisation data (unknown, not counted as idle): {names}"
                      + (" ..." if len(unknown) > 5 else ""), markup=False)
    console.print(f"{len(busy)} busy GPU allocation(s); GPU cost in the window "
                  f"{money(report.gpu_cost, currency)}.", markup=False)


def _float(value: Decimal | None) -> float | None:
    return None if value is None else float(value)
