"""Findings and measurements: frozen, ordered, with fingerprints that survive reruns."""

from __future__ import annotations

import enum
import hashlib
import json
import re
from dataclasses import asdict, dataclass, field, replace
from typing import Any


class Severity(enum.IntEnum):
    INFO = 0
    LOW = 1
    MEDIUM = 2
    HIGH = 3
    CRITICAL = 4

    @property
    def sarif_level(self) -> str:
        return {0: "note", 1: "note", 2: "warning", 3: "error", 4: "error"}[int(self)]


VOLATILE = re.compile(r"[0-9a-fA-F]{8,}")  # canary names, tokens, hashes: new on every run


@dataclass(frozen=True, eq=False)
class Finding:
    """The target is vulnerable: data, not an exception.

    Equality, hashing and the fingerprint use exactly (attack, surface, weakness class,
    oracle kind): one weakness reached by many payloads is one finding, its payloads are
    variants. Oracles read ``kind[:sub]:detail``; the detail names the variant. Random
    canary names are masked out, so the same seed gives the same fingerprints run after
    run (GitHub code scanning keys alerts on them).
    """

    attack_id: str
    title: str = field(compare=False)
    surface: str
    payload_class: str
    cwe: int = field(compare=False)
    severity: Severity = field(compare=False)
    payload: Any = field(compare=False)
    evidence: str = field(compare=False)
    transcript: str = field(default="", compare=False)
    oracle: str = ""
    # volatile fields: excluded from equality and fingerprint
    ts: str = field(default="", compare=False)
    variants: tuple[dict[str, Any], ...] = field(default=(), compare=False)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Finding):
            return NotImplemented
        return self.fingerprint == other.fingerprint

    def __hash__(self) -> int:
        return hash(self.fingerprint)

    @property
    def fingerprint(self) -> str:
        stable = json.dumps([self.attack_id, self.surface, self.payload_class, self.oracle_kind])
        return hashlib.sha256(stable.encode()).hexdigest()[:32]

    @property
    def oracle_kind(self) -> str:
        """The oracle without the variant's detail: ``kind[:sub]:detail`` -> ``kind[:sub]``.

        ``canary:absolute path`` and ``canary:climb to /`` are one weakness found two ways;
        ``leak:log:a.log`` and ``leak:state:a.db`` are two. Random names are masked.
        """
        parts = stable_text(self.oracle).split(":")
        return ":".join(parts[:2] if len(parts) >= 3 else parts[:1])

    @property
    def variant_id(self) -> str:
        """Tells this payload apart from the finding's other variants (transcript names)."""
        raw = json.dumps(_canon(self.payload), sort_keys=True, default=repr)
        return hashlib.sha256(raw.encode()).hexdigest()[:8]

    def variant(self) -> dict[str, Any]:
        return {"payload": self.payload, "evidence": self.evidence, "transcript": self.transcript,
                "oracle": self.oracle}

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["severity"] = self.severity.name.lower()
        d["fingerprint"] = self.fingerprint
        d["oracle_kind"] = self.oracle_kind
        d["variants"] = list(self.variants) or [self.variant()]
        d["variant_count"] = len(d["variants"])
        return d


def stable_text(text: str) -> str:
    return VOLATILE.sub("#", text)


def group(findings: list[Finding]) -> list[Finding]:
    """One finding per fingerprint, first seen first; every payload that reached it is a variant."""
    order: dict[str, list[Finding]] = {}
    for f in findings:
        order.setdefault(f.fingerprint, []).append(f)
    out = []
    for members in order.values():
        variants = tuple(v for m in members for v in (m.variants or (m.variant(),)))
        head = members[0]
        out.append(replace(head, variants=variants))
    return out


def _canon(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.hex()
    return value


@dataclass(frozen=True)
class Measurement:
    """A gate result is a measurement, never a bare boolean."""

    metric: str
    value: float | int | None
    threshold: float | int | None
    unit: str
    verdict: str  # "pass" | "fail" | "error"
    samples: int = 1
    detail: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def measure(metric: str, value: float | None, threshold: float | None, unit: str,
            samples: int = 1, detail: str = "", higher_is_worse: bool = True) -> Measurement:
    if value is None:
        verdict = "error"
    elif threshold is None:
        verdict = "pass"
    elif higher_is_worse:
        verdict = "pass" if value <= threshold else "fail"
    else:
        verdict = "pass" if value >= threshold else "fail"
    return Measurement(metric, value, threshold, unit, verdict, samples, detail)
