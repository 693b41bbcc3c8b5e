"""`finops demo` works offline, is deterministic for a seed, and shows what it promises."""

from __future__ import annotations

import hashlib
import json
from decimal import Decimal

from conftest import run_process


def digest(folder):
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted((folder / "data").iterdir())}


def test_demo_writes_syncs_and_reports(finops, tmp_path):
    result = finops("demo", "--dir", tmp_path / "demo", "--end", "2024-04-01")
    assert result.exit_code == 0, result.stderr
    assert "Effective cost by team" in result.stdout and "(untagged)" in result.stdout
    assert "Untagged spend" in result.stdout
    for name in ("aws", "azure", "gcp", "kubernetes", "ai-apis"):
        assert f"✓ {name}:" in result.stderr
    assert "Next, try:" in result.stderr

    config = tmp_path / "demo" / "finops.yaml"
    by_provider = json.loads(finops("-c", config, "report", "--by", "provider", "--start", "2024-01-02",
                                    "--end", "2024-04-01", "--format", "json").stdout)
    providers = {r["provider"] for r in by_provider["rows"]}
    assert {"AWS", "Microsoft", "Google Cloud", "Kubernetes", "OpenAI", "Anthropic"} <= providers
    by_team = json.loads(finops("-c", config, "report", "--by", "team", "--by", "service", "--start", "2024-01-02",
                                "--end", "2024-04-01", "--format", "json").stdout)
    assert by_team["total"] == by_provider["total"]
    untagged = next(t for t in by_team["untagged"]["tags"] if t["tag"] == "team")
    assert 0.02 < untagged["share"] < 0.25


def test_demo_has_one_cost_spike(finops, tmp_path):
    assert finops("demo", "--dir", tmp_path, "--end", "2024-04-01").exit_code == 0
    daily = json.loads(finops("-c", tmp_path / "finops.yaml", "report", "--by", "day", "--filter", "team=data",
                              "--filter", "service=BigQuery", "--start", "2024-01-02", "--end", "2024-04-01",
                              "--format", "json").stdout)
    costs = sorted((Decimal(r["cost"]), r["day"]) for r in daily["rows"])
    assert costs[-1][1] == "2024-03-20"  # 12 days before the end
    assert costs[-1][0] > 4 * costs[-2][0]


def test_demo_is_deterministic_for_a_seed(tmp_path):
    for name in ("a", "b"):
        proc = run_process("demo", "--dir", str(tmp_path / name), "--end", "2024-04-01", "--seed", "7")
        assert proc.returncode == 0, proc.stderr
    assert digest(tmp_path / "a") == digest(tmp_path / "b")
    other = run_process("demo", "--dir", str(tmp_path / "c"), "--end", "2024-04-01", "--seed", "8")
    assert other.returncode == 0 and digest(tmp_path / "c") != digest(tmp_path / "a")
