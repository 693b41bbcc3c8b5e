"""The one error family of finops, and the exit codes it maps to.

Library code raises these; the CLI's single handler (``cli/main.py``) prints the
message on stderr as one line and exits with ``exit_code``. Nothing else in the
project decides an exit code.
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """Documented exit codes, the same for every command."""

    OK = 0
    CHECK_FAILED = 1  # a budget or tag policy check failed
    USAGE = 2  # bad command line or configuration
    SOURCE = 3  # a source could not be read (network, credentials, file)
    INTERRUPTED = 130


class FinopsError(Exception):
    """Base class: a message meant for the user, and the exit code that goes with it."""

    exit_code: ExitCode = ExitCode.USAGE

    def __init__(self, message: str, *, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message


class UsageError(FinopsError):
    """A bad option or argument on the command line."""

    exit_code = ExitCode.USAGE


class ConfigError(FinopsError):
    """The configuration file is missing, malformed or invalid."""

    exit_code = ExitCode.USAGE


class MissingDependency(FinopsError):
    """An optional extra (a cloud SDK) is not installed."""

    exit_code = ExitCode.USAGE

    def __init__(self, what: str, extra: str, module: str):
        super().__init__(
            f"{what} needs the {module!r} package, which is not installed.",
            hint=f'install it with: pip install "finops-cli[{extra}]"',
        )
        self.extra = extra


class SourceError(FinopsError):
    """A source could not be read: network, credentials, throttling, a bad file."""

    exit_code = ExitCode.SOURCE

    def __init__(self, source: str, message: str, *, hint: str | None = None):
        super().__init__(f"source {source!r}: {message}", hint=hint)
        self.source = source


class StoreError(FinopsError):
    """The local store could not be opened or written (locked, corrupt, unwritable)."""

    exit_code = ExitCode.SOURCE


class CheckFailed(FinopsError):
    """A check (budget, tag policy) ran and failed; the report itself was printed."""

    exit_code = ExitCode.CHECK_FAILED


def require(module: str, *, extra: str, what: str):
    """Import an optional SDK module, or raise MissingDependency with the exact install line."""
    import importlib

    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name and not module.startswith(exc.name.split(".")[0]):
            raise  # the SDK is there but something it needs is broken: not a missing extra
        raise MissingDependency(what, extra, module) from exc
