"""A fake of the BigQuery v2 REST API on 127.0.0.1: tables.get, jobs.insert (dry run and real),
jobs.get and jobs.getQueryResults with pages, enough for the real google-cloud-bigquery client.

It cannot run SQL. It answers a query with ``result_rows`` (what BigQuery would return for
the project's aggregate query), shaped by the column aliases the query itself declares, so
the test checks the SQL the project sends and the mapping of what comes back. The SQL's
semantics are exercised for real by the bqemulator test.
"""

from __future__ import annotations

import json
import re
import threading
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

KV = [{"name": "key", "type": "STRING"}, {"name": "value", "type": "STRING"}]


def billing_schema(*, detailed: bool = False, cost_at_list: bool = True) -> list[dict]:
    """The Cloud Billing standard (or detailed) export schema, as tables.get returns it."""
    def record(name, fields, mode="NULLABLE"):
        return {"name": name, "type": "RECORD", "mode": mode, "fields": fields}

    def col(name, kind="STRING"):
        return {"name": name, "type": kind, "mode": "NULLABLE"}

    fields = [
        col("billing_account_id"),
        record("service", [col("id"), col("description")]),
        record("sku", [col("id"), col("description")]),
        col("usage_start_time", "TIMESTAMP"), col("usage_end_time", "TIMESTAMP"),
        record("project", [col("id"), col("number"), col("name"), record("labels", KV, "REPEATED"),
                           col("ancestry_numbers")]),
        record("labels", KV, "REPEATED"),
        record("system_labels", KV, "REPEATED"),
        record("location", [col("location"), col("country"), col("region"), col("zone")]),
        col("export_time", "TIMESTAMP"), col("cost", "FLOAT"), col("currency"),
        col("currency_conversion_rate", "FLOAT"),
        record("usage", [col("amount", "FLOAT"), col("unit"), col("amount_in_pricing_units", "FLOAT"),
                         col("pricing_unit")]),
        record("credits", [col("name"), col("amount", "FLOAT"), col("full_name"), col("id"), col("type")],
               "REPEATED"),
        record("invoice", [col("month")]),
        col("cost_type"),
        record("adjustment_info", [col("id"), col("description"), col("mode"), col("type")]),
    ]
    if cost_at_list:
        fields.append(col("cost_at_list", "FLOAT"))
    if detailed:
        fields.append(record("resource", [col("name"), col("global_name")]))
        fields.append(record("price", [col("effective_price", "NUMERIC"), col("tier_start_amount", "NUMERIC"),
                                       col("unit"), col("pricing_unit_quantity", "NUMERIC")]))
    return fields


# Result column alias -> BigQuery type of what the project's aggregate query returns.
RESULT_TYPES = {"usage_day": "DATE", "cost": "NUMERIC", "cost_at_list": "NUMERIC", "credits_total": "NUMERIC",
                "usage_amount": "NUMERIC", "pricing_amount": "NUMERIC"}
REPEATED_KV = ("labels", "project_labels", "system_labels")


@dataclass
class Failure:
    route: str  # "tables.get", "jobs.insert(dry)", "jobs.insert", "getQueryResults"
    status: int
    reason: str
    message: str
    times: int = 1_000_000  # how many requests fail before the route works again


@dataclass
class FakeBigQuery:
    """State of one fake server; tests set these fields and read ``log``."""

    tables: dict = field(default_factory=dict)  # "project.dataset.table" -> tables.get resource
    result_rows: list = field(default_factory=list)
    page_size: int | None = None
    insert_state: str = "DONE"  # "RUNNING": the client polls jobs.get / getQueryResults
    incomplete_polls: int = 0
    bytes_processed: int = 123_456_789
    bytes_billed: int = 124_780_544
    failures: list = field(default_factory=list)
    log: list = field(default_factory=list)  # (method, path, query, body)
    jobs: dict = field(default_factory=dict)
    url: str = ""

    def add_table(self, name: str, *, detailed=False, cost_at_list=True, table_type="TABLE", partitioned=True,
                  fields: list | None = None):
        project, dataset, table = name.split(".")
        fields = fields or billing_schema(detailed=detailed, cost_at_list=cost_at_list)
        resource = {"kind": "bigquery#table", "id": f"{project}:{dataset}.{table}", "type": table_type,
                    "tableReference": {"projectId": project, "datasetId": dataset, "tableId": table},
                    "schema": {"fields": fields}, "location": "US"}
        if partitioned and table_type == "TABLE":
            resource["timePartitioning"] = {"type": "DAY"}
        self.tables[f"{project}.{dataset}.{table}"] = resource

    def fail(self, route: str, status: int, reason: str, message: str, times: int = 1_000_000) -> None:
        self.failures.append(Failure(route, status, reason, message, times))

    def queries(self) -> list[dict]:
        """Bodies of the jobs.insert requests (dry runs included), in order."""
        return [body for method, path, _, body in self.log
                if method == "POST" and path.endswith("/jobs") and body]

    def routes(self) -> list[str]:
        out = []
        for method, path, query, body in self.log:
            if "/queries/" in path:
                out.append("getQueryResults")
            elif re.search(r"/jobs/[^/]+$", path):
                out.append("jobs.get")
            elif path.endswith("/jobs"):
                dry = body and body["configuration"].get("dryRun")
                out.append("jobs.insert(dry)" if dry else "jobs.insert")
            elif "/tables/" in path:
                out.append("tables.get")
            else:
                out.append(path)
        return out


def _cell(value):
    if isinstance(value, list):  # REPEATED key/value RECORD
        return {"v": [{"v": {"f": [{"v": item["key"]}, {"v": item.get("value")}]}} for item in value]}
    return {"v": None if value is None else str(value)}


def _result_schema(sql: str) -> list[dict]:
    fields = []
    for alias in re.findall(r"\bAS (\w+)\s*(?:,|\n)", sql):
        if alias in ("c",):
            continue
        if alias in REPEATED_KV:
            fields.append({"name": alias, "type": "RECORD", "mode": "REPEATED", "fields": KV})
        else:
            kind = RESULT_TYPES.get(alias, "NUMERIC" if alias.startswith("credit_") else "STRING")
            fields.append({"name": alias, "type": kind, "mode": "NULLABLE"})
    return fields


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: "_Server"

    def log_message(self, *args):
        pass

    def _send(self, code: int, obj: dict) -> None:
        data = json.dumps(obj).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json; charset=UTF-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _failed(self, route: str) -> bool:
        for failure in self.server.state.failures:
            if failure.route == route and failure.times > 0:
                failure.times -= 1
                status = {400: "INVALID_ARGUMENT", 403: "PERMISSION_DENIED", 404: "NOT_FOUND"}.get(
                    failure.status, "UNKNOWN")
                self._send(failure.status, {"error": {
                    "code": failure.status, "message": failure.message, "status": status,
                    "errors": [{"message": failure.message, "domain": "global", "reason": failure.reason}]}})
                return True
        return False

    def do_POST(self):
        state = self.server.state
        url = urlparse(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length)) if length else {}
        state.log.append(("POST", url.path, url.query, body))
        m = re.fullmatch(r"/bigquery/v2/projects/([^/]+)/jobs", url.path)
        if not m:
            return self._send(404, {"error": {"code": 404, "message": f"no route {url.path}"}})
        project = m.group(1)
        config = body.get("configuration", {})
        if self._failed("jobs.insert(dry)" if config.get("dryRun") else "jobs.insert"):
            return None
        ref = dict(body.get("jobReference") or {})
        ref.setdefault("projectId", project)
        ref.setdefault("jobId", "job_" + uuid.uuid4().hex)
        ref.setdefault("location", "US")
        dry = bool(config.get("dryRun"))
        query_stats = {"totalBytesProcessed": str(state.bytes_processed),
                       "totalBytesBilled": "0" if dry else str(state.bytes_billed),
                       "cacheHit": False, "statementType": "SELECT"}
        job = {"kind": "bigquery#job", "id": f"{project}:US.{ref['jobId']}", "jobReference": ref,
               "configuration": config, "status": {"state": "DONE" if dry else state.insert_state},
               "statistics": {"creationTime": "1704067200000", "startTime": "1704067200000",
                              "endTime": "1704067201000", "totalBytesProcessed": str(state.bytes_processed),
                              "query": query_stats}}
        if dry:
            job["jobReference"] = {"projectId": project, "location": "US"}  # real dry runs have no jobId
        else:
            state.jobs[ref["jobId"]] = {"job": job, "schema": _result_schema(config["query"]["query"])}
        return self._send(200, job)

    def do_GET(self):
        state = self.server.state
        url = urlparse(self.path)
        qs = parse_qs(url.query)
        state.log.append(("GET", url.path, url.query, None))
        m = re.fullmatch(r"/bigquery/v2/projects/([^/]+)/datasets/([^/]+)/tables/([^/]+)", url.path)
        if m:
            if self._failed("tables.get"):
                return None
            table = state.tables.get(".".join(m.groups()))
            if table is None:
                name = "{}:{}.{}".format(*m.groups())
                return self._send(404, {"error": {
                    "code": 404, "message": f"Not found: Table {name}", "status": "NOT_FOUND",
                    "errors": [{"reason": "notFound", "message": "Not found"}]}})
            return self._send(200, table)
        m = re.fullmatch(r"/bigquery/v2/projects/([^/]+)/queries/([^/]+)", url.path)
        if m:
            return self._query_results(state, m.group(1), m.group(2), qs)
        m = re.fullmatch(r"/bigquery/v2/projects/([^/]+)/jobs/([^/]+)", url.path)
        if m:
            entry = state.jobs.get(m.group(2))
            if entry is None:
                return self._send(404, {"error": {"code": 404, "message": "Not found: Job"}})
            if state.incomplete_polls == 0:
                entry["job"]["status"] = {"state": "DONE"}
            return self._send(200, entry["job"])
        return self._send(404, {"error": {"code": 404, "message": f"no route {url.path}"}})

    def _query_results(self, state, project, job_id, qs):
        if self._failed("getQueryResults"):
            return None
        ref = {"projectId": project, "jobId": job_id, "location": "US"}
        if state.incomplete_polls > 0:
            state.incomplete_polls -= 1
            return self._send(200, {"kind": "bigquery#getQueryResultsResponse", "jobComplete": False,
                                    "jobReference": ref})
        entry = state.jobs[job_id]
        entry["job"]["status"] = {"state": "DONE"}
        rows = state.result_rows
        names = [f["name"] for f in entry["schema"]]
        response = {"kind": "bigquery#getQueryResultsResponse", "jobReference": ref, "jobComplete": True,
                    "schema": {"fields": entry["schema"]}, "totalRows": str(len(rows)),
                    "totalBytesProcessed": str(state.bytes_processed), "cacheHit": False}
        if qs.get("maxResults") == ["0"]:
            return self._send(200, response)
        start = int(qs.get("pageToken", ["0"])[0])
        size = state.page_size or len(rows) or 1
        response["rows"] = [{"f": [_cell(row.get(name, [] if name in REPEATED_KV else None))
                                   for name in names]}
                            for row in rows[start:start + size]]
        if start + size < len(rows):
            response["pageToken"] = str(start + size)
        return self._send(200, response)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    state: FakeBigQuery


def start() -> tuple[_Server, FakeBigQuery]:
    server = _Server(("127.0.0.1", 0), _Handler)
    server.state = FakeBigQuery(url=f"http://127.0.0.1:{server.server_address[1]}")
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, server.state
