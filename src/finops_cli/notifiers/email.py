"""Email over SMTP: STARTTLS (default) or implicit TLS, login with credentials from ${ENV}."""

from __future__ import annotations

import smtplib
import ssl
from email.message import EmailMessage

from finops_cli.notifiers import Alert


def message(channel, alert: Alert) -> EmailMessage:
    msg = EmailMessage()
    state = "resolved" if alert.event == "resolve" else alert.severity
    msg["Subject"] = f"[finops {state}] budget {alert.budget} {alert.period}: {alert.threshold}"
    msg["From"] = channel.sender
    msg["To"] = ", ".join(channel.to)
    lines = [alert.summary, ""]
    for key, value in alert.as_json().items():
        if key != "summary":
            lines.append(f"{key}: {value}")
    msg.set_content("\n".join(lines) + "\n")
    return msg


def _context(channel) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=channel.ca_file) if channel.ca_file else ssl.create_default_context()


def send(channel, alert: Alert, session=None) -> None:
    if channel.ssl:
        client = smtplib.SMTP_SSL(channel.host, channel.port, timeout=channel.timeout, context=_context(channel))
    else:
        client = smtplib.SMTP(channel.host, channel.port, timeout=channel.timeout)
    with client:
        client.ehlo()
        if channel.starttls and not channel.ssl:
            client.starttls(context=_context(channel))
            client.ehlo()
        if channel.username:
            client.login(channel.username, channel.password or "")
        client.send_message(message(channel, alert))


def preview(channel, alert: Alert) -> str:
    msg = message(channel, alert)
    return f"email to {msg['To']} via {channel.host}:{channel.port}: {msg['Subject']}"
