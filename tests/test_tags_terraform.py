"""Terraform plan JSON -> the resources a tag audit checks, and the violations it finds in them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from finops_cli.errors import ConfigError
from finops_cli.tags.terraform import read_plan

DATA = Path(__file__).parent / "data" / "terraform"
AWS_AZURE = DATA / "plan_aws_azure.json"
GOOGLE = DATA / "plan_google.json"

POLICY = """\
allowed:
  environment: [prod, staging, dev]
  cost_center: {regex: "CC-[0-9]{4}"}
exemptions:
  - tags: {environment: dev}
    keys: [cost_center]
    reason: dev environments are not charged back
"""

EXPECTED = {
    (str(AWS_AZURE), "aws_s3_bucket.logs", "missing-tag", "project", None),
    (str(AWS_AZURE), "aws_s3_bucket.logs", "missing-tag", "cost_center", None),
    (str(AWS_AZURE), "module.network.aws_vpc.main", "disallowed-value", "cost_center", "1234"),
    (str(AWS_AZURE), "azurerm_resource_group.rg", "disallowed-value", "environment", "qa"),
    (str(AWS_AZURE), "azurerm_resource_group.rg", "missing-tag", "cost_center", None),
    (str(GOOGLE), "google_compute_instance.vm", "disallowed-value", "cost_center", "cc-3003"),
    (str(GOOGLE), "google_storage_bucket.b", "missing-tag", "team", None),
    (str(GOOGLE), "google_storage_bucket.b", "missing-tag", "project", None),
    (str(GOOGLE), "google_storage_bucket.b", "missing-tag", "environment", None),
    (str(GOOGLE), "google_storage_bucket.b", "missing-tag", "cost_center", None),
}


@pytest.fixture
def policy(tmp_path) -> Path:
    path = tmp_path / "policy.yaml"
    path.write_text(POLICY, encoding="utf-8")
    return path


def test_only_created_and_updated_resources_with_tags_are_checked():
    plan = read_plan(AWS_AZURE)
    assert [r.address for r in plan.resources] == [
        "aws_instance.web", "aws_s3_bucket.logs", "module.network.aws_vpc.main",
        'module.network.aws_subnet.a["a"]', "azurerm_resource_group.rg", "azurerm_storage_account.dev",
    ]
    assert plan.without_tags == ["aws_iam_role_policy_attachment.attach"]  # skipped, never flagged
    assert plan.unchanged == 2  # the delete and the no-op; the data source read is not a managed resource
    assert plan.terraform_version == "1.9.5"
    replaced = next(r for r in plan.resources if r.type == "aws_subnet")
    assert replaced.actions == ["delete", "create"]


def test_aws_default_tags_merge_under_resource_tags():
    resources = {r.address: r for r in read_plan(AWS_AZURE).resources}
    # tags_all unknown until apply: the provider's constant default_tags are merged in
    assert resources["aws_instance.web"].tags == {
        "environment": "prod", "owner": "platform", "team": "search", "project": "web", "cost_center": "CC-1001"}
    # a resource tag wins over a default tag of the same key
    assert resources['module.network.aws_subnet.a["a"]'].tags["environment"] == "dev"
    # tags_all known in the plan: the provider's own merge is used
    assert resources["aws_s3_bucket.logs"].tags == {"team": "search", "environment": "prod", "owner": "platform"}
    # Azure has no default tags: exactly what the resource says
    assert resources["azurerm_storage_account.dev"].tags == {
        "team": "data", "project": "lake", "environment": "dev", "owner": "ana"}


def test_module_address_source_and_file_line():
    vpc = next(r for r in read_plan(AWS_AZURE).resources if r.type == "aws_vpc")
    assert vpc.module == "module.network"
    assert vpc.module_source == "./modules/network"
    assert (vpc.file, vpc.line) == ("modules/network/main.tf", 12)
    assert vpc.tags["owner"] == "platform"  # the module inherits the root provider's default_tags


def test_google_labels_with_default_labels_and_unknown_values():
    resources = {r.address: r for r in read_plan(GOOGLE).resources}
    assert set(resources) == {"google_compute_instance.vm", "google_storage_bucket.b", "google_compute_disk.d"}
    assert resources["google_compute_instance.vm"].attribute == "labels"
    assert resources["google_compute_instance.vm"].tags["owner"] == "platform"  # provider default_labels
    assert resources["google_storage_bucket.b"].tags == {"owner": "platform", "goog-terraform-provisioned": "true"}
    assert resources["google_compute_disk.d"].unknown_keys == {"team"}


def test_plans_against_policy_give_exactly_the_expected_violations(finops, policy):
    result = finops("tags", "audit", "--no-billing", "--policy", policy, "--plan", AWS_AZURE, "--plan", GOOGLE,
                    "--format", "json")
    assert result.exit_code == 1, result.stderr
    data = json.loads(result.stdout)
    found = {(v["plan"], v["resource"], v["rule"], v["key"], v["value"]) for v in data["violations"]}
    assert found == EXPECTED
    assert all(v["origin"] == "plan" and v["failing"] for v in data["violations"])
    assert data["billing"] is None
    assert [p["checked"] for p in data["plans"]] == [6, 3]
    assert "tag policy FAILED: 10 violations" in result.stderr
    vpc = next(v for v in data["violations"] if v["resource"] == "module.network.aws_vpc.main")
    assert (vpc["module"], vpc["file"], vpc["line"]) == ("module.network", "modules/network/main.tf", 12)


def test_a_compliant_plan_passes(finops, tmp_path):
    plan = {"format_version": "1.2", "resource_changes": [{
        "address": "aws_instance.ok", "mode": "managed", "type": "aws_instance", "name": "ok",
        "provider_name": "registry.terraform.io/hashicorp/aws",
        "change": {"actions": ["create"], "after": {"tags": {
            "team": "a", "project": "b", "environment": "prod", "cost_center": "CC-1", "owner": "c"}},
            "after_unknown": {"tags_all": True}}}]}
    path = tmp_path / "ok.json"
    path.write_text(json.dumps(plan), encoding="utf-8")
    result = finops("tags", "audit", "--no-billing", "--plan", path, "--format", "json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["passed"] is True
    assert "tag policy passed: no violations" in result.stderr


def test_malformed_plan_json_names_file_and_position(finops, tmp_path):
    bad = tmp_path / "broken.json"
    bad.write_text('{"format_version": "1.2",\n  "resource_changes": [\n    {"address": }\n]}', encoding="utf-8")
    result = finops("tags", "audit", "--no-billing", "--plan", bad)
    assert result.exit_code == 2
    assert f"--plan {bad}: malformed plan JSON at line 3 column 17" in result.stderr
    assert "terraform show -json" in result.stderr  # the hint says how to make one
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("content, message", [
    ('{"values": {"root_module": {}}, "format_version": "1.0"}', "this is state JSON"),
    ('[1, 2]', "not Terraform plan JSON"),
])
def test_json_that_is_not_a_plan_is_a_usage_error(tmp_path, content, message):
    path = tmp_path / "x.json"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(ConfigError, match=message):
        read_plan(path)


def test_missing_plan_file_is_a_usage_error(finops, tmp_path):
    result = finops("tags", "audit", "--no-billing", "--plan", tmp_path / "nope.json")
    assert result.exit_code == 2
    assert "nope.json: cannot read the file" in result.stderr


def test_plan_from_stdin_and_warning_severity(finops, policy, monkeypatch):
    import io

    policy.write_text(POLICY + "severity: {environment: warning, cost_center: warning, project: warning}\n",
                      encoding="utf-8")
    monkeypatch.setattr("sys.stdin", io.StringIO(AWS_AZURE.read_text(encoding="utf-8")))
    result = finops("tags", "audit", "--no-billing", "--policy", policy, "--plan", "-", "--fail-on", "error",
                    "--format", "json")
    assert result.exit_code == 0, result.stderr  # only warnings: no error-severity violation
    data = json.loads(result.stdout)
    assert data["plans"][0]["file"] == "(stdin)"
    assert {v["severity"] for v in data["violations"]} == {"warning"}
    assert len(data["violations"]) == 5
    assert finops("tags", "audit", "--no-billing", "--policy", policy, "--plan", AWS_AZURE).exit_code == 1


def test_exemption_by_resource_type_pattern(finops, policy):
    policy.write_text(POLICY + "  - resource_type: 'google_storage_*'\n  - provider: azure\n    keys: [environment]\n",
                      encoding="utf-8")
    result = finops("tags", "audit", "--no-billing", "--policy", policy, "--plan", AWS_AZURE, "--plan", GOOGLE,
                    "--format", "json")
    found = {(v["resource"], v["key"]) for v in json.loads(result.stdout)["violations"]}
    assert not any(resource == "google_storage_bucket.b" for resource, _ in found)
    assert ("azurerm_resource_group.rg", "environment") not in found
    assert ("azurerm_resource_group.rg", "cost_center") in found


def test_aliased_provider_in_nested_module_brings_its_own_default_tags():
    from finops_cli.tags.terraform import parse_plan

    def change(address, module):
        return {"address": address, "module_address": module, "mode": "managed", "type": "aws_sqs_queue",
                "name": "q", "index": 0, "provider_name": "registry.terraform.io/hashicorp/aws",
                "change": {"actions": ["create"], "after": {"tags": None}, "after_unknown": {"tags_all": True}}}

    block = {"resources": [{"address": "aws_sqs_queue.q", "mode": "managed", "type": "aws_sqs_queue", "name": "q",
                            "provider_config_key": "aws.west"}]}
    data = {
        "format_version": "1.2",
        "resource_changes": [change('module.app["a"].module.queue.aws_sqs_queue.q[0]', 'module.app["a"].module.queue')],
        "configuration": {
            "provider_config": {
                "aws": {"name": "aws", "expressions": {
                    "default_tags": [{"tags": {"constant_value": {"owner": "root"}}}]}},
                "aws.west": {"name": "aws", "alias": "west", "expressions": {
                    "default_tags": [{"tags": {"constant_value": {"owner": "west", "team": "queues"}}}]}},
            },
            "root_module": {"module_calls": {"app": {"source": "./app", "module": {"module_calls": {
                "queue": {"source": "../queue", "module": block}}}}}},
        },
    }
    resource = parse_plan(data, "nested.json").resources[0]
    assert resource.tags == {"owner": "west", "team": "queues"}
    assert resource.module_source == "../queue"
