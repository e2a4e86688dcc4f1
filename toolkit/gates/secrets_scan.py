"""Gate 3d: hard-coded secrets (detect-secrets, baseline-aware) and static analysis (bandit).

detect-secrets runs as a library with all its default plugins and filters, and its
baseline format is read and written unchanged, so existing baselines and
``detect-secrets audit`` keep working. Every run plants canary secrets that must be
found; a scan that misses one fails ("scanner saw nothing: check paths").
"""

from __future__ import annotations

import fnmatch
import json
import math
import os
import re
import secrets as pysecrets
import string
import subprocess  # nosec B404 - git and bandit are run as argv lists
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from toolkit.core import litter
from toolkit.core.errors import ToolkitError, UsageError
from toolkit.core.platform import default_sigterm

MAX_BYTES = 4 << 20
SKIP_DIRS = {
    ".git",
    ".hg",
    ".svn",
    "__pycache__",
    ".venv",
    "venv",
    "node_modules",
    ".mypy_cache",
    ".pytest_cache",
    ".ruff_cache",
    ".hypothesis",
    ".tox",
}
CANARY_PREFIX = ".toolkit-canary-"
CANARY_NAME = re.compile(r"^\.toolkit-canary-[0-9a-f]{12}\.env$")
OWN_DIRS = {".toolkit"}  # the toolkit's own state, wherever it is


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
    exclude_files: list[str] = field(default_factory=list)  # regexes on the relative path
    exclude_lines: list[str] = field(default_factory=list)  # regexes on the line text
    own: list[Path] = field(default_factory=list)  # the toolkit's artifacts: never scanned


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
    errors: list[str] = field(
        default_factory=list
    )  # messages for the user; the verdict is in the counts
    notes: list[str] = field(default_factory=list)  # what was done on the user's behalf
    excluded: int = 0  # files left out on purpose: own artifacts, baseline, --exclude-files
    started: str = ""  # UTC, ISO 8601
    duration_s: float = 0.0

    @property
    def blind(self) -> bool:
        """A planted canary was missed: the scan proves nothing, so the gate fails."""
        return self.canaries_found < self.canaries_planted

    @property
    def verdict(self) -> str:
        return "fail" if self.new or self.bandit or self.blind else "pass"

    def to_dict(self) -> dict[str, Any]:
        return {
            "files_scanned": self.files_scanned,
            "bytes_scanned": self.bytes_scanned,
            "skipped": {k: len(v) for k, v in self.skipped.items()},
            "skipped_files": self.skipped,
            "new_secrets": self.new,
            "baseline_secrets": self.known,
            "canaries_planted": self.canaries_planted,
            "canaries_found": self.canaries_found,
            "bandit_issues": self.bandit,
            "errors": self.errors,
            "notes": self.notes,
            "excluded": self.excluded,
            "started": self.started,
            "duration_s": round(self.duration_s, 3),
        }


# ------------------------------------------------------------------ files


def _git(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(
            ["git", *args],
            cwd=cwd,
            capture_output=True,
            text=True,  # nosec B603 B607
            check=False,
        )
    except FileNotFoundError:
        raise ToolkitError("git is not installed; --staged and --changed-since need it") from None


def _git_reason(stderr: str) -> str:
    """git's own reason on one line: its 'fatal:'/'error:' line, not the usage text that
    follows it (outside a repository git printed a page of options into the error)."""
    lines = [ln.strip() for ln in stderr.splitlines() if ln.strip()]
    told = [ln for ln in lines if ln.startswith(("fatal:", "error:"))] or lines[:1]
    reason = " ".join(told)[:200] or "no reason given"
    if "not a git repository" in stderr.lower():
        reason += " (run it inside a git work tree)"
    return reason


def git_files(staged: bool, since: str | None, cwd: Path) -> list[Path]:
    args = ["diff", "--name-only", "--diff-filter=ACMR"]
    args += ["--cached"] if staged else [f"{since}...HEAD"] if since else []
    out = _git(args, cwd)
    if out.returncode != 0:
        raise UsageError(f"git could not list files ({' '.join(args)}): {_git_reason(out.stderr)}")
    top = _git(["rev-parse", "--show-toplevel"], cwd).stdout.strip()
    base = Path(top) if top else cwd
    return [base / line for line in out.stdout.splitlines() if line.strip()]


def git_listed(folder: Path) -> list[Path] | None:
    """Tracked and untracked-but-not-ignored files under ``folder``; None outside a work tree."""
    try:
        out = subprocess.run(
            ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            cwd=folder,
            capture_output=True,
            check=False,
        )  # nosec B603 B607
    except (FileNotFoundError, NotADirectoryError):
        return None
    if out.returncode != 0:
        return None
    names = sorted({n for n in out.stdout.decode("utf-8", "surrogateescape").split("\0") if n})
    return [folder / n for n in names if (folder / n).exists() or (folder / n).is_symlink()]


def git_ignored(folder: Path) -> bool:
    """True when ``folder`` sits in a git work tree that ignores it."""
    real = _real(folder)
    try:
        out = subprocess.run(
            ["git", "check-ignore", "-q", real.name],
            cwd=real.parent,  # nosec B603 B607
            capture_output=True,
            check=False,
        )
    except (FileNotFoundError, NotADirectoryError):
        return False
    return out.returncode == 0


class IgnoreRules:
    """A ``.gitignore`` matcher for trees outside git: globs, ``/``-anchored, ``dir/``, ``!``."""

    def __init__(self, root: Path):
        self.root = root
        self.rules: list[tuple[bool, bool, bool, str]] = []  # negate, dir_only, anchored, glob
        try:
            text = (root / ".gitignore").read_text(encoding="utf-8", errors="replace")
        except OSError:
            return
        for raw in text.splitlines():
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            negate = line.startswith("!")
            line = line[1:] if negate else line
            dir_only = line.endswith("/")
            line = line.rstrip("/")
            anchored = "/" in line
            self.rules.append((negate, dir_only, anchored, line.lstrip("/")))

    def ignored(self, path: Path, is_dir: bool) -> bool:
        rel_path = path.relative_to(self.root).as_posix()
        verdict = False
        for negate, dir_only, anchored, glob in self.rules:
            if dir_only and not is_dir:
                continue
            target = rel_path if anchored else path.name
            if fnmatch.fnmatchcase(target, glob):
                verdict = not negate
        return verdict


def walk(paths: list[Path]) -> Iterator[Path]:
    for root in paths:
        if not root.exists() and not root.is_symlink():
            raise UsageError(
                f"{root}: no such file or folder; fix the path or the contract's [secrets].scan"
            )
        if root.is_file():
            yield root
            continue
        rules = IgnoreRules(root)
        for folder, dirs, files in os.walk(root):
            here = Path(folder)
            dirs[:] = sorted(
                d for d in dirs if d not in SKIP_DIRS and not rules.ignored(here / d, True)
            )
            for name in sorted(files):
                if not rules.ignored(here / name, False):
                    yield here / name


def listing(paths: list[Path]) -> Iterator[Path]:
    """Files under ``paths``: what git would see inside a repository, else a walk.

    A folder git ignores as a whole (a contract's ``state/logs``, say) was named on
    purpose, so it is walked in full rather than silently yielding nothing.
    """
    for root in paths:
        listed = git_listed(root) if root.is_dir() and not git_ignored(root) else None
        if listed is None or (
            not listed and any(root.iterdir())
        ):  # all of it ignored: named on purpose
            yield from walk([root])
            continue
        yield from (p for p in listed if not SKIP_DIRS & set(p.relative_to(root).parts[:-1]))


class Excluder:
    """Files left out on purpose: the toolkit's own artifacts, the baseline, user regexes."""

    def __init__(self, cfg: ScanConfig):
        self.own = [_real(p) for p in cfg.own]
        self.baseline = _real(cfg.baseline) if cfg.baseline is not None else None
        try:
            self.patterns = [re.compile(rx) for rx in cfg.exclude_files]
        except re.error as exc:
            raise UsageError(
                f"--exclude-files {exc.pattern!r}: not a regular expression ({exc})"
            ) from None

    def why(self, path: Path) -> str | None:
        real = _real(path)
        if CANARY_NAME.match(path.name):
            return "canary"
        if real == self.baseline:
            return "baseline"
        if any(real == own or own in real.parents for own in self.own) or OWN_DIRS & set(
            path.parts
        ):
            return "toolkit-artifact"
        name = rel(path)
        if any(rx.search(name) for rx in self.patterns):
            return "exclude-files"
        return None


def _real(path: Path) -> Path:
    try:
        return path.resolve()
    except OSError:
        return path.absolute()


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
    key_id = "AKIA" + "".join(
        pysecrets.choice(string.ascii_uppercase + "234567") for _ in range(16)
    )
    secret = pysecrets.token_urlsafe(30)[:40]
    return f"aws_access_key_id = {key_id}\naws_secret_access_key = {secret}\n"


@contextmanager
def planted(work: Path) -> Iterator[list[Path]]:
    """One canary file in the run's own temporary folder, created O_EXCL and removed after.

    It never goes into a scanned folder, so killing the scan cannot leave a fake key in
    the user's tree. It goes through the same selection and plugins as every other file.
    """
    work.mkdir(parents=True, exist_ok=True)
    path = litter.track(work / f"{CANARY_PREFIX}{pysecrets.token_hex(6)}.env")
    try:
        with open(path, "x", encoding="utf-8") as fh:
            fh.write(canary_text())
    except OSError as exc:
        litter.forget(path)
        raise ToolkitError(
            f"{work}: cannot plant the scanner's canary file: {exc.strerror}"
        ) from None
    try:
        yield [path]
    finally:
        path.unlink(missing_ok=True)
        litter.forget(path)


def remove_stale(roots: list[Path]) -> list[str]:
    """Canaries a killed older scan left in a scanned folder: exact name and content only."""
    removed = []
    for folder in (r for r in roots if r.is_dir()):
        for path in folder.glob(f"{CANARY_PREFIX}*.env"):
            if CANARY_NAME.match(path.name) and _is_canary(path):
                path.unlink(missing_ok=True)
                removed.append(rel(path))
    return removed


def _is_canary(path: Path) -> bool:
    try:
        if path.is_symlink() or path.stat().st_size > 200:
            return False
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        return False
    return (
        len(lines) == 2
        and re.fullmatch(r"aws_access_key_id = AKIA[A-Z2-7]{16}", lines[0]) is not None
        and lines[1].startswith("aws_secret_access_key = ")
    )


# ------------------------------------------------------------------ scanning


def rel(path: Path) -> str:
    try:
        return os.path.relpath(path)
    except ValueError:
        return str(path)


def detect(files: list[str], exclude_lines: list[str] | None = None) -> Any:
    """detect-secrets' findings for ``files``, through the prefiltering front end."""
    from toolkit.gates.fastscan import scan_files

    return scan_files(files, exclude_lines=exclude_lines or [])


def detect_plain(files: list[str]) -> Any:
    """detect-secrets alone (its own multiprocessing scan), the reference for ``detect``."""
    from detect_secrets.core.secrets_collection import SecretsCollection
    from detect_secrets.settings import default_settings

    with default_settings(), default_sigterm():
        found = SecretsCollection()
        found.scan_files(*files)
    return found


def load_baseline(path: Path | None) -> tuple[Any, dict[str, Any] | None]:
    from detect_secrets.core import baseline as ds_baseline
    from detect_secrets.core.secrets_collection import SecretsCollection

    if path is None or not path.exists():
        return SecretsCollection(), None
    from toolkit.core.files import read_regular

    try:
        read_regular(path)  # a FIFO or device is refused, not read for ever
        raw = ds_baseline.load_from_file(str(path))
        return SecretsCollection.load_from_baseline(ds_baseline.upgrade(raw)), raw
    except Exception as exc:  # noqa: BLE001 - any malformed baseline is one clear error
        raise ToolkitError(
            f"{path}: not a readable detect-secrets baseline ({type(exc).__name__}); "
            f"fix it or regenerate it with --update-baseline"
        ) from None


def save_baseline(path: Path, found: Any, old: Any) -> bool:
    """Write the baseline; False (and the file untouched) when nothing but its date would change."""
    from detect_secrets.core import baseline as ds_baseline
    from detect_secrets.settings import default_settings

    from toolkit.core.evidence import atomic_write

    found.merge(old)  # keeps audit labels (is_secret) of secrets still present
    with default_settings():
        doc = ds_baseline.format_for_output(found)
    try:
        before = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        before = None
    if isinstance(before, dict) and _settled(before, doc):
        return False
    atomic_write(path, (json.dumps(doc, indent=2) + "\n").encode())
    return True


def _settled(before: dict[str, Any], after: dict[str, Any]) -> bool:
    drop = ("generated_at",)
    return {k: v for k, v in before.items() if k not in drop} == {
        k: v for k, v in after.items() if k not in drop
    }


def secret_dict(filename: str, s: Any) -> dict[str, Any]:
    return {
        "type": s.type,
        "filename": filename,
        "line_number": s.line_number,
        "hashed_secret": s.secret_hash,
        "is_verified": s.is_verified,
    }


def run_scan(cfg: ScanConfig, work: Path) -> ScanResult:
    import datetime as dt
    import time

    t0 = time.monotonic()
    res = ScanResult(
        started=dt.datetime.now(dt.UTC).replace(microsecond=0, tzinfo=None).isoformat()
    )
    try:
        return _run_scan(cfg, work, res)
    finally:
        res.duration_s = time.monotonic() - t0


def _run_scan(cfg: ScanConfig, work: Path, res: ScanResult) -> ScanResult:
    git_mode = cfg.staged or bool(cfg.changed_since)
    roots = git_files(cfg.staged, cfg.changed_since, Path.cwd()) if git_mode else cfg.paths
    if not roots and not git_mode:
        raise UsageError("nothing to scan: give PATHS or set [secrets].scan in the contract")
    _check_regexes(cfg.exclude_lines, "--exclude-lines")
    if not git_mode:
        res.notes += [
            f"removed a stale canary left by a killed scan: {n}" for n in remove_stale(roots)
        ]
    candidates = _excluded(list(listing(roots)) if not git_mode else roots, Excluder(cfg), res)
    with planted(work) as canaries:
        res.canaries_planted = len(canaries)
        files = _select(candidates + canaries, res)
        found = detect([rel(f) for f in files], cfg.exclude_lines)
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
        changed = save_baseline(cfg.baseline, found, old)
        res.notes.append(
            f"baseline {'updated' if changed else 'already up to date'}: {cfg.baseline}"
        )
        res.new = []
    if cfg.bandit and cfg.code:
        res.bandit = run_bandit(cfg.code, cfg.bandit_severity, cfg.bandit_confidence)
    if res.canaries_found < res.canaries_planted:
        res.errors.append(
            f"scanner saw nothing: {res.canaries_planted - res.canaries_found} of "
            f"{res.canaries_planted} planted canary secret(s) were not found; check paths"
        )
    return res


def _check_regexes(patterns: list[str], option: str) -> None:
    for rx in patterns:
        try:
            re.compile(rx)
        except re.error as exc:
            raise UsageError(f"{option} {rx!r}: not a regular expression ({exc})") from None


def _excluded(paths: list[Path], excluder: Excluder, res: ScanResult) -> list[Path]:
    kept = []
    for path in paths:
        if excluder.why(path) is None:
            kept.append(path)
        else:
            res.excluded += 1
    return kept


def _scan_database(db: Path, work: Path, found: Any, res: ScanResult) -> None:
    """Credentials at rest in SQLite: every text cell through the plugins and the cell rules."""
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
    name = f"{rel(db)}#cells"
    for secret in cell_secrets(cells, work / f"{db.name}.cells.txt", name):
        found[name].add(secret)
    res.files_scanned += 1
    res.bytes_scanned += sum(len(c.encode("utf-8", "replace")) for c in cells)


def cell_secrets(cells: list[str], dump: Path, filename: str) -> list[Any]:
    """Secrets in database cells; ``line_number`` is the cell's position (1-based).

    detect-secrets sees each cell twice, bare and quoted (its entropy plugins only look
    inside quotes); the cell rules add keyword assignments, base64-wrapped credentials
    and bare AWS secret keys, which no plugin reports in a lone value.
    """
    from detect_secrets.core.potential_secret import PotentialSecret

    flat = [c.replace("\r", " ").replace("\n", " ") for c in cells]
    lines = [v for c in flat for v in (c, '"' + c.replace('"', " ") + '"')]
    dump.write_text("\n".join(lines) + "\n", encoding="utf-8", errors="replace")
    hits = sorted((s for _, s in detect([str(dump)])), key=lambda s: s.line_number)
    found = [
        ((s.line_number + 1) // 2, s.type, s.secret_value or "") for s in hits if s.line_number % 2
    ]
    found += [
        (n, kind, value) for n, cell in enumerate(flat, start=1) for kind, value in cell_rules(cell)
    ]
    found += [
        ((s.line_number + 1) // 2, s.type, s.secret_value or "")
        for s in hits
        if not s.line_number % 2
    ]
    out: dict[str, Any] = {}
    seen: dict[
        int, list[str]
    ] = {}  # one report per secret in a cell: bare plugins, cell rules, quoted
    for cell, kind, value in found:
        if any(value in other or other in value for other in seen.get(cell, [])):
            continue
        seen.setdefault(cell, []).append(value)
        item = PotentialSecret(kind, filename, value, cell)
        out.setdefault(item.secret_hash, item)
    return list(out.values())


KEYWORD_VALUE = re.compile(
    r"(?i)(?:^|[^a-z0-9])[a-z0-9_.-]*"
    r"(?:passw(?:or)?d|passwd|pwd|secret|token|api[_-]?key|access[_-]?key"
    r"|credentials?|auth)[a-z0-9_.-]*['\"]?\s*(?:=|:|=>)\s*['\"]?([^\s'\"&;,]{6,})"
)
BASE64_RUN = re.compile(r"(?<![A-Za-z0-9+/=])[A-Za-z0-9+/]{12,}={0,2}(?![A-Za-z0-9+/=])")
AWS_SECRET = re.compile(r"(?<![A-Za-z0-9+/=])[A-Za-z0-9+/]{40}(?![A-Za-z0-9+/=])")


def cell_rules(cell: str) -> list[tuple[str, str]]:
    hits = [
        ("Secret Keyword", m.group(1))
        for m in KEYWORD_VALUE.finditer(cell)
        if not _placeholder(m.group(1))
    ]
    for m in AWS_SECRET.finditer(cell):
        token = m.group(0)
        if (
            _entropy(token) >= 4.0
            and sum(map(str.isdigit, token))
            and re.search("[a-z]", token)
            and re.search("[A-Z]", token)
        ):
            hits.append(("AWS Secret Access Key", token))
    for m in BASE64_RUN.finditer(cell):
        decoded = _b64(m.group(0))
        if decoded and (_user_pass(decoded) or KEYWORD_VALUE.search(decoded)):
            hits.append(("Base64 Encoded Credentials", m.group(0)))
    return hits


def _placeholder(value: str) -> bool:
    low = value.lower()
    return low in {"none", "null", "true", "false", "redacted", "changeme", "example"} or set(
        low
    ) <= {"*", "x"}


def _entropy(text: str) -> float:
    counts = {ch: text.count(ch) for ch in set(text)}
    return -sum(n / len(text) * math.log2(n / len(text)) for n in counts.values())


def _b64(token: str) -> str | None:
    import base64
    import binascii

    try:
        raw = base64.b64decode(token + "=" * (-len(token) % 4), validate=True)
        text = raw.decode("utf-8")
    except (binascii.Error, ValueError):
        return None
    return text if text.isprintable() else None


def _user_pass(text: str) -> bool:
    m = re.fullmatch(r"([\w.@+-]{1,64}):(\S{4,128})", text)
    return m is not None


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
    args = [
        sys.executable,
        "-m",
        "bandit",
        "-r",
        *map(str, code),
        "-f",
        "json",
        "-q",
        f"--severity-level={severity}",
        f"--confidence-level={confidence}",
    ]
    out = subprocess.run(args, capture_output=True, text=True, check=False)  # nosec B603
    try:
        doc = json.loads(out.stdout)
    except ValueError:
        raise ToolkitError(
            f"bandit failed (exit {out.returncode}): {out.stderr.strip()[:300]}"
        ) from None
    return [
        {
            "test_id": r["test_id"],
            "test_name": r["test_name"],
            "severity": r["issue_severity"].lower(),
            "confidence": r["issue_confidence"].lower(),
            "filename": rel(Path(r["filename"])),
            "line_number": r["line_number"],
            "text": r["issue_text"],
            "cwe": (r.get("issue_cwe") or {}).get("id"),
        }
        for r in doc.get("results", [])
    ]
