"""Slack incoming webhook: ``POST {"text": ...}`` to the webhook URL (answers 200 ``ok``)."""

from __future__ import annotations

from finops_cli.notifiers import ICONS, Alert, http_post


def body(alert: Alert) -> dict:
    icon = ICONS["resolved" if alert.event == "resolve" else alert.severity]
    return {"text": f"{icon} {alert.summary}"}


def send(channel, alert: Alert, session=None) -> None:
    http_post(session, channel.webhook_url, body(alert), channel.timeout)


def preview(channel, alert: Alert) -> str:
    return f"POST slack webhook: {body(alert)['text']}"
