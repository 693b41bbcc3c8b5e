"""A small Cost Explorer that really evaluates requests, speaking the JSON 1.1 protocol boto3 uses.

It holds line items (day, account, region, service, record type, tags, metric amounts) and
answers ``GetCostAndUsage`` by filtering (And/Or/Not, Dimensions, Tags incl. ABSENT), grouping
(at most two keys, ``key$value`` tag groups, ``key$`` for untagged), bucketing by DAILY or
MONTHLY periods and paging with ``NextPageToken`` after ``page_size`` groups. It also answers
``GetCostForecast`` (moto implements neither forecasts nor filters). Throttling is injected
with ``throttle_next`` / ``throttle_after``. Every call is recorded with the access key that
signed it. Listens on 127.0.0.1, port 0; ``stop()`` shuts it down.
"""

from __future__ import annotations

import json
import re
import threading
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

TAG_MARK = "$"


@dataclass
class LineItem:
    day: date
    account: str
    region: str
    service: str
    record_type: str
    costs: dict[str, Decimal]  # metric name -> amount
    tags: dict[str, str] = field(default_factory=dict)
    unit: str = "USD"

    def dimension(self, name: str) -> str:
        return {"LINKED_ACCOUNT": self.account, "REGION": self.region, "SERVICE": self.service,
                "RECORD_TYPE": self.record_type}[name]


class ApiError(Exception):
    def __init__(self, code: str, message: str):
        self.code, self.message = code, message


@dataclass
class Call:
    operation: str
    body: dict[str, Any]
    access_key: str | None


class FakeCostExplorer:
    def __init__(self, items: list[LineItem], account_names: dict[str, str] | None = None,
                 estimated_from: date | None = None, page_size: int = 6):
        self.items = items
        self.account_names = account_names or {}
        self.estimated_from = estimated_from
        self.page_size = page_size
        self.calls: list[Call] = []
        self.throttle_next = 0  # the next N calls answer LimitExceededException
        self.throttle_after: int | None = None  # after N answered calls, every call is throttled
        self.forecast = {"mean": Decimal("310.25"), "lower": Decimal("280.50"), "upper": Decimal("340.00")}
        self.forecast_unavailable = False
        self.deny = False  # answer AccessDeniedException, as for an identity without ce:GetCostAndUsage
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    # -- lifecycle ------------------------------------------------------------------------
    def start(self) -> FakeCostExplorer:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                operation = (self.headers.get("X-Amz-Target") or "").rpartition(".")[2]
                match = re.search(r"Credential=([^/]+)/", self.headers.get("Authorization") or "")
                status, answer = fake.handle(operation, body, match.group(1) if match else None)
                data = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/x-amz-json-1.1")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def stop(self) -> None:
        if self._server:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def answered(self, operation: str = "GetCostAndUsage") -> list[Call]:
        """Calls that got data back (throttled attempts are not billed by AWS, nor counted here)."""
        return [c for c in self.calls if c.operation == operation and not c.body.get("_throttled")]

    # -- protocol -------------------------------------------------------------------------
    def handle(self, operation: str, body: dict, access_key: str | None) -> tuple[int, dict]:
        with self._lock:
            call = Call(operation, body, access_key)
            self.calls.append(call)
            answered = len([c for c in self.calls if not c.body.get("_throttled")]) - 1
            if self.throttle_next > 0 or (self.throttle_after is not None and answered >= self.throttle_after):
                self.throttle_next = max(0, self.throttle_next - 1)
                call.body = {**body, "_throttled": True}
                return 400, {"__type": "LimitExceededException", "message": "Rate exceeded"}
        try:
            if self.deny:
                raise ApiError("AccessDeniedException", f"User is not authorized to perform: ce:{operation}")
            if operation == "GetCostAndUsage":
                return 200, self.cost_and_usage(body)
            if operation == "GetCostForecast":
                return 200, self.cost_forecast(body)
            raise ApiError("UnknownOperationException", operation)
        except ApiError as exc:
            return 400, {"__type": exc.code, "message": exc.message}

    def cost_and_usage(self, body: dict) -> dict:
        group_by = body.get("GroupBy") or []
        if len(group_by) > 2:
            raise ApiError("ValidationException", "GroupBy allows at most 2 entries")
        start, end = (date.fromisoformat(body["TimePeriod"][k]) for k in ("Start", "End"))
        if end <= start:
            raise ApiError("ValidationException", "Start must be before End")
        expression = body.get("Filter")
        metrics = body["Metrics"]
        periods = _periods(start, end, body["Granularity"])
        entries: list[tuple[int, tuple | None, dict]] = []
        for index, (p_start, p_end) in enumerate(periods):
            groups: dict[tuple, dict[str, Decimal]] = defaultdict(lambda: defaultdict(Decimal))
            for item in self.items:
                if p_start <= item.day < p_end and (expression is None or _matches(expression, item)):
                    key = tuple(_group_key(g, item) for g in group_by)
                    for metric in metrics:
                        groups[(key, item.unit)][metric] += item.costs.get(metric, Decimal(0))
            if not group_by:
                entries.append((index, None, groups.get(((), "USD"), {})))
                continue
            if not groups:
                entries.append((index, None, {}))
            for (key, unit), sums in sorted(groups.items()):
                entries.append((index, (key, unit), sums))
        # Days without groups cost no page slots: they all come on the first page, as empty results.
        offset = int((body.get("NextPageToken") or "page-0").split("-")[1])
        grouped = [e for e in entries if e[1] is not None]
        if group_by:
            empty = [e for e in entries if e[1] is None] if offset == 0 else []
            page = sorted(empty + grouped[offset:offset + self.page_size], key=lambda e: e[0])
        else:
            page = entries
        results: dict[int, dict] = {}
        accounts: set[str] = set()
        for index, group, sums in page:
            p_start, p_end = periods[index]
            result = results.setdefault(index, {
                "TimePeriod": {"Start": p_start.isoformat(), "End": p_end.isoformat()},
                "Total": {}, "Groups": [],
                "Estimated": self.estimated_from is not None and p_end > self.estimated_from,
            })
            if group is None:
                if not group_by:
                    result["Total"] = {m: {"Amount": _text(sums.get(m, Decimal(0))), "Unit": "USD"} for m in metrics}
                continue
            key, unit = group
            result["Groups"].append({"Keys": list(key),
                                     "Metrics": {m: {"Amount": _text(sums[m]), "Unit": unit} for m in metrics}})
            for g, value in zip(group_by, key):
                if g["Key"] == "LINKED_ACCOUNT":
                    accounts.add(value)
        answer: dict[str, Any] = {
            "GroupDefinitions": group_by,
            "ResultsByTime": [results[i] for i in sorted(results)],
            "DimensionValueAttributes": [{"Value": a, "Attributes": {"description": self.account_names[a]}}
                                         for a in sorted(accounts) if a in self.account_names],
        }
        if group_by and offset + self.page_size < len(grouped):
            answer["NextPageToken"] = f"page-{offset + self.page_size}"
        return answer

    def cost_forecast(self, body: dict) -> dict:
        if self.forecast_unavailable:
            raise ApiError("DataUnavailableException", "Insufficient amount of historical data")
        if body.get("Granularity") not in ("DAILY", "MONTHLY"):
            raise ApiError("ValidationException", "Granularity must be DAILY or MONTHLY")
        return {
            "Total": {"Amount": _text(self.forecast["mean"]), "Unit": "USD"},
            "ForecastResultsByTime": [{
                "TimePeriod": body["TimePeriod"], "MeanValue": _text(self.forecast["mean"]),
                "PredictionIntervalLowerBound": _text(self.forecast["lower"]),
                "PredictionIntervalUpperBound": _text(self.forecast["upper"]),
            }],
        }


def _periods(start: date, end: date, granularity: str) -> list[tuple[date, date]]:
    out = []
    cursor = start
    while cursor < end:
        if granularity == "DAILY":
            nxt = cursor + timedelta(days=1)
        elif granularity == "MONTHLY":
            nxt = date(cursor.year + cursor.month // 12, cursor.month % 12 + 1, 1)
        else:
            raise ApiError("ValidationException", f"unsupported granularity {granularity}")
        out.append((cursor, min(nxt, end)))
        cursor = min(nxt, end)
    return out


def _group_key(group: dict, item: LineItem) -> str:
    if group["Type"] == "TAG":
        return f"{group['Key']}{TAG_MARK}{item.tags.get(group['Key'], '')}"
    if group["Type"] != "DIMENSION":
        raise ApiError("ValidationException", f"unsupported group type {group['Type']}")
    try:
        return item.dimension(group["Key"])
    except KeyError:
        raise ApiError("ValidationException", f"unsupported dimension {group['Key']}") from None


def _matches(expression: dict, item: LineItem) -> bool:
    if len(expression) != 1:
        raise ApiError("ValidationException", "an Expression holds exactly one operator")
    (operator, operand), = expression.items()
    if operator in ("And", "Or"):
        if len(operand) < 2:
            raise ApiError("ValidationException", f"{operator} needs at least two expressions")
        results = [_matches(e, item) for e in operand]
        return all(results) if operator == "And" else any(results)
    if operator == "Not":
        return not _matches(operand, item)
    if operator == "Dimensions":
        return item.dimension(operand["Key"]) in operand["Values"]
    if operator == "Tags":
        value = item.tags.get(operand["Key"], "")
        if "ABSENT" in (operand.get("MatchOptions") or []):
            return value == ""
        return value in operand["Values"]
    raise ApiError("ValidationException", f"unsupported expression {operator}")


def _text(amount: Decimal) -> str:
    return format(amount, "f")
