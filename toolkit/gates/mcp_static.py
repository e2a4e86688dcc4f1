"""Static checks on an MCP server's tool listing: what the static scanners check, on the same
listing.

Hidden Unicode and control characters, instruction-like text in descriptions and schemas
(tool poisoning), and a listing that changed since the last run (a "rug pull"): a
fingerprint per tool is kept with the evidence and in a state file next to the evidence
folder, and a tool whose fingerprint differs from the last run's is a finding.
"""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from toolkit.core.model import Severity

STATE_FILE = ".mcp-tool-fingerprints.json"


@dataclass(frozen=True)
class Check:
    id: str
    title: str
    cwe: int
    severity: Severity


HIDDEN = Check("T-MCP-001", "Hidden or control characters in a tool listing", 1007, Severity.HIGH)
POISON = Check(
    "T-MCP-002", "Instruction-like text in a tool listing (tool poisoning)", 1427, Severity.HIGH
)
CHANGED = Check("T-MCP-003", "Tool listing changed since the last run", 345, Severity.MEDIUM)
CHECKS = (HIDDEN, POISON, CHANGED)

INSTRUCTIONS = re.compile(
    r"<\s*(important|system|instructions?|secret)\s*>"
    r"|ignore\s+(all\s+|any\s+)?(previous|prior|above|earlier|other)\s+(instructions|rules|tools)"
    r"|(do\s+not|don't|never)\s+(tell|inform|mention|reveal|show|notify)\s+(this\s+to\s+)?(the\s+)?user"
    r"|without\s+(asking|telling|informing|notifying)\s+(the\s+)?user"
    r"|system\s+prompt|you\s+are\s+now\b|new\s+instructions"
    r"|~/\.ssh|id_rsa|\.aws/credentials|/etc/shadow|mcp\.json"
    r"|(send|exfiltrate|upload|forward|post)\s+(it|them|the\s+\w+|all\s+\w+)\s+to\s+(https?://|\S+@)"
    r"|before\s+(using|calling)\s+(this|any)\s+tool,?\s+(you\s+must\s+)?(read|call|send|pass)",
    re.IGNORECASE)


@dataclass(frozen=True)
class Issue:
    check: Check
    tool: str
    where: str
    evidence: str


def strings(value: Any, where: str = "") -> Iterator[tuple[str, str]]:
    """Every string in a listing entry, keys included, with a JSON-path-like location."""
    if isinstance(value, str):
        yield where, value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield f"{where}.{k}(key)", str(k)
            yield from strings(v, f"{where}.{k}")
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from strings(v, f"{where}[{i}]")


def hidden(text: str) -> list[str]:
    out = []
    for ch in text:
        code = ord(ch)
        cat = unicodedata.category(ch)
        if ch in "\n\r\t":
            continue
        if (
            cat in ("Cc", "Cf", "Co", "Cs")
            or 0xE0000 <= code <= 0xE007F
            or 0xFE00 <= code <= 0xFE0F
        ):
            out.append(f"U+{code:04X} {unicodedata.name(ch, cat)}")
    return out


def inspect(tools: list[dict[str, Any]]) -> list[Issue]:
    issues: list[Issue] = []
    for tool in tools:
        name = str(tool.get("name", "?"))
        entry = {
            k: tool.get(k)
            for k in ("name", "title", "description", "inputSchema", "annotations")
            if k in tool
        }
        for where, text in strings(entry):
            marks = hidden(text)
            if marks:
                issues.append(
                    Issue(
                        HIDDEN, name, where, f"{', '.join(sorted(set(marks))[:5])} in {text[:80]!r}"
                    )
                )
            m = INSTRUCTIONS.search(text)
            if m:
                start = max(0, m.start() - 60)
                issues.append(
                    Issue(
                        POISON, name, where, f"{m.group(0)!r} in …{text[start : m.end() + 60]!r}…"
                    )
                )
    return issues


def fingerprint(tool: dict[str, Any]) -> str:
    entry = {k: tool.get(k) for k in ("name", "title", "description", "inputSchema", "annotations")}
    return hashlib.sha256(json.dumps(entry, sort_keys=True, ensure_ascii=True).encode()).hexdigest()


def compare(
    state: Path, server: str, tools: list[dict[str, Any]]
) -> tuple[dict[str, str], list[Issue]]:
    """(this run's fingerprints, issues for tools whose fingerprint changed or appeared since last
    run).
    """
    now = {str(t.get("name")): fingerprint(t) for t in tools}
    try:
        doc = json.loads(state.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        doc = {}
    before = doc.get(server) if isinstance(doc, dict) else None
    issues: list[Issue] = []
    if isinstance(before, dict):
        for name, fp in sorted(now.items()):
            if name in before and before[name] != fp:
                issues.append(
                    Issue(
                        CHANGED,
                        name,
                        "listing",
                        f"fingerprint {str(before[name])[:12]}… -> {fp[:12]}…: "
                        "its description or schema changed since the last run",
                    )
                )
            elif name not in before:
                issues.append(
                    Issue(
                        CHANGED,
                        name,
                        "listing",
                        f"new tool since the last run (fingerprint {fp[:12]}…)",
                    )
                )
    doc = doc if isinstance(doc, dict) else {}
    doc[server] = now
    state.parent.mkdir(parents=True, exist_ok=True)
    state.write_text(json.dumps(doc, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return now, issues
