"""The one small interface every source implements.

A source is configured by a ``SourceConfig`` subclass (its YAML keys) and implemented by a
``Source`` subclass whose ``pull(window)`` yields FOCUS-shaped data for that window:

* ``pyarrow.Table`` or ``pyarrow.RecordBatchReader`` objects whose column names are FOCUS
  column names (any subset; ``records_table`` builds one from dicts), or
* ``FileScan`` objects, which let DuckDB read a CSV/Parquet file directly (fast, streaming).

The store normalises whatever comes (types, nulls, casing of enumerations), stamps
``x_SourceName``/``x_SourceType``/``x_LoadId``, and replaces the source's rows in the window
in one transaction. A source never touches the store, and never knows about reports.

Cloud SDKs are imported inside the methods that use them (see ``errors.require``), so
that ``finops --help`` and config validation stay fast.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any, ClassVar, Iterable, Iterator, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from finops_cli.periods import Window, midnight, parse_duration, utcnow

if TYPE_CHECKING:
    import pyarrow as pa


class SourceConfig(BaseModel):
    """Keys every source has. Subclasses add their own and narrow ``type``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", description="unique name of this source")
    type: str
    enabled: bool = True
    # A report or budget check re-syncs the source when its last good sync is older than this.
    refresh: timedelta | None = None
    # How far back the first sync of an API source reaches, and the earliest day it ever pulls.
    lookback: timedelta = timedelta(days=90)
    start: date | None = None
    # How many recent days an incremental sync re-pulls, because providers restate them.
    restatement: timedelta = timedelta(days=3)

    @field_validator("refresh", "lookback", "restatement", mode="before")
    @classmethod
    def _duration(cls, value: Any) -> Any:
        if value is None or isinstance(value, timedelta):
            return value
        try:
            return parse_duration(value)
        except Exception as exc:  # UsageError: re-raised as a validation error with the key path
            raise ValueError(str(exc).split(": ", 1)[-1]) from None


@dataclass
class FileScan:
    """A file for DuckDB to read directly: ``format`` is ``csv`` or ``parquet``."""

    path: str
    format: Literal["csv", "parquet"]
    columns: tuple[str, ...] = ()  # the file's header, as read


@dataclass
class PullStats:
    """What a pull cost: API requests and their price, bytes scanned, and notes for the summary line."""

    requests: int = 0
    request_cost: Decimal = Decimal(0)
    bytes_processed: int = 0
    notes: list[str] = field(default_factory=list)
    # Days (dates) the provider marked provisional: the next incremental sync re-pulls from the earliest.
    estimated_days: set = field(default_factory=set)


@dataclass
class Forecast:
    """A provider forecast: mean and prediction interval over a window, in one currency."""

    mean: Decimal
    currency: str
    lower: Decimal | None = None
    upper: Decimal | None = None
    confidence: float | None = None  # e.g. 0.8 for an 80 % prediction interval


@dataclass
class LastSync:
    """The last successful sync of a source, from the store's ledger."""

    window_start: datetime | None
    window_end: datetime | None
    finished_at: datetime
    fingerprint: str | None
    estimated_since: datetime | None = None  # earliest day the provider still marked provisional


class Source:
    """Base class of every source. Subclasses set ``config_class`` and implement ``pull``."""

    config_class: ClassVar[type[SourceConfig]] = SourceConfig
    # Default for SourceConfig.refresh when the config leaves it out.
    default_refresh: ClassVar[timedelta] = timedelta(hours=6)

    def __init__(self, config: SourceConfig, *, base_dir=None, tag_keys: list[str] | None = None):
        self.config = config
        self.name = config.name
        self.base_dir = base_dir
        # The tag keys the allocation dimensions read (config `allocation`), for sources that must ask
        # the provider for tags by name (Cost Explorer, Cost Management).
        self.tag_keys = list(tag_keys) if tag_keys else ["team", "project", "environment", "cost_center", "owner"]
        self.stats = PullStats()

    # -- the interface -------------------------------------------------------------------
    def pull(self, window: Window | None) -> Iterable[Any]:
        """Yield FOCUS-shaped tables/readers/FileScans for ``window`` (None: everything the source has)."""
        raise NotImplementedError

    # -- incremental sync and freshness: sensible defaults, override where the source knows better
    def default_window(self, last: LastSync | None, now: datetime | None = None) -> Window | None:
        """The window a plain ``finops sync`` pulls: the restatement days since the last sync, or the lookback."""
        now = now or utcnow()
        end = midnight(now.date() + timedelta(days=1))
        if last is None or last.window_end is None:
            start = midnight((now - self.config.lookback).date())
        else:
            start = min(last.window_end, end) - self.config.restatement
            if last.estimated_since is not None:
                start = min(start, last.estimated_since)
            start = midnight(start.date())
        if self.config.start is not None:
            start = max(start, midnight(self.config.start))
        return Window(start, max(end, start + timedelta(days=1)))

    def fingerprint(self) -> str | None:
        """A cheap token that changes when the source's data may have changed (files); None if unknown."""
        return None

    def is_stale(self, last: LastSync | None, now: datetime | None = None) -> bool:
        if last is None:
            return True
        current = self.fingerprint()
        if current is not None:
            return current != last.fingerprint
        refresh = self.config.refresh if self.config.refresh is not None else self.default_refresh
        return (now or utcnow()) - last.finished_at >= refresh

    def forecast(self, window: Window, filters: dict[str, list[str]] | None = None) -> "Forecast | None":
        """The provider's own forecast of this source's cost over ``window``, where it offers one.

        ``filters`` maps report dimensions (``service``, ``account``, ``tag:team`` ...) to allowed values.
        None means "no forecast available"; budgets then use finops' own method.
        """
        return None



def records_table(records: Iterable[dict[str, Any]]) -> "pa.Table":
    """Build a FOCUS-shaped Arrow table from dicts keyed by FOCUS column names.

    Money and quantities may be ``Decimal``, ``int`` or numeric strings (never floats: they are
    converted through ``repr`` to keep what the provider sent); timestamps ``datetime`` (naive =
    UTC) or ``date``; ``Tags``/``x_Properties`` dicts. Missing keys are null.
    """
    import pyarrow as pa

    from finops_cli.focus.schema import COLUMNS, DATETIME, DECIMAL, KEYVALUE

    rows = list(records)
    present = [c for c in COLUMNS if any(c.name in r for r in rows)] if rows else []
    arrays, fields = [], []
    for col in present:
        values = [r.get(col.name) for r in rows]
        if col.type == DECIMAL:
            arrays.append(pa.array([_decimal_text(v) for v in values], pa.string()))
        elif col.type == DATETIME:
            arrays.append(pa.array([_utc_naive(v) for v in values], pa.timestamp("us")))
        elif col.type == KEYVALUE:
            arrays.append(pa.array(
                [None if v is None else [(str(k), _tag_text(x)) for k, x in v.items()] for v in values],
                pa.map_(pa.string(), pa.string()),
            ))
        elif col.type == "BOOLEAN":
            arrays.append(pa.array(values, pa.bool_()))
        elif col.type == "BIGINT":
            arrays.append(pa.array(values, pa.int64()))
        else:
            arrays.append(pa.array([None if v is None else str(v) for v in values], pa.string()))
        fields.append(col.name)
    return pa.Table.from_arrays(arrays, names=fields) if fields else pa.table({})


def _decimal_text(value: Any) -> str | None:
    if value is None or value == "":
        return None
    if isinstance(value, float):
        return repr(value)
    return str(value)


def _tag_text(value: Any) -> str | None:
    if value is True:
        return "true"
    if value is False:
        return "false"
    return None if value is None else str(value)


def _utc_naive(value: Any) -> datetime | None:
    from datetime import date, timezone

    if value is None:
        return None
    if isinstance(value, datetime):
        return value.astimezone(timezone.utc).replace(tzinfo=None) if value.tzinfo else value
    if isinstance(value, date):
        return midnight(value)
    from finops_cli.periods import parse_moment

    return parse_moment(str(value), "timestamp")


def iter_chunks(items: Iterable[Any]) -> Iterator[Any]:
    """Flatten what ``pull`` yields, turning lists of dict records into tables."""
    for item in items:
        if isinstance(item, list):
            if item:
                yield records_table(item)
        else:
            yield item
