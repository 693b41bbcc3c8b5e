"""Read a Terraform plan (``terraform show -json plan.out``) into the resources a tag audit checks.

Only managed resources that the plan creates or updates (a replace is both) are checked; deletes,
no-ops and reads are not. A resource supports tags when its provider is AWS or Azure and its
planned values have a ``tags`` attribute, or Google and they have ``labels``: attributes a type
does not have are absent from the plan JSON, attributes left unset are ``null``. A type without
tags is skipped, never flagged.

AWS ``default_tags`` (and Google ``default_labels``) apply to every resource of the provider. The
provider's own merge (``tags_all`` / ``terraform_labels``) is used where the plan knows it; else
the constant ``default_tags`` from ``configuration.provider_config`` are merged under the
resource's own tags. Terraform's plan JSON carries no file or line for a resource; where a
configuration block carries a ``range`` (``{"filename", "start": {"line"}}``) it is used.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from finops_cli.errors import ConfigError

PLAN_HINT = "produce it with: terraform plan -out plan.out && terraform show -json plan.out > plan.json"

# provider type (last part of the registry address) -> (finops provider, attribute, provider's merged attribute,
# provider-level default block)
TAGGING = {
    "aws": ("aws", "tags", "tags_all", "default_tags"),
    "azurerm": ("azure", "tags", None, None),
    "google": ("gcp", "labels", "terraform_labels", "default_labels"),
    "google-beta": ("gcp", "labels", "terraform_labels", "default_labels"),
}
CHECKED_ACTIONS = {"create", "update"}


@dataclass
class PlanResource:
    plan: str
    address: str
    type: str
    provider: str  # aws | azure | gcp
    actions: list[str]
    attribute: str  # tags | labels
    tags: dict[str, str]
    unknown_keys: set[str] = field(default_factory=set)  # values known only after apply
    all_unknown: bool = False  # the whole map is known only after apply
    module: str | None = None
    module_source: str | None = None
    file: str | None = None
    line: int | None = None


@dataclass
class Plan:
    path: str
    terraform_version: str | None
    resources: list[PlanResource]  # the taggable resources that are created or updated
    without_tags: list[str] = field(default_factory=list)  # addresses of changing resources whose type has no tags
    unchanged: int = 0  # managed resources deleted, left alone or only read


def read_plan(path: str | Path) -> Plan:
    """Read plan JSON from ``path`` (``-``: standard input, as in ``terraform show -json plan.out | finops ...``)."""
    name = str(path)
    try:
        if name == "-":
            import sys

            text, name = sys.stdin.read(), "(stdin)"
        else:
            text = Path(path).read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise ConfigError(f"--plan {name}: cannot read the file: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"--plan {name}: not UTF-8 text (byte {exc.start}); expected plan JSON",
                          hint=PLAN_HINT) from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"--plan {name}: malformed plan JSON at line {exc.lineno} column {exc.colno}: {exc.msg}",
                          hint=PLAN_HINT) from None
    return parse_plan(data, name)


def parse_plan(data: Any, name: str) -> Plan:
    if not isinstance(data, dict) or "format_version" not in data:
        raise ConfigError(f"--plan {name}: not Terraform plan JSON (no format_version)", hint=PLAN_HINT)
    if "resource_changes" not in data and "planned_values" not in data:
        what = "state JSON (terraform show -json without a plan file)" if "values" in data else "not a plan"
        raise ConfigError(f"--plan {name}: this is {what}; no resource_changes to check", hint=PLAN_HINT)
    config = _Configuration(data.get("configuration") or {})
    plan = Plan(name, data.get("terraform_version"), [])
    for index, change in enumerate(data.get("resource_changes") or []):
        if not isinstance(change, dict) or not isinstance(change.get("change"), dict):
            raise ConfigError(f"--plan {name}: resource_changes[{index}] has no change object", hint=PLAN_HINT)
        if change.get("mode", "managed") != "managed":
            continue
        actions = list(change["change"].get("actions") or [])
        if not CHECKED_ACTIONS & set(actions):
            plan.unchanged += 1
            continue
        resource = _resource(change, actions, config, name)
        if resource is None:
            plan.without_tags.append(str(change.get("address")))
        else:
            plan.resources.append(resource)
    return plan


def _resource(change: dict, actions: list[str], config: _Configuration, plan_name: str) -> PlanResource | None:
    provider_type = str(change.get("provider_name") or "").rsplit("/", 1)[-1]
    tagging = TAGGING.get(provider_type)
    if tagging is None:
        return None
    provider, attribute, merged_attribute, defaults_block = tagging
    after = change["change"].get("after") or {}
    unknown = change["change"].get("after_unknown") or {}
    if not isinstance(after, dict) or (attribute not in after and attribute not in unknown):
        return None
    module = change.get("module_address")
    block = config.resource(module, change.get("type", ""), change.get("name", ""))
    own = after.get(attribute) if isinstance(after.get(attribute), dict) else {}
    merged = after.get(merged_attribute) if merged_attribute else None
    if isinstance(merged, dict) and merged_attribute not in _true_keys(unknown):
        tags = {**merged, **own}
    else:
        defaults = config.provider_defaults(block, module, provider_type, defaults_block) if defaults_block else {}
        tags = {**defaults, **own}
    attribute_unknown = unknown.get(attribute)
    resource = PlanResource(
        plan=plan_name, address=str(change.get("address")), type=str(change.get("type")), provider=provider,
        actions=actions, attribute=attribute, tags={str(k): _text(v) for k, v in tags.items() if v is not None},
        unknown_keys=set(attribute_unknown) if isinstance(attribute_unknown, dict) else set(),
        all_unknown=attribute_unknown is True and not own, module=module,
        module_source=config.module_source(module),
    )
    position = (block or {}).get("range") or {}
    if isinstance(position, dict) and position.get("filename"):
        resource.file = str(position["filename"])
        start = position.get("start") or {}
        resource.line = start.get("line") if isinstance(start.get("line"), int) else None
    return resource


def _true_keys(unknown: dict) -> set[str]:
    return {k for k, v in unknown.items() if v is True}


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return value if isinstance(value, str) else json.dumps(value)


_INDEX = re.compile(r"\[[^\]]*\]")


class _Configuration:
    """The ``configuration`` part of a plan: module calls, resource blocks and provider blocks."""

    def __init__(self, data: dict):
        self.data = data
        self.providers: dict = data.get("provider_config") or {}

    def _module(self, module_address: str | None) -> dict | None:
        module = self.data.get("root_module") or {}
        if not module_address:
            return module
        for call in _call_names(module_address):
            call_data = (module.get("module_calls") or {}).get(call)
            if not isinstance(call_data, dict):
                return None
            module = call_data.get("module") or {}
        return module

    def resource(self, module_address: str | None, type_: str, name: str) -> dict | None:
        module = self._module(module_address)
        for block in (module or {}).get("resources") or []:
            if block.get("type") == type_ and block.get("name") == name and block.get("mode", "managed") == "managed":
                return block
        return None

    def module_source(self, module_address: str | None) -> str | None:
        if not module_address:
            return None
        module = self.data.get("root_module") or {}
        source = None
        for call in _call_names(module_address):
            call_data = (module.get("module_calls") or {}).get(call)
            if not isinstance(call_data, dict):
                return source
            source = call_data.get("source")
            module = call_data.get("module") or {}
        return source

    def provider_defaults(self, block: dict | None, module_address: str | None, provider_type: str,
                          defaults_block: str) -> dict[str, str]:
        key = (block or {}).get("provider_config_key")
        candidates = []
        if key:
            candidates += [key, key.split(":", 1)[-1]]
            if module_address:
                candidates.append(f"{_INDEX.sub('', module_address)}:{key}")
        config = next((self.providers[c] for c in candidates if c in self.providers), None)
        if config is None:  # the un-aliased provider block of the root module
            config = next((p for k, p in self.providers.items()
                           if p.get("name") == provider_type and not p.get("alias") and not p.get("module_address")),
                          None)
        blocks = ((config or {}).get("expressions") or {}).get(defaults_block)
        if isinstance(blocks, list):
            blocks = blocks[0] if blocks else {}
        if not isinstance(blocks, dict):
            return {}
        if defaults_block == "default_tags":
            blocks = blocks.get("tags") or {}
        value = blocks.get("constant_value") if isinstance(blocks, dict) else None
        return {str(k): _text(v) for k, v in value.items() if v is not None} if isinstance(value, dict) else {}


def _call_names(module_address: str) -> list[str]:
    """``module.net[0].module.subnets["a"]`` -> ["net", "subnets"]."""
    parts = _INDEX.sub("", module_address).split(".")
    return [parts[i + 1] for i in range(0, len(parts) - 1, 2) if parts[i] == "module"]
