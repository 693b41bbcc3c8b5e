"""OpenCost and Kubecost sources, allocation rows in reports, and ``finops k8s idle-gpus``.

Everything runs through the real CLI and the real HTTP code against ``tests/fakes/opencost.py``
on 127.0.0.1, which serves four days (2024-03-01 .. 03-04) of a cluster.
"""

from __future__ import annotations

import json
import socket
from decimal import Decimal

import pytest
from conftest import write_config
from fakes import opencost as fake

WINDOW = ("--start", "2024-03-01", "--end", "2024-03-05")
LABELS = "[team, app.kubernetes.io/name]"


@pytest.fixture
def api():
    server, base = fake.start()
    yield base
    server.shutdown()
    server.server_close()


@pytest.fixture(autouse=True)
def pinned_now(monkeypatch):
    monkeypatch.setenv("FINOPS_NOW", "2024-03-05T00:00:00Z")


def k8s_config(tmp_path, base, kind="opencost", keys="", extra=""):
    """A config with one Kubernetes source ``k8s`` (plus ``keys`` of its own) and ``extra`` sources."""
    return write_config(tmp_path, f"""
store: {tmp_path}/store.duckdb
report:
  refresh: false
sources:
  - name: k8s
    type: {kind}
    url: {base}
    labels: {LABELS}
{keys}{extra}""")


def report_json(finops, config, *args):
    result = finops("--config", config, "report", *WINDOW, "--format", "json", *args)
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    key = data["by"][0]
    return {row[key]: Decimal(row["cost"]) for row in data["rows"]}, Decimal(data["total"] or 0), result


# -- what the fixture holds, computed from the fake's own data the way the API rounds it --------------
def money(values: dict, factor: float) -> Decimal:
    return sum((Decimal(repr(round(values.get(k, 0.0) * factor, 5))) for k in fake.COST_FIELDS), Decimal(0))


def expected(key) -> dict:
    """Allocated cost over the four days, grouped by ``key(properties)``; idle and unallocated under None."""
    out: dict = {}
    for day in range(fake.DAYS):
        factor = 1 + day / 10
        for atom in fake.ATOMS:
            group = key(atom["properties"])
            out[group] = out.get(group, Decimal(0)) + money(atom, factor)
        idle = {}
        for values in fake.IDLE_BY_NODE.values():
            for k, v in values.items():
                idle[k] = idle.get(k, 0.0) + v * factor
        out[None] = out.get(None, Decimal(0)) + money(idle, 1.0)
    out[None] += Decimal("0.12345") + Decimal("0.04321")  # the API's own __unallocated__ bucket, day 2
    return out


def test_sync_opencost_namespace_and_team_totals_match_the_fixture_to_the_cent(finops, tmp_path, api):
    config = k8s_config(tmp_path, api)
    result = finops("--config", config, "sync", *WINDOW)
    assert result.exit_code == 0, result.stderr
    assert "1 API request" in result.stderr

    by_namespace, total, _ = report_json(finops, config, "--by", "x:namespace", "--allocations", "only")
    want = expected(lambda p: p["namespace"])
    assert by_namespace == want
    assert by_namespace["search"].quantize(Decimal("0.01")) == Decimal("34.75")
    assert by_namespace[None].quantize(Decimal("0.01")) == Decimal("352.48")  # idle + unallocated, visible
    assert total == sum(want.values())

    by_team, team_total, _ = report_json(finops, config, "--by", "team", "--allocations", "only")
    want = expected(lambda p: p["labels"].get("team"))
    assert by_team == want
    assert {k: v.quantize(Decimal("0.01")) for k, v in by_team.items() if k in ("search", "ads")} == {
        "search": Decimal("34.88"), "ads": Decimal("19.44")}
    assert team_total == total  # every view of the window reconciles


def test_rewritten_label_keys_are_mapped_back_and_kept_as_configured(finops, tmp_path, api):
    config = k8s_config(tmp_path, api)
    assert finops("--config", config, "sync", *WINDOW).exit_code == 0
    by_app, _, _ = report_json(finops, config, "--by", "tag:app.kubernetes.io/name", "--allocations", "only")
    assert {"search-api", "elasticsearch", "bidder", "aws-node"} <= set(by_app)
    path, query, _ = fake.State.log[0]
    assert path == "/allocation/compute"
    assert query["aggregate"] == ("cluster,namespace,controllerKind,controller,label:team,"
                                  "label:app_kubernetes_io_name")
    assert (query["step"], query["accumulate"]) == ("1d", "false")
    assert query["window"] == "2024-03-01T00:00:00Z,2024-03-05T00:00:00Z"


def test_idle_and_unallocated_are_their_own_rows_and_components_split_the_cost(finops, tmp_path, api):
    config = k8s_config(tmp_path, api)
    assert finops("--config", config, "sync", *WINDOW).exit_code == 0
    _path, query, _ = fake.State.log[0]
    assert (query["includeIdle"], query["shareIdle"]) == ("true", "false")  # OpenCost's default is false

    kinds, total, _ = report_json(finops, config, "--by", "x:allocation", "--filter", "source=k8s")
    assert set(kinds) == {"workload", "idle", "unallocated"}
    assert kinds["unallocated"] == Decimal("0.16666")
    assert sum(kinds.values()) == total

    components, component_total, _ = report_json(finops, config, "--by", "x:component", "--allocations", "only")
    assert set(components) == {"cpu", "ram", "gpu", "pv", "network", "loadbalancer", "shared", "external"}
    assert component_total == total
    # the reconciled adjustment lowers the effective cost below the model's list price
    list_cpu, _, _ = report_json(finops, config, "--by", "x:component", "--allocations", "only", "--cost", "list")
    adjustment = sum(money({"cpuCost": 0.33333}, 1 + day / 10) for day in range(fake.DAYS))
    assert list_cpu["cpu"] - components["cpu"] == adjustment
    _billed, billed_total, _ = report_json(finops, config, "--by", "x:component", "--allocations", "only",
                                          "--cost", "billed")
    assert billed_total == 0  # allocations are never invoiced


def test_rows_carry_focus_allocation_columns_quantities_and_null_efficiency(finops, tmp_path, api):
    import duckdb

    config = k8s_config(tmp_path, api)
    assert finops("--config", config, "sync", *WINDOW).exit_code == 0
    con = duckdb.connect(str(tmp_path / "store.duckdb"), read_only=True)
    try:
        row = con.execute(
            "SELECT AllocatedMethodId, AllocatedResourceId, AllocatedTags['team'], ConsumedQuantity, ConsumedUnit, "
            "SubAccountId, ServiceName, HostProviderName, BilledCost FROM costs "
            "WHERE x_Properties['component'] = 'ram' "
            "AND ResourceId = 'prod-eks/search/deployment/api' AND ChargePeriodStart = '2024-03-01'").fetchone()
        assert row == ("opencost-allocation", "prod-eks/search/deployment/api", "search",
                       Decimal("96.000000000000000"), "GiB-Hours", "prod-eks", "Kubernetes", "AWS", Decimal(0))
        efficiency = con.execute(
            "SELECT x_Properties['efficiency'] FROM costs WHERE ResourceId = 'prod-eks/ads/job/nightly-report' "
            "AND x_Properties['component'] = 'cpu' LIMIT 1").fetchone()[0]
        assert efficiency == "unknown"
    finally:
        con.close()


def test_kubecost_asks_for_idle_explicitly_and_gets_the_same_totals(finops, tmp_path, api):
    config = k8s_config(tmp_path, api + "/model", kind="kubecost")
    assert finops("--config", config, "sync", *WINDOW).exit_code == 0
    path, query, _ = fake.State.log[0]
    assert path == "/model/allocation"
    assert (query["idle"], query["shareIdle"]) == ("true", "false")
    by_namespace, _, _ = report_json(finops, config, "--by", "x:namespace", "--allocations", "only")
    assert by_namespace == expected(lambda p: p["namespace"])

    methods, _, _ = report_json(finops, config, "--by", "AllocatedMethodId", "--allocations", "only")
    assert list(methods) == ["kubecost-allocation"]


def test_long_windows_are_split_into_week_requests(finops, tmp_path, api):
    config = k8s_config(tmp_path, api)
    result = finops("--config", config, "sync", "--start", "2024-02-20", "--end", "2024-03-05")
    assert result.exit_code == 0, result.stderr
    windows = [q["window"] for _p, q, _h in fake.State.log]
    assert windows == ["2024-02-20T00:00:00Z,2024-02-27T00:00:00Z", "2024-02-27T00:00:00Z,2024-03-05T00:00:00Z"]
    assert "2 API requests" in result.stderr


@pytest.mark.parametrize("kind, first_sync_requests", [("opencost", 13), ("kubecost", 3)])
def test_first_sync_reaches_the_lookback_and_the_next_one_only_recent_days(finops, tmp_path, api, monkeypatch,
                                                                           kind, first_sync_requests):
    monkeypatch.setenv("FINOPS_NOW", "2024-03-05T12:00:00Z")
    config = k8s_config(tmp_path, api, kind=kind)
    result = finops("--config", config, "sync")
    assert result.exit_code == 0, result.stderr
    assert len(fake.State.log) == first_sync_requests
    assert fake.State.log[0][1]["window"].startswith("2023-12-06T00:00:00Z,")  # 90 days back
    assert fake.State.log[-1][1]["window"].endswith(",2024-03-05T12:00:00Z")  # up to now, not tomorrow

    del fake.State.log[:]
    result = finops("--config", config, "sync")
    assert result.exit_code == 0, result.stderr
    assert [q["window"] for _p, q, _h in fake.State.log] == ["2024-03-03T00:00:00Z,2024-03-05T12:00:00Z"]


def test_today_is_pulled_up_to_now_and_marked_provisional(finops, tmp_path, api, monkeypatch):
    monkeypatch.setenv("FINOPS_NOW", "2024-03-04T12:00:00Z")
    config = k8s_config(tmp_path, api)
    result = finops("--config", config, "sync", "--start", "2024-03-04")
    assert result.exit_code == 0, result.stderr
    assert fake.State.log[0][1]["window"] == "2024-03-04T00:00:00Z,2024-03-04T12:00:00Z"
    assert "re-pulled next sync" in result.stderr
    by_namespace, _, _ = report_json(finops, config, "--by", "x:namespace", "--allocations", "only")
    # half of day 4 (factor 1.3 * 0.5)
    assert by_namespace["ads"] == money(fake.ATOMS[2], 0.65) + money(fake.ATOMS[3], 0.65)


AWS_CSV = """BilledCost,EffectiveCost,ListCost,BillingCurrency,ChargePeriodStart,ChargePeriodEnd,ChargeCategory,\
ServiceName,ProviderName,SubAccountId,ResourceId,AllocatedMethodId
{rows}"""


def test_report_by_provider_does_not_add_the_cluster_twice(finops, tmp_path, api):
    rows = []
    for day in range(1, 5):  # the EC2 nodes under the cluster, and some S3
        start, end = f"2024-03-0{day}T00:00:00Z", f"2024-03-0{day + 1}T00:00:00Z"
        rows.append(f"530.00,530.00,600.00,USD,{start},{end},Usage,Amazon Elastic Compute Cloud,AWS,111,i-node,")
        rows.append(f"10.25,10.25,10.25,USD,{start},{end},Usage,Amazon Simple Storage Service,AWS,111,bucket,")
        # a split-cost row of the cloud's own FOCUS 1.3 export is the bill itself: always counted
        rows.append(f"0.10,0.10,0.10,USD,{start},{end},Usage,Amazon Elastic Kubernetes Service,AWS,111,eks,split")
    (tmp_path / "aws.csv").write_text(AWS_CSV.format(rows="\n".join(rows)) + "\n")
    config = k8s_config(tmp_path, api, extra="  - name: aws\n    type: focus\n    path: aws.csv\n")
    assert finops("--config", config, "sync", *WINDOW).exit_code == 0

    by_provider, total, result = report_json(finops, config, "--by", "provider")
    assert by_provider == {"AWS": Decimal("2161.40")}
    assert total == Decimal("2161.40")
    cluster = sum(expected(lambda p: p["namespace"]).values())
    assert f"left out {cluster.quantize(Decimal('0.01')):,} USD of Kubernetes allocations (k8s)" in result.stderr
    assert "--allocations only" in result.stderr

    both, _both_total, result = report_json(finops, config, "--by", "provider", "--allocations", "include")
    assert both == {"AWS": Decimal("2161.40"), "Kubernetes": cluster}
    assert "left out" not in result.stderr

    _teams, team_total, _ = report_json(finops, config, "--by", "team", "--filter", "source=k8s")
    assert team_total == cluster  # naming the source selects its allocation rows

    result = finops("--config", config, "report", *WINDOW, "--by", "provider", "--allocations", "sometimes")
    assert result.exit_code == 2 and "--allocations" in result.stderr


def test_bearer_token_is_sent_and_never_printed(finops, tmp_path, api, monkeypatch):
    fake.State.token = "s3cr3t-token-value"
    config = k8s_config(tmp_path, api, keys="    token_env: OPENCOST_TOKEN\n")

    result = finops("--config", config, "sync", *WINDOW)
    assert result.exit_code == 3
    assert "OPENCOST_TOKEN" in result.stderr and "not set" in result.stderr

    monkeypatch.setenv("OPENCOST_TOKEN", "wrong")
    result = finops("--config", config, "sync", *WINDOW)
    assert result.exit_code == 3 and "HTTP 401" in result.stderr and "wrong" not in result.stderr

    monkeypatch.setenv("OPENCOST_TOKEN", "s3cr3t-token-value")
    result = finops("--config", config, "sync", *WINDOW)
    assert result.exit_code == 0, result.stderr
    assert fake.State.log[-1][2]["Authorization"] == "Bearer s3cr3t-token-value"
    shown = finops("--config", config, "config", "show")
    for output in (result.stdout, result.stderr, shown.stdout, shown.stderr):
        assert "s3cr3t" not in output


def test_a_text_plain_400_and_a_json_500_fail_cleanly_and_keep_the_store(finops, tmp_path, api):
    config = k8s_config(tmp_path, api)
    assert finops("--config", config, "sync", *WINDOW).exit_code == 0
    before, before_total, _ = report_json(finops, config, "--by", "x:namespace", "--allocations", "only")

    fake.State.reject = "window"
    result = finops("--config", config, "sync", *WINDOW)
    assert result.exit_code == 3
    assert "HTTP 400: Invalid 'window' parameter" in result.stderr
    assert "Traceback" not in result.stderr

    fake.State.reject = "query"
    result = finops("--config", config, "sync", *WINDOW)
    assert result.exit_code == 3
    assert "HTTP 500: Error: failed to query Prometheus" in result.stderr

    after, after_total, _ = report_json(finops, config, "--by", "x:namespace", "--allocations", "only")
    assert (after, after_total) == (before, before_total)


def test_an_unreachable_api_is_a_source_error(finops, tmp_path):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config = k8s_config(tmp_path, f"http://127.0.0.1:{port}")
    result = finops("--config", config, "sync", *WINDOW)
    assert result.exit_code == 3
    assert f"cannot reach the OpenCost API at http://127.0.0.1:{port}/allocation/compute" in result.stderr


def test_private_tls_needs_the_ca_bundle_named_by_verify_tls(finops, tmp_path):
    import ssl

    import trustme

    ca = trustme.CA()
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    ca.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    server, base = fake.start(context)
    try:
        config = k8s_config(tmp_path, base)
        result = finops("--config", config, "sync", *WINDOW)
        assert result.exit_code == 3 and "TLS error" in result.stderr and "verify_tls" in result.stderr
        assert "certificate verify failed" in result.stderr

        config = k8s_config(tmp_path, base, keys="    verify_tls: ca.pem\n")  # relative to the config file
        result = finops("--config", config, "sync", *WINDOW)
        assert result.exit_code == 0, result.stderr
    finally:
        server.shutdown()
        server.server_close()


def test_config_rejects_unknown_keys_with_file_and_line(finops, tmp_path, api):
    config = k8s_config(tmp_path, api, keys="    namespace_label: team\n")
    result = finops("--config", config, "config", "validate")
    assert result.exit_code == 2
    assert "finops.yaml:" in result.stderr and "namespace_label" in result.stderr


# -- finops k8s idle-gpus -----------------------------------------------------------------------------
def idle_gpus(finops, config, *args):
    result = finops("--config", config, "k8s", "idle-gpus", "--format", "json", *args)
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


def test_idle_gpus_sorted_by_waste_shared_gpus_split_and_unknown_not_idle(finops, tmp_path, api):
    config = k8s_config(tmp_path, api)
    data = idle_gpus(finops, config)
    _path, query, _ = fake.State.log[0]
    assert query["window"] == "2024-03-04T00:00:00Z,2024-03-05T00:00:00Z"  # the last 24 h
    assert query["accumulate"] == "true" and query["includeIdle"] == "true" and query["idleByNode"] == "true"

    rows = [(g["status"], g["node"], g["workload"], g["gpus"], g["idle_cost"]) for g in data["gpus"]]
    day4 = Decimal("1.3")
    assert rows[:3] == [
        ("unrequested", "gpu-node-2", None, "1", str(Decimal("73.44") * day4)),
        ("idle", "gpu-node-1", "deployment/trainer", "1", str(Decimal("73.44") * day4 * Decimal("0.97"))),
        ("idle", "gpu-node-3", "deployment/llm-a", "0.5", str(Decimal("36.72") * day4 * Decimal("0.98"))),
    ]
    statuses = {g["workload"]: g["status"] for g in data["gpus"]}
    assert statuses["deployment/notebook"] == "unknown"  # no utilisation data: not called idle
    assert statuses["job/batch-infer"] == "busy" and statuses["deployment/llm-b"] == "busy"
    assert Decimal(data["wasted"]) == sum(Decimal(r[4]) for r in rows[:3])
    assert Decimal(data["wasted"]).quantize(Decimal("0.01")) == Decimal("234.86")
    shared = [g for g in data["gpus"] if g["shared"]]
    assert sum(Decimal(g["gpus"]) for g in shared) == 1  # two pods on one time-sliced GPU: one GPU


def test_idle_gpus_table_threshold_and_window_options(finops, tmp_path, api):
    config = k8s_config(tmp_path, api)
    result = finops("--config", config, "k8s", "idle-gpus")
    assert result.exit_code == 0, result.stderr
    assert "234.86 USD" in result.stdout and "deployment/trainer" in result.stdout
    assert "no utilisation data" in result.stdout and "research/deployment/notebook" in result.stdout

    data = idle_gpus(finops, config, "--threshold", "60%", "--window", "12h")
    assert {g["workload"] for g in data["gpus"] if g["status"] == "idle"} == {
        "deployment/trainer", "deployment/llm-a", "deployment/llm-b"}
    assert fake.State.log[-1][1]["window"] == "2024-03-04T12:00:00Z,2024-03-05T00:00:00Z"

    for bad in (("--window", "5m"), ("--window", "30d"), ("--threshold", "abc"), ("--format", "csv")):
        result = finops("--config", config, "k8s", "idle-gpus", *bad)
        assert result.exit_code == 2, bad


def test_idle_gpus_errors_are_source_errors(finops, tmp_path, api):
    config = k8s_config(tmp_path, api)
    fake.State.reject = "window"
    result = finops("--config", config, "k8s", "idle-gpus")
    assert result.exit_code == 3 and "Invalid 'window' parameter" in result.stderr
    fake.State.reject = None

    other = tmp_path / "other"
    other.mkdir()
    config = write_config(other, f"sources:\n  - {{name: a, type: opencost, url: '{api}'}}\n"
                                 f"  - {{name: b, type: kubecost, url: '{api}'}}\n")
    result = finops("--config", config, "k8s", "idle-gpus")
    assert result.exit_code == 2 and "--source" in result.stderr
    assert idle_gpus(finops, config, "--source", "b")["currency"] == "USD"
    assert fake.State.log[-1][0] == "/model/allocation"
