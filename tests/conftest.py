"""Shared fixtures: run the real CLI in-process, isolated from the developer's own config and data."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
FOCUS_SAMPLE = SHARED / "data" / "focus" / "focus-sample-data" / "focus_sample.csv"


@dataclass
class Result:
    exit_code: int
    stdout: str
    stderr: str


@pytest.fixture(autouse=True)
def isolated_home(tmp_path_factory, monkeypatch):
    """No test may read the developer's ~/.config/finops or write to ~/.local/share/finops."""
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / ".config"))
    monkeypatch.setenv("XDG_DATA_HOME", str(home / ".local" / "share"))
    monkeypatch.delenv("FINOPS_CONFIG", raising=False)
    monkeypatch.delenv("FINOPS_NOW", raising=False)
    monkeypatch.setenv("CI", "1")  # no spinners
    monkeypatch.setenv("COLUMNS", "200")
    return home


@pytest.fixture
def finops(capsys):
    """Run ``finops ARGS`` in-process through the real entry point; returns exit code and both streams."""
    from finops_cli.cli.main import run

    def invoke(*args: str) -> Result:
        capsys.readouterr()
        code = 0
        try:
            run([str(a) for a in args])
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        out = capsys.readouterr()
        return Result(code, out.out, out.err)

    return invoke


def run_process(*args: str, env: dict | None = None, cwd: Path | None = None, timeout: float = 120):
    """Run finops as a separate process (for import checks, locking and kill tests)."""
    full_env = {**os.environ, **(env or {})}
    return subprocess.run([sys.executable, "-m", "finops_cli", *args], capture_output=True, text=True,
                          env=full_env, cwd=cwd, timeout=timeout)


def write_config(folder: Path, text: str) -> Path:
    path = folder / "finops.yaml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def focus_sample() -> Path:
    if not FOCUS_SAMPLE.is_file():
        pytest.skip(f"the FinOps Foundation FOCUS sample is not at {FOCUS_SAMPLE} (../shared is absent)")
    return FOCUS_SAMPLE
