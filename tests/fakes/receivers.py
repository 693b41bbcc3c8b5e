"""Local alert receivers on 127.0.0.1 (port 0): an HTTP endpoint standing in for Slack, PagerDuty's
Events API v2 and a generic webhook, and an SMTP server with STARTTLS and AUTH (aiosmtpd + trustme)."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Received:
    path: str
    headers: dict
    body: dict | None
    text: str


@dataclass
class HttpReceiver:
    """Records every POST. ``fail`` > 0 answers that many requests with HTTP 500 first."""

    kind: str = "slack"  # slack | pagerduty | webhook: decides the success answer
    fail: int = 0
    delay: float = 0.0
    received: list[Received] = field(default_factory=list)

    def start(self) -> HttpReceiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                text = self.rfile.read(length).decode()
                if receiver.delay:
                    time.sleep(receiver.delay)
                if receiver.fail > 0:
                    receiver.fail -= 1
                    return self._answer(500, "text/plain", "internal_error")
                try:
                    body = json.loads(text)
                except ValueError:
                    body = None
                receiver.received.append(Received(self.path, dict(self.headers), body, text))
                if receiver.kind == "pagerduty":
                    return self._answer(202, "application/json", json.dumps(
                        {"status": "success", "message": "Event processed", "dedup_key": (body or {}).get("dedup_key")}))
                return self._answer(200, "text/plain", "ok")

            def _answer(self, code: int, ctype: str, payload: str):
                data = payload.encode()
                self.send_response(code)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()
        return self

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@dataclass
class SmtpReceiver:
    """An SMTP server requiring STARTTLS and AUTH; ``fail`` > 0 rejects that many messages (451)."""

    user: str = "alerts"
    password: str = "s3cret-pass"
    fail: int = 0
    messages: list = field(default_factory=list)

    def start(self, tmp_path) -> SmtpReceiver:
        import ssl

        import trustme
        from aiosmtpd.controller import Controller
        from aiosmtpd.smtp import AuthResult, LoginPassword

        ca = trustme.CA()
        cert = ca.issue_cert("127.0.0.1", "localhost")
        server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        cert.configure_cert(server_context)
        self.ca_file = tmp_path / "smtp-ca.pem"
        ca.cert_pem.write_to_path(str(self.ca_file))
        receiver = self

        class Handler:
            async def handle_DATA(self, server, session, envelope):
                if receiver.fail > 0:
                    receiver.fail -= 1
                    return "451 4.3.0 try again later"
                receiver.messages.append({"from": envelope.mail_from, "to": list(envelope.rcpt_tos),
                                          "data": envelope.content.decode(), "tls": session.ssl is not None,
                                          "authenticated": bool(session.authenticated)})
                return "250 OK"

        def authenticate(server, session, envelope, mechanism, auth_data):
            ok = (isinstance(auth_data, LoginPassword) and auth_data.login.decode() == receiver.user
                  and auth_data.password.decode() == receiver.password)
            return AuthResult(success=ok, handled=False)

        class LocalController(Controller):
            def _trigger_server(self):  # learn the port the OS chose before aiosmtpd connects to it
                self.port = self.server.sockets[0].getsockname()[1]
                super()._trigger_server()

        self.controller = LocalController(Handler(), hostname="127.0.0.1", port=0, tls_context=server_context,
                                          require_starttls=True, authenticator=authenticate,
                                          auth_require_tls=True)
        self.controller.start()
        self.port = self.controller.port
        return self

    def stop(self) -> None:
        self.controller.stop()
