"""The azure source through the real azure SDK, against a local HTTPS fake of Cost Management."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections import defaultdict
from datetime import date, datetime, timedelta
from decimal import Decimal

import pytest
from conftest import run_process, write_config
from fakes.azure_cm import Charge, FakeCostManagement, page_offset

pytest.importorskip("azure.mgmt.costmanagement",
                    reason="the azure extra is not installed: pip install -e '.[test,azure]'")
trustme = pytest.importorskip("trustme", reason="trustme (test extra) makes the HTTPS certificate")

PROD = "11111111-1111-1111-1111-111111111111"
DEV = "22222222-2222-2222-2222-222222222222"
TOKEN = "eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.secret-bearer-token"
DAYS = [date(2024, 1, d) for d in range(1, 7)]
WEB1 = "Microsoft.Compute/virtualMachines/web1"
DEV1 = "Microsoft.Compute/virtualMachines/dev1"
IP1 = "Microsoft.Network/publicIPAddresses/ip1"
DB1 = "Microsoft.Sql/servers/sql1/databases/db1"
# Cost Management spells ResourceLocation "EU West"; FOCUS RegionId is the ARM name.
REGION_IDS = {"US East": "eastus", "EU West": "westeurope", "US West 2": "westus2"}


def fixture_charges() -> list[Charge]:
    """Six January days of two subscriptions: tagged and untagged resources, a resource in two services,
    a reservation purchase (billed, not effective), reservation-covered usage (effective, not billed),
    a nested resource type and a VM whose team tag changes on the 4th."""
    out = []
    for day in DAYS:
        d = day.day
        out += [
            Charge(day, PROD, "rg-web", WEB1, "Virtual Machines", "US East",
                   Decimal("10.105"), Decimal("10.105"), {"team": "search", "environment": "prod"}),
            Charge(day, PROD, "rg-web", WEB1, "Bandwidth", "US East",
                   Decimal("0.37"), Decimal("0.37"), {"team": "search", "environment": "prod"}),
            Charge(day, PROD, "rg-web", "Microsoft.Storage/storageAccounts/webstore", "Storage", "US East",
                   Decimal("1.05") + Decimal(d) / 100, Decimal("1.05") + Decimal(d) / 100,
                   {"team": "search"}),
            Charge(day, PROD, "rg-data", DB1, "SQL Database", "EU West",
                   Decimal(0), Decimal("4.444444"), {"team": "data", "project": "warehouse"}),
            Charge(day, DEV, "rg-dev", DEV1, "Virtual Machines", "US West 2",
                   Decimal("2.22"), Decimal("2.22"), {"team": "ads" if d <= 3 else "search"}),
            Charge(day, DEV, "rg-dev", IP1, "Virtual Network", "US West 2",
                   Decimal("0.12"), Decimal("0.12"), {}),
        ]
    # A reservation purchase: billed on the day, no resource, no effective cost.
    out.append(Charge(DAYS[0], PROD, None, None, "", None, Decimal("120.00"), Decimal(0)))
    return out


@pytest.fixture(scope="module")
def tls(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tls")
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    paths = {name: str(folder / f"{name}.pem") for name in ("cert", "key", "ca")}
    cert.private_key_and_cert_chain_pem.write_to_path(paths["cert"])
    cert.private_key_pem.write_to_path(paths["key"])
    ca.cert_pem.write_to_path(paths["ca"])
    return paths


@pytest.fixture
def fake(tls):
    server = FakeCostManagement(fixture_charges(), {PROD: "Production", DEV: "Development"}, page_size=4)
    server.start(tls["cert"], tls["key"])
    yield server
    server.stop()


@pytest.fixture
def config(tmp_path, fake, tls, monkeypatch):
    monkeypatch.setenv("AZURE_TEST_TOKEN", TOKEN)

    def make(scopes=(f"/subscriptions/{PROD}", f"/subscriptions/{DEV}"), extra: str = "", verify=tls["ca"],
             credential="token\n    token_env: AZURE_TEST_TOKEN") -> str:
        scope_lines = "".join(f"      - {s}\n" for s in scopes)
        path = write_config(tmp_path, f"""\
store: store.duckdb
sources:
  - name: azure-prod
    type: azure
    scopes:
{scope_lines}    credential: {credential}
    base_url: {fake.base}
    verify_tls: {verify}
    max_throttle_wait: 0.3
{extra}""")
        return str(path)

    return make


def expected(by, basis="amortized", charges=None) -> dict:
    totals = defaultdict(Decimal)
    for charge in fixture_charges() if charges is None else charges:
        totals[by(charge)] += getattr(charge, basis)
    return {k: v for k, v in totals.items() if v}


def report(finops, config_path, *by, cost="effective", start="2024-01-01", end="2024-01-07") -> dict:
    args = ["--config", config_path, "report", "--start", start, "--end", end, "--no-refresh",
            "--cost", cost, "--format", "json"]
    for dim in by:
        args += ["--by", dim]
    result = finops(*args)
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


def by_key(data: dict, dim: str) -> dict:
    """Report rows as {value: cost}; rows of zero (the purchase has no effective cost) are left out."""
    return {row[dim]: Decimal(row["cost"]) for row in data["rows"] if Decimal(row["cost"])}


def queries(fake) -> list[dict]:
    """The queries the server saw: first pages only (each nextLink page is one more request)."""
    return [entry for entry in fake.log if "$skiptoken" not in entry["query"]]


def sync(finops, config_path, start="2024-01-01", end="2024-01-07"):
    return finops("--config", config_path, "sync", "--start", start, "--end", end)


def test_totals_agree_with_the_fixture_by_subscription_resource_group_and_tag(finops, fake, config):
    path = config()
    result = sync(finops, path)
    assert result.exit_code == 0, result.stderr

    # ActualCost and AmortizedCost joined: both bases are right, to the cent and beyond.
    for cost, basis in (("effective", "amortized"), ("billed", "actual")):
        accounts = by_key(report(finops, path, "account_id", cost=cost), "account_id")
        assert accounts == expected(lambda c: f"/subscriptions/{c.subscription}", basis)
        groups = by_key(report(finops, path, "x:ResourceGroupName", cost=cost), "x:ResourceGroupName")
        assert groups == expected(lambda c: c.resource_group, basis)
        teams = by_key(report(finops, path, "team", cost=cost), "team")
        assert teams == expected(lambda c: c.tags.get("team"), basis)  # None: the purchase and the public IP
        services = by_key(report(finops, path, "service", cost=cost), "service")
        assert services == expected(lambda c: c.service or "Unassigned", basis)
        regions = by_key(report(finops, path, "region", cost=cost), "region")
        assert regions == expected(lambda c: REGION_IDS.get(c.location), basis)

    # Every --by adds up to the same total, also two tags at once (one grain, no overlap).
    total = sum(expected(lambda c: 0).values())
    pairs = report(finops, path, "team", "environment")
    assert Decimal(pairs["total"]) == total
    environments = by_key(report(finops, path, "environment"), "environment")
    assert environments == expected(lambda c: c.tags.get("environment"))

    # nextLink was followed to the end: the cost queries span several pages (4 rows each), page 3 and on
    # were fetched, and no rows are missing (the totals above).
    tokens = [page_offset(e["query"]["$skiptoken"]) for e in fake.log if "$skiptoken" in e["query"]]
    assert max(tokens) >= 8
    assert all(entry["auth"] == f"Bearer {TOKEN}" for entry in fake.log)
    assert TOKEN not in result.stdout + result.stderr


def test_subscription_names_and_purchase_rows(finops, fake, config):
    path = config()
    assert sync(finops, path).exit_code == 0
    accounts = by_key(report(finops, path, "account"), "account")
    assert f"Production (/subscriptions/{PROD})" in accounts
    charges = by_key(report(finops, path, "charge", cost="billed"), "charge")
    assert charges["Purchase"] == Decimal("120.00")
    pricing = by_key(report(finops, path, "pricing"), "pricing")
    assert pricing["Committed"] == Decimal("4.444444") * 6
    types = by_key(report(finops, path, "resource_type"), "resource_type")
    assert types["microsoft.sql/servers/databases"] == Decimal("4.444444") * 6


def test_request_count_is_reported_and_matches_the_server(finops, fake, config):
    path = config()
    result = sync(finops, path)
    assert result.exit_code == 0
    # Per scope: 2 cost queries + location + 5 tag keys + subscription names + 1 daily refinement (dev1's team
    # tag changed), each page a request.
    assert f"{len(fake.log)} API requests" in result.stderr
    assert len(queries(fake)) == 2 * 9 + 1


def test_throttled_query_is_retried_after_the_cost_management_retry_after(finops, fake, config):
    path = config()
    fake.throttle_next = 2
    fake.throttle_seconds = "0.1"
    fake.throttle_retry_after = "0"  # the largest header wins; the SDK's own retry must not take over
    began = time.monotonic()
    result = sync(finops, path)
    assert result.exit_code == 0, result.stderr
    assert "throttled 2x, waited 0.2 s" in result.stderr
    assert time.monotonic() - began >= 0.2  # it slept for what the qpu/tenant retry-after headers asked
    assert by_key(report(finops, path, "account_id"), "account_id") == expected(
        lambda c: f"/subscriptions/{c.subscription}")
    assert f"{len(fake.log)} API requests" in result.stderr  # the 429s count as requests too


def test_throttling_that_never_stops_fails_and_keeps_earlier_data(finops, fake, config):
    path = config()
    assert sync(finops, path).exit_code == 0
    before = report(finops, path, "account_id")
    fake.throttle_next = 10_000
    result = sync(finops, path)
    assert result.exit_code == 3
    assert "still throttling" in result.stderr and "HTTP 429" in result.stderr
    assert "max_throttle_wait" in result.stderr
    assert "keeps this source's earlier data" in result.stderr
    assert report(finops, path, "account_id") == before


def test_a_next_link_that_goes_nowhere_fails_instead_of_storing_part_of_the_data(finops, fake, config):
    path = config()
    assert sync(finops, path).exit_code == 0
    before = report(finops, path, "account_id")
    fake.stuck_next_link = True
    result = sync(finops, path)
    assert result.exit_code == 3
    assert "nextLink" in result.stderr and "partial result" in result.stderr
    assert report(finops, path, "account_id") == before


@pytest.mark.parametrize("empty", ["204", "rows"])
def test_an_empty_result_is_zero_rows_not_an_error(finops, fake, config, empty):
    path = config()
    fake.empty = empty
    result = sync(finops, path)
    assert result.exit_code == 0, result.stderr
    assert "0 rows" in result.stderr
    assert report(finops, path, "account_id")["rows"] == []


def test_pretax_cost_column_and_one_page_results(finops, fake, config):
    fake.cost_column = "PreTaxCost"
    fake.page_size = 10_000
    path = config()
    assert sync(finops, path).exit_code == 0
    assert not any("$skiptoken" in entry["query"] for entry in fake.log)
    assert by_key(report(finops, path, "account_id"), "account_id") == expected(
        lambda c: f"/subscriptions/{c.subscription}")


def test_resource_group_scope(finops, fake, config):
    path = config([f"/subscriptions/{PROD}/resourceGroups/rg-web"])
    assert sync(finops, path).exit_code == 0
    groups = by_key(report(finops, path, "x:ResourceGroupName"), "x:ResourceGroupName")
    assert groups == {"rg-web": expected(lambda c: c.resource_group)["rg-web"]}


MG = "/providers/Microsoft.Management/managementGroups/contoso"
SUPPORT = Charge(DAYS[2], "", None, None, "Azure Support", None, Decimal("29.00"), Decimal("29.00"))


def test_management_group_is_pulled_through_its_subscriptions_and_reconciles(finops, fake, config):
    """Cost Management cannot group by ResourceId above a subscription: the MG's totals by subscription
    are the truth, each readable subscription adds resource detail, and the rest stays whole."""
    fake.charges = fake.charges + [SUPPORT]  # billed to the agreement, not to a subscription
    fake.denied_scopes = {f"/subscriptions/{DEV}"}  # this identity may not read one subscription
    path = config([MG])
    result = sync(finops, path)
    assert result.exit_code == 0, result.stderr
    assert f"/subscriptions/{DEV}: HTTP 403, kept at subscription level" in result.stderr
    charges = fixture_charges() + [SUPPORT]

    def account(c):
        return f"/subscriptions/{c.subscription}" if c.subscription else MG

    for cost, basis in (("effective", "amortized"), ("billed", "actual")):
        assert by_key(report(finops, path, "account_id", cost=cost), "account_id") == expected(
            account, basis, charges)
        assert by_key(report(finops, path, "service", cost=cost), "service") == expected(
            lambda c: c.service or "Unassigned", basis, charges)
        # Tags and resource groups where a subscription could be read; the rest is untagged, not lost.
        assert by_key(report(finops, path, "team", cost=cost), "team") == expected(
            lambda c: c.tags.get("team") if c.subscription == PROD else None, basis, charges)
    wide = [e for e in queries(fake) if e["path"].lower().startswith("/providers/")]
    assert len(wide) == 3  # totals (Actual, Amortized) by subscription and service, and subscription names


def test_billing_scope_without_resource_detail_costs_three_queries(finops, fake, config):
    scope = "/providers/Microsoft.Billing/billingAccounts/1234:5678_2019-05-31/billingProfiles/ABCD-EFGH"
    path = config([scope], extra="    resource_detail: false\n")
    assert sync(finops, path).exit_code == 0
    assert len(queries(fake)) == 3
    assert by_key(report(finops, path, "account_id"), "account_id") == expected(
        lambda c: f"/subscriptions/{c.subscription}")
    assert by_key(report(finops, path, "billing_account"), "billing_account") == {
        scope: sum(expected(lambda c: 0).values())}


def test_a_window_longer_than_a_month_is_pulled_month_by_month(finops, fake, config):
    days = [date(2024, 1, 1) + timedelta(days=n) for n in range(60)]  # January and February
    fake.charges = [Charge(day, PROD, "rg-web", WEB1, "Virtual Machines", "US East", Decimal("1.01"),
                           Decimal("1.01"), {"team": "search"}) for day in days]
    path = config([f"/subscriptions/{PROD}"])
    assert sync(finops, path, start="2024-01-01", end="2024-03-01").exit_code == 0
    data = report(finops, path, "team", start="2024-01-01", end="2024-03-01")
    assert by_key(data, "team") == {"search": Decimal("60.60")}
    for entry in fake.posts(timeframe="Custom"):
        period = entry["body"]["timePeriod"]
        assert period["from"][:7] == period["to"][:7], period  # never more than one calendar month


def test_forbidden_scope_is_a_source_error_naming_the_scope_and_role(finops, fake, config):
    fake.fail_status = 403
    path = config()
    result = sync(finops, path)
    assert result.exit_code == 3
    assert f"/subscriptions/{PROD}" in result.stderr and "HTTP 403 AuthorizationFailed" in result.stderr
    assert "Cost Management Reader" in result.stderr
    assert TOKEN not in result.stderr + result.stdout


def test_resync_of_a_restated_window_replaces_rows_without_double_counting(finops, fake, config):
    path = config()
    assert sync(finops, path).exit_code == 0
    restated = Charge(date(2024, 1, 5), DEV, "rg-dev", IP1, "Virtual Network", "US West 2",
                      Decimal("0.50"), Decimal("0.50"), {})
    fake.charges = fake.charges + [restated]  # a late correction Azure adds to a recent day
    result = sync(finops, path, start="2024-01-04", end="2024-01-07")
    assert result.exit_code == 0, result.stderr
    assert all(e["body"]["timePeriod"] == {"from": "2024-01-04T00:00:00Z", "to": "2024-01-06T23:59:59Z"}
               for e in fake.log[-5:])  # the API's "to" is inclusive
    accounts = by_key(report(finops, path, "account_id"), "account_id")
    want = expected(lambda c: f"/subscriptions/{c.subscription}")
    want[f"/subscriptions/{DEV}"] += Decimal("0.50")
    assert accounts == want


def test_each_currency_is_its_own_row(finops, fake, config):
    fake.charges = [
        Charge(DAYS[0], PROD, "rg-web", WEB1, "Virtual Machines", "US East",
               Decimal("1.25"), Decimal("1.25"), {"team": "search"}),
        Charge(DAYS[0], PROD, "rg-web", WEB1, "Virtual Machines", "US East",
               Decimal("2.50"), Decimal("2.50"), {"team": "search"}, currency="EUR"),
    ]
    path = config()
    assert sync(finops, path).exit_code == 0
    data = report(finops, path, "team")
    totals = {currency: Decimal(cost) for currency, cost in data["totals"].items()}
    assert totals == {"EUR": Decimal("2.50"), "USD": Decimal("1.25")}


def test_cli_credential_without_az_is_a_source_error(fake, config):
    path = config(credential="cli")
    # A separate process, as a user runs it: Python's last-resort log handler is live there.
    result = run_process("--config", path, "sync", "--start", "2024-01-01", "--end", "2024-01-07",
                         env={"PATH": "", "CI": "1"})  # no `az` to ask for a token
    assert result.returncode == 3, result.stderr
    assert "could not get an Azure token (cli credential)" in result.stderr and "az login" in result.stderr
    assert result.stderr.startswith("✗ azure-prod:")  # no azure-identity log lines ahead of the message
    assert fake.log == []


def test_missing_token_variable_is_a_source_error(finops, fake, config, monkeypatch):
    path = config()
    monkeypatch.delenv("AZURE_TEST_TOKEN")
    result = sync(finops, path)
    assert result.exit_code == 3
    assert "AZURE_TEST_TOKEN" in result.stderr and "not set" in result.stderr
    assert fake.log == []


def test_untrusted_certificate_is_a_source_error(finops, fake, config):
    result = sync(finops, config(verify="true"))
    assert result.exit_code == 3
    assert f"cannot reach {fake.base}" in result.stderr and "CERTIFICATE_VERIFY_FAILED" in result.stderr


@pytest.mark.parametrize("scopes, extra, message", [
    (["/subscriptions"], "", "is not a Cost Management scope"),
    ([f"/subscriptions/{PROD}", f"/subscriptions/{PROD}/resourceGroups/rg-web"], "", "counted twice"),
    ([f"/subscriptions/{PROD}"], "    tag_keys: team\n", "tag_keys"),
    ([f"/subscriptions/{PROD}", f"subscriptions/{PROD}/"], "", "listed twice"),
    ([f"/subscriptions/{PROD}"], "    tag_keys: [team, Team]\n", "listed twice"),
    ([f"/subscriptions/{PROD}"], "    max_throttle_wait: soon\n", "max_throttle_wait"),
])
def test_config_errors_name_the_line_and_key(finops, config, scopes, extra, message):
    result = finops("--config", config(scopes, extra), "sync")
    assert result.exit_code == 2
    assert "finops.yaml:" in result.stderr and message in result.stderr


def test_token_credential_needs_token_env(finops, tmp_path):
    path = write_config(tmp_path, "sources:\n  - name: az\n    type: azure\n    scopes: [/subscriptions/x]\n"
                                  "    credential: token\n")
    result = finops("--config", str(path), "sync")
    assert result.exit_code == 2 and "token_env" in result.stderr


def test_missing_azure_sdk_names_the_extra(tmp_path):
    path = write_config(tmp_path, f"store: s.duckdb\nsources:\n  - name: az\n    type: azure\n"
                                  f"    scopes: [/subscriptions/{PROD}]\n")
    # A None entry in sys.modules makes the import fail, as if the extra were not installed.
    code = ("import sys; sys.modules['azure.mgmt.costmanagement'] = None\n"
            "from finops_cli.cli.main import run\n"
            f"run(['--config', {str(path)!r}, 'sync'])")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                            check=False, env={**os.environ, "CI": "1"})
    assert result.returncode == 2, result.stderr
    assert 'pip install "finops-cli[azure]"' in result.stderr


def test_incremental_window_repulls_the_previous_month_while_it_closes():
    from finops_cli.sources.azure import AzureConfig, AzureSource
    from finops_cli.sources.base import LastSync

    source = AzureSource(AzureConfig(name="az", type="azure", scopes=[f"/subscriptions/{PROD}"]))
    last = LastSync(datetime(2024, 2, 1), datetime(2024, 3, 3), datetime(2024, 3, 2, 6), None)
    early = source.default_window(last, datetime(2024, 3, 2, 12))
    assert early.start == datetime(2024, 2, 1) and early.end == datetime(2024, 3, 3)
    later = source.default_window(last, datetime(2024, 3, 20, 12))
    assert later.start == datetime(2024, 2, 29)  # the default three restatement days
    first = source.default_window(None, datetime(2024, 3, 2, 12))
    assert first.start == datetime(2024, 3, 2) - timedelta(days=90)


def test_importing_the_source_does_not_import_the_sdk():
    code = ("import sys, finops_cli.sources.azure; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] == 'azure'))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                            check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
