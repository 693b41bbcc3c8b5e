"""The gcp source's SQL run for real: a billing export table on the bqemulator (DuckDB + SQLGlot).

Opt-in: bqemulator lives in its own venv (it is heavy, and its pytest plugin should not load
here). docs/sources/gcp.md has the commands; then
    FINOPS_BQEMULATOR=.venv-bqemu/bin/bqemulator FINOPS_BQEMULATOR_HOME=scratch/bqemu-home \
        .venv/bin/python -m pytest -m bqemulator
The emulator stamps ``_PARTITIONTIME`` with the real ingest time, so the usage days here are
relative to today (the partition filter must let them through).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest
from conftest import write_config

pytestmark = pytest.mark.bqemulator

EMULATOR = os.environ.get("FINOPS_BQEMULATOR")
EMULATOR_HOME = os.environ.get("FINOPS_BQEMULATOR_HOME")
PROJECT = "test-proj"
TABLE = f"{PROJECT}.billing.gcp_billing_export_v1_0000AA_BBBBBB_CCCCCC"
TODAY = date.today()
DAY1, DAY2, OLD = TODAY - timedelta(days=2), TODAY - timedelta(days=1), TODAY - timedelta(days=20)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def emulator(tmp_path_factory):
    if not EMULATOR or not Path(EMULATOR).is_file():
        pytest.skip("bqemulator test is opt-in: set FINOPS_BQEMULATOR to the bqemulator executable of its "
                    "own venv (and FINOPS_BQEMULATOR_HOME to the HOME holding DuckDB's spatial extension); "
                    "see docs/sources/gcp.md")
    rest, grpc = _free_port(), _free_port()
    log = tmp_path_factory.mktemp("bqemu") / "bqemulator.log"
    env = {**os.environ, "HOME": str(Path(EMULATOR_HOME).resolve()) if EMULATOR_HOME else os.environ["HOME"]}
    with open(log, "wb") as out:
        command = [EMULATOR, "start", "--rest-host", "127.0.0.1", "--rest-port", str(rest), "--grpc-host",
                   "127.0.0.1", "--grpc-port", str(grpc), "--project", PROJECT, "--log-level", "warning"]
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", rest), timeout=0.5).close()
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"bqemulator did not start: {log.read_text(errors='replace')[-2000:]}")
                time.sleep(0.2)
        yield f"http://127.0.0.1:{rest}"
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _schema(bigquery):
    field = bigquery.SchemaField
    kv = [field("key", "STRING"), field("value", "STRING")]
    return [
        field("billing_account_id", "STRING"),
        field("service", "RECORD", fields=[field("id", "STRING"), field("description", "STRING")]),
        field("sku", "RECORD", fields=[field("id", "STRING"), field("description", "STRING")]),
        field("usage_start_time", "TIMESTAMP"), field("usage_end_time", "TIMESTAMP"),
        field("project", "RECORD", fields=[field("id", "STRING"), field("number", "STRING"),
                                           field("name", "STRING"),
                                           field("labels", "RECORD", "REPEATED", fields=kv),
                                           field("ancestry_numbers", "STRING")]),
        field("labels", "RECORD", "REPEATED", fields=kv),
        field("system_labels", "RECORD", "REPEATED", fields=kv),
        field("location", "RECORD", fields=[field("location", "STRING"), field("country", "STRING"),
                                            field("region", "STRING"), field("zone", "STRING")]),
        field("export_time", "TIMESTAMP"), field("cost", "FLOAT"), field("currency", "STRING"),
        field("currency_conversion_rate", "FLOAT"),
        field("usage", "RECORD", fields=[field("amount", "FLOAT"), field("unit", "STRING"),
                                         field("amount_in_pricing_units", "FLOAT"),
                                         field("pricing_unit", "STRING")]),
        field("credits", "RECORD", "REPEATED", fields=[field("name", "STRING"), field("amount", "FLOAT"),
                                                       field("full_name", "STRING"), field("id", "STRING"),
                                                       field("type", "STRING")]),
        field("invoice", "RECORD", fields=[field("month", "STRING")]),
        field("cost_type", "STRING"),
        field("adjustment_info", "RECORD", fields=[field("id", "STRING"), field("description", "STRING"),
                                                   field("mode", "STRING"), field("type", "STRING")]),
        field("cost_at_list", "FLOAT"),
    ]


def _line(day, hour, service, sku, cost, *, project="search-prod", labels=(), project_labels=(), credits=(),
          cost_type="regular", cost_at_list=None, system_labels=()):
    def pairs(items):
        return [{"key": k, "value": v} for k, v in items]

    start = f"{day.isoformat()}T{hour:02d}:00:00Z"
    return {
        "billing_account_id": "0000AA-BBBBBB-CCCCCC",
        "service": {"id": "SVC-" + service[:4].upper(), "description": service},
        "sku": {"id": "SKU-" + sku[:4].upper(), "description": sku},
        "usage_start_time": start, "usage_end_time": f"{day.isoformat()}T{hour:02d}:59:59Z",
        "project": {"id": project, "number": "1234", "name": project.title(), "labels": pairs(project_labels)}
        if project else None,
        "labels": pairs(labels), "system_labels": pairs(system_labels),
        "location": {"location": "us-central1", "country": "US", "region": "us-central1",
                     "zone": "us-central1-a"},
        "export_time": f"{TODAY.isoformat()}T01:00:00Z", "cost": cost, "currency": "USD",
        "currency_conversion_rate": 1.0,
        "usage": {"amount": 3600.0, "unit": "seconds", "amount_in_pricing_units": 1.0,
                  "pricing_unit": "hour"},
        "credits": [{"name": kind.title(), "amount": amount, "full_name": None, "id": None, "type": kind}
                    for kind, amount in credits],
        "invoice": {"month": day.strftime("%Y%m")}, "cost_type": cost_type,
        "cost_at_list": cost_at_list,
    }


LINES = [
    # Three hours of one VM with the same labels: one FOCUS row. 0.1 three times is 0.3 exactly (NUMERIC).
    *[_line(DAY1, h, "Compute Engine", "N1 core", 0.1, labels=[("team", "search")], cost_at_list=0.12,
            project_labels=[("team", "platform"), ("cost_center", "cc-1")],
            system_labels=[("compute.googleapis.com/machine_spec", "n1-standard-1")],
            credits=[("SUSTAINED_USAGE_DISCOUNT", -0.02), ("COMMITTED_USAGE_DISCOUNT", -0.01)])
      for h in (0, 1, 2)],
    # Same VM SKU, other labels: its own row; no resource label, so team comes from the project.
    _line(DAY1, 3, "Compute Engine", "N1 core", 2.5, project_labels=[("team", "platform")]),
    _line(DAY2, 5, "BigQuery", "Analysis", 7.25, project="ads-prod", labels=[("team", "ads")],
          credits=[("FREE_TIER", -7.25)]),
    _line(DAY2, 6, "Vertex AI", "Gemini input tokens", 11.11, project="ml-lab", labels=[("team", "ml")],
          credits=[("PROMOTION", -1.0), ("SOME_NEW_CREDIT", -0.11)]),
    _line(DAY2, 0, "Invoice", "Tax", 1.99, project=None, cost_type="tax"),
    # Outside the window: must not be counted.
    _line(OLD, 0, "Compute Engine", "N1 core", 1000.0, labels=[("team", "search")]),
]
# By hand: cost 0.3 + 2.5 + 7.25 + 11.11 + 1.99 = 23.15; credits -0.09 - 7.25 - 1.11 = -8.45.
CONTRACTED, BILLED = Decimal("23.15"), Decimal("14.70")
LIST = Decimal("0.36") + Decimal("2.5") + Decimal("7.25") + Decimal("11.11") + Decimal("1.99")
BILLED_BY_TEAM = {"search": Decimal("0.21"), "platform": Decimal("2.50"), "ads": Decimal("0.00"),
                  "ml": Decimal("10.00"), None: Decimal("1.99")}


@pytest.fixture(scope="module")
def billing_table(emulator):
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import bigquery

    client = bigquery.Client(project=PROJECT, credentials=AnonymousCredentials(),
                             client_options={"api_endpoint": emulator})
    client.create_dataset("billing", exists_ok=True)
    table = bigquery.Table(TABLE, schema=_schema(bigquery))
    table.time_partitioning = bigquery.TimePartitioning(type_=bigquery.TimePartitioningType.DAY)
    client.create_table(table, exists_ok=True)
    assert client.insert_rows_json(TABLE, LINES) == []
    return emulator


def test_billing_sql_aggregates_exactly_on_real_sql(finops, billing_table, tmp_path):
    config = write_config(tmp_path, f"""
store: {tmp_path / 'store.duckdb'}
sources:
  - name: gcp-billing
    type: gcp
    table: {TABLE}
    credentials: anonymous
    api_endpoint: {billing_table}
    timeout: 60
""")
    window = ("--start", (TODAY - timedelta(days=3)).isoformat(),
              "--end", (TODAY + timedelta(days=1)).isoformat())
    result = finops("--config", config, "sync", *window)
    assert result.exit_code == 0, result.stderr
    with duckdb.connect(str(tmp_path / "store.duckdb"), read_only=True) as con:
        count, contracted, billed, effective, listed = con.execute(
            "SELECT count(*), sum(ContractedCost), sum(BilledCost), sum(EffectiveCost), sum(ListCost) "
            "FROM costs").fetchone()
        vm = con.execute("SELECT BilledCost, ContractedCost, PricingCategory, Tags, x_Properties, "
                         "ConsumedQuantity FROM costs WHERE Tags['team'] = 'search'").fetchall()
        tax = con.execute("SELECT ChargeCategory, BilledCost FROM costs "
                          "WHERE ChargeDescription = 'Tax'").fetchall()
    assert (count, contracted, billed, effective, listed) == (5, CONTRACTED, BILLED, BILLED, LIST)
    assert vm[0][:3] == (Decimal("0.21"), Decimal("0.3"), "Committed")
    assert vm[0][3] == {"team": "search", "project:team": "platform", "project:cost_center": "cc-1",
                        "cost_center": "cc-1",
                        "goog-system:compute.googleapis.com/machine_spec": "n1-standard-1"}
    assert Decimal(vm[0][4]["credits.SUSTAINED_USAGE_DISCOUNT"]) == Decimal("-0.06")
    assert vm[0][5] == Decimal(3 * 3600)
    assert tax == [("Tax", Decimal("1.99"))]

    report = finops("--config", config, "report", "--by", "team", "--cost", "billed", *window, "--no-refresh",
                    "--format", "json")
    assert report.exit_code == 0, report.stderr
    assert {row["team"]: Decimal(row["cost"]) for row in json.loads(report.stdout)["rows"]} == BILLED_BY_TEAM


DETAILED = f"{PROJECT}.billing.gcp_billing_export_resource_v1_0000AA_BBBBBB_CCCCCC"
VM = "//compute.googleapis.com/projects/search-prod/zones/us-central1-a/instances/4242"


def test_detailed_export_keeps_resources_apart(finops, emulator, tmp_path):
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import bigquery

    client = bigquery.Client(project=PROJECT, credentials=AnonymousCredentials(),
                             client_options={"api_endpoint": emulator})
    client.create_dataset("billing", exists_ok=True)
    field = bigquery.SchemaField
    resource = field("resource", "RECORD", fields=[field("name", "STRING"), field("global_name", "STRING")])
    table = bigquery.Table(DETAILED, schema=[*_schema(bigquery), resource])
    table.time_partitioning = bigquery.TimePartitioning(type_=bigquery.TimePartitioningType.DAY)
    client.create_table(table, exists_ok=True)
    lines = [{**_line(DAY1, h, "Compute Engine", "N1 core", 0.25, labels=[("team", "search")]),
              "resource": {"name": "search-vm", "global_name": VM}} for h in range(4)]
    lines.append({**_line(DAY1, 0, "Compute Engine", "N1 core", 0.5, labels=[("team", "search")]),
                  "resource": {"name": "other-vm", "global_name": VM.replace("4242", "4343")}})
    assert client.insert_rows_json(DETAILED, lines) == []
    config = write_config(tmp_path, f"store: {tmp_path / 'store.duckdb'}\nsources:\n  - name: gcp-detailed\n"
                                    f"    type: gcp\n    table: {DETAILED}\n    credentials: anonymous\n"
                                    f"    api_endpoint: {emulator}\n    timeout: 60\n")
    result = finops("--config", config, "sync", "--start", DAY1.isoformat(), "--end", DAY2.isoformat())
    assert result.exit_code == 0, result.stderr
    with duckdb.connect(str(tmp_path / "store.duckdb"), read_only=True) as con:
        rows = con.execute("SELECT ResourceId, ResourceName, ResourceType, BilledCost FROM costs "
                           "ORDER BY ResourceName").fetchall()
    other = VM.replace("4242", "4343")
    assert rows == [(other, "other-vm", "compute.googleapis.com/instances", Decimal("0.5")),
                    (VM, "search-vm", "compute.googleapis.com/instances", Decimal("1"))]
