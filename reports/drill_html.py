"""A self-contained HTML page of the drill history: RPO and RTO per drill, and the table."""

from __future__ import annotations

from html import escape
from typing import Any

from reports.soak_html import CSS, svg_plot


def render_history(title: str, rows: list[tuple[Any, ...]]) -> str:
    """``rows``: (run id, at, faults, RPO s or None, RTO s or None, lost writes, verdict)."""
    rpo = [(float(i + 1), float(r[3])) for i, r in enumerate(rows) if r[3] is not None]
    rto = [(float(i + 1), float(r[4])) for i, r in enumerate(rows) if r[4] is not None]
    lost = [(float(i + 1), float(r[5])) for i, r in enumerate(rows)]
    cells = "".join(
        "<tr>" + "".join(f"<td>{escape('-' if v is None else str(v))}</td>" for v in r[:6])
        + f"<td class=\"{escape(str(r[6]))}\">{escape(str(r[6]))}</td></tr>" for r in rows)
    return (f"<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{escape(title)}"
            f"</title><style>{CSS}</style></head><body><h1>{escape(title)}</h1>"
            f"<p>{len(rows)} drills.</p>"
            + svg_plot("RPO and RTO per drill", "s", {"RPO": rpo, "RTO": rto}, "drill")
            + svg_plot("Acknowledged writes lost per drill", "writes", {"lost": lost}, "drill")
            + "<table><tr><th>run</th><th>at</th><th>faults</th><th>RPO s</th><th>RTO s</th>"
            f"<th>lost</th><th>verdict</th></tr>{cells}</table></body></html>")
