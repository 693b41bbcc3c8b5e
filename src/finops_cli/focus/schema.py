"""The one cost model: FOCUS 1.2 Cost and Usage, plus the additive 1.3 columns and our ``x_`` columns.

Every source produces rows with these column names; the store keeps exactly this table.
Money and quantities are exact decimals (``DECIMAL(38, 15)``: 23 integer digits, 15 decimal
places, enough for the smallest per-token unit price), timestamps are UTC (stored as naive
``TIMESTAMP`` holding UTC), periods are start-inclusive and end-exclusive, and ``Tags`` is a
string-to-string map.
"""

from __future__ import annotations

from dataclasses import dataclass

DECIMAL = "DECIMAL(38,15)"
STRING = "VARCHAR"
DATETIME = "TIMESTAMP"
KEYVALUE = "MAP(VARCHAR, VARCHAR)"
JSON = "VARCHAR"  # JSON text kept as written (SkuPriceDetails, AllocatedMethodDetails, ContractApplied)

MONEY_SCALE = 15


@dataclass(frozen=True)
class Column:
    name: str
    type: str
    since: str = "1.0"


# FOCUS 1.2 Cost and Usage (57 columns), in the spec's alphabetical order.
FOCUS_12 = (
    Column("AvailabilityZone", STRING),
    Column("BilledCost", DECIMAL),
    Column("BillingAccountId", STRING),
    Column("BillingAccountName", STRING),
    Column("BillingAccountType", STRING, "1.2"),
    Column("BillingCurrency", STRING),
    Column("BillingPeriodEnd", DATETIME),
    Column("BillingPeriodStart", DATETIME),
    Column("CapacityReservationId", STRING, "1.1"),
    Column("CapacityReservationStatus", STRING, "1.1"),
    Column("ChargeCategory", STRING),
    Column("ChargeClass", STRING),
    Column("ChargeDescription", STRING),
    Column("ChargeFrequency", STRING),
    Column("ChargePeriodEnd", DATETIME),
    Column("ChargePeriodStart", DATETIME),
    Column("CommitmentDiscountCategory", STRING),
    Column("CommitmentDiscountId", STRING),
    Column("CommitmentDiscountName", STRING),
    Column("CommitmentDiscountQuantity", DECIMAL, "1.1"),
    Column("CommitmentDiscountStatus", STRING),
    Column("CommitmentDiscountType", STRING),
    Column("CommitmentDiscountUnit", STRING, "1.1"),
    Column("ConsumedQuantity", DECIMAL),
    Column("ConsumedUnit", STRING),
    Column("ContractedCost", DECIMAL),
    Column("ContractedUnitPrice", DECIMAL),
    Column("EffectiveCost", DECIMAL),
    Column("InvoiceId", STRING, "1.2"),
    Column("InvoiceIssuerName", STRING),
    Column("ListCost", DECIMAL),
    Column("ListUnitPrice", DECIMAL),
    Column("PricingCategory", STRING),
    Column("PricingCurrency", STRING, "1.2"),
    Column("PricingCurrencyContractedUnitPrice", DECIMAL, "1.2"),
    Column("PricingCurrencyEffectiveCost", DECIMAL, "1.2"),
    Column("PricingCurrencyListUnitPrice", DECIMAL, "1.2"),
    Column("PricingQuantity", DECIMAL),
    Column("PricingUnit", STRING),
    Column("ProviderName", STRING),
    Column("PublisherName", STRING),
    Column("RegionId", STRING),
    Column("RegionName", STRING),
    Column("ResourceId", STRING),
    Column("ResourceName", STRING),
    Column("ResourceType", STRING),
    Column("ServiceCategory", STRING),
    Column("ServiceName", STRING),
    Column("ServiceSubcategory", STRING, "1.1"),
    Column("SkuId", STRING),
    Column("SkuMeter", STRING, "1.1"),
    Column("SkuPriceDetails", JSON, "1.1"),
    Column("SkuPriceId", STRING),
    Column("SubAccountId", STRING),
    Column("SubAccountName", STRING),
    Column("SubAccountType", STRING, "1.2"),
    Column("Tags", KEYVALUE),
)

# Additive FOCUS 1.3 columns, carried as nullable (the 1.3 text was read from drafts; see docs/focus.md).
FOCUS_13 = (
    Column("AllocatedMethodDetails", JSON, "1.3"),
    Column("AllocatedMethodId", STRING, "1.3"),
    Column("AllocatedResourceId", STRING, "1.3"),
    Column("AllocatedResourceName", STRING, "1.3"),
    Column("AllocatedTags", KEYVALUE, "1.3"),
    Column("ContractApplied", JSON, "1.3"),
    Column("HostProviderName", STRING, "1.3"),
    Column("ServiceProviderName", STRING, "1.3"),
)

# What FOCUS lacks. Sources may put anything else that is specific to them into x_Properties.
EXTENSIONS = (
    Column("x_SourceName", STRING),  # the configured source name: the unit of sync and replace
    Column("x_SourceType", STRING),  # focus | aws | gcp | azure | opencost | kubecost ...
    Column("x_LoadId", "BIGINT"),  # the ledger row of the sync that wrote this row
    Column("x_Estimated", "BOOLEAN"),  # the provider marked the amount provisional
    Column("x_CostBasis", STRING),  # how an approximated cost column was derived, e.g. "ListCost=UnblendedCost"
    Column("x_Properties", KEYVALUE),  # source-specific extras, e.g. k8s namespace, Azure resource group
    # Bit i set: required allocation tag i (allocation.required order) is missing. Derived from Tags and the
    # config's aliases when rows are written (re-derived when those settings change), so untagged-spend
    # analysis over millions of rows reads one small integer instead of doing map lookups.
    Column("x_MissingTags", "USMALLINT"),
)

COLUMNS: tuple[Column, ...] = FOCUS_12 + FOCUS_13 + EXTENSIONS
COLUMN_NAMES = tuple(c.name for c in COLUMNS)
BY_NAME = {c.name: c for c in COLUMNS}
BY_LOWER = {c.name.lower(): c for c in COLUMNS}
MONEY_COLUMNS = ("BilledCost", "EffectiveCost", "ListCost", "ContractedCost")

# Columns a FOCUS file must carry for finops to load it (mandatory in every FOCUS version 1.0-1.3).
# A provider column is also required: ProviderName (1.0-1.3) or ServiceProviderName (1.3+).
REQUIRED_IN_FILES = (
    "BilledCost",
    "EffectiveCost",
    "BillingCurrency",
    "ChargePeriodStart",
    "ChargePeriodEnd",
    "ChargeCategory",
    "ServiceName",
)
PROVIDER_COLUMNS = ("ProviderName", "ServiceProviderName")

CHARGE_CATEGORIES = ("Usage", "Purchase", "Tax", "Credit", "Adjustment")
CHARGE_FREQUENCIES = ("One-Time", "Recurring", "Usage-Based")
PRICING_CATEGORIES = ("Standard", "Dynamic", "Committed", "Other")

# Renamed between versions: older name -> current name.
RENAMED = {"SkuPriceid": "SkuPriceId"}


def create_table_sql(table: str) -> str:
    cols = ",\n  ".join(f'"{c.name}" {c.type}' for c in COLUMNS)
    return f"CREATE TABLE IF NOT EXISTS {table} (\n  {cols}\n)"
