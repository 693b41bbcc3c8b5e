"""A realistic, generated FOCUS data set for ``finops demo``: no credentials, no network.

90 days of AWS, Azure, GCP, Kubernetes and AI-API spend for a handful of teams and projects,
with weekday patterns, month-end tax and credits, some untagged spend, tag keys spelled
differently per cloud (``team``/``Team``) and one cost spike. The same seed and end date
always give the same files.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

TEAMS = {
    "search": ("cc-1001", "ana@example.com", ["search-api", "indexer"]),
    "checkout": ("cc-1002", "ben@example.com", ["payments", "cart"]),
    "data": ("cc-2001", "chen@example.com", ["warehouse", "etl"]),
    "ml": ("cc-2002", "dara@example.com", ["recsys", "assistant"]),
    "platform": ("cc-3001", "eli@example.com", ["k8s", "observability"]),
}

CLOUDS = {
    "aws": dict(provider="AWS", issuer="Amazon Web Services, Inc.", billing_account="111111111111",
                accounts=[("222222222222", "prod"), ("333333333333", "staging")], team_key="team",
                regions=[("us-east-1", "US East (N. Virginia)"), ("eu-west-1", "Europe (Ireland)")]),
    "azure": dict(provider="Microsoft", issuer="Microsoft", billing_account="/providers/Microsoft.Billing/"
                  "billingAccounts/8611537", accounts=[("/subscriptions/0f1e2d3c-aaaa-4bbb-8ccc-000000000001",
                                                        "prod-sub")], team_key="Team",
                  regions=[("westeurope", "West Europe")]),
    "gcp": dict(provider="Google Cloud", issuer="Google", billing_account="01A2B3-C4D5E6-F7G8H9",
                accounts=[("acme-prod", "acme-prod"), ("acme-analytics", "acme-analytics")], team_key="team",
                regions=[("us-central1", "Iowa")]),
}

# (cloud, service, category, subcategory, resource type, daily base cost, tags-quality)
SERVICES = [
    ("aws", "Amazon Elastic Compute Cloud", "Compute", "Virtual Machines", "Instance", 42, "ok"),
    ("aws", "Amazon Relational Database Service", "Databases", "Relational Databases", "DBInstance", 30, "ok"),
    ("aws", "Amazon Simple Storage Service", "Storage", "Object Storage", "Bucket", 9, "partial"),
    ("aws", "AWS Lambda", "Compute", "Serverless Compute", "Function", 4, "ok"),
    ("aws", "Amazon CloudFront", "Networking", "Content Delivery", "Distribution", 6, "none"),
    ("aws", "Amazon Bedrock", "AI and Machine Learning", "Generative AI", "Model", 12, "ok"),
    ("azure", "Virtual Machines", "Compute", "Virtual Machines", "Virtual machine", 25, "ok"),
    ("azure", "Azure SQL Database", "Databases", "Relational Databases", "SQL database", 14, "ok"),
    ("azure", "Storage Accounts", "Storage", "Object Storage", "Storage account", 5, "partial"),
    ("azure", "Azure OpenAI", "AI and Machine Learning", "Generative AI", "Cognitive Services account", 10, "ok"),
    ("gcp", "Compute Engine", "Compute", "Virtual Machines", "Instance", 20, "ok"),
    ("gcp", "BigQuery", "Databases", "Data Warehouses", "Dataset", 16, "ok"),
    ("gcp", "Cloud Storage", "Storage", "Object Storage", "Bucket", 4, "none"),
    ("gcp", "Vertex AI", "AI and Machine Learning", "Machine Learning", "Endpoint", 11, "ok"),
]

AI_APIS = [
    ("OpenAI", "OpenAI API", "gpt-4o", Decimal("2.50"), Decimal("10.00")),
    ("Anthropic", "Anthropic API", "claude-sonnet", Decimal("3.00"), Decimal("15.00")),
]

ENVIRONMENTS = ["prod", "prod", "staging", "dev"]


@dataclass
class DemoData:
    files: list[Path] = field(default_factory=list)
    rows: int = 0
    start: date | None = None
    end: date | None = None  # exclusive
    spike_day: date | None = None


def _tags(rng: random.Random, team: str, project: str, env: str, quality: str, team_key: str) -> dict:
    cost_center, owner, _ = TEAMS[team]
    tags = {team_key: team, "project": project, "environment": env, "cost_center": cost_center, "owner": owner}
    if quality == "none":
        return {"created-by": "console"} if rng.random() < 0.5 else {}
    if quality == "partial":
        for key in ("cost_center", "owner"):
            tags.pop(key)
        if rng.random() < 0.5:
            tags.pop(team_key)
    return tags


def _money(value: float) -> Decimal:
    return Decimal(str(round(value, 6)))


def generate(folder: Path, *, seed: int = 42, days: int = 90, end: date | None = None) -> DemoData:
    """Write the demo data files into ``folder/data``; ``end`` is the exclusive last day (default tomorrow)."""
    import pyarrow as pa
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    from finops_cli.periods import today

    rng = random.Random(seed)
    end = end or today() + timedelta(days=1)
    start = end - timedelta(days=days)
    spike_day = end - timedelta(days=12)
    data_dir = folder / "data"
    data_dir.mkdir(parents=True, exist_ok=True)
    out = DemoData(start=start, end=end, spike_day=spike_day)

    # Resources: each service gets a few, spread over teams, projects and environments.
    resources = []
    for cloud, service, category, subcategory, rtype, base, quality in SERVICES:
        info = CLOUDS[cloud]
        for n in range(rng.randint(2, 4)):
            team = "data" if service == "BigQuery" else rng.choice(list(TEAMS))
            project = rng.choice(TEAMS[team][2])
            env = rng.choice(ENVIRONMENTS)
            account = rng.choice(info["accounts"])
            region = rng.choice(info["regions"])
            name = f"{project}-{service.split()[-1].lower()}-{n + 1}"
            rid = _resource_id(cloud, account[0], region[0], rtype, name)
            resources.append(dict(cloud=cloud, service=service, category=category, subcategory=subcategory,
                                  rtype=rtype, base=base * rng.uniform(0.4, 1.6), team=team, project=project,
                                  account=account, region=region, id=rid, name=name,
                                  tags=_tags(rng, team, project, env, quality, info["team_key"]),
                                  weekday=rng.uniform(0.5, 0.9) if env != "prod" else 1.0))

    rows_by_cloud: dict[str, list[dict]] = {c: [] for c in CLOUDS}
    for offset in range(days):
        day = start + timedelta(days=offset)
        weekend = day.weekday() >= 5
        growth = 1 + offset / days * 0.15
        for res in resources:
            factor = growth * (res["weekday"] * 0.6 if weekend and res["weekday"] < 1 else 1.0)
            factor *= rng.uniform(0.9, 1.1)
            if day == spike_day and res["service"] == "BigQuery":
                factor *= 8  # the spike: a runaway query
            cost = _money(res["base"] * factor)
            rows_by_cloud[res["cloud"]].append(_usage_row(res, day, cost))
        if day.day == 1 or offset == 0:
            for cloud in CLOUDS:
                rows_by_cloud[cloud].extend(_monthly_rows(cloud, day, rng))

    schema_types = {"decimal": pa.decimal128(24, 10), "ts": pa.timestamp("us", tz="UTC")}
    for cloud, rows in rows_by_cloud.items():
        table = _table(rows, schema_types)
        path = data_dir / f"{cloud}.parquet"
        pq.write_table(table, path)
        out.files.append(path)
        out.rows += len(rows)

    k8s = _kubernetes_rows(rng, start, days)
    path = data_dir / "kubernetes.parquet"
    pq.write_table(_table(k8s, schema_types), path)
    out.files.append(path)
    out.rows += len(k8s)

    ai = _ai_rows(rng, start, days)
    path = data_dir / "ai-apis.csv"
    pacsv.write_csv(_table(ai, None), path)
    out.files.append(path)
    out.rows += len(ai)
    return out


def _resource_id(cloud: str, account: str, region: str, rtype: str, name: str) -> str:
    if cloud == "aws":
        return f"arn:aws:{rtype.lower()}:{region}:{account}:{name}"
    if cloud == "azure":
        return f"{account}/resourceGroups/rg-{name.split('-')[0]}/providers/Microsoft.Demo/{rtype.replace(' ', '')}/{name}"
    return f"//{rtype.lower()}.googleapis.com/projects/{account}/{name}"


def _base_row(cloud: str, day: date, account: tuple[str, str], category: str) -> dict:
    info = CLOUDS[cloud]
    month = day.replace(day=1)
    next_month = (month + timedelta(days=32)).replace(day=1)
    return {
        "ProviderName": info["provider"], "PublisherName": info["issuer"], "InvoiceIssuerName": info["issuer"],
        "BillingAccountId": info["billing_account"], "BillingAccountName": "Acme Corp",
        "SubAccountId": account[0], "SubAccountName": account[1], "BillingCurrency": "USD",
        "BillingPeriodStart": datetime.combine(month, datetime.min.time()),
        "BillingPeriodEnd": datetime.combine(next_month, datetime.min.time()),
        "ChargePeriodStart": datetime.combine(day, datetime.min.time()),
        "ChargePeriodEnd": datetime.combine(day + timedelta(days=1), datetime.min.time()),
        "ChargeCategory": category,
    }


def _usage_row(res: dict, day: date, cost: Decimal) -> dict:
    row = _base_row(res["cloud"], day, res["account"], "Usage")
    list_cost = (cost * Decimal("1.18")).quantize(Decimal("0.000001"))
    row.update({
        "ChargeFrequency": "Usage-Based", "PricingCategory": "Standard",
        "BilledCost": cost, "EffectiveCost": cost, "ListCost": list_cost, "ContractedCost": cost,
        "ServiceName": res["service"], "ServiceCategory": res["category"], "ServiceSubcategory": res["subcategory"],
        "RegionId": res["region"][0], "RegionName": res["region"][1],
        "ResourceId": res["id"], "ResourceName": res["name"], "ResourceType": res["rtype"],
        "ChargeDescription": f"{res['service']} usage", "Tags": json.dumps(res["tags"], sort_keys=True),
    })
    return row


def _monthly_rows(cloud: str, day: date, rng: random.Random) -> list[dict]:
    account = CLOUDS[cloud]["accounts"][0]
    tax = _base_row(cloud, day, account, "Tax")
    amount = _money(rng.uniform(40, 90))
    tax.update({"BilledCost": amount, "EffectiveCost": amount, "ListCost": amount, "ContractedCost": amount,
                "ServiceName": "Tax", "ServiceCategory": "Other", "ChargeFrequency": "Recurring",
                "ChargeDescription": "Sales tax"})
    credit = _base_row(cloud, day, account, "Credit")
    amount = -_money(rng.uniform(20, 60))
    credit.update({"BilledCost": amount, "EffectiveCost": amount, "ListCost": amount, "ContractedCost": amount,
                   "ServiceName": "Promotional credit", "ServiceCategory": "Other", "ChargeFrequency": "One-Time",
                   "ChargeDescription": "Startup program credit"})
    return [tax, credit]


def _kubernetes_rows(rng: random.Random, start: date, days: int) -> list[dict]:
    namespaces = [("search", "search-api"), ("checkout", "payments"), ("data", "etl"), ("ml", "recsys"),
                  ("platform", "observability")]
    rows = []
    for offset in range(days):
        day = start + timedelta(days=offset)
        for team, project in namespaces + [("__idle__", None)]:
            cost = _money(rng.uniform(6, 14) if team != "__idle__" else rng.uniform(3, 5))
            row = _base_row("aws", day, ("onprem-cluster-1", "onprem-cluster-1"), "Usage")
            row.update({
                "ProviderName": "Kubernetes", "PublisherName": "Acme Platform", "InvoiceIssuerName": "Acme Platform",
                "BillingAccountId": "onprem", "BillingAccountName": "On-premises",
                "BilledCost": cost, "EffectiveCost": cost, "ListCost": cost, "ContractedCost": cost,
                "ServiceName": "Kubernetes", "ServiceCategory": "Compute", "ServiceSubcategory": "Containers",
                "ChargeFrequency": "Usage-Based", "PricingCategory": "Standard",
                "ResourceId": f"onprem-cluster-1/{team if team != '__idle__' else '__idle__'}",
                "ResourceName": team if team == "__idle__" else f"namespace/{team}",
                "ResourceType": "Namespace",
                "Tags": json.dumps({} if team == "__idle__" else {
                    "team": team, "project": project, "environment": "prod", "cost_center": TEAMS[team][0],
                    "owner": TEAMS[team][1]}),
            })
            rows.append(row)
    return rows


def _ai_rows(rng: random.Random, start: date, days: int) -> list[dict]:
    rows = []
    for offset in range(days):
        day = start + timedelta(days=offset)
        for provider, service, model, price_in, price_out in AI_APIS:
            for team, feature in (("ml", "assistant"), ("search", "search-api")):
                tokens_in = rng.randint(2_000_000, 9_000_000)
                tokens_out = rng.randint(300_000, 1_500_000)
                cost = (price_in * tokens_in + price_out * tokens_out) / 1_000_000
                row = _base_row("aws", day, (f"org-{provider.lower()}", f"{provider} org"), "Usage")
                row.update({
                    "ProviderName": provider, "PublisherName": provider, "InvoiceIssuerName": provider,
                    "BillingAccountId": f"org-{provider.lower()}", "BillingAccountName": f"{provider} organization",
                    "BilledCost": cost, "EffectiveCost": cost, "ListCost": cost, "ContractedCost": cost,
                    "ServiceName": service, "ServiceCategory": "AI and Machine Learning",
                    "ServiceSubcategory": "Generative AI", "ChargeFrequency": "Usage-Based",
                    "PricingCategory": "Standard", "ConsumedQuantity": tokens_in + tokens_out,
                    "ConsumedUnit": "Tokens", "SkuId": model, "ResourceId": f"{provider.lower()}:{model}:{feature}",
                    "ResourceName": f"{model} ({feature})", "ResourceType": "Model",
                    "Tags": json.dumps({"team": team, "project": feature, "environment": "prod",
                                        "cost_center": TEAMS[team][0], "owner": TEAMS[team][1]}
                                       if team == "ml" else {"team": team, "project": feature}),
                })
                # CSV exports write timestamps as text, the way vendors do
                for key in ("BillingPeriodStart", "BillingPeriodEnd", "ChargePeriodStart", "ChargePeriodEnd"):
                    row[key] = row[key].strftime("%Y-%m-%dT%H:%M:%SZ")
                for key in ("BilledCost", "EffectiveCost", "ListCost", "ContractedCost"):
                    row[key] = str(row[key])
                rows.append(row)
    return rows


def _table(rows: list[dict], types: dict | None):
    import pyarrow as pa

    columns = list(dict.fromkeys(k for r in rows for k in r))
    arrays = []
    for col in columns:
        values = [r.get(col) for r in rows]
        if types and col in ("BilledCost", "EffectiveCost", "ListCost", "ContractedCost"):
            arrays.append(pa.array(values, types["decimal"]))
        elif types and col.endswith(("Start", "End")):
            arrays.append(pa.array(values, types["ts"]))
        else:
            arrays.append(pa.array([None if v is None else str(v) for v in values], pa.string()))
    return pa.Table.from_arrays(arrays, names=columns)


CONFIG = """\
# finops demo configuration, written by `finops demo`. Every key is documented in config.example.yaml.
store: finops.duckdb

allocation:
  # Azure resources carry `Team`, the others `team`: both feed the `team` dimension.
  aliases:
    team: [team, Team]

report:
  last: 30d

sources:
  - name: aws
    type: focus
    path: data/aws.parquet
  - name: azure
    type: focus
    path: data/azure.parquet
  - name: gcp
    type: focus
    path: data/gcp.parquet
  - name: kubernetes
    type: focus
    path: data/kubernetes.parquet
  - name: ai-apis
    type: focus
    path: data/ai-apis.csv
"""


def write_config(folder: Path) -> Path:
    path = folder / "finops.yaml"
    path.write_text(CONFIG, encoding="utf-8")
    return path
