"""The FinOps Foundation's real FOCUS sample loads and reports the published totals to the last decimal."""

from __future__ import annotations

import itertools
import json
from decimal import Decimal

import pytest

from conftest import write_config

# Published sums (shared/data/focus/SOURCES.md), computed with Python decimal over the raw file.
BILLED = Decimal("20.52022672899")
EFFECTIVE = Decimal("14.97651418586")
PER_PROVIDER = {
    "AWS": (Decimal("18.00663861840"), Decimal("13.00000000000")),
    "Microsoft": (Decimal("1.97651418586"), Decimal("1.97651418586")),
    "Oracle": (Decimal("0.53707392473"), Decimal("0")),
}
WINDOW = ["--start", "2024-09-01", "--end", "2024-11-01"]  # a few Oracle rows start 2024-10-01


@pytest.fixture
def sample_config(tmp_path, focus_sample):
    return write_config(tmp_path, f"""
store: store.duckdb
sources:
  - name: sample
    type: focus
    path: {focus_sample}
""")


def report_json(finops, config, *args):
    result = finops("-c", config, "report", *WINDOW, "--format", "json", *args)
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


def test_sample_totals_match_the_published_sums(finops, sample_config):
    result = finops("-c", sample_config, "sync")
    assert result.exit_code == 0, result.stderr
    assert "1,000 rows" in result.stderr

    billed = report_json(finops, sample_config, "--by", "provider", "--cost", "billed")
    effective = report_json(finops, sample_config, "--by", "provider")
    assert Decimal(billed["total"]) == BILLED
    assert Decimal(effective["total"]) == EFFECTIVE
    assert billed["currency"] == "USD" and billed["row_count"] == 1000
    for row in billed["rows"]:
        assert Decimal(row["cost"]) == PER_PROVIDER[row["provider"]][0]
    for row in effective["rows"]:
        assert Decimal(row["cost"]) == PER_PROVIDER[row["provider"]][1]


DIMENSIONS = ["provider", "service", "account", "region", "charge", "team", "day", "tag:Environment"]


def test_every_view_of_the_window_sums_to_the_same_total(finops, sample_config):
    from finops_cli.analyses.report import ReportRequest, build_report
    from finops_cli.config import load_config
    from finops_cli.periods import resolve_window
    from finops_cli.store import Store

    assert finops("-c", sample_config, "sync").exit_code == 0
    # Through the CLI once per basis, then every pair of dimensions through the library on one connection.
    for cost, expected in (("billed", BILLED), ("effective", EFFECTIVE)):
        data = report_json(finops, sample_config, "--cost", cost, "--by", "team", "--by", "service")
        assert sum(Decimal(r["cost"]) for r in data["rows"]) == expected
    config = load_config(path=sample_config)
    window = resolve_window(*WINDOW[1::2])
    with Store.open(config.store_path()) as store:
        for cost, expected in (("billed", BILLED), ("effective", EFFECTIVE)):
            for pair in itertools.combinations(DIMENSIONS, 2):
                report = build_report(store.con, config.allocation, ReportRequest(list(pair), window, cost))
                assert sum(r.cost for r in report.rows) == expected, pair
                assert report.totals == {"USD": expected}, pair


def test_the_last_day_of_a_month_is_in_that_month(finops, sample_config):
    """End dates are exclusive: September must include September 30th (the classic peer bug drops it)."""
    assert finops("-c", sample_config, "sync").exit_code == 0
    september = report_json_window(finops, sample_config, ["--period", "2024-09"])
    last_day = report_json_window(finops, sample_config, ["--start", "2024-09-30", "--end", "2024-10-01"])
    before = report_json_window(finops, sample_config, ["--start", "2024-09-01", "--end", "2024-09-30"])
    assert Decimal(last_day["total"]) > 0
    assert Decimal(before["total"]) + Decimal(last_day["total"]) == Decimal(september["total"])


def report_json_window(finops, config, window):
    result = finops("-c", config, "report", *window, "--by", "provider", "--cost", "billed", "--format", "json")
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


def test_resyncing_the_same_window_never_double_counts(finops, sample_config):
    for _ in range(3):
        assert finops("-c", sample_config, "sync").exit_code == 0
    data = report_json(finops, sample_config, "--by", "provider", "--cost", "billed")
    assert Decimal(data["total"]) == BILLED and data["row_count"] == 1000


def test_a_synced_window_replaces_only_that_window(finops, sample_config):
    assert finops("-c", sample_config, "sync").exit_code == 0
    assert finops("-c", sample_config, "sync", "--start", "2024-09-10", "--end", "2024-09-12").exit_code == 0
    data = report_json(finops, sample_config, "--by", "provider", "--cost", "billed")
    assert Decimal(data["total"]) == BILLED and data["row_count"] == 1000
