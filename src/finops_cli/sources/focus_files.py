"""FOCUS export files: ``type: focus`` with ``path`` a file, a folder or a glob of CSV/Parquet.

Reads FOCUS 1.0 to 1.3 as vendors write them (AWS Data Exports, Azure Cost Management
exports, the FinOps Foundation sample): literal ``NULL``, timestamps without ``T``/``Z``,
extra non-FOCUS columns (dropped), a UTF-8 BOM, CRLF line ends. DuckDB reads the files
itself, so a file larger than memory streams into the store.
"""

from __future__ import annotations

import glob
import hashlib
import os
from pathlib import Path
from typing import Iterator, Literal

from pydantic import Field

from finops_cli.errors import SourceError
from finops_cli.focus.schema import BY_LOWER, PROVIDER_COLUMNS, RENAMED, REQUIRED_IN_FILES
from finops_cli.periods import Window
from finops_cli.sources.base import FileScan, LastSync, Source, SourceConfig

SUFFIXES = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet", ".gz": "csv"}


class FocusFileConfig(SourceConfig):
    type: Literal["focus"]
    path: str | list[str] = Field(description="a file, a folder or a glob (relative to the config file)")


class FocusFileSource(Source):
    config_class = FocusFileConfig

    def files(self) -> list[Path]:
        patterns = self.config.path if isinstance(self.config.path, list) else [self.config.path]
        found: list[Path] = []
        for pattern in patterns:
            base = Path(os.path.expanduser(pattern))
            if not base.is_absolute() and self.base_dir is not None:
                base = Path(self.base_dir) / base
            if base.is_dir():
                matches = sorted(p for p in base.rglob("*") if p.is_file() and _format_of(p))
            elif any(ch in str(base) for ch in "*?["):
                matches = sorted(Path(p) for p in glob.glob(str(base), recursive=True) if _format_of(Path(p)))
            elif base.exists():
                matches = [base]
            else:
                raise SourceError(self.name, f"path {str(base)!r} does not exist")
            if not matches:
                raise SourceError(self.name, f"no CSV or Parquet files match {str(base)!r}")
            found.extend(matches)
        return found

    def fingerprint(self) -> str | None:
        try:
            files = self.files()
        except SourceError:
            return "missing"
        digest = hashlib.sha256()
        for path in files:
            stat = path.stat()
            digest.update(f"{path}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
        return digest.hexdigest()[:32]

    def default_window(self, last: LastSync | None, now=None) -> Window | None:
        return None  # the files are the whole truth of this source: replace all of its rows

    def pull(self, window: Window | None) -> Iterator[FileScan]:
        for path in self.files():
            fmt = _format_of(path)
            columns = _header(path, fmt, self.name)
            _check_columns(path, columns, self.name)
            self.stats.bytes_processed += path.stat().st_size
            yield FileScan(str(path), fmt, tuple(columns))


def _format_of(path: Path) -> str | None:
    name = path.name.lower()
    if name.endswith(".csv.gz") or name.endswith(".csv"):
        return "csv"
    if name.endswith(".parquet") or name.endswith(".pq"):
        return "parquet"
    return None


def _header(path: Path, fmt: str, source: str) -> list[str]:
    import duckdb

    try:
        with duckdb.connect() as con:
            if fmt == "parquet":
                rel = con.sql("SELECT * FROM read_parquet(?) LIMIT 0", params=[str(path)])
            else:
                rel = con.sql("SELECT * FROM read_csv(?, header=true, all_varchar=true) LIMIT 0",
                              params=[str(path)])
            return [c.lstrip("\ufeff") for c in rel.columns]
    except duckdb.Error as exc:
        raise SourceError(source, f"cannot read {path}: {_first_line(exc)}") from exc
    except OSError as exc:
        raise SourceError(source, f"cannot read {path}: {exc.strerror or exc}") from exc


def _check_columns(path: Path, columns: list[str], source: str) -> None:
    present = {RENAMED.get(c, c).lower() for c in columns}
    missing = [c for c in REQUIRED_IN_FILES if c.lower() not in present]
    if not any(p.lower() in present for p in PROVIDER_COLUMNS):
        missing.append(" or ".join(PROVIDER_COLUMNS))
    if missing:
        raise SourceError(
            source,
            f"{path} is not a FOCUS file: missing mandatory column(s) {', '.join(missing)}",
            hint="finops reads FOCUS 1.0-1.3 Cost and Usage exports; column names are case-insensitive",
        )
    known = [c for c in columns if RENAMED.get(c, c).lower() in BY_LOWER]
    if not known:
        raise SourceError(source, f"{path} has no FOCUS columns")


def _first_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
