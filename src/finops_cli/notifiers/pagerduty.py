"""PagerDuty Events API v2: trigger when a threshold is crossed, resolve with the same dedup key.

The dedup key is stable per (budget, period, threshold), so PagerDuty folds repeats into one
incident and a resolve closes exactly that incident. Severities map onto PagerDuty's four.
"""

from __future__ import annotations

from finops_cli.notifiers import Alert, DeliveryError, http_post

SEVERITY = {"info": "info", "warning": "warning", "critical": "error", "emergency": "critical"}


def body(channel, alert: Alert) -> dict:
    event = {"routing_key": channel.routing_key, "event_action": alert.event, "dedup_key": alert.dedup_key}
    if alert.event == "trigger":
        event["payload"] = {
            "summary": alert.summary[:1024],
            "source": channel.source,
            "severity": SEVERITY[alert.severity],
            "component": alert.budget,
            "group": "budgets",
            "class": f"budget-{alert.basis}",
            "custom_details": alert.as_json(),
        }
    return event


def send(channel, alert: Alert, session=None) -> None:
    response = http_post(session, channel.url, body(channel, alert), channel.timeout)
    try:
        status = response.json().get("status")
    except ValueError:
        status = None
    if status not in (None, "success"):
        raise DeliveryError(f"PagerDuty answered status {status!r}")


def preview(channel, alert: Alert) -> str:
    action = alert.event
    return f"PagerDuty {action} dedup_key={alert.dedup_key}: {alert.summary}"
