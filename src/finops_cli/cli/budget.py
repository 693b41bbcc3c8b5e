"""``finops budget check``: evaluate budgets, alert each crossing once, exit with a code cron can act on."""

from __future__ import annotations

import sys
from enum import Enum
from typing import List, Optional

import typer

from finops_cli.cli.context import AppContext, note, stdout_width, warn

app = typer.Typer(help="Budgets: check spend and forecasts against budgets, and send alerts.",
                  no_args_is_help=True)


class CheckFormat(str, Enum):
    table = "table"
    json = "json"
    markdown = "markdown"


class FailOn(str, Enum):
    warning = "warning"
    critical = "critical"
    emergency = "emergency"
    never = "never"


@app.command("check")
def check(
    ctx: typer.Context,
    budget: Optional[List[str]] = typer.Option(None, "--budget", "-b", help="Check only this budget (repeatable).",
                                               metavar="NAME"),
    fmt: CheckFormat = typer.Option(CheckFormat.table, "--format", help="table, json or markdown."),
    no_notify: bool = typer.Option(False, "--no-notify", help="Evaluate and print; send nothing, record nothing."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Show the alerts that would be sent; send nothing."),
    fail_on: FailOn = typer.Option(FailOn.warning, "--fail-on", help="Exit 1 when a crossed threshold has this "
                                   "severity or higher: warning (default), critical, emergency, or never."),
    refresh: Optional[bool] = typer.Option(None, "--refresh/--no-refresh", help="Re-sync stale sources first "
                                           "(default: report.refresh in the config, true)."),
) -> None:
    """Spend, forecast and thresholds of every budget; alerts each crossing once.

    Exit codes: 0 all clear, 1 a threshold at or above --fail-on is crossed, 2 bad config or usage,
    3 a source could not be refreshed or an alert could not be delivered (the check still ran).

    Example: finops budget check --fail-on critical
    """
    from finops_cli.analyses.budgets import SourceForecasts, cached_daily, evaluate
    from finops_cli.budgets.config import SEVERITIES
    from finops_cli.cli.report import refresh_stale
    from finops_cli.errors import ExitCode, UsageError
    from finops_cli.notifiers.dispatch import deliver, load_state, plan
    from finops_cli.periods import iso, utcnow
    from finops_cli.render import Format
    from finops_cli.render.budgets import render
    from finops_cli.sync import data_age

    obj: AppContext = ctx.obj
    config = obj.config()
    budgets = config.file.budgets
    if not budgets:
        raise UsageError(f"no budgets in {config.path}", hint="add a budgets: list (see docs/budgets.md)")
    channels = config.file.notifications
    now = utcnow()
    refresh_failed = False
    deliveries, previews = [], []
    with obj.open_store(config) as store:
        if config.file.report.refresh if refresh is None else refresh:
            refresh_failed = refresh_stale(config, store)
        ages = {name: (iso(moment) if moment else None)
                for name, moment in data_age(store, [src.name for src in config.sources]).items()}
        statuses = evaluate(store.con, budgets, config.allocation, names=budget, now=now,
                            provider_forecast=cached_daily(SourceForecasts(config), store))
        if not no_notify:
            deliveries = plan(statuses, channels, load_state(store, [s.name for s in statuses]))
            # Sent while the store lock is held: an overlapping run waits, then sees what was sent.
            previews = deliver(deliveries, channels, store, dry_run=dry_run)

    failed = [d for d in deliveries if d.status == "failed"]
    extra = {"now": iso(now), "synced": ages, "notifications": [d.as_json() for d in deliveries],
             "refresh_failed": refresh_failed, "dry_run": dry_run}
    render(statuses, Format(fmt.value), sys.stdout, stdout_width(), extra=extra if fmt is CheckFormat.json else None)
    for status in statuses:
        for message in status.warnings:
            warn(f"{status.name}: {message}")
        if fmt is CheckFormat.table:
            for message in status.notes:
                note(f"note: {status.name}: {message}")
    for line in previews:
        note(f"would send {line}")
    for item in deliveries:
        if item.status == "sent":
            note(f"sent {item.alert.event} to {item.channel} ({item.channel_type}): {item.alert.summary}")
        elif item.status == "failed":
            note(f"✗ could not deliver to {item.channel} ({item.channel_type}): {item.error}; "
                 f"it will be retried on the next run")
    if failed:
        warn(f"{len(failed)} alert{'s' if len(failed) != 1 else ''} not delivered")

    if refresh_failed or failed:
        raise typer.Exit(int(ExitCode.SOURCE))
    if fail_on is not FailOn.never:
        floor = SEVERITIES.index(fail_on.value)
        if any(s.severity and SEVERITIES.index(s.severity) >= floor for s in statuses):
            raise typer.Exit(int(ExitCode.CHECK_FAILED))
