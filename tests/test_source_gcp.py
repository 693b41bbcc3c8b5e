"""The gcp source, through the real google-cloud-bigquery client against a fake BigQuery on 127.0.0.1.

The fake answers with what BigQuery returns for the project's aggregate query (one row per
day and dimension set, REPEATED label columns, NUMERIC money); the totals below are summed by
hand from FIXTURE. The SQL itself runs for real in test_source_gcp_bqemulator.py.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from decimal import Decimal

import duckdb
import pytest
from conftest import run_process, write_config
from fakes import bigquery as fake_bigquery

TABLE = "billing-proj.billing.gcp_billing_export_v1_0000AA_BBBBBB_CCCCCC"
WINDOW = ("--start", "2024-01-01", "--end", "2024-01-04")
SUD, CUD, FREE_TIER, PROMOTION = "credit_0", "credit_1", "credit_4", "credit_5"


def kv(**pairs):
    return [{"key": k, "value": v} for k, v in pairs.items()]


def fixture_rows():
    base = {"currency": "USD", "billing_account_id": "0000AA-BBBBBB-CCCCCC", "invoice_month": "202401",
            "cost_type": "regular"}
    return [
        {**base, "usage_day": "2024-01-01", "service_name": "Compute Engine", "service_id": "6F81-5844-456A",
         "sku_id": "2E27-4F75-95CD", "sku_description": "N1 Predefined Instance Core running in Americas",
         "project_id": "search-prod", "project_name": "Search", "region": "us-central1",
         "zone": "us-central1-a", "location_name": "us-central1", "usage_unit": "seconds",
         "pricing_unit": "hour",
         "labels": kv(team="search", env="prod"),
         "project_labels": kv(team="search-platform", cost_center="cc-1"),
         "system_labels": [{"key": "compute.googleapis.com/machine_spec", "value": "n1-standard-4"}],
         "cost": "100.123456", "cost_at_list": "120.000001", "credits_total": "-30.5",
         SUD: "-20.5", CUD: "-10",
         "usage_amount": "86400", "pricing_amount": "24"},
        {**base, "usage_day": "2024-01-01", "service_name": "Cloud Storage", "sku_id": "E5F0-6A5D-7BAD",
         "sku_description": "Standard Storage US Multi-region", "project_id": "ads-prod",
         "project_name": "Ads",
         "location_name": "us", "labels": [], "project_labels": kv(team="ads"),
         "cost": "12.5", "cost_at_list": "12.5", "usage_amount": "1000", "pricing_amount": "0.5"},
        {**base, "usage_day": "2024-01-02", "service_name": "BigQuery", "sku_id": "3362-E469-6BEF",
         "sku_description": "Analysis", "project_id": "ads-prod", "project_name": "Ads",
         "location_name": "US",
         "labels": kv(team="ads-analytics"), "project_labels": kv(team="ads"),
         "cost": "45.000001", "credits_total": "-45.000001", FREE_TIER: "-45.000001"},
        {**base, "usage_day": "2024-01-02", "service_name": "Compute Engine", "sku_id": "A1B2-C3D4-E5F6",
         "sku_description": "Spot Preemptible N2 Instance Core running in Americas",
         "project_id": "search-prod", "project_name": "Search", "region": "us-east1",
         "labels": kv(team="search"),
         "cost": "3.3", "cost_at_list": "10", "usage_amount": "3600", "pricing_amount": "1"},
        {**base, "usage_day": "2024-01-03", "service_name": "Invoice", "sku_description": "Tax",
         "cost_type": "tax", "cost": "8.47"},
        {**base, "usage_day": "2024-01-03", "service_name": "Compute Engine", "sku_id": "C0MM-1T00-0001",
         "sku_description": "Commitment v1: Cpu in Americas for 1 Year", "project_id": "search-prod",
         "project_name": "Search", "region": "us-central1", "cost": "50"},
        {**base, "usage_day": "2024-01-03", "service_name": "Compute Engine", "cost_type": "adjustment",
         "sku_description": "Adjustment for billing error", "project_id": "search-prod", "cost": "-5.25",
         "invoice_month": "202402"},
        {**base, "usage_day": "2024-01-03", "service_name": "Vertex AI", "sku_id": "FA11-0000-0001",
         "sku_description": "Gemini 1.5 Pro input tokens", "project_id": "ml-lab", "project_name": "ML Lab",
         "labels": kv(team="ml"), "cost": "20", "credits_total": "-7.77", PROMOTION: "-7"},
    ]


# Summed by hand from fixture_rows(): cost, cost + credits, cost_at_list (else cost).
CONTRACTED = Decimal("234.143457")
BILLED = Decimal("150.873456")
LIST = Decimal("260.720002")
BILLED_BY_TEAM = {"search": Decimal("72.923456"), "ads": Decimal("12.5"), "ads-analytics": Decimal("0"),
                  "ml": Decimal("12.23"), None: Decimal("53.22")}


@pytest.fixture
def bq():
    server, state = fake_bigquery.start()
    state.add_table(TABLE)
    state.result_rows = fixture_rows()
    yield state
    server.shutdown()
    server.server_close()


@pytest.fixture
def gcp_config(tmp_path, bq):
    def make(**extra):
        keys = {"table": TABLE, "credentials": "anonymous", "api_endpoint": bq.url, "timeout": 5, **extra}
        lines = "".join(f"    {k}: {v}\n" for k, v in keys.items())
        return write_config(tmp_path, f"store: {tmp_path / 'store.duckdb'}\nsources:\n"
                                      f"  - name: gcp-billing\n    type: gcp\n{lines}")
    return make


def store_rows(tmp_path, sql):
    with duckdb.connect(str(tmp_path / "store.duckdb"), read_only=True) as con:
        return con.execute(sql).fetchall()


def totals(tmp_path):
    return store_rows(tmp_path, "SELECT count(*), sum(ContractedCost), sum(BilledCost), sum(EffectiveCost), "
                                "sum(ListCost) FROM costs")[0]


def test_sync_stores_exact_totals_of_the_export(finops, gcp_config, tmp_path, bq):
    config = gcp_config()
    result = finops("--config", config, "sync", *WINDOW)
    assert result.exit_code == 0, result.stderr
    assert totals(tmp_path) == (8, CONTRACTED, BILLED, BILLED, LIST)
    # tables.get, dry run, jobs.insert, getQueryResults (wait) and one page of rows.
    assert bq.routes() == ["tables.get", "jobs.insert(dry)", "jobs.insert", "getQueryResults",
                           "getQueryResults"]
    assert "5 API requests" in result.stderr
    assert "123,456,789 bytes processed" in result.stderr
    assert "BigQuery dry run 117.7 MiB, billed 119.0 MiB" in result.stderr


def test_team_resolves_from_gcp_labels_and_project_labels(finops, gcp_config, tmp_path, bq):
    config = gcp_config()
    assert finops("--config", config, "sync", *WINDOW).exit_code == 0
    result = finops("--config", config, "report", "--by", "team", "--cost", "billed", *WINDOW,
                    "--no-refresh", "--format", "json")
    assert result.exit_code == 0, result.stderr
    document = json.loads(result.stdout)
    by_team = {row["team"]: Decimal(row["cost"]) for row in document["rows"]}
    assert by_team == BILLED_BY_TEAM
    # Credits per type stay queryable: the free-tier credit wiped the BigQuery row.
    result = finops("--config", config, "report", "--by", "x:credits.FREE_TIER", "--by", "service", "--cost",
                    "contracted", *WINDOW, "--no-refresh", "--format", "json")
    rows = {(r["x:credits.FREE_TIER"], r["service"]): Decimal(r["cost"])
            for r in json.loads(result.stdout)["rows"]}
    assert rows[("-45.000001", "BigQuery")] == Decimal("45.000001")


def test_focus_mapping_of_charges_credits_and_tags(finops, gcp_config, tmp_path):
    assert finops("--config", gcp_config(), "sync", *WINDOW).exit_code == 0
    rows = {r[0]: r[1:] for r in store_rows(tmp_path, """
        SELECT ChargeDescription, ChargeCategory, ChargeFrequency, PricingCategory, BilledCost, ListCost,
               SubAccountId, SubAccountName, RegionId, Tags, x_Properties, ChargePeriodStart, ChargePeriodEnd,
               BillingPeriodStart, ServiceCategory, ConsumedQuantity, ConsumedUnit, PricingQuantity,
               PricingUnit
        FROM costs""")}
    vm = rows["N1 Predefined Instance Core running in Americas"]
    assert vm[:7] == ("Usage", "Usage-Based", "Committed", Decimal("69.623456"), Decimal("120.000001"),
                      "search-prod", "Search")
    assert vm[7] == "us-central1"
    # Resource labels as they are; project labels under project: and inherited where absent; system prefixed.
    assert vm[8] == {"team": "search", "env": "prod", "project:team": "search-platform",
                     "project:cost_center": "cc-1", "cost_center": "cc-1",
                     "goog-system:compute.googleapis.com/machine_spec": "n1-standard-4"}
    assert vm[9]["credits.SUSTAINED_USAGE_DISCOUNT"] == "-20.5"
    assert vm[9]["credits.COMMITTED_USAGE_DISCOUNT"] == "-10"
    assert str(vm[10]) == "2024-01-01 00:00:00" and str(vm[11]) == "2024-01-02 00:00:00"
    assert str(vm[12]) == "2024-01-01 00:00:00"
    assert vm[13:] == ("Compute", Decimal(86400), "seconds", Decimal(24), "hour")
    assert rows["Spot Preemptible N2 Instance Core running in Americas"][2] == "Dynamic"
    assert rows["Tax"][:3] == ("Tax", "Recurring", None) and rows["Tax"][5] is None
    assert rows["Commitment v1: Cpu in Americas for 1 Year"][:2] == ("Purchase", "Recurring")
    adjustment = store_rows(tmp_path, "SELECT ChargeCategory, ChargeClass, BillingPeriodStart FROM costs "
                                      "WHERE ChargeDescription = 'Adjustment for billing error'")
    assert [(a, b, str(c)) for a, b, c in adjustment] == [("Adjustment", "Correction", "2024-02-01 00:00:00")]
    assert store_rows(tmp_path, "SELECT count(*) FROM costs WHERE ChargeClass IS NOT NULL") == [(1,)]
    storage = rows["Standard Storage US Multi-region"]
    assert storage[7] == "us" and storage[8] == {"team": "ads", "project:team": "ads"}
    gemini = rows["Gemini 1.5 Pro input tokens"]
    assert gemini[9]["credits.PROMOTION"] == "-7"
    assert gemini[9]["credits.OTHER"] == "-0.77"  # a credit type finops does not list


def test_query_is_aggregated_pruned_and_parameterised(finops, gcp_config, bq):
    assert finops("--config", gcp_config(max_bytes_billed="1GiB"), "sync", *WINDOW).exit_code == 0
    dry, real = bq.queries()
    assert dry["configuration"]["dryRun"] is True
    job = real["configuration"]["query"]
    assert job["maximumBytesBilled"] == str(2**30)
    sql = job["query"]
    assert f"FROM `{TABLE}`" in sql and "SELECT *" not in sql and "GROUP BY 1, 2," in sql
    assert "_PARTITIONTIME >= @partition_from" in sql and "usage_start_time >= @start" in sql
    assert "SUM(CAST(cost AS NUMERIC))" in sql  # exact decimals, not FLOAT sums
    assert not re.search(r"\d{4}-\d{2}-\d{2}|'", sql), "values must be query parameters, never SQL text"
    params = {p["name"]: p["parameterValue"]["value"] for p in job["queryParameters"]}
    assert params["start"] == "2024-01-01 00:00:00+00:00" and params["end"] == "2024-01-04 00:00:00+00:00"
    # Partitions from a day before the window to the late-data margin (35 days) after it.
    assert params["partition_from"] == "2023-12-31 00:00:00+00:00"
    assert params["partition_to"] == "2024-02-08 00:00:00+00:00"
    # Only columns the FOCUS rows need: not export_time, adjustment_info, currency_conversion_rate.
    assert "export_time" not in sql and "adjustment_info" not in sql and "conversion" not in sql


def test_several_pages_and_a_job_that_starts_running(finops, gcp_config, tmp_path, bq):
    bq.page_size = 3
    bq.insert_state = "RUNNING"
    bq.incomplete_polls = 1
    result = finops("--config", gcp_config(), "sync", *WINDOW)
    assert result.exit_code == 0, result.stderr
    assert totals(tmp_path) == (8, CONTRACTED, BILLED, BILLED, LIST)
    routes = bq.routes()
    assert "jobs.get" in routes
    pages = [q for m, p, q, b in bq.log if "/queries/" in p and "maxResults=0" not in q]
    assert len(pages) == 3 and sum("pageToken=" in q for q in pages) == 2
    assert f"{len(bq.log)} API requests" in result.stderr


def test_query_over_max_bytes_billed_is_refused_before_it_runs(finops, gcp_config, tmp_path, bq):
    config = gcp_config(max_bytes_billed="1GiB")
    assert finops("--config", config, "sync", *WINDOW).exit_code == 0
    bq.bytes_processed = 3 * 2**30
    bq.result_rows = bq.result_rows[:1]
    bq.log.clear()
    result = finops("--config", config, "sync", *WINDOW)
    assert result.exit_code == 3
    assert "would scan 3.0 GiB of " + TABLE + ", more than max_bytes_billed (1.0 GiB)" in result.stderr
    assert "raise max_bytes_billed" in result.stderr
    assert bq.routes() == ["tables.get", "jobs.insert(dry)"]  # the query itself never ran
    assert totals(tmp_path) == (8, CONTRACTED, BILLED, BILLED, LIST)


def test_bytes_billed_limit_hit_by_the_job_is_a_clear_error(finops, gcp_config, bq):
    bq.fail("jobs.insert", 400, "bytesBilledLimitExceeded",
            "Query exceeded limit for bytes billed: 1000. 10485760 or higher required.")
    bq.bytes_processed = 10
    result = finops("--config", gcp_config(max_bytes_billed=1000), "sync", *WINDOW)
    assert result.exit_code == 3
    assert "it would bill more than max_bytes_billed (1000 B)" in result.stderr


def test_table_not_found(finops, gcp_config, tmp_path, bq):
    result = finops("--config", gcp_config(table="billing-proj.billing.gcp_billing_export_v1_WRONG",
                                           location="EU"), "sync", *WINDOW)
    assert result.exit_code == 3
    assert "not found: Not found: Table billing-proj:billing.gcp_billing_export_v1_WRONG" in result.stderr
    assert "location EU" in result.stderr and "the store keeps this source's earlier data" in result.stderr


def test_permission_denied_names_the_roles_needed(finops, gcp_config, bq):
    bq.fail("tables.get", 403, "accessDenied",
            "Access Denied: Table billing-proj:billing.x: User does not have permission to query table")
    result = finops("--config", gcp_config(billing_project="finops-jobs"), "sync", *WINDOW)
    assert result.exit_code == 3
    assert "permission denied: Access Denied" in result.stderr
    assert "roles/bigquery.jobUser on project finops-jobs" in result.stderr


def test_rate_limit_is_retried(finops, gcp_config, tmp_path, bq):
    bq.fail("jobs.insert", 403, "rateLimitExceeded", "Exceeded rate limits: too many concurrent queries",
            times=1)
    result = finops("--config", gcp_config(), "sync", *WINDOW)
    assert result.exit_code == 0, result.stderr
    # The first jobs.insert failed and was retried.
    assert bq.routes()[:4] == ["tables.get", "jobs.insert(dry)", "jobs.insert", "jobs.insert"]
    assert totals(tmp_path)[2] == BILLED


def test_rate_limit_that_persists_gives_up_within_the_timeout(finops, gcp_config, tmp_path, bq):
    config = gcp_config(timeout=2)
    assert finops("--config", config, "sync", *WINDOW).exit_code == 0
    bq.fail("jobs.insert", 403, "rateLimitExceeded", "Exceeded rate limits: too many concurrent queries")
    result = finops("--config", config, "sync", *WINDOW)
    assert result.exit_code == 3
    assert "BigQuery kept refusing for 2 s (rate limit or quota): Exceeded rate limits" in result.stderr
    assert totals(tmp_path) == (8, CONTRACTED, BILLED, BILLED, LIST)


def test_quota_exceeded_is_a_clear_error(finops, gcp_config, bq):
    bq.fail("jobs.insert", 403, "quotaExceeded", "Quota exceeded: Your project exceeded quota for free query "
                                                 "bytes scanned.")
    result = finops("--config", gcp_config(), "sync", *WINDOW)
    assert result.exit_code == 3
    assert "BigQuery quota or rate limit: Quota exceeded" in result.stderr


def test_restatement_window_rereads_recent_days_and_replaces_them(finops, gcp_config, tmp_path, bq,
                                                                   monkeypatch):
    config = gcp_config()
    assert finops("--config", config, "sync", *WINDOW).exit_code == 0
    # Two days later, day 3 was restated: the VM row grew by 1.000001 and the tax row vanished.
    bq.result_rows = [dict(r) for r in fixture_rows()
                      if r["usage_day"] == "2024-01-03" and r["cost_type"] != "tax"]
    monkeypatch.setenv("FINOPS_NOW", "2024-01-05T08:00:00")
    bq.log.clear()
    assert finops("--config", config, "sync").exit_code == 0
    params = {p["name"]: p["parameterValue"]["value"] for p in bq.queries()[1]["configuration"]["query"]
              ["queryParameters"]}
    assert (params["start"], params["end"]) == ("2024-01-01 00:00:00+00:00", "2024-01-06 00:00:00+00:00")
    # Default restatement is 3 days before the last window's end: days 1-3 were replaced, nothing doubled.
    assert totals(tmp_path)[0] == 3
    assert totals(tmp_path)[2] == Decimal("50") - Decimal("5.25") + Decimal("12.23")


def test_view_has_no_partition_filter(finops, gcp_config, bq):
    view = "billing-proj.billing.billing_view"
    bq.add_table(view, table_type="VIEW", cost_at_list=False)
    result = finops("--config", gcp_config(table=view), "sync", *WINDOW)
    assert result.exit_code == 0, result.stderr
    sql = bq.queries()[1]["configuration"]["query"]["query"]
    assert "_PARTITIONTIME" not in sql and "cost_at_list" not in sql
    assert "view: no partition pruning" in result.stderr


def test_detailed_export_fills_resource_columns(finops, gcp_config, tmp_path, bq):
    detailed = "billing-proj.billing.gcp_billing_export_resource_v1_0000AA_BBBBBB_CCCCCC"
    bq.add_table(detailed, detailed=True)
    bq.result_rows = [{**fixture_rows()[0], "resource_name": "search-vm-1",
                       "resource_global_name": "//compute.googleapis.com/projects/search-prod/zones/"
                                               "us-central1-a/instances/1234567890"}]
    result = finops("--config", gcp_config(table=detailed), "sync", *WINDOW)
    assert result.exit_code == 0, result.stderr
    sql = bq.queries()[1]["configuration"]["query"]["query"]
    assert "resource.global_name AS resource_global_name" in sql
    assert store_rows(tmp_path, "SELECT ResourceId, ResourceName, ResourceType FROM costs") == [
        ("//compute.googleapis.com/projects/search-prod/zones/us-central1-a/instances/1234567890",
         "search-vm-1", "compute.googleapis.com/instances")]
    assert "detailed export (resource level)" in result.stderr


@pytest.mark.parametrize("table", ["billing.gcp_billing_export_v1_X", "p-roj.d.t; DROP TABLE x",
                                   "billing-proj.billing.t` UNION ALL SELECT 1 --"])
def test_table_must_be_project_dataset_table(finops, gcp_config, table):
    result = finops("--config", gcp_config(table=json.dumps(table)), "sync", *WINDOW)
    assert result.exit_code == 2
    assert "sources[0].table" in result.stderr and "is not a fully qualified table name" in result.stderr


def test_max_bytes_billed_accepts_sizes(finops, gcp_config, bq):
    assert finops("--config", gcp_config(max_bytes_billed="20GB"), "sync", *WINDOW).exit_code == 0
    assert bq.queries()[1]["configuration"]["query"]["maximumBytesBilled"] == str(20 * 10**9)
    result = finops("--config", gcp_config(max_bytes_billed="lots"), "sync", *WINDOW)
    assert result.exit_code == 2 and "is not a size" in result.stderr


def test_missing_credentials_file(finops, gcp_config, tmp_path):
    result = finops("--config", gcp_config(credentials="adc", credentials_file="keys/missing.json"),
                    "sync", *WINDOW)
    assert result.exit_code == 3
    assert f"credentials_file '{tmp_path / 'keys' / 'missing.json'}' does not exist" in result.stderr


def test_no_application_default_credentials(gcp_config, tmp_path):
    config = gcp_config(credentials="adc")
    env = {"NO_GCE_CHECK": "true", "CLOUDSDK_CONFIG": str(tmp_path / "gcloud"),
           "HOME": str(tmp_path)}
    result = run_process("--config", str(config), "sync", *WINDOW, env=env, timeout=60)
    assert result.returncode == 3, result.stderr
    assert "no Google credentials found" in result.stderr
    assert "gcloud auth application-default login" in result.stderr
    assert "Traceback" not in result.stderr


def test_unreachable_endpoint(finops, gcp_config):
    result = finops("--config", gcp_config(api_endpoint="http://127.0.0.1:9", timeout=1), "sync", *WINDOW)
    assert result.exit_code == 3
    assert "http://127.0.0.1:9" in result.stderr


def test_a_table_that_is_not_a_billing_export_is_refused(finops, gcp_config, bq):
    other = "billing-proj.billing.web_logs"
    bq.add_table(other, fields=[{"name": "ts", "type": "TIMESTAMP"}, {"name": "url", "type": "STRING"}])
    result = finops("--config", gcp_config(table=other), "sync", *WINDOW)
    assert result.exit_code == 3
    assert (f"{other} does not look like a Cloud Billing export: no column(s) usage_start_time, cost, "
            "currency, service.description") in result.stderr
    assert bq.routes() == ["tables.get"]  # nothing was queried


def test_table_partitioned_on_a_column_is_pruned_on_that_column(finops, gcp_config, bq):
    copy = "billing-proj.billing.billing_copy"
    bq.add_table(copy)
    bq.tables[copy]["timePartitioning"] = {"type": "DAY", "field": "export_time"}
    assert finops("--config", gcp_config(table=copy), "sync", *WINDOW).exit_code == 0
    job = bq.queries()[1]["configuration"]["query"]
    assert "`export_time` >= @partition_from" in job["query"] and "_PARTITIONTIME" not in job["query"]


def test_missing_gcp_extra_prints_the_install_line(gcp_config):
    config = gcp_config()
    block = ("import sys\n"
             "sys.modules['google.cloud.bigquery'] = None  # as if finops-cli[gcp] were not installed\n"
             "from finops_cli.cli.main import run\n"
             "run(sys.argv[1:])\n")
    proc = subprocess.run([sys.executable, "-c", block, "-c", str(config), "sync", *WINDOW],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2, proc.stderr
    assert 'pip install "finops-cli[gcp]"' in proc.stderr and "Traceback" not in proc.stderr


@pytest.mark.parametrize("keys, message", [
    ({"api_endpoint": "127.0.0.1:9050"}, "sources[0].api_endpoint: '127.0.0.1:9050' is not a URL"),
    ({"credentials_file": "key.json"}, "credentials_file cannot be used with credentials: anonymous"),
    ({"billing_project": "Not_A_Project"},
     "sources[0].billing_project: 'Not_A_Project' is not a GCP project id"),
    ({"partition_days": 3}, "unknown key 'partition_days'"),
])
def test_config_mistakes_are_config_errors(finops, gcp_config, keys, message):
    result = finops("--config", gcp_config(**keys), "config", "validate")
    assert result.exit_code == 2
    assert message in result.stderr and "finops.yaml:" in result.stderr


def test_the_documented_config_example_is_valid(finops, tmp_path):
    from pathlib import Path

    page = (Path(__file__).resolve().parents[1] / "docs" / "sources" / "gcp.md").read_text()
    example = re.search(r"```yaml\n(.*?)```", page, re.S).group(1)
    config = write_config(tmp_path, example)
    result = finops("--config", config, "config", "validate")
    assert result.exit_code == 0, result.stderr


def test_today_and_yesterday_are_provisional(finops, gcp_config, tmp_path, monkeypatch):
    monkeypatch.setenv("FINOPS_NOW", "2024-01-03T12:00:00")
    assert finops("--config", gcp_config(), "sync", *WINDOW).exit_code == 0
    assert store_rows(tmp_path, "SELECT strftime(ChargePeriodStart, '%d'), count(*) FROM costs "
                                "WHERE x_Estimated GROUP BY 1 ORDER BY 1") == [("02", 2), ("03", 4)]
    # The ledger remembers the earliest provisional day: the next plain sync re-reads from there at least.
    ledger = store_rows(tmp_path, "SELECT strftime(estimated_since, '%Y-%m-%d') FROM ledger")
    assert ledger == [("2024-01-02",)]
