"""Kubernetes workload allocations from OpenCost (``type: opencost``) and Kubecost (``type: kubecost``).

Both speak the same allocation API (``/allocation/compute`` and ``/model/allocation``); they
differ in the path and in how idle cost is asked for (OpenCost ``includeIdle``, default false;
Kubecost ``idle``, default true), so finops always asks for idle explicitly and unshared.

One row per day, workload (cluster / namespace / controller plus the configured labels) and
cost component (cpu, ram, gpu, pv, network, loadbalancer, shared, external). Allocations
re-divide spend the cloud bill already carries (the nodes, disks and load balancers), so the
rows have BilledCost 0, EffectiveCost the allocated cost and a FOCUS 1.3 AllocatedMethodId;
``report`` leaves them out unless asked (see docs/sources/kubernetes.md).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any, ClassVar, Literal

from pydantic import Field, field_validator

from finops_cli.errors import SourceError
from finops_cli.periods import Window, iso, midnight, parse_moment, utcnow
from finops_cli.sources.base import Source, SourceConfig

IDLE, UNALLOCATED, UNMOUNTED, SHARED = "__idle__", "__unallocated__", "__unmounted__", "__shared__"
SPECIAL_KINDS = {IDLE: "idle", UNALLOCATED: "unallocated", UNMOUNTED: "unmounted", SHARED: "shared"}
BASE_AGGREGATE = ("cluster", "namespace", "controllerKind", "controller")
GIB = Decimal(2**30)
TIMEOUT_SECONDS = 120


@dataclass(frozen=True)
class Component:
    name: str  # x_Properties.component
    cost: str
    adjustment: str | None
    quantity: str | None = None
    unit: str | None = None
    divisor: Decimal | None = None  # bytes -> GiB
    efficiency: str | None = None


COMPONENTS = (
    Component("cpu", "cpuCost", "cpuCostAdjustment", "cpuCoreHours", "Core-Hours", efficiency="cpuEfficiency"),
    Component("ram", "ramCost", "ramCostAdjustment", "ramByteHours", "GiB-Hours", GIB, efficiency="ramEfficiency"),
    Component("gpu", "gpuCost", "gpuCostAdjustment", "gpuHours", "GPU-Hours", efficiency="gpuEfficiency"),
    Component("pv", "pvCost", "pvCostAdjustment", "pvByteHours", "GiB-Hours", GIB),
    Component("network", "networkCost", "networkCostAdjustment"),
    Component("loadbalancer", "loadBalancerCost", "loadBalancerCostAdjustment"),
    Component("shared", "sharedCost", None),
    Component("external", "externalCost", None),
)


class KubernetesConfig(SourceConfig):
    url: str = Field(pattern=r"^https?://", description="base URL of the OpenCost or Kubecost API")
    token_env: str | None = Field(default=None, description="environment variable holding a bearer token")
    verify_tls: bool | str = Field(default=True, description="false, or a CA bundle file, for private TLS")
    labels: list[str] = Field(default_factory=list, description="pod label keys to keep as tags")
    cluster: str | None = Field(default=None, description="cluster name when the API does not report one")
    currency: str = Field(default="USD", pattern=r"^[A-Z]{3}$", description="currency of the cost model")

    @field_validator("labels")
    @classmethod
    def _label_keys(cls, value: list[str]) -> list[str]:
        for key in value:
            if not key or len(key) > 316 or not re.match(r"^[A-Za-z0-9./_-]+$", key):
                raise ValueError(f"{key!r} is not a Kubernetes label key")
        return value


class OpenCostConfig(KubernetesConfig):
    type: Literal["opencost"]


class KubecostConfig(KubernetesConfig):
    type: Literal["kubecost"]


def sanitize_label(key: str) -> str:
    """The Prometheus form the API uses for label keys: ``app.kubernetes.io/name`` -> ``app_kubernetes_io_name``."""
    return re.sub(r"[^A-Za-z0-9_]", "_", key)


def to_decimal(value: Any) -> Decimal:
    """API floats are rounded to 5 places; NaN and Inf arrive as null. Converted one by one, never summed as floats."""
    if value is None or isinstance(value, bool):
        return Decimal(0)
    if isinstance(value, float):
        return Decimal(repr(value))
    return Decimal(str(value))


def optional_decimal(value: Any) -> Decimal | None:
    return None if value is None or isinstance(value, bool) else to_decimal(value)


class KubernetesSource(Source):
    """Shared by both products; subclasses name the path and the idle parameter."""

    default_refresh = timedelta(hours=6)
    product: ClassVar[str] = ""
    idle_parameter: ClassVar[str] = ""
    days_per_request: ClassVar[int] = 7

    # -- HTTP ------------------------------------------------------------------------------
    def endpoint(self) -> str:
        raise NotImplementedError

    def _session(self):
        import requests

        session = requests.Session()
        session.headers["Accept"] = "application/json"
        if self.config.token_env:
            token = os.environ.get(self.config.token_env, "").strip()
            if not token:
                raise SourceError(self.name, f"the environment variable {self.config.token_env} (token_env) "
                                  "is not set or empty")
            session.headers["Authorization"] = f"Bearer {token}"
        verify = self.config.verify_tls
        if isinstance(verify, str) and self.base_dir is not None and not os.path.isabs(verify):
            verify = os.path.join(str(self.base_dir), verify)
        session.verify = verify
        return session

    def query(self, params: dict[str, str], session=None) -> list[dict[str, dict]]:
        """One GET of the allocation endpoint; returns ``data``, one map of allocations per step."""
        import requests

        own = session is None
        session = session or self._session()
        url = self.endpoint()
        try:
            # verify passed per request: a REQUESTS_CA_BUNDLE in the environment would override session.verify
            response = session.get(url, params=params, timeout=TIMEOUT_SECONDS, verify=session.verify)
        except requests.exceptions.SSLError as exc:
            raise SourceError(self.name, f"TLS error talking to {url}: {_reason(exc)}",
                              hint="set verify_tls to a CA bundle file (or false) for a private certificate") from None
        except requests.exceptions.RequestException as exc:
            raise SourceError(self.name, f"cannot reach the {self.product} API at {url}: {_reason(exc)}",
                              hint=f"check url (e.g. kubectl port-forward to the {self.product} service)") from None
        finally:
            if own:
                session.close()
        self.stats.requests += 1
        self.stats.bytes_processed += len(response.content)
        return self._parse(response, url)

    def _parse(self, response, url: str) -> list[dict[str, dict]]:
        status = response.status_code
        kind = response.headers.get("Content-Type", "")
        if status in (401, 403):
            hint = (f"check the token in ${self.config.token_env}" if self.config.token_env
                    else "set token_env to the variable holding a bearer token")
            raise SourceError(self.name, f"{url} refused the request (HTTP {status})", hint=hint)
        body: Any = None
        if "json" in kind or response.text[:1] in ("{", "["):
            try:
                body = response.json()
            except ValueError:
                body = None
        if status != 200 or not isinstance(body, dict):
            if isinstance(body, dict) and body.get("message"):
                detail = str(body["message"])
            elif status == 200:
                detail = (f"the answer is not allocation JSON (Content-Type {kind or 'none'}); "
                          "is url the API rather than the web UI?")
            else:
                detail = response.text.strip().splitlines()[0][:300] if response.text.strip() else "no details"
            raise SourceError(self.name, f"{url} answered HTTP {status}: {detail}")
        if body.get("code") not in (None, 200):
            message = body.get("message") or "no message"
            raise SourceError(self.name, f"{url} answered code {body.get('code')}: {message}")
        data = body.get("data")
        if data is None:
            return []
        if isinstance(data, dict):  # accumulate=true on some versions: one map, not a list
            data = [data]
        if not isinstance(data, list) or not all(isinstance(s, dict) or s is None for s in data):
            raise SourceError(self.name, f"{url}: unexpected 'data' in the answer (expected a list of allocation sets)")
        return [s or {} for s in data]

    def allocation_params(self, start: datetime, end: datetime, aggregate: list[str]) -> dict[str, str]:
        return {
            "window": f"{iso(start)},{iso(end)}",
            "aggregate": ",".join(aggregate),
            "step": "1d",
            "accumulate": "false",
            self.idle_parameter: "true",  # the two products' defaults differ: always say it
            "shareIdle": "false",
            "idleByNode": "false",
        }

    # -- the source interface ---------------------------------------------------------------------
    def aggregate(self) -> list[str]:
        return list(BASE_AGGREGATE) + [f"label:{sanitize_label(k)}" for k in self.config.labels]

    def pull(self, window: Window | None) -> Iterator[list[dict]]:
        now = utcnow().replace(second=0, microsecond=0)
        if window is None:
            window = self.default_window(None, now)
        end = min(window.end, now)
        if end <= window.start:
            return
        aggregate = self.aggregate()
        session = self._session()
        try:
            start = window.start
            while start < end:
                chunk_end = min(start + timedelta(days=self.days_per_request), end)
                sets = self.query(self.allocation_params(start, chunk_end, aggregate), session)
                rows: list[dict] = []
                for allocation_set in sets:
                    for name, allocation in allocation_set.items():
                        rows.extend(self.rows(name, allocation or {}, aggregate, now))
                # Kubecost's ETL answers in whole days: a set reaching past this chunk belongs to the next one
                yield [r for r in rows if start <= r["ChargePeriodStart"] < chunk_end]
                start = chunk_end
        finally:
            session.close()
        if window.end > now:
            self.stats.estimated_days.add(now.date())
            self.stats.notes.append(f"{now:%Y-%m-%d} so far (re-pulled next sync)")

    def rows(self, name: str, allocation: dict, aggregate: list[str], now: datetime) -> list[dict]:
        props = allocation.get("properties") or {}
        window = allocation.get("window") or {}
        start_text = window.get("start") or allocation.get("start")
        end_text = window.get("end") or allocation.get("end")
        if not start_text or not end_text:
            raise SourceError(self.name, f"allocation {name!r} has no window")
        start = parse_moment(start_text, "window.start")
        end = parse_moment(end_text, "window.end")
        fields = self.identity(name, props, aggregate)
        kind = fields.pop("kind")
        labels = fields.pop("labels")
        cluster = fields.get("cluster") or self.config.cluster
        path = "/".join(v for v in (cluster, fields.get("namespace"), fields.get("controllerKind"),
                                    fields.get("controller")) if v)
        resource_name = fields.get("controller") or fields.get("namespace") or name
        if kind != "workload":
            path = "/".join(v for v in (cluster, name.split("/")[-1] if kind == "idle" else name) if v)
            resource_name = name
        month = date(start.year, start.month, 1)
        next_month = date(month.year + month.month // 12, month.month % 12 + 1, 1)
        method = f"{self.config.type}-allocation"
        base = {
            "ChargePeriodStart": start, "ChargePeriodEnd": end,
            "BillingPeriodStart": midnight(month), "BillingPeriodEnd": midnight(next_month),
            "BillingCurrency": self.config.currency,
            "ChargeCategory": "Usage", "ChargeFrequency": "Usage-Based", "PricingCategory": "Standard",
            "ProviderName": "Kubernetes", "ServiceProviderName": "Kubernetes",
            "HostProviderName": _host_provider(props.get("providerID")),
            "ServiceName": "Kubernetes", "ServiceCategory": "Compute", "ServiceSubcategory": "Containers",
            "SubAccountId": cluster, "SubAccountName": cluster, "SubAccountType": "Kubernetes Cluster",
            "ResourceId": path or name, "ResourceName": resource_name,
            "ResourceType": _resource_type(kind, fields),
            "Tags": labels or None,
            "AllocatedMethodId": method, "AllocatedResourceId": path or name,
            "AllocatedResourceName": resource_name, "AllocatedTags": labels or None,
            "x_CostBasis": "BilledCost=0 (allocation); ListCost=model price; EffectiveCost=model price+adjustment",
            "x_Estimated": start.date() >= now.date(),  # today so far: the next sync re-pulls it
        }
        properties = {k: v for k, v in fields.items() if v}
        properties["cluster"] = cluster
        properties["allocation"] = kind
        properties["allocation_name"] = name
        out = []
        for component in COMPONENTS:
            listed = to_decimal(allocation.get(component.cost))
            adjustment = to_decimal(allocation.get(component.adjustment)) if component.adjustment else Decimal(0)
            quantity = optional_decimal(allocation.get(component.quantity)) if component.quantity else None
            if quantity is not None and component.divisor:
                quantity = (quantity / component.divisor).quantize(Decimal("1e-9"))
            if not listed and not adjustment and not quantity:
                continue
            effective = listed + adjustment
            extra = {"component": component.name}
            if component.efficiency:
                efficiency = allocation.get(component.efficiency)
                extra["efficiency"] = "unknown" if efficiency is None else repr(float(efficiency))
            out.append({
                **base,
                "BilledCost": Decimal(0), "EffectiveCost": effective, "ListCost": listed, "ContractedCost": listed,
                "ConsumedQuantity": quantity if component.unit else None,
                "ConsumedUnit": component.unit if quantity is not None else None,
                "ChargeDescription": f"{component.name} of {name}",
                "x_Properties": {**properties, **extra},
            })
        return out

    def identity(self, name: str, props: dict, aggregate: list[str]) -> dict[str, Any]:
        """Namespace, controller and labels of one allocation, from its key and its properties.

        Multi-aggregation keys join one segment per aggregate with ``/``; a missing field or label
        is ``__unallocated__``. OpenCost names label segments by value, older Kubecost ``key=value``.
        """
        segments = name.split("/")
        by_aggregate = dict(zip(aggregate, segments)) if len(segments) == len(aggregate) else {}
        # A workload missing one field (a bare pod has no controller) stays a workload; with
        # every field but the cluster missing, the cost belongs to nobody: unallocated.
        beyond_cluster = [s for a, s in by_aggregate.items() if a != "cluster"] or segments
        kind = "workload"
        for segment in segments:
            if segment in SPECIAL_KINDS and segment != UNALLOCATED:
                kind = SPECIAL_KINDS[segment]
                break
        else:
            if all(s == UNALLOCATED for s in beyond_cluster):
                kind = "unallocated"
        fields: dict[str, Any] = {"kind": kind}
        for key in BASE_AGGREGATE:
            value = props.get(key) or by_aggregate.get(key)
            fields[key] = None if value in (None, "", UNALLOCATED, IDLE) else value
        api_labels = props.get("labels") or {}
        labels: dict[str, str] = {}
        for key in self.config.labels:
            sanitized = sanitize_label(key)
            value = by_aggregate.get(f"label:{sanitized}")
            if value is not None and "=" in value:
                value = value.split("=", 1)[1]
            if value in (None, "", UNALLOCATED):
                value = api_labels.get(sanitized, api_labels.get(key))
            if value not in (None, "", UNALLOCATED) and kind == "workload":
                labels[key] = str(value)
        fields["labels"] = labels
        return fields


class OpenCostSource(KubernetesSource):
    config_class = OpenCostConfig
    product = "OpenCost"
    idle_parameter = "includeIdle"
    days_per_request = 7  # /allocation/compute asks Prometheus live: long windows time out

    def endpoint(self) -> str:
        return self.config.url.rstrip("/") + "/allocation/compute"


class KubecostSource(KubernetesSource):
    config_class = KubecostConfig
    product = "Kubecost"
    idle_parameter = "idle"
    days_per_request = 31  # /model/allocation reads Kubecost's daily ETL: cheap

    def endpoint(self) -> str:
        base = self.config.url.rstrip("/")
        return base + ("/allocation" if base.endswith("/model") else "/model/allocation")


def _host_provider(provider_id: Any) -> str | None:
    text = str(provider_id or "")
    for prefix, provider in (("aws://", "AWS"), ("gce://", "Google Cloud"), ("azure://", "Microsoft Azure")):
        if text.startswith(prefix):
            return provider
    return None


CONTROLLER_KINDS = {"deployment": "Deployment", "statefulset": "StatefulSet", "daemonset": "DaemonSet",
                    "replicaset": "ReplicaSet", "job": "Job", "cronjob": "CronJob", "rollout": "Rollout"}


def _resource_type(kind: str, fields: dict) -> str:
    if kind != "workload":
        return f"Kubernetes {kind.capitalize()} Cost"
    if fields.get("controller"):
        kind_name = str(fields.get("controllerKind") or "controller")
        return f"Kubernetes {CONTROLLER_KINDS.get(kind_name.lower(), kind_name.capitalize())}"
    return "Kubernetes Namespace" if fields.get("namespace") else "Kubernetes Workload"


def _reason(exc: Exception) -> str:
    text = str(exc)
    match = re.search(r"\[Errno -?\d+\] ([^'\")]+)|(Connection refused|timed out|Name or service not known|"
                      r"certificate verify failed[^'\")]*)", text)
    if match:
        return (match.group(1) or match.group(2)).strip()
    return type(exc).__name__


# -- live GPU utilisation (finops k8s idle-gpus) -------------------------------------------------
GPU_AGGREGATE = ("cluster", "node", "namespace", "controllerKind", "controller", "pod", "container")


@dataclass
class GpuAllocation:
    """One container's GPU allocation over a window, as the API reports it (no judgement yet)."""

    name: str
    cluster: str | None
    node: str | None
    namespace: str | None
    workload: str | None  # controllerKind/controller, else the pod
    container: str | None
    gpus: Decimal  # average GPUs requested (whole GPUs unless the API says the device is shared)
    gpu_hours: Decimal
    gpu_cost: Decimal  # gpuCost + gpuCostAdjustment
    usage: Decimal | None  # average GPUs busy; None: no utilisation data (no DCGM exporter)
    efficiency: Decimal | None  # the API's gpuEfficiency; null when it was NaN
    shared: bool  # the API marks the device shared (time-slicing, MPS, MIG)
    device: str | None  # gpuUUID
    model: str | None
    unrequested: bool = False  # the __idle__ row: GPU capacity on the node that no pod requested


def gpu_allocation(name: str, allocation: dict, default_cluster: str | None) -> GpuAllocation | None:
    """The GPU part of one allocation, or None if it has no GPU."""
    props = allocation.get("properties") or {}
    nested = allocation.get("gpuAllocation") or {}
    cost = to_decimal(allocation.get("gpuCost")) + to_decimal(allocation.get("gpuCostAdjustment"))
    hours = to_decimal(allocation.get("gpuHours"))
    request = optional_decimal(nested.get("gpuRequestAverage"))
    if request is None:
        request = optional_decimal(allocation.get("gpuRequestAverage"))
    count = to_decimal(allocation.get("gpuCount"))
    gpus = request if request else count
    if not (cost or hours or gpus):
        return None
    usage = optional_decimal(nested.get("gpuUsageAverage")) if "gpuUsageAverage" in nested else None
    if usage is None:
        usage = optional_decimal(allocation.get("gpuUsageAverage"))
    kind, controller = props.get("controllerKind"), props.get("controller")
    workload = f"{kind}/{controller}" if kind and controller else controller or props.get("pod")
    node = props.get("node")
    if not node:
        parts = name.split("/")
        node = parts[1] if len(parts) > 2 and parts[-1] == IDLE else None
    return GpuAllocation(
        name=name, cluster=props.get("cluster") or default_cluster, node=node,
        namespace=props.get("namespace"), workload=workload, container=props.get("container"),
        gpus=gpus, gpu_hours=hours, gpu_cost=cost, usage=usage,
        efficiency=optional_decimal(allocation.get("gpuEfficiency")),
        shared=nested.get("isGPUShared") is True, device=nested.get("gpuUUID") or None,
        model=nested.get("gpuModel") or None, unrequested=IDLE in name.split("/"),
    )


def gpu_allocations(source: KubernetesSource, window: Window) -> list[GpuAllocation]:
    """Per-container GPU allocations over ``window``, accumulated, with per-node idle GPU capacity."""
    params = {
        "window": f"{iso(window.start)},{iso(window.end)}",
        "aggregate": ",".join(GPU_AGGREGATE),
        "accumulate": "true",
        source.idle_parameter: "true",
        "shareIdle": "false",
        "idleByNode": "true",
    }
    out = []
    for allocation_set in source.query(params):
        for name, allocation in allocation_set.items():
            found = gpu_allocation(name, allocation or {}, source.config.cluster)
            if found is not None:
                out.append(found)
    return out
