"""JSON, SARIF 2.1.0, JUnit XML, Markdown and HTML writers for attack runs, fed by events.

Findings arrive grouped (one per attack, surface, weakness class and oracle, its payloads
as variants), so every format shows one alert per weakness with its variant count.
"""

from __future__ import annotations

import abc
import json
import os
import time
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET  # nosec B405

from reports.common import RISK_ORDER, SECURITY_SEVERITY, suite_attrs, surface_line, utcnow
from reports.remediation import cwe_url, solution
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
        self.started = utcnow()
        self.t0 = time.monotonic()
        self.case_t0: dict[tuple[str, str], float] = {}

    def handle(self, event: Event) -> None:
        if event.kind == "finding":
            self.findings.append(event.data)
        elif event.kind == "attack.start":
            self.case_t0[(event.data["attack_id"], event.data["surface"])] = time.monotonic()
        elif event.kind == "attack.case":
            key = (event.data["attack_id"], event.data["surface"])
            took = time.monotonic() - self.case_t0.pop(key, time.monotonic())
            self.cases.append({**event.data, "time_s": round(took, 3)})
        elif event.kind == "attack.done":
            self.run.evidence.write_bytes(self.name, self.render(event.data))

    def mine(self, case: dict[str, Any]) -> list[dict[str, Any]]:
        return [f for f in self.findings if f["attack_id"] == case["attack_id"] and f["surface"] == case["surface"]]

    @abc.abstractmethod
    def render(self, done: dict[str, Any]) -> bytes: ...


def variants(f: dict[str, Any]) -> list[dict[str, Any]]:
    return list(f.get("variants") or [{"payload": f["payload"], "evidence": f["evidence"],
                                       "transcript": f["transcript"]}])


def skip_reason(case: dict[str, Any]) -> str:
    """Every skip says why; a case with no notes sent nothing because no payload applied."""
    notes = "; ".join(case.get("notes") or [])
    return notes or f"no payload of {case['attack_id']} applies to surface {case['surface']} (0 sent)"


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
            description, fix = solution(spec.cwe)
            rules.append({
                "id": aid, "name": spec.family, "shortDescription": {"text": spec.title},
                "fullDescription": {"text": " ".join((cls.__doc__ or spec.title).split())},
                "help": {"text": f"{description} Solution: {fix}"},
                "helpUri": HELP_URI.format(spec.cwe),
                "properties": {"tags": ["security", f"external/cwe/cwe-{spec.cwe}"],
                               "security-severity": SECURITY_SEVERITY[spec.severity.name.lower()]},
            })
        results = [self._result(f, index) for f in self.findings]
        doc = {"$schema": SARIF_SCHEMA, "version": "2.1.0", "runs": [{
            "tool": {"driver": {"name": "release-gate-toolkit", "version": __version__,
                                "informationUri": "https://cwe.mitre.org/", "rules": rules}},
            "automationDetails": {"id": f"attack/{self.run.evidence.run_id}"},
            "results": results}]}
        return (json.dumps(doc, indent=2) + "\n").encode()

    def _uri(self) -> str:
        rel = os.path.relpath(self.run.contract.path, Path.cwd())
        return Path(rel).as_posix() if not rel.startswith("..") else self.run.contract.path.name

    def _result(self, f: dict[str, Any], index: dict[str, int]) -> dict[str, Any]:
        level = {"info": "note", "low": "note", "medium": "warning", "high": "error", "critical": "error"}
        many = variants(f)
        line = surface_line(self.run.contract.path, f["surface"])
        result: dict[str, Any] = {
            "ruleId": f["attack_id"], "level": level[f["severity"]],
            "message": {"text": f"{f.get('title', f['attack_id'])} on surface {f['surface']} ({len(many)} variant(s)): "
                                f"{f['evidence'][:500]}"},
            "locations": [{"physicalLocation": {"artifactLocation": {"uri": self._uri()},
                                                "region": {"startLine": line}},
                           "logicalLocations": [{"name": f["surface"], "kind": "resource"}]}],
            "partialFingerprints": {"toolkitFinding/v1": f["fingerprint"]},
            "properties": {"cwe": f["cwe"], "weakness": f["payload_class"], "oracle": f.get("oracle_kind", f["oracle"]),
                           "variant_count": len(many), "payloads": [v["payload"] for v in many[:20]],
                           "transcripts": [v["transcript"] for v in many[:20]]},
        }
        if f["attack_id"] in index:
            result["ruleIndex"] = index[f["attack_id"]]
        return result


class JunitWriter(_Collector):
    name = "gate3-attack.junit.xml"

    def render(self, done: dict[str, Any]) -> bytes:
        suite = ET.Element("testsuite", name="toolkit-attack", tests=str(len(self.cases)))
        for key, value in suite_attrs(self.started, time.monotonic() - self.t0).items():
            suite.set(key, value)
        counts = {"failures": 0, "errors": 0, "skipped": 0}
        for case in self.cases:
            tc = ET.SubElement(suite, "testcase", classname=case["attack_id"], name=case["surface"],
                               time=f"{case.get('time_s', 0.0):.3f}")
            if case["status"] == "vulnerable":
                counts["failures"] += 1
                self._failure(tc, case)
            elif case["status"] == "error":
                counts["errors"] += 1
                ET.SubElement(tc, "error", type="ToolError", message="; ".join(case.get("notes") or [])[:500] or "tool error")
            elif case["status"] == "skipped":
                counts["skipped"] += 1
                ET.SubElement(tc, "skipped", message=skip_reason(case)[:500])
            ET.SubElement(tc, "system-out").text = f"payloads sent: {case['sent']}"
        for name, count in counts.items():
            suite.set(name, str(count))
        return bytes(ET.tostring(suite, encoding="utf-8", xml_declaration=True))

    def _failure(self, tc: ET.Element, case: dict[str, Any]) -> None:
        mine = self.mine(case)
        cwe = mine[0]["cwe"] if mine else None
        el = ET.SubElement(tc, "failure", type=f"CWE-{cwe}" if cwe else "vulnerable",
                           message=f"{len(mine) or case['findings']} finding(s), "
                                   f"{sum(len(variants(f)) for f in mine)} variant(s)")
        el.text = "\n".join(f"[{f['severity']}] {f['evidence'][:300]}  variants={len(variants(f))}  "
                            f"payload={json.dumps(f['payload'])[:200]}  fingerprint={f.get('fingerprint', '')}"
                            for f in mine)


class MarkdownWriter(_Collector):
    """A summary for humans and CI job pages (e.g. $GITHUB_STEP_SUMMARY)."""

    name = "gate3-attack.md"

    def render(self, done: dict[str, Any]) -> bytes:
        c = self.run.contract
        lines = [f"# Attack run {self.run.evidence.run_id}: {done['verdict']}", "",
                 f"Contract `{_md(c.name)}` {_md(c.version)}, budget {done['budget']}, seed {done['seed']}.", "",
                 "| attack | surface | sent | result | findings | why |", "|---|---|---:|---|---:|---|"]
        for case in self.cases:
            why = skip_reason(case) if case["status"] == "skipped" else "; ".join(case.get("notes") or [])
            lines.append(f"| {case['attack_id']} | {_md(case['surface'])} | {case['sent']} | {case['status']} | "
                         f"{case['findings'] or ''} | {_md(why[:160])} |")
        for risk in RISK_ORDER:
            alerts = [f for f in self.findings if f["severity"] == risk]
            if not alerts:
                continue
            lines += ["", f"## {risk.capitalize()} ({len(alerts)})", ""]
            for f in alerts:
                description, fix = solution(f["cwe"])
                many = variants(f)
                payload = json.dumps(f["payload"], ensure_ascii=True)[:160]
                lines += [f"### {f['attack_id']}: {_md(f.get('title', f['attack_id']))} on `{_md(f['surface'])}`", "",
                          f"- CWE-{f['cwe']}, {len(many)} variant(s), fingerprint `{f.get('fingerprint', '')}`",
                          f"- Evidence: {_md(f['evidence'][:240])}",
                          f"- First payload: `{_md(payload)}`, transcript `{_md(f['transcript'])}`",
                          f"- Description: {description}", f"- Solution: {fix}", ""]
        return ("\n".join(lines) + "\n").encode()


class HtmlWriter(_Collector):
    """One self-contained page grouped by risk; every value is escaped, payloads included."""

    name = "gate3-attack.html"

    def render(self, done: dict[str, Any]) -> bytes:
        from html import escape

        rows = "".join(f"<tr class='{escape(c['status'])}'><td>{escape(c['attack_id'])}</td><td>{escape(c['surface'])}"
                       f"</td><td>{c['sent']}</td><td>{escape(c['status'])}</td><td>{c['findings'] or ''}</td>"
                       f"<td>{escape(skip_reason(c) if c['status'] == 'skipped' else '; '.join(c.get('notes') or []))}</td></tr>"
                       for c in self.cases)
        summary = "".join(f"<tr><td class='{r}'>{r}</td><td>{sum(f['severity'] == r for f in self.findings)}</td></tr>"
                          for r in RISK_ORDER)
        page = (f"<!doctype html><meta charset='utf-8'><title>attack {escape(self.run.evidence.run_id)}</title>"
                "<style>body{font:14px sans-serif;margin:2em}td,th{padding:2px 8px;border-bottom:1px solid #ddd;"
                "text-align:left;vertical-align:top}.vulnerable,.error,.critical,.high{background:#fdd}"
                ".medium{background:#ffe7c2}.low,.info{background:#eef}.clean{background:#efe}"
                ".alert{border:1px solid #ccc;margin:1em 0;padding:.5em 1em}code{word-break:break-all}</style>"
                f"<h1>Attack run: {escape(str(done['verdict']))}</h1>"
                f"<p>{escape(self.run.contract.name)} {escape(self.run.contract.version)}, budget "
                f"{escape(str(done['budget']))}, seed {escape(str(done['seed']))}</p>"
                f"<h2>Summary of alerts</h2><table><tr><th>risk</th><th>alerts</th></tr>{summary}</table>"
                f"<h2>Alerts</h2>{self._alerts(escape) or '<p>none</p>'}"
                f"<h2>Cases</h2><table><tr><th>attack</th><th>surface</th><th>sent</th><th>result</th>"
                f"<th>findings</th><th>notes</th></tr>{rows}</table>")
        return page.encode()

    def _alerts(self, escape: Any) -> str:
        parts = []
        for risk in RISK_ORDER:
            for f in (f for f in self.findings if f["severity"] == risk):
                description, fix = solution(f["cwe"])
                many = variants(f)
                items = "".join(f"<li><code>{escape(json.dumps(v['payload'])[:300])}</code> "
                                f"{escape(v['evidence'][:200])}</li>" for v in many[:20])
                parts.append(
                    f"<div class='alert'><h3 class='{risk}'>{escape(risk)}: {escape(f.get('title', f['attack_id']))}</h3>"
                    f"<table><tr><th>attack</th><td>{escape(f['attack_id'])}</td></tr>"
                    f"<tr><th>surface</th><td>{escape(f['surface'])}</td></tr>"
                    f"<tr><th>CWE</th><td><a href='{escape(cwe_url(f['cwe']))}'>CWE-{int(f['cwe'])}</a></td></tr>"
                    f"<tr><th>description</th><td>{escape(description)}</td></tr>"
                    f"<tr><th>solution</th><td>{escape(fix)}</td></tr>"
                    f"<tr><th>evidence</th><td>{escape(f['evidence'][:400])}</td></tr>"
                    f"<tr><th>fingerprint</th><td><code>{escape(f.get('fingerprint', ''))}</code></td></tr>"
                    f"<tr><th>variants ({len(many)})</th><td><ul>{items}</ul></td></tr></table></div>")
        return "".join(parts)


def _md(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ").replace("`", "'").replace("<", "&lt;")
