"""`toolkit preflight`: the seed's prerequisite check, as a table of real checks."""

from __future__ import annotations

import importlib.metadata
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass

from toolkit.core.contract import Contract
from toolkit.core.supervisor import describe, listeners_on, port_in_use

DEPENDENCIES = ("hypothesis", "httpx", "psutil", "bandit", "detect-secrets", "anyio", "click",
                "rich", "starlette", "uvicorn")
DETERMINISTIC_ENV = ("PYTHONHASHSEED", "SONIA_TEST_MODE")


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str


def run_checks(c: Contract) -> list[Check]:
    return [*_python(), *_deps(), *_ports(c), *_folders(c), *_env(c)]


def _python() -> Iterator[Check]:
    v = sys.version_info
    yield Check(
        "python >= 3.11", v >= (3, 11), f"{v.major}.{v.minor}.{v.micro} at {sys.executable}"
    )


def _deps() -> Iterator[Check]:
    for dist in DEPENDENCIES:
        try:
            yield Check(f"dependency {dist}", True, importlib.metadata.version(dist))
        except importlib.metadata.PackageNotFoundError:
            yield Check(f"dependency {dist}", False, f"not installed: pip install {dist}")


def _ports(c: Contract) -> Iterator[Check]:
    for svc in c.services:
        if svc.port is not None:
            busy = port_in_use(svc.host, svc.port)
            found = listeners_on([svc.port]) if busy else []
            holders = [describe(x["pid"], x["cmdline"]) for x in found]
            detail = f"in use by {', '.join(holders)}" if holders else "in use" if busy else "free"
            yield Check(f"port {svc.port} free ({svc.name})", not busy, detail)


def _folders(c: Contract) -> Iterator[Check]:
    folders = {p.parent for svc in c.services for p in svc.logs}
    folders |= {p if not p.suffix else p.parent for svc in c.services for p in svc.state}
    folders.add(c.evidence_dir)
    for folder in sorted(folders):
        try:
            folder.mkdir(parents=True, exist_ok=True)
            ok = os.access(folder, os.W_OK)
            yield Check(f"writable {folder}", ok, "ok" if ok else "not writable")
        except OSError as exc:
            yield Check(f"writable {folder}", False, exc.strerror or str(exc))


def _env(c: Contract) -> Iterator[Check]:
    contract_env = c.env
    for name in DETERMINISTIC_ENV:
        value = contract_env.get(name, os.environ.get(name))
        where = "contract [env]" if name in contract_env else "environment"
        yield Check(
            f"deterministic env {name}",
            value is not None,
            f"{value!r} from {where}"
            if value is not None
            else "not set in [env] or the environment",
        )
