"""A fake OpenCost / Kubecost allocation API on 127.0.0.1 (shapes from opencost allocation_json.go).

It keeps per-container "atoms" for four days of a cluster and aggregates them the way the
real handler does: one set per step, keys joined with ``/`` from the ``aggregate`` list, a
missing field or label is ``__unallocated__``, label keys Prometheus-sanitized, floats
rounded to 5 places, NaN as null. Idle cost appears only when asked (OpenCost
``includeIdle`` defaults to false, Kubecost ``idle`` to true). A bad window is a
text/plain 400, as Go's ``http.Error`` writes it.
"""

from __future__ import annotations

import json
import re
import threading
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

CLUSTER = "prod-eks"
FIRST_DAY = datetime(2024, 3, 1, tzinfo=timezone.utc)
DAYS = 4
COST_FIELDS = ("cpuCost", "cpuCostAdjustment", "ramCost", "ramCostAdjustment", "gpuCost", "gpuCostAdjustment",
               "pvCost", "pvCostAdjustment", "networkCost", "networkCostAdjustment", "loadBalancerCost",
               "loadBalancerCostAdjustment", "sharedCost", "externalCost")
QUANTITY_FIELDS = ("cpuCoreHours", "ramByteHours", "gpuHours", "pvByteHours", "networkTransferBytes")


def atom(namespace, kind, controller, pod, node, labels, **costs):
    props = {"cluster": CLUSTER, "node": node, "namespace": namespace, "controllerKind": kind,
             "controller": controller, "pod": pod, "container": costs.pop("container", "main"),
             "providerID": f"aws:///us-east-1a/i-{sum(map(ord, node)):08d}",
             "labels": {re.sub(r"[^A-Za-z0-9_]", "_", k): v for k, v in labels.items()}}
    return {"properties": props, **costs}


# One day of the cluster. Per-day variation: day d multiplies money and hours by (1 + d/10).
ATOMS = [
    atom("search", "deployment", "api", "api-7d4", "node-a",
         {"team": "search", "app.kubernetes.io/name": "search-api"},
         cpuCost=1.23456, ramCost=0.45678, pvCost=0.1, networkCost=0.02345, loadBalancerCost=0.6,
         cpuCoreHours=48.0, ramByteHours=103079215104.0, pvByteHours=257698037760.0, cpuEfficiency=0.41234,
         ramEfficiency=0.6),
    atom("search", "statefulset", "elasticsearch", "elasticsearch-0", "node-b",
         {"team": "search", "app.kubernetes.io/name": "elasticsearch"},
         cpuCost=2.5, ramCost=1.75001, pvCost=0.88888, cpuCoreHours=96.0, ramByteHours=412316860416.0,
         pvByteHours=2576980377600.0, cpuEfficiency=0.2, ramEfficiency=0.71),
    atom("ads", "deployment", "bidder", "bidder-5c", "node-a", {"team": "ads", "app.kubernetes.io/name": "bidder"},
         cpuCost=3.33333, cpuCostAdjustment=-0.33333, ramCost=0.66667, sharedCost=0.2, externalCost=0.3,
         cpuCoreHours=120.0, ramByteHours=206158430208.0, cpuEfficiency=0.9, ramEfficiency=0.5),
    # A job with no CPU request: efficiency is NaN, which the API writes as null.
    atom("ads", "job", "nightly-report", "nightly-report-x1", "node-b", {"team": "ads"},
         cpuCost=0.05, ramCost=0.01, cpuCoreHours=2.0, ramByteHours=1073741824.0, cpuEfficiency=None,
         ramEfficiency=None),
    # Pods without a team label: the label segment is __unallocated__.
    atom("kube-system", "daemonset", "aws-node", "aws-node-abc", "node-a", {"app.kubernetes.io/name": "aws-node"},
         cpuCost=0.4, ramCost=0.1, cpuCoreHours=24.0, ramByteHours=25769803776.0),
    # A bare pod: no controller.
    atom("default", "", "", "debug-shell", "node-b", {"team": "search"}, cpuCost=0.02, ramCost=0.01,
         cpuCoreHours=1.0, ramByteHours=1073741824.0),
    # GPUs: idle trainer (3 %), busy batch job (85 %), a notebook without DCGM data, two pods sharing one GPU.
    atom("ml", "deployment", "trainer", "trainer-0", "gpu-node-1", {"team": "ml"},
         cpuCost=0.8, ramCost=0.4, gpuCost=73.44, gpuHours=24.0, gpuCount=1.0, cpuCoreHours=16.0,
         ramByteHours=68719476736.0, gpuEfficiency=0.03,
         gpuAllocation={"gpuDevice": "nvidia0", "gpuModel": "Tesla V100", "gpuUUID": "GPU-1111",
                        "isGPUShared": False, "gpuUsageAverage": 0.03, "gpuRequestAverage": 1.0}),
    atom("ml", "job", "batch-infer", "batch-infer-9", "gpu-node-1", {"team": "ml"},
         cpuCost=0.6, ramCost=0.3, gpuCost=146.88, gpuHours=48.0, gpuCount=2.0, cpuCoreHours=8.0,
         ramByteHours=34359738368.0, gpuEfficiency=0.85,
         gpuAllocation={"gpuDevice": "nvidia1", "gpuModel": "Tesla V100", "gpuUUID": "GPU-2222",
                        "isGPUShared": False, "gpuUsageAverage": 1.7, "gpuRequestAverage": 2.0}),
    atom("research", "deployment", "notebook", "notebook-0", "gpu-node-2", {"team": "research"},
         cpuCost=0.2, ramCost=0.1, gpuCost=73.44, gpuHours=24.0, gpuCount=1.0, cpuCoreHours=4.0,
         ramByteHours=17179869184.0, gpuEfficiency=None,
         gpuAllocation={"gpuDevice": "nvidia0", "gpuModel": "Tesla V100", "gpuUUID": "GPU-3333",
                        "isGPUShared": False, "gpuUsageAverage": None, "gpuRequestAverage": 1.0}),
    atom("inference", "deployment", "llm-a", "llm-a-0", "gpu-node-3", {"team": "ml"},
         cpuCost=0.1, ramCost=0.1, gpuCost=36.72, gpuHours=24.0, gpuCount=1.0, cpuCoreHours=2.0,
         ramByteHours=8589934592.0, gpuEfficiency=0.02,
         gpuAllocation={"gpuDevice": "nvidia0", "gpuModel": "Tesla T4", "gpuUUID": "GPU-4444",
                        "isGPUShared": True, "gpuUsageAverage": 0.02, "gpuRequestAverage": 1.0}),
    atom("inference", "deployment", "llm-b", "llm-b-0", "gpu-node-3", {"team": "ml"},
         cpuCost=0.1, ramCost=0.1, gpuCost=36.72, gpuHours=24.0, gpuCount=1.0, cpuCoreHours=2.0,
         ramByteHours=8589934592.0, gpuEfficiency=0.5,
         gpuAllocation={"gpuDevice": "nvidia0", "gpuModel": "Tesla T4", "gpuUUID": "GPU-4444",
                        "isGPUShared": True, "gpuUsageAverage": 0.5, "gpuRequestAverage": 1.0}),
]

# Capacity no pod used, per node (idleByNode=true) and summed per cluster otherwise.
IDLE_BY_NODE = {
    "node-a": {"cpuCost": 1.5, "ramCost": 0.5},
    "node-b": {"cpuCost": 0.75, "ramCost": 0.25},
    "gpu-node-2": {"cpuCost": 0.1, "ramCost": 0.05, "gpuCost": 73.44, "gpuHours": 24.0, "gpuCount": 1.0},
}


class State:
    log: list[tuple[str, dict, dict]] = []  # (path, query, headers)
    token: str | None = None  # require this bearer token
    reject: str | None = None  # "window": text/plain 400; "query": JSON 500


def _scale(value, factor):
    return None if value is None else round(value * factor, 5)


def _full(name, props, start, end, values):
    """One allocation in the API's JSON shape; absent numbers are 0, efficiencies may be null."""
    out = {"name": name, "properties": props,
           "window": {"start": start, "end": end}, "start": start, "end": end,
           "minutes": values.get("minutes", 1440.0)}
    for key in COST_FIELDS + QUANTITY_FIELDS + ("gpuCount", "cpuCostIdle", "ramCostIdle", "gpuCostIdle"):
        out[key] = round(values.get(key, 0.0), 5)
    for key in ("cpuEfficiency", "ramEfficiency", "gpuEfficiency"):
        out[key] = values.get(key, 0.0)
    out["totalCost"] = round(sum(out[k] for k in COST_FIELDS), 5)
    out["totalEfficiency"] = values.get("totalEfficiency", 0.5)
    out.update({"pvs": None, "lbAllocations": None, "proportionalAssetResourceCosts": {},
                "sharedCostBreakdown": {}})
    if "gpuAllocation" in values:
        out["gpuAllocation"] = values["gpuAllocation"]
    return out


def _key(props, aggregate):
    parts = []
    for agg in aggregate:
        if agg.startswith("label:"):
            label = re.sub(r"[^A-Za-z0-9_]", "_", agg[6:])
            value = props["labels"].get(label)
        else:
            value = props.get(agg)
        parts.append(value if value else "__unallocated__")
    return "/".join(parts)


def _merge(target, values, factor):
    for key, value in values.items():
        if key in ("properties", "gpuAllocation") or key.endswith("Efficiency"):
            continue
        if key == "gpuCount":  # a count of devices, not an amount over time
            target[key] = max(target.get(key, 0.0), value)
            continue
        target[key] = target.get(key, 0.0) + value * factor


def _aggregate(atoms, aggregate, factor):
    groups: dict[str, dict] = {}
    for a in atoms:
        key = _key(a["properties"], aggregate)
        group = groups.setdefault(key, {"props": None, "values": {}, "members": []})
        props = dict(a["properties"])
        if group["props"] is None:
            group["props"] = props
        else:  # aggregated properties keep only what the members share
            group["props"] = {k: v for k, v in group["props"].items() if props.get(k) == v}
        _merge(group["values"], a, factor)
        group["members"].append(a)
    for group in groups.values():
        members = group["members"]
        if len(members) == 1:
            for key in ("cpuEfficiency", "ramEfficiency", "gpuEfficiency", "gpuAllocation"):
                if key in members[0]:
                    group["values"][key] = members[0][key]
    return groups


def allocation_sets(qs, idle_default):
    window = qs.get("window", "")
    m = re.fullmatch(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ),(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ)", window)
    if not m:
        return None
    start, end = (datetime.fromisoformat(x.replace("Z", "+00:00")) for x in m.groups())
    if end <= start:
        return None
    aggregate = [a for a in qs.get("aggregate", "cluster,node,namespace,pod,container").split(",") if a]
    idle = qs.get("includeIdle", qs.get("idle", "true" if idle_default else "false")) == "true"
    by_node = qs.get("idleByNode") == "true"
    accumulate = qs.get("accumulate") == "true"
    steps = []
    cursor = start
    while cursor < end:  # step=1d, the last step clipped to the window end
        step_end = min(cursor + timedelta(days=1), end)
        steps.append((cursor, step_end))
        cursor = step_end
    if accumulate:
        steps = [(start, end)]
    sets = []
    for s, e in steps:
        groups: dict[str, dict] = {}
        idle_values: dict[str, dict] = {}
        day = FIRST_DAY
        while day < e:
            overlap = (min(e, day + timedelta(days=1)) - max(s, day)).total_seconds() / 86400
            index = (day - FIRST_DAY).days
            if overlap > 0 and 0 <= index < DAYS:
                factor = (1 + index / 10) * overlap
                for key, group in _aggregate(ATOMS, aggregate, factor).items():
                    target = groups.setdefault(key, {"props": group["props"], "values": {}})
                    target["props"] = {k: v for k, v in target["props"].items() if group["props"].get(k) == v}
                    _merge(target["values"], group["values"], 1.0)
                    for k in ("cpuEfficiency", "ramEfficiency", "gpuEfficiency", "gpuAllocation"):
                        if k in group["values"]:
                            target["values"][k] = group["values"][k]
                for node, values in IDLE_BY_NODE.items():
                    name = f"{CLUSTER}/{node}/__idle__" if by_node else f"{CLUSTER}/__idle__"
                    _merge(idle_values.setdefault(name, {}), values, factor)
            day += timedelta(days=1)
        start_text, end_text = (x.strftime("%Y-%m-%dT%H:%M:%SZ") for x in (s, e))
        out = {}
        for key, group in groups.items():
            props = dict(group["props"])
            if "labels" in props:
                props["labels"] = dict(props["labels"])
            out[key] = _full(key, props, start_text, end_text, group["values"])
        if idle:
            for name, values in idle_values.items():
                props = {"cluster": CLUSTER}
                if by_node:
                    props["node"] = name.split("/")[1]
                out[name] = _full(name, props, start_text, end_text, {**values, "cpuEfficiency": 0.0})
        if out and not accumulate and s == FIRST_DAY + timedelta(days=1):
            # The API's own unallocated bucket: a pod that vanished before its namespace was scraped.
            out["__unallocated__"] = _full("__unallocated__", {"cluster": CLUSTER}, start_text, end_text,
                                           {"cpuCost": 0.12345, "ramCost": 0.04321, "cpuCoreHours": 3.0})
        sets.append(out)
    return sets


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def _send(self, code, body, kind):
        data = body.encode()
        self.send_response(code)
        self.send_header("Content-Type", kind)
        if kind.startswith("text/plain"):
            self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        url = urlparse(self.path)
        qs = {k: v[0] for k, v in parse_qs(url.query).items()}
        State.log.append((url.path, qs, dict(self.headers)))
        if State.token is not None and self.headers.get("Authorization") != f"Bearer {State.token}":
            return self._send(401, "Unauthorized\n", "text/plain; charset=utf-8")
        if url.path in ("/allocation", "/allocation/compute"):
            idle_default = False
        elif url.path in ("/model/allocation", "/model/allocation/compute"):
            idle_default = True
        else:
            return self._send(404, "404 page not found\n", "text/plain; charset=utf-8")
        if State.reject == "query":
            return self._send(500, json.dumps({"code": 500, "status": "", "data": None,
                                               "message": "Error: failed to query Prometheus: connection refused"}),
                              "application/json")
        sets = None if State.reject == "window" else allocation_sets(qs, idle_default)
        if sets is None:
            return self._send(400, f"Invalid 'window' parameter: unrecognized window: {qs.get('window', '')}\n",
                              "text/plain; charset=utf-8")
        self._send(200, json.dumps({"code": 200, "status": "success", "data": sets}), "application/json")


def start(tls_context=None):
    """Serve on 127.0.0.1 (port 0); ``tls_context`` (an ssl.SSLContext) makes it https."""
    State.log = []
    State.token = None
    State.reject = None
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    if tls_context is not None:
        server.socket = tls_context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    scheme = "https" if tls_context is not None else "http"
    return server, f"{scheme}://127.0.0.1:{server.server_address[1]}"
