"""The embedded DuckDB store (see store.py)."""

from finops_cli.store.store import Store, SyncOutcome, default_store_path

__all__ = ["Store", "SyncOutcome", "default_store_path"]
