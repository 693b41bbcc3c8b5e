"""Bad budget configs are rejected with the file, line and key path; good ones load with defaults."""

from __future__ import annotations

from datetime import datetime

import pytest
from conftest import write_config

from finops_cli.analyses.budgets import period_window
from finops_cli.budgets.config import BudgetConfig

HEAD = """
sources: []
notifications:
  chat: {type: slack, webhook_url: "${SLACK_URL}"}
budgets:
  - name: org
    amount: 1000
    currency: USD
"""


@pytest.fixture(autouse=True)
def slack_env(monkeypatch):
    monkeypatch.setenv("SLACK_URL", "http://127.0.0.1:9/hook")


@pytest.mark.parametrize("budget, where, message", [
    ("{name: a, amount: -5, currency: USD}", "budgets[1].amount", "greater than or equal to 0"),
    ("{name: a, amount: 5, currency: USD, scope: {squad: x}}", "budgets[1].scope.squad", "unknown dimension 'squad'"),
    ("{name: a, amount: 5, currency: USD, parent: nobody}", "budgets[1].parent", "unknown parent budget 'nobody'"),
    ("{name: a, amount: 5, currency: USD, notify: [pager]}", "budgets[1].notify",
     "unknown notification channel 'pager' (channels: chat)"),
    ("{name: a, amount: 5, currency: USD, thresholds: [{percent: 80, notify: [mail]}]}",
     "budgets[1].thresholds[0].notify", "unknown notification channel 'mail'"),
    ("{name: a, amount: 5, currency: USD, thresholds: [{percent: 80, amount: 4}]}", "budgets[1].thresholds[0]",
     "exactly one of 'percent' or 'amount'"),
    ("{name: a, amount: 5, currency: USD, thresholds: [{percent: 80, severity: fatal}]}",
     "budgets[1].thresholds[0].severity", "'info', 'warning', 'critical' or 'emergency'"),
    ("{name: a, amount: 5, currency: USD, period: fortnightly}", "budgets[1].period", "'daily', 'weekly'"),
    ("{name: a, amount: 5, currency: USD, limit: 3}", "budgets[1]", "unknown key 'limit' in budgets[1]"),
    ("{name: org, amount: 5, currency: USD}", "budgets[1].name", "duplicate budget name 'org'"),
    ("{name: a, amount: 5, currency: USD, period: monthly, start: 2026-04-15}", "budgets[1]",
     "must be the first day of a month"),
])
def test_bad_budget_is_rejected_with_its_key_path(tmp_path, finops, budget, where, message):
    config = write_config(tmp_path, HEAD + f"  - {budget}\n")
    result = finops("--config", config, "config", "validate")
    assert result.exit_code == 2
    assert f"{config}:9: {where}" in result.stderr, result.stderr
    assert message in result.stderr


def test_cycle_in_the_hierarchy_is_rejected(tmp_path, finops):
    config = write_config(tmp_path, HEAD + """  - {name: a, amount: 5, currency: USD, parent: b}
  - {name: b, amount: 5, currency: USD, parent: a}
""")
    result = finops("--config", config, "budget", "check")
    assert result.exit_code == 2
    assert f"{config}:9: budgets[1].parent: cycle in the budget hierarchy: a -> b -> a" in result.stderr


def test_secrets_must_come_from_the_environment(tmp_path, finops):
    config = write_config(tmp_path, """
notifications:
  pager: {type: pagerduty, routing_key: abcdef0123456789}
""")
    result = finops("--config", config, "config", "validate")
    assert result.exit_code == 2
    assert f"{config}:3: notifications.pager.routing_key: routing_key is a secret" in result.stderr
    assert "${PAGER_ROUTING_KEY}" in result.stderr
    assert "abcdef0123456789" not in result.stderr


def test_bad_channel_key_names_the_channel(tmp_path, finops):
    config = write_config(tmp_path, """
notifications:
  mail:
    type: email
    host: smtp.example.com
    port: 99999
    from: a@example.com
    to: b@example.com
""")
    result = finops("--config", config, "config", "validate")
    assert result.exit_code == 2
    assert f"{config}:6: notifications.mail.port: input should be less than or equal to 65535" in result.stderr


def test_defaults_are_the_70_90_100_ladder(tmp_path, finops):
    config = write_config(tmp_path, HEAD)
    assert finops("--config", config, "config", "validate").exit_code == 0
    shown = finops("--config", config, "config", "show").stdout
    assert "percent: '70'" in shown and "severity: emergency" in shown
    assert "127.0.0.1:9/hook" not in shown


@pytest.mark.parametrize("period, start, now, window", [
    ("daily", None, "2026-11-15T23:59:00", ("2026-11-15", "2026-11-16")),
    ("weekly", None, "2026-11-15T12:00:00", ("2026-11-09", "2026-11-16")),  # ISO weeks: Monday to Monday
    ("weekly", "2026-11-04", "2026-11-15T12:00:00", ("2026-11-11", "2026-11-18")),  # Wednesday weeks
    ("monthly", None, "2026-12-31T23:00:00", ("2026-12-01", "2027-01-01")),
    ("quarterly", None, "2026-11-15T00:00:00", ("2026-10-01", "2027-01-01")),
    ("yearly", None, "2026-11-15T00:00:00", ("2026-01-01", "2027-01-01")),
    ("yearly", "2025-04-01", "2026-03-31T12:00:00", ("2025-04-01", "2026-04-01")),  # a fiscal year
    ("quarterly", "2026-02-01", "2026-01-31T12:00:00", None),  # not started yet
])
def test_periods_are_calendar_aligned_utc_end_exclusive(period, start, now, window):
    budget = BudgetConfig(name="b", amount=1, currency="usd", period=period, start=start)
    got = period_window(budget, datetime.fromisoformat(now))
    if window is None:
        assert got is None
    else:
        assert (got.start.date().isoformat(), got.end.date().isoformat()) == window
