"""``finops tags audit`` on billing data: spend-weighted results, thresholds, exit codes, CI formats."""

from __future__ import annotations

import csv
import json
import xml.etree.ElementTree as ET
from decimal import Decimal
from pathlib import Path

import pytest
from tests.conftest import write_config

DATA = Path(__file__).parent / "data"
PLAN = DATA / "terraform" / "plan_aws_azure.json"
GOOGLE_PLAN = DATA / "terraform" / "plan_google.json"

COLUMNS = ["ProviderName", "SubAccountId", "SubAccountName", "ServiceName", "ResourceId", "ResourceType",
           "ChargeCategory", "BilledCost", "EffectiveCost", "BillingCurrency", "ChargePeriodStart",
           "ChargePeriodEnd", "Tags"]
FULL = {"team": "search", "project": "web", "environment": "prod", "cost_center": "CC-1001", "owner": "ana"}
# Usage spend in September 2024: 100.00 USD. Tax (3.00) is not a taggable charge.
ROWS = [
    ("AWS", "111", "prod", "Amazon EC2", "i-1", "Instance", "Usage", "59.50", FULL),
    ("AWS", "111", "prod", "Amazon EC2", "i-2", "Instance", "Usage", "25.00", {"team": "search", "environment": "prod"}),
    ("AWS", "111", "prod", "Amazon S3", None, None, "Usage", "10.00", {}),  # aggregated: no resource id
    ("Microsoft", "sub-9", "data", "Virtual Machines", "vm-1", "Microsoft.Compute/virtualMachines", "Usage", "5.00",
     {"Team": "data", "project": "lake", "environment": "qa", "cost_center": "CC-2002", "owner": "bo"}),
    ("AWS", "111", "prod", "Tax", None, None, "Tax", "3.00", {}),
    ("AWS", "111", "prod", "Amazon EC2", "i-3", "Instance", "Usage", "0.50",
     {"team": "x", "project": "y", "environment": "dev", "owner": "z"}),
]
POLICY = """\
tags:
  allowed:
    environment: [prod, staging, dev]
    cost_center: {regex: "CC-[0-9]{4}"}
  exemptions:
    - tags: {environment: dev}
      keys: [cost_center]
"""


def write_focus(path: Path, rows=ROWS) -> Path:
    with path.open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(COLUMNS)
        for day, (provider, account, name, service, resource, rtype, charge, cost, tags) in enumerate(rows, 1):
            writer.writerow([provider, account, name, service, resource or "NULL", rtype or "NULL", charge, cost, cost,
                             "USD", f"2024-09-{day:02d}T00:00:00Z", f"2024-09-{day + 1:02d}T00:00:00Z",
                             json.dumps(tags)])
    return path


@pytest.fixture
def billing(tmp_path, finops):
    """A config with a FOCUS file source, synced; returns a function that writes the config with extra YAML."""
    write_focus(tmp_path / "focus.csv")

    def configure(extra: str = POLICY) -> Path:
        path = write_config(tmp_path, f"store: store.duckdb\nsources:\n  - name: files\n    type: focus\n"
                                      f"    path: focus.csv\n{extra}")
        return path

    config = configure()
    assert finops("--config", config, "sync").exit_code == 0
    return configure


def audit(finops, config, *args):
    return finops("--config", config, "tags", "audit", "--period", "2024-09", *args)


def test_billing_spend_and_share_per_required_key(finops, billing):
    result = audit(finops, billing(), "--format", "json")
    assert result.exit_code == 1, result.stderr
    data = json.loads(result.stdout)["billing"]
    assert data["totals"] == {"USD": "100.00"}  # tax is not a taggable charge
    assert data["unattributed"] == {"USD": "10.00"}
    keys = {k["key"]: k for k in data["keys"]}
    assert {k: (v["missing"], v["disallowed"], v["share"]) for k, v in keys.items()} == {
        "team": ("15.00", "0.00", 0.15),  # "Team" is not "team" without case_insensitive
        "project": ("35.00", "0.00", 0.35),
        "environment": ("10.00", "5.00", 0.15),  # qa is not an allowed environment
        "cost_center": ("35.00", "0.00", 0.35),
        "owner": ("35.00", "0.00", 0.35),
    }
    assert keys["cost_center"]["exempt"] == "0.50"  # environment=dev needs no cost_center
    assert keys["team"]["unattributed"] == "10.00"
    top = data["top_resources"]
    assert [(t["resource"], t["cost"]) for t in top] == [("i-2", "25.00"), (None, "10.00"), ("vm-1", "5.00")]
    assert top[0]["missing"] == ["project", "cost_center", "owner"]
    assert top[0]["tags"] == {"team": "search", "environment": "prod"}  # current tags, to fix it by
    assert top[1]["service"] == "Amazon S3"
    assert top[2]["disallowed"] == {"environment": "qa"}
    groups = {(g["provider"], g["account"], g["service"]): g["noncompliant"] for g in data["by_group"]}
    assert groups[("AWS", "prod", "Amazon EC2")] == {"project": "25.00", "cost_center": "25.00", "owner": "25.00"}
    assert groups[("Microsoft", "data", "Virtual Machines")] == {"team": "5.00", "environment": "5.00"}
    assert len(json.loads(result.stdout)["violations"]) == 10  # 3 (i-2) + 5 (unattributed S3) + 2 (vm-1)


def test_table_reports_unattributed_spend_and_offenders(finops, billing):
    result = audit(finops, billing())
    assert result.exit_code == 1
    assert "Spend without a resource id (aggregated charges, cannot be tagged): 10.00 USD (10.0% of spend)" \
        in result.stdout
    assert "(no resource id: Amazon S3 from AWS)" in result.stdout
    assert "tag policy FAILED: 10 violations fail the policy" in result.stdout
    assert result.stderr.startswith("finops: error: tag policy FAILED")


def test_aliases_and_case_rules_come_from_allocation(finops, billing):
    config = billing(POLICY + "allocation:\n  case_insensitive: true\n")
    keys = {k["key"]: k for k in json.loads(audit(finops, config, "--format", "json").stdout)["billing"]["keys"]}
    assert keys["team"]["missing"] == "10.00"
    config = billing(POLICY + "allocation:\n  aliases:\n    team: [team, Team]\n")
    keys = {k["key"]: k for k in json.loads(audit(finops, config, "--format", "json").stdout)["billing"]["keys"]}
    assert keys["team"]["missing"] == "10.00"


@pytest.mark.parametrize("share, code, failing", [("30%", 1, ["project", "cost_center", "owner"]), ("0.4", 0, [])])
def test_untagged_share_threshold_judges_billing(finops, billing, share, code, failing):
    config = billing(POLICY + f"  thresholds:\n    max_untagged_share: {share!r}\n")
    result = audit(finops, config, "--format", "json")
    assert result.exit_code == code, result.stderr
    data = json.loads(result.stdout)
    assert [v["key"] for v in data["violations"] if v["failing"]] == failing
    assert all(v["rule"] == "untagged-share" for v in data["violations"] if v["counted"])
    assert len(data["billing"]["top_resources"]) == 3  # offenders still listed, not counted


def test_min_spend_and_max_violations(finops, billing):
    config = billing(POLICY + "  thresholds:\n    min_spend: 6\n")
    data = json.loads(audit(finops, config, "--format", "json").stdout)
    assert {v["resource"] for v in data["violations"]} == {"i-2", None}  # vm-1 spent 5.00
    config = billing(POLICY + "  thresholds:\n    min_spend: 6\n    max_violations: 8\n")
    result = audit(finops, config)
    assert result.exit_code == 0
    assert "tag policy passed: 8 violations reported, 8 counted" in result.stdout


def test_severity_and_fail_on(finops, billing):
    config = billing(POLICY.replace("  allowed:", "  severity: {owner: warning, team: warning, project: warning,"
                                    " cost_center: warning, environment: warning}\n  allowed:"))
    assert audit(finops, config, "--fail-on", "error").exit_code == 0  # only warnings
    assert audit(finops, config).exit_code == 1
    assert audit(finops, billing(), "--fail-on", "plan").exit_code == 0  # billing violations do not fail
    assert audit(finops, billing(), "--fail-on", "none").exit_code == 0
    bad = audit(finops, billing(), "--fail-on", "sometimes")
    assert bad.exit_code == 2 and "--fail-on 'sometimes'" in bad.stderr


@pytest.mark.parametrize("exemption, exempt_resources", [
    ("provider: azure", {"vm-1"}),  # Terraform's name and FOCUS's "Microsoft" are the same provider
    ("service: [Amazon S3, Amazon RDS]", {None}),
    ("resource_type: 'microsoft.compute/*'", {"vm-1"}),
    ("tags: {team: search}", {"i-2"}),
])
def test_exemptions_by_provider_service_type_and_tag(finops, billing, exemption, exempt_resources):
    config = billing(POLICY + f"    - {exemption}\n")
    data = json.loads(audit(finops, config, "--format", "json").stdout)
    flagged = {v["resource"] for v in data["violations"]}
    assert flagged == {"i-2", None, "vm-1"} - exempt_resources
    exempt = sum(Decimal(k["exempt"]) for k in data["billing"]["keys"])
    assert exempt > Decimal("0.50")


def test_billing_and_plans_in_one_run(finops, billing):
    result = audit(finops, billing(), "--plan", PLAN, "--plan", GOOGLE_PLAN, "--fail-on", "plan", "--format", "json")
    data = json.loads(result.stdout)
    assert result.exit_code == 1
    assert {v["origin"] for v in data["violations"]} == {"billing", "plan"}
    assert {v["origin"] for v in data["violations"] if v["failing"]} == {"plan"}
    assert data["summary"] == {"violations": 20, "failing": 10, "max_violations": 0}


def test_focus_sample_untagged_share_matches_the_file(finops, tmp_path, focus_sample):
    """The FinOps Foundation sample: the audit's figures equal a plain reading of the CSV."""
    config = write_config(tmp_path, f"store: s.duckdb\nsources:\n  - name: sample\n    type: focus\n"
                                    f"    path: {focus_sample}\n")
    assert finops("--config", config, "sync").exit_code == 0
    total, missing_env = Decimal(0), Decimal(0)
    with focus_sample.open(encoding="utf-8-sig") as handle:
        for row in csv.DictReader(handle):
            if row["ChargeCategory"] != "Usage" or not row["ChargePeriodStart"].startswith("2024-09"):
                continue
            cost = Decimal(row["EffectiveCost"])
            total += cost
            tags = json.loads(row["Tags"]) if row["Tags"] not in ("", "NULL") else {}
            if tags.get("environment") in (None, ""):
                missing_env += cost
    result = finops("--config", config, "tags", "audit", "--period", "2024-09", "--format", "json")
    assert result.exit_code == 1
    keys = {k["key"]: k for k in json.loads(result.stdout)["billing"]["keys"]}
    assert Decimal(keys["environment"]["total"]) == total
    assert Decimal(keys["environment"]["missing"]) == missing_env
    assert keys["environment"]["share"] == round(float(missing_env / total), 6)


# -- CI formats ------------------------------------------------------------------------------

def test_sarif_is_valid_sarif_2_1_0(finops, billing):
    jsonschema = pytest.importorskip("jsonschema", reason="jsonschema is in the test extra")
    schema = json.loads((DATA / "sarif-schema-2.1.0.json").read_text(encoding="utf-8"))
    result = audit(finops, billing(), "--plan", PLAN, "--plan", GOOGLE_PLAN, "--format", "sarif")
    assert result.exit_code == 1
    sarif = json.loads(result.stdout)
    jsonschema.Draft4Validator(schema).validate(sarif)
    results = sarif["runs"][0]["results"]
    assert len(results) == 20
    vpc = next(r for r in results if r["locations"][0]["logicalLocations"][0]["fullyQualifiedName"]
               == "module.network.aws_vpc.main")
    assert vpc["ruleId"] == "tags/disallowed-value" and vpc["level"] == "error"
    assert vpc["locations"][0]["physicalLocation"] == {"artifactLocation": {"uri": "modules/network/main.tf"},
                                                       "region": {"startLine": 12}}
    billing_result = next(r for r in results if r["properties"]["origin"] == "billing")
    assert billing_result["locations"][0]["physicalLocation"]["artifactLocation"]["uri"].endswith("finops.yaml")


def policy_file(folder: Path) -> Path:
    """POLICY as a standalone --policy file (the same keys, at the top level)."""
    path = folder / "policy.yaml"
    path.write_text(POLICY.replace("tags:\n", "").replace("\n  ", "\n")[2:], encoding="utf-8")
    return path


def test_junit_has_one_case_per_rule_and_resource(finops, tmp_path):
    policy = policy_file(tmp_path)
    result = finops("tags", "audit", "--no-billing", "--policy", policy, "--plan", PLAN, "--plan", GOOGLE_PLAN,
                    "--format", "junit")
    assert result.exit_code == 1, result.stderr
    root = ET.fromstring(result.stdout)
    assert (root.get("tests"), root.get("failures"), root.get("skipped")) == ("45", "10", "2")  # 9 resources x 5
    case = root.find(".//testcase[@name='cost_center: module.network.aws_vpc.main']")
    assert case.find("failure").get("type") == "disallowed-value"
    assert case.get("file") == "modules/network/main.tf"
    skipped = root.find(".//testcase[@name='cost_center: azurerm_storage_account.dev']/skipped")
    assert skipped.get("message") == "exempt by policy"


def test_github_annotations(finops, tmp_path, monkeypatch):
    monkeypatch.chdir(DATA.parent)  # annotation paths are relative to the checkout
    result = finops("tags", "audit", "--no-billing", "--policy", policy_file(tmp_path), "--plan", PLAN,
                    "--format", "github")
    lines = result.stdout.splitlines()
    assert result.exit_code == 1
    assert ("::error file=data/terraform/plan_aws_azure.json,title=tag policy%3A missing-tag project::"
            "aws_s3_bucket.logs: required tag 'project' is missing") in lines
    assert any(line.startswith("::error file=modules/network/main.tf,line=12,") for line in lines)
    assert lines[-1].startswith("::error::tag policy FAILED")


def test_markdown_and_output_file(finops, billing, tmp_path):
    out = tmp_path / "summary.md"
    result = audit(finops, billing(), "--format", "markdown", "--output", out)
    assert result.exit_code == 1
    assert result.stdout == ""
    text = out.read_text(encoding="utf-8")
    assert "## ❌ Tag policy audit" in text
    assert "| `project` | USD | 35.00 | 0.00 | 35.0% | 0.00 |" in text
    assert "| 25.00 USD | i-2 | project, cost_center, owner |" in text


# -- exit codes and errors -------------------------------------------------------------------

def test_source_error_exits_3(finops, tmp_path):
    config = write_config(tmp_path, "store: s.duckdb\nsources:\n  - name: gone\n    type: focus\n"
                                    "    path: missing.csv\n")
    result = finops("--config", config, "tags", "audit", "--refresh", "--period", "2024-09")
    assert result.exit_code == 3
    assert "missing.csv" in result.stderr


@pytest.mark.parametrize("section, message", [
    ("tags:\n  alowed: {}\n", "finops.yaml:7: tags.alowed: unknown key 'alowed' in tags (known keys: required, allowed,"),
    ("tags:\n  allowed:\n    cost_center: {regex: 'CC-[0-9'}\n",
     "finops.yaml:8: tags.allowed.cost_center.regex: value error, invalid regular expression"),
    ("tags:\n  exemptions:\n    - reason: nothing\n",
     "finops.yaml:8: tags.exemptions[0]: value error, an exemption needs at least one of provider"),
    ("tags:\n  exemptions:\n    - provider: aws\n      keys: [teem]\n",
     "finops.yaml:9: tags.exemptions[0].keys: 'teem' is not a required key"),
    ("tags:\n  thresholds:\n    max_untagged_share: 150%\n",
     "finops.yaml:8: tags.thresholds.max_untagged_share: input should be less than or equal to 1"),
])
def test_bad_policy_in_config_names_line_and_key_path(finops, tmp_path, section, message):
    config = write_config(tmp_path, "store: s.duckdb\nsources:\n  - name: f\n    type: focus\n    path: x.csv\n"
                          + section)
    result = finops("--config", config, "tags", "audit")
    assert result.exit_code == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_bad_standalone_policy_file(finops, tmp_path):
    policy = tmp_path / "policy.yaml"
    policy.write_text("required: [team, Owner]\nallowed:\n  team: [a]\nseverty: {}\n", encoding="utf-8")
    result = finops("tags", "audit", "--no-billing", "--plan", PLAN, "--policy", policy)
    assert result.exit_code == 2
    assert "2 problems in" in result.stderr
    assert f"{policy}:1: required: value error, required key 'Owner' must be a lower_snake_case" in result.stderr
    assert f"{policy}:4: severty: unknown key 'severty' in the top level (known keys: required," in result.stderr


def test_usage_errors_exit_2(finops, tmp_path):
    result = finops("tags", "audit", "--no-billing")
    assert result.exit_code == 2 and "give at least one --plan FILE" in result.stderr
    result = finops("tags", "audit", "--no-billing", "--plan", PLAN, "--output", tmp_path / "no" / "dir.txt")
    assert result.exit_code == 2 and "cannot write" in result.stderr
    result = finops("tags", "audit")  # no config anywhere and nothing else to audit
    assert result.exit_code == 2 and "no finops config found" in result.stderr


def test_documented_config_snippet_is_valid(finops, tmp_path):
    snippet = (Path(__file__).parents[1] / "docs" / "config-snippets" / "tags.yaml").read_text(encoding="utf-8")
    config = write_config(tmp_path, snippet)
    result = finops("--config", config, "config", "validate")
    assert result.exit_code == 0, result.stderr
