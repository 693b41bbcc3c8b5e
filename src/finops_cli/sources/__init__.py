"""The source registry: one line per source type, read without importing any source.

``--help``, ``config validate`` and shell completion read only this table; a source's
module is imported when a config names its type, and its cloud SDK only when it pulls.
Adding a source touches its module, this table, its docs page and its tests.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass

from finops_cli.errors import ConfigError


@dataclass(frozen=True)
class SourceType:
    type: str
    target: str  # "module:Class" of the Source subclass
    title: str
    extra: str | None  # the pip extra that brings its SDK, if any
    docs: str  # docs page
    # Its rows re-divide spend that other sources already bill (Kubernetes allocations): reports leave
    # them out unless asked. Kept here, not on the class, so reports need not import source modules.
    allocation_only: bool = False

    def load(self):
        module_name, class_name = self.target.split(":")
        return getattr(importlib.import_module(module_name), class_name)


REGISTRY: dict[str, SourceType] = {
    entry.type: entry
    for entry in (
        SourceType("focus", "finops_cli.sources.focus_files:FocusFileSource",
                   "FOCUS export files (CSV/Parquet)", None, "docs/sources/focus.md"),
        SourceType("aws", "finops_cli.sources.aws:AwsSource",
                   "AWS Cost Explorer (GetCostAndUsage)", "aws", "docs/sources/aws.md"),
        SourceType("azure", "finops_cli.sources.azure:AzureSource",
                   "Azure Cost Management (Query API)", "azure", "docs/sources/azure.md"),
        SourceType("opencost", "finops_cli.sources.kubernetes:OpenCostSource",
                   "OpenCost Kubernetes allocations", None, "docs/sources/kubernetes.md", allocation_only=True),
        SourceType("kubecost", "finops_cli.sources.kubernetes:KubecostSource",
                   "Kubecost Kubernetes allocations", None, "docs/sources/kubernetes.md", allocation_only=True),
        SourceType("gcp", "finops_cli.sources.gcp:GcpSource",
                   "GCP Cloud Billing export in BigQuery", "gcp", "docs/sources/gcp.md"),
    )
}


def source_type(name: str, where: str = "") -> SourceType:
    try:
        return REGISTRY[name]
    except KeyError:
        known = ", ".join(sorted(REGISTRY))
        prefix = f"{where}: " if where else ""
        raise ConfigError(f"{prefix}unknown source type {name!r} (known types: {known})") from None
