"""A self-contained HTML report of one soak: the verdict, the measurements and four SVG plots.

It subscribes to the soak's events (``MinuteWindow`` per window, ``SoakDone`` before the
seal) and writes ``gate2-report.html`` into the evidence, so the manifest covers it. No
script, no external asset: it opens from an archive years later. Every text is escaped.
"""

from __future__ import annotations

from html import escape
from typing import Any

from toolkit.core.events import Bus, MinuteWindow, SoakDone
from toolkit.core.runner import GateRun

NAME = "gate2-report.html"
W, H, PAD_L, PAD_R, PAD_T, PAD_B = 720, 260, 64, 150, 30, 36
COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#7f7f7f")
Series = dict[str, list[tuple[float, float]]]


class SoakHtmlWriter:
    def __init__(self, run: GateRun):
        self.run = run
        self.windows: list[dict[str, Any]] = []

    def attach(self, bus: Bus) -> None:
        bus.on(MinuteWindow, lambda e: self.windows.append(e.payload()))
        bus.on(SoakDone, self.write)

    def write(self, event: SoakDone) -> None:
        self.run.evidence.write_bytes(NAME, render(event.payload(), self.windows).encode())


def _ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    step = (hi - lo) / n if hi > lo else 1.0
    return [lo + i * step for i in range(n + 1)]


def _fmt(v: float) -> str:
    return f"{v:.3g}" if abs(v) < 1000 else f"{v:,.0f}"


def svg_plot(title: str, unit: str, series: Series, xlabel: str = "time (s)") -> str:
    """A line plot with axes, ticks and a legend; an empty series still draws its frame."""
    pts = [p for s in series.values() for p in s]
    x0, x1 = (min(p[0] for p in pts), max(p[0] for p in pts)) if pts else (0.0, 1.0)
    y1 = max((p[1] for p in pts), default=1.0) * 1.1 or 1.0
    x1 = x1 if x1 > x0 else x0 + 1.0

    def sx(x: float) -> float:
        return PAD_L + (x - x0) / (x1 - x0) * (W - PAD_L - PAD_R)

    def sy(y: float) -> float:
        return H - PAD_B - y / y1 * (H - PAD_T - PAD_B)

    out = [(f'<svg xmlns="http://www.w3.org/2000/svg" class="plot" width="{W}" height="{H}" '
            f'viewBox="0 0 {W} {H}" role="img" aria-label="{escape(title)}">'),
           f'<text x="{PAD_L}" y="18" class="title">{escape(title)}</text>',
           f'<line x1="{PAD_L}" y1="{H - PAD_B}" x2="{W - PAD_R}" y2="{H - PAD_B}" class="axis"/>',
           f'<line x1="{PAD_L}" y1="{PAD_T}" x2="{PAD_L}" y2="{H - PAD_B}" class="axis"/>']
    for y in _ticks(0.0, y1):
        out.append(
            f'<line x1="{PAD_L}" y1="{sy(y):.1f}" x2="{W - PAD_R}" y2="{sy(y):.1f}" class="grid"/>'
            f'<text x="{PAD_L - 6}" y="{sy(y) + 4:.1f}" class="tick" text-anchor="end">'
            f"{_fmt(y)}</text>"
        )
    for x in _ticks(x0, x1):
        out.append(f'<text x="{sx(x):.1f}" y="{H - PAD_B + 16}" class="tick" text-anchor="middle">'
                   f'{_fmt(x)}</text>')
    out.append(f'<text x="{(PAD_L + W - PAD_R) / 2}" y="{H - 4}" class="tick" '
               f'text-anchor="middle">{escape(xlabel)}</text>'
               f'<text x="14" y="{PAD_T - 8}" class="tick">{escape(unit)}</text>')
    for i, (name, s) in enumerate(series.items()):
        colour = COLOURS[i % len(COLOURS)]
        path = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in s)
        if len(s) > 1:
            out.append(
                f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="2"/>'
            )
        out += [
            f'<circle cx="{sx(x):.1f}" cy="{sy(y):.1f}" r="2.5" fill="{colour}"/>' for x, y in s
        ]
        ly = PAD_T + 16 * i
        out.append(
            f'<rect x="{W - PAD_R + 12}" y="{ly - 9}" width="12" height="4" fill="{colour}"/>'
            f'<text x="{W - PAD_R + 30}" y="{ly - 4}" class="tick">{escape(name)}</text>'
        )
    out.append("</svg>")
    return "".join(out)


def _series(windows: list[dict[str, Any]], pick: Any) -> list[tuple[float, float]]:
    return [(float(w["end_s"]), float(v)) for w in windows if (v := pick(w)) is not None]


def plots(windows: list[dict[str, Any]]) -> list[str]:
    lat: Series = {
        f"p{q}": _series(windows, lambda w, q=q: w.get(f"p{q}_ms")) for q in (50, 95, 99)
    }
    err: Series = {"error rate": _series(windows, lambda w: None if w.get("error_rate") is None
                                         else 100 * w["error_rate"])}
    names = sorted({n for w in windows for n in w.get("rss_mb", {})})
    rss: Series = {n: _series(windows, lambda w, n=n: w.get("rss_mb", {}).get(n)) for n in names}
    rate: Series = {"asked": _series(windows, lambda w: w.get("asked_rate_per_s")),
                    "achieved": _series(windows, lambda w: w.get("achieved_rate_per_s"))}
    return [svg_plot("Latency per window (from the intended start)", "ms", lat),
            svg_plot("Error rate per window", "%", err),
            svg_plot("Resident memory per service", "MB", rss),
            svg_plot("Request rate: achieved vs asked", "req/s", rate)]


CSS = """body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#222}
h1{font-size:20px}.pass{color:#1a7f37}.fail,.error,.interrupted{color:#cf222e}
table{border-collapse:collapse;margin:12px 0}
td,th{border:1px solid #ccc;padding:3px 8px;text-align:left}
.plot{display:block;margin:12px 0;border:1px solid #eee}.title{font-weight:600;font-size:13px}
.tick{font-size:11px;fill:#444}.axis{stroke:#333}.grid{stroke:#eee}.warn{color:#9a6700}"""


def render(done: dict[str, Any], windows: list[dict[str, Any]]) -> str:
    verdict = str(done.get("verdict"))
    rows = "".join(
        f"<tr><td>{escape(str(m['metric']))}</td><td>{escape(str(m['value']))}</td>"
        f"<td>{escape(str(m['threshold']))}</td><td>{escape(str(m['unit']))}</td>"
        f'<td class="{escape(m["verdict"])}">{escape(m["verdict"])}</td>'
        f"<td>{escape(str(m['detail']))[:300]}</td></tr>"
        for m in done.get("measurements", [])
    )
    notes = []
    if done.get("abort_reason"):
        notes.append(f"<p class=\"fail\">Aborted early: {escape(str(done['abort_reason']))}</p>")
    if done.get("generator_saturated"):
        notes.append(
            f"<p class=\"warn\">The latency figures are the generator's, not the target's: "
            f"{escape(str(done['generator_saturated']))}</p>"
        )
    return (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8">'
        "<title>Gate 2 soak "
        f"{escape(str(done.get('run_id')))}</title><style>{CSS}</style></head><body>"
        f'<h1>Gate 2 soak: <span class="{escape(verdict)}">{escape(verdict)}</span></h1>'
        f"<p>Contract {escape(str(done.get('contract')))}; run {escape(str(done.get('run_id')))}; "
        f"{len(windows)} windows of {escape(str(done.get('window_s')))} s over "
        f"{escape(str(done.get('duration_s')))} s; seed {escape(str(done.get('seed')))}.</p>"
        + "".join(notes)
        + "<table><tr><th>metric</th><th>value</th><th>threshold</th><th>unit</th><th>verdict</th>"
        f"<th>detail</th></tr>{rows}</table>" + "".join(plots(windows)) + "</body></html>"
    )
