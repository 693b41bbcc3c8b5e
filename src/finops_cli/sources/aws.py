"""AWS Cost Explorer: ``type: aws`` pulls daily spend with ``GetCostAndUsage`` into the FOCUS store.

Cost Explorer groups by at most two keys per request, but every ``--by`` view of the store
must add up to the same total. So finops stores ONE grain of rows, in which every row carries
every configured dimension at once (charge type, account, region, service, tag keys), and
gets it with a query tree: the first levels group by up to two dimensions at a time over the
whole window (MONTHLY, cheap) to discover which value combinations exist; each combination
then becomes an exact ``Filter`` around the next level's ``GroupBy``; the last level groups
by the last two dimensions, DAILY. Every dimension in the tree is exact, jointly with every
other one. The price is one request per combination of the discovery levels (see
docs/sources/aws.md for the formula and the measured counts), capped by ``max_requests``.

Credentials follow the AWS chain (environment, ``profile`` incl. SSO, instance role), then an
optional ``role_arn`` is assumed. boto3 is imported only when a pull or forecast runs.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from finops_cli.errors import SourceError, require
from finops_cli.periods import Window, add_months, midnight, utcnow
from finops_cli.sources.base import Forecast, Source, SourceConfig

REQUEST_PRICE = Decimal("0.01")  # USD per Cost Explorer API request; every page is a request
PROBE_GRANULARITY = "MONTHLY"  # discovery levels only need which combinations exist: fewest pages

# Dimensions the query tree may carry. RECORD_TYPE and SERVICE are always carried (listing them is allowed).
GroupDimension = Literal["LINKED_ACCOUNT", "REGION", "AZ", "USAGE_TYPE", "PURCHASE_TYPE", "INSTANCE_TYPE",
                         "OPERATION", "PLATFORM", "TENANCY", "LEGAL_ENTITY_NAME", "INVOICING_ENTITY",
                         "SERVICE", "RECORD_TYPE"]


class AwsConfig(SourceConfig):
    type: Literal["aws"]
    profile: str | None = Field(None, description="named profile in ~/.aws/config (SSO profiles work)")
    role_arn: str | None = Field(None, pattern=r"^arn:aws[a-z-]*:iam::\d{12}:role/.+$")
    external_id: str | None = Field(None, min_length=2, max_length=1224)
    region: str = "us-east-1"  # Cost Explorer's endpoint region (cn-northwest-1 in China)
    endpoint_url: str | None = None  # VPC endpoint, emulator or test server
    billing_account_id: str | None = Field(None, pattern=r"^\d{12}$")
    billing_metric: Literal["NetUnblendedCost", "UnblendedCost", "BlendedCost"] = "NetUnblendedCost"
    effective_metric: Literal["NetAmortizedCost", "AmortizedCost"] = "NetAmortizedCost"
    dimensions: list[GroupDimension] = Field(default_factory=lambda: ["LINKED_ACCOUNT", "REGION"])
    # Allocation tag keys (user-defined cost allocation tags, activated in the Billing console).
    # Default: every tag key the allocation dimensions read (required tags and their aliases).
    tag_keys: list[str] | None = None
    max_requests: int = Field(500, ge=1)  # refuse a sync whose query plan would cost more
    max_attempts: int = Field(8, ge=1, le=30)  # attempts per request (first + retries) on throttling
    retry_mode: Literal["standard", "adaptive"] = "standard"

    @field_validator("dimensions", "tag_keys")
    @classmethod
    def _unique(cls, value: list[str] | None) -> list[str] | None:
        if value is None:
            return value
        if len(set(value)) != len(value):
            raise ValueError("each entry may appear only once")
        if any(not str(v).strip() or "$" in str(v) for v in value):
            raise ValueError("entries must be non-empty and must not contain '$'")
        return value

    @model_validator(mode="after")
    def _external_id_needs_role(self) -> AwsConfig:
        if self.external_id and not self.role_arn:
            raise ValueError("external_id is only used with role_arn")
        return self


@dataclass(frozen=True)
class Key:
    """One dimension of the query tree: a Cost Explorer DIMENSION or a TAG key."""

    kind: Literal["DIMENSION", "TAG"]
    name: str

    @property
    def label(self) -> str:
        return self.name if self.kind == "DIMENSION" else f"TAG:{self.name}"

    def group_by(self) -> dict[str, str]:
        return {"Type": self.kind, "Key": self.name}

    def value_of(self, group_key: str) -> str:
        # Tag groups come back as "team$search"; "team$" is spend without the tag.
        return group_key.partition("$")[2] if self.kind == "TAG" else group_key

    def match(self, value: str) -> dict[str, Any]:
        if self.kind == "DIMENSION":
            return {"Dimensions": {"Key": self.name, "Values": [value], "MatchOptions": ["EQUALS"]}}
        if value == "":
            return {"Tags": {"Key": self.name, "MatchOptions": ["ABSENT"]}}
        return {"Tags": {"Key": self.name, "Values": [value], "MatchOptions": ["EQUALS"]}}


RECORD_TYPE = Key("DIMENSION", "RECORD_TYPE")
SERVICE = Key("DIMENSION", "SERVICE")
Cell = tuple[tuple[Key, str], ...]  # fixed values of the discovery dimensions


def plan_levels(ordered: list[Key]) -> list[list[Key]]:
    """Split the tree's dimensions into requests of at most two GroupBy keys.

    The last level (DAILY, stored) takes the last two; discovery levels take the rest, with a
    lone first level when their count is odd, because a level costs one request per value
    combination of all the levels before it.
    """
    leaf, inner = ordered[-2:], ordered[:-2]
    levels = [inner[:1]] if len(inner) % 2 else []
    inner = inner[len(levels):]
    levels += [inner[i:i + 2] for i in range(0, len(inner), 2)]
    return levels + [leaf]


def cell_filter(cell: Cell) -> dict[str, Any] | None:
    matches = [key.match(value) for key, value in cell]
    if not matches:
        return None
    return matches[0] if len(matches) == 1 else {"And": matches}


# RECORD_TYPE -> ChargeCategory, ChargeFrequency, ChargeClass, PricingCategory, commitment type.
# Keys are lower case without spaces: Cost Explorer spells some with spaces ("Support fee").
CHARGES: dict[str, tuple[str, str, str | None, str | None, str | None]] = {
    "usage": ("Usage", "Usage-Based", None, None, None),
    "discountedusage": ("Usage", "Usage-Based", None, "Committed", "Reservation"),
    "savingsplancoveredusage": ("Usage", "Usage-Based", None, "Committed", "Savings Plan"),
    # The negation cancels the on-demand cost of covered usage: same charge, so the two merge.
    "savingsplannegation": ("Usage", "Usage-Based", None, "Committed", "Savings Plan"),
    "rifee": ("Purchase", "Recurring", None, None, "Reservation"),
    "savingsplanrecurringfee": ("Purchase", "Recurring", None, None, "Savings Plan"),
    "savingsplanupfrontfee": ("Purchase", "One-Time", None, None, "Savings Plan"),
    "fee": ("Purchase", "One-Time", None, None, None),
    "support": ("Purchase", "Recurring", None, None, None),
    "supportfee": ("Purchase", "Recurring", None, None, None),
    "tax": ("Tax", "One-Time", None, None, None),
    "credit": ("Credit", "One-Time", None, None, None),
    "refund": ("Adjustment", "One-Time", "Correction", None, None),
}
DISCOUNT_CHARGE = ("Credit", "One-Time", None, None, None)
UNKNOWN_CHARGE = ("Adjustment", "One-Time", None, None, None)
PURCHASE_TYPES = {"on demand": "Standard", "spot": "Dynamic", "reserved": "Committed",
                  "savings plans": "Committed", "standard reserved": "Committed"}
NO_REGION = {"", "noregion", "global"}


def charge_of(record_type: str) -> tuple[tuple, bool]:
    """The FOCUS charge columns of a record type, and whether it is a discount record."""
    norm = record_type.replace(" ", "").lower()
    if norm in CHARGES:
        return CHARGES[norm], False
    if "discount" in norm:  # EdpDiscount, PrivateRateDiscount, BundledDiscount, SppDiscount ...
        return DISCOUNT_CHARGE, True
    return UNKNOWN_CHARGE, False


class AwsSource(Source):
    config_class = AwsConfig
    config: AwsConfig

    def __init__(self, config: AwsConfig, **kwargs):
        super().__init__(config, **kwargs)
        self._account_names: dict[str, str] = {}  # from DimensionValueAttributes
        self._retries = 0  # attempts botocore retried (throttling, transient errors)

    @property
    def wanted_tag_keys(self) -> list[str]:
        """The configured tag_keys, else every key the allocation dimensions read."""
        return self.tag_keys if self.config.tag_keys is None else self.config.tag_keys

    # -- pulling ---------------------------------------------------------------------------
    def pull(self, window: Window | None) -> Iterator[list[dict[str, Any]]]:
        window = self._clamp(window)
        if window is None:
            return
        client, payer = self._connect()
        period = {"Start": window.start.date().isoformat(), "End": window.end.date().isoformat()}
        extra = [d for d in self.config.dimensions if d not in (RECORD_TYPE.name, SERVICE.name)]
        ordered = [RECORD_TYPE, *(Key("DIMENSION", d) for d in extra),
                   *(Key("TAG", t) for t in self._active_tags(client, period)), SERVICE]
        levels = plan_levels(ordered)
        cells, ce_totals = self._discover(client, period, levels[:-1])

        self._check_budget(len(cells), f"daily level ({_names(levels[-1])})")
        merged = _Merger(self)
        for cell in cells:
            for start, estimated, keys, metrics in self._results(client, period, "DAILY", levels[-1], cell):
                values = {key.label: value for key, value in cell}
                values.update((key.label, value) for key, value in zip(levels[-1], keys))
                merged.add(start, estimated, values, metrics)
        records = merged.records(payer, self._account_names)

        if len(levels) > 1:
            records += self._unattributed(ce_totals, merged.monthly, payer, window)
            self.stats.notes.append(f"{len(cells)} daily queries, one per {_names(ordered[:-2], ' x ')}")
        if self._retries:
            self.stats.notes.append(f"{self._retries} throttled or failed attempt(s) retried")
        yield records

    def _discover(self, client, period, levels: list[list[Key]]):
        """The value combinations of the discovery dimensions, and Cost Explorer's monthly totals."""
        cells: list[Cell] = [()]
        ce_totals: dict[tuple[date, str], dict[str, Decimal]] = {}
        for depth, level in enumerate(levels):
            self._check_budget(len(cells), f"discovery level {depth + 1} ({_names(level)})")
            found: set[Cell] = set()
            for cell in cells:
                for start, _, keys, metrics in self._results(client, period, PROBE_GRANULARITY, level, cell):
                    found.add(cell + tuple(zip(level, keys)))
                    if depth == 0:  # the first level covers everything: Cost Explorer's own total
                        _add(ce_totals, (start.replace(day=1), _unit(metrics)), _amounts(metrics))
            cells = sorted(found, key=lambda c: [v for _, v in c])
        return cells, ce_totals

    def _clamp(self, window: Window | None) -> Window | None:
        now = utcnow()
        end = midnight(now.date() + timedelta(days=1))  # Cost Explorer has nothing after today
        if window is None:
            window = Window(midnight((now - self.config.lookback).date()), end)
        if window.start >= min(window.end, end):
            return None
        return Window(window.start, min(window.end, end))

    def _active_tags(self, client, period: dict[str, str]) -> list[str]:
        """Tag keys with tagged spend in the window, fewest values first; two keys per request.

        A key that only has "key$" (never used, or not activated as a cost allocation tag) is
        exact without a level of its own: every row is untagged for it.
        """
        keys = list(self.wanted_tag_keys)
        counts: dict[str, set[str]] = {k: set() for k in keys}
        for i in range(0, len(keys), 2):
            pair = [Key("TAG", k) for k in keys[i:i + 2]]
            self._check_budget(1, "tag key probe")
            for _, _, values, _ in self._results(client, period, PROBE_GRANULARITY, pair, ()):
                for key, value in zip(pair, values):
                    if value:
                        counts[key.name].add(value)
        idle = [k for k in keys if not counts[k]]
        if idle:
            self.stats.notes.append(f"no tagged spend for tag key(s) {', '.join(idle)}")
        active = [k for k in keys if counts[k]]
        return sorted(active, key=lambda k: len(counts[k]))

    def _results(self, client, period, granularity, level: list[Key], cell: Cell):
        """(period start, estimated, group values, metrics) for every group of every page."""
        request: dict[str, Any] = {
            "TimePeriod": period, "Granularity": granularity, "Metrics": self._metrics(),
            "GroupBy": [key.group_by() for key in level],
        }
        expression = cell_filter(cell)
        if expression is not None:
            request["Filter"] = expression
        token = None
        while True:
            if self.stats.requests >= self.config.max_requests:
                raise self._over_budget(1, "the next page")
            page = self._call(client.get_cost_and_usage, "GetCostAndUsage",
                              **request, **({"NextPageToken": token} if token else {}))
            for attribute in page.get("DimensionValueAttributes") or []:
                name = (attribute.get("Attributes") or {}).get("description")
                if name:
                    self._account_names[attribute["Value"]] = name
            for result in page.get("ResultsByTime") or []:
                start = date.fromisoformat(result["TimePeriod"]["Start"][:10])
                estimated = bool(result.get("Estimated"))
                if estimated and granularity == "DAILY":  # re-pulled by the next incremental sync
                    self.stats.estimated_days.add(start)
                for group in result.get("Groups") or []:
                    values = [key.value_of(k) for key, k in zip(level, group["Keys"])]
                    yield start, estimated, values, group.get("Metrics") or {}
            token = page.get("NextPageToken")
            if not token:
                return

    def _metrics(self) -> list[str]:
        wanted = [self.config.billing_metric, self.config.effective_metric, "UnblendedCost", "AmortizedCost"]
        return list(dict.fromkeys(wanted))

    def _unattributed(self, ce_totals, stored, payer, window: Window) -> list[dict[str, Any]]:
        """Spend the filtered queries did not return, kept as one row per month so totals stay exact."""
        rows = []
        for (month, unit), expected in sorted(ce_totals.items()):
            got = stored.get((month, unit), {})
            diff = {m: expected.get(m, Decimal(0)) - got.get(m, Decimal(0)) for m in expected}
            if all(abs(v) < Decimal("0.01") for v in diff.values()):
                continue
            start = max(midnight(month), window.start)
            end = min(midnight(add_months(month, 1)), window.end)
            billed, effective, contracted, basis = self._costs(diff)
            rows.append({
                "ChargePeriodStart": start, "ChargePeriodEnd": end, **_billing_period(month),
                "BilledCost": billed, "EffectiveCost": effective, "ListCost": contracted,
                "ContractedCost": contracted, "BillingCurrency": unit, "ChargeCategory": "Adjustment",
                "ChargeFrequency": "One-Time", "ChargeDescription": "Cost Explorer total not returned by "
                "the filtered queries", "ServiceName": "Unattributed", "ServiceCategory": "Other",
                **_provider(payer), "x_CostBasis": basis, "x_Properties": {"unattributed": "true"},
            })
            self.stats.notes.append(f"{billed:.2f} {unit} of {month:%Y-%m} could not be attributed by the "
                                    f"filtered queries (kept as service 'Unattributed')")
        return rows

    def _costs(self, metrics: dict[str, Decimal]) -> tuple[Decimal, Decimal, Decimal, str]:
        cfg = self.config
        billed_name = cfg.billing_metric if cfg.billing_metric in metrics else "UnblendedCost"
        effective_name = cfg.effective_metric if cfg.effective_metric in metrics else "AmortizedCost"
        zero = Decimal(0)
        basis = (f"BilledCost={billed_name}; EffectiveCost={effective_name}; "
                 f"ListCost=ContractedCost=UnblendedCost (approximation)")
        return (metrics.get(billed_name, zero), metrics.get(effective_name, zero),
                metrics.get("UnblendedCost", zero), basis)

    # -- the request budget ---------------------------------------------------------------
    def _check_budget(self, planned: int, what: str) -> None:
        if self.stats.requests + planned > self.config.max_requests:
            raise self._over_budget(planned, what)

    def _over_budget(self, planned: int, what: str) -> SourceError:
        total = self.stats.requests + planned
        return SourceError(
            self.name,
            f"the query plan needs at least {total} Cost Explorer requests (USD {total * REQUEST_PRICE:.2f}) "
            f"at {what}, over max_requests={self.config.max_requests}; nothing was stored",
            hint="drop dimensions or tag_keys from the source, sync a shorter window, or raise max_requests "
                 "(docs/sources/aws.md explains what each dimension costs)",
        )

    # -- forecast --------------------------------------------------------------------------
    def forecast(self, window: Window, filters: dict[str, list[str]] | None = None) -> Forecast | None:
        """Cost Explorer's forecast of the effective cost metric from today to the end of ``window``.

        Cost Explorer only forecasts from today on, so the part of the window before today is not
        in the figure (budgets add actual spend for it). None when a filter has no Cost Explorer
        equivalent or Cost Explorer has too little history to forecast.
        """
        start = max(window.start.date(), utcnow().date())
        end = window.end.date() if window.end == midnight(window.end.date()) else window.end.date() + timedelta(1)
        if end <= start:
            return None
        expression = self._forecast_filter(filters or {})
        if expression is False:
            return None
        metric = {"NetAmortizedCost": "NET_AMORTIZED_COST", "AmortizedCost": "AMORTIZED_COST"}
        request: dict[str, Any] = {
            "TimePeriod": {"Start": start.isoformat(), "End": end.isoformat()},
            "Metric": metric[self.config.effective_metric], "Granularity": "MONTHLY",
            "PredictionIntervalLevel": 80,
        }
        if expression:
            request["Filter"] = expression
        client, _ = self._connect(need_payer=False)
        try:
            answer = self._call(client.get_cost_forecast, "GetCostForecast", **request)
        except SourceError as exc:
            if "DataUnavailableException" in exc.message:
                self.stats.notes.append("Cost Explorer has too little history to forecast")
                return None
            raise
        total = answer["Total"]
        periods = answer.get("ForecastResultsByTime") or []

        def bound(name: str) -> Decimal | None:
            if not periods or any(name not in p for p in periods):
                return None
            return sum((Decimal(p[name]) for p in periods), Decimal(0))

        return Forecast(Decimal(total["Amount"]), total.get("Unit", "USD"),
                        bound("PredictionIntervalLowerBound"), bound("PredictionIntervalUpperBound"), 0.8)

    def _forecast_filter(self, filters: dict[str, list[str]]) -> dict[str, Any] | None | Literal[False]:
        """Report dimensions -> a Cost Explorer expression; False when one cannot be expressed."""
        dimension_of = {"service": "SERVICE", "account": "LINKED_ACCOUNT", "account_id": "LINKED_ACCOUNT",
                        "region": "REGION"}
        parts = []
        for name, values in filters.items():
            lowered = name.lower()
            if lowered in dimension_of:
                if any(v is None for v in values):
                    return False
                present = [_account_id(v) if "account" in lowered else v for v in values]
                parts.append({"Dimensions": {"Key": dimension_of[lowered], "Values": present,
                                             "MatchOptions": ["EQUALS"]}})
                continue
            key = name[4:] if lowered.startswith("tag:") else (name if name in self.wanted_tag_keys else None)
            if key is None:
                return False
            present = [v for v in values if v is not None]
            options = []
            if present:
                options.append({"Tags": {"Key": key, "Values": present, "MatchOptions": ["EQUALS"]}})
            if len(present) != len(values):
                options.append({"Tags": {"Key": key, "MatchOptions": ["ABSENT"]}})
            parts.append(options[0] if len(options) == 1 else {"Or": options})
        if not parts:
            return None
        return parts[0] if len(parts) == 1 else {"And": parts}

    # -- the AWS side: credentials, one client per pull, error translation ---------------
    def _connect(self, need_payer: bool = True):
        boto3 = require("boto3", extra="aws", what="the AWS Cost Explorer source")
        from botocore.config import Config
        from botocore.exceptions import BotoCoreError, ClientError

        cfg = self.config
        client_config = Config(retries={"mode": cfg.retry_mode, "total_max_attempts": cfg.max_attempts},
                               connect_timeout=10, read_timeout=60, user_agent_extra="finops-cli")
        step = "credentials"
        try:
            session = boto3.Session(profile_name=cfg.profile, region_name=cfg.region)
            payer = cfg.billing_account_id
            if cfg.role_arn:
                step = "AssumeRole"
                assume = {"RoleArn": cfg.role_arn, "RoleSessionName": "finops-cli"}
                if cfg.external_id:
                    assume["ExternalId"] = cfg.external_id
                sts = session.client("sts", region_name=cfg.region, config=client_config)
                credentials = sts.assume_role(**assume)["Credentials"]
                session = boto3.Session(aws_access_key_id=credentials["AccessKeyId"],
                                        aws_secret_access_key=credentials["SecretAccessKey"],
                                        aws_session_token=credentials["SessionToken"], region_name=cfg.region)
                payer = payer or cfg.role_arn.split(":")[4]
            elif payer is None and need_payer:
                step = "GetCallerIdentity"  # free; names the payer account for BillingAccountId
                sts = session.client("sts", region_name=cfg.region, config=client_config)
                payer = sts.get_caller_identity()["Account"]
            client = session.client("ce", region_name=cfg.region, endpoint_url=cfg.endpoint_url,
                                    config=client_config)
        except (BotoCoreError, ClientError) as exc:
            raise self._translate(exc, step) from None
        return client, payer

    def _call(self, method, operation: str, **request) -> dict[str, Any]:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            answer = method(**request)
        except (BotoCoreError, ClientError) as exc:
            raise self._translate(exc, operation) from None
        self.stats.requests += 1
        self.stats.request_cost += REQUEST_PRICE
        self._retries += answer.get("ResponseMetadata", {}).get("RetryAttempts", 0)
        return answer

    def _translate(self, exc: Exception, operation: str) -> SourceError:
        from botocore import exceptions as bx

        cfg = self.config
        where = f"profile {cfg.profile!r}" if cfg.profile else "the default AWS credential chain"
        if isinstance(exc, bx.ProfileNotFound):
            return SourceError(self.name, f"AWS profile {cfg.profile!r} is not in ~/.aws/config or "
                               "~/.aws/credentials", hint="fix `profile:` in the source, or run `aws configure "
                               "list-profiles`")
        if isinstance(exc, (bx.SSOTokenLoadError, bx.UnauthorizedSSOTokenError, bx.TokenRetrievalError)):
            return SourceError(self.name, f"the AWS SSO session of {where} has expired or was never started",
                               hint=f"run: aws sso login{' --profile ' + cfg.profile if cfg.profile else ''}")
        if isinstance(exc, bx.NoCredentialsError):
            return SourceError(self.name, f"no AWS credentials found ({where}: environment, ~/.aws, SSO, "
                               "instance or container role)", hint="set `profile:` in the source, export "
                               "AWS_PROFILE, or run `aws sso login`")
        service = "STS" if operation in ("AssumeRole", "GetCallerIdentity") else "Cost Explorer"
        if isinstance(exc, bx.ClientError):
            error = exc.response.get("Error", {})
            code, message = error.get("Code", "Error"), error.get("Message", "")
            attempts = exc.response.get("ResponseMetadata", {}).get("RetryAttempts", 0) + 1
            if code in ("LimitExceededException", "ThrottlingException", "Throttling", "TooManyRequestsException"):
                return SourceError(self.name, f"{service} kept throttling {operation} ({code}: {message}) "
                                   f"after {attempts} attempt(s)", hint="try again in a few minutes, or raise "
                                   "max_attempts / use retry_mode: adaptive in the source")
            if code in ("AccessDenied", "AccessDeniedException", "UnauthorizedOperation",
                        "UnrecognizedClientException", "InvalidClientTokenId", "ExpiredToken",
                        "ExpiredTokenException", "SignatureDoesNotMatch"):
                needs = "sts:AssumeRole on the role" if operation == "AssumeRole" else \
                    "ce:GetCostAndUsage and ce:GetCostForecast"
                return SourceError(self.name, f"AWS refused {operation} for {where} ({code}: {message})",
                                   hint=f"the identity needs {needs}; check the credentials are current")
            return SourceError(self.name, f"{service} {operation} failed ({code}: {message})")
        if isinstance(exc, (bx.EndpointConnectionError, bx.ConnectTimeoutError, bx.ReadTimeoutError)):
            target = getattr(exc, "kwargs", {}).get("endpoint_url") or cfg.endpoint_url or cfg.region
            hint = ("set billing_account_id in the source to skip this call, or point AWS_ENDPOINT_URL_STS "
                    "at a reachable STS endpoint") if operation == "GetCallerIdentity" else None
            return SourceError(self.name, f"cannot reach {service} ({operation}) at {target}", hint=hint)
        return SourceError(self.name, f"AWS {operation} failed: {exc}")


class _Merger:
    """Sums the leaf groups into one row per day x dimensions x FOCUS charge."""

    def __init__(self, source: AwsSource):
        self.source = source
        self.rows: dict[tuple, dict[str, Any]] = {}
        self.monthly: dict[tuple[date, str], dict[str, Decimal]] = {}
        self.dropped_discounts = 0
        self.unknown_types: set[str] = set()

    def add(self, day: date, estimated: bool, values: dict[str, str], metrics: dict[str, Any]) -> None:
        charge, is_discount = charge_of(values.get("RECORD_TYPE", "Usage"))
        if charge is UNKNOWN_CHARGE:
            self.unknown_types.add(values.get("RECORD_TYPE", ""))
        amounts = _amounts(metrics)
        unit = _unit(metrics)
        _add(self.monthly, (day.replace(day=1), unit), amounts)
        if is_discount and self.source.config.billing_metric.startswith("Net"):
            billed, effective, _, _ = self.source._costs(amounts)
            if not billed and not effective:  # Net* metrics already fold the discount into usage
                self.dropped_discounts += 1
                return
        dims = tuple(sorted((k, v) for k, v in values.items() if k != "RECORD_TYPE"))
        row = self.rows.setdefault((day, unit, dims, charge), {"metrics": {}, "types": set(), "estimated": False})
        _accumulate(row["metrics"], amounts)
        row["types"].add(values.get("RECORD_TYPE", "Usage"))
        row["estimated"] |= estimated

    def records(self, payer: str | None, account_names: dict[str, str]) -> list[dict[str, Any]]:
        out = []
        for (day, unit, dims, charge), row in self.rows.items():
            values = dict(dims)
            category, frequency, charge_class, pricing, commitment = charge
            billed, effective, contracted, basis = self.source._costs(row["metrics"])
            service = values.get("SERVICE") or "Unknown"
            purchase = values.get("PURCHASE_TYPE")
            if purchase:
                pricing = PURCHASE_TYPES.get(purchase.lower(), "Other") if category == "Usage" else None
            account = values.get("LINKED_ACCOUNT")
            region = values.get("REGION")
            region = None if region is None or region.lower() in NO_REGION else region
            legal = values.get("LEGAL_ENTITY_NAME") or values.get("INVOICING_ENTITY")
            types = ",".join(sorted(row["types"]))
            properties = {"record_type": types}
            if commitment:
                properties["commitment_type"] = commitment
            for name in ("USAGE_TYPE", "INSTANCE_TYPE", "OPERATION", "PLATFORM", "TENANCY", "PURCHASE_TYPE"):
                if values.get(name):
                    properties[name.lower()] = values[name]
            tags = {k[4:]: v for k, v in values.items() if k.startswith("TAG:") and v}
            category_pair = service_category(service)
            out.append({
                "ChargePeriodStart": midnight(day), "ChargePeriodEnd": midnight(day + timedelta(days=1)),
                **_billing_period(day.replace(day=1)),
                "BilledCost": billed, "EffectiveCost": effective, "ListCost": contracted,
                "ContractedCost": contracted, "BillingCurrency": unit,
                "ChargeCategory": category, "ChargeClass": charge_class, "ChargeFrequency": frequency,
                "PricingCategory": pricing, "ChargeDescription": f"{service} ({types})",
                "ServiceName": service, "ServiceCategory": category_pair[0],
                "ServiceSubcategory": category_pair[1],
                **_provider(payer, legal),
                "SubAccountId": account, "SubAccountName": account_names.get(account, account) if account else None,
                "SubAccountType": "AWS Account" if account else None,
                "RegionId": region, "RegionName": REGION_NAMES.get(region, region) if region else None,
                "AvailabilityZone": values.get("AZ") or None,
                "Tags": tags, "x_Estimated": row["estimated"], "x_CostBasis": basis, "x_Properties": properties,
            })
        if self.unknown_types:
            self.source.stats.notes.append(f"record type(s) {', '.join(sorted(self.unknown_types))} "
                                           f"stored as ChargeCategory Adjustment")
        if self.dropped_discounts:
            self.source.stats.notes.append(f"{self.dropped_discounts} discount group(s) already folded into "
                                           f"{self.source.config.billing_metric}")
        return out


def _amounts(metrics: dict[str, Any]) -> dict[str, Decimal]:
    # Cost Explorer sends amounts as strings: parse them exactly, never through float.
    return {name: Decimal(str(m["Amount"])) for name, m in metrics.items() if isinstance(m, dict) and "Amount" in m}


def _accumulate(bucket: dict[str, Decimal], amounts: dict[str, Decimal]) -> None:
    for name, amount in amounts.items():
        bucket[name] = bucket.get(name, Decimal(0)) + amount


def _add(into: dict, key, amounts: dict[str, Decimal]) -> None:
    _accumulate(into.setdefault(key, {}), amounts)


def _unit(metrics: dict[str, Any]) -> str:
    for metric in metrics.values():
        if isinstance(metric, dict) and metric.get("Unit"):
            return metric["Unit"]
    return "USD"


def _names(keys: list[Key], separator: str = ", ") -> str:
    return separator.join(k.name if k.kind == "DIMENSION" else f"tag {k.name}" for k in keys)


def _billing_period(month: date) -> dict[str, datetime]:
    return {"BillingPeriodStart": midnight(month), "BillingPeriodEnd": midnight(add_months(month, 1))}


def _provider(payer: str | None, legal_entity: str | None = None) -> dict[str, Any]:
    issuer = legal_entity or "Amazon Web Services, Inc."
    return {"ProviderName": "AWS", "PublisherName": issuer, "InvoiceIssuerName": issuer,
            "BillingAccountId": payer, "BillingAccountType": "AWS Payer Account" if payer else None}


def _account_id(value: str) -> str:
    # `--by account` shows "name (123456789012)"; Cost Explorer filters on the id.
    text = value.strip()
    if text.endswith(")") and "(" in text:
        return text[text.rindex("(") + 1:-1]
    return text


def service_category(service: str) -> tuple[str, str]:
    """FOCUS ServiceCategory and ServiceSubcategory of a Cost Explorer SERVICE value."""
    if service.startswith("AWS Support"):
        return "Management and Governance", "Support"
    return SERVICE_CATEGORIES.get(service, ("Other", "Other (Other)"))


# Cost Explorer SERVICE names -> FOCUS (category, subcategory); one category per name, as FOCUS requires.
SERVICE_CATEGORIES: dict[str, tuple[str, str]] = {
    "Amazon Elastic Compute Cloud - Compute": ("Compute", "Virtual Machines"),
    "EC2 - Other": ("Compute", "Other (Compute)"),
    "Amazon Lightsail": ("Compute", "Virtual Machines"),
    "AWS Lambda": ("Compute", "Serverless Compute"),
    "Amazon Elastic Container Service": ("Compute", "Containers"),
    "Amazon Elastic Container Service for Kubernetes": ("Compute", "Containers"),
    "Amazon EC2 Container Registry (ECR)": ("Compute", "Containers"),
    "Savings Plans for AWS Compute usage": ("Compute", "Other (Compute)"),
    "Amazon Simple Storage Service": ("Storage", "Object Storage"),
    "Amazon Elastic File System": ("Storage", "File Storage"),
    "Amazon FSx": ("Storage", "File Storage"),
    "AWS Backup": ("Storage", "Backup Storage"),
    "Amazon Glacier": ("Storage", "Backup Storage"),
    "Amazon Relational Database Service": ("Databases", "Relational Databases"),
    "Amazon Aurora": ("Databases", "Relational Databases"),
    "Amazon DynamoDB": ("Databases", "NoSQL Databases"),
    "Amazon DocumentDB (with MongoDB compatibility)": ("Databases", "NoSQL Databases"),
    "Amazon ElastiCache": ("Databases", "Caching"),
    "Amazon MemoryDB": ("Databases", "Caching"),
    "Amazon Redshift": ("Databases", "Data Warehouses"),
    "Amazon Timestream": ("Databases", "Time Series Databases"),
    "Amazon Virtual Private Cloud": ("Networking", "Network Infrastructure"),
    "Amazon Elastic Load Balancing": ("Networking", "Network Infrastructure"),
    "Elastic Load Balancing": ("Networking", "Network Infrastructure"),
    "AWS Data Transfer": ("Networking", "Network Connectivity"),
    "AWS Direct Connect": ("Networking", "Network Connectivity"),
    "AWS Transit Gateway": ("Networking", "Network Routing"),
    "Amazon Route 53": ("Networking", "Network Routing"),
    "Amazon CloudFront": ("Networking", "Content Delivery"),
    "AWS WAF": ("Networking", "Network Security"),
    "AWS Shield": ("Networking", "Network Security"),
    "Amazon API Gateway": ("Integration", "API Management"),
    "Amazon Simple Queue Service": ("Integration", "Messaging"),
    "Amazon Simple Notification Service": ("Integration", "Messaging"),
    "Amazon EventBridge": ("Integration", "Messaging"),
    "AWS Step Functions": ("Integration", "Workflow Orchestration"),
    "Amazon Kinesis": ("Analytics", "Streaming Analytics"),
    "Amazon Managed Streaming for Apache Kafka": ("Analytics", "Streaming Analytics"),
    "Amazon Athena": ("Analytics", "Analytics Platforms"),
    "AWS Glue": ("Analytics", "Data Processing"),
    "Amazon Elastic MapReduce": ("Analytics", "Data Processing"),
    "Amazon OpenSearch Service": ("Analytics", "Search"),
    "Amazon QuickSight": ("Analytics", "Business Intelligence"),
    "Amazon SageMaker": ("AI and Machine Learning", "Machine Learning"),
    "Amazon Bedrock": ("AI and Machine Learning", "Generative AI"),
    "Amazon Comprehend": ("AI and Machine Learning", "Natural Language Processing"),
    "Amazon CloudWatch": ("Management and Governance", "Observability"),
    "AmazonCloudWatch": ("Management and Governance", "Observability"),
    "AWS X-Ray": ("Management and Governance", "Observability"),
    "AWS CloudTrail": ("Management and Governance", "Compliance"),
    "AWS Config": ("Management and Governance", "Compliance"),
    "AWS Systems Manager": ("Management and Governance", "Endpoint Management"),
    "AWS Cost Explorer": ("Management and Governance", "Cost Management"),
    "AWS Key Management Service": ("Security", "Secret Management"),
    "AWS Secrets Manager": ("Security", "Secret Management"),
    "Amazon GuardDuty": ("Security", "Threat Detection and Response"),
    "AWS Security Hub": ("Security", "Security Posture Management"),
    "Amazon Cognito": ("Identity", "Identity and Access Management"),
    "AWS CodeBuild": ("Developer Tools", "Continuous Integration and Deployment"),
    "AWS CodePipeline": ("Developer Tools", "Continuous Integration and Deployment"),
    "Tax": ("Other", "Other (Other)"),
}

REGION_NAMES = {
    "us-east-1": "US East (N. Virginia)", "us-east-2": "US East (Ohio)", "us-west-1": "US West (N. California)",
    "us-west-2": "US West (Oregon)", "ca-central-1": "Canada (Central)", "sa-east-1": "South America (Sao Paulo)",
    "eu-west-1": "Europe (Ireland)", "eu-west-2": "Europe (London)", "eu-west-3": "Europe (Paris)",
    "eu-central-1": "Europe (Frankfurt)", "eu-central-2": "Europe (Zurich)", "eu-north-1": "Europe (Stockholm)",
    "eu-south-1": "Europe (Milan)", "ap-south-1": "Asia Pacific (Mumbai)", "ap-east-1": "Asia Pacific (Hong Kong)",
    "ap-northeast-1": "Asia Pacific (Tokyo)", "ap-northeast-2": "Asia Pacific (Seoul)",
    "ap-northeast-3": "Asia Pacific (Osaka)", "ap-southeast-1": "Asia Pacific (Singapore)",
    "ap-southeast-2": "Asia Pacific (Sydney)", "me-south-1": "Middle East (Bahrain)",
    "af-south-1": "Africa (Cape Town)", "us-gov-west-1": "AWS GovCloud (US-West)",
}
