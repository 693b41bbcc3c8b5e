"""Tag policy audit: billing data in the store and Terraform plans, checked against one policy.

Billing: for each required key, the spend (and share of spend) whose tag is missing or has a
disallowed value, per currency, and per provider / account / service; the resources that cost the
most while breaking the policy, with their current tags. Rows without a resource id (aggregated
charges) cannot be tagged by anyone: their spend is counted and shown as ``unattributed``.

Judgement: every violation has an origin (billing or plan) and a severity (error or warning);
``--fail-on`` picks which ones fail the check, and the check fails when more of them than
``thresholds.max_violations`` remain. With ``thresholds.max_untagged_share`` set, billing is
judged by share instead: one violation per key whose non-compliant share exceeds it, and the
offending resources are listed but not counted.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from finops_cli.analyses.dimensions import cost_column, tag_lookup
from finops_cli.analyses.report import allocation_types, share, window_clause
from finops_cli.errors import UsageError
from finops_cli.periods import Window
from finops_cli.tags.policy import RuleSet
from finops_cli.tags.terraform import Plan, PlanResource

MISSING, DISALLOWED, UNTAGGED_SHARE = "missing-tag", "disallowed-value", "untagged-share"
RULES = {
    MISSING: "A required tag is missing",
    DISALLOWED: "A required tag has a value the policy does not allow",
    UNTAGGED_SHARE: "The share of spend missing a required tag exceeds the policy threshold",
}


@dataclass
class Violation:
    origin: str  # billing | plan
    rule: str
    key: str
    severity: str  # error | warning
    message: str
    resource: str | None = None  # resource id (billing) or address (plan); None: unattributed spend
    value: str | None = None  # the disallowed value
    counted: bool = True  # False: listed only, billing is judged by share
    provider: str | None = None
    account: str | None = None
    service: str | None = None
    resource_type: str | None = None
    currency: str | None = None
    cost: Decimal | None = None
    share: float | None = None
    plan: str | None = None
    module: str | None = None
    file: str | None = None
    line: int | None = None


@dataclass
class KeySummary:
    key: str
    currency: str | None
    total: Decimal
    missing: Decimal = Decimal(0)
    disallowed: Decimal = Decimal(0)
    exempt: Decimal = Decimal(0)
    unattributed: Decimal = Decimal(0)  # part of missing + disallowed on rows without a resource id

    @property
    def noncompliant(self) -> Decimal:
        return self.missing + self.disallowed

    @property
    def share(self) -> float | None:
        return share(self.noncompliant, self.total)


@dataclass
class GroupRow:
    provider: str | None
    account: str | None
    service: str | None
    currency: str | None
    cost: Decimal = Decimal(0)
    noncompliant: dict[str, Decimal] = field(default_factory=dict)


@dataclass
class Offender:
    resource: str | None
    provider: str | None
    account: str | None
    service: str | None
    resource_type: str | None
    currency: str | None
    cost: Decimal = Decimal(0)  # spend on rows that break the policy
    missing: list[str] = field(default_factory=list)
    disallowed: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] | None = None


@dataclass
class BillingAudit:
    window: Window
    cost: str
    charges: list[str]
    row_count: int
    totals: dict[str | None, Decimal]
    keys: list[KeySummary]
    groups: list[GroupRow]
    offenders: list[Offender]  # every non-compliant resource that cost something, most expensive first
    unattributed: dict[str | None, Decimal]  # spend without a resource id, per currency


@dataclass
class PlanCheck:
    resource: PlanResource
    key: str
    status: str  # ok | missing | disallowed | exempt | unknown
    value: str | None = None


@dataclass
class PlanAudit:
    plans: list[Plan]
    checks: list[PlanCheck]


@dataclass(frozen=True)
class FailOn:
    origins: frozenset[str]  # billing, plan
    severities: frozenset[str]  # error, warning

    def selects(self, violation: Violation) -> bool:
        return violation.counted and violation.origin in self.origins and violation.severity in self.severities

    def text(self) -> str:
        if not self.origins:
            return "none"
        scope = ["any"] if self.origins == {"billing", "plan"} else sorted(self.origins)
        return ",".join(scope + (["error"] if self.severities == {"error"} else []))


def parse_fail_on(values: list[str] | None) -> FailOn:
    """``any`` (default), ``billing``, ``plan``, ``error`` (errors only), ``warning``, ``none``; comma-joined."""
    words = [w.strip().lower() for v in values or ["any"] for w in v.split(",") if w.strip()]
    origins: set[str] = set()
    severities = {"error", "warning"}
    for word in words:
        if word == "none":
            return FailOn(frozenset(), frozenset())
        if word == "any":
            origins |= {"billing", "plan"}
        elif word in ("billing", "plan"):
            origins.add(word)
        elif word == "error":
            severities = {"error"}
        elif word == "warning":
            severities = {"error", "warning"}
        else:
            raise UsageError(f"--fail-on {word!r}: expected any, billing, plan, error, warning or none "
                             "(comma-separated, e.g. plan,error)")
    return FailOn(frozenset(origins or {"billing", "plan"}), frozenset(severities))


@dataclass
class AuditResult:
    rules: RuleSet
    fail_on: FailOn
    billing: BillingAudit | None
    plan: PlanAudit | None
    violations: list[Violation]

    @property
    def failing(self) -> list[Violation]:
        return [v for v in self.violations if self.fail_on.selects(v)]

    @property
    def failed(self) -> bool:
        return bool(self.fail_on.origins) and len(self.failing) > self.rules.thresholds.max_violations


def run_audit(rules: RuleSet, fail_on: FailOn, billing: BillingAudit | None, plans: list[Plan]) -> AuditResult:
    violations: list[Violation] = []
    if billing is not None:
        violations += billing_violations(rules, billing)
    plan_audit = None
    if plans:
        plan_audit = audit_plans(rules, plans)
        violations += plan_violations(rules, plan_audit)
    return AuditResult(rules, fail_on, billing, plan_audit, violations)


# -- billing ---------------------------------------------------------------------------------

def _dimension_sql(rules: RuleSet, key: str) -> str:
    lookups = [tag_lookup(k, rules.allocation.case_insensitive) for k in rules.tag_keys(key)]
    return lookups[0] if len(lookups) == 1 else f"COALESCE({', '.join(lookups)})"


def audit_billing(con, rules: RuleSet, window: Window, cost: str = "effective", top: int = 10) -> BillingAudit:
    column = cost_column(cost)
    keys = rules.required + rules.condition_keys()
    # Kubernetes allocation rows re-divide cloud spend: counting them would double the shares (as in `report`).
    where, params = window_clause(window, [], "exclude", allocation_types(con))
    charges = rules.policy.charges
    if charges:
        where += f" AND ChargeCategory IN ({', '.join('?' for _ in charges)})"
        params += list(charges)
    values = ", ".join(f"{_dimension_sql(rules, k)} AS k{i}" for i, k in enumerate(keys))
    raw = con.execute(
        f"""SELECT COALESCE(ProviderName, ServiceProviderName), COALESCE(SubAccountName, SubAccountId,
                   BillingAccountName, BillingAccountId), ServiceName, COALESCE(ResourceId, ResourceName),
                   ResourceType, BillingCurrency, SUM({column}), count(*) {', ' + values if values else ''}
            FROM costs WHERE {where} GROUP BY ALL""",
        params,
    ).fetchall()
    totals: dict[str | None, Decimal] = {}
    summaries: dict[tuple[str, str | None], KeySummary] = {}
    groups: dict[tuple, GroupRow] = {}
    offenders: dict[tuple, Offender] = {}
    unattributed: dict[str | None, Decimal] = {}
    row_count = 0
    for rec in raw:
        provider, account, service, resource, resource_type, currency, amount, n = rec[:8]
        amount = amount or Decimal(0)
        found = dict(zip(keys, rec[8:]))
        row_count += n
        totals[currency] = totals.get(currency, Decimal(0)) + amount
        if resource is None:
            unattributed[currency] = unattributed.get(currency, Decimal(0)) + amount
        group = groups.setdefault((provider, account, service, currency),
                                  GroupRow(provider, account, service, currency))
        group.cost += amount
        offender = None
        for key in rules.required:
            summary = summaries.setdefault((key, currency), KeySummary(key, currency, Decimal(0)))
            summary.total += amount
            status = _status(rules, key, found, provider, service, resource_type)
            if status == "exempt":
                summary.exempt += amount
            if status not in ("missing", "disallowed"):
                continue
            if status == "missing":
                summary.missing += amount
            else:
                summary.disallowed += amount
            if resource is None:
                summary.unattributed += amount
            group.noncompliant[key] = group.noncompliant.get(key, Decimal(0)) + amount
            if offender is None:
                ident = (resource, currency) if resource is not None else (None, provider, account, service, currency)
                offender = offenders.setdefault(ident, Offender(resource, provider, account, service, resource_type,
                                                                currency))
                offender.cost += amount
            if status == "missing" and key not in offender.missing:
                offender.missing.append(key)
            elif status == "disallowed":
                offender.disallowed[key] = found[key]
    order = sorted(totals, key=lambda c: (-abs(totals[c]), c or ""))
    ranked = sorted((o for o in offenders.values() if o.cost != 0), key=lambda o: (-o.cost, o.resource or "", o.service or ""))
    _current_tags(con, ranked[:top], where, params)
    return BillingAudit(
        window=window, cost=cost, charges=list(charges), row_count=row_count,
        totals={c: totals[c] for c in order},
        keys=sorted(summaries.values(), key=lambda s: (order.index(s.currency), rules.required.index(s.key))),
        groups=sorted((g for g in groups.values() if any(g.noncompliant.values())),
                      key=lambda g: (-max(g.noncompliant.values()), g.provider or "", g.service or "")),
        offenders=ranked, unattributed=unattributed,
    )


def _status(rules: RuleSet, key: str, found: dict[str, Any], provider, service, resource_type) -> str:
    value = found.get(key)
    if value is not None and rules.allowed(key, value):
        return "ok"
    if rules.exempt(key, provider=provider, service=service, resource_type=resource_type, values=found):
        return "exempt"
    return "missing" if value is None else "disallowed"


def _current_tags(con, offenders: list[Offender], where: str, params: list) -> None:
    """The tags on each offender's latest row: what someone fixing it sees today."""
    ids = [o.resource for o in offenders if o.resource is not None]
    if not ids:
        return
    rows = con.execute(
        f"""SELECT COALESCE(ResourceId, ResourceName) AS r, arg_max(Tags, ChargePeriodStart)
            FROM costs WHERE {where} AND COALESCE(ResourceId, ResourceName) IN ({', '.join('?' for _ in ids)})
            GROUP BY r""",
        params + ids,
    ).fetchall()
    latest = {r: _as_dict(tags) for r, tags in rows}
    for offender in offenders:
        if offender.resource is not None:
            offender.tags = latest.get(offender.resource) or {}


def _as_dict(tags: Any) -> dict[str, str]:
    if not tags:
        return {}
    if isinstance(tags, dict) and set(tags) == {"key", "value"} and isinstance(tags["key"], list):
        return dict(zip(tags["key"], tags["value"]))
    return dict(tags)


def billing_violations(rules: RuleSet, billing: BillingAudit) -> list[Violation]:
    limit = rules.thresholds.max_untagged_share
    out: list[Violation] = []
    if limit is not None:
        for summary in billing.keys:
            if summary.share is not None and summary.share > limit and summary.noncompliant > 0:
                out.append(Violation(
                    "billing", UNTAGGED_SHARE, summary.key, rules.severity(summary.key),
                    f"{summary.share * 100:.1f}% of {summary.currency or ''} spend misses or misuses the required "
                    f"tag {summary.key!r} (policy allows at most {limit * 100:g}%)".replace("  ", " "),
                    currency=summary.currency, cost=summary.noncompliant, share=summary.share,
                ))
    minimum = Decimal(str(rules.thresholds.min_spend))
    for offender in billing.offenders:
        if offender.cost <= 0 or offender.cost < minimum:
            continue
        what = offender.resource or f"spend without a resource id ({offender.service or 'unknown service'})"
        common = dict(resource=offender.resource, counted=limit is None, provider=offender.provider,
                      account=offender.account, service=offender.service, resource_type=offender.resource_type,
                      currency=offender.currency, cost=offender.cost)
        for key in offender.missing:
            out.append(Violation("billing", MISSING, key, rules.severity(key),
                                 f"{what}: required tag {key!r} is missing", **common))
        for key, value in offender.disallowed.items():
            out.append(Violation("billing", DISALLOWED, key, rules.severity(key),
                                 f"{what}: tag {key!r} = {value!r} is not allowed ({rules.allowed_text(key)})",
                                 value=value, **common))
    return out


# -- plans -----------------------------------------------------------------------------------

def audit_plans(rules: RuleSet, plans: list[Plan]) -> PlanAudit:
    checks: list[PlanCheck] = []
    for plan in plans:
        for resource in plan.resources:
            found = {k: rules.lookup(resource.tags, k) for k in rules.required + rules.condition_keys()}
            for key in rules.required:
                checks.append(_plan_check(rules, resource, key, found))
    return PlanAudit(plans, checks)


def _plan_check(rules: RuleSet, resource: PlanResource, key: str, found: dict[str, str | None]) -> PlanCheck:
    value = found[key]
    unknown = resource.all_unknown or any(
        k.lower() in {u.lower() for u in resource.unknown_keys} if rules.allocation.case_insensitive
        else k in resource.unknown_keys for k in rules.tag_keys(key))
    if value is None and unknown:
        return PlanCheck(resource, key, "unknown")
    if value is not None and rules.allowed(key, value):
        return PlanCheck(resource, key, "ok", value)
    if rules.exempt(key, provider=resource.provider, service=None, resource_type=resource.type, values=found):
        return PlanCheck(resource, key, "exempt", value)
    return PlanCheck(resource, key, "missing" if value is None else "disallowed", value)


def plan_violations(rules: RuleSet, audit: PlanAudit) -> list[Violation]:
    out = []
    for check in audit.checks:
        if check.status not in ("missing", "disallowed"):
            continue
        r = check.resource
        if check.status == "missing":
            rule, message = MISSING, f"{r.address}: required {_attribute(r)} {check.key!r} is missing"
        else:
            rule = DISALLOWED
            message = (f"{r.address}: {_attribute(r)} {check.key!r} = {check.value!r} is not allowed "
                       f"({rules.allowed_text(check.key)})")
        out.append(Violation("plan", rule, check.key, rules.severity(check.key), message, resource=r.address,
                             value=check.value, provider=r.provider, resource_type=r.type, plan=r.plan,
                             module=r.module, file=r.file, line=r.line))
    return out


def _attribute(resource: PlanResource) -> str:
    return "label" if resource.attribute == "labels" else "tag"
