"""The embedded store: one DuckDB file holding FOCUS rows and the ledger of every sync.

Invariants:
* a sync of source S over [start, end) replaces exactly S's rows whose ChargePeriodStart
  lies in that window, in one transaction: re-syncing never double-counts, and a sync
  that fails or is killed half-way leaves the previous rows as they were;
* every sync leaves a ledger row (source, window, rows, times, status, error, API requests);
* one process at a time (``StoreLock``); others wait, then fail with a clear message.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Callable, Iterable

import duckdb

from finops_cli.errors import FinopsError, SourceError, StoreError
from finops_cli.focus import normalise
from finops_cli.focus.schema import create_table_sql
from finops_cli.periods import Window, utcnow
from finops_cli.sources.base import FileScan, LastSync, PullStats, iter_chunks
from finops_cli.store.lock import StoreLock

SCHEMA_VERSION = 2

LEDGER_DDL = """
CREATE SEQUENCE IF NOT EXISTS ledger_ids START 1;
CREATE TABLE IF NOT EXISTS ledger (
  load_id BIGINT PRIMARY KEY DEFAULT nextval('ledger_ids'),
  source VARCHAR NOT NULL,
  source_type VARCHAR NOT NULL,
  window_start TIMESTAMP,           -- NULL: the whole source was replaced
  window_end TIMESTAMP,
  status VARCHAR NOT NULL,          -- running | ok | failed | interrupted
  rows BIGINT,
  started_at TIMESTAMP NOT NULL,
  finished_at TIMESTAMP,
  error VARCHAR,
  requests BIGINT DEFAULT 0,
  request_cost DECIMAL(18,4) DEFAULT 0,
  bytes_processed BIGINT DEFAULT 0,
  fingerprint VARCHAR,
  pid INTEGER,
  notes VARCHAR,
  estimated_since TIMESTAMP         -- earliest day the provider marked provisional: re-pulled next time
);
CREATE TABLE IF NOT EXISTS meta (key VARCHAR PRIMARY KEY, value VARCHAR);
CREATE TABLE IF NOT EXISTS state (
  scope VARCHAR, key VARCHAR, value VARCHAR, updated_at TIMESTAMP, PRIMARY KEY (scope, key)
);
"""


def default_store_path() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    return Path(base) / "finops" / "finops.duckdb"


@dataclass
class SyncOutcome:
    load_id: int
    rows: int
    started_at: datetime
    finished_at: datetime


class Store:
    """Open with ``Store.open(path)`` as a context manager; holds the lock while open."""

    def __init__(self, path: Path, con: duckdb.DuckDBPyConnection, lock: StoreLock | None):
        self.path = path
        self.con = con
        self._lock = lock
        self.derived = None  # DerivedColumns, set by use_derived()

    @classmethod
    def open(cls, path: Path, *, lock_timeout: float | None = None,
             on_wait: Callable[[str], None] | None = None) -> "Store":
        path = Path(path).expanduser()
        if lock_timeout is None:
            lock_timeout = float(os.environ.get("FINOPS_LOCK_TIMEOUT", "300"))
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"cannot create the store folder {path.parent}: {exc.strerror or exc}") from exc
        lock = StoreLock(path, lock_timeout, on_wait)
        lock.acquire()
        try:
            con = duckdb.connect(str(path))
            con.execute("SET TimeZone = 'UTC'")
            store = cls(path, con, lock)
            store._migrate()
        except duckdb.Error as exc:
            lock.release()
            raise StoreError(f"cannot open the store {path}: {_first_line(exc)}") from exc
        except BaseException:
            lock.release()
            raise
        return store

    def close(self) -> None:
        try:
            self.con.close()
        finally:
            if self._lock:
                self._lock.release()
                self._lock = None

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _migrate(self) -> None:
        self.con.execute(create_table_sql("costs"))
        self.con.execute(LEDGER_DDL)
        row = self.con.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        if row is not None and int(row[0]) > SCHEMA_VERSION:
            raise StoreError(f"the store {self.path} was written by a newer finops (schema {row[0]})",
                             hint="upgrade finops, or point --store at another file")
        if row is not None and int(row[0]) < 2:
            self.con.execute("ALTER TABLE costs ADD COLUMN IF NOT EXISTS x_MissingTags USMALLINT")
            self.con.execute("ALTER TABLE ledger ADD COLUMN IF NOT EXISTS estimated_since TIMESTAMP")
        if row is None or int(row[0]) != SCHEMA_VERSION:  # write only when needed: no WAL, no checkpoint
            self.con.execute("INSERT OR REPLACE INTO meta VALUES ('schema_version', ?)", [str(SCHEMA_VERSION)])
        # We hold the lock, so a sync still marked running belongs to a process that died.
        if self.con.execute("SELECT count(*) FROM ledger WHERE status = 'running'").fetchone()[0]:
            self.con.execute(
                "UPDATE ledger SET status = 'interrupted', error = 'the process ended before the sync finished' "
                "WHERE status = 'running'"
            )

    # -- columns derived from the allocation settings --------------------------------------
    def use_derived(self, derived) -> None:
        """Keep x_MissingTags in step with the allocation settings; re-derive every row when they changed."""
        self.derived = derived
        row = self.con.execute("SELECT value FROM meta WHERE key = 'derived_fingerprint'").fetchone()
        if row and row[0] == derived.fingerprint:
            return
        self.con.begin()
        self.con.execute(f"UPDATE costs SET x_MissingTags = {derived.missing_tags_sql}")
        self.con.execute("INSERT OR REPLACE INTO meta VALUES ('derived_fingerprint', ?)", [derived.fingerprint])
        self.con.commit()

    def derived_fingerprint(self) -> str | None:
        row = self.con.execute("SELECT value FROM meta WHERE key = 'derived_fingerprint'").fetchone()
        return row[0] if row else None

    # -- writing ---------------------------------------------------------------------------
    def replace(
        self,
        source: str,
        source_type: str,
        window: Window | None,
        chunks: Iterable[Any],
        stats: PullStats,
        fingerprint: str | None = None,
    ) -> SyncOutcome:
        """Replace ``source``'s rows in ``window`` (None: all of them) with ``chunks``, atomically."""
        started = utcnow()
        load_id = self.con.execute(
            "INSERT INTO ledger (source, source_type, window_start, window_end, status, started_at, pid) "
            "VALUES (?, ?, ?, ?, 'running', ?, ?) RETURNING load_id",
            [source, source_type, window and window.start, window and window.end, started, os.getpid()],
        ).fetchone()[0]
        params = {"source": source, "source_type": source_type, "load_id": load_id}
        try:
            self.con.begin()
            if self.derived is None:  # rows written without the derived columns: re-derive on next use
                self.con.execute("DELETE FROM meta WHERE key = 'derived_fingerprint'")
            if window is None:
                self.con.execute("DELETE FROM costs WHERE x_SourceName = ?", [source])
            else:
                self.con.execute(
                    "DELETE FROM costs WHERE x_SourceName = ? AND ChargePeriodStart >= ? AND ChargePeriodStart < ?",
                    [source, window.start, window.end],
                )
            rows = sum(self._insert(chunk, window, params) for chunk in iter_chunks(chunks))
            finished = utcnow()
            self.con.execute(
                "UPDATE ledger SET status = 'ok', rows = ?, finished_at = ?, requests = ?, request_cost = ?, "
                "bytes_processed = ?, fingerprint = ?, notes = ?, estimated_since = ? WHERE load_id = ?",
                [rows, finished, stats.requests, stats.request_cost, stats.bytes_processed, fingerprint,
                 "; ".join(stats.notes) or None, _earliest(stats.estimated_days), load_id],
            )
            self.con.commit()
        except BaseException as exc:
            self._rollback()
            error = _describe(exc, source)
            self.con.execute(
                "UPDATE ledger SET status = 'failed', finished_at = ?, error = ?, requests = ?, request_cost = ?, "
                "bytes_processed = ? WHERE load_id = ?",
                [utcnow(), str(error), stats.requests, stats.request_cost, stats.bytes_processed, load_id],
            )
            if isinstance(exc, (FinopsError, KeyboardInterrupt)) or not isinstance(exc, Exception):
                raise
            raise error from exc
        return SyncOutcome(load_id, rows, started, finished)

    def _rollback(self) -> None:
        try:
            self.con.rollback()
        except duckdb.Error:
            pass

    def _insert(self, chunk: Any, window: Window | None, params: dict) -> int:
        relation, label, handle = self._relation(chunk)
        try:
            types = dict(zip(*self._describe(relation)))
            where = ""
            bound = dict(params)
            if window is not None:
                where = "WHERE ChargePeriodStart >= $start AND ChargePeriodStart < $end"
                bound.update(start=window.start, end=window.end)
            derive = f" REPLACE ({self.derived.missing_tags_sql} AS x_MissingTags)" if self.derived else ""
            sql = (f"INSERT INTO costs SELECT *{derive} FROM (SELECT\n  {normalise.projection(types)}\n"
                   f"FROM {relation}) {where}")
            try:
                return self.con.execute(sql, bound).fetchone()[0]  # the number of rows inserted
            except duckdb.Error as exc:
                self._rollback()  # an aborted transaction cannot run the diagnosis queries
                raise SourceError(params["source"], self._diagnose(relation, types, label, exc)) from exc
        finally:
            if handle:
                self.con.unregister(handle)

    def _relation(self, chunk: Any) -> tuple[str, str, str | None]:
        if isinstance(chunk, FileScan):
            path = chunk.path.replace("'", "''")
            if chunk.format == "parquet":
                return f"read_parquet('{path}')", chunk.path, None
            return (f"read_csv('{path}', header=true, all_varchar=true, nullstr=['NULL','null'])",
                    chunk.path, None)
        handle = f"_chunk_{id(chunk)}"
        self.con.register(handle, chunk)
        return normalise.quote(handle), "the data the source returned", handle

    def _describe(self, relation: str) -> tuple[list[str], list[str]]:
        rel = self.con.sql(f"SELECT * FROM {relation} LIMIT 0")
        return rel.columns, [str(t) for t in rel.types]

    def _diagnose(self, relation: str, types: dict[str, str], label: str, exc: Exception) -> str:
        """Find the first row and column that cannot be converted, for a message a person can act on."""
        for focus_name, raw, expr in normalise.checked_columns(types):
            ref = normalise.quote(raw)
            try:
                bad = self.con.execute(
                    f"SELECT n, CAST({ref} AS VARCHAR) FROM (SELECT row_number() OVER () AS n, {ref}, "
                    f"try({expr}) AS v FROM {relation}) WHERE v IS NULL AND NULLIF(TRIM(CAST({ref} AS VARCHAR)), '') "
                    f"IS NOT NULL LIMIT 1"
                ).fetchone()
            except duckdb.Error:
                continue
            if bad:
                return f"{label}: data row {bad[0]}, column {raw}: {bad[1]!r} is not {_expected(focus_name)}"
        return f"{label}: {_first_line(exc)}"

    # -- reading ---------------------------------------------------------------------------
    def last_sync(self, source: str) -> LastSync | None:
        row = self.con.execute(
            "SELECT window_start, window_end, finished_at, fingerprint, estimated_since FROM ledger "
            "WHERE source = ? AND status = 'ok' ORDER BY load_id DESC LIMIT 1",
            [source],
        ).fetchone()
        return LastSync(*row) if row else None

    def ledger(self, limit: int = 50, source: str | None = None) -> list[dict]:
        where = "WHERE source = ?" if source else ""
        rel = self.con.execute(
            f"SELECT * FROM ledger {where} ORDER BY load_id DESC LIMIT {int(limit)}", [source] if source else []
        )
        names = [d[0] for d in rel.description]
        return [dict(zip(names, row)) for row in rel.fetchall()]

    # -- small key/value state for sources and analyses (cursors, sent alerts ...) ------
    def get_state(self, scope: str, key: str) -> str | None:
        row = self.con.execute("SELECT value FROM state WHERE scope = ? AND key = ?", [scope, key]).fetchone()
        return row[0] if row else None

    def set_state(self, scope: str, key: str, value: str) -> None:
        self.con.execute(
            "INSERT OR REPLACE INTO state VALUES (?, ?, ?, ?)", [scope, key, value, utcnow()]
        )


def _earliest(days) -> datetime | None:
    from datetime import date

    from finops_cli.periods import midnight

    if not days:
        return None
    first = min(days)
    return midnight(first) if isinstance(first, date) and not isinstance(first, datetime) else first


def _expected(column: str) -> str:
    from finops_cli.focus.schema import BY_NAME, DATETIME, DECIMAL, KEYVALUE

    kind = BY_NAME[column].type
    return {
        DECIMAL: "a decimal number",
        DATETIME: "a date-time (expected e.g. 2024-01-01T00:00:00Z)",
        KEYVALUE: "a JSON object of tags",
    }.get(kind, f"a valid {column}")


def _describe(exc: BaseException, source: str) -> Exception:
    if isinstance(exc, FinopsError):
        return exc
    if isinstance(exc, KeyboardInterrupt):
        return SourceError(source, "interrupted")
    if isinstance(exc, duckdb.Error):
        return SourceError(source, _first_line(exc))
    return SourceError(source, f"{type(exc).__name__}: {exc}")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
