"""Bad input gets one clear line on stderr and the documented exit code; the store keeps its data."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from conftest import run_process, write_config

HEADER = "BillingAccountId,BilledCost,EffectiveCost,BillingCurrency,ChargePeriodStart,ChargePeriodEnd,ChargeCategory,ServiceName,ProviderName,Tags\n"


def csv_row(cost="1.25", start="2024-05-01T00:00:00Z", end="2024-05-02T00:00:00Z", tags='"{""team"": ""a""}"'):
    return f"acct,{cost},{cost},USD,{start},{end},Usage,Compute,Acme,{tags}\n"


@pytest.fixture
def project(tmp_path):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "a.csv").write_text(HEADER + csv_row() + csv_row("2.50"))
    config = write_config(tmp_path, "store: s.duckdb\nsources:\n  - {name: files, type: focus, path: data}\n")
    return tmp_path, config


def total(finops, config):
    result = finops("-c", config, "report", "--by", "provider", "--period", "2024-05", "--format", "json",
                    "--no-refresh")
    assert result.exit_code == 0, result.stderr
    return Decimal(json.loads(result.stdout)["total"])


def test_unknown_dimension_is_a_usage_error(finops, project):
    _, config = project
    result = finops("-c", config, "report", "--by", "teem")
    assert result.exit_code == 2
    assert "unknown dimension 'teem'" in result.stderr and "team" in result.stderr


@pytest.mark.parametrize("args, message", [
    (["--start", "2024-02-30"], "--start: '2024-02-30' is not a date"),
    (["--period", "2024-13"], "--period: '2024-13' has no month 13"),
    (["--last", "soon"], "--last: 'soon' is not a span"),
    (["--start", "2024-05-02", "--end", "2024-05-01"], "empty time window"),
    (["--period", "2024-05", "--last", "7d"], "use only one of"),
    (["--cost", "cheapest"], "unknown cost basis 'cheapest'"),
    (["--filter", "team"], "expected DIMENSION=VALUE"),
])
def test_bad_report_options_are_usage_errors(finops, project, args, message):
    _, config = project
    result = finops("-c", config, "report", "--by", "team", *args)
    assert result.exit_code == 2, result.stderr
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_missing_mandatory_column_names_file_and_column_and_keeps_the_store(finops, project):
    folder, config = project
    assert finops("-c", config, "sync").exit_code == 0
    assert total(finops, config) == Decimal("3.75")
    (folder / "data" / "b.csv").write_text(HEADER.replace("BillingCurrency,", "") + "acct,1,1,2024-05-01,2024-05-02,Usage,x,y,{}\n")
    result = finops("-c", config, "sync")
    assert result.exit_code == 3
    assert "b.csv is not a FOCUS file: missing mandatory column(s) BillingCurrency" in result.stderr
    assert total(finops, config) == Decimal("3.75")


def test_bad_value_names_file_row_and_column(finops, project):
    folder, config = project
    assert finops("-c", config, "sync").exit_code == 0
    (folder / "data" / "a.csv").write_text(HEADER + csv_row() + csv_row("12.50 USD"))
    result = finops("-c", config, "sync")
    assert result.exit_code == 3
    assert "a.csv: data row 2, column BilledCost: '12.50 USD' is not a decimal number" in result.stderr
    assert total(finops, config) == Decimal("3.75")  # earlier data intact


def test_bad_timestamp_and_tags_are_named(finops, project):
    folder, config = project
    (folder / "data" / "a.csv").write_text(HEADER + csv_row(start="yesterday"))
    result = finops("-c", config, "sync")
    assert result.exit_code == 3 and "column ChargePeriodStart: 'yesterday' is not a date-time" in result.stderr
    (folder / "data" / "a.csv").write_text(HEADER + csv_row(tags="team=a"))
    result = finops("-c", config, "sync")
    assert result.exit_code == 3 and "column Tags: 'team=a' is not a JSON object of tags" in result.stderr


def test_unreadable_file_is_a_source_error(finops, project):
    """A file that is not CSV at all is reported with its name."""
    folder, config = project
    (folder / "data" / "a.csv").write_bytes(b"\x00\x01\x02 not a csv \xff\xfe" * 100)
    result = finops("-c", config, "sync")
    assert result.exit_code == 3
    assert "a.csv" in result.stderr and "Traceback" not in result.stderr


def test_missing_path_is_a_source_error(finops, tmp_path):
    config = write_config(tmp_path, "store: s.duckdb\nsources:\n  - {name: files, type: focus, path: nowhere/*.csv}\n")
    result = finops("-c", config, "sync")
    assert result.exit_code == 3
    assert "source 'files': no CSV or Parquet files match" in result.stderr


def test_one_failing_source_does_not_stop_the_others(finops, project):
    folder, config = project
    config.write_text("store: s.duckdb\nsources:\n  - {name: broken, type: focus, path: missing.csv}\n"
                      "  - {name: files, type: focus, path: data}\n")
    result = finops("-c", config, "sync")
    assert result.exit_code == 3
    assert "✗ broken" in result.stderr and "✓ files: 2 rows" in result.stderr
    assert total(finops, config) == Decimal("3.75")


def test_debug_shows_the_traceback(project):
    folder, config = project
    proc = run_process("-c", str(config), "--debug", "report", "--by", "teem")
    assert proc.returncode != 0 and "Traceback" in proc.stderr
    proc = run_process("-c", str(config), "report", "--by", "teem")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.count("\n") <= 2  # one message, at most one hint


def test_help_and_version_import_no_cloud_sdk_nor_the_store():
    code = ("import sys; from finops_cli.cli.main import run\n"
            "try:\n    run(sys.argv[1:])\nexcept SystemExit:\n    pass\n"
            "bad = [m for m in sys.modules if m.split('.')[0] in ('boto3', 'botocore', 'azure', 'duckdb', 'pyarrow')"
            " or m.startswith('google.cloud') or m.startswith('google.api_core')]\n"
            "print('LOADED', bad)")
    import subprocess
    import sys

    for args in (["--help"], ["--version"], ["report", "--help"], ["sync", "--help"]):
        proc = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=60)
        assert "LOADED []" in proc.stdout, (args, proc.stdout[-400:], proc.stderr[-400:])
