"""The docs stay true: every command has help and appears in the README; the example config validates."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def commands():
    from finops_cli.cli.main import app
    import typer.main

    group = typer.main.get_command(app)
    for name, command in group.commands.items():
        subcommands = getattr(command, "commands", None)
        if subcommands:
            for sub in subcommands:
                yield f"{name} {sub}", subcommands[sub]
        else:
            yield name, command


@pytest.mark.parametrize("name, command", list(commands()))
def test_every_command_has_help_and_is_in_the_readme(name, command):
    assert command.help, f"finops {name} has no help text"
    top = name.split()[0]
    assert f"finops {top}" in README, f"finops {name} is not documented in README.md"


def test_the_example_config_is_valid(finops, tmp_path):
    result = finops("-c", ROOT / "config.example.yaml", "config", "validate")
    assert result.exit_code == 0, result.stderr


def test_readme_commands_are_the_ci_commands():
    ci = (ROOT / ".ci" / "run").read_text()
    test_line = re.search(r"\*\*Run the whole test suite\*\*[^\n]*\n\n    ([^\n]+)\n", README).group(1)
    assert test_line in ci
    assert re.search(r"\*\*From a fresh clone to a demo report\*\*.*?\n\n    (.+finops demo)\n", README, re.S)


def test_every_registered_source_type_has_docs_and_loads():
    from finops_cli.sources import REGISTRY
    from finops_cli.sources.base import Source, SourceConfig

    for entry in REGISTRY.values():
        cls = entry.load()
        assert issubclass(cls, Source) and issubclass(cls.config_class, SourceConfig)
        assert (ROOT / entry.docs).is_file(), entry.docs
        assert f"`{entry.type}`" in README, f"source type {entry.type} missing from the README's table"
