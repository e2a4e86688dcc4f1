"""What a signed run claims: its verdict, the parameters it ran at, the environment it ran in.

The parameters are read from each gate's summary, so the release policy can compare
them with the contract's full strength without trusting anything unsigned.
"""

from __future__ import annotations

import enum
import hashlib
import os
import re
from contextvars import ContextVar
from typing import Any


class Verdict(enum.StrEnum):
    """A gate's verdict; a str, so it compares, formats and serialises as its value."""

    PASS = "pass"
    FAIL = "fail"
    ERROR = "error"
    INTERRUPTED = "interrupted"
    INCOMPLETE = "incomplete"

    @classmethod
    def of(cls, value: Any) -> Verdict:
        try:
            return cls(str(value))
        except ValueError:
            return cls.ERROR

    @property
    def is_failure(self) -> bool:
        """Counts toward the blocker rule (a tool error is no pass either); interruptions do not."""
        return self in (Verdict.FAIL, Verdict.ERROR)


# the profile `toolkit gates` runs under, recorded with each attempt
PROFILE: ContextVar[str] = ContextVar("toolkit_profile", default="manual")

_PARAMETERS = {
    "cycle": (
        "cycles_requested",
        "cycles_completed",
        "health_duration_s",
        "interval_s",
        "checks_expected",
        "health_checks_passed",
        "health_checks_failed",
    ),
    "soak": ("duration_s", "warmup_s", "requests_planned"),
    "attack": ("budget", "attack_seed", "payloads_sent"),
    "secrets": ("files_scanned", "canaries_planted", "canaries_found", "scope"),
    "drill": ("faults", "seed", "rpo_s", "rto_s"),
    "determinism": ("runs", "tests", "env_sha256"),
}


def parameters(gate: str, body: dict[str, Any]) -> dict[str, Any]:
    """The figures a gate ran at and measured, as its summary states them."""
    out = {k: body.get(k) for k in _PARAMETERS.get(gate, ()) if k in body}
    if gate == "cycle":
        out["zombies"] = len(body.get("zombies") or [])
    if gate == "attack":
        cases = body.get("cases") or []
        out["coverage"] = sorted(
            {
                (str(c.get("attack_id")), str(c.get("surface")), str(c.get("status")))
                for c in cases
                if isinstance(c, dict)
            }
        )
        out["findings"] = len(body.get("findings") or [])
    return out


# ---------------------------------------------------------------- environment

WEAKENING = re.compile(r"(^|_)WEAKEN($|_)")
TEST_ONLY = re.compile(
    r"^(TOOLKIT_TEST_|SONIA_TEST_ONLY|SONIA_FAKE_|.*_INSECURE$|.*_DISABLE_AUTH$)"
)
_RECORDED = re.compile(r"^(SONIA_|TOOLKIT_|PYTHON|LD_|DYLD_|OPENCLAW_|GATEWAY_)|WEAKEN|INSECURE")
_SECRETISH = re.compile(r"KEY|TOKEN|SECRET|PASS|CRED", re.IGNORECASE)


def environment(contract_env: dict[str, str] | None = None) -> dict[str, str]:
    """The environment the services inherit that can change behaviour; secret values hashed."""
    merged = {k: v for k, v in os.environ.items() if _RECORDED.search(k)}
    merged.update(contract_env or {})
    out = {}
    for name, value in sorted(merged.items()):
        if _SECRETISH.search(name) and not name.endswith(("_FILE", "_S")):
            value = "sha256:" + hashlib.sha256(value.encode()).hexdigest()[:16]
        out[name] = value
    return out


def weakening(env: dict[str, Any]) -> list[str]:
    """Names (with values) of weakening switches and test-only settings in a recorded env."""
    bad = []
    for name, value in sorted(env.items()):
        if WEAKENING.search(name) and str(value).strip():
            bad.append(f"weakening switch {name}={value}")
        elif TEST_ONLY.match(name):
            bad.append(f"test-only setting {name}={value}")
    return bad
