"""``finops demo``: a working setup in one command, with no credentials and no network."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import typer

from finops_cli.cli.context import note, stdout_width


def demo(
    directory: Path = typer.Option(Path("finops-demo"), "--dir", help="Folder to write the demo into.",
                                   metavar="PATH"),
    seed: int = typer.Option(42, "--seed", help="Random seed: the same seed gives the same data."),
    days: int = typer.Option(90, "--days", min=7, max=800, help="Days of data to generate."),
    end: str = typer.Option(None, "--end", help="Exclusive last day of the data (default: tomorrow, so the data "
                            "ends today).", metavar="DATE"),
) -> None:
    """Write a demo config and 90 days of generated FOCUS data, sync it, and show `report --by team`."""
    from finops_cli import demo as demo_data
    from finops_cli.analyses.dimensions import derived_columns
    from finops_cli.analyses.report import ReportRequest, build_report
    from finops_cli.cli.sync import summary_line
    from finops_cli.config import load_config
    from finops_cli.periods import last_window, midnight, parse_moment
    from finops_cli.render import Format
    from finops_cli.render.report import render
    from finops_cli.store import Store
    from finops_cli.sync import sync_sources

    end_day = parse_moment(end, "--end").date() if end else None
    directory = directory.expanduser()
    directory.mkdir(parents=True, exist_ok=True)
    generated = demo_data.generate(directory, seed=seed, days=days, end=end_day)
    config_path = demo_data.write_config(directory)
    note(f"wrote {generated.rows:,} FOCUS rows ({generated.start} .. {generated.end}, end exclusive) "
         f"and {config_path}")
    config = load_config(path=config_path)
    with Store.open(config.store_path()) as store:
        store.use_derived(derived_columns(config.allocation))
        for result in sync_sources(config, store):
            note(summary_line(result))
        window = last_window("30d", midnight(generated.end) - __import__("datetime").timedelta(days=1))
        report = build_report(store.con, config.allocation,
                              ReportRequest(by=["team"], window=window, series=True))
    render(report, Format.table, sys.stdout, stdout_width())
    # Say the command the way this shell can run it (e.g. .venv/bin/finops right after the README's install).
    program = "finops" if shutil.which("finops") or not sys.argv[0].endswith("finops") else sys.argv[0]
    cfg = f"{program} -c {config_path}"
    note("\nNext, try:\n"
         f"  {cfg} report --by team --by service --top 5\n"
         f"  {cfg} report --by provider --last 90d\n"
         f"  {cfg} report --by service --filter team=data --last 14d   # find the spike\n"
         f"  {cfg} report --by team --format json\n"
         f"  {cfg} sources ledger")
