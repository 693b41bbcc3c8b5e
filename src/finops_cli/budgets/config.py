"""The YAML keys of ``budgets:`` and ``notifications:`` (see docs/budgets.md).

Each model checks its own keys; ``cross_check`` then checks what needs the whole file
(parents exist and form no cycle, channels exist, scope dimensions resolve, secrets come
from ``${ENV}``), returning ``(key path, message)`` pairs for the loader to place on a line.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

SEVERITIES = ("info", "warning", "critical", "emergency")
Severity = Literal["info", "warning", "critical", "emergency"]
Period = Literal["daily", "weekly", "monthly", "quarterly", "yearly"]
_NAME = r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"
PAGERDUTY_EVENTS_URL = "https://events.pagerduty.com/v2/enqueue"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Threshold(_Strict):
    """One alert level: a share of the budget (``percent``) or an absolute ``amount``."""

    percent: Decimal | None = Field(default=None, ge=0)
    amount: Decimal | None = Field(default=None, ge=0)
    basis: Literal["actual", "forecasted"] = "actual"
    severity: Severity = "warning"
    notify: list[str] | None = None  # channel names; None: the budget's own ``notify`` list

    @model_validator(mode="after")
    def _one_limit(self) -> Threshold:
        if (self.percent is None) == (self.amount is None):
            raise ValueError("give exactly one of 'percent' or 'amount'")
        return self

    @property
    def key(self) -> str:
        """Stable identity for the sent-alert state: survives reordering the list."""
        value = f"{self.percent}%" if self.percent is not None else f"{self.amount}"
        return f"{self.basis}:{value}"

    def limit(self, budget_amount: Decimal) -> Decimal:
        return self.amount if self.amount is not None else budget_amount * self.percent / 100

    def label(self, currency: str) -> str:
        what = f"{_plain(self.percent)}%" if self.percent is not None else f"{_plain(self.amount)} {currency}"
        return f"{what} {self.basis}"


def _plain(value: Decimal) -> str:
    text = format(value, "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


# The common ladder: warn at 70 %, escalate at 90 %, page at 100 % of the budget.
DEFAULT_LADDER = (
    Threshold(percent=Decimal(70), severity="warning"),
    Threshold(percent=Decimal(90), severity="critical"),
    Threshold(percent=Decimal(100), severity="emergency"),
)


class BudgetConfig(_Strict):
    name: str = Field(pattern=_NAME)
    description: str | None = None
    # report dimension -> value or list of values; omitted on a parent: the union of its children
    scope: dict[str, str | list[str]] | None = None
    amount: Decimal = Field(ge=0)
    currency: str = Field(pattern=r"^[A-Z]{3}$")
    period: Period = "monthly"
    start: date | None = None  # first day of the first period; also anchors weekly/quarterly/yearly periods
    cost: Literal["effective", "billed", "list", "contracted"] = "effective"
    parent: str | None = None
    notify: list[str] = Field(default_factory=list)  # default channels of every threshold
    thresholds: list[Threshold] = Field(default_factory=lambda: list(DEFAULT_LADDER))

    @field_validator("currency", mode="before")
    @classmethod
    def _upper(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value

    @field_validator("scope")
    @classmethod
    def _scope_values(cls, value: dict | None) -> dict | None:
        for dim, allowed in (value or {}).items():
            if isinstance(allowed, list) and not allowed:
                raise ValueError(f"scope {dim!r} lists no values")
        return value

    @model_validator(mode="after")
    def _start_aligned(self) -> BudgetConfig:
        if self.start and self.period in ("monthly", "quarterly", "yearly") and self.start.day != 1:
            raise ValueError(f"start of a {self.period} budget must be the first day of a month "
                             f"(got {self.start.isoformat()})")
        return self

    def channels_of(self, threshold: Threshold) -> list[str]:
        return list(threshold.notify if threshold.notify is not None else self.notify)

    def filter_specs(self) -> list[str]:
        """The scope as ``report --filter`` specs, so a scope means what a filter means."""
        out = []
        for dim, allowed in (self.scope or {}).items():
            values = allowed if isinstance(allowed, list) else [allowed]
            out.append(f"{dim}={','.join(str(v) for v in values)}")
        return out


class SlackChannel(_Strict):
    type: Literal["slack"]
    webhook_url: str
    timeout: float = Field(default=10, gt=0)


class PagerDutyChannel(_Strict):
    type: Literal["pagerduty"]
    routing_key: str
    url: str = PAGERDUTY_EVENTS_URL
    source: str = "finops"  # PagerDuty's payload.source: where the alert comes from
    timeout: float = Field(default=10, gt=0)


class WebhookChannel(_Strict):
    type: Literal["webhook"]
    url: str
    headers: dict[str, str] = Field(default_factory=dict)
    timeout: float = Field(default=10, gt=0)


class EmailChannel(_Strict):
    type: Literal["email"]
    host: str
    port: int = Field(default=587, ge=1, le=65535)
    starttls: bool = True
    ssl: bool = False  # implicit TLS (port 465); starttls is ignored then
    username: str | None = None
    password: str | None = None
    sender: str = Field(alias="from")
    to: list[str] = Field(min_length=1)
    ca_file: str | None = None  # CA bundle for a relay with a private certificate
    timeout: float = Field(default=10, gt=0)

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True, serialize_by_alias=True)

    @field_validator("to", mode="before")
    @classmethod
    def _listify(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value


ChannelConfig = Annotated[SlackChannel | PagerDutyChannel | WebhookChannel | EmailChannel,
                          Field(discriminator="type")]

# Keys whose value is a credential: they must be written as ${ENV} references.
SECRET_KEYS = {"slack": ("webhook_url",), "pagerduty": ("routing_key",), "email": ("password",)}
CHANNEL_TYPES = ("slack", "pagerduty", "webhook", "email")


def cross_check(budgets: list[BudgetConfig], channels: dict[str, Any], allocation,
                from_env: set[tuple]) -> list[tuple[tuple, str]]:
    """Whole-file checks; each problem is (key path, message)."""
    from finops_cli.analyses.dimensions import resolve
    from finops_cli.errors import FinopsError

    problems: list[tuple[tuple, str]] = []
    by_name: dict[str, int] = {}
    for index, budget in enumerate(budgets):
        if budget.name in by_name:
            problems.append((("budgets", index, "name"),
                             f"duplicate budget name {budget.name!r} (also budgets[{by_name[budget.name]}])"))
        by_name.setdefault(budget.name, index)
    for index, budget in enumerate(budgets):
        where = ("budgets", index)
        for dim in budget.scope or {}:
            try:
                resolve(dim, allocation)
            except FinopsError as exc:
                problems.append((where + ("scope", dim), exc.message))
        if budget.parent is not None:
            if budget.parent not in by_name:
                known = ", ".join(by_name) or "none"
                problems.append((where + ("parent",), f"unknown parent budget {budget.parent!r} (budgets: {known})"))
            elif budget.parent == budget.name:
                problems.append((where + ("parent",), "a budget cannot be its own parent"))
        for name in budget.notify:
            if name not in channels:
                problems.append((where + ("notify",), _unknown_channel(name, channels)))
        for t_index, threshold in enumerate(budget.thresholds):
            for name in threshold.notify or []:
                if name not in channels:
                    problems.append((where + ("thresholds", t_index, "notify"), _unknown_channel(name, channels)))
    problems.extend(_cycles(budgets, by_name))
    for name, channel in channels.items():
        for key in SECRET_KEYS.get(channel.type, ()):
            if getattr(channel, key) is not None and ("notifications", name, key) not in from_env:
                example = f"${{{name.upper().replace('-', '_')}_{key.upper()}}}"
                problems.append((("notifications", name, key),
                                 f"{key} is a secret: write it as an environment reference such as {example}, "
                                 f"not in the file"))
    return problems


def _unknown_channel(name: str, channels: dict) -> str:
    known = ", ".join(channels) or "none: add them under notifications:"
    return f"unknown notification channel {name!r} (channels: {known})"


def _cycles(budgets: list[BudgetConfig], by_name: dict[str, int]) -> list[tuple[tuple, str]]:
    parent = {b.name: b.parent for b in budgets if b.parent in by_name and b.parent != b.name}
    reported: set[str] = set()
    problems = []
    for budget in budgets:
        chain, node = [budget.name], parent.get(budget.name)
        while node is not None and node not in chain:
            chain.append(node)
            node = parent.get(node)
        if node is not None and node == budget.name and budget.name not in reported:
            reported.update(chain)
            loop = " -> ".join(chain + [budget.name])
            problems.append((("budgets", by_name[budget.name], "parent"), f"cycle in the budget hierarchy: {loop}"))
    return problems
