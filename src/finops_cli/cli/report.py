"""``finops report``: cost by any dimensions, with untagged-spend warnings."""

from __future__ import annotations

import sys
from typing import List, Optional

import typer

from finops_cli.cli import options

from finops_cli.cli.context import AppContext, note, stdout_width, warn
from finops_cli.render import Format


def report(
    ctx: typer.Context,
    by: List[str] = typer.Option(..., "--by", "-b", help="Dimension to group by (repeatable): team, project, "
                                 "environment, cost_center, owner, provider, account, service, category, region, "
                                 "resource, charge, currency, day, month, source, tag:KEY, x:KEY or a FOCUS column.",
                                 metavar="DIM"),
    start: Optional[str] = options.START,
    end: Optional[str] = options.END,
    period: Optional[str] = options.PERIOD,
    last: Optional[str] = options.LAST,
    cost: Optional[str] = options.COST,
    filter_: Optional[List[str]] = typer.Option(None, "--filter", "-f", help="Keep only DIM=VALUE (repeatable; "
                                                "VALUE may be a,b; DIM!=VALUE excludes; (untagged) matches missing).",
                                                metavar="DIM=VALUE"),
    top: Optional[int] = typer.Option(None, "--top", min=1, help="Show the N largest rows per currency and fold "
                                      "the rest into (other).", metavar="N"),
    allocations: str = typer.Option("auto", "--allocations", help="Kubernetes allocation rows (opencost, "
                                    "kubecost) re-divide cloud spend: auto leaves them out unless --filter "
                                    "source= picks sources; include adds them; only shows just them; exclude.",
                                    metavar="auto|include|only|exclude"),
    fmt: Format = typer.Option(Format.table, "--format", help="table, json, csv or markdown."),
    refresh: Optional[bool] = typer.Option(None, "--refresh/--no-refresh", help="Re-sync stale sources first "
                                           "(default: report.refresh in the config, true)."),
) -> None:
    """Cost by DIM over a window, with share, trend and untagged spend.

    Example: finops report --by team --by service --last 30d
    """
    from finops_cli.analyses.report import ReportRequest, build_report
    from finops_cli.errors import ExitCode
    from finops_cli.periods import resolve_window
    from finops_cli.render.report import render

    app: AppContext = ctx.obj
    config = app.config()
    settings = config.file.report
    window = resolve_window(start, end, period, last, default_last=settings.last)
    request = ReportRequest(
        by=list(by), window=window, cost=cost or settings.cost, filters=list(filter_ or []),
        top=top or settings.top, untagged_top=settings.untagged_top, series=fmt is Format.table,
        allocations=allocations.strip().lower(),
    )
    refresh_failed = False
    with app.open_store(config) as store:
        if settings.refresh if refresh is None else refresh:
            refresh_failed = refresh_stale(config, store)
        result = build_report(store.con, config.allocation, request)
    render(result, fmt, sys.stdout, stdout_width())
    if any(result.left_out.values()):
        note(left_out_text(result))
    if refresh_failed:
        raise typer.Exit(int(ExitCode.SOURCE))


def left_out_text(result) -> str:
    from finops_cli.render import money

    amounts = ", ".join(money(v, c) for c, v in result.left_out.items() if v)
    names = ", ".join(result.left_out_sources)
    return (f"note: left out {amounts} of Kubernetes allocations ({names}): they re-divide cloud spend this "
            f"report already counts. See them with --allocations only, or --filter source={names.split(', ')[0]}.")


def refresh_stale(config, store) -> bool:
    """Re-sync the sources whose data is stale; say how old the data is where that failed."""
    from finops_cli.cli.sync import summary_line
    from finops_cli.sync import age_text, sync_sources

    failed = False
    for result in sync_sources(config, store, only_stale=True):
        if result.skipped:
            continue
        note(summary_line(result))
        if not result.ok:
            failed = True
            last = store.last_sync(result.source)
            warn(f"reporting {result.source} on data synced {age_text(last.finished_at if last else None)}")
    return failed
