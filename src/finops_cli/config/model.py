"""The configuration schema (top level). Sources validate their own keys (sources/*.py)."""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from finops_cli.budgets.config import BudgetConfig, ChannelConfig
from finops_cli.tags.policy import TagPolicy

DEFAULT_REQUIRED = ("team", "project", "environment", "cost_center", "owner")
_DIMENSION_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class AllocationConfig(Strict):
    """How allocation dimensions (team, project ...) are read from tags."""

    required: list[str] = Field(default_factory=lambda: list(DEFAULT_REQUIRED))
    aliases: dict[str, list[str]] = Field(default_factory=dict)
    case_insensitive: bool = False

    @field_validator("aliases")
    @classmethod
    def _names(cls, value: dict[str, list[str]]) -> dict[str, list[str]]:
        for name, keys in value.items():
            if not _DIMENSION_NAME.match(name):
                raise ValueError(f"dimension name {name!r} must be lower_snake_case")
            if not keys:
                raise ValueError(f"aliases of {name!r} must list at least one tag key")
        return value

    @property
    def dimensions(self) -> dict[str, list[str]]:
        """Every allocation dimension and the tag keys it is read from, in priority order."""
        out = {name: [name] for name in DEFAULT_REQUIRED}
        for name in self.required:
            out.setdefault(name, [name])
        out.update({name: list(keys) for name, keys in self.aliases.items()})
        return out


class ReportConfig(Strict):
    cost: Literal["effective", "billed", "list", "contracted"] = "effective"
    last: str = "30d"  # default window of `report` when none is given
    top: int | None = Field(default=None, ge=1)
    refresh: bool = True  # re-sync stale sources before reporting
    untagged_top: int = Field(default=5, ge=0)

    @field_validator("last")
    @classmethod
    def _last(cls, value: str) -> str:
        from finops_cli.periods import last_window

        try:
            last_window(value)
        except Exception as exc:
            raise ValueError(str(exc).split(": ", 1)[-1]) from None
        return value


class ConfigFile(Strict):
    """The whole YAML file. ``sources`` entries are checked against their own type's schema."""

    version: Literal[1] = 1
    store: str | None = None
    allocation: AllocationConfig = Field(default_factory=AllocationConfig)
    report: ReportConfig = Field(default_factory=ReportConfig)
    tags: TagPolicy = Field(default_factory=TagPolicy)
    sources: list[dict[str, Any]] = Field(default_factory=list)
    budgets: list[BudgetConfig] = Field(default_factory=list)
    notifications: dict[str, ChannelConfig] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _sources_are_mappings(cls, data: Any) -> Any:
        if isinstance(data, dict):  # an empty `sources:` / `budgets:` key means none
            empty = {key: ([] if key != "notifications" else {}) for key in ("sources", "budgets", "notifications")
                     if key in data and data[key] is None}
            data = {**data, **empty}
        return data
