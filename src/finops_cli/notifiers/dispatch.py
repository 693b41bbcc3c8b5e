"""Decide which alerts to send, send them, and remember what was sent, in the store.

Each (budget, period, threshold, channel) is delivered once: the outcome is written to the
store's ``state`` table right after each delivery, by the process that holds the store lock,
so the hourly cron does not repeat an alert and two overlapping runs do not both send one.
A failed delivery is recorded as failed and retried by the next run. PagerDuty incidents
are resolved (same dedup key) when spend falls back under a threshold or the period ends.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from finops_cli.analyses.budgets import BudgetStatus, ThresholdStatus, period_label
from finops_cli.notifiers import Alert, DeliveryError, preview, send
from finops_cli.periods import iso, utcnow

STATE_SCOPE = "budget-alert"


@dataclass
class Delivery:
    key: str  # state key: budget|period start|threshold|channel
    channel: str
    channel_type: str
    alert: Alert
    retry: bool = False  # an earlier run failed to deliver it
    status: str = "pending"  # sent | failed | dry-run | covered | pending
    covered_by: str | None = None  # a higher threshold crossed in the same run says it all
    error: str | None = None
    attempts: int = 0

    def as_json(self) -> dict[str, Any]:
        return {"budget": self.alert.budget, "period": self.alert.period, "threshold": self.alert.threshold,
                "severity": self.alert.severity, "event": self.alert.event, "channel": self.channel,
                "type": self.channel_type, "status": self.status, "retry": self.retry, "error": self.error,
                "covered_by": self.covered_by,
                "dedup_key": self.alert.dedup_key}


def state_key(budget: str, period_start: str, threshold_key: str, channel: str) -> str:
    return f"{budget}|{period_start}|{threshold_key}|{channel}"


def dedup_key(budget: str, period_start: str, threshold_key: str) -> str:
    return f"finops/budget/{budget}/{period_start}/{threshold_key}"


def _alert(status: BudgetStatus, ts: ThresholdStatus, event: str, reason: str | None = None) -> Alert:
    budget, window = status.config, status.period
    start = window.start.date().isoformat()
    return Alert(
        event=event, budget=budget.name, period=period_label(budget, window), period_start=iso(window.start),
        period_end=iso(window.end), severity=ts.threshold.severity, threshold=ts.threshold.label(budget.currency),
        basis=ts.threshold.basis, limit=ts.limit, amount=budget.amount, currency=budget.currency,
        spend=status.spend, forecast=status.forecast.amount if status.forecast else None,
        dedup_key=dedup_key(budget.name, start, ts.threshold.key), scope=dict(budget.scope or {}), reason=reason,
    )


def load_state(store, budgets: list[str]) -> dict[str, dict]:
    rows = store.con.execute("SELECT key, value FROM state WHERE scope = ?", [STATE_SCOPE]).fetchall()
    wanted = set(budgets)
    return {key: json.loads(value) for key, value in rows if key.split("|", 1)[0] in wanted}


def plan(statuses: list[BudgetStatus], channels: dict, state: dict[str, dict]) -> list[Delivery]:
    out: list[Delivery] = []
    current: set[str] = set()
    for status in statuses:
        if status.period is None:
            continue
        start = status.period.start.date().isoformat()
        for ts in status.thresholds:
            for name in ts.channels:
                channel = channels[name]
                key = state_key(status.name, start, ts.threshold.key, name)
                current.add(key)
                before = state.get(key)
                action = _decide(ts, channel.type, before)
                if action:
                    reason = None if action == "trigger" else "back under"
                    out.append(Delivery(key, name, channel.type, _alert(status, ts, action, reason),
                                        retry=bool(before and before.get("status") == "failed"),
                                        attempts=(before or {}).get("attempts", 0)))
    _cover_lower(out)
    out.extend(_ended_incidents(statuses, channels, state, current))
    return out


def _cover_lower(deliveries: list[Delivery]) -> None:
    """Spend that jumps past several thresholds at once alerts once, at the highest one, per channel."""
    highest: dict[tuple, Delivery] = {}
    for item in deliveries:
        if item.alert.event != "trigger":
            continue
        group = (item.alert.budget, item.channel, item.alert.basis)
        if group not in highest or item.alert.limit > highest[group].alert.limit:
            highest[group] = item
    for item in deliveries:
        top = highest.get((item.alert.budget, item.channel, item.alert.basis))
        if item.alert.event == "trigger" and top is not None and top is not item:
            item.covered_by = top.alert.threshold


def _decide(ts: ThresholdStatus, channel_type: str, before: dict | None) -> str | None:
    last_action = (before or {}).get("action")
    last_status = (before or {}).get("status")
    if ts.crossed:
        if before is None or (last_action == "trigger" and last_status == "failed"):
            return "trigger"
        if channel_type == "pagerduty" and last_action == "resolve" and last_status == "sent":
            return "trigger"  # over again after a resolve: the incident must reopen
        return None
    if ts.waiting or channel_type != "pagerduty" or before is None:
        return None
    if (last_action == "trigger" and last_status == "sent") or (last_action == "resolve" and last_status == "failed"):
        return "resolve"
    return None


def _ended_incidents(statuses, channels, state, current) -> list[Delivery]:
    """PagerDuty incidents of earlier periods (or removed thresholds) are resolved."""
    by_name = {s.name: s for s in statuses}
    out = []
    for key, before in sorted(state.items()):
        if key in current or before.get("type") != "pagerduty" or before.get("alert") is None:
            continue
        budget, start, _threshold, channel = key.split("|", 3)
        sent_trigger = before.get("action") == "trigger" and before.get("status") == "sent"
        failed_resolve = before.get("action") == "resolve" and before.get("status") == "failed"
        if budget not in by_name or channel not in channels or not (sent_trigger or failed_resolve):
            continue
        status = by_name.get(budget)
        same_period = status is not None and status.period is not None and \
            status.period.start.date().isoformat() == start
        fields = {**before["alert"], "event": "resolve",
                  "reason": "threshold removed from the config" if same_period else "period ended"}
        for name in ("limit", "amount", "spend", "forecast"):
            fields[name] = None if fields[name] is None else Decimal(fields[name])
        alert = Alert(**fields)
        out.append(Delivery(key, channel, "pagerduty", alert, retry=failed_resolve, attempts=before.get("attempts", 0)))
    return out


def deliver(deliveries: list[Delivery], channels: dict, store, *, dry_run: bool = False,
            session=None) -> list[str]:
    """Send each delivery (or only preview it); returns the dry-run previews."""
    previews = []
    if not dry_run and deliveries and session is None:
        import requests

        session = requests.Session()
    for item in deliveries:
        channel = channels[item.channel]
        if item.covered_by:
            item.status = "covered"
            if not dry_run:
                store.set_state(STATE_SCOPE, item.key, json.dumps(_record(item)))
            continue
        if dry_run:
            item.status = "dry-run"
            previews.append(f"{item.channel}: {preview(channel, item.alert)}")
            continue
        item.attempts += 1
        try:
            send(channel, item.alert, session)
            item.status = "sent"
        except DeliveryError as exc:
            item.status, item.error = "failed", str(exc)
        store.set_state(STATE_SCOPE, item.key, json.dumps(_record(item)))
    return previews


def _record(item: Delivery) -> dict[str, Any]:
    alert = {k: v for k, v in vars(item.alert).items()}
    for key in ("limit", "amount", "spend", "forecast"):
        alert[key] = None if alert[key] is None else str(alert[key])
    return {"action": item.alert.event, "status": item.status, "type": item.channel_type, "error": item.error,
            "attempts": item.attempts, "at": iso(utcnow()), "severity": item.alert.severity, "alert": alert}
