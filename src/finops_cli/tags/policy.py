"""The tag policy: which keys every resource must carry, which values are allowed, who is exempt.

It lives under ``tags:`` in the finops config, or in a file of its own (``--policy FILE``, the same
keys at the top level). Key names are allocation dimensions: ``team`` is read through the tag keys
``allocation.aliases`` lists for it, case-insensitively when ``allocation.case_insensitive`` is
set, exactly as ``report --by team`` reads it. This module only imports pydantic, because the
config model embeds it and ``finops --help`` must stay fast.
"""

from __future__ import annotations

import re
from fnmatch import fnmatchcase
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

if TYPE_CHECKING:
    from finops_cli.config import Config
    from finops_cli.config.model import AllocationConfig

_KEY = re.compile(r"^[a-z][a-z0-9_]*$")

Severity = Literal["error", "warning"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class AllowedRule(_Strict):
    """Allowed values of one key: a list (``[prod, dev]``) or ``{regex: PATTERN}`` (matched in full)."""

    values: list[str] | None = None
    regex: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _shape(cls, data: Any) -> Any:
        if isinstance(data, list):
            return {"values": data}
        if not isinstance(data, dict):
            raise ValueError("expected a list of allowed values or {regex: PATTERN}")
        return data

    @field_validator("regex")
    @classmethod
    def _compiles(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as exc:
                raise ValueError(f"invalid regular expression {value!r}: {exc}") from None
        return value

    @model_validator(mode="after")
    def _one(self) -> AllowedRule:
        if (self.values is None) == (self.regex is None):
            raise ValueError("give either a list of values or regex, not both")
        return self


class Exemption(_Strict):
    """Resources that match every condition given here need not carry ``keys`` (default: any key).

    Conditions are shell-style patterns (``aws_iam_*``), matched without regard to case; a list
    means any of its patterns. ``tags`` compares allocation dimensions: ``{environment: dev}``.
    """

    provider: str | list[str] | None = None
    service: str | list[str] | None = None
    resource_type: str | list[str] | None = None
    tags: dict[str, str | list[str]] | None = None
    keys: list[str] | None = None
    reason: str | None = None

    @model_validator(mode="after")
    def _has_condition(self) -> Exemption:
        if not any((self.provider, self.service, self.resource_type, self.tags)):
            raise ValueError("an exemption needs at least one of provider, service, resource_type or tags")
        return self


class Thresholds(_Strict):
    max_untagged_share: float | None = Field(default=None, ge=0, le=1)
    max_violations: int = Field(default=0, ge=0)
    min_spend: float = Field(default=0, ge=0)

    @field_validator("max_untagged_share", mode="before")
    @classmethod
    def _percent(cls, value: Any) -> Any:
        if isinstance(value, str) and value.strip().endswith("%"):
            try:
                return float(value.strip()[:-1]) / 100
            except ValueError:
                raise ValueError(f"{value!r} is not a percentage (e.g. 5%)") from None
        return value


class TagPolicy(_Strict):
    """The ``tags:`` section (or a ``--policy`` file)."""

    required: list[str] | None = None  # default: allocation.required
    allowed: dict[str, AllowedRule] = Field(default_factory=dict)
    severity: dict[str, Severity] = Field(default_factory=dict)
    exemptions: list[Exemption] = Field(default_factory=list)
    thresholds: Thresholds = Field(default_factory=Thresholds)
    charges: list[str] = Field(default_factory=lambda: ["Usage"])
    aliases: dict[str, list[str]] | None = None  # default: allocation.aliases
    case_insensitive: bool | None = None  # default: allocation.case_insensitive

    @field_validator("required")
    @classmethod
    def _required(cls, value: list[str] | None) -> list[str] | None:
        if value is not None:
            for key in value:
                if not _KEY.match(key):
                    raise ValueError(f"required key {key!r} must be a lower_snake_case dimension name")
            if len(set(value)) != len(value):
                raise ValueError("a required key is listed twice")
        return value

    def allocation(self, base: AllocationConfig) -> AllocationConfig:
        """The allocation rules this policy reads tags with: the config's, with this policy's overrides."""
        update: dict[str, Any] = {}
        if self.required is not None:
            update["required"] = list(self.required)
        if self.aliases is not None:
            update["aliases"] = {**base.aliases, **self.aliases}
        if self.case_insensitive is not None:
            update["case_insensitive"] = self.case_insensitive
        return base.model_validate({**base.model_dump(), **update}) if update else base

    def required_keys(self, base: AllocationConfig) -> list[str]:
        return list(self.required if self.required is not None else base.required)

    def unknown_keys(self, base: AllocationConfig) -> list[tuple[tuple, str]]:
        """(key path, key) of every key named in allowed/severity/exemptions that is not required."""
        required = set(self.required_keys(base))
        out = [(("allowed", k), k) for k in self.allowed if k not in required]
        out += [(("severity", k), k) for k in self.severity if k not in required]
        for i, exemption in enumerate(self.exemptions):
            out += [(("exemptions", i, "keys"), k) for k in exemption.keys or [] if k not in required]
        return out


class RuleSet:
    """A policy resolved against the allocation rules: the checks both audits run."""

    def __init__(self, policy: TagPolicy, allocation: AllocationConfig, origin: str | None = None,
                 origin_line: int | None = None):
        self.policy = policy
        self.allocation = policy.allocation(allocation)
        self.required = policy.required_keys(allocation)
        self.origin = origin  # the file the policy came from, for SARIF and annotations
        self.origin_line = origin_line
        self._patterns = {k: re.compile(v.regex) for k, v in policy.allowed.items() if v.regex is not None}

    @property
    def thresholds(self) -> Thresholds:
        return self.policy.thresholds

    def severity(self, key: str) -> Severity:
        return self.policy.severity.get(key, "error")

    def tag_keys(self, key: str) -> list[str]:
        return self.allocation.dimensions.get(key, [key])

    def lookup(self, tags: dict[str, Any] | None, key: str) -> str | None:
        """The value of dimension ``key`` in ``tags`` (aliases in order, case rules applied); None if absent."""
        if not tags:
            return None
        for name in self.tag_keys(key):
            if self.allocation.case_insensitive:
                value = next((v for k, v in tags.items() if k.lower() == name.lower() and v not in (None, "")), None)
            else:
                value = tags.get(name)
            if value not in (None, ""):
                return value if isinstance(value, str) else str(value)
        return None

    def allowed(self, key: str, value: str) -> bool:
        rule = self.policy.allowed.get(key)
        if rule is None:
            return True
        if key in self._patterns:
            return self._patterns[key].fullmatch(value) is not None
        return value in (rule.values or [])

    def allowed_text(self, key: str) -> str:
        rule = self.policy.allowed.get(key)
        if rule is not None and rule.regex is not None:
            return f"matching /{rule.regex}/"
        return "one of " + ", ".join(rule.values or []) if rule else "any value"

    def exempt(self, key: str, *, provider: str | None, service: str | None, resource_type: str | None,
               values: dict[str, str | None]) -> Exemption | None:
        """The first exemption that frees this resource from ``key``, if any."""
        for exemption in self.policy.exemptions:
            if exemption.keys is not None and key not in exemption.keys:
                continue
            if exemption.provider and not _matches(exemption.provider, canonical_provider(provider),
                                                   canonical=True):
                continue
            if exemption.service and not _matches(exemption.service, service):
                continue
            if exemption.resource_type and not _matches(exemption.resource_type, resource_type):
                continue
            if exemption.tags and not all(_matches(want, values.get(name)) for name, want in exemption.tags.items()):
                continue
            return exemption
        return None

    def condition_keys(self) -> list[str]:
        """Dimensions that exemptions look at, besides the required ones."""
        extra: list[str] = []
        for exemption in self.policy.exemptions:
            for name in exemption.tags or {}:
                if name not in self.required and name not in extra:
                    extra.append(name)
        return extra


PROVIDERS = {
    "aws": ("aws", "amazon web services", "amazon"),
    "azure": ("azure", "azurerm", "microsoft", "microsoft azure"),
    "gcp": ("gcp", "google", "google cloud", "google-beta", "google cloud platform"),
}


def canonical_provider(name: str | None) -> str | None:
    """``AWS``, ``Amazon Web Services`` and Terraform's ``aws`` are the same provider to an exemption."""
    if name is None:
        return None
    lowered = name.strip().lower()
    for canonical, names in PROVIDERS.items():
        if lowered in names:
            return canonical
    return lowered


def _matches(patterns: str | list[str], value: str | None, canonical: bool = False) -> bool:
    if value is None:
        return False
    for pattern in [patterns] if isinstance(patterns, str) else patterns:
        wanted = (canonical_provider(pattern) or "") if canonical else pattern.lower()
        if fnmatchcase(value.lower(), wanted):
            return True
    return False


def load_rules(config: Config | None, policy_file: str | None) -> RuleSet:
    """The policy from ``--policy FILE``, else the config's ``tags:`` section, else the defaults."""
    from finops_cli.config.model import AllocationConfig

    allocation = config.allocation if config is not None else AllocationConfig()
    if policy_file:
        return _from_file(Path(policy_file).expanduser(), allocation)
    if config is None:
        return RuleSet(TagPolicy(), allocation)
    document = config.document
    _check_keys(config.file.tags, allocation, document, ("tags",))
    origin = str(config.path) if config.path else None
    line = document.line_of(("tags",)) if document and "tags" in (document.data or {}) else None
    return RuleSet(config.file.tags, allocation, origin, line)


def _from_file(path: Path, allocation: AllocationConfig) -> RuleSet:
    from pydantic import ValidationError

    from finops_cli.config import _messages
    from finops_cli.config.yamlfile import load_yaml
    from finops_cli.errors import ConfigError

    document = load_yaml(path)
    data = document.data
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a tag policy must be a mapping of keys (found {type(data).__name__})")
    if set(data) == {"tags"} and isinstance(data["tags"], dict):  # a config-style file with only a tags: section
        data, prefix = data["tags"], ("tags",)
    else:
        prefix = ()
    try:
        policy = TagPolicy.model_validate(data)
    except ValidationError as exc:
        errors = [_with_known_keys(m) for m in _messages(exc, document, prefix)]
        head = errors[0] if len(errors) == 1 else f"{len(errors)} problems in {path}:\n  " + "\n  ".join(errors)
        raise ConfigError(head) from None
    _check_keys(policy, allocation, document, prefix)
    return RuleSet(policy, allocation, str(path), document.line_of(prefix + ("required",)) or 1)


def _with_known_keys(message: str) -> str:
    """The config loader lists the config file's own top-level keys; a policy file has the policy's."""
    if "unknown key" in message and "in the top level" in message:
        return f"{message.split(' (known keys:')[0]} (known keys: {', '.join(TagPolicy.model_fields)})"
    return message


def _check_keys(policy: TagPolicy, allocation: AllocationConfig, document, prefix: tuple) -> None:
    from finops_cli.errors import ConfigError

    unknown = policy.unknown_keys(allocation)
    if not unknown:
        return
    required = ", ".join(policy.required_keys(allocation))
    messages = []
    for key_path, key in unknown:
        where = document.where(prefix + key_path) if document is not None else ".".join(map(str, key_path))
        messages.append(f"{where}: {key!r} is not a required key (required: {required})")
    raise ConfigError(messages[0] if len(messages) == 1 else "\n  ".join([f"{len(messages)} problems:"] + messages))
