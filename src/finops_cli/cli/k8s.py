"""``finops k8s``: live views of a Kubernetes cluster's cost (OpenCost or Kubecost sources)."""

from __future__ import annotations

import sys
from typing import Optional

import typer

from finops_cli.cli.context import AppContext, stdout_width

app = typer.Typer(help="Kubernetes views that ask OpenCost or Kubecost live (idle GPUs).", no_args_is_help=True)

K8S_TYPES = ("opencost", "kubecost")


@app.command("idle-gpus")
def idle_gpus(
    ctx: typer.Context,
    source: Optional[str] = typer.Option(None, "--source", "-s", help="The opencost or kubecost source to ask "
                                         "(default: the only one configured).", metavar="NAME"),
    threshold: str = typer.Option("10%", "--threshold", help="Utilisation below which a GPU is idle "
                                  "(10% or 0.1).", metavar="PERCENT"),
    window: str = typer.Option("24h", "--window", help="How much recent data to judge, 30m to 7d.",
                               metavar="DURATION"),
    fmt: str = typer.Option("table", "--format", help="table or json.", metavar="table|json"),
) -> None:
    """GPUs whose utilisation stayed below a threshold, and what their idle share cost.

    Example: finops k8s idle-gpus --window 24h --threshold 10%
    """
    from datetime import timedelta

    from finops_cli.analyses.idle_gpus import find_idle_gpus
    from finops_cli.errors import UsageError
    from finops_cli.periods import Window, parse_duration, utcnow
    from finops_cli.render.idle_gpus import render
    from finops_cli.sources.kubernetes import gpu_allocations
    from finops_cli.sync import build_source

    if fmt not in ("table", "json"):
        raise UsageError(f"--format: {fmt!r} is not table or json")
    span = parse_duration(window, "--window")
    if not timedelta(minutes=30) <= span <= timedelta(days=7):
        raise UsageError(f"--window: {window!r} is outside 30m..7d (GPU utilisation is averaged over the window)")
    limit = parse_threshold(threshold)
    app_ctx: AppContext = ctx.obj
    config = app_ctx.config()
    source_config = pick_source(config, source)
    k8s = build_source(config, source_config)
    end = utcnow().replace(second=0, microsecond=0)
    judged = Window(end - span, end)
    report = find_idle_gpus(gpu_allocations(k8s, judged), judged, source_config.currency, limit)
    render(report, fmt, sys.stdout, stdout_width())


def parse_threshold(text: str):
    from decimal import Decimal, InvalidOperation

    from finops_cli.errors import UsageError

    raw = text.strip()
    try:
        value = Decimal(raw.rstrip("%")) / (100 if raw.endswith("%") or Decimal(raw.rstrip("%")) > 1 else 1)
    except InvalidOperation:
        raise UsageError(f"--threshold: {text!r} is not a percentage (e.g. 10% or 0.1)") from None
    if not 0 < value <= 1:
        raise UsageError(f"--threshold: {text!r} must be above 0% and at most 100%")
    return value


def pick_source(config, name: str | None):
    from finops_cli.errors import ConfigError

    if name:
        chosen = config.source(name)
        if chosen.type not in K8S_TYPES:
            raise ConfigError(f"source {name!r} is of type {chosen.type}, not opencost or kubecost")
        return chosen
    candidates = [s for s in config.sources if s.type in K8S_TYPES and s.enabled]
    if len(candidates) != 1:
        found = ", ".join(s.name for s in candidates) or "none"
        raise ConfigError(f"name the source with --source (opencost/kubecost sources configured: {found})")
    return candidates[0]
