"""T-LINK-001: symlink escape from a sandbox (CWE-59)."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

from attacks.base import AttackContext, AttackSpec, Target, excerpt, new_evidence, register
from toolkit.core.model import Finding, Severity
from toolkit.core.transport import Reply


def untrusted_links(transport: str, writes: bool, declared: object) -> bool:
    """Whether links inside the sandbox can come from someone the sandbox guards against.

    The contract says so with ``links``; by default yes for MCP tool servers (the agent
    they serve is the party the sandbox confines, and its other tools, archives and clones
    bring links) and for surfaces that write, no for a read-only HTTP surface, where a link
    in the served folder was put there by its owner.
    """
    if isinstance(declared, bool):
        return declared
    return transport == "mcp-stdio" or writes


@register
class SymlinkEscape:
    """Symlink escape (CWE-59).

    Plants links inside the surface's sandbox that point at canaries outside it: a file
    link, a folder link, a two-link chain, a link to the parent folder, and a dangling
    link whose target is created only after the link exists. It then asks the surface
    for each. On a surface that writes (``writes = true``), it also writes through a link
    and runs a swap race that flips a path between a regular file and a link to an
    outside file while writes are in flight; the outside file changing is the evidence.
    Needs a local sandbox folder; links are removed afterwards.
    """

    spec = AttackSpec("T-LINK-001", "symlink", "Symlink escape from the sandbox", 59,
                      Severity.HIGH, ("path",))

    def run(self, ctx: AttackContext, target: Target) -> Iterable[Finding]:
        box = target.surface.sandbox
        if box is None or not box.is_dir():
            target.notes.append("symlink: no local sandbox folder to plant links in")
            return
        writes = bool(target.surface.get("writes", False))
        if not untrusted_links(target.surface.transport, writes, target.surface.get("links")):
            target.notes.append(
                "symlink: skipped: on a read-only HTTP surface only the sandbox's owner can "
                "place links, and serving them is by design; set links = true on the surface "
                "when untrusted parties can create links there (a shell or upload tool, "
                "extracted archives, cloned repositories)")
            return
        for name, tokens, why in self._plant(ctx, box):
            reply = target.send(name)
            ctx.seen(self.spec.id, target, name, reply)
            tok = new_evidence(reply, tokens, target.baseline, name)
            if tok:
                yield ctx.finding(self.spec, target, "path", name, reply,
                                  f"{why}: {excerpt(reply.text, tok)}", f"link:{why}")
        if writes:
            yield from self._write_through(ctx, target, box)

    def _plant(self, ctx: AttackContext, box: Path) -> Iterator[tuple[str, tuple[str, ...], str]]:
        can = ctx.canaries
        outside = ctx.canaries.work / "outside"
        path, content = can.file(outside)
        tag = can.token()
        can.link(box / f"lf-{tag}", path)
        yield f"lf-{tag}", (content,), "file link to an outside canary"
        can.link(box / f"ld-{tag}", outside)
        yield f"ld-{tag}/{path.name}", (content,), "folder link to an outside folder"
        yield f"ld-{tag}", (path.name,), "listing through a folder link"
        can.link(box / f"c2-{tag}", path)
        can.link(box / f"c1-{tag}", box / f"c2-{tag}")
        yield f"c1-{tag}", (content,), "chain of two links"
        near, near_content = can.file(box.parent)
        can.link(box / f"lp-{tag}", "..")
        yield f"lp-{tag}/{near.name}", (near_content,), "link to the parent folder"
        later = outside / f"later-{tag}.txt"
        can.link(box / f"dl-{tag}", later)
        _, later_content = can.file(outside, later.name)
        yield f"dl-{tag}", (later_content,), "dangling link whose target appeared later"

    def _write_through(self, ctx: AttackContext, target: Target, box: Path) -> Iterator[Finding]:
        can = ctx.canaries
        victim, original = can.file(ctx.canaries.work / "victims")
        tag = can.token()
        can.link(box / f"wl-{tag}", victim)
        reply = target.send(f"wl-{tag}")
        ctx.seen(self.spec.id, target, f"wl-{tag}", reply)
        if _changed(victim, original):
            yield ctx.finding(
                self.spec,
                target,
                "path",
                f"wl-{tag}",
                reply,
                f"write through a planted link changed {victim.name} outside the sandbox",
                "link:write-through",
            )
            return
        victim2, original2 = can.file(ctx.canaries.work / "victims")
        race = box / f"race-{tag}"
        can.claim(race)
        stop = threading.Event()
        flipper = threading.Thread(target=_flip, args=(race, victim2, stop), daemon=True)
        flipper.start()
        last: Reply | None = None
        try:
            deadline = time.monotonic() + (1.0 if ctx.budget == "quick" else 3.0)
            while time.monotonic() < deadline and not _changed(victim2, original2):
                last = target.send(race.name)
        finally:
            stop.set()
            flipper.join()
        if last is not None and _changed(victim2, original2):
            yield ctx.finding(self.spec, target, "path", race.name, last,
                              f"swap race: a write landed in {victim2.name} outside the sandbox",
                              "link:swap-race")


def _changed(path: Path, original: str) -> bool:
    try:
        return path.read_text(encoding="utf-8", errors="replace") != original + "\n"
    except OSError:
        return True


def _flip(path: Path, outside: Path, stop: threading.Event) -> None:
    """Alternate ``path`` between a regular file and a link to ``outside``."""
    while not stop.is_set():
        for make_link in (False, True):
            try:
                if path.is_symlink() or path.exists():
                    path.unlink()
                if make_link:
                    os.symlink(outside, path)
                else:
                    path.write_text("inside\n")
            except OSError:
                pass
    try:
        path.unlink()
    except OSError:
        pass
