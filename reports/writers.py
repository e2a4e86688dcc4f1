"""JSON, SARIF 2.1.0 and JUnit XML writers for attack runs, fed by events."""

from __future__ import annotations

import abc
import json
import os
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET  # nosec B405

from toolkit import __version__
from toolkit.events import Event
from toolkit.runner import GateRun

SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
HELP_URI = "https://cwe.mitre.org/data/definitions/{}.html"


class _Collector(abc.ABC):
    name = ""

    def __init__(self, run: GateRun):
        self.run = run
        self.findings: list[dict[str, Any]] = []
        self.cases: list[dict[str, Any]] = []

    def handle(self, event: Event) -> None:
        if event.kind == "finding":
            self.findings.append(event.data)
        elif event.kind == "attack.case":
            self.cases.append(event.data)
        elif event.kind == "attack.done":
            self.run.evidence.write_bytes(self.name, self.render(event.data))

    @abc.abstractmethod
    def render(self, done: dict[str, Any]) -> bytes: ...


class JsonWriter(_Collector):
    name = "gate3-attack.json"

    def render(self, done: dict[str, Any]) -> bytes:
        doc = {"tool": "release-gate-toolkit", "version": __version__, **done,
               "cases": self.cases, "findings": self.findings}
        return (json.dumps(doc, indent=2, sort_keys=True) + "\n").encode()


class SarifWriter(_Collector):
    name = "gate3-attack.sarif"

    def render(self, done: dict[str, Any]) -> bytes:
        from attacks.base import REGISTRY

        rules = []
        index = {}
        for i, (aid, cls) in enumerate(sorted(REGISTRY.items())):
            spec = cls.spec
            index[aid] = i
            rules.append({
                "id": aid, "name": spec.family, "shortDescription": {"text": spec.title},
                "fullDescription": {"text": " ".join((cls.__doc__ or spec.title).split())},
                "helpUri": HELP_URI.format(spec.cwe),
                "properties": {"tags": ["security", f"external/cwe/cwe-{spec.cwe}"],
                               "security-severity": str({0: 1.0, 1: 3.0, 2: 5.5, 3: 8.0, 4: 9.5}[int(spec.severity)])},
            })
        results = [self._result(f, index) for f in self.findings]
        doc = {"$schema": SARIF_SCHEMA, "version": "2.1.0", "runs": [{
            "tool": {"driver": {"name": "release-gate-toolkit", "version": __version__,
                                "informationUri": "https://cwe.mitre.org/", "rules": rules}},
            "automationDetails": {"id": f"attack/{self.run.evidence.run_id}"},
            "results": results}]}
        return (json.dumps(doc, indent=2) + "\n").encode()

    def _result(self, f: dict[str, Any], index: dict[str, int]) -> dict[str, Any]:
        level = {"info": "note", "low": "note", "medium": "warning", "high": "error", "critical": "error"}
        rel = os.path.relpath(self.run.contract.path, Path.cwd())
        uri = Path(rel).as_posix() if not rel.startswith("..") else self.run.contract.path.name
        return {
            "ruleId": f["attack_id"], "ruleIndex": index.get(f["attack_id"], 0),
            "level": level[f["severity"]],
            "message": {"text": f"{f['title']} on surface {f['surface']}: {f['evidence'][:500]}"},
            "locations": [{"physicalLocation": {"artifactLocation": {"uri": uri},
                                                "region": {"startLine": 1}},
                           "logicalLocations": [{"name": f["surface"], "kind": "resource"}]}],
            "partialFingerprints": {"toolkitFinding/v1": f["fingerprint"]},
            "properties": {"payload": f["payload"], "cwe": f["cwe"], "transcript": f["transcript"]},
        }


class JunitWriter(_Collector):
    name = "gate3-attack.junit.xml"

    def render(self, done: dict[str, Any]) -> bytes:
        suite = ET.Element("testsuite", name="toolkit-attack", tests=str(len(self.cases)))
        failures = errors = skipped = 0
        for case in self.cases:
            tc = ET.SubElement(suite, "testcase", classname=case["attack_id"], name=case["surface"])
            if case["status"] == "vulnerable":
                failures += 1
                mine = [f for f in self.findings if f["attack_id"] == case["attack_id"] and f["surface"] == case["surface"]]
                el = ET.SubElement(tc, "failure", message=f"{len(mine) or case['findings']} finding(s)")
                el.text = "\n".join(f"{f['evidence'][:300]}  payload={json.dumps(f['payload'])[:200]}" for f in mine)
            elif case["status"] == "error":
                errors += 1
                ET.SubElement(tc, "error", message="; ".join(case["notes"])[:500])
            elif case["status"] == "skipped":
                skipped += 1
                ET.SubElement(tc, "skipped", message="; ".join(case["notes"])[:500])
            ET.SubElement(tc, "system-out").text = f"payloads sent: {case['sent']}"
        suite.set("failures", str(failures))
        suite.set("errors", str(errors))
        suite.set("skipped", str(skipped))
        xml: bytes = ET.tostring(suite, encoding="utf-8", xml_declaration=True)
        return xml


class MarkdownWriter(_Collector):
    """A summary for humans and CI job pages (e.g. $GITHUB_STEP_SUMMARY)."""

    name = "gate3-attack.md"

    def render(self, done: dict[str, Any]) -> bytes:
        c = self.run.contract
        lines = [f"# Attack run {self.run.evidence.run_id}: {done['verdict']}", "",
                 f"Contract `{c.name}` {c.version}, budget {done['budget']}, seed {done['seed']}.", "",
                 "| attack | surface | sent | result | findings |", "|---|---|---:|---|---:|"]
        for case in self.cases:
            lines.append(f"| {case['attack_id']} | {case['surface']} | {case['sent']} | {case['status']} | "
                         f"{case['findings'] or ''} |")
        if self.findings:
            lines += ["", "## Findings", ""]
            for f in self.findings:
                payload = json.dumps(f["payload"], ensure_ascii=True)[:160].replace("|", "\\|")
                lines.append(f"- **{f['attack_id']}** (CWE-{f['cwe']}, {f['severity']}) on `{f['surface']}`: "
                             f"{_md(f['evidence'][:240])}  \n  payload `{payload}`, transcript `{f['transcript']}`")
        return ("\n".join(lines) + "\n").encode()


class HtmlWriter(_Collector):
    """One self-contained page; every value is escaped, payloads included."""

    name = "gate3-attack.html"

    def render(self, done: dict[str, Any]) -> bytes:
        from html import escape

        rows = "".join(f"<tr class='{escape(c['status'])}'><td>{escape(c['attack_id'])}</td><td>{escape(c['surface'])}"
                       f"</td><td>{c['sent']}</td><td>{escape(c['status'])}</td><td>{c['findings'] or ''}</td></tr>"
                       for c in self.cases)
        found = "".join(f"<li><b>{escape(f['attack_id'])}</b> on <code>{escape(f['surface'])}</code>: "
                        f"{escape(f['evidence'][:400])}<br><code>{escape(json.dumps(f['payload'])[:300])}</code></li>"
                        for f in self.findings)
        page = (f"<!doctype html><meta charset='utf-8'><title>attack {escape(self.run.evidence.run_id)}</title>"
                "<style>body{font:14px sans-serif;margin:2em}td,th{padding:2px 8px;border-bottom:1px solid #ddd}"
                ".vulnerable,.error{background:#fdd}.clean{background:#efe}</style>"
                f"<h1>Attack run: {escape(done['verdict'])}</h1>"
                f"<p>{escape(self.run.contract.name)} {escape(self.run.contract.version)}, budget "
                f"{escape(str(done['budget']))}, seed {escape(str(done['seed']))}</p>"
                f"<table><tr><th>attack</th><th>surface</th><th>sent</th><th>result</th><th>findings</th></tr>{rows}"
                f"</table><h2>Findings</h2><ul>{found or '<li>none</li>'}</ul>")
        return page.encode()


def _md(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ").replace("`", "'")
