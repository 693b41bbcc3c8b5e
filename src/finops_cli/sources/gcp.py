"""GCP Cloud Billing export in BigQuery: ``type: gcp`` reads ``gcp_billing_export_v1_*`` (standard)
or ``gcp_billing_export_resource_v1_*`` (detailed, with resource names) into FOCUS rows.

BigQuery does the work: one aggregate query per sync returns one row per usage day, service,
SKU, project, location, resource (detailed export), cost type, currency and label set, with
money summed as NUMERIC so exact decimals come back. The query reads only the columns it
needs and prunes partitions (``_PARTITIONTIME``, with a margin for late rows); a free dry run
first says how many bytes it will scan, and ``max_bytes_billed`` refuses anything larger.
The table name is validated and every value (dates, credit types) is a query parameter.
"""

from __future__ import annotations

import re
import time
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any, Iterator, Literal

from pydantic import Field, field_validator, model_validator

from finops_cli.errors import SourceError, require
from finops_cli.periods import Window, midnight, utcnow
from finops_cli.sources.base import Source, SourceConfig

# project ids may be domain-scoped ("example.com:proj"); dataset and table names are plain identifiers.
TABLE_PATTERN = re.compile(
    r"^(?P<project>(?:[a-z0-9][a-z0-9.-]*:)?[a-z][a-z0-9-]{4,28}[a-z0-9])"
    r"\.(?P<dataset>[A-Za-z0-9_]{1,1024})\.(?P<table>[A-Za-z0-9_-]{1,1024})$"
)
PROJECT_PATTERN = re.compile(r"^(?:[a-z0-9][a-z0-9.-]*:)?[a-z][a-z0-9-]{4,28}[a-z0-9]$")
SCOPES = ["https://www.googleapis.com/auth/bigquery.readonly",
          "https://www.googleapis.com/auth/cloud-platform"]
ON_DEMAND_USD_PER_TIB = Decimal("6.25")  # BigQuery on-demand analysis price (US multi-region)
TRANSIENT_JOB_ERRORS = ("rateLimitExceeded", "jobRateLimitExceeded", "backendError", "internalError")
REQUIRED_FIELDS = ("usage_start_time", "cost", "currency", "service.description")
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([KMGTP]i?B|B)?\s*$", re.IGNORECASE)
_UNITS = {"b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12, "pb": 10**15,
          "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40, "pib": 2**50}


class GcpConfig(SourceConfig):
    type: Literal["gcp"]
    table: str = Field(description="the billing export table, project.dataset.table")
    billing_project: str | None = Field(default=None, description="project the query jobs run (and bill) in")
    location: str | None = Field(default=None, description="dataset location, e.g. US or europe-west1")
    credentials: Literal["adc", "anonymous"] = "adc"
    credentials_file: str | None = Field(default=None, description="service-account (or other) key file")
    api_endpoint: str | None = Field(default=None, description="BigQuery endpoint (emulators, tests)")
    max_bytes_billed: int | None = Field(default=100 * 2**30, description="refuse queries scanning more")
    # Rows for a usage day keep arriving after it: partitions this long after the window are read too.
    late_data: timedelta = timedelta(days=35)
    # Deadline for one BigQuery call including its retries (rate limits), and for the query job.
    timeout: timedelta = timedelta(minutes=10)

    @field_validator("table")
    @classmethod
    def _table(cls, value: str) -> str:
        text = value.strip().strip("`")
        if not TABLE_PATTERN.match(text):
            raise _invalid(f"{value!r} is not a fully qualified table name project.dataset.table "
                             f"(e.g. my-billing-proj.billing.gcp_billing_export_v1_0000AA_BBBBBB_CCCCCC)")
        return text

    @field_validator("api_endpoint")
    @classmethod
    def _endpoint(cls, value: str | None) -> str | None:
        if value is not None and not re.match(r"^https?://[^/\s]+", value):
            raise _invalid(f"{value!r} is not a URL (expected e.g. http://127.0.0.1:9050, with the scheme)")
        return value.rstrip("/") if value else value

    @model_validator(mode="after")
    def _one_credential(self) -> "GcpConfig":
        if self.credentials == "anonymous" and self.credentials_file:
            raise _invalid("credentials_file cannot be used with credentials: anonymous")
        return self

    @field_validator("billing_project")
    @classmethod
    def _project(cls, value: str | None) -> str | None:
        if value is not None and not PROJECT_PATTERN.match(value):
            raise _invalid(f"{value!r} is not a GCP project id")
        return value

    @field_validator("max_bytes_billed", mode="before")
    @classmethod
    def _bytes(cls, value: Any) -> Any:
        if value is None or isinstance(value, int):
            return value
        m = _SIZE.match(str(value))
        if not m:
            raise _invalid(f"{value!r} is not a size (expected bytes or e.g. 500MB, 20GiB, 1TiB)")
        return int(Decimal(m.group(1)) * _UNITS[(m.group(2) or "b").lower()])

    @field_validator("late_data", "timeout", mode="before")
    @classmethod
    def _durations(cls, value: Any) -> Any:
        seconds = re.fullmatch(r"\s*(\d+)\s*s\s*", value) if isinstance(value, str) else None
        return timedelta(seconds=int(seconds.group(1))) if seconds else SourceConfig._duration(value)

    @property
    def table_project(self) -> str:
        return self.table.rsplit(".", 2)[0]


def _invalid(message: str) -> Exception:
    """A validation error whose text is just ``message`` (pydantic would prefix "Value error, ")."""
    from pydantic_core import PydanticCustomError

    return PydanticCustomError("invalid", "{message}", {"message": message})


class GcpSource(Source):
    config_class = GcpConfig
    config: GcpConfig

    def pull(self, window: Window | None) -> Iterator[list[dict]]:
        if window is None:  # "everything" means the lookback: a billing export can hold years
            now = utcnow()
            window = Window(midnight((now - self.config.lookback).date()),
                            midnight(now.date() + timedelta(days=1)))
        bigquery = require("google.cloud.bigquery", extra="gcp", what="the gcp source (BigQuery export)")
        client = None
        try:
            client = self._client(bigquery)
            retry = bigquery.DEFAULT_RETRY.with_timeout(self.config.timeout.total_seconds())
            table = self.config.table
            query = BillingQuery.for_table(table, client.get_table(table, retry=retry))
            if query.missing:
                raise SourceError(self.name, f"{table} does not look like a Cloud Billing export: "
                                  f"no column(s) {', '.join(query.missing)}",
                                  hint="point `table` at a gcp_billing_export_v1_* or *_resource_v1_* table")
            self.stats.notes.extend(query.notes)
            sql, params = query.sql(window, self.config.late_data)
            rows = self._run(bigquery, client, sql, params, retry)
            # Google keeps appending a usage day's rows for a day or two: today and yesterday are provisional.
            provisional_from = utcnow().date() - timedelta(days=1)
            batch: list[dict] = []
            for row in rows:
                record = record_from_row(row, query)
                if record["ChargePeriodStart"] >= provisional_from:
                    record["x_Estimated"] = True
                    self.stats.estimated_days.add(record["ChargePeriodStart"])
                batch.append(record)
                if len(batch) >= 10_000:
                    yield batch
                    batch = []
            yield batch
        except SourceError:
            raise
        except Exception as exc:  # SDK, auth and transport errors become one clear line
            raise _source_error(self, exc) from exc
        finally:
            if client is not None:
                client.close()

    # -- BigQuery -------------------------------------------------------------------------
    def _client(self, bigquery):
        google_auth = require("google.auth", extra="gcp", what="the gcp source")
        from google.auth.transport.requests import AuthorizedSession

        cfg = self.config
        if cfg.credentials == "anonymous":
            from google.auth.credentials import AnonymousCredentials

            credentials = AnonymousCredentials()
        elif cfg.credentials_file:
            path = Path(cfg.credentials_file).expanduser()
            if not path.is_absolute() and self.base_dir is not None:
                path = Path(self.base_dir) / path
            if not path.is_file():
                raise SourceError(self.name, f"credentials_file {str(path)!r} does not exist")
            credentials, _ = google_auth.load_credentials_from_file(str(path), scopes=SCOPES)
        else:
            import warnings

            with warnings.catch_warnings():  # "end user credentials without a quota project": noise here
                warnings.simplefilter("ignore", UserWarning)
                credentials, _ = google_auth.default(scopes=SCOPES)
        session = AuthorizedSession(credentials)
        session.hooks["response"].append(self._count_request)
        options = {"api_endpoint": cfg.api_endpoint} if cfg.api_endpoint else None
        return bigquery.Client(project=cfg.billing_project or cfg.table_project, credentials=credentials,
                               location=cfg.location, client_options=options, _http=session)

    def _count_request(self, response, *args, **kwargs):
        self.stats.requests += 1
        return response

    def _run(self, bigquery, client, sql: str, params: list, retry):
        cfg = self.config
        dry = client.query(sql, job_config=bigquery.QueryJobConfig(
            dry_run=True, use_query_cache=False, query_parameters=params), retry=retry)
        estimate = int(dry.total_bytes_processed or 0)
        if cfg.max_bytes_billed is not None and estimate > cfg.max_bytes_billed:
            raise SourceError(
                self.name,
                f"the query would scan {human_bytes(estimate)} of {cfg.table}, more than max_bytes_billed "
                f"({human_bytes(cfg.max_bytes_billed)}); nothing was run",
                hint="sync a shorter window (--start/--end) or raise max_bytes_billed in the config",
            )
        job, rows = self._query_with_job_retry(bigquery, client, sql, params, retry)
        scanned = int(job.total_bytes_processed or estimate)
        billed = int(job.total_bytes_billed or 0)
        self.stats.bytes_processed += scanned
        self.stats.request_cost += (Decimal(billed) / Decimal(2**40) * ON_DEMAND_USD_PER_TIB).quantize(
            Decimal("0.000001"))
        self.stats.notes.append(f"BigQuery dry run {human_bytes(estimate)}, billed {human_bytes(billed)}")
        return rows

    def _query_with_job_retry(self, bigquery, client, sql: str, params: list, retry):
        """Run the query; a job that fails for a transient reason is re-run until ``timeout``.

        The client's own job retry has a fixed 10-minute deadline, so it is replaced by this loop.
        """
        from google.api_core import exceptions as gexc

        cfg = self.config
        deadline = time.monotonic() + cfg.timeout.total_seconds()
        while True:
            job = client.query(sql, job_config=bigquery.QueryJobConfig(
                query_parameters=params, maximum_bytes_billed=cfg.max_bytes_billed, use_query_cache=True),
                retry=retry, job_retry=None)
            try:
                remaining = max(deadline - time.monotonic(), 1)
                return job, job.result(retry=retry, timeout=remaining, job_retry=None)
            except gexc.GoogleAPICallError as exc:
                if _reason(exc) not in TRANSIENT_JOB_ERRORS or time.monotonic() + 1 >= deadline:
                    raise
                time.sleep(1)


class BillingQuery:
    """The aggregate query for one table, shaped by the columns that table really has."""

    def __init__(self, table: str, fields: dict[str, str], partition: tuple[str, str] | None,
                 notes: list[str]):
        self.table = table
        self.fields = fields  # dotted column path -> BigQuery type
        self.missing = [f for f in REQUIRED_FIELDS if f not in fields]
        self.partition = partition  # (column SQL, type); None for views and unpartitioned tables
        self.notes = notes
        self.credit_types = CREDIT_TYPES if "credits.type" in fields else ()

    @classmethod
    def for_table(cls, name: str, table) -> "BillingQuery":
        fields = schema_fields(table.schema)
        notes = []
        partitioning = getattr(table, "time_partitioning", None)
        if partitioning is None:
            partition = None
            kind = "view" if getattr(table, "table_type", "") == "VIEW" else "unpartitioned table"
            notes.append(f"{kind}: no partition pruning")
        elif partitioning.field:  # partitioned on a column: compare it as it is, or pruning is lost
            column = partitioning.field
            usable = re.fullmatch(r"\w+", column) and fields.get(column) in ("TIMESTAMP", "DATE", "DATETIME")
            partition = (f"`{column}`", fields[column]) if usable else None
            if not usable:
                notes.append(f"partitioned on {column}: no partition pruning")
        else:
            partition = ("_PARTITIONTIME", "TIMESTAMP")
        if "resource.global_name" in fields or "resource.name" in fields:
            notes.append("detailed export (resource level)")
        return cls(name, fields, partition, notes)

    def has(self, field: str) -> bool:
        return field in self.fields

    @property
    def label_sets(self) -> list[tuple[str, str]]:
        """(column, alias) of the REPEATED key/value columns that become Tags."""
        out = []
        for column, alias in (("labels", "labels"), ("project.labels", "project_labels"),
                              ("system_labels", "system_labels"), ("tags", "resource_tags")):
            if self.has(column + ".key"):
                out.append((column, alias))
        return out

    def sql(self, window: Window, late_data: timedelta) -> tuple[str, list]:
        from google.cloud import bigquery

        dims = ["DATE(usage_start_time) AS usage_day"]
        optional = (
            ("billing_account_id", "billing_account_id"), ("invoice.month", "invoice_month"),
            ("cost_type", "cost_type"), ("service.id", "service_id"), ("sku.id", "sku_id"),
            ("sku.description", "sku_description"), ("project.id", "project_id"),
            ("project.name", "project_name"),
            ("location.location", "location_name"), ("location.region", "region"), ("location.zone", "zone"),
            ("usage.unit", "usage_unit"), ("usage.pricing_unit", "pricing_unit"),
            ("resource.name", "resource_name"), ("resource.global_name", "resource_global_name"),
        )
        dims += ["currency AS currency", "service.description AS service_name"]
        dims += [f"{column} AS {alias}" for column, alias in optional if self.has(column)]
        # Arrays cannot be grouped: group by their JSON text and return one copy of each.
        dims += [f"TO_JSON_STRING({column}) AS {alias}_key" for column, alias in self.label_sets]
        measures = [f"ANY_VALUE({column}) AS {alias}" for column, alias in self.label_sets]
        measures.append("SUM(CAST(cost AS NUMERIC)) AS cost")
        if self.has("cost_at_list"):
            measures.append("SUM(CAST(cost_at_list AS NUMERIC)) AS cost_at_list")
        credit_sum = "SUM((SELECT SUM(CAST(c.amount AS NUMERIC)) FROM UNNEST(credits) AS c{}))"
        if self.has("credits.amount"):
            measures.append(credit_sum.format("") + " AS credits_total")
        for i, _ in enumerate(self.credit_types):
            measures.append(credit_sum.format(f" WHERE c.type = @credit_type_{i}") + f" AS credit_{i}")
        if self.has("usage.amount"):
            measures.append("SUM(CAST(usage.amount AS NUMERIC)) AS usage_amount")
        if self.has("usage.amount_in_pricing_units"):
            measures.append("SUM(CAST(usage.amount_in_pricing_units AS NUMERIC)) AS pricing_amount")

        start, end = _utc(window.start), _utc(window.end)
        params = [bigquery.ScalarQueryParameter("start", "TIMESTAMP", start),
                  bigquery.ScalarQueryParameter("end", "TIMESTAMP", end)]
        where = ["usage_start_time >= @start", "usage_start_time < @end"]
        if self.partition:
            # A usage day is never exported before it starts; late rows and corrections come after it.
            column, kind = self.partition
            where += [f"{column} >= @partition_from", f"{column} < @partition_to"]
            bounds = {"partition_from": start - timedelta(days=1), "partition_to": end + late_data}
            for name, moment in bounds.items():
                value = {"DATE": moment.date(), "DATETIME": moment.replace(tzinfo=None)}.get(kind, moment)
                params.append(bigquery.ScalarQueryParameter(name, kind, value))
        params += [bigquery.ScalarQueryParameter(f"credit_type_{i}", "STRING", kind)
                   for i, kind in enumerate(self.credit_types)]
        sql = (
            "SELECT\n  " + ",\n  ".join(dims + measures)
            + f"\nFROM `{self.table}`\nWHERE " + "\n  AND ".join(where)
            + "\nGROUP BY " + ", ".join(str(i) for i in range(1, len(dims) + 1))
        )
        return sql, params


def schema_fields(schema, prefix: str = "") -> dict[str, str]:
    """Dotted paths of every (nested) column and their types: ``project.labels.key: STRING``."""
    out = {}
    for field in schema:
        path = prefix + field.name
        out[path] = field.field_type
        if field.fields:
            out.update(schema_fields(field.fields, path + "."))
    return out


def human_bytes(count: int) -> str:
    value = float(count)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{count} B"


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment.astimezone(timezone.utc)


def _source_error(source: GcpSource, exc: Exception) -> SourceError:
    """One clear line for what went wrong, naming the table, project and what to do."""
    import concurrent.futures

    import requests
    from google.api_core import exceptions as gexc
    from google.auth import exceptions as auth_exc

    cfg = source.config
    project = cfg.billing_project or cfg.table_project
    endpoint = cfg.api_endpoint or "bigquery.googleapis.com"
    seconds = f"{cfg.timeout.total_seconds():.0f} s"

    if isinstance(exc, gexc.RetryError):
        cause = exc.cause if isinstance(exc.cause, Exception) else None
        if isinstance(cause, requests.exceptions.RequestException):
            return SourceError(source.name, f"cannot reach BigQuery at {endpoint} "
                               f"({type(cause).__name__}, retried for {seconds})")
        what = _api_message(cause) if cause else "no answer"
        return SourceError(source.name, f"BigQuery kept refusing for {seconds} (rate limit or quota): {what}",
                           hint="try again later, or raise `timeout` for this source")
    if isinstance(exc, gexc.GoogleAPICallError):
        reason = _reason(exc)
        message = _api_message(exc)
        if reason == "bytesBilledLimitExceeded":
            limit = human_bytes(cfg.max_bytes_billed or 0)
            return SourceError(source.name, f"BigQuery refused the query: it would bill more than "
                               f"max_bytes_billed ({limit}): {message}")
        if isinstance(exc, gexc.NotFound):
            where = f"table {cfg.table}, jobs in project {project}" + (
                f", location {cfg.location}" if cfg.location else "")
            return SourceError(source.name, f"not found: {message} ({where})",
                               hint="check `table` and `location`: the billing dataset's location must match")
        if reason in ("quotaExceeded", "rateLimitExceeded") or isinstance(exc, gexc.TooManyRequests):
            return SourceError(source.name, f"BigQuery quota or rate limit: {message}",
                               hint="try again later, or ask for a higher quota")
        if isinstance(exc, (gexc.Forbidden, gexc.Unauthorized)):
            return SourceError(source.name, f"permission denied: {message}",
                               hint=f"the credentials need roles/bigquery.jobUser on project {project} and "
                                    f"roles/bigquery.dataViewer on the dataset of {cfg.table}")
        if isinstance(exc, gexc.BadRequest):
            return SourceError(source.name, f"BigQuery rejected the query on {cfg.table}: {message}")
        return SourceError(source.name, f"BigQuery error {exc.code}: {message}")
    if isinstance(exc, auth_exc.DefaultCredentialsError):
        return SourceError(source.name, "no Google credentials found (Application Default Credentials)",
                           hint="run `gcloud auth application-default login`, or set credentials_file")
    if isinstance(exc, auth_exc.GoogleAuthError):
        return SourceError(source.name, f"Google authentication failed: {_first_line(exc)}")
    if isinstance(exc, (concurrent.futures.TimeoutError, TimeoutError)):
        return SourceError(source.name, f"the BigQuery job did not finish within {seconds}",
                           hint="raise `timeout` for this source, or sync a shorter window")
    if isinstance(exc, requests.exceptions.RequestException):
        return SourceError(source.name, f"cannot reach BigQuery at {endpoint}: {type(exc).__name__}")
    return SourceError(source.name, f"{type(exc).__name__}: {_first_line(exc)}")


def _reason(exc) -> str | None:
    errors = getattr(exc, "errors", None) or []
    return errors[0].get("reason") if errors and isinstance(errors[0], dict) else None


def _api_message(exc) -> str:
    message = getattr(exc, "message", None) or str(exc)
    return _first_line(re.sub(r"^(GET|POST|PUT|PATCH|DELETE) \S+: ", "", str(message)))


def _first_line(text: Any) -> str:
    lines = str(text).strip().splitlines()
    return lines[0][:300] if lines else ""


# -- FOCUS mapping (docs/sources/gcp.md explains every rule) --------------------------------

# Credit types reported separately in x_Properties; any other type still counts in BilledCost.
CREDIT_TYPES = ("SUSTAINED_USAGE_DISCOUNT", "COMMITTED_USAGE_DISCOUNT",
                "COMMITTED_USAGE_DISCOUNT_DOLLAR_BASE", "DISCOUNT", "FREE_TIER", "PROMOTION",
                "SUBSCRIPTION_BENEFIT", "RESELLER_MARGIN", "FEE_UTILIZATION_OFFSET")
COMMITTED_CREDITS = ("COMMITTED_USAGE_DISCOUNT", "COMMITTED_USAGE_DISCOUNT_DOLLAR_BASE")
PROJECT_PREFIX = "project:"
SYSTEM_PREFIX = "goog-system:"
PROVIDER = "Google Cloud"
# ServiceName -> (ServiceCategory, ServiceSubcategory); anything else is Other.
SERVICES = {
    "Compute Engine": ("Compute", "Virtual Machines"),
    "Kubernetes Engine": ("Compute", "Containers"),
    "Cloud Run": ("Compute", "Serverless Compute"),
    "Cloud Run Functions": ("Compute", "Serverless Compute"),
    "Cloud Functions": ("Compute", "Serverless Compute"),
    "App Engine": ("Web", "Application Platforms"),
    "Cloud Storage": ("Storage", "Object Storage"),
    "Filestore": ("Storage", "File Storage"),
    "Backup and DR Service": ("Storage", "Backup Storage"),
    "BigQuery": ("Analytics", "Data Processing"),
    "BigQuery Storage API": ("Analytics", "Data Processing"),
    "Dataflow": ("Analytics", "Streaming Analytics"),
    "Cloud Dataproc": ("Analytics", "Data Processing"),
    "Cloud Pub/Sub": ("Integration", "Messaging"),
    "Cloud SQL": ("Databases", "Relational Databases"),
    "Cloud Spanner": ("Databases", "Relational Databases"),
    "AlloyDB": ("Databases", "Relational Databases"),
    "Cloud Bigtable": ("Databases", "NoSQL Databases"),
    "Cloud Firestore": ("Databases", "NoSQL Databases"),
    "Cloud Memorystore for Redis": ("Databases", "Caching"),
    "Networking": ("Networking", "Network Connectivity"),
    "Cloud DNS": ("Networking", "Network Routing"),
    "Cloud CDN": ("Networking", "Content Delivery"),
    "Cloud Load Balancing": ("Networking", "Application Networking"),
    "Cloud Armor": ("Networking", "Network Security"),
    "Cloud Logging": ("Management and Governance", "Observability"),
    "Cloud Monitoring": ("Management and Governance", "Observability"),
    "Support": ("Management and Governance", "Support"),
    "Secret Manager": ("Security", "Secret Management"),
    "Cloud Key Management Service (KMS)": ("Security", "Secret Management"),
    "Artifact Registry": ("Developer Tools", "Source Code Management"),
    "Cloud Build": ("Developer Tools", "Continuous Integration and Deployment"),
    "Vertex AI": ("AI and Machine Learning", "AI Platforms"),
    "Gemini API": ("AI and Machine Learning", "Generative AI"),
    "Cloud Natural Language API": ("AI and Machine Learning", "Natural Language Processing"),
}


def record_from_row(row: Any, query: BillingQuery) -> dict[str, Any]:
    """One aggregated export row -> one FOCUS record (money as Decimal, straight from NUMERIC)."""
    get = row.get
    day = get("usage_day")
    sku = get("sku_description")
    cost = _money(get("cost"))
    credits = _money(get("credits_total"))
    billed = cost + credits
    has_list = get("cost_at_list") is not None
    list_cost = _money(get("cost_at_list")) if has_list else cost
    by_type = {kind: _money(get(f"credit_{i}")) for i, kind in enumerate(query.credit_types)}
    category = _charge_category(get("cost_type"), sku)
    service = get("service_name")
    service_category, subcategory = SERVICES.get(service, ("Other", "Other (Other)"))
    usage_month = day.replace(day=1)
    invoice_start = _invoice_month(get("invoice_month")) or usage_month
    location = get("location_name")
    region = get("region") or (location if location not in (None, "global") else None)
    resource_id = get("resource_global_name") or get("resource_name")
    usage_like = category in ("Usage", "Purchase")
    priced = usage_like and get("pricing_amount") is not None
    consumed = category == "Usage" and get("usage_amount") is not None
    properties = {"service_id": get("service_id"), "invoice_month": get("invoice_month"),
                  "cost_type": get("cost_type"), "location": location}
    properties.update({f"credits.{kind}": str(amount) for kind, amount in by_type.items() if amount})
    other = credits - sum(by_type.values(), Decimal(0))
    if other and query.credit_types:
        properties["credits.OTHER"] = str(other)
    return {
        "ChargePeriodStart": day,
        "ChargePeriodEnd": day + timedelta(days=1),
        "BillingPeriodStart": invoice_start,
        "BillingPeriodEnd": _next_month(invoice_start),
        "BillingAccountId": get("billing_account_id"),
        "BillingAccountType": "Billing Account" if get("billing_account_id") else None,
        "BillingCurrency": get("currency"),
        "ContractedCost": cost,
        "ListCost": list_cost,
        "BilledCost": billed,
        "EffectiveCost": billed,
        "ChargeCategory": category,
        # An adjustment invoiced in a later month than its usage corrects an already invoiced period.
        "ChargeClass": "Correction" if category == "Adjustment" and invoice_start > usage_month else None,
        "ChargeFrequency": {"Usage": "Usage-Based", "Purchase": "Recurring", "Tax": "Recurring"}.get(
            category, "One-Time"),
        "ChargeDescription": sku or service,
        "PricingCategory": _pricing_category(category, sku, by_type) if usage_like else None,
        "ServiceName": service,
        "ServiceCategory": service_category,
        "ServiceSubcategory": subcategory,
        "SkuId": get("sku_id") if usage_like else None,
        "SkuPriceId": get("sku_id") if usage_like else None,
        "SkuMeter": sku if usage_like and get("sku_id") else None,
        "SubAccountId": get("project_id"),
        "SubAccountName": get("project_name") if get("project_id") else None,
        "SubAccountType": "Project" if get("project_id") else None,
        "RegionId": region,
        "RegionName": region,
        "AvailabilityZone": get("zone"),
        "ResourceId": resource_id,
        "ResourceName": get("resource_name") if resource_id else None,
        "ResourceType": _resource_type(get("resource_global_name")) if resource_id else None,
        "ConsumedQuantity": _money(get("usage_amount")) if consumed else None,
        "ConsumedUnit": get("usage_unit") if consumed else None,
        "PricingQuantity": _money(get("pricing_amount")) if priced else None,
        "PricingUnit": get("pricing_unit") if priced else None,
        "ProviderName": PROVIDER,
        "PublisherName": PROVIDER,
        "InvoiceIssuerName": PROVIDER,
        "ServiceProviderName": PROVIDER,
        "HostProviderName": PROVIDER,
        "Tags": tags_from_labels(get("labels"), get("project_labels"), get("system_labels"),
                                 get("resource_tags")),
        "x_CostBasis": None if has_list else "ListCost=ContractedCost (no cost_at_list)",
        "x_Properties": {k: str(v) for k, v in properties.items() if v is not None},
    }


def tags_from_labels(labels, project_labels=None, system_labels=None, resource_tags=None) -> dict[str, str]:
    """Resource labels as they are; project labels as ``project:KEY`` and, where the resource has no
    label of that key, also as ``KEY`` (inherited); system labels as ``goog-system:KEY``; resource
    manager tags as ``NAMESPACE/KEY``. Label keys hold no ``:`` or ``/``, so nothing collides."""
    tags: dict[str, str] = {}
    for item in labels or ():
        tags[item["key"]] = item.get("value") or ""
    for item in project_labels or ():
        key, value = item["key"], item.get("value") or ""
        tags[PROJECT_PREFIX + key] = value
        tags.setdefault(key, value)
    for item in resource_tags or ():
        namespace = item.get("namespace")
        tags[f"{namespace}/{item['key']}" if namespace else item["key"]] = item.get("value") or ""
    for item in system_labels or ():
        tags[SYSTEM_PREFIX + item["key"]] = item.get("value") or ""
    return tags


def _charge_category(cost_type: str | None, sku: str | None) -> str:
    kind = (cost_type or "regular").lower().replace("_", " ")
    if kind == "tax":
        return "Tax"
    if kind in ("adjustment", "rounding error"):
        return "Adjustment"
    if sku and sku.startswith("Commitment"):  # committed use discount fees
        return "Purchase"
    return "Usage"


def _pricing_category(category: str, sku: str | None, credits: dict[str, Decimal]) -> str:
    if any(credits.get(kind) for kind in COMMITTED_CREDITS):
        return "Committed"
    if category == "Usage" and sku and ("Spot" in sku or "Preemptible" in sku):
        return "Dynamic"
    return "Standard"


def _resource_type(global_name: str | None) -> str | None:
    """``//compute.googleapis.com/projects/p/zones/z/instances/1`` -> ``compute.googleapis.com/instances``."""
    if not global_name or not global_name.startswith("//"):
        return None
    parts = global_name[2:].split("/")
    return f"{parts[0]}/{parts[-2]}" if len(parts) >= 3 else parts[0]


def _money(value: Any) -> Decimal:
    """NUMERIC results arrive as Decimal; anything else goes through its exact text (never a float sum)."""
    if value is None:
        return Decimal(0)
    if isinstance(value, Decimal):
        return value
    return Decimal(repr(value) if isinstance(value, float) else str(value))


def _invoice_month(text: str | None) -> date | None:
    if not text or not re.fullmatch(r"\d{6}", text):
        return None
    return date(int(text[:4]), int(text[4:]), 1)


def _next_month(first: date) -> date:
    return date(first.year + first.month // 12, first.month % 12 + 1, 1)
