"""A generic JSON webhook: ``POST`` the alert's documented JSON (``Alert.as_json``), with optional headers."""

from __future__ import annotations

import json

from finops_cli.notifiers import Alert, http_post


def send(channel, alert: Alert, session=None) -> None:
    http_post(session, channel.url, alert.as_json(), channel.timeout, headers=dict(channel.headers))


def preview(channel, alert: Alert) -> str:
    return f"POST webhook (JSON): {json.dumps(alert.as_json())}"
