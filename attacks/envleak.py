"""T-ENVLEAK-001: the server's own environment coming back through a tool (CWE-526)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from attacks.base import AttackContext, AttackSpec, Target, encodings, excerpt, register, take
from toolkit.core.model import Finding, Severity

ENV_CANARY = "TOOLKIT_ENV_CANARY"


def corpus(cls: str, allowed: list[str]) -> Iterator[tuple[Any, str]]:
    first = allowed[0] if allowed else "echo"
    if cls == "argv":
        yield ["env"], "env"
        yield ["printenv"], "printenv"
        yield ["printenv", ENV_CANARY], "printenv NAME"
        yield [first, f"${ENV_CANARY}"], "variable reference in an argument"
        yield ["cat", "/proc/self/environ"], "cat /proc/self/environ"
        yield ["sh", "-c", "env"], "sh -c env"
    elif cls == "command":
        yield "env", "env"
        yield "printenv", "printenv"
        yield f"echo ${ENV_CANARY}", "variable expansion"
        yield f"{first} ${{{ENV_CANARY}}}", "variable expansion in an allowed command"
        yield "cat /proc/self/environ", "cat /proc/self/environ"
    elif cls == "path":
        yield "/proc/self/environ", "/proc/self/environ"
        yield "../" * 12 + "proc/self/environ", "/proc/self/environ by climbing"
    elif cls == "option":
        yield "--file=/proc/self/environ", "option naming /proc/self/environ"


@register
class EnvironmentInheritance:
    """Environment disclosure (CWE-526).

    The toolkit starts every target with a fresh canary in its environment
    (``TOOLKIT_ENV_CANARY``). A target that passes its whole environment to the commands
    it runs, expands variables, or serves ``/proc/self/environ`` hands its secrets to
    whoever calls a tool. Probes: ``env``, ``printenv``, ``$NAME`` expansion,
    ``/proc/self/environ``. The oracle is the canary's value (raw, base64, hex or URL
    encoded) in a reply; it never appears in a payload, so it cannot be an echo.
    """

    spec = AttackSpec(
        "T-ENVLEAK-001",
        "envleak",
        "Server environment disclosed through a tool",
        526,
        Severity.HIGH,
        ("argv", "command", "path", "option"),
    )

    def run(self, ctx: AttackContext, target: Target) -> Iterable[Finding]:
        cls = next(c for c in ("argv", "command", "path", "option") if c in target.surface.classes)
        allowed = [str(x) for x in ctx.contract.policy.allowed_commands]
        forms = encodings(ctx.canaries.secret)
        for payload, why in take(corpus(cls, allowed), ctx.limit):
            reply = target.send(payload)
            ctx.seen(self.spec.id, target, payload, reply)
            text = reply.text
            form = next((f for f in forms if f in text), None)
            if form and not (target.baseline and form in target.baseline.text):
                yield ctx.finding(
                    self.spec,
                    target,
                    cls,
                    payload,
                    reply,
                    f"{why}: the environment canary came back: {excerpt(text, form, 40)}",
                    f"envleak:{why}",
                )
