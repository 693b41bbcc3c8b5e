"""The ``finops`` command: global options, the command groups, and the one error handler.

Every command module is thin: it parses options, calls the library, and renders. Heavy
imports (duckdb, pyarrow, cloud SDKs) happen inside command bodies, so ``finops --help``,
``--version`` and shell completion start fast.
"""

from __future__ import annotations

import os
import sys
from typing import Optional

import typer

from finops_cli import __version__
from finops_cli.cli import budget as budget_cmd
from finops_cli.cli import config as config_cmd
from finops_cli.cli import demo as demo_cmd
from finops_cli.cli import k8s as k8s_cmd
from finops_cli.cli import report as report_cmd
from finops_cli.cli import sources as sources_cmd
from finops_cli.cli import sync as sync_cmd
from finops_cli.cli import tags as tags_cmd
from finops_cli.cli.context import AppContext, stderr
from finops_cli.errors import ExitCode, FinopsError

app = typer.Typer(
    name="finops",
    help="One FOCUS cost model for AWS, GCP, Azure, Kubernetes and AI spend: sync it, report on it, "
    "check budgets and tag policy from cron and CI.\n\n"
    "Exit codes: 0 ok, 1 a check failed, 2 usage or config error, 3 source or network error.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=True,
    rich_markup_mode=None,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"finops {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    ctx: typer.Context,
    config: Optional[str] = typer.Option(None, "--config", "-c", help="Config file (default: $FINOPS_CONFIG, "
                                         "./finops.yaml, ~/.config/finops/config.yaml).", metavar="FILE"),
    store: Optional[str] = typer.Option(None, "--store", help="DuckDB store file (default: `store:` in the config, "
                                        "else $XDG_DATA_HOME/finops/finops.duckdb).", metavar="FILE"),
    lock_timeout: Optional[float] = typer.Option(None, "--lock-timeout", help="Seconds to wait for another "
                                                 "finops process to release the store (default 300).",
                                                 metavar="SECONDS"),
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks for errors."),
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                 help="Print the version and exit."),
) -> None:
    ctx.obj = AppContext(config_path=config, store_path=store, lock_timeout=lock_timeout, debug=debug)


app.command("sync")(sync_cmd.sync)
app.command("report")(report_cmd.report)
app.command("demo")(demo_cmd.demo)
app.add_typer(config_cmd.app, name="config")
app.add_typer(sources_cmd.app, name="sources")
app.add_typer(budget_cmd.app, name="budget")
app.add_typer(tags_cmd.app, name="tags")
app.add_typer(k8s_cmd.app, name="k8s")


def run(argv: list[str] | None = None) -> None:
    """Console-script entry point: maps every error to one stderr line and a documented exit code."""
    args = sys.argv[1:] if argv is None else list(argv)
    debug = "--debug" in args or os.environ.get("FINOPS_DEBUG") == "1"
    try:
        app(args=args, prog_name="finops")
    except FinopsError as exc:
        if debug:
            raise
        report_error(exc)
        sys.exit(int(exc.exit_code))
    except KeyboardInterrupt:
        stderr().print("finops: interrupted", markup=False)
        sys.exit(int(ExitCode.INTERRUPTED))
    except Exception as exc:  # a bug: say so in one line, traceback on --debug
        if debug:
            raise
        stderr().print(f"finops: internal error: {type(exc).__name__}: {exc} (run with --debug for the traceback)",
                       markup=False)
        sys.exit(70)


def report_error(exc: FinopsError) -> None:
    from finops_cli.config import masked_text

    console = stderr()
    console.print(f"finops: error: {masked_text(exc.message)}", markup=False, highlight=False)
    if exc.hint:
        console.print(f"hint: {exc.hint}", markup=False, highlight=False)


if __name__ == "__main__":  # pragma: no cover
    run()
