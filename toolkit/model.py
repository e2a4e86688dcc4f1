"""Findings and measurements: frozen, ordered, with fingerprints that survive reruns."""

from __future__ import annotations

import enum
import hashlib
import json
from dataclasses import asdict, dataclass, field
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


@dataclass(frozen=True)
class Finding:
    """The target is vulnerable: data, not an exception."""

    attack_id: str
    title: str
    surface: str
    payload_class: str
    cwe: int
    severity: Severity
    payload: Any
    evidence: str
    transcript: str = ""
    oracle: str = ""
    # volatile fields: excluded from equality and fingerprint
    ts: str = field(default="", compare=False)

    @property
    def fingerprint(self) -> str:
        stable = json.dumps([self.attack_id, self.surface, self.payload_class,
                             _canon(self.payload), self.oracle], sort_keys=True, default=repr)
        return hashlib.sha256(stable.encode()).hexdigest()[:32]

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["severity"] = self.severity.name.lower()
        d["fingerprint"] = self.fingerprint
        return d


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
