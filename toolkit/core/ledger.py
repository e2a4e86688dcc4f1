"""The gate ledger: every attempt of every gate, append-only, hash-chained and signed.

One JSONL file per evidence folder (``<evidence.dir>/ledger.jsonl``). Each line is
``{"seq", "ts", "kind", "data", "prev", "sig"}``: ``prev`` is the SHA-256 of the previous
line and ``sig`` an Ed25519 signature by the runner key over the line without ``sig``.
Kinds: ``attempt.start``, ``attempt.end``, ``lock``, ``blocker.resolved``, ``quarantine``.

An attacker who can write the evidence folder but has no runner key cannot add, edit or
reorder lines; a cut tail is caught by the head anchor kept beside the runner key.
What the ledger knows, the folder must still hold: a sealed run that is gone or changed
is reported by ``toolkit verify`` and blocks the release.
"""

from __future__ import annotations

import getpass
import hashlib
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Self

import psutil

from toolkit.core import signing
from toolkit.core.errors import EvidenceError, ToolkitError
from toolkit.core.evidence import (
    GENESIS,
    JOURNAL,
    MANIFEST,
    SIGNATURE,
    plain_file,
    sha256_file,
    utc_now,
    verify_signature,
)
from toolkit.core.predicate import Verdict

LEDGER = "ledger.jsonl"
INVALIDATED = "invalidated"
LOCK_WAIT_S = 30.0


class GateBlocked(ToolkitError):
    """A gate failed twice for this contract version and no remediation is recorded."""

    exit_code = 1


@dataclass
class Attempt:
    run_id: str
    gate: str
    contract: dict[str, Any]
    profile: str
    seq: int
    verdict: Verdict = Verdict.INCOMPLETE
    digest: str | None = None
    start: str | None = None
    end: str | None = None
    parameters: dict[str, Any] = field(default_factory=dict)
    quarantined: str | None = None
    scope: str = "contract"

    @property
    def sealed(self) -> bool:
        return self.digest is not None

    @property
    def ad_hoc(self) -> bool:
        """A secrets scan of explicit paths: evidence, but no attempt of Gate 3d."""
        return self.scope == "explicit" or self.parameters.get("scope") == "explicit"


def _canon(entry: dict[str, Any]) -> bytes:
    return json.dumps(entry, sort_keys=True, separators=(",", ":"), default=str).encode()


class Ledger:
    def __init__(self, evidence_dir: Path):
        self.root = evidence_dir
        self.path = evidence_dir / LEDGER

    # ------------------------------------------------------------ writing

    def append(self, kind: str, durable: bool = True, **data: Any) -> dict[str, Any]:
        """Add one signed, chained line. ``durable=False`` flushes without fsync (kill -9 safe,
        not power-loss safe): for attempt.start, whose attempt.end fsyncs both lines."""
        signer = signing.runner_signer()
        with self._locked():
            lines = self._raw_lines()
            prev = hashlib.sha256(lines[-1]).hexdigest() if lines else GENESIS
            entry: dict[str, Any] = {
                "seq": len(lines),
                "ts": utc_now(),
                "kind": kind,
                "data": data,
                "prev": prev,
            }
            entry["sig"] = signing.sign_bytes(_canon(entry), signer)
            line = _canon(entry)
            with open(self.path, "ab") as fh:
                fh.write(line + b"\n")
                fh.flush()
                if durable:
                    os.fsync(fh.fileno())
            self._write_anchor(entry["seq"], hashlib.sha256(line).hexdigest())
        return entry

    def _locked(self) -> _FileLock:
        self.root.mkdir(parents=True, exist_ok=True)
        return _FileLock(self.path.with_name(LEDGER + ".lock"))

    def _raw_lines(self) -> list[bytes]:
        if os.path.lexists(self.path) and not plain_file(self.path):
            raise EvidenceError(f"{self.path}: the ledger is not a plain file (a link, FIFO or "
                                "device put in its place); it is not followed or read")
        try:
            return [ln for ln in self.path.read_bytes().splitlines() if ln.strip()]
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise EvidenceError(f"{self.path}: cannot read the ledger ({exc.strerror})") from None

    def anchored(self) -> bool:
        """This runner once wrote a ledger here (its head anchor exists), present or not."""
        return self._anchor().is_file()

    def _anchor(self) -> Path:
        ident = hashlib.sha256(str(self.path.absolute()).encode()).hexdigest()[:32]
        return signing.key_path().absolute().parent / "ledger-heads" / f"{ident}.json"

    def _write_anchor(self, seq: int, digest: str) -> None:
        """Renamed into place, not fsynced: the ledger line itself is; this only guards the tail."""
        doc = {"ledger": str(self.path.absolute()), "seq": seq, "sha256": digest}
        target = self._anchor()
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(doc) + "\n")
        os.replace(tmp, target)

    # ------------------------------------------------------------ reading

    def entries(self) -> list[dict[str, Any]]:
        out = []
        for raw in self._raw_lines():
            try:
                entry = json.loads(raw)
            except ValueError:
                continue
            if isinstance(entry, dict) and isinstance(entry.get("data"), dict):
                out.append(entry)
        return out

    def verify(self, keys: list[Any]) -> list[str]:
        """Chain links, signatures and the head anchor; each problem names the line."""
        problems: list[str] = []
        prev = GENESIS
        lines = self._raw_lines()
        for n, raw in enumerate(lines, 1):
            problems += self._check_line(n, raw, prev, keys)
            prev = hashlib.sha256(raw).hexdigest()
        problems += self._check_anchor(lines)
        return [f"ledger: {p}" for p in problems]

    def _check_line(self, n: int, raw: bytes, prev: str, keys: list[Any]) -> list[str]:
        try:
            entry = json.loads(raw)
            sig = entry.pop("sig")
        except (ValueError, KeyError, AttributeError, TypeError):
            return [f"line {n} is not a ledger entry"]
        problems = []
        if entry.get("prev") != prev:
            problems.append(
                f"broken link at line {n}: a line before it was changed, removed or inserted"
            )
        if entry.get("seq") != n - 1:
            problems.append(
                f"line {n} has seq {entry.get('seq')!r}: lines were removed or reordered"
            )
        if not signing.verify_bytes(_canon(entry), sig, keys):
            problems.append(f"line {n} ({entry.get('kind')}) is not signed by a trusted runner key")
        return problems

    def _check_anchor(self, lines: list[bytes]) -> list[str]:
        try:
            head = json.loads(self._anchor().read_text())
            seq, digest = int(head["seq"]), str(head["sha256"])
        except (OSError, ValueError, KeyError, TypeError):
            return []  # another machine's ledger: the chain and signatures still hold
        if len(lines) <= seq:
            known, has = seq + 1, len(lines)
            return [f"truncated or deleted: the runner's anchor knows {known} entries, file {has}"]
        if hashlib.sha256(lines[seq]).hexdigest() != digest:
            return [f"rewritten: entry {seq} differs from the one the runner anchored"]
        return []

    # ------------------------------------------------------------ queries

    def attempts(self) -> list[Attempt]:
        by_id: dict[str, Attempt] = {}
        for e in self.entries():
            d = e["data"]
            if e.get("kind") == "attempt.start":
                by_id[str(d.get("run_id"))] = Attempt(
                    str(d.get("run_id")),
                    str(d.get("gate")),
                    dict(d.get("contract") or {}),
                    str(d.get("profile")),
                    int(e.get("seq", 0)),
                    scope=str(d.get("scope", "contract")),
                )
            elif e.get("kind") == "attempt.end" and str(d.get("run_id")) in by_id:
                a = by_id[str(d["run_id"])]
                a.verdict, a.digest = Verdict.of(d.get("verdict")), d.get("digest")
                a.start, a.end = d.get("start"), d.get("end")
                a.parameters = dict(d.get("parameters") or {})
            elif e.get("kind") == "quarantine" and str(d.get("run_id")) in by_id:
                by_id[str(d["run_id"])].quarantined = str(d.get("why"))
        return sorted(by_id.values(), key=lambda a: a.seq)

    def lock_shas(self, name: str, version: str) -> list[str]:
        shas: list[str] = []
        for e in self.entries():
            d = e["data"]
            same = e.get("kind") == "lock" and d.get("name") == name and d.get("version") == version
            if same and d.get("sha256") not in shas:
                shas.append(str(d.get("sha256")))
        return shas

    def failures_since_resolution(self, gate: str, name: str, version: str) -> list[Attempt]:
        last_fix = max(
            (
                int(e.get("seq", 0))
                for e in self.entries()
                if e.get("kind") == "blocker.resolved"
                and e["data"].get("gate") == gate
                and e["data"].get("contract_name") == name
                and e["data"].get("contract_version") == version
            ),
            default=-1,
        )
        return [
            a
            for a in self.attempts()
            if a.gate == gate
            and a.seq > last_fix
            and a.verdict.is_failure
            and a.contract.get("name") == name
            and a.contract.get("version") == version
            and not a.ad_hoc
        ]

    def resolutions(self) -> list[dict[str, Any]]:
        return [e for e in self.entries() if e.get("kind") == "blocker.resolved"]


# ---------------------------------------------------------------- procedures


def check_attempt_allowed(ledger: Ledger, gate: str, name: str, version: str) -> None:
    """The seed's blocker rule: two failures, then no third attempt before a remediation record."""
    failed = ledger.failures_since_resolution(gate, name, version)
    if len(failed) >= 2:
        runs = ", ".join(a.run_id for a in failed[-2:])
        raise GateBlocked(
            f"gate {gate} is blocked: it failed {len(failed)} times for {name} {version} "
            f"(runs {runs}); find the root cause, then record it with `toolkit blocker "
            f'resolve --gate {gate} --root-cause FILE --fix "..."` before a new attempt'
        )


def resolve_blocker(
    ledger: Ledger, gate: str, contract: dict[str, Any], root_cause: Path, fix: str
) -> dict[str, Any]:
    from toolkit.core.files import read_regular_text

    try:
        text = read_regular_text(root_cause)
    except (OSError, UnicodeDecodeError) as exc:
        raise ToolkitError(f"{root_cause}: cannot read the root-cause file ({exc})") from None
    if not text.strip() or not fix.strip():
        raise ToolkitError("a remediation needs a non-empty root-cause file and a non-empty --fix")
    if not ledger.failures_since_resolution(gate, contract["name"], contract["version"]):
        raise ToolkitError(
            f"gate {gate} has no unresolved failure for {contract['name']} "
            f"{contract['version']}: nothing to resolve"
        )
    return ledger.append(
        "blocker.resolved",
        gate=gate,
        contract_name=contract["name"],
        contract_version=contract["version"],
        contract_sha256=contract["sha256"],
        root_cause_file=root_cause.name,
        root_cause_sha256=sha256_file(root_cause),
        root_cause=text[:65536],
        fix=fix,
        by=_user(),
    )


def quarantine(ledger: Ledger, run: Path, why: str) -> Path:
    """Move a run folder to ``invalidated/<gate>/<run>`` with its reason in the ledger."""
    if not why.strip():
        raise ToolkitError('quarantine needs a reason: --why "..."')
    run = run.absolute()
    if not run.is_dir():
        raise ToolkitError(f"{run}: no such run folder")
    root = ledger.root.absolute()
    if root not in run.parents or INVALIDATED in run.relative_to(root).parts:
        raise ToolkitError(
            f"{run}: not a run of the evidence folder {root} (or already quarantined)"
        )
    if run.parent.parent != root or not any((run / n).is_file() for n in (JOURNAL, MANIFEST)):
        raise ToolkitError(  # a gate folder here moved every run of the gate, as one "run"
            f"{run}: not a run folder (expected <evidence>/<gate>/<run id> holding "
            f"{JOURNAL} or {MANIFEST}); quarantine one run at a time"
        )
    target = root / INVALIDATED / run.parent.name / run.name
    target.parent.mkdir(parents=True, exist_ok=True)
    digest = sha256_file(run / SIGNATURE) if (run / SIGNATURE).is_file() else None
    os.replace(run, target)
    ledger.append(
        "quarantine",
        run_id=run.name,
        gate=run.parent.name,
        why=why,
        digest=digest,
        moved_to=str(target.relative_to(root)),
        by=_user(),
    )
    return target


def check_runs(ledger: Ledger, keys: list[Any], deep: bool = True) -> list[str]:
    """Ledger integrity, plus every sealed run it knows still present and unchanged.

    ``deep=False`` compares only the envelope's digest (for callers that verify each run).
    """
    problems = ledger.verify(keys)
    for a in ledger.attempts():
        if not a.sealed or a.quarantined is not None:
            continue
        folder = ledger.root / a.gate / a.run_id
        if not (folder / SIGNATURE).is_file():
            problems.append(
                f"gone: {a.gate} run {a.run_id} ({a.verdict.value}) is in the ledger but its "
                f"folder {folder} is missing or unsigned"
            )
        elif sha256_file(folder / SIGNATURE) != a.digest:
            problems.append(
                f"replaced: {a.gate} run {a.run_id} was re-signed or swapped after the ledger "
                "recorded it"
            )
        elif deep:
            problems += [
                f"changed: {a.gate} run {a.run_id}: {p}" for p in verify_signature(folder, keys)
            ]
    return problems


def unknown_runs(ledger: Ledger, runs: list[Path]) -> list[Path]:
    known = {(a.gate, a.run_id) for a in ledger.attempts()}
    return [r for r in runs if (r.parent.name, r.name) not in known]


def _user() -> str:
    try:
        return getpass.getuser()
    except (OSError, KeyError):
        return f"uid {os.getuid()}" if hasattr(os, "getuid") else "unknown"


class _FileLock:
    """Cross-process exclusive lock by O_EXCL lock file; a lock left by a dead process is broken."""

    def __init__(self, path: Path):
        self.path = path

    def __enter__(self) -> Self:
        deadline = time.monotonic() + LOCK_WAIT_S
        while True:
            try:
                fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                os.write(fd, str(os.getpid()).encode())
                os.close(fd)
                return self
            except FileExistsError:
                self._break_if_stale()
            if time.monotonic() > deadline:
                raise EvidenceError(
                    f"{self.path}: the ledger is locked by another toolkit for "
                    f"{LOCK_WAIT_S:g} s; remove the file if no toolkit is running"
                )
            time.sleep(0.01)

    def _break_if_stale(self) -> None:
        try:
            pid = int(self.path.read_text() or "0")
        except (OSError, ValueError):
            return
        if pid and not psutil.pid_exists(pid):
            try:
                os.unlink(self.path)
            except FileNotFoundError:
                pass

    def __exit__(self, *exc: object) -> None:
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass
