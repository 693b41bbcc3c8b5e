"""Options shared by several commands, declared once so they read the same everywhere."""

from __future__ import annotations

import typer

START = typer.Option(None, "--start", help="Window start, inclusive (YYYY-MM-DD).", metavar="DATE")
END = typer.Option(None, "--end", help="Window end, exclusive (YYYY-MM-DD).", metavar="DATE")
PERIOD = typer.Option(None, "--period", help="A month (2024-09), quarter (2024-Q3), year or day.",
                      metavar="PERIOD")
LAST = typer.Option(None, "--last", help="The last N days/weeks/months, today included (30d, 4w, 3m). "
                    "Default: report.last in the config, else 30d.", metavar="SPAN")
COST = typer.Option(None, "--cost", help="Cost basis: effective (amortised, default), billed (invoiced), list "
                    "or contracted.", metavar="BASIS")
