"""T-WRITE-001: writing outside the sandbox through an allowed command (CWE-22, CWE-59)."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from attacks.base import AttackContext, AttackSpec, Target, register, take
from toolkit.core.model import Finding, Severity

WRITERS = ("tee", "touch", "cp", "find", "sort", "git", "echo", "printf", "cat", "ls")


@dataclass(frozen=True)
class Dest:
    """Where a write would land outside the sandbox, and how it was addressed."""

    arg: str  # what the payload names
    real: Path  # where the file appears if the write escaped
    how: str
    cwe: int


def destinations(ctx: AttackContext, box: Path | None, tag: str) -> list[Dest]:
    far = ctx.canaries.work / "write-far"
    far.mkdir(parents=True, exist_ok=True)
    out = [Dest(str(far / f"toolkit-canary-w{tag}a.txt"), far / f"toolkit-canary-w{tag}a.txt",
                "absolute outside path", 22)]
    if box is not None and box.is_dir():
        rel = box.parent / f"toolkit-canary-w{tag}r.txt"
        out.insert(0, Dest(f"../{rel.name}", rel, "relative path climbing out", 22))
        ctx.canaries.claim(rel)
        link = ctx.canaries.link(box / f"toolkit-lw-{tag}", far)
        out.append(
            Dest(
                f"{link.name}/toolkit-canary-w{tag}l.txt",
                far / f"toolkit-canary-w{tag}l.txt",
                "planted link to an outside folder",
                59,
            )
        )
    for d in out:
        ctx.canaries.claim(d.real)
    return out


def payloads(cls: str, commands: list[str], d: Dest, probe: str) -> Iterator[tuple[Any, str]]:
    p = d.arg
    first = commands[0] if commands else "echo"
    if cls == "command":
        yield f"{first} toolkit > {p}", "output redirection"
        yield f"{first} toolkit >> {p}", "appending redirection"
        yield f"{first} toolkit | tee {p}", "tee in a pipe"
    for cmd in commands:
        if cls == "argv":
            yield [cmd, "toolkit", ">", p], f"{cmd} with '>' as an argument (shell-joined argv)"
        if cmd in ("tee", "touch"):
            yield _one(cls, [cmd, p]), f"{cmd} onto the path"
        elif cmd == "cp":
            yield _one(cls, [cmd, probe, p]), "cp the planted file"
        elif cmd == "find":
            yield _one(cls, [cmd, ".", "-maxdepth", "0", "-fprintf", p, "x"]), "find -fprintf"
        elif cmd == "sort":
            yield _one(cls, [cmd, "-o", p, probe]), "sort -o"
        elif cmd == "git":
            yield _one(cls, [cmd, "diff", f"--output={p}"]), "git diff --output="
        else:
            yield _one(cls, [cmd, f"--output={p}"]), f"{cmd} --output="


def _one(cls: str, argv: list[str]) -> Any:
    import shlex

    return argv if cls == "argv" else " ".join(shlex.quote(a) for a in argv)


@register
class WriteOutside:
    """Writes outside the sandbox through an allowed command (CWE-22, or CWE-59 through a link).

    For argv and command surfaces: the allowed commands are asked to write to a file
    outside the sandbox by shell redirection (``>``, ``>>``, ``| tee``), by a ``>``
    smuggled as an argument, and by the commands' own writing options (``tee``,
    ``touch``, ``cp``, ``--output=``, ``sort -o``, ``find -fprintf``, ``git diff
    --output=``), addressed by a relative path that climbs out, by an absolute path,
    and through a planted link to an outside folder. The oracle is the file system:
    the outside file exists afterwards. Every file that appears is removed.
    """

    spec = AttackSpec(
        "T-WRITE-001",
        "writes",
        "Write outside the sandbox through an allowed command",
        22,
        Severity.HIGH,
        ("argv", "command"),
    )

    def run(self, ctx: AttackContext, target: Target) -> Iterable[Finding]:
        cls = next(c for c in ("argv", "command") if c in target.surface.classes)
        allowed = [str(x) for x in ctx.contract.policy.allowed_commands]
        commands = [c for c in allowed if c in WRITERS] or list(WRITERS[:6])
        probe = target.planted.file_name if target.planted else "toolkit-probe"
        dests = destinations(ctx, target.surface.sandbox, ctx.canaries.token())
        items = [(d, pl, why) for d in dests for pl, why in payloads(cls, commands, d, probe)]
        hit: set[Path] = set()
        for d, payload, why in take(items, ctx.limit * 2):
            if d.real in hit:
                continue
            reply = target.send(payload)
            ctx.seen(self.spec.id, target, payload, reply)
            if os.path.lexists(d.real):
                hit.add(d.real)
                spec = dataclasses.replace(self.spec, cwe=d.cwe)
                yield ctx.finding(spec, target, cls, payload, reply,
                                  f"{why}, {d.how}: {d.real.name} was created outside the sandbox",
                                  f"write:{d.how}:{why}")
