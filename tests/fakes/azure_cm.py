"""A fake Azure Cost Management Query endpoint over HTTPS on 127.0.0.1, for the real azure SDK.

It answers ``POST {scope}/providers/Microsoft.CostManagement/query`` by aggregating a list of
resource-level ``Charge`` rows the way the service does: by scope, time period, cost type
(ActualCost / AmortizedCost), granularity (Daily / None), up to two groupings (Dimension or
TagKey) and a ``ResourceId In`` filter. Results come in pages of ``page_size`` rows linked by
``nextLink`` with an opaque ``$skiptoken``; columns come in a different order from the docs, so
a client must read them by name. Knobs: throttle the next N requests (HTTP 429 with Cost
Management's retry-after headers), answer 204, answer an error status, name the cost column.
"""

from __future__ import annotations

import base64
import calendar
import json
import re
import ssl
import threading
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

QUERY_PATH = re.compile(r"^/(?P<scope>.+)/providers/Microsoft\.CostManagement/query$", re.IGNORECASE)


@dataclass(frozen=True)
class Charge:
    day: date
    subscription: str
    resource_group: str | None
    resource: str | None  # "Microsoft.Compute/virtualMachines/web1"; None for charges without a resource
    service: str
    location: str | None
    actual: Decimal
    amortized: Decimal
    tags: dict = field(default_factory=dict, hash=False)
    currency: str = "USD"

    @property
    def resource_id(self) -> str:
        if not self.resource:
            return ""
        return (f"/subscriptions/{self.subscription}/resourceGroups/{self.resource_group}"
                f"/providers/{self.resource}")


@dataclass
class FakeCostManagement:
    charges: list[Charge]
    subscription_names: dict[str, str] = field(default_factory=dict)
    page_size: int = 1000
    cost_column: str = "Cost"
    throttle_next: int = 0  # answer the next N requests with 429
    throttle_seconds: str = "0.05"
    throttle_retry_after: str | None = None  # also send the standard Retry-After header
    empty: str | None = None  # "204" or "rows": answer every query with no data
    fail_status: int | None = None  # answer every query with this HTTP status
    denied_scopes: set = field(default_factory=set)  # scopes (lower case) that answer 403
    stuck_next_link: bool = False  # a broken service: nextLink always points at the first page
    log: list[dict] = field(default_factory=list)
    base: str = ""

    # -- the query semantics ---------------------------------------------------------------
    def answer(self, scope: str, body: dict) -> tuple[list[dict], list[list]]:
        dataset = body["dataset"]
        cost_type = body["type"]
        first = date.fromisoformat(body["timePeriod"]["from"][:10])
        last = date.fromisoformat(body["timePeriod"]["to"][:10])  # inclusive, as in the API
        daily = dataset.get("granularity") == "Daily"
        if daily:  # like the service, silently: Daily covers one month at most, counted back from "to"
            first = max(first, _month_before(last) + timedelta(days=1))
        groupings = dataset.get("grouping") or []
        assert len(groupings) <= 2, "Cost Management allows at most two groupings"
        wanted = _filter_ids(dataset.get("filter"))
        totals: dict[tuple, Decimal] = defaultdict(Decimal)
        for charge in self.charges:
            if not (first <= charge.day <= last) or not _in_scope(charge, scope):
                continue
            if wanted is not None and charge.resource_id.lower() not in wanted:
                continue
            key: list = [int(charge.day.strftime("%Y%m%d"))] if daily else []
            for grouping in groupings:
                key.extend(self._group_values(charge, grouping))
            key.append(charge.currency)
            totals[tuple(key)] += charge.actual if cost_type == "ActualCost" else charge.amortized
        columns = ([{"name": "Currency", "type": "String"}] + self._group_columns(groupings)
                   + ([{"name": "UsageDate", "type": "Number"}] if daily else [])
                   + [{"name": self.cost_column, "type": "Number"}])
        rows = []
        for key in sorted(totals, key=str):
            *head, currency = key
            day, groups = (head[0], head[1:]) if daily else (None, head)
            rows.append([currency, *groups, *([day] if daily else []), float(totals[key])])
        return columns, rows

    def _group_values(self, charge: Charge, grouping: dict) -> list:
        if grouping["type"] == "TagKey":
            return [grouping["name"], charge.tags.get(grouping["name"], "")]
        name = grouping["name"]
        if name == "ResourceId":
            return [charge.resource_id.lower()]  # the service lower-cases resource ids
        return [{"ServiceName": charge.service, "ResourceLocation": charge.location or "",
                 "SubscriptionId": charge.subscription,
                 "SubscriptionName": self.subscription_names.get(charge.subscription, ""),
                 "ResourceGroupName": charge.resource_group or ""}[name]]

    @staticmethod
    def _group_columns(groupings: list[dict]) -> list[dict]:
        out = []
        for grouping in groupings:
            if grouping["type"] == "TagKey":
                out += [{"name": "TagKey", "type": "String"}, {"name": "TagValue", "type": "String"}]
            else:
                out.append({"name": grouping["name"], "type": "String"})
        return out

    # -- serving ---------------------------------------------------------------------------
    def start(self, certfile: str, keyfile: str) -> FakeCostManagement:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # headers and body are two writes: avoid 40 ms delayed-ACK stalls

            def log_message(self, *args):
                pass

            def do_POST(self):
                fake._handle(self)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(certfile, keyfile)
        self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
        self.base = f"https://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)

    def _handle(self, request: BaseHTTPRequestHandler) -> None:
        url = urlparse(request.path)
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        body = json.loads(request.rfile.read(int(request.headers.get("Content-Length") or 0)) or b"{}")
        match = QUERY_PATH.match(url.path)
        self.log.append({"path": url.path, "query": query, "body": body,
                         "auth": request.headers.get("Authorization")})
        if self.throttle_next > 0:
            self.throttle_next -= 1
            error = {"error": {"code": "429", "message": "Too many requests. Please retry."}}
            standard = {"Retry-After": self.throttle_retry_after} if self.throttle_retry_after else {}
            return _send(request, 429, error, {**standard,
                "x-ms-ratelimit-microsoft.costmanagement-qpu-retry-after": self.throttle_seconds,
                "x-ms-ratelimit-microsoft.costmanagement-entity-retry-after": "0",
                "x-ms-ratelimit-microsoft.costmanagement-tenant-retry-after": self.throttle_seconds,
                "x-ms-ratelimit-microsoft.costmanagement-qpu-remaining": "QueryUsage=0",
            })
        if self.fail_status:
            return _send(request, self.fail_status, {"error": {
                "code": "AuthorizationFailed" if self.fail_status == 403 else "BadRequest",
                "message": "The client does not have authorization to perform action "
                           "'Microsoft.CostManagement/query/action'."}})
        if not match or "api-version" not in query:
            return _send(request, 404, {"error": {"code": "NotFound", "message": url.path}})
        scope = "/" + match.group("scope")
        if scope.lower() in self.denied_scopes:
            return _send(request, 403, {"error": {"code": "AuthorizationFailed", "message": "no access"}})
        wide = scope.lower().startswith("/providers/")
        if wide and any(g.get("name") == "ResourceId" for g in body["dataset"].get("grouping") or []):
            return _send(request, 400, {"error": {"code": "BadRequest", "message":
                                                  "Grouping by ResourceId is not supported at this scope."}})
        if self.empty == "204":
            return _send(request, 204, None)
        columns, rows = self.answer(scope, body)
        if self.empty == "rows":
            rows = []
        offset = page_offset(query.get("$skiptoken"))
        page = rows[offset:offset + self.page_size]
        next_link = None
        if offset + self.page_size < len(rows):
            following = 0 if self.stuck_next_link else offset + self.page_size
            next_link = (f"{self.base}{url.path}?api-version={query['api-version']}"
                         f"&$skiptoken={_encode(following)}")
        _send(request, 200, {
            "id": f"{scope}/providers/Microsoft.CostManagement/query/00000000-0000-0000-0000-000000000000",
            "name": "00000000-0000-0000-0000-000000000000", "type": "Microsoft.CostManagement/query",
            "location": None, "sku": None, "eTag": None,
            "properties": {"nextLink": next_link, "columns": columns, "rows": page},
        })

    def posts(self, **match) -> list[dict]:
        """Logged requests whose body matches, e.g. ``posts(type="ActualCost")``."""
        return [e for e in self.log if all(e["body"].get(k) == v for k, v in match.items())]


def _month_before(day: date) -> date:
    month = day.month - 1 or 12
    year = day.year - (day.month == 1)
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def _in_scope(charge: Charge, scope: str) -> bool:
    parts = scope.strip("/").split("/")
    if parts[0].lower() != "subscriptions":
        return True  # management group and billing scopes see every subscription of the fixture
    if parts[1].lower() != charge.subscription.lower():
        return False
    return len(parts) < 4 or (charge.resource_group or "").lower() == parts[3].lower()


def _filter_ids(flt: dict | None) -> set[str] | None:
    if not flt:
        return None
    dims = flt.get("dimensions") or {}
    assert dims.get("name") == "ResourceId" and dims.get("operator") == "In", flt
    return {v.lower() for v in dims["values"]}


def _encode(offset: int) -> str:
    return base64.urlsafe_b64encode(f"offset:{offset}".encode()).decode()


def page_offset(token: str | None) -> int:
    if not token:
        return 0
    return int(base64.urlsafe_b64decode(token.encode()).decode().split(":")[1])


def _send(request, status: int, payload: dict | None, headers: dict | None = None) -> None:
    data = b"" if payload is None else json.dumps(payload).encode()
    request.send_response(status)
    for name, value in (headers or {}).items():
        request.send_header(name, value)
    if payload is not None:
        request.send_header("Content-Type", "application/json; charset=utf-8")
    request.send_header("Content-Length", str(len(data)))
    request.end_headers()
    request.wfile.write(data)
