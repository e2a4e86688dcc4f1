"""Gate 3d: hard-coded secrets (detect-secrets, baseline-aware) and static analysis (bandit).

detect-secrets runs as a library with all its default plugins and filters, and its
baseline format is read and written unchanged, so existing baselines and
``detect-secrets audit`` keep working. Every run plants canary secrets that must be
found; a scan that misses one fails ("scanner saw nothing: check paths").
"""

from __future__ import annotations

import json
import os
import secrets as pysecrets
import string
import subprocess  # nosec B404 - git and bandit are run as argv lists
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from toolkit.errors import ToolkitError, UsageError

MAX_BYTES = 4 << 20
SKIP_DIRS = {".git", ".hg", ".svn", "__pycache__", ".venv", "venv", "node_modules", ".mypy_cache",
             ".pytest_cache", ".ruff_cache", ".hypothesis", ".tox"}
CANARY_PREFIX = ".toolkit-canary-"


@dataclass
class ScanConfig:
    paths: list[Path] = field(default_factory=list)
    baseline: Path | None = None
    update_baseline: bool = False
    staged: bool = False
    changed_since: str | None = None
    code: list[Path] = field(default_factory=list)
    bandit_severity: str = "high"
    bandit_confidence: str = "medium"
    bandit: bool = True
    databases: list[Path] = field(default_factory=list)


@dataclass
class ScanResult:
    files_scanned: int = 0
    bytes_scanned: int = 0
    skipped: dict[str, list[str]] = field(default_factory=dict)
    new: list[dict[str, Any]] = field(default_factory=list)
    known: int = 0
    canaries_planted: int = 0
    canaries_found: int = 0
    bandit: list[dict[str, Any]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)  # messages for the user; the verdict is in the counts

    @property
    def blind(self) -> bool:
        """A planted canary was missed: the scan proves nothing, so the gate fails."""
        return self.canaries_found < self.canaries_planted

    @property
    def verdict(self) -> str:
        return "fail" if self.new or self.bandit or self.blind else "pass"

    def to_dict(self) -> dict[str, Any]:
        return {"files_scanned": self.files_scanned, "bytes_scanned": self.bytes_scanned,
                "skipped": {k: len(v) for k, v in self.skipped.items()},
                "skipped_files": self.skipped, "new_secrets": self.new, "baseline_secrets": self.known,
                "canaries_planted": self.canaries_planted, "canaries_found": self.canaries_found,
                "bandit_issues": self.bandit, "errors": self.errors}


# ------------------------------------------------------------------ files

def git_files(staged: bool, since: str | None, cwd: Path) -> list[Path]:
    args = ["git", "diff", "--name-only", "--diff-filter=ACMR"]
    args += ["--cached"] if staged else [f"{since}...HEAD"] if since else []
    try:
        out = subprocess.run(args, cwd=cwd, capture_output=True, text=True, check=False)  # nosec B603 B607
    except FileNotFoundError:
        raise ToolkitError("git is not installed; --staged and --changed-since need it") from None
    if out.returncode != 0:
        raise UsageError(f"git could not list files ({' '.join(args[1:])}): {out.stderr.strip()[:200]}")
    return [cwd / line for line in out.stdout.splitlines() if line.strip()]


def walk(paths: list[Path]) -> Iterator[Path]:
    for root in paths:
        if not root.exists() and not root.is_symlink():
            raise UsageError(f"{root}: no such file or folder; fix the path or the contract's [secrets].scan")
        if root.is_file():
            yield root
            continue
        for folder, dirs, files in os.walk(root):
            dirs[:] = sorted(d for d in dirs if d not in SKIP_DIRS)
            for name in sorted(files):
                yield Path(folder) / name


def classify(path: Path) -> str | None:
    """Why a file is skipped, or None to scan it. Skipped files are counted, never fatal."""
    try:
        if path.is_symlink() or not path.is_file():
            return "not-a-regular-file"
        size = path.stat().st_size
        if size > MAX_BYTES:
            return "huge"
        with open(path, "rb") as fh:
            data = fh.read()
    except OSError:
        return "unreadable"
    if b"\x00" in data[:8192]:
        return "binary"
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return "invalid-utf8"
    return None


# ------------------------------------------------------------------ canaries

def canary_text() -> str:
    """A fresh fake AWS key pair: detect-secrets' AWSKeyDetector must report it."""
    key_id = "AKIA" + "".join(pysecrets.choice(string.ascii_uppercase + "234567") for _ in range(16))
    secret = pysecrets.token_urlsafe(30)[:40]
    return f"aws_access_key_id = {key_id}\naws_secret_access_key = {secret}\n"


@contextmanager
def planted(roots: list[Path], fallback: Path) -> Iterator[list[Path]]:
    """One canary file in each scanned folder (or the fallback), created O_EXCL and removed after."""
    made: list[Path] = []
    folders = [r for r in roots if r.is_dir()] or [fallback]
    fallback.mkdir(parents=True, exist_ok=True)
    try:
        for folder in folders:
            path = folder / f"{CANARY_PREFIX}{pysecrets.token_hex(6)}.env"
            try:
                with open(path, "x", encoding="utf-8") as fh:
                    fh.write(canary_text())
            except OSError as exc:
                raise ToolkitError(f"{folder}: cannot plant the scanner's canary file: {exc.strerror}") from None
            made.append(path)
        yield made
    finally:
        for path in made:
            path.unlink(missing_ok=True)


# ------------------------------------------------------------------ scanning

def rel(path: Path) -> str:
    try:
        return os.path.relpath(path)
    except ValueError:
        return str(path)


def detect(files: list[str]) -> Any:
    """detect-secrets' findings for ``files``, through the prefiltering front end."""
    from toolkit.fastscan import scan_files

    return scan_files(files)


def detect_plain(files: list[str]) -> Any:
    """detect-secrets alone (its own multiprocessing scan), the reference for ``detect``."""
    from detect_secrets.core.secrets_collection import SecretsCollection
    from detect_secrets.settings import default_settings

    with default_settings(), default_sigterm():
        found = SecretsCollection()
        found.scan_files(*files)
    return found


@contextmanager
def default_sigterm() -> Iterator[None]:
    """Pool workers must not inherit the gate's SIGTERM-as-Ctrl-C handler.

    A worker that runs a Python handler when the pool terminates it can die holding the
    task queue's lock, and its siblings then wait on that lock for ever.
    """
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread() or sys.platform.startswith("win"):
        yield
        return
    previous = signal.signal(signal.SIGTERM, signal.SIG_DFL)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def load_baseline(path: Path | None) -> tuple[Any, dict[str, Any] | None]:
    from detect_secrets.core import baseline as ds_baseline
    from detect_secrets.core.secrets_collection import SecretsCollection

    if path is None or not path.exists():
        return SecretsCollection(), None
    try:
        raw = ds_baseline.load_from_file(str(path))
        return SecretsCollection.load_from_baseline(ds_baseline.upgrade(raw)), raw
    except Exception as exc:  # noqa: BLE001 - any malformed baseline is one clear error
        raise ToolkitError(f"{path}: not a readable detect-secrets baseline ({type(exc).__name__}); "
                           f"fix it or regenerate it with --update-baseline") from None


def save_baseline(path: Path, found: Any, old: Any) -> None:
    from detect_secrets.core import baseline as ds_baseline
    from detect_secrets.settings import default_settings

    found.merge(old)  # keeps audit labels (is_secret) of secrets still present
    with default_settings():
        doc = ds_baseline.format_for_output(found)
    from toolkit.evidence import atomic_write

    atomic_write(path, (json.dumps(doc, indent=2) + "\n").encode())


def secret_dict(filename: str, s: Any) -> dict[str, Any]:
    return {"type": s.type, "filename": filename, "line_number": s.line_number,
            "hashed_secret": s.secret_hash, "is_verified": s.is_verified}


def run_scan(cfg: ScanConfig, work: Path) -> ScanResult:
    res = ScanResult()
    if cfg.staged or cfg.changed_since:
        roots = git_files(cfg.staged, cfg.changed_since, Path.cwd())
    else:
        roots = cfg.paths
    if not roots and not (cfg.staged or cfg.changed_since):
        raise UsageError("nothing to scan: give PATHS or set [secrets].scan in the contract")
    with planted([r for r in roots if not (cfg.staged or cfg.changed_since)], work) as canaries:
        res.canaries_planted = len(canaries)
        files = _select(list(walk(roots)) + [c for c in canaries if c.parent == work], res)
        found = detect([rel(f) for f in files]) if files else detect([])
        canary_names = {rel(c) for c in canaries}
        res.canaries_found = sum(1 for name in canary_names if any(True for _ in found[name]))
        for name in canary_names:
            found.data.pop(name, None)
    for db in cfg.databases:
        _scan_database(db, work, found, res)
    old, _ = load_baseline(cfg.baseline)
    new = found - old
    res.new = [secret_dict(name, s) for name, s in new]
    res.known = sum(1 for _ in found) - len(res.new)
    if cfg.update_baseline and cfg.baseline is not None:
        save_baseline(cfg.baseline, found, old)
        res.new = []
    if cfg.bandit and cfg.code:
        res.bandit = run_bandit(cfg.code, cfg.bandit_severity, cfg.bandit_confidence)
    if res.canaries_found < res.canaries_planted:
        res.errors.append(f"scanner saw nothing: {res.canaries_planted - res.canaries_found} of "
                          f"{res.canaries_planted} planted canary secret(s) were not found; check paths")
    return res


def _scan_database(db: Path, work: Path, found: Any, res: ScanResult) -> None:
    """Credentials at rest in SQLite: every text cell, one per line, through the same plugins."""
    import sqlite3

    from recovery.sqlite import connect_ro, text_cells

    if not db.is_file():
        res.skipped.setdefault("database-missing", []).append(rel(db))
        return
    try:
        conn = connect_ro(db)
        try:
            cells = text_cells(conn)
        finally:
            conn.close()
    except sqlite3.Error:
        res.skipped.setdefault("database-unreadable", []).append(rel(db))
        return
    dump = work / f"{db.name}.cells.txt"
    dump.write_text("\n".join(c.replace("\n", " ") for c in cells) + "\n", encoding="utf-8", errors="replace")
    res.files_scanned += 1
    res.bytes_scanned += dump.stat().st_size
    for _, secret in detect([str(dump)]):
        secret.filename = f"{rel(db)}#cells"
        found[secret.filename].add(secret)


def _select(candidates: list[Path], res: ScanResult) -> list[Path]:
    files = []
    for path in candidates:
        why = classify(path)
        if why:
            res.skipped.setdefault(why, []).append(rel(path))
            continue
        files.append(path)
        res.files_scanned += 1
        res.bytes_scanned += path.stat().st_size
    return files


def run_bandit(code: list[Path], severity: str, confidence: str) -> list[dict[str, Any]]:
    for p in code:
        if not p.exists():
            raise UsageError(f"{p}: code folder for bandit does not exist")
    args = [sys.executable, "-m", "bandit", "-r", *map(str, code), "-f", "json", "-q",
            f"--severity-level={severity}", f"--confidence-level={confidence}"]
    out = subprocess.run(args, capture_output=True, text=True, check=False)  # nosec B603
    try:
        doc = json.loads(out.stdout)
    except ValueError:
        raise ToolkitError(f"bandit failed (exit {out.returncode}): {out.stderr.strip()[:300]}") from None
    return [{"test_id": r["test_id"], "test_name": r["test_name"], "severity": r["issue_severity"].lower(),
             "confidence": r["issue_confidence"].lower(), "filename": rel(Path(r["filename"])),
             "line_number": r["line_number"], "text": r["issue_text"], "cwe": (r.get("issue_cwe") or {}).get("id")}
            for r in doc.get("results", [])]
