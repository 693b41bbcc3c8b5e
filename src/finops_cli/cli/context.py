"""What every command shares: the global options, config loading, the store, the two consoles."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from functools import lru_cache
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.console import Console

    from finops_cli.config import Config
    from finops_cli.store import Store


@lru_cache(maxsize=None)
def stderr() -> "Console":
    """Messages, progress and warnings: never mixed into the data on stdout."""
    from rich.console import Console

    return Console(stderr=True, highlight=False, soft_wrap=True)


def interactive() -> bool:
    return sys.stderr.isatty() and not os.environ.get("CI")


def stdout_width() -> int | None:
    """Rich wraps at 80 columns when stdout is not a terminal; reports piped to a file should not wrap."""
    return None if sys.stdout.isatty() else 200


@dataclass
class AppContext:
    config_path: str | None = None
    store_path: str | None = None
    lock_timeout: float | None = None
    debug: bool = False
    _config: Any = field(default=None, repr=False)

    def config(self) -> "Config":
        if self._config is None:
            from finops_cli.config import load_config

            self._config = load_config(self.config_path)
        return self._config

    def open_store(self, config: "Config | None" = None) -> "Store":
        from finops_cli.store import Store

        from finops_cli.analyses.dimensions import derived_columns

        config = config or self.config()
        store = Store.open(config.store_path(self.store_path), lock_timeout=self.lock_timeout,
                           on_wait=lambda msg: stderr().print(f"finops: {msg}", markup=False))
        try:
            store.use_derived(derived_columns(config.allocation))
        except BaseException:
            store.close()
            raise
        return store


def note(message: str) -> None:
    stderr().print(message, markup=False)


def warn(message: str) -> None:
    from rich.markup import escape

    stderr().print(f"[yellow]warning:[/yellow] {escape(message)}")
