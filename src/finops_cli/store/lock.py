"""One process at a time in a store: an advisory lock file beside the DuckDB file.

DuckDB itself refuses a second writer process with an error; overlapping cron jobs should
wait their turn instead, and say whom they wait for.
"""

from __future__ import annotations

import fcntl
import os
import time
from pathlib import Path
from typing import Callable

from finops_cli.errors import StoreError


class StoreLock:
    def __init__(self, path: Path, timeout: float, on_wait: Callable[[str], None] | None = None):
        self.path = Path(str(path) + ".lock")
        self.timeout = timeout
        self.on_wait = on_wait
        self._fd: int | None = None

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        deadline = time.monotonic() + self.timeout
        told = False
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    holder = _read_holder(fd)
                    os.close(fd)
                    raise StoreError(
                        f"the store {self.path.with_suffix('')} is busy: another finops process{holder} "
                        f"held it for more than {self.timeout:g} s",
                        hint="wait for it to finish, or raise --lock-timeout / FINOPS_LOCK_TIMEOUT",
                    ) from None
                if not told and self.on_wait:
                    self.on_wait(f"waiting for another finops process{_read_holder(fd)} to release the store")
                    told = True
                time.sleep(0.1)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None


def _read_holder(fd: int) -> str:
    try:
        pid = os.pread(fd, 32, 0).decode().strip()
    except OSError:
        return ""
    return f" (pid {pid})" if pid.isdigit() else ""
