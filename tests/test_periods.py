"""Windows are UTC, start inclusive, end exclusive."""

from datetime import datetime

import pytest

from finops_cli.errors import UsageError
from finops_cli.periods import last_window, parse_duration, period_window, resolve_window


def test_periods():
    assert period_window("2024-02").end == datetime(2024, 3, 1)
    assert period_window("2024-Q4").start == datetime(2024, 10, 1) and period_window("2024-Q4").end == datetime(2025, 1, 1)
    assert period_window("2024").days == 366
    assert period_window("2024-02-29").days == 1


def test_last_includes_today():
    now = datetime(2024, 3, 15, 13, 30)
    window = last_window("7d", now)
    assert window.start == datetime(2024, 3, 9) and window.end == datetime(2024, 3, 16)
    assert last_window("3m", now).start == datetime(2024, 1, 1)


def test_offsets_are_converted_to_utc():
    window = resolve_window("2024-03-01T02:00:00+02:00", "2024-03-02")
    assert window.start == datetime(2024, 3, 1, 0, 0)


@pytest.mark.parametrize("text", ["6x", "", "-3d", "1mo"])
def test_bad_durations(text):
    with pytest.raises(UsageError):
        parse_duration(text)
