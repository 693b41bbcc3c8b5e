"""The AWS Cost Explorer source, through real boto3 over HTTP against servers on 127.0.0.1.

Most tests use ``fakes/aws_ce.py``, a Cost Explorer that evaluates filters and group-bys over
line items, so every ``--by`` view can be checked to the cent against the line items themselves.
moto (server mode) serves STS for credentials, and canned Cost Explorer pages in one test.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections import defaultdict
from datetime import date, timedelta
from decimal import Decimal

import pytest
from conftest import write_config
from fakes.aws_ce import FakeCostExplorer, LineItem

NOW = "2026-11-20T12:00:00Z"
PROD, SANDBOX = "111111111111", "222222222222"
NAMES = {PROD: "prod", SANDBOX: "sandbox"}
EC2, S3, RDS, LAMBDA = ("Amazon Elastic Compute Cloud - Compute", "Amazon Simple Storage Service",
                        "Amazon Relational Database Service", "AWS Lambda")
WINDOW = ("--start", "2026-10-01", "--end", "2026-11-21")
METRICS = ("UnblendedCost", "NetUnblendedCost", "AmortizedCost", "NetAmortizedCost")
CHARGE = {"Usage": "Usage", "SavingsPlanCoveredUsage": "Usage", "SavingsPlanNegation": "Usage",
          "SavingsPlanRecurringFee": "Purchase", "Support": "Purchase", "Tax": "Tax", "Credit": "Credit",
          "Refund": "Adjustment"}


def costs(unblended: str, net: str | None = None, amortized: str | None = None, net_amortized: str | None = None):
    u = Decimal(unblended)
    n = Decimal(net) if net is not None else (u * Decimal("0.95")).quantize(Decimal("1e-10"))
    a = Decimal(amortized) if amortized is not None else u
    return {"UnblendedCost": u, "NetUnblendedCost": n, "AmortizedCost": a,
            "NetAmortizedCost": Decimal(net_amortized) if net_amortized is not None else (n if amortized is None else a)}


def line_items() -> list[LineItem]:
    items = []
    usage = [
        (PROD, "us-east-1", EC2, {"team": "search", "environment": "prod"}),
        (PROD, "us-east-1", S3, {"team": "ads", "environment": "prod"}),
        (PROD, "eu-west-1", RDS, {"team": "search"}),
        (PROD, "eu-west-1", S3, {}),
        (SANDBOX, "us-east-1", LAMBDA, {"team": "ads", "environment": "dev"}),
        (SANDBOX, "us-east-1", EC2, {"environment": "dev"}),
    ]
    days = [date(2026, 10, 30)] + [date(2026, 11, 16) + timedelta(days=i) for i in range(5)]
    n = 0
    for day in days:
        for account, region, service, tags in usage:
            n += 1
            amount = f"{(n * 7919) % 900 + 10}.{(n * 104729) % 10 ** 8:08d}"
            items.append(LineItem(day, account, region, service, "Usage", costs(amount), tags))
        for account in (PROD, SANDBOX):
            items.append(LineItem(day, account, "NoRegion", "Tax", "Tax", costs("3.1415", "3.1415")))
    items += [
        LineItem(date(2026, 11, 18), PROD, "us-east-1", EC2, "Credit", costs("-25.5", "-25.5"), {"team": "search"}),
        LineItem(date(2026, 11, 19), SANDBOX, "us-east-1", LAMBDA, "Refund", costs("-3.25", "-3.25")),
        LineItem(date(2026, 11, 16), PROD, "NoRegion", "AWS Support (Business)", "Support", costs("100", "100")),
        LineItem(date(2026, 11, 17), PROD, "us-east-1", EC2, "SavingsPlanCoveredUsage",
                 costs("10", "9.5", "7", "6.65"), {"team": "search", "environment": "prod"}),
        LineItem(date(2026, 11, 17), PROD, "us-east-1", EC2, "SavingsPlanNegation",
                 costs("-10", "-9.5", "0", "0"), {"team": "search", "environment": "prod"}),
        LineItem(date(2026, 11, 17), PROD, "NoRegion", "Savings Plans for AWS Compute usage",
                 "SavingsPlanRecurringFee", costs("7", "7", "0", "0")),
        # Net metrics already include the EDP discount: the discount record is zero in them.
        LineItem(date(2026, 11, 18), PROD, "us-east-1", EC2, "EdpDiscount", costs("-4.2", "0", "-4.2", "0"),
                 {"team": "search", "environment": "prod"}),
    ]
    return items


def expected(items, key, metric="NetAmortizedCost") -> dict:
    sums: dict = defaultdict(Decimal)
    for item in items:
        if item.record_type == "EdpDiscount":
            continue
        sums[key(item)] += item.costs[metric]
    return dict(sums)


BY = {
    "team": lambda i: i.tags.get("team"),
    "service": lambda i: i.service,
    "account": lambda i: f"{NAMES[i.account]} ({i.account})",
    "region": lambda i: None if i.region == "NoRegion" else i.region,
    "charge": lambda i: CHARGE[i.record_type],
}


@pytest.fixture(autouse=True)
def aws_env(monkeypatch, tmp_path):
    """Dummy keys, no ~/.aws, no instance metadata lookups, a pinned clock."""
    for name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL",
                 "AWS_ENDPOINT_URL_STS", "AWS_ENDPOINT_URL_COST_EXPLORER", "AWS_ROLE_ARN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIATESTING00000001")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing-secret")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "aws-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("FINOPS_NOW", NOW)


@pytest.fixture
def ce():
    fake = FakeCostExplorer(line_items(), NAMES, estimated_from=date(2026, 11, 1), page_size=5).start()
    yield fake
    fake.stop()


@pytest.fixture(scope="module")
def moto_url():
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


def aws_config(folder, url: str, extra: str = "    billing_account_id: '999999999999'\n"):
    return write_config(folder, "store: store.duckdb\nsources:\n  - name: aws-payer\n    type: aws\n"
                                f"    endpoint_url: {url}\n    max_attempts: 2\n{extra}")


def report(finops, config, by, *more):
    result = finops("--config", config, "report", "--by", by, *WINDOW, "--format", "json", *more)
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


def by_key(data, dim) -> dict:
    return {row[dim]: Decimal(row["cost"]) for row in data["rows"]}


def test_every_view_reconciles_to_the_cent_with_cost_explorer(finops, tmp_path, ce):
    config = aws_config(tmp_path, ce.url)
    result = finops("--config", config, "sync")
    assert result.exit_code == 0, result.stderr
    items = line_items()
    total = sum(expected(items, lambda i: 0).values())
    for dim in ("team", "service", "account", "region", "charge"):
        data = report(finops, config, dim, "--no-refresh")
        assert by_key(data, dim) == {k: v for k, v in expected(items, BY[dim]).items() if k or v}, dim
        assert Decimal(data["total"]) == total
    # Several dimensions at once are exact too: every row carries all of them.
    data = report(finops, config, "team", "--by", "service", "--by", "account", "--no-refresh")
    rows = {(r["team"], r["service"], r["account"]): Decimal(r["cost"]) for r in data["rows"]}
    assert rows == expected(items, lambda i: (BY["team"](i), i.service, BY["account"](i)))
    billed = report(finops, config, "team", "--cost", "billed", "--no-refresh")
    assert Decimal(billed["total"]) == sum(i.costs["NetUnblendedCost"] for i in items)
    listed = report(finops, config, "team", "--cost", "list", "--no-refresh")
    assert Decimal(listed["total"]) == sum(i.costs["UnblendedCost"] for i in items if i.record_type != "EdpDiscount")


def test_untagged_spend_counts_as_untagged(finops, tmp_path, ce):
    config = aws_config(tmp_path, ce.url)
    assert finops("--config", config, "sync").exit_code == 0
    data = report(finops, config, "team", "--no-refresh")
    untagged = sum(i.costs["NetAmortizedCost"] for i in line_items() if "team" not in i.tags)
    assert by_key(data, "team")[None] == untagged
    team_gap = next(t for t in data["untagged"]["tags"] if t["tag"] == "team")
    assert Decimal(team_gap["cost"]) == untagged
    # Only the keys with tagged spend became query levels; the others were probed once and said so.
    assert "no tagged spend for tag key(s) project, cost_center, owner" in finops(
        "--config", config, "sync").stderr


def test_credits_refunds_tax_and_support_are_not_usage(finops, tmp_path, ce):
    config = aws_config(tmp_path, ce.url)
    assert finops("--config", config, "sync").exit_code == 0
    charges = by_key(report(finops, config, "charge", "--no-refresh"), "charge")
    assert charges["Credit"] == Decimal("-25.5")
    assert charges["Adjustment"] == Decimal("-3.25")  # the refund, as a correction
    assert charges["Tax"] == Decimal("3.1415") * 12
    assert charges["Purchase"] == Decimal(100)  # support; the SP fee's amortised cost is 0
    billed = by_key(report(finops, config, "charge", "--cost", "billed", "--no-refresh"), "charge")
    assert billed["Purchase"] == Decimal(107)
    # The Savings Plan negation merges into the usage it cancels: one row, net of the on-demand cost.
    types = by_key(report(finops, config, "x:record_type", "--cost", "billed", "--no-refresh"), "x:record_type")
    assert types["SavingsPlanCoveredUsage,SavingsPlanNegation"] == 0
    assert "SavingsPlanNegation" not in types and "EdpDiscount" not in types


def test_request_count_follows_the_documented_plan(finops, tmp_path, ce):
    config = aws_config(tmp_path, ce.url)
    result = finops("--config", config, "sync")
    assert result.exit_code == 0, result.stderr
    items = [i for i in line_items() if i.day >= date(2026, 8, 22)]
    # 3 probes for 5 tag keys, then [RECORD_TYPE, LINKED_ACCOUNT] once, [REGION, tag team] per
    # (record type, account), and the daily [tag environment, SERVICE] per (.., region, team).
    level_1 = {(i.record_type, i.account) for i in items}
    level_2 = {(i.record_type, i.account, i.region, i.tags.get("team", "")) for i in items}
    logical = [c for c in ce.answered() if "NextPageToken" not in c.body]
    assert len(logical) == 3 + 1 + len(level_1) + len(level_2)
    pages = len(ce.answered())
    assert pages > len(logical)  # NextPageToken was followed
    assert f"{pages} API requests ({Decimal(pages) / 100:.2f} USD)" in result.stderr
    ledger = finops("--config", config, "sources", "ledger")
    assert str(pages) in ledger.stdout
    assert all(len(c.body.get("GroupBy", [])) <= 2 for c in ce.calls)


def test_fresh_report_makes_no_requests_and_stale_one_repulls_only_provisional_days(finops, tmp_path, ce,
                                                                                   monkeypatch):
    config = aws_config(tmp_path, ce.url)
    assert finops("--config", config, "sync").exit_code == 0
    before = len(ce.calls)
    result = finops("--config", config, "report", "--by", "team", *WINDOW)
    assert result.exit_code == 0 and len(ce.calls) == before
    assert "aws-payer" not in result.stderr

    monkeypatch.setenv("FINOPS_NOW", "2026-11-20T19:00:00Z")  # 7 h later: past the 6 h freshness
    result = finops("--config", config, "report", "--by", "team", *WINDOW, "--format", "json")
    assert result.exit_code == 0, result.stderr
    again = ce.calls[before:]
    assert again and {c.body["TimePeriod"]["Start"] for c in again} == {"2026-11-01"}  # first Estimated day
    assert Decimal(json.loads(result.stdout)["total"]) == sum(expected(line_items(), lambda i: 0).values())


def test_a_throttled_request_is_retried(finops, tmp_path, ce):
    config = aws_config(tmp_path, ce.url)
    ce.throttle_next = 1
    result = finops("--config", config, "sync")
    assert result.exit_code == 0, result.stderr
    assert len(ce.calls) == len(ce.answered()) + 1
    assert f"{len(ce.answered())} API requests" in result.stderr
    assert "1 throttled or failed attempt(s) retried" in result.stderr


def test_throttling_that_never_ends_fails_the_source_and_keeps_earlier_data(finops, tmp_path, ce):
    config = aws_config(tmp_path, ce.url)
    assert finops("--config", config, "sync").exit_code == 0
    before = report(finops, config, "service", "--no-refresh")
    ce.throttle_after = len(ce.answered()) + 4  # the next sync gets a few pages, then only throttles
    result = finops("--config", config, "sync", *WINDOW)
    assert result.exit_code == 3
    assert "Cost Explorer kept throttling GetCostAndUsage (LimitExceededException: Rate exceeded) after 2" \
        in result.stderr
    assert "the store keeps this source's earlier data" in result.stderr
    assert report(finops, config, "service", "--no-refresh") == before
    ledger = finops("--config", config, "sources", "ledger").stdout
    assert "failed" in ledger and "(0.04 USD)" in ledger  # the pages that were answered still cost money


def test_request_budget_stops_a_costly_plan_before_it_runs(finops, tmp_path, ce):
    config = aws_config(tmp_path, ce.url, "    billing_account_id: '999999999999'\n    max_requests: 6\n")
    result = finops("--config", config, "sync")
    assert result.exit_code == 3
    assert "max_requests=6" in result.stderr and "Cost Explorer requests (USD" in result.stderr
    assert len(ce.answered()) <= 6


def test_forecast_uses_get_cost_forecast_with_translated_filters(ce):
    from finops_cli.periods import Window, midnight
    from finops_cli.sources.aws import AwsConfig, AwsSource

    source = AwsSource(AwsConfig(name="aws", type="aws", endpoint_url=ce.url, max_attempts=2))
    month = Window(midnight(date(2026, 11, 1)), midnight(date(2026, 12, 1)))
    forecast = source.forecast(month, {"team": ["search", None], "account": ["prod (111111111111)"]})
    assert (forecast.mean, forecast.lower, forecast.upper, forecast.currency) == (
        Decimal("310.25"), Decimal("280.50"), Decimal("340.00"), "USD")
    body = ce.calls[-1].body
    assert body["TimePeriod"] == {"Start": "2026-11-20", "End": "2026-12-01"}  # Cost Explorer forecasts from today
    assert body["Metric"] == "NET_AMORTIZED_COST"
    assert body["Filter"] == {"And": [
        {"Or": [{"Tags": {"Key": "team", "Values": ["search"], "MatchOptions": ["EQUALS"]}},
                {"Tags": {"Key": "team", "MatchOptions": ["ABSENT"]}}]},
        {"Dimensions": {"Key": "LINKED_ACCOUNT", "Values": [PROD], "MatchOptions": ["EQUALS"]}}]}
    assert (source.stats.requests, source.stats.request_cost) == (1, Decimal("0.01"))
    # A dimension Cost Explorer cannot forecast by: no figure rather than a wrong one, and no request.
    assert source.forecast(month, {"charge": ["Usage"]}) is None
    ce.forecast_unavailable = True
    assert source.forecast(month) is None
    assert len(ce.calls) == 2


def test_assumed_role_signs_the_cost_explorer_requests(finops, tmp_path, ce, moto_url, monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL_STS", moto_url)
    config = aws_config(tmp_path, ce.url, "    role_arn: arn:aws:iam::123456789012:role/finops-read\n"
                                          "    external_id: finops-external-id\n")
    result = finops("--config", config, "sync")
    assert result.exit_code == 0, result.stderr
    keys = {c.access_key for c in ce.calls}
    assert len(keys) == 1 and keys != {"AKIATESTING00000001"} and next(iter(keys)).startswith("ASIA")
    payers = by_key(report(finops, config, "billing_account", "--no-refresh"), "billing_account")
    assert list(payers) == ["123456789012"]


def test_named_profile_and_caller_identity(finops, tmp_path, ce, moto_url, monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL_STS", moto_url)
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    (tmp_path / "aws-credentials").write_text(
        "[billing]\naws_access_key_id = AKIAPROFILEKEY000001\naws_secret_access_key = secret\n")
    config = aws_config(tmp_path, ce.url, "    profile: billing\n")
    result = finops("--config", config, "sync")
    assert result.exit_code == 0, result.stderr
    assert {c.access_key for c in ce.calls} == {"AKIAPROFILEKEY000001"}
    assert "secret" not in result.stderr
    assert list(by_key(report(finops, config, "billing_account", "--no-refresh"), "billing_account")) == [
        "123456789012"]


def test_missing_profile_and_missing_credentials_are_clear_errors(finops, tmp_path, ce, monkeypatch):
    config = aws_config(tmp_path, ce.url, "    profile: nope\n")
    result = finops("--config", config, "sync")
    assert result.exit_code == 3
    assert "AWS profile 'nope' is not in ~/.aws/config" in result.stderr
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    config = aws_config(tmp_path, ce.url)
    result = finops("--config", config, "sync")
    assert result.exit_code == 3
    assert "no AWS credentials found" in result.stderr and "aws sso login" in result.stderr
    assert ce.calls == []


def test_expired_sso_session_denied_access_and_unreachable_endpoint_are_clear_errors(finops, tmp_path, ce):
    (tmp_path / "aws-config").write_text(
        "[profile corp]\nsso_start_url = https://example.awsapps.com/start\nsso_region = us-east-1\n"
        "sso_account_id = 123456789012\nsso_role_name = Billing\n")
    result = finops("--config", aws_config(tmp_path, ce.url, "    profile: corp\n"), "sync")
    assert result.exit_code == 3
    assert "the AWS SSO session of profile 'corp' has expired" in result.stderr
    assert "aws sso login --profile corp" in result.stderr

    ce.deny = True
    result = finops("--config", aws_config(tmp_path, ce.url), "sync")
    assert result.exit_code == 3
    assert "AWS refused GetCostAndUsage" in result.stderr and "AccessDeniedException" in result.stderr
    assert "ce:GetCostAndUsage" in result.stderr

    result = finops("--config", aws_config(tmp_path, "http://127.0.0.1:1"), "sync")
    assert result.exit_code == 3
    assert "cannot reach Cost Explorer (GetCostAndUsage) at http://127.0.0.1:1" in result.stderr


def test_moto_pages_and_untagged_group(finops, tmp_path, moto_url):
    import requests

    def page(day, groups, token=None):
        out = {"GroupDefinitions": [], "DimensionValueAttributes": [], "ResultsByTime": [{
            "TimePeriod": {"Start": day, "End": day[:8] + f"{int(day[8:]) + 1:02d}"}, "Total": {},
            "Estimated": False, "Groups": [{"Keys": list(k), "Metrics": {m: {"Amount": a, "Unit": "USD"}
                                                                        for m in METRICS}} for k, a in groups]}]}
        if token:
            out["NextPageToken"] = token
        return out

    month = "2026-11-01"
    results = [
        page(month, [(("team$search",), "12.3456")]),  # tag probe (MONTHLY)
        page(month, [(("Usage",), "20.0007")]),  # RECORD_TYPE level, Cost Explorer's total
        page("2026-11-18", [(("team$search", S3), "12.3456")], "p2"),
        page("2026-11-18", [(("team$", S3), "1.5")], "p3"),
        page("2026-11-19", [(("team$", EC2), "6.1551")]),
    ]
    requests.post(f"{moto_url}/moto-api/reset")
    assert requests.post(f"{moto_url}/moto-api/static/ce/cost-and-usage-results",
                         json={"results": results}).status_code == 201
    config = aws_config(tmp_path, moto_url, "    billing_account_id: '999999999999'\n    dimensions: []\n"
                                            "    tag_keys: [team]\n")
    result = finops("--config", config, "sync")
    assert result.exit_code == 0, result.stderr
    assert "5 API requests (0.05 USD)" in result.stderr
    teams = by_key(report(finops, config, "team", "--no-refresh"), "team")
    assert teams == {"search": Decimal("12.3456"), None: Decimal("7.6551")}


def test_spend_the_filtered_queries_miss_is_kept_as_unattributed(finops, tmp_path, moto_url):
    import requests

    def page(start, end, groups):
        return {"ResultsByTime": [{"TimePeriod": {"Start": start, "End": end}, "Total": {}, "Estimated": False,
                                   "Groups": [{"Keys": list(k), "Metrics": {m: {"Amount": a, "Unit": "USD"}
                                                                          for m in METRICS}} for k, a in groups]}]}

    results = [
        page("2026-11-01", "2026-11-21", [(("Usage",), "10.50")]),  # Cost Explorer says 10.50 ...
        page("2026-11-18", "2026-11-19", [((PROD, S3), "9.25")]),  # ... the filtered query finds 9.25
    ]
    requests.post(f"{moto_url}/moto-api/reset")
    requests.post(f"{moto_url}/moto-api/static/ce/cost-and-usage-results", json={"results": results})
    config = aws_config(tmp_path, moto_url, "    billing_account_id: '999999999999'\n"
                                            "    dimensions: [LINKED_ACCOUNT]\n    tag_keys: []\n")
    result = finops("--config", config, "sync", "--start", "2026-11-01", "--end", "2026-11-21")
    assert result.exit_code == 0, result.stderr
    assert "1.25 USD of 2026-11 could not be attributed" in result.stderr
    services = by_key(report(finops, config, "service", "--no-refresh"), "service")
    assert services == {S3: Decimal("9.25"), "Unattributed": Decimal("1.25")}


def test_config_errors_name_the_line_and_key(finops, tmp_path):
    config = write_config(tmp_path, "sources:\n  - name: aws\n    type: aws\n    external_id: abc\n")
    result = finops("--config", config, "sync")
    assert result.exit_code == 2 and "external_id is only used with role_arn" in result.stderr
    config = write_config(tmp_path, "sources:\n  - name: aws\n    type: aws\n    tag_keys: [team$]\n")
    result = finops("--config", config, "config", "validate")
    assert result.exit_code == 2 and "finops.yaml:4" in result.stderr and "tag_keys" in result.stderr


def test_aws_is_a_listed_source_type_and_boto3_loads_only_to_pull(finops):
    result = finops("sources", "types")
    assert result.exit_code == 0
    assert "aws" in result.stdout and 'pip install "finops-cli[aws]"' in result.stdout
    code = ("import sys, finops_cli.sources.aws as a; a.AwsConfig(name='x', type='aws'); "
            "sys.exit('boto3' in sys.modules or 'botocore' in sys.modules)")
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0
