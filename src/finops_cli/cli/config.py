"""``finops config validate|show|path``: check the configuration without calling any cloud API."""

from __future__ import annotations

import typer

from finops_cli.cli.context import AppContext, note

app = typer.Typer(help="Check and show the configuration (never calls a cloud API).", no_args_is_help=True)


@app.command("validate")
def validate(ctx: typer.Context) -> None:
    """Validate the config file: keys, types, dates, source names; exit 2 with the key path if wrong."""
    obj: AppContext = ctx.obj
    config = obj.config()
    note(f"{config.path}: OK ({len(config.sources)} source{'s' if len(config.sources) != 1 else ''})")


@app.command("show")
def show(ctx: typer.Context) -> None:
    """Print the effective configuration (defaults filled in) as YAML, secrets masked."""
    import yaml

    from finops_cli.config import shown

    obj: AppContext = ctx.obj
    config = obj.config()
    note(f"# {config.path}")
    typer.echo(yaml.safe_dump(shown(config), sort_keys=False, allow_unicode=True).rstrip())


@app.command("path")
def path(ctx: typer.Context) -> None:
    """Print where the config is looked for, and which file is used."""
    from finops_cli.config import candidate_paths

    obj: AppContext = ctx.obj
    for reason, candidate in candidate_paths(obj.config_path):
        mark = "*" if candidate.is_file() else " "
        typer.echo(f"{mark} {candidate}  ({reason})")
