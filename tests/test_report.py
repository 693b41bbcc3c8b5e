"""Report semantics: currencies never mix, rows always add up, filters and formats behave."""

from __future__ import annotations

import csv
import io
import json
from decimal import Decimal

import pytest

from conftest import write_config

HEADER = ("BillingAccountId,SubAccountId,SubAccountName,BilledCost,EffectiveCost,ListCost,BillingCurrency,"
          "ChargePeriodStart,ChargePeriodEnd,ChargeCategory,ChargeFrequency,ServiceName,ProviderName,ResourceId,Tags\n")
ROWS = [
    # account, cost, currency, day, service, provider, resource, tags
    ("111", "10.10", "USD", "2024-05-01", "Compute", "AWS", "i-1", '{"team": "search", "project": "a"}'),
    ("111", "5.05", "USD", "2024-05-02", "Storage", "AWS", "b-1", '{"Team": "ads"}'),
    ("222", "3.00", "USD", "2024-05-31", "Compute", "AWS", "i-2", "{}"),
    ("333", "7.00", "EUR", "2024-05-15", "Compute", "Microsoft", "vm-1", '{"team": "search"}'),
    ("333", "-1.00", "EUR", "2024-05-15", "Credit", "Microsoft", "", "{}"),
    ("111", "99.00", "USD", "2024-06-01", "Compute", "AWS", "i-1", '{"team": "search"}'),  # outside May
]


@pytest.fixture
def project(tmp_path, finops):
    lines = [HEADER]
    for account, cost, currency, day, service, provider, resource, tags in ROWS:
        end = f"{day[:8]}{int(day[8:]) + 1:02d}" if day != "2024-05-31" else "2024-06-01"
        tags = '"' + tags.replace('"', '""') + '"'
        lines.append(f"bill,{account},acct-{account},{cost},{cost},{cost},{currency},{day},{end},Usage,Usage-based,"
                     f"{service},{provider},{resource},{tags}\n")
    (tmp_path / "costs.csv").write_text("".join(lines))
    config = write_config(tmp_path, """
store: s.duckdb
allocation:
  aliases: {team: [team, Team]}
sources:
  - {name: files, type: focus, path: costs.csv}
""")
    assert finops("-c", config, "sync").exit_code == 0
    return config


def run_json(finops, config, *args):
    result = finops("-c", config, "report", "--period", "2024-05", "--format", "json", *args)
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


def test_currencies_are_never_added_together(finops, project):
    data = run_json(finops, project, "--by", "provider")
    assert data["currency"] is None and data["total"] is None
    assert data["totals"] == {"USD": "18.15", "EUR": "6.00"}
    assert {(r["provider"], r["currency"], r["cost"]) for r in data["rows"]} == {
        ("AWS", "USD", "18.15"), ("Microsoft", "EUR", "6.00")}
    table = finops("-c", project, "report", "--period", "2024-05", "--by", "provider")
    assert "18.15 USD" in table.stdout and "6.00 EUR" in table.stdout and "24.15" not in table.stdout


def test_aliases_feed_allocation_dimensions_and_untagged_is_reported(finops, project):
    data = run_json(finops, project, "--by", "team", "--filter", "currency=USD")
    assert {r["team"]: r["cost"] for r in data["rows"]} == {"search": "10.10", "ads": "5.05", None: "3.00"}
    untagged = {t["tag"]: t["cost"] for t in data["untagged"]["tags"]}
    assert untagged["team"] == "3.00" and untagged["project"] == "8.05"
    top = data["untagged"]["top_resources"][0]
    assert top["resource"] == "i-1" and top["missing"] == ["environment", "cost_center", "owner"]
    table = finops("-c", project, "report", "--period", "2024-05", "--by", "team", "--filter", "currency=USD")
    assert "(untagged)" in table.stdout and "Untagged spend" in table.stdout


def test_case_insensitive_tag_matching(finops, project, tmp_path):
    project.write_text(project.read_text().replace("aliases: {team: [team, Team]}", "case_insensitive: true"))
    data = run_json(finops, project, "--by", "team", "--filter", "currency=USD", "--no-refresh")
    assert {r["team"]: r["cost"] for r in data["rows"]} == {"search": "10.10", "ads": "5.05", None: "3.00"}


def test_filters_select_negate_and_match_missing(finops, project):
    assert run_json(finops, project, "--by", "service", "--filter", "team=search")["totals"] == {
        "USD": "10.10", "EUR": "7.00"}
    assert run_json(finops, project, "--by", "service", "--filter", "team=(untagged)",
                    "--filter", "currency=USD")["total"] == "3.00"
    assert run_json(finops, project, "--by", "service", "--filter", "team!=search",
                    "--filter", "currency=USD")["total"] == "8.05"
    for account in ("acct-111", "111", "acct-111 (111)"):  # a name, an id, or the label reports show
        assert run_json(finops, project, "--by", "service", "--filter", f"account={account}",
                        "--filter", "team=search,ads")["total"] == "15.15"


def test_top_folds_the_rest_so_rows_still_add_up(finops, project):
    data = run_json(finops, project, "--by", "resource", "--filter", "currency=USD", "--top", "1")
    assert [r["resource"] for r in data["rows"]] == ["i-1", "(other)"]
    assert data["rows"][1]["other"] is True
    assert sum(Decimal(r["cost"]) for r in data["rows"]) == Decimal(data["total"]) == Decimal("18.15")


def test_cost_bases_and_charge_frequency_casing(finops, project):
    data = run_json(finops, project, "--by", "ChargeFrequency", "--cost", "list", "--filter", "currency=USD")
    assert data["rows"] == [{"ChargeFrequency": "Usage-Based", "currency": "USD", "cost": "18.15", "share": 1.0}]


def test_csv_and_markdown_formats(finops, project):
    result = finops("-c", project, "report", "--period", "2024-05", "--by", "account", "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert {r["account"]: r["cost"] for r in rows} == {"acct-111 (111)": "15.15", "acct-222 (222)": "3.00",
                                                       "acct-333 (333)": "6.00"}
    md = finops("-c", project, "report", "--period", "2024-05", "--by", "service", "--format", "markdown").stdout
    assert "| service | cost | share |" in md and "**18.15 USD**" in md


def test_trend_sparkline_for_longer_windows(finops, project):
    result = finops("-c", project, "report", "--period", "2024-05", "--by", "provider")
    assert "trend (31 d)" in result.stdout
    short = finops("-c", project, "report", "--start", "2024-05-01", "--end", "2024-05-03", "--by", "provider")
    assert "trend" not in short.stdout


def test_empty_window_says_so(finops, project):
    result = finops("-c", project, "report", "--period", "2023-01", "--by", "team")
    assert result.exit_code == 0 and "No cost in" in result.stdout
