"""`finops budget check` end to end: real receivers on 127.0.0.1 get exactly the expected alerts."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
from conftest import write_config
from fakes.focus_days import row, write_daily
from fakes.receivers import HttpReceiver, SmtpReceiver

SLACK_SECRET = "T000/B000/XXXXSLACKSECRETXXXX"
PD_KEY = "R0UT1NGKEY0000000000000000000000"
HOOK_TOKEN = "Bearer hook-token-1234"


@pytest.fixture
def receivers(tmp_path, monkeypatch):
    slack, pagerduty, hook = HttpReceiver("slack").start(), HttpReceiver("pagerduty").start(), \
        HttpReceiver("webhook").start()
    smtp = SmtpReceiver().start(tmp_path)
    monkeypatch.setenv("SLACK_WEBHOOK_URL", f"{slack.url}/services/{SLACK_SECRET}")
    monkeypatch.setenv("PD_ROUTING_KEY", PD_KEY)
    monkeypatch.setenv("PD_URL", f"{pagerduty.url}/v2/enqueue")
    monkeypatch.setenv("HOOK_URL", f"{hook.url}/finops")
    monkeypatch.setenv("HOOK_AUTH", HOOK_TOKEN)
    monkeypatch.setenv("SMTP_PORT", str(smtp.port))
    monkeypatch.setenv("SMTP_USER", smtp.user)
    monkeypatch.setenv("SMTP_PASSWORD", smtp.password)
    monkeypatch.setenv("SMTP_CA", str(smtp.ca_file))
    yield {"slack": slack, "pd": pagerduty, "hook": hook, "mail": smtp}
    for server in (slack, pagerduty, hook, smtp):
        server.stop()


CHANNELS = """
notifications:
  chat:
    type: slack
    webhook_url: ${SLACK_WEBHOOK_URL}
  pager:
    type: pagerduty
    routing_key: ${PD_ROUTING_KEY}
    url: ${PD_URL}
  hook:
    type: webhook
    url: ${HOOK_URL}
    headers: {Authorization: "${HOOK_AUTH}"}
  mail:
    type: email
    host: 127.0.0.1
    port: ${SMTP_PORT}
    username: ${SMTP_USER}
    password: ${SMTP_PASSWORD}
    ca_file: ${SMTP_CA}
    from: finops@example.com
    to: [finance@example.com]
"""


def setup(folder: Path, *, amount: int = 1300, notify: str = "[chat, pager, hook, mail]") -> Path:
    return write_config(folder, f"""
store: store.duckdb
sources:
  - name: files
    type: focus
    path: data
{CHANNELS}
budgets:
  - name: search
    scope: {{team: search}}
    amount: {amount}
    currency: USD
    notify: {notify}
""")


def spend_until(folder: Path, last: date, per_day: int = 100, extra: list | None = None) -> None:
    """Team search spends ``per_day`` USD a day from October 1st to ``last``."""
    write_daily(folder / "data" / "search.csv", date(2026, 10, 1), last, lambda d: per_day, {"team": "search"},
                rows=extra)


def counts(receivers) -> dict[str, int]:
    return {name: len(r.received if name != "mail" else r.messages) for name, r in receivers.items()}


def test_each_crossing_alerts_every_channel_once(tmp_path, finops, receivers, monkeypatch):
    config = setup(tmp_path)
    spend_until(tmp_path, date(2026, 11, 10))  # 1,000 USD of 1,300: 76.9 %
    monkeypatch.setenv("FINOPS_NOW", "2026-11-10T12:00:00Z")

    first = finops("--config", config, "budget", "check")
    assert first.exit_code == 1, first.stderr
    assert counts(receivers) == {"slack": 1, "pd": 1, "hook": 1, "mail": 1}
    slack = receivers["slack"].received[0]
    assert slack.path == f"/services/{SLACK_SECRET}"
    assert "budget search 2026-11" in slack.body["text"] and "70% actual" in slack.body["text"]
    assert "1,000.00 USD is 76.9% of 1,300.00 USD" in slack.body["text"]
    event = receivers["pd"].received[0].body
    assert event["routing_key"] == PD_KEY and event["event_action"] == "trigger"
    assert event["dedup_key"] == "finops/budget/search/2026-11-01/actual:70%"
    assert event["payload"]["severity"] == "warning" and event["payload"]["component"] == "search"
    hook = receivers["hook"].received[0]
    assert hook.headers["Authorization"] == HOOK_TOKEN
    assert hook.body["spend"] == "1000.00" and hook.body["limit"] == "910.00" and hook.body["event"] == "trigger"
    mail = receivers["mail"].messages[0]
    assert mail["tls"] and mail["authenticated"] and mail["to"] == ["finance@example.com"]
    assert "Subject: [finops warning] budget search 2026-11: 70% actual" in mail["data"]
    assert "sent trigger to chat (slack)" in first.stderr

    again = finops("--config", config, "budget", "check")
    assert again.exit_code == 1
    assert counts(receivers) == {"slack": 1, "pd": 1, "hook": 1, "mail": 1}, "a second run must send nothing new"

    spend_until(tmp_path, date(2026, 11, 12))  # 1,200 USD: 92.3 %, the 90 % threshold
    monkeypatch.setenv("FINOPS_NOW", "2026-11-12T12:00:00Z")
    third = finops("--config", config, "budget", "check")
    assert third.exit_code == 1
    assert counts(receivers) == {"slack": 2, "pd": 2, "hook": 2, "mail": 2}
    assert "90% actual" in receivers["slack"].received[1].body["text"]
    assert receivers["pd"].received[1].body["payload"]["severity"] == "error"  # critical -> PagerDuty error

    # A credit takes spend back under 70 %: PagerDuty's two incidents resolve, nothing else is sent.
    credit = [row(date(2026, 11, 12), "-600", {"team": "search"})]
    spend_until(tmp_path, date(2026, 11, 12), extra=credit)
    fourth = finops("--config", config, "budget", "check")
    assert fourth.exit_code == 0, fourth.stderr
    assert counts(receivers) == {"slack": 2, "pd": 4, "hook": 2, "mail": 2}
    resolves = [r.body for r in receivers["pd"].received[2:]]
    assert {r["event_action"] for r in resolves} == {"resolve"}
    assert {r["dedup_key"] for r in resolves} == {"finops/budget/search/2026-11-01/actual:70%",
                                                 "finops/budget/search/2026-11-01/actual:90%"}
    assert finops("--config", config, "budget", "check").exit_code == 0
    assert counts(receivers)["pd"] == 4


def test_secrets_never_reach_the_output(tmp_path, finops, receivers, monkeypatch):
    config = setup(tmp_path, notify="[chat, pager]")
    spend_until(tmp_path, date(2026, 11, 10))
    monkeypatch.setenv("FINOPS_NOW", "2026-11-10T12:00:00Z")
    monkeypatch.setenv("SLACK_WEBHOOK_URL", f"http://127.0.0.1:9/services/{SLACK_SECRET}")  # nothing listens
    outputs = [finops("--config", config, "budget", "check", "--dry-run"),
               finops("--config", config, "budget", "check", "--format", "json"),
               finops("--config", config, "config", "show")]
    for result in outputs:
        text = result.stdout + result.stderr
        assert SLACK_SECRET not in text and PD_KEY not in text
    assert "could not deliver to chat (slack)" in outputs[1].stderr
    assert outputs[1].exit_code == 3


def test_failed_delivery_is_retried_on_the_next_run(tmp_path, finops, receivers, monkeypatch):
    config = setup(tmp_path, notify="[chat, hook, mail]")
    spend_until(tmp_path, date(2026, 11, 10))
    monkeypatch.setenv("FINOPS_NOW", "2026-11-10T12:00:00Z")
    receivers["hook"].fail = 1
    receivers["mail"].fail = 1

    first = finops("--config", config, "budget", "check", "--format", "json")
    assert first.exit_code == 3
    assert "could not deliver to hook (webhook): HTTP 500" in first.stderr
    assert "retried on the next run" in first.stderr
    report = json.loads(first.stdout)
    assert {(n["channel"], n["status"]) for n in report["notifications"]} == {
        ("chat", "sent"), ("hook", "failed"), ("mail", "failed")}
    assert counts(receivers) == {"slack": 1, "pd": 0, "hook": 0, "mail": 0}

    second = finops("--config", config, "budget", "check", "--format", "json")
    assert second.exit_code == 1, second.stderr
    assert counts(receivers) == {"slack": 1, "pd": 0, "hook": 1, "mail": 1}
    retried = json.loads(second.stdout)["notifications"]
    assert {(n["channel"], n["status"], n["retry"]) for n in retried} == {("hook", "sent", True),
                                                                           ("mail", "sent", True)}


def test_dry_run_and_no_notify_send_nothing_and_record_nothing(tmp_path, finops, receivers, monkeypatch):
    config = setup(tmp_path)
    spend_until(tmp_path, date(2026, 11, 10))
    monkeypatch.setenv("FINOPS_NOW", "2026-11-10T12:00:00Z")
    dry = finops("--config", config, "budget", "check", "--dry-run")
    assert dry.exit_code == 1
    assert "would send chat: POST slack webhook:" in dry.stderr
    assert "would send pager: PagerDuty trigger dedup_key=finops/budget/search/2026-11-01/actual:70%" in dry.stderr
    assert "would send mail: email to finance@example.com" in dry.stderr
    assert finops("--config", config, "budget", "check", "--no-notify").exit_code == 1
    assert counts(receivers) == {"slack": 0, "pd": 0, "hook": 0, "mail": 0}
    assert finops("--config", config, "budget", "check").exit_code == 1
    assert counts(receivers) == {"slack": 1, "pd": 1, "hook": 1, "mail": 1}


def test_two_concurrent_runs_send_once(tmp_path, receivers):
    config = setup(tmp_path, notify="[chat]")
    spend_until(tmp_path, date(2026, 11, 10))
    receivers["slack"].delay = 2.5  # the first run holds the store while Slack is slow
    env = {**os.environ, "FINOPS_NOW": "2026-11-10T12:00:00Z"}
    # One sync first, so the two runs race on alerting rather than on loading the files.
    subprocess.run([sys.executable, "-m", "finops_cli", "--config", str(config), "sync"], env=env, check=True,
                   capture_output=True, timeout=60)
    runs = [subprocess.Popen([sys.executable, "-m", "finops_cli", "--config", str(config), "budget", "check"],
                             env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    results = [(p.wait(timeout=60), p.stdout.read(), p.stderr.read()) for p in runs]
    for p in runs:
        p.stdout.close()
        p.stderr.close()
    assert [code for code, _, _ in results] == [1, 1], results
    assert len(receivers["slack"].received) == 1
    assert sum("sent trigger to chat" in err for _, _, err in results) == 1
    assert any("waiting for another finops process" in err for _, _, err in results), "the runs did not overlap"


def test_pagerduty_resolves_when_the_period_ends(tmp_path, finops, receivers, monkeypatch):
    config = setup(tmp_path, notify="[pager]")
    spend_until(tmp_path, date(2026, 11, 10))
    monkeypatch.setenv("FINOPS_NOW", "2026-11-10T12:00:00Z")
    assert finops("--config", config, "budget", "check").exit_code == 1
    monkeypatch.setenv("FINOPS_NOW", "2026-12-01T06:00:00Z")  # a new month: nothing spent yet
    assert finops("--config", config, "budget", "check").exit_code == 0
    events = [r.body for r in receivers["pd"].received]
    assert [e["event_action"] for e in events] == ["trigger", "resolve"]
    assert events[0]["dedup_key"] == events[1]["dedup_key"]


def test_exit_codes(tmp_path, finops, receivers, monkeypatch):
    config = setup(tmp_path, notify="[]")
    monkeypatch.setenv("FINOPS_NOW", "2026-11-10T12:00:00Z")
    spend_until(tmp_path, date(2026, 11, 10), per_day=50)  # 500 of 1,300: all clear
    assert finops("--config", config, "budget", "check").exit_code == 0
    spend_until(tmp_path, date(2026, 11, 10))  # 76.9 %: a warning
    assert finops("--config", config, "budget", "check").exit_code == 1
    assert finops("--config", config, "budget", "check", "--fail-on", "critical").exit_code == 0
    assert finops("--config", config, "budget", "check", "--fail-on", "never").exit_code == 0
    spend_until(tmp_path, date(2026, 11, 10), per_day=140)  # 1,400: over 100 %, an emergency
    assert finops("--config", config, "budget", "check", "--fail-on", "emergency").exit_code == 1
    assert finops("--config", config, "budget", "check", "--budget", "nope").exit_code == 2

    (tmp_path / "data" / "search.csv").unlink()  # the source breaks: evaluate the data we have, exit 3
    broken = finops("--config", config, "budget", "check", "--format", "json")
    assert broken.exit_code == 3
    assert "data synced just now" in broken.stderr
    assert json.loads(broken.stdout)["budgets"][0]["spend"] == "1400.00"


def test_table_shows_tree_bars_and_currency_warnings(tmp_path, finops, monkeypatch):
    monkeypatch.setenv("FINOPS_NOW", "2026-11-15T12:00:00Z")
    write_daily(tmp_path / "data" / "search.csv", date(2026, 10, 1), date(2026, 11, 15), lambda d: 100,
                {"team": "search"})
    euro = [row(date(2026, 11, d), "5", {"team": "ads"}, "EUR") for d in range(1, 11)]
    write_daily(tmp_path / "data" / "ads.csv", date(2026, 10, 1), date(2026, 11, 15), lambda d: 50,
                {"team": "ads"}, rows=euro)
    config = write_config(tmp_path, """
store: store.duckdb
sources: [{name: files, type: focus, path: data}]
budgets:
  - {name: org, amount: 4000, currency: USD}
  - {name: search, parent: org, scope: {team: search}, amount: 3000, currency: USD}
  - {name: ads, parent: org, scope: {team: ads}, amount: 2000, currency: USD}
""")
    result = finops("--config", config, "budget", "check", "--fail-on", "never")
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    org = next(line for line in lines if line.startswith("org"))
    assert "2,250.00" in org and "4,500.00 (high)" in org and "4,000.00 USD" in org and "56.2%" in org
    assert "▶" in org  # the forecast runs past the budget
    assert any(line.startswith("└ search") and "1,500.00" in line for line in lines)
    assert "org: children's budgets add up to 5,000.00 USD, more than this budget's 4,000.00 USD" in result.stderr
    assert "ads: spend in other currencies is not counted: 50.00 EUR" in result.stderr

    data = json.loads(finops("--config", config, "budget", "check", "--format", "json").stdout)
    org_json = data["budgets"][0]
    assert org_json["rolled_up"] is True and org_json["children"] == ["search", "ads"]
    assert org_json["spend"] == "2250.00" and org_json["forecast"]["amount"] == "4500.00"
    assert [t["label"] for t in org_json["thresholds"]] == ["70% actual", "90% actual", "100% actual"]
    md = finops("--config", config, "budget", "check", "--format", "markdown", "--fail-on", "never").stdout
    assert md.startswith("| budget | period |") and "└ search" in md
    assert Decimal(data["budgets"][1]["forecast"]["amount"]) == Decimal(3000)


def test_pagerduty_triggers_again_after_a_resolve_and_absolute_thresholds_work(tmp_path, finops, receivers,
                                                                                monkeypatch):
    config = write_config(tmp_path, f"""
store: store.duckdb
sources: [{{name: files, type: focus, path: data}}]
{CHANNELS}
budgets:
  - name: search
    scope: {{team: search}}
    amount: 5000
    currency: USD
    thresholds: [{{amount: 900, severity: emergency, notify: [pager, chat]}}]
""")
    monkeypatch.setenv("FINOPS_NOW", "2026-11-10T12:00:00Z")
    credit = [row(date(2026, 11, 10), "-300", {"team": "search"})]
    for extra, code in ((None, 1), (credit, 0), (None, 1)):  # 1,000 -> 700 -> 1,000 USD
        spend_until(tmp_path, date(2026, 11, 10), extra=extra)
        assert finops("--config", config, "budget", "check").exit_code == code
    events = [r.body for r in receivers["pd"].received]
    assert [e["event_action"] for e in events] == ["trigger", "resolve", "trigger"]
    assert {e["dedup_key"] for e in events} == {"finops/budget/search/2026-11-01/actual:900"}
    assert events[0]["payload"]["severity"] == "critical"  # emergency -> PagerDuty critical
    assert len(receivers["slack"].received) == 1  # chat is told once per period
    assert "threshold 900 USD actual" in receivers["slack"].received[0].body["text"]


def test_a_jump_past_two_thresholds_alerts_once_at_the_highest(tmp_path, finops, receivers, monkeypatch):
    config = setup(tmp_path, notify="[chat, pager]")
    spend_until(tmp_path, date(2026, 11, 10), per_day=120)  # 1,200 of 1,300 at once: 70 % and 90 %
    monkeypatch.setenv("FINOPS_NOW", "2026-11-10T12:00:00Z")
    first = finops("--config", config, "budget", "check", "--format", "json")
    assert first.exit_code == 1
    assert [r.body["text"].split("(threshold ")[1][:10] for r in receivers["slack"].received] == ["90% actual"]
    assert [r.body["dedup_key"] for r in receivers["pd"].received] == ["finops/budget/search/2026-11-01/actual:90%"]
    sent = {(n["channel"], n["threshold"], n["status"], n["covered_by"])
            for n in json.loads(first.stdout)["notifications"]}
    assert sent == {("chat", "70% actual", "covered", "90% actual"), ("chat", "90% actual", "sent", None),
                    ("pager", "70% actual", "covered", "90% actual"), ("pager", "90% actual", "sent", None)}
    assert finops("--config", config, "budget", "check").exit_code == 1
    assert counts(receivers) == {"slack": 1, "pd": 1, "hook": 0, "mail": 0}


def test_smtp_login_failure_is_reported_without_the_password(tmp_path, finops, receivers, monkeypatch):
    config = setup(tmp_path, notify="[mail]")
    spend_until(tmp_path, date(2026, 11, 10))
    monkeypatch.setenv("FINOPS_NOW", "2026-11-10T12:00:00Z")
    monkeypatch.setenv("SMTP_PASSWORD", "wrong-password-123")
    result = finops("--config", config, "budget", "check")
    assert result.exit_code == 3
    assert "could not deliver to mail (email): SMTPAuthenticationError" in result.stderr
    assert "wrong-password-123" not in result.stderr + result.stdout
    assert receivers["mail"].messages == []
