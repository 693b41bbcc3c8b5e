"""Render a tag audit for people (table, markdown) and for CI (json, junit, sarif, github).

``json`` is a stable interface (docs/tags-audit.md). ``sarif`` is SARIF 2.1.0 for code-scanning
upload, ``junit`` has one test case per rule and resource, ``github`` prints workflow commands
(``::error file=...::``) that GitHub Actions turns into annotations.
"""

from __future__ import annotations

import hashlib
import json
from enum import Enum
from typing import TYPE_CHECKING, Any, TextIO

from finops_cli.periods import iso
from finops_cli.render import decimal_text, money, percent

if TYPE_CHECKING:  # the analysis is imported by the command body, not by `finops --help`
    from finops_cli.analyses.tag_audit import AuditResult, Violation

SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"


class AuditFormat(str, Enum):
    table = "table"
    json = "json"
    markdown = "markdown"
    junit = "junit"
    sarif = "sarif"
    github = "github"

    def __str__(self) -> str:
        return self.value


def render(result: AuditResult, fmt: AuditFormat, out: TextIO, width: int | None = None, top: int = 10) -> None:
    if fmt is AuditFormat.json:
        out.write(json.dumps(as_json(result, top), indent=2) + "\n")
    elif fmt is AuditFormat.sarif:
        out.write(json.dumps(as_sarif(result), indent=2) + "\n")
    elif fmt is AuditFormat.junit:
        out.write(as_junit(result))
    elif fmt is AuditFormat.github:
        out.write(as_github(result))
    elif fmt is AuditFormat.markdown:
        out.write(as_markdown(result, top))
    else:
        _table(result, out, width, top)


def verdict(result: AuditResult) -> str:
    failing = len(result.failing)
    total = len(result.violations)
    limit = result.rules.thresholds.max_violations
    if result.failed:
        return (f"tag policy FAILED: {failing} violation{'s' if failing != 1 else ''} fail the policy "
                f"(--fail-on {result.fail_on.text()}, max_violations {limit})")
    if total:
        return (f"tag policy passed: {total} violation{'s' if total != 1 else ''} reported, "
                f"{failing} counted against --fail-on {result.fail_on.text()} (max_violations {limit})")
    return "tag policy passed: no violations"


# -- json ------------------------------------------------------------------------------------

def _violation_json(result: AuditResult, v: Violation) -> dict[str, Any]:
    return {
        "origin": v.origin, "rule": v.rule, "key": v.key, "severity": v.severity, "counted": v.counted,
        "failing": result.fail_on.selects(v), "message": v.message, "resource": v.resource, "value": v.value,
        "provider": v.provider, "account": v.account, "service": v.service, "resource_type": v.resource_type,
        "currency": v.currency, "cost": decimal_text(v.cost), "share": None if v.share is None else round(v.share, 6),
        "plan": v.plan, "module": v.module, "file": v.file, "line": v.line,
    }


def as_json(result: AuditResult, top: int = 10) -> dict[str, Any]:
    rules = result.rules
    billing = result.billing
    out: dict[str, Any] = {
        "passed": not result.failed,
        "fail_on": result.fail_on.text(),
        "policy": {
            "source": rules.origin,
            "required": rules.required,
            "thresholds": rules.thresholds.model_dump(mode="json"),
            "charges": rules.policy.charges,
        },
        "summary": {"violations": len(result.violations), "failing": len(result.failing),
                    "max_violations": rules.thresholds.max_violations},
        "billing": None,
        "plans": None,
        "violations": [_violation_json(result, v) for v in result.violations],
    }
    if billing is not None:
        out["billing"] = {
            "start": iso(billing.window.start), "end": iso(billing.window.end), "cost": billing.cost,
            "charges": billing.charges, "row_count": billing.row_count,
            "totals": {c: decimal_text(t) for c, t in billing.totals.items()},
            "unattributed": {c: decimal_text(t) for c, t in billing.unattributed.items()},
            "keys": [{"key": k.key, "currency": k.currency, "total": decimal_text(k.total),
                      "missing": decimal_text(k.missing), "disallowed": decimal_text(k.disallowed),
                      "noncompliant": decimal_text(k.noncompliant), "exempt": decimal_text(k.exempt),
                      "unattributed": decimal_text(k.unattributed),
                      "share": None if k.share is None else round(k.share, 6)} for k in billing.keys],
            "by_group": [{"provider": g.provider, "account": g.account, "service": g.service, "currency": g.currency,
                          "cost": decimal_text(g.cost),
                          "noncompliant": {k: decimal_text(c) for k, c in g.noncompliant.items()}}
                         for g in billing.groups],
            "top_resources": [{"resource": o.resource, "provider": o.provider, "account": o.account,
                               "service": o.service, "resource_type": o.resource_type, "currency": o.currency,
                               "cost": decimal_text(o.cost), "missing": o.missing, "disallowed": o.disallowed,
                               "tags": o.tags} for o in billing.offenders[:top]],
        }
    if result.plan is not None:
        out["plans"] = [{"file": p.path, "terraform_version": p.terraform_version, "checked": len(p.resources),
                         "resources": [r.address for r in p.resources], "without_tags": p.without_tags,
                         "unchanged": p.unchanged} for p in result.plan.plans]
    return out


# -- sarif -----------------------------------------------------------------------------------

def _level(result: AuditResult, v: Violation) -> str:
    if not v.counted:
        return "note"
    return "error" if result.fail_on.selects(v) and v.severity == "error" else "warning"


def _location_file(result: AuditResult, v: Violation) -> tuple[str | None, int | None]:
    if v.origin == "plan":
        return (v.file, v.line) if v.file else (v.plan, None)
    return result.rules.origin, result.rules.origin_line


def as_sarif(result: AuditResult) -> dict[str, Any]:
    from finops_cli import __version__
    from finops_cli.analyses.tag_audit import RULES

    rule_ids = list(RULES)
    rules = [{"id": f"tags/{rid}", "name": "".join(p.title() for p in rid.split("-")),
              "shortDescription": {"text": text}, "defaultConfiguration": {"level": "error"}}
             for rid, text in RULES.items()]
    results = []
    for v in result.violations:
        location: dict[str, Any] = {}
        path, line = _location_file(result, v)
        if path:
            physical: dict[str, Any] = {"artifactLocation": {"uri": _uri(path)}}
            if line:
                physical["region"] = {"startLine": int(line)}
            location["physicalLocation"] = physical
        name = v.resource or f"unattributed:{v.provider}/{v.service}"
        location["logicalLocations"] = [{"fullyQualifiedName": name, "kind": "resource"}]
        fingerprint = hashlib.sha256(f"{v.origin}|{v.rule}|{v.key}|{name}|{v.currency}".encode()).hexdigest()
        results.append({
            "ruleId": f"tags/{v.rule}", "ruleIndex": rule_ids.index(v.rule), "level": _level(result, v),
            "message": {"text": v.message}, "locations": [location],
            "partialFingerprints": {"finopsTagViolation/v1": fingerprint[:32]},
            "properties": {k: val for k, val in _violation_json(result, v).items()
                           if val is not None and k not in ("message",)},
        })
    return {
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {"name": "finops", "version": __version__, "semanticVersion": __version__,
                                "rules": rules}},
            "automationDetails": {"id": "finops/tags-audit/"},
            "invocations": [{"executionSuccessful": True}],
            "results": results,
        }],
    }


def relative(path: str) -> str:
    """Code scanning and annotations want paths relative to the checkout (the working folder in CI)."""
    import os

    try:
        rel = os.path.relpath(path)
    except ValueError:  # another drive on Windows
        return path
    return path if rel.startswith("..") else rel


def _uri(path: str) -> str:
    from urllib.parse import quote

    return quote(relative(path).replace("\\", "/"), safe="/:._-~")


# -- junit -----------------------------------------------------------------------------------

def as_junit(result: AuditResult) -> str:
    import xml.etree.ElementTree as ET

    root = ET.Element("testsuites", name="finops tags audit")
    if result.billing is not None:
        suite = ET.SubElement(root, "testsuite", name="tags audit: billing")
        billing_violations = [v for v in result.violations if v.origin == "billing"]
        for summary in result.billing.keys:
            name = f"required tag {summary.key} on spend ({summary.currency or 'no currency'})"
            hits = [v for v in billing_violations if v.key == summary.key and v.currency == summary.currency
                    and v.counted]
            case = ET.SubElement(suite, "testcase", classname="finops.tags.billing", name=name)
            _junit_outcome(result, case, hits, f"{percent(summary.share)} of spend non-compliant "
                                                f"({money(summary.noncompliant, summary.currency)})")
        for v in billing_violations:
            if v.rule == "untagged-share" or not v.counted:
                continue
            case = ET.SubElement(suite, "testcase", classname=f"finops.tags.billing.{v.rule}",
                                 name=f"{v.key}: {v.resource or 'unattributed ' + (v.service or '')}")
            _junit_outcome(result, case, [v], "")
        _count(suite)
    if result.plan is not None:
        plan_violations = {(v.resource, v.key, v.plan): v for v in result.violations if v.origin == "plan"}
        for plan in result.plan.plans:
            suite = ET.SubElement(root, "testsuite", name=f"tags audit: plan {plan.path}")
            for check in result.plan.checks:
                if check.resource.plan != plan.path:
                    continue
                case = ET.SubElement(suite, "testcase", classname=f"finops.tags.plan.{check.key}",
                                     name=f"{check.key}: {check.resource.address}")
                if check.resource.file:
                    case.set("file", check.resource.file)
                    if check.resource.line:
                        case.set("line", str(check.resource.line))
                violation = plan_violations.get((check.resource.address, check.key, plan.path))
                if check.status in ("exempt", "unknown"):
                    text = "exempt by policy" if check.status == "exempt" else "value known only after apply"
                    ET.SubElement(case, "skipped", message=text)
                else:
                    _junit_outcome(result, case, [violation] if violation else [], "")
            _count(suite)
    _count(root)
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def _junit_outcome(result: AuditResult, case, violations: list[Violation], passed_text: str) -> None:
    import xml.etree.ElementTree as ET

    failing = [v for v in violations if result.fail_on.selects(v)]
    if failing:
        failure = ET.SubElement(case, "failure", message=failing[0].message, type=failing[0].rule)
        failure.text = "\n".join(v.message for v in failing)
    elif violations:
        ET.SubElement(case, "system-out").text = "\n".join(f"{v.severity} (not failing): {v.message}"
                                                           for v in violations)
    elif passed_text:
        ET.SubElement(case, "system-out").text = passed_text


def _count(element) -> None:
    cases = list(element.iter("testcase"))
    element.set("tests", str(len(cases)))
    element.set("failures", str(sum(1 for c in cases if c.find("failure") is not None)))
    element.set("skipped", str(sum(1 for c in cases if c.find("skipped") is not None)))
    element.set("errors", "0")


# -- github ----------------------------------------------------------------------------------

def _escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(text: str) -> str:
    return _escape_data(text).replace(":", "%3A").replace(",", "%2C")


def as_github(result: AuditResult) -> str:
    lines = []
    for v in result.violations:
        command = "error" if result.fail_on.selects(v) and v.severity == "error" else (
            "warning" if v.counted else "notice")
        props = []
        path, line = _location_file(result, v)
        if path and v.origin == "plan":
            props.append(f"file={_escape_property(relative(path))}")
            if line:
                props.append(f"line={int(line)}")
        props.append(f"title={_escape_property(f'tag policy: {v.rule} {v.key}')}")
        lines.append(f"::{command} {','.join(props)}::{_escape_data(v.message)}")
    lines.append(f"::{'error' if result.failed else 'notice'}::{_escape_data(verdict(result))}")
    return "\n".join(lines) + "\n"


# -- markdown --------------------------------------------------------------------------------

def _md(text: Any) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _tags_text(tags: dict[str, str] | None) -> str:
    if not tags:
        return "(none)"
    return ", ".join(f"{k}={v}" for k, v in sorted(tags.items()))


def as_markdown(result: AuditResult, top: int = 10) -> str:
    icon = "❌" if result.failed else "✅"
    lines = [f"## {icon} Tag policy audit", "", f"**{verdict(result)}**", "",
             f"Required keys: {', '.join(f'`{k}`' for k in result.rules.required)}", ""]
    billing = result.billing
    if billing is not None:
        lines += [f"### Spend, {billing.window.start:%Y-%m-%d} .. {billing.window.end:%Y-%m-%d} (end exclusive), "
                  f"{billing.cost} cost", ""]
        if not billing.row_count:
            lines += ["No billing data in this window.", ""]
        else:
            lines += ["| key | currency | missing | disallowed | non-compliant share | exempt |",
                      "|---|---|---:|---:|---:|---:|"]
            for k in billing.keys:
                lines.append(f"| `{k.key}` | {k.currency or ''} | {money(k.missing)} | {money(k.disallowed)} | "
                             f"{percent(k.share)} | {money(k.exempt)} |")
            lines.append("")
            for currency, amount in billing.unattributed.items():
                if not amount:
                    continue
                lines.append(f"Spend without a resource id (cannot be tagged): {money(amount, currency)} "
                             f"({percent(amount / billing.totals[currency] if billing.totals.get(currency) else None)}"
                             f" of spend)")
            if billing.offenders:
                lines += ["", f"**Top offending resources** (of {len(billing.offenders)}):", "",
                          "| cost | resource | missing | disallowed | current tags |", "|---:|---|---|---|---|"]
                for o in billing.offenders[:top]:
                    what = o.resource or f"(no resource id: {o.service or 'unknown'} from {o.provider or 'unknown'})"
                    lines.append(f"| {money(o.cost, o.currency)} | {_md(what)} | {', '.join(o.missing)} | "
                                 f"{_md(', '.join(f'{k}={v}' for k, v in o.disallowed.items()))} | "
                                 f"{_md(_tags_text(o.tags))} |")
            lines.append("")
    if result.plan is not None:
        lines += ["### Terraform plans", ""]
        for p in result.plan.plans:
            lines.append(f"- `{p.path}`: {len(p.resources)} taggable resources created or updated, "
                         f"{len(p.without_tags)} without tags skipped, {p.unchanged} not changing")
        plan_violations = [v for v in result.violations if v.origin == "plan"]
        if plan_violations:
            lines += ["", "| | resource | module | rule | key | detail |", "|---|---|---|---|---|---|"]
            for v in plan_violations:
                mark = "❌" if result.fail_on.selects(v) else "⚠️"
                lines.append(f"| {mark} | `{_md(v.resource)}` | {_md(v.module or '')} | {v.rule} | `{v.key}` | "
                             f"{_md(v.message.split(': ', 1)[-1])} |")
        lines.append("")
    shares = [v for v in result.violations if v.rule == "untagged-share"]
    if shares:
        lines += ["### Threshold breaches", ""] + [f"- {_md(v.message)}" for v in shares] + [""]
    return "\n".join(lines) + "\n"


# -- table -----------------------------------------------------------------------------------

def _table(result: AuditResult, out: TextIO, width: int | None, top: int) -> None:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    console = Console(file=out, width=width, highlight=False, soft_wrap=False)
    console.print(f"Tag policy audit: required {', '.join(result.rules.required)}", markup=False)
    billing = result.billing
    if billing is not None:
        span = f"{billing.window.start:%Y-%m-%d} .. {billing.window.end:%Y-%m-%d} (end exclusive)"
        if not billing.row_count:
            console.print(f"No billing data ({', '.join(billing.charges)} charges) in {span}.", markup=False)
        else:
            table = Table(title=f"Non-compliant spend, {span}, {billing.cost} cost, {', '.join(billing.charges)} "
                          "charges", title_justify="left")
            for name, justify in (("key", "left"), ("currency", "left"), ("missing", "right"),
                                  ("disallowed", "right"), ("share", "right"), ("exempt", "right"),
                                  ("no resource id", "right")):
                table.add_column(name, justify=justify)
            for k in billing.keys:
                table.add_row(k.key, k.currency or "", money(k.missing), money(k.disallowed), percent(k.share),
                              money(k.exempt), money(k.unattributed))
            console.print(table)
            for currency, amount in billing.unattributed.items():
                total = billing.totals.get(currency)
                if not amount:
                    continue
                console.print(f"Spend without a resource id (aggregated charges, cannot be tagged): "
                              f"{money(amount, currency)} ({percent(amount / total if total else None)} of spend)",
                              markup=False)
            if billing.groups:
                groups = Table(title="Non-compliant spend by provider / account / service", title_justify="left")
                for name in ("provider", "account", "service", "cost"):
                    groups.add_column(name, justify="right" if name == "cost" else "left", overflow="fold")
                for key in result.rules.required:
                    groups.add_column(key, justify="right")
                for g in billing.groups[:top]:
                    groups.add_row(g.provider or "", g.account or "", g.service or "", money(g.cost, g.currency),
                                   *[money(g.noncompliant[k]) if k in g.noncompliant else "" for k in
                                     result.rules.required])
                console.print(groups)
            if billing.offenders:
                offenders = Table(title=f"Top offending resources (of {len(billing.offenders)})",
                                  title_justify="left")
                for name in ("cost", "resource", "missing", "disallowed", "current tags"):
                    offenders.add_column(name, justify="right" if name == "cost" else "left", overflow="fold")
                for o in billing.offenders[:top]:
                    what = o.resource or f"(no resource id: {o.service or 'unknown'} from {o.provider or 'unknown'})"
                    offenders.add_row(money(o.cost, o.currency), escape(what), ", ".join(o.missing),
                                      escape(", ".join(f"{k}={v}" for k, v in o.disallowed.items())),
                                      escape(_tags_text(o.tags)))
                console.print(offenders)
    if result.plan is not None:
        for p in result.plan.plans:
            console.print(f"Plan {p.path}: {len(p.resources)} taggable resources created or updated, "
                          f"{len(p.without_tags)} without tags skipped, {p.unchanged} not changing", markup=False)
        plan_violations = [v for v in result.violations if v.origin == "plan"]
        if plan_violations:
            table = Table(title="Plan violations", title_justify="left")
            for name in ("", "resource", "module", "rule", "key", "detail"):
                table.add_column(name, overflow="fold")
            for v in plan_violations:
                table.add_row("✗" if result.fail_on.selects(v) else "!", escape(v.resource or ""),
                              escape(v.module or ""), v.rule, v.key, escape(v.message.split(": ", 1)[-1]))
            console.print(table)
    for v in result.violations:
        if v.rule == "untagged-share":
            console.print(f"{'✗' if result.fail_on.selects(v) else '!'} {v.message}", markup=False)
    console.print(verdict(result), markup=False)
