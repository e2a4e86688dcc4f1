"""A self-contained HTML report of one Gate 1 run: startup and shutdown per service and cycle.

It subscribes to the cycle gate's ``CycleDone`` event (emitted before the seal) and writes
``gate1-report.html`` into the evidence, so the manifest covers it. No script and no
external asset; every text is escaped.
"""

from __future__ import annotations

from html import escape
from typing import Any

from reports.soak_html import CSS, svg_plot
from toolkit.core.events import Bus, CycleDone
from toolkit.core.runner import GateRun

NAME = "gate1-report.html"


class CycleHtmlWriter:
    def __init__(self, run: GateRun):
        self.run = run

    def attach(self, bus: Bus) -> None:
        bus.on(CycleDone, self.write)

    def write(self, event: CycleDone) -> None:
        self.run.evidence.write_bytes(NAME, render(event.payload()).encode())


def _per_service(cycles: list[dict[str, Any]], key: str) -> dict[str, list[tuple[float, float]]]:
    series: dict[str, list[tuple[float, float]]] = {}
    for record in cycles:
        for service, seconds in (record.get(key) or {}).items():
            if isinstance(seconds, (int, float)):
                series.setdefault(str(service), []).append((float(record["cycle"]), float(seconds)))
    return series


def _cell(value: Any) -> str:
    return f"<td>{escape(str(value))[:300]}</td>"


def _problems(body: dict[str, Any]) -> str:
    kinds = ("zombies", "orphans", "leftover_listeners", "escalations", "bad_exit_codes",
             "health_failures", "pid_files", "logs_cut")
    rows = "".join(f"<tr>{_cell(k)}{_cell(len(body.get(k) or []))}"
                   f"{_cell('; '.join(map(str, (body.get(k) or [])[:5])))}</tr>" for k in kinds)
    return ("<table><tr><th>check</th><th>count</th><th>first items</th></tr>" + rows
            + "</table>")


def render(body: dict[str, Any]) -> str:
    verdict = str(body.get("verdict"))
    cycles = [c for c in body.get("cycles", []) if isinstance(c, dict) and "cycle" in c]
    rows = "".join(f"<tr>{_cell(m.get('metric'))}{_cell(m.get('value'))}{_cell(m.get('threshold'))}"
                   f"{_cell(m.get('unit'))}<td class=\"{escape(str(m.get('verdict')))}\">"
                   f"{escape(str(m.get('verdict')))}</td>{_cell(m.get('detail'))}</tr>"
                   for m in body.get("measurements", []))
    failure = body.get("failure")
    note = f"<p class=\"fail\">First failure: {escape(str(failure))}</p>" if failure else ""
    title = f"Gate 1 cycle {body.get('run_id')}"
    return (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f"<title>{escape(title)}</title><style>{CSS}</style></head><body>"
        f'<h1>Gate 1 cycle: <span class="{escape(verdict)}">{escape(verdict)}</span></h1>'
        f"<p>Contract {escape(str(body.get('contract')))}; run {escape(str(body.get('run_id')))};"
        f" {escape(str(body.get('cycles_completed')))}/{escape(str(body.get('cycles_requested')))}"
        f" cycles; {escape(str(body.get('health_checks_passed')))}/"
        f"{escape(str(body.get('checks_expected')))} health checks passed.</p>"
        + note
        + "<table><tr><th>metric</th><th>value</th><th>threshold</th><th>unit</th>"
        f"<th>verdict</th><th>detail</th></tr>{rows}</table>"
        + svg_plot("Startup to healthy per cycle", "s", _per_service(cycles, "startup_s"), "cycle")
        + svg_plot("Shutdown per cycle", "s", _per_service(cycles, "shutdown_s"), "cycle")
        + _problems(body)
        + "</body></html>"
    )
