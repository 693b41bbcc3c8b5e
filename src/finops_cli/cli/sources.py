"""``finops sources``: what is configured, what each source type needs, and the sync ledger."""

from __future__ import annotations

import sys

import typer

from finops_cli.cli.context import AppContext, stdout_width

app = typer.Typer(help="List sources, source types and the sync ledger.", no_args_is_help=True)


@app.command("list")
def list_sources(ctx: typer.Context) -> None:
    """Configured sources, with their last successful sync."""
    from rich.console import Console
    from rich.table import Table

    from finops_cli.sync import age_text

    obj: AppContext = ctx.obj
    config = obj.config()
    table = Table("name", "type", "enabled", "last good sync", "rows")
    with obj.open_store(config) as store:
        counts = dict(store.con.execute("SELECT x_SourceName, count(*) FROM costs GROUP BY 1").fetchall())
        for src in config.sources:
            last = store.last_sync(src.name)
            table.add_row(src.name, src.type, "yes" if src.enabled else "no",
                          age_text(last.finished_at if last else None), f"{counts.get(src.name, 0):,}")
    Console(file=sys.stdout, width=stdout_width()).print(table)


@app.command("types")
def types() -> None:
    """Source types this finops knows, and the pip extra each needs."""
    from finops_cli.sources import REGISTRY

    for entry in REGISTRY.values():
        extra = f'pip install "finops-cli[{entry.extra}]"' if entry.extra else "built in"
        typer.echo(f"{entry.type:<10} {entry.title}  ({extra}; {entry.docs})")


@app.command("ledger")
def ledger(ctx: typer.Context, limit: int = typer.Option(20, "--limit", min=1),
           source: str = typer.Option(None, "--source", metavar="NAME")) -> None:
    """The most recent syncs: window, rows, status, API requests, errors."""
    from rich.console import Console
    from rich.table import Table

    from finops_cli.render import money

    obj: AppContext = ctx.obj
    table = Table("id", "source", "window", "status", "rows", "started", "secs", "requests", "error")
    with obj.open_store() as store:
        for row in store.ledger(limit, source):
            window = (f"{row['window_start']:%Y-%m-%d}..{row['window_end']:%Y-%m-%d}"
                      if row["window_start"] else "all")
            secs = (row["finished_at"] - row["started_at"]).total_seconds() if row["finished_at"] else None
            requests = str(row["requests"] or 0) + (f" ({money(row['request_cost'], 'USD')})"
                                                    if row["request_cost"] else "")
            table.add_row(str(row["load_id"]), row["source"], window, row["status"], f"{row['rows'] or 0:,}",
                          f"{row['started_at']:%Y-%m-%d %H:%M:%S}", "" if secs is None else f"{secs:.1f}",
                          requests, row["error"] or "")
    Console(file=sys.stdout, width=stdout_width()).print(table)
