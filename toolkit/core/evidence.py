"""The evidence store: one folder per gate run, written so it cannot quietly lie.

Layout of ``<evidence.dir>/<gate>/<run-id>/``:

* ``<label>-summary-<run-id>.json`` - written "incomplete" at start; the final summary
  replaces it atomically only after the manifest that covers it is on disk, so a kill -9
  at any moment never leaves a summary that claims a pass.
* ``journal.jsonl`` - append-only; each entry holds the SHA-256 of the previous line.
* ``execution.log`` - human-readable log of the run.
* ``manifest.sha256`` - ``sha256sum -c`` format, covering every other file, dotfiles too.
* ``run.dsse.json`` - a DSSE envelope (Ed25519, the runner key) of an in-toto Statement
  whose subjects are every other file of the folder and whose predicate is the gate,
  run id (bound to the folder's name), contract, parameters, verdict, start, end, host,
  environment and toolkit version. Without the runner key no edit, copy, rename or
  hand-written run verifies.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform as pyplatform
import re
import secrets
import socket
import stat
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from toolkit import __version__
from toolkit.core.errors import EvidenceError

SCHEMA_VERSION = 1
MANIFEST = "manifest.sha256"
JOURNAL = "journal.jsonl"
LOG = "execution.log"
SIGNATURE = "run.dsse.json"
GENESIS = "0" * 64


def atomic_write(path: Path, data: bytes, sync_dir: bool = True) -> None:
    """Temp file in the same folder, fsync, rename, fsync the folder.

    ``sync_dir=False`` leaves the folder's fsync to a later atomic_write in the same folder
    (one folder fsync makes every earlier rename in it durable).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    if sync_dir:
        _fsync_dir(path.parent)


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def utc_now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def to_json(obj: Any) -> bytes:
    return (json.dumps(obj, indent=2, sort_keys=True, default=_default) + "\n").encode()


def _default(obj: Any) -> Any:
    if hasattr(obj, "to_dict"):
        return obj.to_dict()
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, (set, frozenset)):
        return sorted(obj)
    return repr(obj)


class EvidenceRun:
    """One gate run's evidence folder. Use as a context manager; finalize() seals it."""

    def __init__(self, root: Path, gate: str, label: str, contract_info: dict[str, Any],
                 env: dict[str, str] | None = None):
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        self.run_id = f"{stamp}-{secrets.token_hex(3)}"
        self.dir = root / gate / self.run_id
        self.gate = gate
        self.summary_name = f"{label}-summary-{self.run_id}.json"
        self.contract_info = contract_info
        self.env = env
        self.started = utc_now()
        self.ended: str | None = None
        self._lock = threading.Lock()
        self._prev = GENESIS
        self._seq = 0
        self._sealed = False
        self._signer = _runner_signer_outside(root)
        try:
            self.dir.mkdir(parents=True, exist_ok=False)
        except OSError as exc:
            raise EvidenceError(
                f"{self.dir}: cannot create the evidence folder: {exc.strerror}"
            ) from None
        self._journal = open(self.dir / JOURNAL, "ab")  # noqa: SIM115 - open for the whole run
        self._log = open(self.dir / LOG, "a", encoding="utf-8")  # noqa: SIM115 - closed by seal()
        atomic_write(self.dir / self.summary_name, to_json(self._envelope("incomplete", {})))
        self.journal("run.start", gate=gate, run_id=self.run_id)

    def _envelope(self, verdict: str, body: dict[str, Any]) -> dict[str, Any]:
        return {
            "schema_version": SCHEMA_VERSION,
            "toolkit_version": __version__,
            "gate": self.gate,
            "run_id": self.run_id,
            "contract": self.contract_info,
            "host": {"hostname": socket.gethostname(), "platform": pyplatform.platform(),
                     "python": sys.version.split()[0]},
            "start": self.started,
            "end": self.ended if verdict != "incomplete" else None,
            "verdict": verdict,
            **body,
        }

    def journal(self, event: str, **data: Any) -> None:
        """Append one chained entry.

        Each entry is flushed to the kernel at once, which is what survives a kill -9 of
        the toolkit; fsync (which only adds power-loss safety, at milliseconds a call) is
        done when the run is sealed, so journaling stays off the gates' critical path.
        """
        with self._lock:
            entry = {
                "seq": self._seq,
                "ts": utc_now(),
                "event": event,
                "data": data,
                "prev": self._prev,
            }
            line = json.dumps(entry, sort_keys=True, default=_default).encode() + b"\n"
            self._journal.write(line)
            self._journal.flush()
            self._prev = hashlib.sha256(line.rstrip(b"\n")).hexdigest()
            self._seq += 1

    def log(self, message: str) -> None:
        with self._lock:
            if self._log.closed:  # a seal that failed half-way: the error must still surface
                return
            self._log.write(f"{utc_now()} {message}\n")
            self._log.flush()

    def write_json(self, name: str, obj: Any) -> Path:
        target = self.dir / name
        atomic_write(target, to_json(obj))
        return target

    def write_bytes(self, name: str, data: bytes) -> Path:
        target = self.dir / name
        atomic_write(target, data)
        return target

    def finalize(self, verdict: str, body: dict[str, Any]) -> Path:
        """Seal the run: manifest first (covering the final summary), then the summary."""
        if self._sealed:
            raise EvidenceError(f"{self.dir}: run already sealed")
        if not self._journal.closed:  # closed: an earlier seal failed after closing it
            self.journal("run.end", verdict=verdict)
        with self._lock:
            if not self._journal.closed:
                os.fsync(self._journal.fileno())
            self._journal.close()
            self._log.close()
        self.ended = utc_now()
        envelope = self._envelope(verdict, body)
        summary = to_json(envelope)
        files = {rel: sha256_file(self.dir / rel) for rel in run_files(self.dir)
                 if rel not in (MANIFEST, self.summary_name, SIGNATURE)}
        files[self.summary_name] = hashlib.sha256(summary).hexdigest()
        lines = "".join(manifest_line(digest, rel) for rel, digest in sorted(files.items()))
        # a file name that is not UTF-8 (say, copied from a state folder) keeps its raw bytes,
        # which is what sha256sum -c needs to find it
        manifest = lines.encode("utf-8", "surrogateescape")
        files[MANIFEST] = hashlib.sha256(manifest).hexdigest()
        signed = self._sign(files, envelope, body)
        atomic_write(self.dir / MANIFEST, manifest, sync_dir=False)
        atomic_write(self.dir / SIGNATURE, signed, sync_dir=False)
        # last, the commit point; its folder fsync makes all three renames durable
        atomic_write(self.dir / self.summary_name, summary)
        self._sealed = True
        return self.dir / self.summary_name

    def _sign(self, files: dict[str, str], envelope: dict[str, Any], body: dict[str, Any]) -> bytes:
        from toolkit.core import predicate, signing

        keys = ("gate", "run_id", "contract", "host", "start", "end", "verdict", "toolkit_version")
        pred = {k: envelope[k] for k in keys}
        params = predicate.parameters(self.gate, body)
        pred["parameters"] = json.loads(json.dumps(params, default=_default))
        pred["environment"] = predicate.environment(self.env)
        pred["profile"] = predicate.PROFILE.get()
        subjects = {signing.subject_name(rel): digest for rel, digest in files.items()}
        stmt = signing.statement(subjects, signing.RUN_PREDICATE, pred)
        return to_json(signing.sign_statement(stmt, self._signer))

    @property
    def digest(self) -> str:
        """SHA-256 of the signed envelope: what the ledger records for this run."""
        return sha256_file(self.dir / SIGNATURE)

    def abandon(self) -> None:
        """Close files without sealing (the summary stays 'incomplete')."""
        with self._lock:
            for fh in (self._journal, self._log):
                if not fh.closed:
                    fh.close()


def _runner_signer_outside(root: Path) -> Any:
    """The runner key, refused when it sits inside the evidence folder it would vouch for."""
    from toolkit.core import signing

    key = signing.key_path().absolute()
    base = root.absolute()
    if key == base or base in key.parents:
        raise EvidenceError(f"runner key {key} is inside the evidence folder {base}; anyone who "
                            "can write evidence could sign it. Set "
                            f"${signing.KEY_ENV} to a path outside it")
    return signing.runner_signer(key)


# ---------------------------------------------------------------- verification

def manifest_line(digest: str, rel: str) -> str:
    """One ``sha256sum`` line. As GNU sha256sum does, a name holding a backslash, a newline
    or a carriage return gets a leading backslash on its line and those escaped, so ``-c``
    still reads it."""
    if "\\" not in rel and "\n" not in rel and "\r" not in rel:
        return f"{digest}  {rel}\n"
    escaped = rel.replace("\\", "\\\\").replace("\n", "\\n").replace("\r", "\\r")
    return f"\\{digest}  {escaped}\n"


def parse_manifest_line(line: str) -> tuple[str, str] | None:
    """(digest, name) from a line written by manifest_line, or None when it is not one."""
    escaped = line.startswith("\\")
    digest, sep, rel = (line[1:] if escaped else line).partition("  ")
    if not sep or len(digest) != 64:
        return None
    if escaped:
        rel = re.sub(r"\\(.)", lambda m: {"n": "\n", "r": "\r"}.get(m.group(1), m.group(1)), rel)
    return digest, rel


def run_files(folder: Path) -> list[str]:
    """Every regular file below ``folder``, dotfiles included, as POSIX relative paths."""
    out = []
    for base, _dirs, names in os.walk(folder):
        for name in names:
            path = Path(base) / name
            if path.is_file() or path.is_symlink():
                out.append(path.relative_to(folder).as_posix())
    return sorted(out)


def plain_file(path: Path) -> bool:
    """A regular file, not a link to one: verify never follows a link or opens a device,
    FIFO or socket planted in a run (a link to /dev/zero used to hang it)."""
    try:
        return stat.S_ISREG(os.lstat(path).st_mode)
    except OSError:
        return False


def irregular_entries(folder: Path) -> dict[str, str]:
    """Links, FIFOs, devices and sockets below ``folder``: relative path -> what it is."""
    out = {}
    for base, dirs, names in os.walk(folder):
        for name in dirs + names:
            path = Path(base) / name
            mode = os.lstat(path).st_mode
            if stat.S_ISLNK(mode):
                out[path.relative_to(folder).as_posix()] = f"a link to {os.readlink(path)}"
            elif not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
                out[path.relative_to(folder).as_posix()] = "a FIFO, device or socket"
    return out


def _irregular_problems(found: dict[str, str]) -> list[str]:
    return [f"not a plain file: {rel} ({what}; a sealed run holds only plain files, and "
            "verify does not follow or open it)" for rel, what in sorted(found.items())]


def verify_run(folder: Path, keys: list[Any] | None = None) -> list[str]:
    """Problems found in one sealed run folder: its signature, then manifest and journal."""
    problems = verify_signature(folder, keys)
    seen = {p.split(" (")[0] for p in problems}
    return problems + [p for p in verify_manifest(folder) if _as_subject(p) not in seen]


def _as_subject(problem: str) -> str:
    """'changed: <file>' as the signature check names it, to report each file once."""
    from toolkit.core.signing import subject_name

    kind, sep, rel = problem.partition(": ")
    return f"{kind}: {subject_name(rel)}" if sep else problem


def read_statement(folder: Path, keys: list[Any] | None = None) -> dict[str, Any]:
    """The signed Statement of a run (SignatureError when unsigned, forged or untrusted)."""
    from toolkit.core import signing

    path = folder / SIGNATURE
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise signing.SignatureError(f"unsigned: no {SIGNATURE} (hand-written, never sealed, or "
                                     "sealed without a runner key)") from None
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        raise signing.SignatureError(f"{SIGNATURE}: unreadable ({exc})") from None
    trusted = signing.trusted_keys() if keys is None else keys
    return signing.open_envelope(doc, trusted, SIGNATURE)


def verify_signature(folder: Path, keys: list[Any] | None = None) -> list[str]:
    """Every file signed and unchanged, none added, and the run bound to this folder."""
    from toolkit.core import signing

    if not (folder / MANIFEST).is_file() and not (folder / SIGNATURE).is_file():
        why = "never sealed (interrupted or killed) or hand-written"
        return [f"unsigned: {folder} has no {SIGNATURE} and no {MANIFEST}: {why}"]
    irregular = irregular_entries(folder)
    problems = _irregular_problems(irregular)
    if SIGNATURE in irregular:
        return problems
    try:
        stmt = read_statement(folder, keys)
    except signing.SignatureError as exc:
        return [*problems, f"signature: {exc}"]
    signed = signing.subjects_of(stmt)
    on_disk = {signing.subject_name(rel): rel for rel in run_files(folder) if rel != SIGNATURE}
    present = sorted(on_disk)
    for name in present:
        if name not in signed:
            problems.append(f"added: {name} (not in the signed statement)")
        elif on_disk[name] in irregular:
            continue  # named above, never opened
        elif sha256_file(folder / on_disk[name]) != signed[name]:
            problems.append(f"changed: {name} (differs from the signed digest)")
    gone = sorted(set(signed) - set(present))
    problems += [f"removed: {rel} (signed, now missing)" for rel in gone]
    return problems + _binding(folder, stmt["predicate"])


def _binding(folder: Path, pred: dict[str, Any]) -> list[str]:
    problems = []
    if pred.get("run_id") != folder.name:
        problems.append(f"copied or renamed: signed as run {pred.get('run_id')!r}, found in folder "
                        f"{folder.name!r}")
    if pred.get("gate") != folder.parent.name:
        problems.append(f"moved: signed as a {pred.get('gate')!r} run, "
                        f"found under {folder.parent.name!r}")
    summary = read_summary(folder)
    if summary is not None:
        for key in ("run_id", "verdict", "gate", "start", "end"):
            if summary.get(key) != pred.get(key):
                problems.append(f"summary {key} {summary.get(key)!r} differs from the signed "
                                f"{pred.get(key)!r}")
    return problems


def read_summary(folder: Path) -> dict[str, Any] | None:
    for path in sorted(folder.glob("*-summary-*.json")):
        if not plain_file(path):
            return None
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError, UnicodeDecodeError):
            return None
        return data if isinstance(data, dict) else None
    return None


def verify_manifest(folder: Path) -> list[str]:
    """Problems found against manifest.sha256: changed, added or removed files, broken links."""
    problems: list[str] = []
    manifest = folder / MANIFEST
    if not manifest.is_file():
        return [f"{folder}: no {MANIFEST}: the run was never sealed (interrupted or killed)"]
    irregular = irregular_entries(folder)
    if irregular:
        return _irregular_problems(irregular)
    listed: dict[str, str] = {}
    # bytes, not read_text: universal newlines would turn a "\r" in a file name into a line break
    text = manifest.read_bytes().decode("utf-8", "surrogateescape")
    for n, line in enumerate(text.split("\n")[:-1] if text.endswith("\n") else text.split("\n"), 1):
        entry = parse_manifest_line(line)
        if entry is None:
            problems.append(f"{manifest}: line {n} is not 'sha256  path'")
            continue
        listed[entry[1]] = entry[0]
    for rel, digest in sorted(listed.items()):
        target = folder / rel
        if not target.is_file():
            problems.append(f"removed: {rel}")
        elif sha256_file(target) != digest:
            problems.append(f"changed: {rel}")
    for rel in run_files(folder):
        if rel not in (MANIFEST, SIGNATURE) and rel not in listed:
            problems.append(f"added: {rel}")
    problems.extend(verify_journal(folder / JOURNAL))
    return problems


def verify_journal(path: Path) -> list[str]:
    if not path.is_file():
        return [f"removed: {path.name}"]
    if not plain_file(path):
        return _irregular_problems({path.name: "a link"})
    problems = []
    prev = GENESIS
    for n, raw in enumerate(path.read_bytes().splitlines(), 1):
        try:
            entry = json.loads(raw)
        except ValueError:
            problems.append(f"{path.name}: line {n} is not JSON (broken link)")
            prev = hashlib.sha256(raw).hexdigest()
            continue
        if entry.get("prev") != prev:
            problems.append(
                f"{path.name}: broken link at line {n} (seq {entry.get('seq')}): prev hash does "
                f"not match line {n - 1}"
            )
        prev = hashlib.sha256(raw).hexdigest()
    return problems


def find_runs(path: Path) -> list[Path]:
    """A run folder itself, or every run folder below ``path``."""
    if (path / JOURNAL).is_file() or (path / MANIFEST).is_file():
        return [path]
    return sorted(
        {p.parent for p in path.rglob(JOURNAL)} | {p.parent for p in path.rglob(MANIFEST)}
    )


def monotonic_ms() -> float:
    return time.monotonic() * 1000.0
