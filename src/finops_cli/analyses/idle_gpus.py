"""Idle GPUs that cost money: the library behind ``finops k8s idle-gpus``.

Input is what the allocation API says about each container's GPUs over a window (see
``sources.kubernetes.gpu_allocations``); this module only judges it:

* utilisation = average GPUs busy / average GPUs requested (else the API's gpuEfficiency);
* below the threshold the allocation is idle, and its idle share ``cost * (1 - utilisation)`` is waste;
* no utilisation data (no DCGM exporter, a null usage) is ``unknown``, never idle;
* GPU capacity no pod requested (the per-node ``__idle__`` allocation) is ``unrequested``: all waste;
* a device the API marks shared counts as one GPU split among the containers on it, not one per container.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal

from finops_cli.periods import Window
from finops_cli.sources.kubernetes import GpuAllocation

IDLE, BUSY, UNKNOWN, UNREQUESTED = "idle", "busy", "unknown", "unrequested"
MICRO = Decimal("0.000001")


@dataclass
class GpuFinding:
    allocation: GpuAllocation
    status: str
    utilisation: Decimal | None  # 0..1; None when unknown
    gpus: Decimal  # GPU equivalents: a shared device is split among its containers
    gpu_hours: Decimal
    idle_cost: Decimal  # the cost of the unused share (0 unless idle or unrequested)


@dataclass
class IdleGpuReport:
    window: Window
    threshold: Decimal
    currency: str
    findings: list[GpuFinding] = field(default_factory=list)  # every GPU allocation, most waste first

    def having(self, *statuses: str) -> list[GpuFinding]:
        return [f for f in self.findings if f.status in statuses]

    @property
    def wasted(self) -> Decimal:
        return sum((f.idle_cost for f in self.findings), Decimal(0))

    @property
    def gpu_cost(self) -> Decimal:
        return sum((f.allocation.gpu_cost for f in self.findings), Decimal(0))

    @property
    def unknown_cost(self) -> Decimal:
        return sum((f.allocation.gpu_cost for f in self.having(UNKNOWN)), Decimal(0))


def utilisation(allocation: GpuAllocation) -> Decimal | None:
    if allocation.usage is None:
        return None
    if allocation.gpus > 0:
        return max(Decimal(0), allocation.usage / allocation.gpus)
    return allocation.efficiency


def find_idle_gpus(allocations: list[GpuAllocation], window: Window, currency: str,
                   threshold: Decimal = Decimal("0.10")) -> IdleGpuReport:
    sharing = Counter((a.cluster, a.node, a.device) for a in allocations
                      if a.shared and a.device and not a.unrequested)
    findings = []
    for allocation in allocations:
        factor = Decimal(1)
        if allocation.shared and allocation.device and allocation.gpus > 0:
            # Time-slicing reports a whole GPU to every container on the device: count each one's share.
            share = Decimal(1) / sharing[(allocation.cluster, allocation.node, allocation.device)]
            factor = min(Decimal(1), share / allocation.gpus)
        gpus, hours = allocation.gpus * factor, allocation.gpu_hours * factor
        if allocation.unrequested:
            status, used, idle_cost = UNREQUESTED, Decimal(0), allocation.gpu_cost
        else:
            used = utilisation(allocation)
            if used is None:
                status, idle_cost = UNKNOWN, Decimal(0)
            elif used < threshold:
                status, idle_cost = IDLE, allocation.gpu_cost * (1 - min(used, Decimal(1)))
            else:
                status, idle_cost = BUSY, Decimal(0)
        findings.append(GpuFinding(allocation, status, used, gpus, hours, idle_cost.quantize(MICRO)))
    order = {UNREQUESTED: 0, IDLE: 0, UNKNOWN: 1, BUSY: 2}
    findings.sort(key=lambda f: (order[f.status], -f.idle_cost, -f.allocation.gpu_cost, f.allocation.name))
    return IdleGpuReport(window, threshold, currency, findings)
