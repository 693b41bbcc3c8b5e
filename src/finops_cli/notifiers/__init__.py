"""Deliver budget alerts: one module per channel type, all sharing ``Alert`` and ``DeliveryError``.

A channel module has ``send(channel, alert, session)`` (raises ``DeliveryError``) and
``preview(channel, alert)`` (what ``--dry-run`` shows). Secrets never reach a message:
``scrub`` replaces every secret of the channel (URL, key, password, header values) by ****.
"""

from __future__ import annotations

import importlib
import re
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit

from finops_cli.render import decimal_text, money

MODULES = {"slack": "slack", "pagerduty": "pagerduty", "webhook": "webhook", "email": "email"}
ICONS = {"info": "ℹ️", "warning": "⚠️", "critical": "🔴", "emergency": "🚨", "resolved": "✅"}


class DeliveryError(Exception):
    """A channel did not accept an alert; the message is already scrubbed of secrets."""


@dataclass
class Alert:
    event: str  # trigger | resolve
    budget: str
    period: str  # label: 2026-11, 2026-Q4, 2026-11-02..2026-11-08
    period_start: str
    period_end: str
    severity: str
    threshold: str  # e.g. "90% actual"
    basis: str
    limit: Decimal
    amount: Decimal
    currency: str
    spend: Decimal
    forecast: Decimal | None
    dedup_key: str
    scope: dict[str, Any] = field(default_factory=dict)
    reason: str | None = None  # why a resolve was sent

    @property
    def summary(self) -> str:
        head = f"budget {self.budget} {self.period}"
        used = f"{float(self.spend / self.amount) * 100:.1f}%" if self.amount else "-"
        if self.event == "resolve":
            return (f"[resolved] {head}: {self.threshold} threshold, {self.reason or 'back under'} "
                    f"(spend {money(self.spend, self.currency)} of {money(self.amount, self.currency)})")
        if self.basis == "forecasted" and self.forecast is not None:
            share = f"{float(self.forecast / self.amount) * 100:.1f}%" if self.amount else "-"
            return (f"[{self.severity}] {head}: forecast {money(self.forecast, self.currency)} is {share} of "
                    f"{money(self.amount, self.currency)} (threshold {self.threshold}); "
                    f"spent so far {money(self.spend, self.currency)}")
        tail = f"; forecast {money(self.forecast, self.currency)}" if self.forecast is not None else ""
        return (f"[{self.severity}] {head}: spend {money(self.spend, self.currency)} is {used} of "
                f"{money(self.amount, self.currency)} (threshold {self.threshold}){tail}")

    def as_json(self) -> dict[str, Any]:
        """The documented webhook body (docs/budgets.md)."""
        return {
            "event": self.event, "budget": self.budget, "severity": self.severity,
            "period": {"label": self.period, "start": self.period_start, "end": self.period_end},
            "threshold": self.threshold, "basis": self.basis, "limit": decimal_text(self.limit),
            "amount": decimal_text(self.amount), "currency": self.currency, "spend": decimal_text(self.spend),
            "forecast": decimal_text(self.forecast), "scope": self.scope, "dedup_key": self.dedup_key,
            "summary": self.summary,
        }


def channel_module(kind: str):
    return importlib.import_module(f"finops_cli.notifiers.{MODULES[kind]}")


def secrets_of(channel) -> list[str]:
    values = [getattr(channel, key, None) for key in ("webhook_url", "routing_key", "url", "password", "username")]
    values += list(getattr(channel, "headers", {}).values())
    out = [v for v in values if isinstance(v, str) and len(v) >= 4]
    for v in list(out):  # a URL's path and query carry its token; its host alone does not
        if "://" in v:
            rest = v.split("://", 1)[1]
            if "/" in rest and len(rest.split("/", 1)[1]) >= 4:
                out.append(rest.split("/", 1)[1])
    return sorted(set(out), key=len, reverse=True)


def scrub(text: str, channel) -> str:
    from finops_cli.config import masked_text

    for secret in secrets_of(channel):
        text = text.replace(secret, "****")
    return masked_text(text)


def send(channel, alert: Alert, session=None) -> None:
    try:
        channel_module(channel.type).send(channel, alert, session)
    except DeliveryError as exc:
        raise DeliveryError(scrub(str(exc), channel)) from None
    except Exception as exc:  # requests/smtplib/ssl errors name URLs: scrub before anyone sees them
        raise DeliveryError(scrub(f"{type(exc).__name__}: {exc}", channel)) from None


def preview(channel, alert: Alert) -> str:
    return scrub(channel_module(channel.type).preview(channel, alert), channel)


def http_post(session, url: str, body: dict, timeout: float, headers: dict | None = None):
    """POST JSON; any non-2xx answer is a DeliveryError naming the status and the start of the body."""
    import requests

    session = session or requests.Session()
    host = urlsplit(url).netloc.rpartition("@")[2] or url
    try:
        response = session.post(url, json=body, timeout=timeout, headers=headers or {})
    except requests.Timeout:
        raise DeliveryError(f"{host} did not answer within {timeout:g} s") from None
    except requests.ConnectionError as exc:
        reason = re.search(r"\[Errno -?\d+\] [^'\")]+", str(exc))
        raise DeliveryError(f"cannot connect to {host}" + (f" ({reason.group(0)})" if reason else "")) from None
    if not 200 <= response.status_code < 300:
        text = " ".join((response.text or "").split())[:200]
        raise DeliveryError(f"HTTP {response.status_code}" + (f": {text}" if text else ""))
    return response
