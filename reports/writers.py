"""JSON, SARIF 2.1.0, JUnit XML, Markdown and HTML writers for attack runs, fed by events.

Findings arrive grouped (one per attack, surface, weakness class and oracle, its payloads
as variants), so every format shows one alert per weakness with its variant count.
"""

from __future__ import annotations

import abc
import json
import os
import time
from html import escape
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET  # nosec B405

from reports.common import (
    RISK_ORDER,
    SECURITY_SEVERITY,
    field_row,
    header,
    md,
    page,
    row,
    suite_attrs,
    surface_line,
    utcnow,
)
from reports.remediation import cwe_url, solution
from toolkit import __version__
from toolkit.core.events import AttackDone, CaseFinished, CaseStarted, Event, FindingMade
from toolkit.core.runner import GateRun

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
        """Dispatch on the event's type; the others are not this writer's."""
        match event:
            case FindingMade():
                self.findings.append(event.payload())
            case CaseStarted(attack_id=attack_id, surface=surface):
                self.case_t0[(attack_id, surface)] = time.monotonic()
            case CaseFinished(attack_id=attack_id, surface=surface):
                took = time.monotonic() - self.case_t0.pop((attack_id, surface), time.monotonic())
                self.cases.append({**event.payload(), "time_s": round(took, 3)})
            case AttackDone():
                self.run.evidence.write_bytes(self.name, self.render(event.payload()))

    def mine(self, case: dict[str, Any]) -> list[dict[str, Any]]:
        return [
            f
            for f in self.findings
            if f["attack_id"] == case["attack_id"] and f["surface"] == case["surface"]
        ]

    @abc.abstractmethod
    def render(self, done: dict[str, Any]) -> bytes: ...


def variants(f: dict[str, Any]) -> list[dict[str, Any]]:
    return list(
        f.get("variants")
        or [{"payload": f["payload"], "evidence": f["evidence"], "transcript": f["transcript"]}]
    )


def pacing_line(done: dict[str, Any]) -> str:
    """Rate limit and concurrency, as asked and as measured over the run."""
    p = done.get("pacing")
    if not isinstance(p, dict):
        return ""
    limit = p.get("rate_limit_per_s")
    asked = f"{limit:g}/s" if limit else "none"
    achieved = p.get("achieved_rate_per_s")
    got = f"{achieved:g}/s" if achieved is not None else "n/a"
    return (f"Rate limit {asked} (achieved {got} over {p.get('requests', 0)} requests in "
            f"{p.get('span_s', 0):g} s, held back {p.get('held_back_s', 0):g} s); concurrency "
            f"{p.get('concurrency', 1)} (at most {p.get('max_in_flight', 0)} requests in flight).")


def skip_reason(case: dict[str, Any]) -> str:
    """Every skip says why; a case with no notes sent nothing because no payload applied."""
    notes = "; ".join(case.get("notes") or [])
    return (
        notes or f"no payload of {case['attack_id']} applies to surface {case['surface']} (0 sent)"
    )


class JsonWriter(_Collector):
    name = "gate3-attack.json"

    def render(self, done: dict[str, Any]) -> bytes:
        doc = {
            "tool": "release-gate-toolkit",
            "version": __version__,
            **done,
            "cases": self.cases,
            "findings": self.findings,
        }
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
            rules.append(
                {
                    "id": aid,
                    "name": spec.family,
                    "shortDescription": {"text": spec.title},
                    "fullDescription": {"text": " ".join((cls.__doc__ or spec.title).split())},
                    "help": {"text": f"{description} Solution: {fix}"},
                    "helpUri": HELP_URI.format(spec.cwe),
                    "properties": {
                        "tags": ["security", f"external/cwe/cwe-{spec.cwe}"],
                        "security-severity": SECURITY_SEVERITY[spec.severity.name.lower()],
                    },
                }
            )
        results = [self._result(f, index) for f in self.findings]
        doc = {
            "$schema": SARIF_SCHEMA,
            "version": "2.1.0",
            "runs": [
                {
                    "tool": {
                        "driver": {
                            "name": "release-gate-toolkit",
                            "version": __version__,
                            "informationUri": "https://cwe.mitre.org/",
                            "rules": rules,
                        }
                    },
                    "automationDetails": {"id": f"attack/{self.run.evidence.run_id}"},
                    "properties": {"pacing": done.get("pacing")},
                    "results": results,
                }
            ],
        }
        return (json.dumps(doc, indent=2) + "\n").encode()

    def _uri(self) -> str:
        rel = os.path.relpath(self.run.contract.path, Path.cwd())
        return Path(rel).as_posix() if not rel.startswith("..") else self.run.contract.path.name

    def _result(self, f: dict[str, Any], index: dict[str, int]) -> dict[str, Any]:
        level = {
            "info": "note",
            "low": "note",
            "medium": "warning",
            "high": "error",
            "critical": "error",
        }
        many = variants(f)
        line = surface_line(self.run.contract.path, f["surface"])
        result: dict[str, Any] = {
            "ruleId": f["attack_id"],
            "level": level[f["severity"]],
            "message": {
                "text": f"{f.get('title', f['attack_id'])} on surface {f['surface']} "
                f"({len(many)} variant(s)): "
                f"{f['evidence'][:500]}"
            },
            "locations": [
                {
                    "physicalLocation": {
                        "artifactLocation": {"uri": self._uri()},
                        "region": {"startLine": line},
                    },
                    "logicalLocations": [{"name": f["surface"], "kind": "resource"}],
                }
            ],
            "partialFingerprints": {"toolkitFinding/v1": f["fingerprint"]},
            "properties": {
                "cwe": f["cwe"],
                "weakness": f.get("payload_class", ""),
                "oracle": f.get("oracle_kind", f.get("oracle", "")),
                "variant_count": len(many),
                "payloads": [v["payload"] for v in many[:20]],
                "transcripts": [v["transcript"] for v in many[:20]],
            },
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
        if isinstance(done.get("pacing"), dict):
            props = ET.SubElement(suite, "properties")
            for key, value in done["pacing"].items():
                ET.SubElement(props, "property", name=f"pacing.{key}", value=str(value))
        for case in self.cases:
            tc = ET.SubElement(
                suite,
                "testcase",
                classname=case["attack_id"],
                name=case["surface"],
                time=f"{case.get('time_s', 0.0):.3f}",
            )
            if case["status"] == "vulnerable":
                counts["failures"] += 1
                self._failure(tc, case)
            elif case["status"] == "error":
                counts["errors"] += 1
                ET.SubElement(
                    tc,
                    "error",
                    type="ToolError",
                    message="; ".join(case.get("notes") or [])[:500] or "tool error",
                )
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
        el = ET.SubElement(
            tc,
            "failure",
            type=f"CWE-{cwe}" if cwe else "vulnerable",
            message=f"{len(mine) or case['findings']} finding(s), "
            f"{sum(len(variants(f)) for f in mine)} variant(s)",
        )
        el.text = "\n".join(
            f"[{f['severity']}] {f['evidence'][:300]}  variants={len(variants(f))}  "
            f"payload={json.dumps(f['payload'])[:200]}  fingerprint={f.get('fingerprint', '')}"
            for f in mine
        )


class MarkdownWriter(_Collector):
    """A summary for humans and CI job pages (e.g. $GITHUB_STEP_SUMMARY)."""

    name = "gate3-attack.md"

    def render(self, done: dict[str, Any]) -> bytes:
        c = self.run.contract
        about = f"Contract `{md(c.name)}` {md(c.version)}, budget {done['budget']}, "
        about += f"seed {done['seed']}. {pacing_line(done)}"
        lines = [
            f"# Attack run {self.run.evidence.run_id}: {done['verdict']}",
            "",
            about,
            "",
            "| attack | surface | sent | result | findings | why |",
            "|---|---|---:|---|---:|---|",
        ]
        for case in self.cases:
            cells = [
                case["attack_id"],
                md(case["surface"]),
                sent_cell(case),
                case["status"],
                case["findings"] or "",
                md(case_note(case)[:160]),
            ]
            lines.append("| " + " | ".join(str(x) for x in cells) + " |")
        for risk in RISK_ORDER:
            alerts = [f for f in self.findings if f["severity"] == risk]
            if alerts:
                lines += ["", f"## {risk.capitalize()} ({len(alerts)})", ""]
                for f in alerts:
                    lines += self._alert(f)
        return ("\n".join(lines) + "\n").encode()

    def _alert(self, f: dict[str, Any]) -> list[str]:
        description, fix = solution(f["cwe"])
        payload = json.dumps(f["payload"], ensure_ascii=True)[:160]
        title = md(f.get("title", f["attack_id"]))
        return [
            f"### {f['attack_id']}: {title} on `{md(f['surface'])}`",
            "",
            (
                f"- CWE-{f['cwe']}, {len(variants(f))} variant(s), "
                f"fingerprint `{f.get('fingerprint', '')}`"
            ),
            f"- Evidence: {md(f['evidence'][:240])}",
            f"- First payload: `{md(payload)}`, transcript `{md(f['transcript'])}`",
            f"- Description: {description}",
            f"- Solution: {fix}",
            "",
        ]


class HtmlWriter(_Collector):
    """One self-contained page grouped by risk; every value is escaped, payloads included."""

    name = "gate3-attack.html"

    def render(self, done: dict[str, Any]) -> bytes:
        rows = "".join(
            row(
                c["attack_id"],
                c["surface"],
                sent_cell(c),
                c["status"],
                c["findings"] or "",
                case_note(c),
                cls=c["status"],
            )
            for c in self.cases
        )
        summary = "".join(
            row(r, sum(f["severity"] == r for f in self.findings), cls=r) for r in RISK_ORDER
        )
        c = self.run.contract
        body = (
            f"<h1>Attack run: {escape(str(done['verdict']))}</h1>"
            f"<p>{escape(c.name)} {escape(c.version)}, budget {escape(str(done['budget']))}, "
            f"seed {escape(str(done['seed']))}</p><p>{escape(pacing_line(done))}</p>"
            f"<h2>Summary of alerts</h2><table>{header('risk', 'alerts')}{summary}</table>"
            f"<h2>Alerts</h2>{self._alerts() or '<p>none</p>'}"
            f"<h2>Cases</h2><table>"
            f"{header('attack', 'surface', 'sent', 'result', 'findings', 'notes')}{rows}</table>"
        )
        return page(f"attack {self.run.evidence.run_id}", body)

    def _alerts(self) -> str:
        return "".join(
            self._alert(f) for risk in RISK_ORDER for f in self.findings if f["severity"] == risk
        )

    def _alert(self, f: dict[str, Any]) -> str:
        description, fix = solution(f["cwe"])
        many = variants(f)
        items = "".join(
            f"<li><code>{escape(json.dumps(v['payload'])[:300])}</code> "
            f"{escape(v['evidence'][:200])}</li>"
            for v in many[:20]
        )
        title = escape(f.get("title", f["attack_id"]))
        cwe = f"<a href='{escape(cwe_url(f['cwe']))}'>CWE-{int(f['cwe'])}</a>"
        fields = (
            field_row("attack", escape(f["attack_id"]))
            + field_row("surface", escape(f["surface"]))
            + field_row("CWE", cwe)
            + field_row("description", escape(description))
            + field_row("solution", escape(fix))
            + field_row("evidence", escape(f["evidence"][:400]))
            + field_row("fingerprint", f"<code>{escape(f.get('fingerprint', ''))}</code>")
            + field_row(f"variants ({len(many)})", f"<ul>{items}</ul>")
        )
        risk = escape(f["severity"])
        heading = f"<h3 class='{risk}'>{risk}: {title}</h3>"
        return f"<div class='alert'>{heading}<table>{fields}</table></div>"


def sent_cell(case: dict[str, Any]) -> str:
    """Requests sent, and how many of them got no reply (even retried on a fresh connection)."""
    missing = int(case.get("unanswered") or 0)
    return f"{case['sent']} ({missing} no reply)" if missing else str(case["sent"])


def case_note(case: dict[str, Any]) -> str:
    """Why a case was skipped, or the notes it carries."""
    return skip_reason(case) if case["status"] == "skipped" else "; ".join(case.get("notes") or [])
