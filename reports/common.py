"""Pieces both gates' writers share: SARIF locations, JUnit suite attributes, risk order."""

from __future__ import annotations

import datetime as dt
import re
import socket
from pathlib import Path

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
    return {"timestamp": started.replace(microsecond=0, tzinfo=None).isoformat(),
            "time": f"{elapsed:.3f}", "hostname": socket.gethostname() or "localhost"}


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)
