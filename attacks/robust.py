"""T-DOS-001: a target that dies or wedges on a malformed payload (CWE-248, CWE-400)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from attacks.base import CRASH_SPEC, AttackContext, Target, register, take
from toolkit.core.model import Finding

PER_REQUEST_S = (
    2.0  # an unanswered malformed request is not a crash unless the target stops answering
)


def corpus(cls: str, transport: str = "http") -> Iterator[tuple[Any, str]]:
    """Malformed values of the surface's class: sizes, bytes and types a parser may not expect.

    No lone surrogates: they make the request itself invalid (a JSON-RPC message the SDK
    rejects, a URL that cannot be encoded), which tests the framing, not the target.
    """
    yield "A" * 65536, "64 KiB value"
    yield "\x00", "NUL alone"
    yield "\u202e\ufeff\u0000/..", "bidi override, BOM and NUL"
    yield "%", "lone percent sign"
    yield "%zz%00%ff", "invalid percent escapes"
    yield "{" * 2000, "2000 open braces"
    yield 12, "a number instead of a string"
    yield None, "null"
    yield ["a"] * 3 if cls != "argv" else "not-a-list", "wrong container type"
    yield {"$ref": "#"} if cls != "env" else "not-a-mapping", "an object instead of a scalar"
    yield "/" * 4096, "4096 slashes"


@register
class Robustness:
    """Crash or hang on malformed input (CWE-248 uncaught exception, CWE-400 resource exhaustion).

    Sends malformed values of the surface's payload class: a 64 KiB string, NUL bytes,
    bidi and BOM characters, invalid percent escapes, deep nesting, and
    values of the wrong JSON type. A refusal is fine. The oracle is the target's
    process: one that exits (CWE-248) or stays alive but stops answering (CWE-400) is a
    finding with the payload that did it. The target is restarted and the attack goes
    on; the same crash watch runs under every other attack as well.
    """

    spec = CRASH_SPEC

    def run(self, ctx: AttackContext, target: Target) -> Iterable[Finding]:
        cls = target.surface.classes[0]
        for payload, why in take(corpus(cls, target.surface.transport), ctx.limit):
            reply = target.send(payload, timeout=PER_REQUEST_S)
            ctx.seen(self.spec.id, target, why, reply)
        return []
