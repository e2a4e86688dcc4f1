"""JSON, SARIF 2.1.0, JUnit, Markdown and HTML writers for the secrets gate (`secrets.done`)."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from html import escape
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET  # nosec B405 - we only build XML, never parse it

from reports.common import SECURITY_SEVERITY, header, md, page, row, suite_attrs
from reports.remediation import cwe_url, solution
from toolkit import __version__
from toolkit.core.events import Bus, SecretsDone

SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
SECRET_SEVERITY = "8.0"  # a live credential: high


def render_json(result: dict[str, Any]) -> bytes:
    return (
        json.dumps(
            {"tool": "release-gate-toolkit", "version": __version__, **result},
            indent=2,
            sort_keys=True,
        )
        + "\n"
    ).encode()


def fingerprint(*parts: Any) -> str:
    """Stable across runs and line moves: what the issue is and where, never when."""
    return hashlib.sha256(json.dumps([str(p) for p in parts]).encode()).hexdigest()[:32]


def render_sarif(result: dict[str, Any]) -> bytes:
    rules: dict[str, dict[str, Any]] = {}
    results = []
    for s in result["new_secrets"]:
        rid = "secret/" + s["type"].replace(" ", "")
        description, fix = solution(798)
        rules.setdefault(
            rid,
            {
                "id": rid,
                "name": rid.replace("/", "-"),
                "shortDescription": {"text": f"Hard-coded secret: {s['type']}"},
                "help": {"text": f"{description} Solution: {fix}"},
                "helpUri": cwe_url(798),
                "properties": {
                    "tags": ["security", "external/cwe/cwe-798"],
                    "security-severity": SECRET_SEVERITY,
                },
            },
        )
        results.append(
            _result(
                rid,
                "error",
                f"{s['type']} (sha1 {s['hashed_secret'][:12]}…) not in the baseline",
                s["filename"],
                s["line_number"],
                {"hashed_secret": s["hashed_secret"]},
                fingerprint(rid, Path(s["filename"]).as_posix(), s["hashed_secret"]),
            )
        )
    for b in result["bandit_issues"]:
        tags = ["security", "bandit"] + ([f"external/cwe/cwe-{b['cwe']}"] if b.get("cwe") else [])
        rules.setdefault(
            b["test_id"],
            {
                "id": b["test_id"],
                "name": b["test_name"],
                "shortDescription": {"text": b["test_name"]},
                "properties": {
                    "tags": tags,
                    "security-severity": SECURITY_SEVERITY.get(b["severity"], "5.5"),
                },
            },
        )
        level = {"high": "error", "medium": "warning"}.get(b["severity"], "note")
        results.append(
            _result(
                b["test_id"],
                level,
                b["text"],
                b["filename"],
                b["line_number"],
                {"confidence": b["confidence"], "severity": b["severity"]},
                fingerprint(b["test_id"], Path(b["filename"]).as_posix(), b["text"]),
            )
        )
    ordered = sorted(rules)
    for r in results:
        r["ruleIndex"] = ordered.index(r["ruleId"])
    doc = {
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "release-gate-toolkit-secrets",
                        "version": __version__,
                        "informationUri": "https://github.com/Yelp/detect-secrets",
                        "rules": [rules[k] for k in ordered],
                    }
                },
                "automationDetails": {"id": "secrets/"},
                "results": results,
            }
        ],
    }
    return (json.dumps(doc, indent=2) + "\n").encode()


def _result(
    rule: str, level: str, text: str, filename: str, line: int, props: dict[str, Any], print_: str
) -> dict[str, Any]:
    return {
        "ruleId": rule,
        "level": level,
        "message": {"text": text},
        "locations": [
            {
                "physicalLocation": {
                    "artifactLocation": {"uri": Path(filename).as_posix()},
                    "region": {"startLine": max(1, int(line or 1))},
                }
            }
        ],
        "partialFingerprints": {"toolkitSecret/v1": print_},
        "properties": props,
    }


def _started(result: dict[str, Any]) -> dt.datetime:
    try:
        return dt.datetime.fromisoformat(result.get("started") or "")
    except ValueError:
        return dt.datetime.now(dt.UTC)


def render_junit(result: dict[str, Any]) -> bytes:
    suite = ET.Element("testsuite", name="toolkit-secrets")
    for key, value in suite_attrs(_started(result), float(result.get("duration_s") or 0.0)).items():
        suite.set(key, value)
    cases = failures = 0
    by_file: dict[str, list[dict[str, Any]]] = {}
    for s in result["new_secrets"]:
        by_file.setdefault(s["filename"], []).append(s)
    for b in result["bandit_issues"]:
        by_file.setdefault(b["filename"], []).append(b)
    for filename, items in sorted(by_file.items()):
        cases += 1
        failures += 1
        tc = ET.SubElement(suite, "testcase", classname="secrets", name=filename, time="0")
        kinds = sorted(
            {"hard-coded-secret" if "type" in i else f"bandit-{i['test_id']}" for i in items}
        )
        el = ET.SubElement(tc, "failure", type=",".join(kinds), message=f"{len(items)} issue(s)")
        el.text = "\n".join(
            f"line {i['line_number']}: {i.get('type') or i.get('test_id')}" for i in items
        )
    tc = ET.SubElement(
        suite, "testcase", classname="secrets", name="positive-control canaries", time="0"
    )
    cases += 1
    if result["canaries_found"] < result["canaries_planted"]:
        failures += 1
        ET.SubElement(
            tc, "failure", type="blind-scanner", message="scanner saw nothing: check paths"
        )
    tc = ET.SubElement(
        suite,
        "testcase",
        classname="secrets",
        name=f"{result['files_scanned']} files scanned",
        time="0",
    )
    cases += 1
    suite.set("tests", str(cases))
    suite.set("failures", str(failures))
    return bytes(ET.tostring(suite, encoding="utf-8", xml_declaration=True))


def _verdict(result: dict[str, Any]) -> str:
    blind = result["canaries_found"] < result["canaries_planted"]
    return "fail" if result["new_secrets"] or result["bandit_issues"] or blind else "pass"


def render_md(result: dict[str, Any]) -> bytes:
    head = (
        f"{result['files_scanned']} files ({result['bytes_scanned'] / 1e6:.2f} MB) scanned in "
        f"{float(result.get('duration_s') or 0):.2f} s, {result.get('excluded', 0)} excluded, "
        f"{result['baseline_secrets']} secret(s) in the baseline, canaries found "
        f"{result['canaries_found']}/{result['canaries_planted']}."
    )
    lines = [f"# Secrets scan: {_verdict(result)}", "", head, ""]
    if result["new_secrets"]:
        description, fix = solution(798)
        lines += ["## New secrets (CWE-798, high)", "", f"{description} Solution: {fix}", ""]
        lines += _md_table(
            ["file", "line", "type", "sha1"],
            [
                [
                    f"`{md(s['filename'])}`",
                    s["line_number"],
                    md(s["type"]),
                    f"`{s['hashed_secret'][:12]}`",
                ]
                for s in result["new_secrets"]
            ],
        )
    if result["bandit_issues"]:
        lines += ["", "## Bandit", ""]
        lines += _md_table(
            ["file", "line", "test", "severity", "issue"],
            [
                [
                    f"`{md(b['filename'])}`",
                    b["line_number"],
                    b["test_id"],
                    b["severity"],
                    md(b["text"]),
                ]
                for b in result["bandit_issues"]
            ],
        )
    lines += [f"- error: {md(e)}" for e in result["errors"]]
    return ("\n".join(lines) + "\n").encode()


def _md_table(names: list[str], rows: list[list[Any]]) -> list[str]:
    out = ["| " + " | ".join(names) + " |", "|" + "---|" * len(names)]
    return out + ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]


def render_html(result: dict[str, Any]) -> bytes:
    description, fix = solution(798)
    found = "".join(
        row(s["filename"], s["line_number"], s["type"], s["hashed_secret"][:12])
        for s in result["new_secrets"]
    )
    bandit = "".join(
        row(
            b["filename"],
            b["line_number"],
            b["test_id"],
            b["severity"],
            b["text"],
            cls=b["severity"],
        )
        for b in result["bandit_issues"]
    )
    errors = "".join(f"<li>{escape(e)}</li>" for e in result["errors"])
    counts = (
        f"{int(result['files_scanned'])} files scanned, {int(result.get('excluded', 0))} "
        f"excluded, {int(result['baseline_secrets'])} in the baseline, canaries found "
        f"{int(result['canaries_found'])}/{int(result['canaries_planted'])}."
    )
    body = (
        f"<h1>Secrets scan: {escape(_verdict(result))}</h1><p>{escape(counts)}</p>"
        f"<h2>New secrets (high, <a href='{cwe_url(798)}'>CWE-798</a>)</h2>"
        f"<p><b>Description:</b> {escape(description)}<br><b>Solution:</b> {escape(fix)}</p>"
        f"<table>{header('file', 'line', 'type', 'sha1')}{found}</table>"
        f"<h2>Bandit</h2><table>{header('file', 'line', 'test', 'severity', 'issue')}"
        f"{bandit}</table>"
        + (f"<h2>Errors</h2><ul>{errors}</ul>" if errors else "")
    )
    return page("secrets scan", body)


SECRETS_FORMATS = ("json", "sarif", "junit", "md", "html")
RENDERERS = {
    "json": ("gate3-secrets-scan.json", render_json),
    "sarif": ("gate3-secrets-scan.sarif", render_sarif),
    "junit": ("gate3-secrets-scan.junit.xml", render_junit),
    "md": ("gate3-secrets-scan.md", render_md),
    "html": ("gate3-secrets-scan.html", render_html),
}


class SecretsReports:
    """Writes the chosen formats into the evidence run and, optionally, an output folder."""

    def __init__(self, formats: tuple[str, ...], sink: Any, output: Path | None):
        self.formats, self.sink, self.output = formats, sink, output

    def attach(self, bus: Bus) -> None:
        bus.on(SecretsDone, self.handle)

    def handle(self, event: SecretsDone) -> None:
        for fmt in self.formats:
            name, render = RENDERERS[fmt]
            data = render(event.report)
            if self.sink is not None:
                self.sink(name, data)
            if self.output is not None:
                self.output.mkdir(parents=True, exist_ok=True)
                (self.output / name).write_bytes(data)
