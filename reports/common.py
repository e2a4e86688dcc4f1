"""Pieces both gates' writers share: SARIF locations, JUnit suite attributes, risk order."""

from __future__ import annotations

import datetime as dt
import re
import socket
from html import escape
from pathlib import Path
from typing import Any

RISK_ORDER = ("critical", "high", "medium", "low", "info")
SECURITY_SEVERITY = {"critical": "9.5", "high": "8.0", "medium": "5.5", "low": "3.0", "info": "1.0"}


def surface_line(contract: Path, surface: str) -> int:
    """The line of the ``[[surfaces]]`` table whose ``name`` is ``surface`` (1 if not found)."""
    try:
        lines = contract.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        return 1
    table_line = 0
    header = re.compile(r"^\s*\[")
    name_rx = re.compile(r"""^\s*name\s*=\s*(["'])(.*)\1\s*(#.*)?$""")
    for number, line in enumerate(lines, start=1):
        if header.match(line):
            table_line = number if re.match(r"^\s*\[\[\s*surfaces\s*\]\]", line) else 0
            continue
        m = name_rx.match(line)
        if table_line and m and m.group(2) == surface:
            return table_line
    return 1


def suite_attrs(started: dt.datetime, elapsed: float) -> dict[str, str]:
    """JUnit ``testsuite`` attributes CI servers show: when, how long, where."""
    return {
        "timestamp": started.replace(microsecond=0, tzinfo=None).isoformat(),
        "time": f"{elapsed:.3f}",
        "hostname": socket.gethostname() or "localhost",
    }


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


CSS = (
    "body{font:14px sans-serif;margin:2em}"
    "td,th{padding:2px 8px;border-bottom:1px solid #ddd;text-align:left;vertical-align:top}"
    ".vulnerable,.error,.critical,.high{background:#fdd}.medium{background:#ffe7c2}"
    ".low,.info{background:#eef}.clean{background:#efe}"
    ".alert{border:1px solid #ccc;margin:1em 0;padding:.5em 1em}code{word-break:break-all}"
)


def page(title: str, body: str) -> bytes:
    """A self-contained HTML page; ``title`` is escaped here, ``body`` must be escaped already."""
    head = f"<!doctype html><meta charset='utf-8'><title>{escape(title)}</title>"
    return f"{head}<style>{CSS}</style>{body}".encode()


def row(*cells: Any, cls: str = "") -> str:
    """One table row; every cell is escaped."""
    attr = f" class='{escape(cls)}'" if cls else ""
    return f"<tr{attr}>" + "".join(f"<td>{escape(str(c))}</td>" for c in cells) + "</tr>"


def header(*names: str) -> str:
    return "<tr>" + "".join(f"<th>{escape(n)}</th>" for n in names) + "</tr>"


def field_row(name: str, html_value: str) -> str:
    """A name/value row whose value is HTML the caller escaped."""
    return f"<tr><th>{escape(name)}</th><td>{html_value}</td></tr>"


def md(text: Any) -> str:
    """Text made safe for one Markdown table cell or list item."""
    return str(text).replace("|", "\\|").replace("\n", " ").replace("`", "'").replace("<", "&lt;")
