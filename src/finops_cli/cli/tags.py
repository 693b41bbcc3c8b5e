"""``finops tags audit``: the tag policy as a CI gate, on billing data and on Terraform plans."""

from __future__ import annotations

import sys
from typing import List, Optional

import typer

from finops_cli.cli import options

from finops_cli.cli.context import AppContext, note, stdout_width, warn
from finops_cli.render.tag_audit import AuditFormat

app = typer.Typer(help="Check tags against the tag policy: spend in the store and Terraform plans.",
                  no_args_is_help=True)


@app.command("audit")
def audit(
    ctx: typer.Context,
    plan: Optional[List[str]] = typer.Option(None, "--plan", help="Terraform plan JSON (terraform show -json "
                                             "plan.out) to check; repeatable; - reads stdin.", metavar="FILE"),
    no_billing: bool = typer.Option(False, "--no-billing", help="Check only the plans, not the spend in the store."),
    policy: Optional[str] = typer.Option(None, "--policy", help="Tag policy file (default: the tags: section of "
                                         "the config).", metavar="FILE"),
    start: Optional[str] = options.START,
    end: Optional[str] = options.END,
    period: Optional[str] = options.PERIOD,
    last: Optional[str] = options.LAST,
    cost: Optional[str] = options.COST,
    fmt: AuditFormat = typer.Option(AuditFormat.table, "--format", help="table, json, markdown, junit, sarif "
                                    "or github (workflow annotations)."),
    fail_on: Optional[List[str]] = typer.Option(None, "--fail-on", help="Which violations fail the check: any "
                                                "(default), billing, plan, error (errors only, not warnings), "
                                                "none; comma-separated, e.g. plan,error.", metavar="WHICH"),
    output: Optional[str] = typer.Option(None, "--output", "-o", help="Write the report to FILE instead of "
                                         "stdout.", metavar="FILE"),
    top: int = typer.Option(10, "--top", min=1, help="Offending resources and groups to list.", metavar="N"),
    refresh: bool = typer.Option(False, "--refresh/--no-refresh", help="Re-sync stale sources first "
                                 "(default: audit the store as it is)."),
) -> None:
    """Audit tags against the policy; exit 0 pass, 1 policy violated, 2 usage/config error, 3 source error.

    Example: finops tags audit --plan plan.json --format sarif --output tags.sarif
    """
    from finops_cli.analyses.tag_audit import audit_billing, parse_fail_on, run_audit
    from finops_cli.errors import CheckFailed, ExitCode
    from finops_cli.periods import resolve_window
    from finops_cli.render.tag_audit import render, verdict
    from finops_cli.tags.policy import load_rules
    from finops_cli.tags.terraform import read_plan

    app_ctx: AppContext = ctx.obj
    selection = parse_fail_on(fail_on)
    plans_given = list(plan or [])
    config = _config(app_ctx, required=not no_billing and not plans_given)
    rules = load_rules(config, policy)
    plans = [read_plan(path) for path in plans_given]
    if no_billing and not plans:
        from finops_cli.errors import UsageError

        raise UsageError("--no-billing leaves nothing to audit: give at least one --plan FILE")

    billing = None
    refresh_failed = False
    if not no_billing and config is None:
        note("finops: no config found: auditing the plans only (pass --no-billing to say so)")
    elif not no_billing:
        settings = config.file.report
        window = resolve_window(start, end, period, last, default_last=settings.last)
        with app_ctx.open_store(config) as store:
            if refresh:
                from finops_cli.cli.report import refresh_stale

                refresh_failed = refresh_stale(config, store)
            billing = audit_billing(store.con, rules, window, cost or settings.cost, top)
        if not billing.row_count:
            warn(f"no billing data ({', '.join(billing.charges) or 'any'} charges) in the store for "
                 f"{window.label()}; run `finops sync` first, or pass --no-billing")

    result = run_audit(rules, selection, billing, plans)
    if output:
        _write(output, lambda out: render(result, fmt, out, None, top))
    else:
        render(result, fmt, sys.stdout, stdout_width(), top)
    if refresh_failed:
        raise typer.Exit(int(ExitCode.SOURCE))
    if result.failed:
        raise CheckFailed(verdict(result))
    if output or fmt not in (AuditFormat.table, AuditFormat.markdown):
        note(verdict(result))


def _config(app_ctx: AppContext, required: bool):
    """The config, or None when none exists anywhere and plans alone can be audited."""
    import os

    from finops_cli.config import candidate_paths

    if required or app_ctx.config_path or os.environ.get("FINOPS_CONFIG"):
        return app_ctx.config()
    if any(path.is_file() for _, path in candidate_paths(None)):
        return app_ctx.config()
    return None


def _write(path: str, write) -> None:
    from finops_cli.errors import UsageError

    try:
        with open(path, "w", encoding="utf-8") as out:
            write(out)
    except OSError as exc:
        raise UsageError(f"--output {path}: cannot write: {exc.strerror or exc}") from None
