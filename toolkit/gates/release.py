"""The release ceremony: a signed bundle of exactly what the seed would accept, or nothing.

The acceptance policy is checked before anything is bundled, and every failure is named:

* integrity: the ledger chain and signatures hold, every run it knows is present and
  unchanged, and no run on disk is unknown to it (copied or hand-written);
* per gate, the accepted run is the newest ledger attempt for the locked contract sha; it
  must be sealed (a partial or interrupted run never counts), passed, not quarantined,
  and verify against the trusted runner keys;
* order: each accepted run started after the previous gate's accepted run ended;
* full strength as the contract defines it ([cycle], [soak], [determinism]; attack --all
  at budget standard or deeper over every surface and applicable family) and no weakening
  switch or test-only setting in the recorded environment.

Anything short of that is at best ``release --rehearsal``: a bundle marked
"REHEARSAL - NOT FOR GA" that approves nothing. Candidates are numbered; nothing earlier
is overwritten. The bundle is scanned for secrets and key files before it is signed.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import re
import tarfile
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from toolkit.core import litter, signing
from toolkit.core.contract import Contract
from toolkit.core.errors import ToolkitError, UsageError
from toolkit.core.evidence import (
    SIGNATURE,
    atomic_write,
    find_runs,
    read_statement,
    sha256_file,
    verify_run,
)
from toolkit.core.ledger import INVALIDATED, LEDGER, Attempt, Ledger, check_runs, unknown_runs
from toolkit.core.predicate import Verdict, weakening
from toolkit.core.sections import DeterminismSection, defaults_of
from toolkit.gates import registry

GATES = tuple((g.name, g.title, g.label) for g in registry.GATES)  # the seed's order
TITLES = {g: t for g, t, _ in GATES}
NOT_FOR_GA = "REHEARSAL - NOT FOR GA"


@dataclass
class GateEvidence:
    gate: str
    title: str
    run: Path | None = None
    attempt: Attempt | None = None
    predicate: dict[str, Any] | None = None
    problems: list[str] = field(
        default_factory=list
    )  # no usable run: missing, failed, partial, tampered
    shortfalls: list[str] = field(default_factory=list)  # usable, but not what GA needs

    @property
    def ok(self) -> bool:
        return not self.problems and not self.shortfalls

    @property
    def parameters(self) -> dict[str, Any]:
        return dict((self.predicate or {}).get("parameters") or {})


@dataclass
class Assessment:
    gates: list[GateEvidence]
    integrity: list[str]  # never bundled, not even as a rehearsal

    @property
    def approvable(self) -> bool:
        return not self.integrity and all(g.ok for g in self.gates)

    def reasons(self) -> list[str]:
        named = [f"{g.gate}: {p}" for g in self.gates for p in g.problems + g.shortfalls]
        return self.integrity + named


# ---------------------------------------------------------------- the acceptance policy


def assess(c: Contract, keys: list[Any]) -> Assessment:
    ledger = Ledger(c.evidence_dir)
    integrity = check_runs(ledger, keys) if ledger.path.exists() else []
    on_disk = [
        r
        for r in find_runs(c.evidence_dir)
        if INVALIDATED not in r.relative_to(c.evidence_dir).parts
    ]
    integrity += [
        f"not in the ledger (copied or hand-written): {r.parent.name}/{r.name}"
        for r in unknown_runs(ledger, on_disk)
    ]
    gates = [accepted(c, ledger, keys, gate) for gate, _, _ in GATES]
    _order(gates)
    for g in gates:
        if g.predicate is not None:
            g.shortfalls += strength(c, g)
    return Assessment(gates, integrity)


def accepted(c: Contract, ledger: Ledger, keys: list[Any], gate: str) -> GateEvidence:
    """The newest ledger attempt for the locked contract sha, and what is wrong with it."""
    ev = GateEvidence(gate, TITLES[gate])
    mine = [
        a
        for a in ledger.attempts()
        if a.gate == gate and a.contract.get("sha256") == c.sha256 and not a.ad_hoc
    ]
    if not mine:
        ev.problems.append(
            f"no attempt in the ledger for {c.name} {c.version} (sha256 {c.sha256[:12]}…)"
        )
        return ev
    a = ev.attempt = mine[-1]
    if a.quarantined is not None:
        ev.problems.append(
            f"newest attempt {a.run_id} was quarantined ({a.quarantined}); rerun the gate"
        )
        return ev
    if not a.sealed:
        ev.problems.append(
            f"newest attempt {a.run_id} never finished (interrupted or killed): a partial run "
            "never counts; rerun from gate start"
        )
        return ev
    if a.verdict is not Verdict.PASS:
        ev.problems.append(f"blocker: newest attempt {a.run_id} says {a.verdict.value}, not pass")
    ev.run = ledger.root / gate / a.run_id
    tampered = verify_run(ev.run, keys)
    if tampered:
        ev.problems += [f"run {a.run_id} fails verify: {p}" for p in tampered]
        return ev
    ev.predicate = read_statement(ev.run, keys)["predicate"]
    return ev


def _order(gates: list[GateEvidence]) -> None:
    prev: GateEvidence | None = None
    for g in gates:
        if g.predicate is None:
            continue
        if prev is not None and prev.predicate is not None:
            ended, started = str(prev.predicate.get("end")), str(g.predicate.get("start"))
            if started < ended:
                g.shortfalls.append(
                    f"out of order: run {g.predicate.get('run_id')} started {started}, before "
                    f"the accepted {prev.gate} run ended {ended}"
                )
        prev = g


def strength(c: Contract, g: GateEvidence) -> list[str]:
    """Shortfalls against the contract's full strength, and weakening in the environment."""
    pred = g.predicate or {}
    out = [
        f"recorded environment has a {w}" for w in weakening(dict(pred.get("environment") or {}))
    ]
    check = {
        "cycle": _cycle_strength,
        "soak": _soak_strength,
        "attack": _attack_strength,
        "determinism": _determinism_strength,
        "secrets": _secrets_strength,
    }.get(g.gate)
    return out + (check(c, g.parameters) if check else [])


def _cycle_strength(c: Contract, p: dict[str, Any]) -> list[str]:
    from toolkit.gates.cycle import checks_per_service, strength_of

    full = strength_of(c)
    services = sum(1 for s in c.services if s.health_url)
    expected = (
        checks_per_service(full.health_s / full.count, full.interval_s) * full.count * services
    )
    out = []
    if _num(p.get("cycles_requested")) < full.count:
        out.append(
            f"scaled down: {p.get('cycles_requested')} cycles, "
            f"the contract's [cycle].count is {full.count}"
        )
    if _num(p.get("health_duration_s")) < full.health_s:
        out.append(
            f"scaled down: health probed {p.get('health_duration_s')} s in all, the contract's "
            f"[cycle].health_duration is {full.health_s:g} s"
        )
    if _num(p.get("interval_s"), 1e9) > full.interval_s:
        out.append(
            f"scaled down: probe interval {p.get('interval_s')} s, "
            f"the contract's is {full.interval_s:g} s"
        )
    if _num(p.get("health_checks_passed")) < expected:
        out.append(f"{p.get('health_checks_passed')}/{expected} health checks passed")
    return out


def _soak_strength(c: Contract, p: dict[str, Any]) -> list[str]:
    soak = c.soak
    want = soak.duration if soak is not None and "duration" in soak.given else 0.0
    if not want:
        return ["the contract has no [soak].duration: full strength is undefined"]
    if _num(p.get("duration_s")) < want:
        ran = p.get("duration_s")
        return [f"scaled down: soak ran {ran} s, the contract's [soak].duration is {want:g} s"]
    return []


def _secrets_strength(c: Contract, p: dict[str, Any]) -> list[str]:
    if p.get("scope") != "contract":
        return ["subset: the secrets scan did not cover the contract's [secrets].scan"]
    return []


def _determinism_strength(c: Contract, p: dict[str, Any]) -> list[str]:
    d = c.determinism
    want = d.runs if d is not None else defaults_of(DeterminismSection)["runs"]
    if _num(p.get("runs")) < want:
        return [f"scaled down: {p.get('runs')} runs, the contract's [determinism].runs is {want}"]
    return []


def _attack_strength(c: Contract, p: dict[str, Any]) -> list[str]:
    from toolkit.gates.attack import select

    out = []
    if p.get("budget") not in ("standard", "deep"):
        out.append(f"budget {p.get('budget')!r}: GA needs standard or deep")
    cases = [
        tuple(x) for x in p.get("coverage") or [] if isinstance(x, list | tuple) and len(x) == 3
    ]
    surfaces = {str(s) for _, s, _ in cases}
    missing = [s.name for s in c.surfaces if s.name not in surfaces]
    if missing:
        out.append(f"subset: surfaces never attacked: {', '.join(missing)}")
    classes = {k for s in c.surfaces for k in s.classes}
    for cls in select([]):
        spec = cls.spec
        if not set(spec.classes) & classes:
            continue
        ran = [st for aid, _, st in cases if aid == spec.id]
        if not ran:
            out.append(f"subset: {spec.id} ({spec.family}) did not run")
        elif all(st == "skipped" for st in ran):
            why = (
                " because the contract has no [auth]"
                if spec.family in ("auth", "replay", "rotation") and c.auth is None
                else ""
            )
            out.append(f"finding: {spec.id} ({spec.family}) could not run{why}; that is not a pass")
    return out


def _num(value: Any, default: float = 0.0) -> float:
    return (
        float(value) if isinstance(value, int | float) and not isinstance(value, bool) else default
    )


# ---------------------------------------------------------------- the bundle


def deterministic_tar(files: list[tuple[str, Path]]) -> bytes:
    """Sorted entries, owner 0:0, mode 0644, mtime 0, gzip header without a timestamp."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, path in sorted(files):
            info = tarfile.TarInfo(name)
            info.size = path.stat().st_size
            info.mtime = 0
            info.mode = 0o644
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            with open(path, "rb") as fh:
                tar.addfile(info, fh)
    out = io.BytesIO()
    with gzip.GzipFile(fileobj=out, mode="wb", mtime=0, compresslevel=9) as gz:
        gz.write(raw.getvalue())
    return out.getvalue()


def bundle_files(c: Contract, gates: list[GateEvidence]) -> list[tuple[str, Path]]:
    files = []
    for g in gates:
        if g.run is not None and not g.problems:
            files += [
                (f"{g.gate}/{g.run.name}/{p.relative_to(g.run).as_posix()}", p)
                for p in sorted(g.run.rglob("*"))
                if p.is_file() and not p.is_symlink()
            ]
    ledger = c.evidence_dir / LEDGER
    if ledger.is_file():
        files.append((LEDGER, ledger))
    return files


def key_material(c: Contract, files: list[tuple[str, Path]]) -> list[str]:
    """Key files must never ship: by name, by the [auth] key file's content, or by PEM header."""
    import fnmatch

    auth_key = c.auth.key_file if c.auth is not None else None
    secret = auth_key.read_bytes().strip() if auth_key is not None and auth_key.is_file() else b""
    out = []
    for name, path in files:
        base = name.rsplit("/", 1)[-1]
        data = path.read_bytes()
        if any(fnmatch.fnmatch(base, pat) for pat in signing.KEY_FILE_PATTERNS):
            out.append(f"embedded key: {name} is named like a key file")
        elif b"PRIVATE KEY-----" in data:
            out.append(f"embedded key: {name} holds a PEM private key")
        elif secret and any(line.strip() and line.strip() in data for line in secret.splitlines()):
            out.append(f"embedded key: {name} holds a line of the [auth] key file {auth_key}")
    return out


# Evidence is made of SHA-256 digests, Ed25519 signatures and DSSE payloads by design: the
# generic entropy plugins would flag every one. Credentials are found by detect-secrets'
# pattern and keyword plugins, and known key material by key_material() above.
ENTROPY_PLUGINS = ("Base64HighEntropyString", "HexHighEntropyString")


def scan_bundle(bundle: bytes) -> list[str]:
    """detect-secrets over the unpacked bundle, proven awake by a planted canary."""
    from detect_secrets import SecretsCollection  # type: ignore[attr-defined]
    from detect_secrets.settings import default_settings, get_settings, transient_settings

    from toolkit.gates.secrets_scan import CANARY_PREFIX, canary_text

    with default_settings():
        plugins = [{"name": p} for p in get_settings().plugins if p not in ENTROPY_PLUGINS]
    root = litter.temp_dir("toolkit-bundle-")  # recorded first: a killed run's next removes it
    try:
        with tarfile.open(fileobj=io.BytesIO(bundle), mode="r:gz") as tar:
            tar.extractall(root / "bundle", filter="data")
        canary = root / f"{CANARY_PREFIX}bundle.env"
        canary.write_text(canary_text())
        files = [str(p) for p in sorted(root.rglob("*")) if p.is_file()]
        with transient_settings({"plugins_used": plugins}):
            found = SecretsCollection()
            for f in files:
                found.scan_file(f)
        hits = [(Path(name).relative_to(root).as_posix(), s) for name, s in found]
    finally:
        litter.remove_tree(root)
    if not any(name == canary.name for name, _ in hits):
        return ["bundle secrets scan saw nothing: the planted canary was not found"]
    return [
        f"secret in bundle: {name.removeprefix('bundle/')}:{s.line_number} {s.type}"
        for name, s in hits
        if name != canary.name
    ]


def next_candidate(out: Path, prefix: str) -> tuple[int, Path]:
    """Claim the next number; an earlier candidate is never overwritten."""
    out.mkdir(parents=True, exist_ok=True)
    pattern = re.compile(rf"^{prefix}_(\d+)$")
    n = max((int(m.group(1)) for p in out.iterdir() if (m := pattern.match(p.name))), default=0)
    while True:
        n += 1
        folder = out / f"{prefix}_{n}"
        try:
            folder.mkdir()
            return n, folder
        except FileExistsError:
            continue


def parse_signer(signer: str) -> tuple[str, str]:
    name, sep, role = signer.rpartition(",")
    if not sep or not name.strip() or not role.strip():
        raise UsageError(f'--signer {signer!r}: write it as "Name, role"')
    return name.strip(), role.strip()


def ceremony(
    c: Contract, out: Path, key: Path, signer: str, a: Assessment, rehearsal: bool = False
) -> dict[str, Any]:
    """Write a numbered candidate (or rehearsal) folder; blocked unless the policy allows it."""
    name, role = parse_signer(signer)
    litter.sweep()  # what a killed ceremony (or gate) left in the temp dir, by recorded name
    if a.integrity or (not rehearsal and not a.approvable):
        raise ReleaseBlocked(a.reasons())
    release_key = load_release_key(key)
    files = bundle_files(c, a.gates)
    leaks = key_material(c, files)
    bundle = deterministic_tar(files)
    leaks += scan_bundle(bundle)
    if leaks:
        raise ReleaseBlocked(leaks)
    prefix = "REHEARSAL" if rehearsal else "RELEASE_CANDIDATE"
    n, folder = next_candidate(out, prefix)
    return _write(c, folder, f"{prefix}_{n}", n, bundle, (name, role), release_key, a, rehearsal)


def _write(
    c: Contract,
    folder: Path,
    stem: str,
    n: int,
    bundle: bytes,
    who: tuple[str, str],
    release_key: Any,
    a: Assessment,
    rehearsal: bool,
) -> dict[str, Any]:
    bundle_sha = hashlib.sha256(bundle).hexdigest()
    stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    names = {
        "bundle": f"{stem}_BUNDLE.tar.gz",
        "checklist": "RELEASE_CHECKLIST.md",
        "approval": f"{stem}_NOT_FOR_GA.txt" if rehearsal else f"{stem}_APPROVED.txt",
        "manifest": f"{stem}_MANIFEST.sha256",
        "signature": f"{stem}_SIGNATURE.txt",  # the seed's name; a DSSE envelope (JSON)
    }
    atomic_write(folder / names["bundle"], bundle)
    atomic_write(
        folder / names["checklist"], checklist(c, a, who, bundle_sha, stamp, rehearsal, n).encode()
    )
    atomic_write(
        folder / names["approval"], approval(c, n, who, bundle_sha, stamp, rehearsal).encode()
    )
    digests = {
        names[k]: sha256_file(folder / names[k]) for k in ("bundle", "checklist", "approval")
    }
    manifest = "".join(f"{d}  {f}\n" for f, d in sorted(digests.items())).encode()
    atomic_write(folder / names["manifest"], manifest)
    digests[names["manifest"]] = hashlib.sha256(manifest).hexdigest()
    predicate = {
        "contract": {"name": c.name, "version": c.version, "sha256": c.sha256},
        "candidate": n,
        "rehearsal": rehearsal,
        "signer": who[0],
        "role": who[1],
        "timestamp": stamp,
        "bundle_sha256": bundle_sha,
        "runs": [
            {"gate": g.gate, "run_id": g.run.name, "digest": sha256_file(g.run / SIGNATURE)}
            for g in a.gates
            if g.run is not None and not g.problems
        ],
    }
    stmt = signing.statement(digests, signing.RELEASE_PREDICATE, predicate)
    envelope = signing.sign_statement(stmt, release_key)
    atomic_write(folder / names["signature"], (json.dumps(envelope, indent=2) + "\n").encode())
    return {"bundle_sha256": bundle_sha, "out": str(folder), "candidate": n, "rehearsal": rehearsal}


def approval(
    c: Contract, n: int, who: tuple[str, str], bundle_sha: str, stamp: str, rehearsal: bool
) -> str:
    head = NOT_FOR_GA if rehearsal else f"RELEASE CANDIDATE {n} APPROVED FOR GA"
    return (
        f"{head}\n{c.name} {c.version} (contract sha256 {c.sha256})\ntimestamp {stamp}\n"
        f"bundle sha256 {bundle_sha}\nsigner {who[0]}\nrole {who[1]}\n"
    )


def checklist(
    c: Contract,
    a: Assessment,
    who: tuple[str, str],
    bundle_sha: str,
    stamp: str,
    rehearsal: bool,
    n: int = 0,
) -> str:
    lines = [
        f"# {NOT_FOR_GA}" if rehearsal else f"# Release checklist: {c.name} {c.version}",
        "",
        f"Contract {c.name} {c.version}, sha256 `{c.sha256}`; bundle sha256 `{bundle_sha}`.",
        "",
    ]
    for g in a.gates:
        mark = "x" if g.ok else " "
        state = "PASSED" if g.ok else ("SHORT" if not g.problems else "NOT PASSED")
        run = g.run.name if g.run else "-"
        lines.append(
            f"- [{mark}] {g.title} ({g.gate}): {state}, run `{run}`: "
            f"{headline(g.gate, g.parameters)}"
        )
        lines += [f"    - {p}" for p in g.problems + g.shortfalls]
    lines += remediations(c)
    if rehearsal:
        note = f"{NOT_FOR_GA}: approves nothing. Rehearsed by {who[0]}, {who[1]}, {stamp}"
        lines += ["", note, ""]
    else:
        lines += [
            "",
            f"Release Candidate {n}: APPROVED FOR GA",
            f"Sign-off: {who[0]}/{who[1]} - {stamp}",
            "",
        ]
    return "\n".join(lines)


def remediations(c: Contract) -> list[str]:
    """The blocker records of this contract version (full text ships in the bundled ledger)."""
    mine = (c.name, c.version)
    found = [
        d
        for d in (e["data"] for e in Ledger(c.evidence_dir).resolutions())
        if (d.get("contract_name"), d.get("contract_version")) == mine
    ]
    lines = ["", "Blockers resolved (root cause and fix in ledger.jsonl):"] if found else []
    for d in found:
        sha = str(d.get("root_cause_sha256"))[:12]
        lines.append(
            f"- {d.get('gate')}: {d.get('fix')} (root cause {d.get('root_cause_file')}, "
            f"sha256 {sha}…, by {d.get('by')})"
        )
    return lines


def headline(gate: str, p: dict[str, Any]) -> str:
    """The seed's figures per gate, e.g. "10/10 cycles, 0 zombies, 2160/2160 checks"."""
    if not p:
        return "no signed figures"
    if gate == "cycle":
        return (
            f"{p.get('cycles_completed')}/{p.get('cycles_requested')} cycles, "
            f"{p.get('zombies')} zombies, "
            f"{p.get('health_checks_passed')}/{p.get('checks_expected')} checks"
        )
    if gate == "soak":
        return f"{p.get('duration_s')} s soak, {p.get('requests_planned')} requests planned"
    if gate == "attack":
        attacks = len({x[0] for x in p.get("coverage") or []})
        return (
            f"attack --all at budget {p.get('budget')}: {attacks} attacks, "
            f"{p.get('payloads_sent')} payloads, {p.get('findings')} findings"
        )
    if gate == "secrets":
        return (
            f"{p.get('files_scanned')} files scanned, canaries found "
            f"{p.get('canaries_found')}/{p.get('canaries_planted')}, 0 new secrets"
        )
    if gate == "drill":
        faults = ", ".join(p.get("faults") or [])
        return f"RPO {p.get('rpo_s')} s, RTO {p.get('rto_s')} s, faults {faults}"
    return f"{p.get('runs')} runs of {p.get('tests')} tests, identical outcomes"


# ---------------------------------------------------------------- keys and verification


def keygen(path: Path) -> Path:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from securesystemslib.signer import CryptoSigner  # type: ignore[attr-defined]

    pub = path.with_suffix(path.suffix + ".pub")
    for p in (path, pub):  # lexists: a dangling or looping link is a name in use too
        if os.path.lexists(p):
            raise ToolkitError(f"{p} exists; refusing to overwrite a release key or its .pub")
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    try:
        atomic_write(path, pem)  # a mkstemp file: 0600 from the start
        path.chmod(0o600)
        atomic_write(pub, (signing.key_line(CryptoSigner(key).public_key) + "\n").encode())
    except OSError as exc:
        raise ToolkitError(f"{path}: cannot write the release key ({exc.strerror or exc}); "
                           "pick a writable folder") from None
    return pub


def load_release_key(path: Path) -> Any:
    return signing.load_ed25519_signer(
        path, ToolkitError, f"create one with `toolkit release keygen {path}`")


def release_trust(trust: list[Path]) -> list[Any]:
    """Trusted release keys: required; the key inside a signature is never trusted by itself."""
    import os

    env = os.environ.get("TOOLKIT_RELEASE_TRUST")
    files = trust or ([Path(p) for p in env.split(os.pathsep) if p] if env else [])
    default = signing.config_dir() / "trusted-release-keys"
    if not files and default.is_file():
        files = [default]
    if not files:
        raise ToolkitError(
            "release verify needs a trusted public key: pass --trust KEY.pub (written by "
            "`toolkit release keygen`), set $TOOLKIT_RELEASE_TRUST, or list it in "
            f"{default}; the key inside a signature is never trusted by itself"
        )
    keys = [k for f in files for k in signing.read_trust_file(f)]
    if not keys:
        raise ToolkitError(f"{', '.join(map(str, files))}: no trusted key in the trust file(s)")
    return keys


def verify_release(folder: Path, trust: list[Path]) -> tuple[list[str], dict[str, Any]]:
    """Problems with a candidate folder, and its signed predicate."""
    keys = release_trust(trust)
    if not folder.is_dir():
        raise ToolkitError(f"{folder}: no such release folder")
    sigs = sorted(folder.glob("*_SIGNATURE.txt"))
    if len(sigs) != 1:
        raise ToolkitError(
            f"{folder}: not a release candidate folder (expected one *_SIGNATURE.txt file, "
            f"found {len(sigs)})"
        )
    try:
        doc = json.loads(sigs[0].read_text(encoding="utf-8"))
        stmt = signing.open_envelope(doc, keys, sigs[0].name)
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        return [f"{sigs[0].name}: unreadable or not JSON ({exc})"], {}
    except signing.SignatureError as exc:
        return [str(exc)], {}
    signed = signing.subjects_of(stmt)
    present = sorted(p.name for p in folder.iterdir() if p.is_file() and p != sigs[0])
    problems = [f"added: {n} (not covered by the signature)" for n in present if n not in signed]
    problems += [f"removed: {n}" for n in signed if n not in present]
    problems += [
        f"changed: {n}" for n in present if n in signed and sha256_file(folder / n) != signed[n]
    ]
    return problems, dict(stmt["predicate"])


class ReleaseBlocked(ToolkitError):
    """The policy refused: every reason is named; nothing was written."""

    exit_code = 1

    def __init__(self, blockers: list[str]):
        super().__init__("release blocked: " + "; ".join(blockers))
        self.blockers = blockers
