"""The release ceremony: gather passing, verified gate evidence into a signed, reproducible bundle.

Nothing is bundled on faith. Each gate's newest run for the *locked* contract (same name,
version and SHA-256) must re-verify (manifest and journal chain) and say "pass"; any
gate that is missing, failed or tampered with is a blocker and the ceremony stops. The
bundle is a deterministic tar.gz (sorted entries, fixed owner and mtime), so the same
evidence always gives the same bytes and the same SHA-256. It is signed with Ed25519.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import io
import json
import tarfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from toolkit.contract import Contract
from toolkit.errors import ToolkitError
from toolkit.evidence import atomic_write, find_runs, sha256_file, verify_run

GATES = (("cycle", "Gate 1", "gate1"), ("soak", "Gate 2", "gate2"), ("attack", "Gate 3a-c", "gate3-attack"),
         ("secrets", "Gate 3d", "gate3-secrets-scan"), ("drill", "Gate 4", "gate4"),
         ("determinism", "Gate 5", "gate5"))
BUNDLE = "release-bundle.tar.gz"


@dataclass
class GateEvidence:
    gate: str
    title: str
    run: Path | None
    summary: dict[str, Any] | None
    problems: list[str]

    @property
    def ok(self) -> bool:
        return not self.problems


def latest(c: Contract, gate: str, label: str) -> GateEvidence:
    title = {g: t for g, t, _ in GATES}[gate]
    root = c.evidence_dir / gate
    runs = sorted(find_runs(root), key=lambda p: p.name) if root.is_dir() else []
    mine = []
    for run in runs:
        summary = _summary(run, label)
        if summary and summary.get("contract", {}).get("sha256") == c.sha256:
            mine.append((run, summary))
    if not mine:
        return GateEvidence(gate, title, None, None, [f"no {gate} run for {c.name} {c.version} (sha256 {c.sha256[:12]}…)"])
    run, summary = mine[-1]
    problems = [f"tampered: {p}" for p in verify_run(run)]
    if summary.get("verdict") != "pass":
        problems.append(f"newest run {run.name} says {summary.get('verdict')!r}, not pass")
    return GateEvidence(gate, title, run, summary, problems)


def _summary(run: Path, label: str) -> dict[str, Any] | None:
    for path in run.glob(f"{label}-summary-*.json"):
        try:
            return dict(json.loads(path.read_text()))
        except (OSError, ValueError):
            return None
    return None


def deterministic_tar(folders: list[tuple[str, Path]]) -> bytes:
    """Sorted entries, owner 0:0, mode from the file, mtime 0, gzip header without a timestamp."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for prefix, folder in sorted(folders):
            for path in sorted(p for p in folder.rglob("*") if p.is_file() and not p.is_symlink()):
                info = tarfile.TarInfo(f"{prefix}/{path.relative_to(folder).as_posix()}")
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


def keygen(path: Path) -> Path:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    if path.exists():
        raise ToolkitError(f"{path} exists; refusing to overwrite a release key")
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    atomic_write(path, pem)
    path.chmod(0o600)
    pub = path.with_suffix(path.suffix + ".pub")
    atomic_write(pub, key.public_key().public_bytes(serialization.Encoding.OpenSSH,
                                                    serialization.PublicFormat.OpenSSH) + b"\n")
    return pub


def sign(data: bytes, key_path: Path) -> dict[str, str]:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    try:
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    except (OSError, ValueError) as exc:
        raise ToolkitError(f"{key_path}: not a readable Ed25519 private key ({exc}); create one with "
                           f"`toolkit release keygen {key_path}`") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise ToolkitError(f"{key_path}: not an Ed25519 key")
    pub = key.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    return {"algorithm": "ed25519", "public_key": pub.decode(),
            "signature": base64.b64encode(key.sign(data)).decode()}


def check_signature(data: bytes, sig: dict[str, str], trusted: Path | None) -> str | None:
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    pub_text = trusted.read_text().strip() if trusted else sig["public_key"]
    if trusted and pub_text.split()[:2] != sig["public_key"].split()[:2]:
        return "signed with a different key than the trusted public key"
    pub = serialization.load_ssh_public_key(pub_text.encode())
    if not isinstance(pub, Ed25519PublicKey):
        return "the public key is not an Ed25519 key"
    try:
        pub.verify(base64.b64decode(sig["signature"]), data)
    except InvalidSignature:
        return "signature does not match the manifest"
    return None


def checklist(c: Contract, gates: list[GateEvidence], signer: str, bundle_sha: str) -> str:
    lines = [f"# Release checklist: {c.name} {c.version}", "",
             f"Contract sha256 `{c.sha256}`; bundle sha256 `{bundle_sha}`.", ""]
    for g in gates:
        s = g.summary or {}
        lines.append(f"- [x] {g.title} ({g.gate}): PASSED, run `{g.run.name if g.run else '-'}`: {_headline(g.gate, s)}")
    stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    lines += ["", f"Release candidate approved for GA. Sign-off: {signer}, {stamp}", ""]
    return "\n".join(lines)


def _headline(gate: str, s: dict[str, Any]) -> str:
    if gate == "cycle":
        return (f"{s.get('cycles_completed')}/{s.get('cycles_requested')} cycles, "
                f"{s.get('health_checks_passed')} checks passed, {len(s.get('zombies', []))} zombies")
    if gate == "soak":
        o = s.get("overall", {})
        return f"{s.get('duration_s')} s, error rate {o.get('error_rate')}, p95 {o.get('p95_ms')} ms"
    if gate == "attack":
        return f"{s.get('payloads_sent')} payloads, {len(s.get('findings', []))} findings"
    if gate == "secrets":
        return f"{s.get('files_scanned')} files, {len(s.get('new_secrets', []))} new secrets"
    if gate == "drill":
        return f"RPO {s.get('rpo_s')} s, RTO {s.get('rto_s')} s, faults {', '.join(s.get('faults', []))}"
    return f"{s.get('runs')} runs of {s.get('tests')} tests identical"


def ceremony(c: Contract, out: Path, key: Path, signer: str, gates: list[GateEvidence]) -> dict[str, Any]:
    """Write bundle, manifest, signature and checklist into ``out``; gates must all be ok."""
    blockers = [p for g in gates for p in g.problems]
    if blockers:
        raise ReleaseBlocked(blockers)
    out.mkdir(parents=True, exist_ok=True)
    bundle = deterministic_tar([(g.gate, g.run) for g in gates if g.run is not None])
    atomic_write(out / BUNDLE, bundle)
    bundle_sha = hashlib.sha256(bundle).hexdigest()
    text = checklist(c, gates, signer, bundle_sha)
    atomic_write(out / "RELEASE_CHECKLIST.md", text.encode())
    entries = [(bundle_sha, BUNDLE), (sha256_file(out / "RELEASE_CHECKLIST.md"), "RELEASE_CHECKLIST.md")]
    manifest = "".join(f"{d}  {n}\n" for d, n in entries).encode()
    atomic_write(out / "RELEASE_MANIFEST.sha256", manifest)
    signature = sign(manifest, key)
    atomic_write(out / "RELEASE_SIGNATURE.json", (json.dumps(signature, indent=2) + "\n").encode())
    atomic_write(out / "RELEASE_APPROVED.txt",
                 f"{c.name} {c.version}\nbundle sha256 {bundle_sha}\nsigned by {signer}\n".encode())
    return {"bundle_sha256": bundle_sha, "out": str(out)}


def verify_release(folder: Path, trusted: Path | None) -> list[str]:
    problems = []
    manifest = folder / "RELEASE_MANIFEST.sha256"
    try:
        data = manifest.read_bytes()
        sig = json.loads((folder / "RELEASE_SIGNATURE.json").read_text())
    except (OSError, ValueError) as exc:
        return [f"{folder}: not a release folder ({exc})"]
    for line in data.decode().splitlines():
        digest, _, name = line.partition("  ")
        target = folder / name
        if not target.is_file():
            problems.append(f"removed: {name}")
        elif sha256_file(target) != digest:
            problems.append(f"changed: {name}")
    bad = check_signature(data, sig, trusted)
    if bad:
        problems.append(bad)
    return problems


class ReleaseBlocked(ToolkitError):
    """A gate is missing, failed or tampered with: no release."""

    exit_code = 1

    def __init__(self, blockers: list[str]):
        super().__init__("release blocked: " + "; ".join(blockers))
        self.blockers = blockers
