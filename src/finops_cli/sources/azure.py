"""Azure Cost Management: ``type: azure`` pulls daily spend through the Cost Management Query API.

A query may group by at most two things, so finops keys its one grain of rows on the resource:
``day x ResourceId x ServiceName x currency``, pulled as ActualCost (BilledCost) and as AmortizedCost
(EffectiveCost) and joined on those keys. Everything else is an attribute of the resource and is
looked up by resource: the subscription and resource group come from the id itself, the location
and each tag key from small ``granularity: None`` queries (refined day by day only for resources
whose value changed in the window). So every ``--by`` of subscription, resource group, service,
region and tag is exact and adds up to the same total. docs/sources/azure.md has the request counts.
"""

from __future__ import annotations

import logging
import re
import time
from collections import defaultdict
from datetime import date, datetime, timedelta
from decimal import Decimal
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any, Iterator, Literal
from urllib.parse import parse_qsl, urlparse

from pydantic import Field, field_validator, model_validator

from finops_cli.errors import SourceError, require
from finops_cli.periods import Window, add_months, midnight, parse_duration, utcnow
from finops_cli.sources.base import LastSync, Source, SourceConfig

ARM = "https://management.azure.com"
NO_RESOURCE = ""
# Scopes where Cost Management can group by ResourceId; wider scopes are pulled through their subscriptions.
RESOURCE_SCOPES = ("subscription", "resource_group")
BY_RESOURCE = [{"type": "Dimension", "name": "ResourceId"}, {"type": "Dimension", "name": "ServiceName"}]
BY_SUBSCRIPTION = [{"type": "Dimension", "name": "SubscriptionId"},
                   {"type": "Dimension", "name": "ServiceName"}]
# Resource ids per filtered refinement query, to keep request bodies small.
FILTER_CHUNK = 100

SCOPE_PATTERNS = {
    "subscription": re.compile(r"^/subscriptions/[^/]+$", re.IGNORECASE),
    "resource_group": re.compile(r"^/subscriptions/[^/]+/resourceGroups/[^/]+$", re.IGNORECASE),
    "management_group": re.compile(r"^/providers/Microsoft\.Management/managementGroups/[^/]+$",
                                   re.IGNORECASE),
    "billing_account": re.compile(r"^/providers/Microsoft\.Billing/billingAccounts/[^/]+$", re.IGNORECASE),
    "billing_profile": re.compile(
        r"^/providers/Microsoft\.Billing/billingAccounts/[^/]+/billingProfiles/[^/]+$", re.IGNORECASE),
}

# Cost Management's ServiceName dimension is the meter category; FOCUS wants one category per name.
SERVICE_CATEGORIES = {
    "virtual machines": "Compute", "virtual machines licenses": "Compute", "functions": "Compute",
    "azure kubernetes service": "Compute", "container instances": "Compute", "azure app service": "Compute",
    "cloud services": "Compute", "batch": "Compute", "container registry": "Compute",
    "storage": "Storage", "backup": "Storage", "azure netapp files": "Storage",
    "bandwidth": "Networking", "virtual network": "Networking", "load balancer": "Networking",
    "application gateway": "Networking", "azure dns": "Networking", "azure front door service": "Networking",
    "vpn gateway": "Networking", "network watcher": "Networking", "content delivery network": "Networking",
    "azure firewall": "Networking", "nat gateway": "Networking", "expressroute": "Networking",
    "sql database": "Databases", "sql managed instance": "Databases", "azure cosmos db": "Databases",
    "azure database for postgresql": "Databases", "azure database for mysql": "Databases",
    "redis cache": "Databases", "azure synapse analytics": "Analytics", "azure databricks": "Analytics",
    "azure data factory v2": "Analytics", "event hubs": "Integration", "service bus": "Integration",
    "logic apps": "Integration", "api management": "Integration",
    "log analytics": "Management and Governance", "azure monitor": "Management and Governance",
    "insight and analytics": "Management and Governance", "automation": "Management and Governance",
    "key vault": "Security", "microsoft defender for cloud": "Security",
    "sentinel": "Security", "cognitive services": "AI and Machine Learning",
    "azure openai": "AI and Machine Learning", "foundry models": "AI and Machine Learning",
    "azure machine learning": "AI and Machine Learning",
}


# Azure regions, after microsoft/finops-toolkit src/open-data/Regions.csv (MIT): display names (the
# RegionId is the name in lower case without spaces) and the "geo direction" spellings Cost Management
# uses for ResourceLocation ("EU West" is westeurope).
REGION_NAMES = {name.replace(" ", "").lower(): name for name in (
    'Asia Pacific; Australia; Australia Central; Australia Central 2; Australia East; '
    'Australia Southeast; Austria East; Azure Stack; Belgium Central; Brazil South; Brazil Southeast; '
    'Canada Central; Canada East; Central India; Central US; Central US EUAP; Chile Central; '
    'China East; China East 2; China East 3; China North; China North 2; China North 3; Denmark East; '
    'East Asia; East US; East US 2; East US 2 EUAP; East US 3; Finland Central; France Central; '
    'France South; Germany Central; Germany North; Germany NorthEast; Germany West Central; Global; '
    'Greece Central; India South Central; Indonesia Central; Israel Central; Italy North; Japan; '
    'Japan East; Japan West; Jio India Central; Jio India West; Korea Central; Korea South; '
    'Malaysia South; Malaysia West; Mexico Central; New Zealand North; North Central US; North Europe; '
    'Norway East; Norway West; Poland Central; Qatar Central; Saudi Arabia East; Singapore Central; '
    'South Africa North; South Africa West; South Central US; South Central US 2; '
    'South Central US STG; South India; Southeast Asia; Southeast US; Spain Central; Sweden Central; '
    'Sweden South; Switzerland North; Switzerland West; Taiwan North; Taiwan Northwest; UAE Central; '
    'UAE North; UK North; UK South; UK South 2; UK West; US East 2 EUAP; US South Central; '
    'USDoD Central; USDoD East; USGov Arizona; USGov Iowa; USGov Texas; USGov Virginia; USGov Wyoming; '
    'USSec East; USSec West; USSec West Central; United States; West Central US; West Europe; '
    'West India; West US; West US 2; West US 3'
).split("; ")}
REGION_ALIASES = dict(pair.split("=") for pair in (
    'ae central=uaecentral; ae north=uaenorth; ap east=eastasia; ap southeast=southeastasia; '
    'at east=austriaeast; au central=australiacentral; au central 2=australiacentral2; '
    'au east=australiaeast; au southeast=australiasoutheast; be central=belgiumcentral; '
    'br south=brazilsouth; br southeast=brazilsoutheast; ca central=canadacentral; ca east=canadaeast; '
    'ch north=switzerlandnorth; ch west=switzerlandwest; cl central=chilecentral; cn east=chinaeast; '
    'cn east 2=chinaeast2; cn east 3=chinaeast3; cn north=chinanorth; cn north 2=chinanorth2; '
    'cn north 3=chinanorth3; de central=germanycentral; de north=germanynorth; '
    'de northeast=germanynortheast; de west central=germanywestcentral; es central=spaincentral; '
    'eu north=northeurope; eu west=westeurope; fi central=finlandcentral; fr central=francecentral; '
    'fr south=francesouth; gr central=greececentral; hong kong=eastasia; id central=indonesiacentral; '
    'il central=israelcentral; in central=centralindia; in central jio=jioindiacentral; '
    'in south=southindia; in south central=indiasouthcentral; in west=westindia; '
    'in west jio=jioindiawest; it north=italynorth; ja east=japaneast; ja west=japanwest; '
    'kr central=koreacentral; kr south=koreasouth; mx central=mexicocentral; my west=malaysiawest; '
    'no east=norwayeast; no west=norwaywest; nz north=newzealandnorth; pl central=polandcentral; '
    'qa central=qatarcentral; sa east=saudiarabiaeast; sao paulo=brazilsouth; '
    'se central=swedencentral; se south=swedensouth; silicon valley=westus; tw north=taiwannorth; '
    'us central=centralus; us east=eastus; us east 2=eastus2; us east 3=eastus3; '
    'us gov az=usgovarizona; us gov tx=usgovtexas; us north central=northcentralus; '
    'us south central=southcentralus; us west=westus; us west 2=westus2; us west 3=westus3; '
    'us west central=westcentralus; usgov south central=usgovtexas; za north=southafricanorth; '
    'za west=southafricawest'
).split("; "))
NO_REGION = {"", "unassigned", "unknown", "n/a"}


BILLING_ACCOUNT_TYPES = {"billing_account": "Billing Account", "billing_profile": "Billing Profile"}


class AzureConfig(SourceConfig):
    type: Literal["azure"]
    scopes: list[str] = Field(min_length=1, description="Cost Management scopes: subscription, resource "
                              "group, management group, billing account, billing profile")
    tenant_id: str | None = None
    credential: Literal["default", "cli", "token"] = "default"
    token_env: str | None = Field(default=None, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    base_url: str = ARM
    verify_tls: bool | str = True
    # Default: every tag key the `allocation` section reads (dimensions and aliases).
    tag_keys: list[str] | None = None
    # Management group and billing scopes: pull each subscription under them at the resource grain.
    resource_detail: bool = True
    # During the first N days of a month an incremental sync re-pulls the whole previous month.
    month_close_days: int = Field(default=5, ge=0, le=28)
    # The longest one query waits out HTTP 429 throttling before the sync gives up.
    max_throttle_wait: timedelta = timedelta(minutes=5)

    @field_validator("scopes")
    @classmethod
    def _scopes(cls, scopes: list[str]) -> list[str]:
        clean = []
        for raw in scopes:
            scope = "/" + raw.strip().strip("/")
            if scope_kind(scope) is None:
                raise ValueError(f"{raw!r} is not a Cost Management scope; expected /subscriptions/ID, "
                                 "/subscriptions/ID/resourceGroups/NAME, /providers/Microsoft.Management/"
                                 "managementGroups/ID or /providers/Microsoft.Billing/billingAccounts/ID"
                                 "[/billingProfiles/ID]")
            clean.append(scope)
        for i, scope in enumerate(clean):
            for other in clean[:i]:
                inner, outer = sorted((scope.lower(), other.lower()), key=len, reverse=True)
                if inner == outer:
                    raise ValueError(f"{scope!r} is listed twice")
                if inner.startswith(outer + "/"):
                    raise ValueError(f"{max(scope, other, key=len)!r} lies inside "
                                     f"{min(scope, other, key=len)!r}: its cost would be counted twice")
        return clean

    @field_validator("tag_keys")
    @classmethod
    def _tag_keys(cls, keys: list[str] | None) -> list[str] | None:
        if keys is None:
            return None
        clean: list[str] = []
        for key in keys:
            if not key.strip():
                raise ValueError("tag keys must not be empty")
            if key.strip().lower() in (k.lower() for k in clean):
                raise ValueError(f"tag key {key!r} is listed twice (Azure tag keys ignore case)")
            clean.append(key.strip())
        return clean

    @field_validator("max_throttle_wait", mode="before")
    @classmethod
    def _wait(cls, value: Any) -> Any:
        if isinstance(value, timedelta):
            return value
        try:
            return parse_duration(value)
        except Exception as exc:
            raise ValueError(str(exc).split(": ", 1)[-1]) from None

    @field_validator("base_url")
    @classmethod
    def _https(cls, value: str) -> str:
        if not value.startswith("https://"):
            raise ValueError("must start with https:// (Azure refuses bearer tokens over plain HTTP)")
        return value.rstrip("/")

    @model_validator(mode="after")
    def _token_needs_env(self) -> AzureConfig:
        if self.credential == "token" and not self.token_env:
            raise ValueError("credential: token needs token_env, the environment variable holding the token")
        return self


def scope_kind(scope: str) -> str | None:
    for kind, pattern in SCOPE_PATTERNS.items():
        if pattern.match(scope):
            return kind
    return None


class ScopeDenied(SourceError):
    """The scope answered 401, 403 or 404: a wide scope then keeps that subscription at subscription level."""

    def __init__(self, source: str, message: str, *, hint: str | None = None, status: int):
        super().__init__(source, message, hint=hint)
        self.status = status


class StaticTokenCredential:
    """A TokenCredential for a bearer token a pipeline already holds (``credential: token``)."""

    def __init__(self, token: str, lifetime: int = 3600):
        self._token = token
        self._expires_on = int(time.time()) + lifetime

    def get_token(self, *scopes: str, **kwargs: Any):
        from azure.core.credentials import AccessToken

        return AccessToken(self._token, self._expires_on)

    def __repr__(self) -> str:  # never show the token, even in a debugger or a traceback
        return "StaticTokenCredential(<hidden>)"


class AzureSource(Source):
    config_class = AzureConfig
    config: AzureConfig

    @property
    def wanted_tag_keys(self) -> list[str]:
        """The configured tag_keys, else every key the allocation dimensions read (Azure ignores key case)."""
        if self.config.tag_keys is not None:
            return self.config.tag_keys
        seen: dict[str, str] = {}
        for key in self.tag_keys:
            seen.setdefault(key.lower(), key)
        return list(seen.values())

    # -- incremental window ------------------------------------------------------------------
    def default_window(self, last: LastSync | None, now: datetime | None = None) -> Window | None:
        """The base window, plus the whole previous month during the first days of a month (invoice close)."""
        window = super().default_window(last, now)
        if last is None or window is None or self.config.month_close_days == 0:
            return window
        today = (now or utcnow()).date()
        if today.day <= self.config.month_close_days:
            previous_month = midnight(add_months(today.replace(day=1), -1))
            if window.start > previous_month:
                return Window(previous_month, window.end)
        return window

    # -- pulling -----------------------------------------------------------------------------
    def pull(self, window: Window | None) -> Iterator[list[dict]]:
        if window is None:
            now = utcnow()
            window = Window(midnight((now - self.config.lookback).date()),
                            midnight(now.date() + timedelta(days=1)))
        client = self._client()
        self._resource_ids: dict[str, str] = {}  # lower-cased id -> the id as Cost Management spelled it
        seen: set[tuple] = set()
        self._throttled = 0
        self._waited = 0.0
        for scope in self.config.scopes:
            # Daily queries are cut to one month by the service, silently: ask for a month at most.
            for part in _month_parts(window):
                if scope_kind(scope) in RESOURCE_SCOPES:
                    rows = self._resource_rows(client, scope, part, origin=scope)
                else:
                    rows = self._wide_scope_rows(client, scope, part)
                yield self._first_sighting(rows, seen)
        if self._throttled:
            self.stats.notes.append(f"throttled {self._throttled}x, waited {self._waited:.1f} s")

    def _first_sighting(self, rows: dict[tuple, dict], seen: set) -> list[dict]:
        """Each resource's row once, when configured scopes overlap (an MG and one of its subscriptions)."""
        out, duplicates = [], 0
        for key, record in rows.items():
            if key[1] != NO_RESOURCE:
                if key in seen:
                    duplicates += 1
                    continue
                seen.add(key)
            out.append(record)
        if duplicates:
            self.stats.notes.append(f"{duplicates} rows seen through an earlier scope skipped")
        return out

    def _resource_rows(self, client, scope: str, window: Window, *, origin: str,
                       names: dict[str, str] | None = None) -> dict[tuple, dict]:
        """A subscription or resource group scope at the grain (day, resource, service, currency)."""
        billed = self._daily(client, scope, window, "ActualCost", BY_RESOURCE)
        effective = self._daily(client, scope, window, "AmortizedCost", BY_RESOURCE)
        if not (billed or effective):
            return {}
        # Without resources (say, only a reservation purchase) there is nothing to look up.
        has_resources = any(key[1] != NO_RESOURCE for key in (*billed, *effective))
        location = self._attribute(client, scope, window, {"type": "Dimension", "name": "ResourceLocation"}) \
            if has_resources else _Lookup({})
        tags = {key: self._attribute(client, scope, window, {"type": "TagKey", "name": key})
                for key in self.wanted_tag_keys} if has_resources else {}
        if names is None:
            names = self._subscription_names(client, scope, window)
        subscription = _subscription_of(scope)
        rows = {}
        for key in sorted(set(billed) | set(effective)):
            day, resource, service, currency = key
            amounts = (billed.get(key, Decimal(0)), effective.get(key, Decimal(0)))
            if amounts == (0, 0):
                continue
            row_tags = {k: v for k, lookup in tags.items() if (v := lookup.value(resource, day))}
            rows[key] = self._record(origin, day, amounts, currency, service=service, resource=resource,
                                     subscription=subscription, location=location.value(resource, day),
                                     tags=row_tags, names=names)
        return rows

    def _wide_scope_rows(self, client, scope: str, window: Window) -> dict[tuple, dict]:
        """A management group or billing scope: Cost Management cannot group by ResourceId there.

        Its daily totals by subscription and service are the truth. With ``resource_detail`` each
        subscription under it is pulled at the resource grain, and whatever the subscriptions do not
        explain (charges without a subscription, subscriptions finops may not read) stays as a row
        without a resource, so the scope's total is kept to the cent.
        """
        billed = self._daily(client, scope, window, "ActualCost", BY_SUBSCRIPTION)
        effective = self._daily(client, scope, window, "AmortizedCost", BY_SUBSCRIPTION)
        if not (billed or effective):
            return {}
        names = self._subscription_names(client, scope, window)
        rows: dict[tuple, dict] = {}
        explained: dict[tuple, list[Decimal]] = defaultdict(lambda: [Decimal(0), Decimal(0)])
        subscriptions = sorted({key[1] for key in (*billed, *effective) if key[1]})
        for subscription in subscriptions if self.config.resource_detail else ():
            try:
                detail = self._resource_rows(client, f"/subscriptions/{subscription}", window, origin=scope,
                                             names=names)
            except ScopeDenied as exc:
                note = f"/subscriptions/{subscription}: HTTP {exc.status}, kept at subscription level"
                if note not in self.stats.notes:  # once, not once per month of the window
                    self.stats.notes.append(note)
                continue
            for (day, _, service, currency), record in detail.items():
                sums = explained[(day, subscription, service, currency)]
                sums[0] += record["BilledCost"]
                sums[1] += record["EffectiveCost"]
            rows.update(detail)
        for key in sorted(set(billed) | set(effective) | set(explained)):
            day, subscription, service, currency = key
            done = explained.get(key, (Decimal(0), Decimal(0)))
            amounts = (billed.get(key, Decimal(0)) - done[0], effective.get(key, Decimal(0)) - done[1])
            if amounts != (0, 0):
                rows[(day, NO_RESOURCE, service, currency, subscription)] = self._record(
                    scope, day, amounts, currency, service=service, resource=NO_RESOURCE,
                    subscription=subscription or None, location=None, tags={}, names=names)
        return rows

    def _record(self, origin: str, day: date, amounts: tuple[Decimal, Decimal], currency: str, *,
                service: str, resource: str, subscription: str | None, location: str | None, tags: dict,
                names: dict) -> dict:
        billed, effective = amounts
        resource_id = self._resource_ids.get(resource) if resource else None
        subscription = _subscription_of(resource_id or "") or subscription
        group = _segment_after(resource_id or "", "resourcegroups")
        kind = scope_kind(origin)
        if resource_id is None and billed != 0 and effective == 0:
            charge = "Purchase"  # a prepaid commitment: Microsoft's rule gives it EffectiveCost 0
        else:
            charge = "Usage"
        month = date(day.year, day.month, 1)
        region = _region(location)
        properties = {"Scope": origin, "MeterCategory": service or None, "ResourceGroupName": group,
                      "ResourceLocation": location}
        return {
            "ChargePeriodStart": midnight(day), "ChargePeriodEnd": midnight(day + timedelta(days=1)),
            "BillingPeriodStart": midnight(month), "BillingPeriodEnd": midnight(add_months(month, 1)),
            "BilledCost": billed, "EffectiveCost": effective, "BillingCurrency": currency,
            "ChargeCategory": charge,
            "PricingCategory": "Committed" if resource_id and billed == 0 and effective != 0 else None,
            # The Query API does not name a subscription's enrollment or billing profile; billing scopes do.
            "BillingAccountId": origin if kind in BILLING_ACCOUNT_TYPES or subscription is None
            else f"/subscriptions/{subscription}",
            "BillingAccountType": BILLING_ACCOUNT_TYPES.get(kind, "Subscription" if subscription
                                                            else "Management Group"),
            "SubAccountId": f"/subscriptions/{subscription}" if subscription else None,
            "SubAccountName": names.get(subscription) if subscription else None,
            "SubAccountType": "Subscription" if subscription else None,
            "ResourceId": resource_id,
            "ResourceName": resource_id.rsplit("/", 1)[-1] if resource_id else None,
            "ResourceType": _resource_type(resource_id),
            "RegionId": region[0], "RegionName": region[1],
            "ServiceName": service or "Unassigned",
            "ServiceCategory": SERVICE_CATEGORIES.get(service.lower(), "Other") if service else "Other",
            "ProviderName": "Microsoft", "PublisherName": "Microsoft", "InvoiceIssuerName": "Microsoft",
            "ServiceProviderName": "Microsoft", "HostProviderName": "Microsoft",
            "Tags": tags,
            "x_Properties": {k: v for k, v in properties.items() if v},
        }

    def _daily(self, client, scope: str, window: Window, cost_type: str, grouping: list[dict]) -> dict:
        """(day, first group value, second group value, currency) -> cost, for one cost type."""
        out: dict[tuple, Decimal] = defaultdict(Decimal)
        for row in self._query(client, scope, window, cost_type, "Daily", grouping):
            values = []
            for group in grouping:
                value = row.get(group["name"])
                if group["name"] == "ResourceId":
                    value = self._resource_key(value)
                elif group["name"] == "SubscriptionId":
                    value = _subscription_key(value)
                values.append(str(value or ""))
            out[(row.day, *values, row.currency)] += row.cost
        return out

    def _attribute(self, client, scope, window, grouping: dict) -> _Lookup:
        """A resource attribute (location, one tag key) for every resource, exact per day."""
        column = "TagValue" if grouping["type"] == "TagKey" else grouping["name"]
        whole: dict[str, dict[str, Decimal]] = defaultdict(lambda: defaultdict(Decimal))
        for row in self._query(client, scope, window, "AmortizedCost", "None",
                               [{"type": "Dimension", "name": "ResourceId"}, grouping]):
            whole[self._resource_key(row.get("ResourceId"))][row.get(column) or ""] += row.cost
        lookup = _Lookup({r: next(iter(v)) for r, v in whole.items() if len(v) == 1})
        changed = [self._resource_ids[r] for r, v in whole.items() if len(v) > 1 and r in self._resource_ids]
        daily: dict[tuple, dict[str, Decimal]] = defaultdict(lambda: defaultdict(Decimal))
        for start in range(0, len(changed), FILTER_CHUNK):
            ids = changed[start:start + FILTER_CHUNK]
            flt = {"dimensions": {"name": "ResourceId", "operator": "In", "values": ids}}
            for row in self._query(client, scope, window, "AmortizedCost", "Daily",
                                   [{"type": "Dimension", "name": "ResourceId"}, grouping], flt):
                daily[(self._resource_key(row.get("ResourceId")), row.day)][row.get(column) or ""] += row.cost
        split_days = 0
        for key, values in daily.items():
            # Two values on one day (the tag changed that day): the larger share takes the day.
            lookup.by_day[key] = max(values, key=lambda v: (abs(values[v]), v))
            split_days += len(values) > 1
        if split_days:
            self.stats.notes.append(f"{grouping['name']}: {split_days} resource-days with two values, "
                                    "given to the larger")
        return lookup

    def _subscription_names(self, client, scope: str, window: Window) -> dict[str, str]:
        grouping = [{"type": "Dimension", "name": "SubscriptionId"},
                    {"type": "Dimension", "name": "SubscriptionName"}]
        names = {}
        for row in self._query(client, scope, window, "AmortizedCost", "None", grouping):
            subscription = _subscription_key(row.get("SubscriptionId"))
            if subscription and row.get("SubscriptionName"):
                names[subscription] = row.get("SubscriptionName")
        return names

    def _resource_key(self, value: Any) -> str:
        """Cost Management spells one resource id in several casings: key it case-insensitively."""
        text = str(value or "").strip()
        key = text.lower()
        if key:
            self._resource_ids.setdefault(key, text)
        return key

    # -- the API: paging, throttling, errors ---------------------------------------------------
    def _query(self, client, scope, window, cost_type, granularity, grouping, flt=None) -> Iterator[_Row]:
        body: dict[str, Any] = {
            "type": cost_type, "timeframe": "Custom",
            "timePeriod": {"from": window.start.strftime("%Y-%m-%dT00:00:00Z"),
                           "to": (window.end - timedelta(seconds=1)).strftime("%Y-%m-%dT%H:%M:%SZ")},
            "dataset": {"granularity": granularity,
                        "aggregation": {"totalCost": {"name": "Cost", "function": "Sum"}},
                        "grouping": grouping},
        }
        if flt:
            body["dataset"]["filter"] = flt
        extra: dict[str, str] = {}
        followed: set[tuple] = set()
        page = 0
        while True:
            result = self._post(client, scope, body, extra, cost_type)
            page += 1
            if result is None or result.properties is None:  # 204 No Content: no cost in the window
                return
            columns = [c.name for c in result.properties.columns or []]
            yield from (_Row(columns, values, self.name, scope) for values in result.properties.rows or [])
            link = result.properties.next_link
            if not link:
                return
            extra = {k: v for k, v in parse_qsl(urlparse(link).query, keep_blank_values=True)
                     if k.lower() != "api-version"}
            token = tuple(sorted(extra.items()))
            if not extra or token in followed:
                raise SourceError(self.name, f"{scope}: Cost Management returned a nextLink that leads "
                                  f"nowhere new on page {page}; refusing to store a partial result")
            followed.add(token)

    def _post(self, client, scope: str, body: dict, extra: dict, cost_type: str):
        core = require("azure.core.exceptions", extra="azure", what="the azure source")
        limit = self.config.max_throttle_wait.total_seconds()
        retries, waited = 0, 0.0  # for this query: steady throttling over a long sync is normal
        while True:
            try:
                return client.query.usage(scope, body, params=dict(extra))
            except core.HttpResponseError as exc:
                if exc.response is None:  # the credential failed before any request: no az login, no identity
                    raise SourceError(self.name, f"could not get an Azure token ({self.config.credential} "
                                      f"credential): {_first_line(exc)}",
                                      hint=_credential_hint(self.config)) from None
                if exc.status_code != 429:
                    raise self._api_error(exc, scope, cost_type) from None
                wait = retry_after_seconds(exc.response.headers)
                if waited + wait > limit:
                    raise SourceError(
                        self.name,
                        f"{scope}: Azure Cost Management is still throttling ({cost_type} query, HTTP 429) "
                        f"after {retries} retries and {waited:.0f} s of waiting (max_throttle_wait: "
                        f"{limit:g} s per query)",
                        hint="Cost Management allows a few queries per minute per scope and tenant: retry "
                             "later, raise max_throttle_wait, or split the scopes over several sources",
                    ) from None
                retries += 1
                waited += wait
                self._throttled += 1
                self._waited += wait
                time.sleep(wait)
            except core.ServiceRequestError as exc:
                raise SourceError(self.name,
                                  f"cannot reach {self.config.base_url}: {_first_line(exc)}") from None
            except core.AzureError as exc:
                raise SourceError(self.name, f"{scope}: {_first_line(exc)}") from None

    def _api_error(self, exc, scope: str, cost_type: str) -> SourceError:
        code = getattr(exc.error, "code", None) if getattr(exc, "error", None) else None
        message = getattr(exc.error, "message", None) if getattr(exc, "error", None) else None
        text = f"{scope}: Cost Management answered HTTP {exc.status_code}" + (f" {code}" if code else "")
        text += f" to the {cost_type} query: {message or _first_line(exc)}"
        hint = None
        if exc.status_code in (401, 403):
            hint = ("the identity needs the Cost Management Reader role (Billing Reader on billing scopes) "
                    "on this scope; " + _credential_hint(self.config))
        elif exc.status_code == 404:
            hint = "check the scope id; billing scopes need the billing account id, not the tenant id"
        if exc.status_code in (401, 403, 404):
            return ScopeDenied(self.name, text, hint=hint, status=exc.status_code)
        return SourceError(self.name, text, hint=hint)

    def _client(self):
        require("azure.mgmt.costmanagement", extra="azure", what="the azure source")
        # azure-identity logs each failed credential as a warning; without handlers Python would print
        # them on stderr ahead of finops' own one-line message. A configured root logger still gets them.
        azure_logger = logging.getLogger("azure")
        if not azure_logger.handlers:
            azure_logger.addHandler(logging.NullHandler())
        from azure.core.pipeline.policies import RetryPolicy
        from azure.mgmt.costmanagement import CostManagementClient

        class NoThrottleRetry(RetryPolicy):
            """Retry connection errors and 5xx as usual; leave 429 to finops, which bounds the wait."""

            def is_retry(self, settings, response):
                if response.http_response.status_code == 429:
                    return False
                return super().is_retry(settings, response)

        def count(request) -> None:
            self.stats.requests += 1

        return CostManagementClient(
            self._credential(), base_url=self.config.base_url, connection_verify=self._verify(),
            credential_scopes=[_token_scope(self.config.base_url)],
            retry_policy=NoThrottleRetry(retry_total=3, retry_backoff_factor=0.8), raw_request_hook=count,
        )

    def _credential(self):
        import os

        config = self.config
        if config.credential == "token":
            token = os.environ.get(config.token_env or "")
            if not token:
                raise SourceError(self.name, f"credential: token reads the environment variable "
                                  f"{config.token_env}, which is not set or empty")
            return StaticTokenCredential(token.strip())
        identity = require("azure.identity", extra="azure", what="the azure source")
        if config.credential == "cli":
            return identity.AzureCliCredential(tenant_id=config.tenant_id)
        tenant = {} if not config.tenant_id else {
            f"{k}_tenant_id": config.tenant_id
            for k in ("interactive_browser", "workload_identity", "shared_cache", "visual_studio_code")}
        return identity.DefaultAzureCredential(**tenant)

    def _verify(self) -> bool | str:
        verify = self.config.verify_tls
        if isinstance(verify, str):
            path = Path(verify).expanduser()
            if not path.is_absolute() and self.base_dir is not None:
                path = Path(self.base_dir) / path
            if not path.is_file():
                raise SourceError(self.name, f"verify_tls: the CA bundle {str(path)!r} does not exist")
            return str(path)
        return verify


class _Row:
    """One result row, read by column name (the order and the cost column's name vary)."""

    __slots__ = ("values",)

    def __init__(self, columns: list[str], values: list, source: str, scope: str):
        self.values = dict(zip(columns, values))
        if ("Cost" not in self.values and "PreTaxCost" not in self.values) or "Currency" not in self.values:
            raise SourceError(source, f"{scope}: the query result lacks a Cost/PreTaxCost or a Currency "
                              f"column (columns: {', '.join(columns)})")

    def get(self, name: str) -> Any:
        return self.values.get(name)

    @property
    def cost(self) -> Decimal:
        value = self.values.get("Cost", self.values.get("PreTaxCost"))
        if value is None:
            return Decimal(0)
        return Decimal(repr(value)) if isinstance(value, float) else Decimal(str(value))

    @property
    def currency(self) -> str:
        return str(self.values["Currency"])

    @property
    def day(self) -> date:
        value = self.values.get("UsageDate")
        text = str(int(value)) if isinstance(value, (int, float)) else str(value)
        if len(text) == 8 and text.isdigit():  # 20240101
            return date(int(text[:4]), int(text[4:6]), int(text[6:]))
        return date.fromisoformat(text[:10])


class _Lookup:
    """A resource attribute: one value for the whole window, or day by day where it changed."""

    def __init__(self, whole: dict[str, str]):
        self.whole = whole
        self.by_day: dict[tuple[str, date], str] = {}

    def value(self, resource: str, day: date) -> str | None:
        if resource == NO_RESOURCE:
            return None
        found = self.by_day.get((resource, day), self.whole.get(resource))
        return found or None


def retry_after_seconds(headers) -> float:
    """The longest wait any throttling header asks for (Cost Management's own ones, then Retry-After)."""
    waits = []
    for name, value in dict(headers or {}).items():
        lowered = name.lower()
        throttle_header = lowered.startswith("x-ms-ratelimit-") and lowered.endswith("retry-after")
        if lowered == "retry-after" or throttle_header:
            try:
                waits.append(float(value))
            except ValueError:
                try:  # Retry-After may be an HTTP date
                    waits.append(parsedate_to_datetime(value).timestamp() - time.time())
                except (TypeError, ValueError):
                    continue
    return max([w for w in waits if w >= 0] or [10.0])


def _month_parts(window: Window) -> list[Window]:
    """The window cut at month starts: Daily queries longer than a month come back cut short."""
    parts, start = [], window.start
    while start < window.end:
        end = min(midnight(add_months(start.date().replace(day=1), 1)), window.end)
        parts.append(Window(start, end))
        start = end
    return parts


def _region(location: str | None) -> tuple[str | None, str | None]:
    """``EU West``, ``West Europe`` or ``westeurope`` -> (``westeurope``, ``West Europe``)."""
    key = (location or "").strip().lower()
    if key in NO_REGION:
        return None, None
    region_id = REGION_ALIASES.get(key) or key.replace(" ", "")
    return region_id, REGION_NAMES.get(region_id, location)


def _segment_after(path: str, name: str) -> str | None:
    parts = path.strip("/").split("/")
    for index, part in enumerate(parts[:-1]):
        if part.lower() == name:
            return parts[index + 1]
    return None


def _subscription_of(path: str) -> str | None:
    found = _segment_after(path, "subscriptions")
    return found.lower() if found else None


def _subscription_key(value: Any) -> str:
    """The SubscriptionId dimension holds a GUID or, on some scopes, ``/subscriptions/GUID``."""
    text = str(value or "").strip()
    return _subscription_of(text) or text.lower()


def _resource_type(resource_id: str | None) -> str | None:
    """``/subscriptions/s/resourceGroups/g/providers/Microsoft.Compute/virtualMachines/vm1`` ->
    ``microsoft.compute/virtualmachines`` (the last provider segment, with nested types)."""
    if not resource_id:
        return None
    parts = resource_id.strip("/").split("/")
    lowered = [p.lower() for p in parts]
    if "providers" not in lowered:
        return None
    at = len(lowered) - 1 - lowered[::-1].index("providers")
    tail = parts[at + 1:]
    if len(tail) < 3:
        return None
    return "/".join([tail[0]] + tail[1::2]).lower()


def _token_scope(base_url: str) -> str:
    """Sovereign clouds have their own ARM audience; other hosts (a test server, a proxy) use public ARM's."""
    host = urlparse(base_url).hostname or ""
    known = ("management.azure.com", "management.usgovcloudapi.net", "management.chinacloudapi.cn")
    return f"https://{host if host in known else 'management.azure.com'}/.default"


def _credential_hint(config: AzureConfig) -> str:
    if config.credential == "token":
        return f"put a valid ARM bearer token in ${config.token_env}"
    if config.credential == "cli":
        return "run `az login`" + (f" --tenant {config.tenant_id}" if config.tenant_id else "")
    return "set AZURE_CLIENT_ID/AZURE_TENANT_ID/AZURE_CLIENT_SECRET, use a managed identity, or `az login`"


def _first_line(exc: Exception) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
