"""The attack extension point: a spec, a registry, the context an attack runs in.

Third parties register attacks through the ``release_gate_toolkit.attacks`` entry-point
group: the entry point names a module (or a callable) whose import registers attacks
with :func:`register`. A missing or duplicate id is a load error, not a warning.
"""

from __future__ import annotations

import base64
import binascii
import importlib
import importlib.metadata
import os
import re
import secrets
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Protocol
from urllib.parse import quote

from toolkit.core.contract import Contract, Surface
from toolkit.core.errors import TargetError, ToolkitError
from toolkit.core.model import Finding, Severity
from toolkit.core.transport import Deliverer, Prepared, Reply, plain_forms

ID_RE = re.compile(r"^T-[A-Z]{2,8}-\d{3}$")
ENTRY_POINT_GROUP = "release_gate_toolkit.attacks"
BUDGETS = {"quick": 8, "standard": 40, "deep": 400}
MAX_SILENT = 3  # consecutive requests without any reply before a surface is declared gone
RETRY_S = 5.0  # the fresh-connection retry of a payload that got no reply waits at most this


@dataclass(frozen=True)
class AttackSpec:
    id: str
    family: str
    title: str
    cwe: int
    severity: Severity
    classes: tuple[str, ...]
    scope: str = "surface"  # "surface": once per matching surface; "endpoint": once per endpoint
    doc: str = ""


CRASH_SPEC = AttackSpec(
    "T-DOS-001",
    "robustness",
    "Target crashed or wedged on a payload",
    248,
    Severity.MEDIUM,
    ("path", "argv", "command", "option", "env", "tool"),
)


class Attack(Protocol):
    spec: ClassVar[AttackSpec]

    def run(self, ctx: AttackContext, target: Target) -> Iterable[Finding]: ...


AttackClass = type[Attack]
REGISTRY: dict[str, AttackClass] = {}


def register(cls: type[Any]) -> AttackClass:
    """Class decorator: add an attack to the registry (its docstring becomes its documentation).

    An id registered by another class is a load error naming both, even when the two classes
    share a name: a plugin never silently replaces a built-in.
    """
    spec = getattr(cls, "spec", None)
    if not isinstance(spec, AttackSpec):
        raise ToolkitError(f"attack {cls.__name__}: missing `spec = AttackSpec(...)`")
    if not ID_RE.match(spec.id):
        raise ToolkitError(f"attack {cls.__name__}: id {spec.id!r} must look like T-TRAV-001")
    existing = REGISTRY.get(spec.id)
    if existing is not None and existing is not cls:
        raise ToolkitError(
            f"attack id {spec.id!r} registered twice ({existing.__module__}."
            f"{existing.__qualname__} and {cls.__module__}.{cls.__qualname__}); ids must be unique"
        )
    if not (cls.__doc__ or "").strip():
        raise ToolkitError(
            f"attack {spec.id}: needs a docstring (it is the attack's documentation)"
        )
    REGISTRY[spec.id] = cls
    return cls


def load_attacks() -> dict[str, AttackClass]:
    """Every attack registered under the entry-point group, the built-ins included."""
    points = importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)
    for ep in points:
        try:
            obj = ep.load()
        except ToolkitError as exc:  # a duplicate or bad id: already one clear message
            raise ToolkitError(f"attack plugin {ep.name!r} ({ep.value}): {exc}") from None
        except Exception as exc:  # noqa: BLE001 - any plugin failure becomes one clear error
            raise ToolkitError(
                f"attack plugin {ep.name!r} ({ep.value}) failed to load: {exc}"
            ) from None
        if callable(obj) and not isinstance(obj, type):
            obj()
    if not REGISTRY:
        raise ToolkitError(
            f"no attack registered: the entry-point group {ENTRY_POINT_GROUP!r} is empty; "
            "install the toolkit (pip install -e .) so its built-in attacks load"
        )
    return dict(sorted(REGISTRY.items()))


# ------------------------------------------------------------------ canaries

class Canaries:
    """Fresh random canaries for one run, planted outside sandboxes and removed afterwards.

    Nothing that existed before is overwritten or deleted: every path is created with
    O_EXCL (or mkdir without exist_ok) and only what this object created is removed.
    Every path is written to a journal *before* it is created, so a run killed half-way
    leaves a list the next run uses to remove exactly those paths (by recorded name only).
    """

    def __init__(self, work: Path, journal: Path | None = None):
        self.work = work  # a private temp folder, outside every sandbox
        self.created: list[Path] = []
        self.trees: list[Path] = []  # folders wholly ours (the work folder, planted repositories)
        self.sandboxes: set[Path] = set()
        self.names: set[str] = (
            set()
        )  # stems of every canary name: a target may echo them into files
        self.journal = journal
        self.secret = "tkc-" + secrets.token_hex(16)  # pragma: allowlist secret
        self._note("tree", work)

    def _note(self, kind: str, path: Path, **extra: Any) -> None:
        if self.journal is None:
            return
        import json

        self.journal.parent.mkdir(parents=True, exist_ok=True)
        with open(self.journal, "a", encoding="utf-8") as fh:
            fh.write(json.dumps({"kind": kind, "path": str(path), **extra}) + "\n")

    def token(self) -> str:
        return "tk" + secrets.token_hex(10)

    def watch(self, sandbox: Path | None) -> None:
        """Remember a sandbox: files a target creates there under a canary's name are removed
        too.
        """
        if sandbox is not None and sandbox not in self.sandboxes:
            self.sandboxes.add(sandbox)
            self._note("sandbox", sandbox)

    def _named(self, path: Path) -> None:
        stem = path.name.split(".")[0]
        if stem.startswith("toolkit-") and stem not in self.names:
            self.names.add(stem)
            self._note("name", path, name=stem)

    def name(self, path: Path) -> None:
        """A canary name a target may write into a file of its own (``..%2f<name>`` in its
        sandbox): journaled before any payload carries it, so a killed run's next run still
        removes such a file by name."""
        self._named(path)

    def file(
        self, folder: Path, name: str | None = None, content: str | None = None
    ) -> tuple[Path, str]:
        """Create a canary file; returns (path, content). Content never equals its name."""
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / (name or f"toolkit-canary-{secrets.token_hex(6)}.txt")
        content = content or f"CANARY-{secrets.token_hex(16)}"
        self._note("file", path)
        self._named(path)
        with open(path, "x", encoding="utf-8") as fh:
            fh.write(content + "\n")
        self.created.append(path)
        return path, content

    def folder(self, path: Path) -> Path | None:
        """Create a folder only if it does not exist; None when it already did."""
        self._note("dir", path)
        try:
            path.mkdir()
        except FileExistsError:
            return None
        self.created.append(path)
        return path

    def tree(self, path: Path) -> Path | None:
        """Create a folder that is wholly ours (removed with everything in it); None if it
        existed.
        """
        self._note("tree", path)
        try:
            path.mkdir(parents=False)
        except FileExistsError:
            return None
        self.trees.append(path)
        return path

    def link(self, path: Path, target: str | Path) -> Path:
        self._note("file", path)
        path.symlink_to(target)
        self.created.append(path)
        return path

    def claim(self, path: Path) -> None:
        """Record a path some target created on our behalf, so cleanup removes it."""
        self._note("file", path)
        self._named(path)
        self.created.append(path)

    def cleanup(self) -> list[str]:
        problems = []
        for path in reversed(self.created):
            problems += _remove(path)
        for tree in reversed(self.trees):
            _rmtree(tree)
        problems += self.sweep()
        _rmtree(self.work)
        self.created.clear()
        if self.journal is not None and not problems:
            self.journal.unlink(missing_ok=True)
        return problems

    def sweep(self) -> list[str]:
        """Remove entries a target created in a sandbox under one of our canary names."""
        return sweep(self.sandboxes, self.names)

    @classmethod
    def recover(cls, journal: Path) -> list[str]:
        """Remove what a killed earlier run recorded in its journal, by recorded name only."""
        import json

        try:
            lines = journal.read_text(encoding="utf-8").splitlines()
        except OSError:
            return []
        rows = []
        for line in lines:
            try:
                row = json.loads(line)
            except ValueError:
                continue
            if isinstance(row, dict) and isinstance(row.get("path"), str):
                rows.append(row)
        removed: list[str] = []
        for row in reversed(rows):
            path = Path(row["path"])
            if row["kind"] in ("file", "dir") and os.path.lexists(path):
                if not _remove(path):
                    removed.append(str(path))
            elif row["kind"] == "tree" and path.name.startswith("toolkit-") and path.is_dir():
                _rmtree(path)
                removed.append(str(path))
        boxes = {Path(r["path"]) for r in rows if r["kind"] == "sandbox"}
        names = {str(r.get("name")) for r in rows if r["kind"] == "name"}
        sweep(boxes, names, removed)
        journal.unlink(missing_ok=True)
        return removed


def sweep(
    sandboxes: Iterable[Path], names: set[str], removed: list[str] | None = None
) -> list[str]:
    problems: list[str] = []
    if not names:
        return problems
    for box in sandboxes:
        for path in _walk(box, 5000):
            if any(n in path.name for n in names):
                problems += _remove(path, deep=True)
                if removed is not None:
                    removed.append(str(path))
    return problems


def _walk(box: Path, limit: int) -> list[Path]:
    out: list[Path] = []
    try:
        for root, dirs, files in os.walk(box):
            for n in dirs + files:
                out.append(Path(root) / n)
            if len(out) > limit:
                break
    except OSError:
        pass
    return sorted(out, key=lambda p: len(p.parts), reverse=True)


def _remove(path: Path, deep: bool = False) -> list[str]:
    try:
        if path.is_symlink() or path.is_file():
            path.unlink()
        elif path.is_dir():
            if deep:
                _rmtree(path)
                return []
            for child in path.iterdir():  # only our own files live in our folders
                if child.is_symlink() or child.is_file():
                    child.unlink()
            path.rmdir()
    except FileNotFoundError:
        pass
    except OSError as exc:
        return [f"{path}: {exc.strerror}"]
    return []


def _rmtree(path: Path) -> None:
    import shutil

    if path.is_symlink():
        path.unlink(missing_ok=True)
    else:
        shutil.rmtree(path, ignore_errors=True)


# ------------------------------------------------------------------ context and target

@dataclass
class Target:
    """One surface (or endpoint) under attack, with its baseline reply."""

    surface: Surface
    deliver: Deliverer
    baseline: Reply | None = None
    benign: Any = None
    sent: int = 0
    silent: int = 0
    notes: list[str] = field(default_factory=list)
    form: str = ""  # the baseline form the target accepted ("relative name", "absolute path", ...)
    planted: Any = None  # the benign file and folder planted for the baseline
    revive: Callable[[Target, Any, Reply], bool] | None = None  # restarts a dead target
    crashes: list[Finding] = field(default_factory=list)  # crash findings made while sending
    unanswered: int = 0  # requests that timed out, even when retried on a fresh connection
    dropped: int = 0  # requests the live target hung up on without a reply (retried too)
    retried: int = 0  # requests answered only when retried on a fresh connection

    def send(self, payload: Any, **kw: Any) -> Reply:
        """Deliver one payload; a surface that stops answering ends the case instead of hanging the
        run.

        A target that died (or wedged) on a payload is restarted by ``revive`` and the attack
        goes on; the crash itself becomes a finding kept in ``crashes``. A payload that got no
        reply from a live target is sent once more on a fresh connection; what still gets no
        reply is counted (``unanswered`` when it timed out, ``dropped`` when the target hung
        up), so a case cannot pass on payloads nobody answered.
        """
        self.sent += 1
        capped, own = share_timeout(), getattr(self.deliver, "timeout", None)
        if capped is not None and "timeout" not in kw and own is not None and capped < own:
            kw["timeout"] = capped
        reply: Reply = self.deliver.send(payload, **kw)
        if reply.status is None and self.revive is not None and self.revive(self, payload, reply):
            self.silent = 0
            return reply
        if reply.status is None:
            reply = self._retry(payload, reply, kw)
        self.silent = self.silent + 1 if reply.status is None else 0
        if self.silent >= MAX_SILENT and self._still_answers():
            self.silent = 0
        if self.silent >= MAX_SILENT:
            raise TargetError(
                f"surface {self.name!r} stopped answering: {self.silent} requests in a row got no "
                f"reply (last: {reply.error}); the rest of this attack was not run"
            )
        return reply

    def _retry(self, payload: Any, first: Reply, kw: dict[str, Any]) -> Reply:
        """The payload again on a new connection (HTTP only); counts what stays unanswered."""
        fresh = getattr(self.deliver, "send_fresh", None)
        if fresh is None:
            return first
        timeout = min(RETRY_S, float(kw.pop("timeout", None) or RETRY_S))
        again: Reply = fresh(payload, timeout=timeout, **kw)
        if again.status is not None:
            self.retried += 1
            if self.retried == 1 and hasattr(self.deliver, "no_keepalive"):
                self.deliver.no_keepalive()
                self.notes.append("the target answered on a fresh connection what got no reply "
                                  "on a kept-alive one: from then on, one connection per request")
            again.request += "\n[retried on a fresh connection: the first attempt got " \
                f"no reply ({first.error})]"
            return again
        if hung_up(first) and hung_up(again):
            self.dropped += 1
        else:
            self.unanswered += 1
        return first

    def _still_answers(self) -> bool:
        """A target that hangs up on a run of payloads but answers its benign request is
        refusing by disconnecting, not gone: the attack goes on (and a note says so).
        """
        if self.benign is None or self.baseline is None or self.baseline.status is None:
            return False
        check = self.deliver.send(self.benign)
        if check.status is None:
            return False
        note = (f"the target dropped {MAX_SILENT} requests in a row without a reply but "
                "answers its benign request: taken as refusals")
        if note not in self.notes:
            self.notes.append(note)
        return True

    @property
    def name(self) -> str:
        return self.surface.name


@dataclass
class AttackContext:
    contract: Contract
    seed: int
    budget: str
    canaries: Canaries
    service_pids: Callable[[], dict[str, tuple[int, float]]]
    transcript: Callable[[Finding, str], str]
    replies: list[tuple[str, str, Any, Reply]] = field(default_factory=list)

    @property
    def limit(self) -> int:
        return BUDGETS[self.budget]

    def rng(self, salt: str) -> Any:
        import random

        return random.Random(f"{self.seed}:{salt}")  # nosec B311

    def seen(self, attack_id: str, target: Target, payload: Any, reply: Reply) -> None:
        self.replies.append((attack_id, target.name, payload, reply))

    def finding(self, spec: AttackSpec, target: Target, cls: str, payload: Any, reply: Reply | None,
                evidence: str, oracle: str) -> Finding:
        f = Finding(
            spec.id,
            spec.title,
            target.name,
            cls,
            spec.cwe,
            spec.severity,
            _jsonable(payload),
            self.redact(evidence),
            "",
            oracle,
        )
        path = self.transcript(f, reply.transcript() if reply else evidence)
        return Finding(
            f.attack_id,
            f.title,
            f.surface,
            f.payload_class,
            f.cwe,
            f.severity,
            f.payload,
            f.evidence,
            path,
            f.oracle,
        )

    def probe(self, spec: AttackSpec, target: Target, cls: str, payload: Any, tokens: Iterable[str],
              why: str, oracle: str) -> tuple[Reply, Finding | None]:
        """Send one payload, record the reply, and judge it with the differential token oracle."""
        reply = target.send(payload)
        self.seen(spec.id, target, payload, reply)
        tok = new_evidence(reply, tokens, target.baseline, payload)
        if tok is None or self.published(spec, target, payload, tok, why):
            return reply, None
        return reply, self.finding(
            spec,
            target,
            cls,
            payload,
            reply,
            f"{why}: {excerpt(reply.text, tok)}",
            f"{oracle}:{why}",
        )

    def published(self, spec: AttackSpec, target: Target, payload: Any, tok: str,
                  why: str) -> bool:
        """Control request: does the payload's URL, with its dot segments removed as a
        normalizing server does before routing, serve the same evidence when asked plainly?

        Then the payload reached only what the service already publishes at that URL (a
        router that resolves ``/admin/../x`` to ``/x``): no escape, and a note says so. A
        server that traverses instead answers the plain URL without the evidence.
        """
        prepared = target.deliver.prepare(payload)
        for plain in plain_forms(prepared.target):
            path = plain.decode("latin-1")
            control = Prepared(prepared.method, prepared.url, plain, prepared.headers,
                               prepared.body, path)
            reply = target.send(None, prepared=control)
            self.seen(spec.id, target, path, reply)
            if reply.ok and tok in reply.text:
                target.notes.append(
                    f"not counted ({why}): {prepared.sign_path!r} serves what the plain "
                    f"{path!r} serves (dot segments normalized before routing, nothing "
                    "outside what is published)"
                )
                return True
        return False

    def redact(self, text: str) -> str:
        for form in encodings(self.canaries.secret):
            text = text.replace(form, "[canary-secret]")
        return text


def hung_up(reply: Reply) -> bool:
    """No reply because the target accepted the request and closed the connection (a refusal
    by disconnecting), not because nothing answered in time or nothing was listening.
    """
    error = reply.error or ""
    return any(kind in error for kind in ("RemoteProtocolError", "ReadError", "WriteError"))


def _jsonable(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.decode("latin-1")
    return value


def encodings(secret: str) -> list[str]:
    """A secret as it may leak: raw, base64 (std and url-safe, with or without padding), hex,
    URL.
    """
    raw = secret.encode()
    forms = {secret, base64.b64encode(raw).decode(), base64.urlsafe_b64encode(raw).decode(),
             base64.b64encode(raw).decode().rstrip("="), binascii.hexlify(raw).decode(),
             binascii.hexlify(raw).decode().upper(), quote(secret, safe="")}
    return sorted(forms, key=len, reverse=True)


def excerpt(text: str, needle: str, width: int = 80) -> str:
    i = text.find(needle)
    if i < 0:
        return text[:2 * width]
    return text[max(0, i - width): i + len(needle) + width]


def new_evidence(
    reply: Reply, tokens: Iterable[str], baseline: Reply | None, payload: Any
) -> str | None:
    """Differential, computed oracle: a token in the reply, absent from baseline and payload."""
    text = reply.text
    base = baseline.text if baseline else ""
    sent = repr(payload)
    for tok in tokens:
        if tok and tok in text and tok not in base and tok not in sent:
            return tok
    return None


_SHARE = threading.local()  # this lane's time share for the running case (see time_share)
MIN_PAYLOADS = 3  # a case always sends at least its most telling payloads


def time_share(deadline: float | None) -> None:
    """Give the case about to run on this thread a deadline (None: unlimited); `take` stops
    handing out payloads once it has passed, after the first MIN_PAYLOADS.
    """
    _SHARE.deadline, _SHARE.cut = deadline, 0


def share_timeout() -> float | None:
    """A request's deadline under a time share: what is left of the case's share, at least
    RETRY_S (None without a share); `Target.send` uses it when below the surface's timeout.
    """
    deadline = getattr(_SHARE, "deadline", None)
    if deadline is None:
        return None
    return max(RETRY_S, float(deadline) - time.monotonic())


def share_cut() -> int:
    """How many payload lists `take` cut short on this thread since `time_share`."""
    return int(getattr(_SHARE, "cut", 0))


def take(items: Iterable[Any], limit: int) -> Iterator[Any]:
    """At most ``limit`` items, most telling first; fewer when the case's time share ran out."""
    deadline = getattr(_SHARE, "deadline", None)
    for i, item in enumerate(items):
        if i >= limit:
            return
        if deadline is not None and i >= MIN_PAYLOADS and time.monotonic() > deadline:
            _SHARE.cut = share_cut() + 1
            return
        yield item
