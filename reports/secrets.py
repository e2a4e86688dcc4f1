"""JSON, SARIF 2.1.0 and JUnit writers for the secrets gate, fed by its `secrets.done` event."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET  # nosec B405 - we only build XML, never parse it

from toolkit import __version__
from toolkit.events import Event

SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"


def render_json(result: dict[str, Any]) -> bytes:
    return (json.dumps({"tool": "release-gate-toolkit", "version": __version__, **result}, indent=2,
                       sort_keys=True) + "\n").encode()


def render_sarif(result: dict[str, Any]) -> bytes:
    rules: dict[str, dict[str, Any]] = {}
    results = []
    for s in result["new_secrets"]:
        rid = "secret/" + s["type"].replace(" ", "")
        rules.setdefault(rid, {"id": rid, "shortDescription": {"text": f"Hard-coded secret: {s['type']}"},
                               "properties": {"tags": ["security", "external/cwe/cwe-798"],
                                              "security-severity": "8.0"}})
        results.append(_result(rid, "error", f"{s['type']} (sha1 {s['hashed_secret'][:12]}…) not in the baseline",
                               s["filename"], s["line_number"], {"hashed_secret": s["hashed_secret"]}))
    for b in result["bandit_issues"]:
        rules.setdefault(b["test_id"], {"id": b["test_id"], "name": b["test_name"],
                                        "shortDescription": {"text": b["test_name"]},
                                        "properties": {"tags": ["security", "bandit"]}})
        level = {"high": "error", "medium": "warning"}.get(b["severity"], "note")
        results.append(_result(b["test_id"], level, b["text"], b["filename"], b["line_number"],
                               {"confidence": b["confidence"]}))
    ordered = sorted(rules)
    for r in results:
        r["ruleIndex"] = ordered.index(r["ruleId"])
    doc = {"$schema": SARIF_SCHEMA, "version": "2.1.0", "runs": [{
        "tool": {"driver": {"name": "release-gate-toolkit-secrets", "version": __version__,
                            "informationUri": "https://github.com/Yelp/detect-secrets",
                            "rules": [rules[k] for k in ordered]}},
        "results": results}]}
    return (json.dumps(doc, indent=2) + "\n").encode()


def _result(rule: str, level: str, text: str, filename: str, line: int, props: dict[str, Any]) -> dict[str, Any]:
    return {"ruleId": rule, "level": level, "message": {"text": text},
            "locations": [{"physicalLocation": {"artifactLocation": {"uri": Path(filename).as_posix()},
                                                "region": {"startLine": max(1, int(line or 1))}}}],
            "properties": props}


def render_junit(result: dict[str, Any]) -> bytes:
    suite = ET.Element("testsuite", name="toolkit-secrets")
    cases = 0
    failures = 0
    by_file: dict[str, list[dict[str, Any]]] = {}
    for s in result["new_secrets"]:
        by_file.setdefault(s["filename"], []).append(s)
    for b in result["bandit_issues"]:
        by_file.setdefault(b["filename"], []).append(b)
    for filename, items in sorted(by_file.items()):
        cases += 1
        failures += 1
        tc = ET.SubElement(suite, "testcase", classname="secrets", name=filename)
        el = ET.SubElement(tc, "failure", message=f"{len(items)} issue(s)")
        el.text = "\n".join(f"line {i['line_number']}: {i.get('type') or i.get('test_id')}" for i in items)
    tc = ET.SubElement(suite, "testcase", classname="secrets", name="positive-control canaries")
    cases += 1
    if result["canaries_found"] < result["canaries_planted"]:
        failures += 1
        ET.SubElement(tc, "failure", message="scanner saw nothing: check paths")
    tc = ET.SubElement(suite, "testcase", classname="secrets", name=f"{result['files_scanned']} files scanned")
    cases += 1
    suite.set("tests", str(cases))
    suite.set("failures", str(failures))
    xml: bytes = ET.tostring(suite, encoding="utf-8", xml_declaration=True)
    return xml


RENDERERS = {"json": ("gate3-secrets-scan.json", render_json), "sarif": ("gate3-secrets-scan.sarif", render_sarif),
             "junit": ("gate3-secrets-scan.junit.xml", render_junit)}


class SecretsReports:
    """Writes the chosen formats into the evidence run and, optionally, an output folder."""

    def __init__(self, formats: tuple[str, ...], sink: Any, output: Path | None):
        self.formats, self.sink, self.output = formats, sink, output

    def handle(self, event: Event) -> None:
        if event.kind != "secrets.done":
            return
        for fmt in self.formats:
            name, render = RENDERERS[fmt]
            data = render(event.data)
            if self.sink is not None:
                self.sink(name, data)
            if self.output is not None:
                self.output.mkdir(parents=True, exist_ok=True)
                (self.output / name).write_bytes(data)
