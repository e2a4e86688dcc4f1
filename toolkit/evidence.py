"""The evidence store: one folder per gate run, written so it cannot quietly lie.

Layout of ``<evidence.dir>/<gate>/<run-id>/``:

* ``<label>-summary-<run-id>.json`` - written "incomplete" at start; the final summary
  replaces it atomically only after the manifest that covers it is on disk, so a kill -9
  at any moment never leaves a summary that claims a pass.
* ``journal.jsonl`` - append-only; each entry holds the SHA-256 of the previous line.
* ``execution.log`` - human-readable log of the run.
* ``manifest.sha256`` - ``sha256sum -c`` format, covering every other file.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform as pyplatform
import secrets
import socket
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from toolkit import __version__
from toolkit.errors import EvidenceError

SCHEMA_VERSION = 1
MANIFEST = "manifest.sha256"
JOURNAL = "journal.jsonl"
LOG = "execution.log"
GENESIS = "0" * 64


def atomic_write(path: Path, data: bytes) -> None:
    """Temp file in the same folder, fsync, rename, fsync the folder."""
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

    def __init__(self, root: Path, gate: str, label: str, contract_info: dict[str, Any]):
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        self.run_id = f"{stamp}-{secrets.token_hex(3)}"
        self.dir = root / gate / self.run_id
        self.gate = gate
        self.summary_name = f"{label}-summary-{self.run_id}.json"
        self.contract_info = contract_info
        self.started = utc_now()
        self._lock = threading.Lock()
        self._prev = GENESIS
        self._seq = 0
        self._sealed = False
        try:
            self.dir.mkdir(parents=True, exist_ok=False)
        except OSError as exc:
            raise EvidenceError(f"{self.dir}: cannot create the evidence folder: {exc.strerror}") from None
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
            "end": utc_now() if verdict != "incomplete" else None,
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
            entry = {"seq": self._seq, "ts": utc_now(), "event": event, "data": data, "prev": self._prev}
            line = json.dumps(entry, sort_keys=True, default=_default).encode() + b"\n"
            self._journal.write(line)
            self._journal.flush()
            self._prev = hashlib.sha256(line.rstrip(b"\n")).hexdigest()
            self._seq += 1

    def log(self, message: str) -> None:
        with self._lock:
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
        self.journal("run.end", verdict=verdict)
        with self._lock:
            os.fsync(self._journal.fileno())
            self._journal.close()
            self._log.close()
        summary = to_json(self._envelope(verdict, body))
        entries = []
        for path in sorted(self.dir.rglob("*")):
            rel = path.relative_to(self.dir).as_posix()
            if path.is_file() and rel not in (MANIFEST, self.summary_name) and not path.name.startswith("."):
                entries.append((sha256_file(path), rel))
        entries.append((hashlib.sha256(summary).hexdigest(), self.summary_name))
        manifest = "".join(f"{digest}  {rel}\n" for digest, rel in sorted(entries, key=lambda e: e[1]))
        atomic_write(self.dir / MANIFEST, manifest.encode())
        atomic_write(self.dir / self.summary_name, summary)
        self._sealed = True
        return self.dir / self.summary_name

    def abandon(self) -> None:
        """Close files without sealing (the summary stays 'incomplete')."""
        with self._lock:
            for fh in (self._journal, self._log):
                if not fh.closed:
                    fh.close()


# ---------------------------------------------------------------- verification

def verify_run(folder: Path) -> list[str]:
    """Problems found in one sealed run folder: changed, added or removed files, broken links."""
    problems: list[str] = []
    manifest = folder / MANIFEST
    if not manifest.is_file():
        return [f"{folder}: no {MANIFEST}: the run was never sealed (interrupted or killed)"]
    listed: dict[str, str] = {}
    for n, line in enumerate(manifest.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
        digest, sep, rel = line.partition("  ")
        if not sep or len(digest) != 64:
            problems.append(f"{manifest}: line {n} is not 'sha256  path'")
            continue
        listed[rel] = digest
    for rel, digest in sorted(listed.items()):
        target = folder / rel
        if not target.is_file():
            problems.append(f"removed: {rel}")
        elif sha256_file(target) != digest:
            problems.append(f"changed: {rel}")
    for path in sorted(folder.rglob("*")):
        rel = path.relative_to(folder).as_posix()
        if path.is_file() and rel != MANIFEST and rel not in listed and not path.name.startswith("."):
            problems.append(f"added: {rel}")
    problems.extend(verify_journal(folder / JOURNAL))
    return problems


def verify_journal(path: Path) -> list[str]:
    if not path.is_file():
        return [f"removed: {path.name}"]
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
            problems.append(f"{path.name}: broken link at line {n} (seq {entry.get('seq')}): prev hash does not match line {n - 1}")
        prev = hashlib.sha256(raw).hexdigest()
    return problems


def find_runs(path: Path) -> list[Path]:
    """A run folder itself, or every run folder below ``path``."""
    if (path / JOURNAL).is_file() or (path / MANIFEST).is_file():
        return [path]
    return sorted({p.parent for p in path.rglob(JOURNAL)} | {p.parent for p in path.rglob(MANIFEST)})


def monotonic_ms() -> float:
    return time.monotonic() * 1000.0
