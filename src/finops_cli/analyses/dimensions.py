"""Report dimensions: names a person types (``team``, ``service``, ``tag:env``) -> SQL over the store.

Allocation dimensions (team, project, environment, cost_center, owner and any added under
``allocation.aliases``) come from tags, through their alias keys in priority order, optionally
case-insensitively. Built-in dimensions come from FOCUS columns. Any FOCUS column name
(``SubAccountName``, ``PricingCategory``) works too, as do ``tag:KEY`` and ``x:KEY``
(a source-specific property in ``x_Properties``). Budgets and tag audits use the same table,
so ``--by``, ``--filter`` and a budget's ``scope`` mean the same thing everywhere.
"""

from __future__ import annotations

from dataclasses import dataclass

from finops_cli.config.model import AllocationConfig
from finops_cli.errors import UsageError
from finops_cli.focus.normalise import quote
from finops_cli.focus.schema import BY_LOWER, KEYVALUE

# The provider column was renamed in FOCUS 1.3 (ServiceProviderName) and dropped in the 1.4 draft.
BUILTIN: dict[str, tuple[str, str]] = {
    "provider": ("COALESCE(ProviderName, ServiceProviderName)", "the provider (FOCUS ProviderName)"),
    "account": (
        "CASE WHEN SubAccountId IS NOT NULL THEN "
        "CASE WHEN SubAccountName IS NULL OR SubAccountName = SubAccountId THEN SubAccountId "
        "ELSE SubAccountName || ' (' || SubAccountId || ')' END "
        "ELSE CASE WHEN BillingAccountName IS NULL OR BillingAccountName = BillingAccountId THEN BillingAccountId "
        "ELSE BillingAccountName || ' (' || BillingAccountId || ')' END END",
        "sub-account (AWS account, Azure subscription, GCP project), else billing account",
    ),
    "account_id": ("COALESCE(SubAccountId, BillingAccountId)", "sub-account id, else billing account id"),
    "billing_account": ("BillingAccountId", "billing account id"),
    "service": ("ServiceName", "service name"),
    "category": ("ServiceCategory", "FOCUS service category"),
    "region": ("COALESCE(RegionId, RegionName)", "region id"),
    "resource": ("COALESCE(ResourceId, ResourceName)", "resource id"),
    "resource_type": ("ResourceType", "resource type"),
    "sku": ("SkuId", "SKU id"),
    "charge": ("ChargeCategory", "FOCUS charge category (Usage, Purchase, Tax, Credit, Adjustment)"),
    "pricing": ("PricingCategory", "FOCUS pricing category (Standard, Dynamic, Committed, Other)"),
    "currency": ("BillingCurrency", "billing currency"),
    "day": ("strftime(ChargePeriodStart, '%Y-%m-%d')", "charge day (UTC)"),
    "month": ("strftime(ChargePeriodStart, '%Y-%m')", "charge month (UTC)"),
    "source": ("x_SourceName", "the configured finops source"),
    # Source-specific properties common enough to deserve a name (see the sources' docs).
    "resource_group": ("NULLIF(x_Properties['ResourceGroupName'], '')", "Azure resource group"),
    "cluster": ("NULLIF(x_Properties['cluster'], '')", "Kubernetes cluster"),
    "namespace": ("NULLIF(x_Properties['namespace'], '')", "Kubernetes namespace"),
}

COST_COLUMNS = {
    "effective": "EffectiveCost",
    "billed": "BilledCost",
    "list": "ListCost",
    "contracted": "ContractedCost",
}


# Filters on these dimensions also match other spellings of the same thing (an id or a bare name).
FILTER_ALSO_MATCHES: dict[str, tuple[str, ...]] = {
    "account": ("COALESCE(SubAccountId, BillingAccountId)", "COALESCE(SubAccountName, BillingAccountName)"),
}


@dataclass(frozen=True)
class Dimension:
    name: str
    sql: str
    is_tag: bool  # missing values mean "untagged"
    also_matches: tuple[str, ...] = ()

    @property
    def missing_label(self) -> str:
        return "(untagged)" if self.is_tag else "(none)"


def tag_lookup(key: str, case_insensitive: bool, column: str = "Tags") -> str:
    literal = "'" + key.replace("'", "''") + "'"
    if case_insensitive:
        return (f"NULLIF(list_filter(map_entries({column}), lambda e: lower(e.key) = lower({literal}))[1].value, '')")
    return f"NULLIF({column}[{literal}], '')"


def resolve(name: str, allocation: AllocationConfig) -> Dimension:
    text = name.strip()
    lowered = text.lower()
    if lowered.startswith("tag:") and len(text) > 4:
        key = text[4:]
        return Dimension(f"tag:{key}", tag_lookup(key, allocation.case_insensitive), True)
    if lowered.startswith("x:") and len(text) > 2:
        key = text[2:]
        return Dimension(f"x:{key}", tag_lookup(key, False, "x_Properties"), False)
    dims = allocation.dimensions
    if lowered in dims:
        lookups = [tag_lookup(k, allocation.case_insensitive) for k in dims[lowered]]
        sql = lookups[0] if len(lookups) == 1 else f"COALESCE({', '.join(lookups)})"
        return Dimension(lowered, sql, True)
    if lowered in BUILTIN:
        return Dimension(lowered, BUILTIN[lowered][0], False, FILTER_ALSO_MATCHES.get(lowered, ()))
    column = BY_LOWER.get(lowered)
    if column is not None and column.type != KEYVALUE:
        return Dimension(column.name, quote(column.name), False)
    raise UsageError(f"unknown dimension {name!r}; known: {', '.join(known_names(allocation))}, "
                     f"tag:KEY, x:KEY or a FOCUS column name")


def known_names(allocation: AllocationConfig) -> list[str]:
    return list(allocation.dimensions) + list(BUILTIN)


def cost_column(basis: str) -> str:
    try:
        return COST_COLUMNS[basis]
    except KeyError:
        raise UsageError(f"unknown cost basis {basis!r} (expected one of {', '.join(COST_COLUMNS)})") from None


@dataclass(frozen=True)
class Filter:
    dimension: Dimension
    values: tuple[str | None, ...]  # None matches a missing value
    negate: bool = False

    def sql(self) -> tuple[str, list]:
        present = [v for v in self.values if v is not None]
        parts, params = [], []
        if present:
            for expr in (self.dimension.sql,) + self.dimension.also_matches:
                parts.append(f"{expr} IN ({', '.join('?' for _ in present)})")
                params.extend(present)
        if len(present) != len(self.values):
            parts.append(f"{self.dimension.sql} IS NULL")
        clause = "(" + " OR ".join(parts) + ")"
        if self.negate:  # a missing value is "not search" too
            clause = f"NOT COALESCE({clause}, false)"
        return clause, params


MISSING_WORDS = {"(untagged)", "(none)", "untagged", ""}


def parse_filters(specs: list[str], allocation: AllocationConfig) -> list[Filter]:
    """``team=search``, ``team=search,ads`` (either), ``env!=prod``, ``team=(untagged)`` (missing)."""
    grouped: dict[tuple[str, bool], tuple[Dimension, list]] = {}
    for spec in specs:
        negate = "!=" in spec
        name, sep, value = spec.partition("!=" if negate else "=")
        if not sep or not name.strip():
            raise UsageError(f"--filter {spec!r}: expected DIMENSION=VALUE or DIMENSION!=VALUE")
        dim = resolve(name, allocation)
        values = [None if v.strip() in MISSING_WORDS else v.strip() for v in value.split(",")]
        entry = grouped.setdefault((dim.name, negate), (dim, []))
        entry[1].extend(values)
    return [Filter(dim, tuple(values), negate) for (name, negate), (dim, values) in grouped.items()]


@dataclass(frozen=True)
class DerivedColumns:
    """Store columns computed from Tags under the current allocation settings (see schema x_MissingTags)."""

    fingerprint: str
    missing_tags_sql: str  # a USMALLINT bitmask over allocation.required


MAX_REQUIRED = 16


def derived_columns(allocation: AllocationConfig) -> DerivedColumns:
    import hashlib
    import json

    required = allocation.required[:MAX_REQUIRED]
    dims = [resolve(name, allocation) for name in required]
    bits = [f"(CAST({d.sql} IS NULL AS USMALLINT) << {i})" for i, d in enumerate(dims)]
    sql = " | ".join(bits) if bits else "CAST(0 AS USMALLINT)"
    fingerprint = hashlib.sha256(json.dumps([required, [d.sql for d in dims]]).encode()).hexdigest()[:24]
    return DerivedColumns(fingerprint, sql)
