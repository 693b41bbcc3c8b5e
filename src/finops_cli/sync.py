"""Pull sources into the store: the library behind ``finops sync`` and the refresh before reports.

A source that fails is recorded in the ledger and reported; the others still sync, and the
store keeps the failed source's earlier rows.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Callable, Iterable

from finops_cli.config import Config
from finops_cli.errors import FinopsError
from finops_cli.periods import Window, utcnow
from finops_cli.sources import source_type
from finops_cli.sources.base import PullStats, Source, SourceConfig
from finops_cli.store import Store


@dataclass
class SyncResult:
    source: str
    source_type: str
    window: Window | None
    rows: int = 0
    seconds: float = 0.0
    stats: PullStats = field(default_factory=PullStats)
    error: FinopsError | None = None
    skipped: str | None = None  # why nothing was pulled (fresh, disabled)

    @property
    def ok(self) -> bool:
        return self.error is None


def build_source(config: Config, source_config: SourceConfig) -> Source:
    cls = source_type(source_config.type).load()
    keys = list(dict.fromkeys(key for keys in config.allocation.dimensions.values() for key in keys))
    return cls(source_config, base_dir=config.base_dir, tag_keys=keys)


def selected(config: Config, names: Iterable[str] | None) -> list[SourceConfig]:
    names = list(names or [])
    if names:
        return [config.source(n) for n in names]
    return [s for s in config.sources if s.enabled]


def sync_sources(
    config: Config,
    store: Store,
    names: Iterable[str] | None = None,
    window: Window | None = None,
    *,
    only_stale: bool = False,
    on_start: Callable[[str, Window | None], None] | None = None,
    on_done: Callable[[SyncResult], None] | None = None,
    now: datetime | None = None,
) -> list[SyncResult]:
    """Sync each selected source over ``window`` (None: each source's own incremental window)."""
    results = []
    for source_config in selected(config, names):
        source = build_source(config, source_config)
        last = store.last_sync(source.name)
        if only_stale and not source.is_stale(last, now):
            result = SyncResult(source.name, source_config.type, None, skipped="fresh")
            results.append(result)
            if on_done:
                on_done(result)
            continue
        pull_window = window if window is not None else source.default_window(last, now)
        if on_start:
            on_start(source.name, pull_window)
        results.append(_sync_one(store, source, pull_window, on_done))
    return results


def _sync_one(store: Store, source: Source, window: Window | None, on_done) -> SyncResult:
    import time

    result = SyncResult(source.name, source.config.type, window, stats=source.stats)
    began = time.monotonic()
    try:
        fingerprint = source.fingerprint()
        outcome = store.replace(source.name, source.config.type, window, source.pull(window),
                                source.stats, fingerprint)
        result.rows = outcome.rows
    except FinopsError as exc:
        result.error = exc
    result.seconds = time.monotonic() - began
    if on_done:
        on_done(result)
    return result


def data_age(store: Store, names: Iterable[str]) -> dict[str, datetime | None]:
    """When each source last synced successfully (None: never)."""
    out = {}
    for name in names:
        last = store.last_sync(name)
        out[name] = last.finished_at if last else None
    return out


def age_text(moment: datetime | None, now: datetime | None = None) -> str:
    if moment is None:
        return "never synced"
    seconds = ((now or utcnow()) - moment).total_seconds()
    if seconds < 90:
        return "just now"
    if seconds < 5400:
        return f"{seconds / 60:.0f} minutes ago"
    if seconds < 2 * 86400:
        return f"{seconds / 3600:.0f} hours ago"
    return f"{seconds / 86400:.0f} days ago"
