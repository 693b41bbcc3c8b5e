"""``finops sync``: pull sources into the store."""

from __future__ import annotations

from typing import List, Optional

import typer

from finops_cli.cli.context import AppContext, interactive, note


def sync(
    ctx: typer.Context,
    source: Optional[List[str]] = typer.Option(None, "--source", "-s", help="Sync only this source (repeatable).",
                                               metavar="NAME"),
    start: Optional[str] = typer.Option(None, "--start", help="Window start, inclusive (YYYY-MM-DD).",
                                        metavar="DATE"),
    end: Optional[str] = typer.Option(None, "--end", help="Window end, exclusive (YYYY-MM-DD); default tomorrow.",
                                      metavar="DATE"),
) -> None:
    """Pull sources into the store. Without --start, each source pulls its incremental window
    (the last few days again, since providers restate them; everything for file sources)."""
    from finops_cli.errors import ExitCode, UsageError
    from finops_cli.periods import resolve_window
    from finops_cli.sync import sync_sources

    app: AppContext = ctx.obj
    config = app.config()
    window = resolve_window(start, end) if (start or end) else None
    if not config.sources:
        raise UsageError(f"no sources configured in {config.path}")
    with app.open_store(config) as store:
        with _progress() as progress:
            results = sync_sources(config, store, source, window, on_start=progress.start, on_done=progress.done)
    failed = [r for r in results if not r.ok]
    if failed:
        codes = {int(r.error.exit_code) for r in failed}
        raise typer.Exit(int(ExitCode.USAGE) if int(ExitCode.USAGE) in codes else int(ExitCode.SOURCE))


def summary_line(result) -> str:
    from finops_cli.render import money

    if result.skipped:
        return f"  {result.source}: skipped ({result.skipped})"
    if not result.ok:
        from finops_cli.config import masked_text

        line = f"✗ {result.source}: {masked_text(result.error.message)}"
        if result.error.hint:
            line += f"\n    hint: {result.error.hint}"
        return line + "\n    the store keeps this source's earlier data"
    window = result.window.label() if result.window else "all data"
    parts = [f"{result.rows:,} rows", window, f"{result.seconds:.1f} s"]
    stats = result.stats
    if stats.requests:
        parts.append(f"{stats.requests} API request{'s' if stats.requests != 1 else ''}"
                     + (f" ({money(stats.request_cost, 'USD')})" if stats.request_cost else ""))
    if stats.bytes_processed and result.source_type != "focus":
        parts.append(f"{stats.bytes_processed:,} bytes processed")
    parts.extend(stats.notes)
    return f"✓ {result.source}: " + ", ".join(parts)


class _progress:
    """A spinner per source on a terminal; plain lines in cron and CI."""

    def __enter__(self):
        self._progress = None
        if interactive():
            from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

            from finops_cli.cli.context import stderr

            self._progress = Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(),
                                      console=stderr(), transient=True)
            self._progress.__enter__()
        self._task = None
        return self

    def start(self, name, window) -> None:
        if self._progress:
            label = window.label() if window else "all data"
            self._task = self._progress.add_task(f"syncing {name} ({label})", total=None)

    def done(self, result) -> None:
        if self._progress and self._task is not None:
            self._progress.remove_task(self._task)
            self._task = None
        note(summary_line(result))

    def __exit__(self, *exc):
        if self._progress:
            self._progress.__exit__(*exc)
