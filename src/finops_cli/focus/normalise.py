"""Turn whatever a source yields into canonical FOCUS rows: one SQL projection, run by DuckDB.

The projection matches input columns to FOCUS columns (exact name, then known renames, then
case-insensitively), casts them to the store's types (text to exact DECIMAL, FOCUS and
vendor timestamp spellings to UTC, JSON tags to a map), turns empty strings into real
NULLs, repairs the casing of enumerated values (the FOCUS sample has ``Usage-based``),
fills absent columns with NULL and drops columns FOCUS does not know.
"""

from __future__ import annotations

from finops_cli.focus.schema import (
    BY_NAME,
    COLUMNS,
    DATETIME,
    DECIMAL,
    KEYVALUE,
    RENAMED,
    STRING,
    Column,
)

# Allowed values whose casing vendors get wrong; compared case-insensitively, written canonically.
ENUMERATIONS: dict[str, tuple[str, ...]] = {
    "ChargeCategory": ("Usage", "Purchase", "Tax", "Credit", "Adjustment"),
    "ChargeClass": ("Correction",),
    "ChargeFrequency": ("One-Time", "Recurring", "Usage-Based"),
    "PricingCategory": ("Standard", "Dynamic", "Committed", "Other"),
    "CommitmentDiscountStatus": ("Used", "Unused"),
    "CapacityReservationStatus": ("Used", "Unused"),
    "CommitmentDiscountCategory": ("Spend", "Usage"),
}

STAMPED = ("x_SourceName", "x_SourceType", "x_LoadId", "x_MissingTags")  # set by the store, never read


def quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def match_columns(input_columns: list[str]) -> dict[str, str]:
    """FOCUS column name -> input column name, for the input columns finops understands."""
    exact = {c: c for c in input_columns}
    lowered: dict[str, str] = {}
    for raw in input_columns:
        clean = raw.lstrip("\ufeff").strip()
        clean = RENAMED.get(clean, clean)
        lowered.setdefault(clean.lower(), raw)
    matched = {}
    for col in COLUMNS:
        if col.name in STAMPED:
            continue
        raw = exact.get(col.name) or lowered.get(col.name.lower())
        if raw is not None:
            matched[col.name] = raw
    return matched


def cast_expression(col: Column, ref: str, input_type: str) -> str:
    """SQL turning input column ``ref`` (of DuckDB type ``input_type``) into ``col``'s store type."""
    is_text = input_type.upper() == "VARCHAR"
    # Values to parse may carry stray blanks; plain strings are kept as written (TRIM on every string
    # column would double the cost of loading a big Parquet file).
    cleaned = f"NULLIF(TRIM({ref}), '')" if is_text else ref
    blank_is_null = f"NULLIF({ref}, '')" if is_text else ref
    if col.type == DECIMAL:
        return f"CAST({cleaned} AS {DECIMAL})"
    if col.type == DATETIME:
        if is_text or "TIME ZONE" in input_type.upper():
            # Session TimeZone is UTC: "2024-10-01 00:00:00", "...T...Z" and "+02:00" all land in UTC.
            return f"CAST(CAST({cleaned} AS TIMESTAMPTZ) AS TIMESTAMP)"
        return f"CAST({ref} AS TIMESTAMP)"
    if col.type == KEYVALUE:
        if is_text:
            return f"CAST(json({cleaned}) AS {KEYVALUE})"
        return f"CAST({ref} AS {KEYVALUE})"
    if col.type == STRING or col.type == "VARCHAR":
        text = blank_is_null if is_text else f"NULLIF(CAST({ref} AS VARCHAR), '')"
        allowed = ENUMERATIONS.get(col.name)
        if allowed:
            cases = " ".join(f"WHEN '{v.lower()}' THEN '{v}'" for v in allowed)
            return f"CASE lower({text}) {cases} ELSE {text} END"
        return text
    return f"CAST({ref} AS {col.type})"


def projection(input_types: dict[str, str]) -> str:
    """The SELECT list producing every store column, in store order, from an input relation.

    The three stamped columns are bound as parameters ``$source``, ``$source_type``, ``$load_id``.
    """
    matched = match_columns(list(input_types))
    parts = []
    for col in COLUMNS:
        if col.name == "x_SourceName":
            expr = "$source"
        elif col.name == "x_SourceType":
            expr = "$source_type"
        elif col.name == "x_LoadId":
            expr = "CAST($load_id AS BIGINT)"
        elif col.name in STAMPED:
            expr = f"CAST(NULL AS {col.type})"
        elif col.name in matched:
            raw = matched[col.name]
            expr = cast_expression(col, quote(raw), input_types[raw])
        else:
            expr = f"CAST(NULL AS {col.type})"
        parts.append(f"{expr} AS {quote(col.name)}")
    return ",\n  ".join(parts)


def checked_columns(input_types: dict[str, str]) -> list[tuple[str, str, str]]:
    """(FOCUS column, input column, cast SQL) for the columns whose conversion can fail."""
    out = []
    for name, raw in match_columns(list(input_types)).items():
        col = BY_NAME[name]
        if col.type in (DECIMAL, DATETIME, KEYVALUE):
            out.append((name, raw, cast_expression(col, quote(raw), input_types[raw])))
    return out
