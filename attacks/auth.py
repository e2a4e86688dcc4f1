"""T-AUTH-001/002/003: token validation, replay and key rotation (CWE-287, CWE-294, CWE-306)."""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from attacks.base import AttackContext, AttackSpec, Target, register
from toolkit.core.auth import Key, read_keys, sign_hmac, write_keys
from toolkit.core.errors import TargetError
from toolkit.core.model import Finding, Severity
from toolkit.core.transport import Prepared, Reply


def _accepted(reply: Reply, baseline: Reply | None) -> bool:
    """Was ``reply`` served like the correctly signed ``baseline``: same status (not 401/403)
    and the same content? A refusal answered 200 with an error document is still a refusal.
    """
    if baseline is None:  # nothing signed to compare with: no claim either way
        return False
    if reply.status is None or reply.status != baseline.status or reply.status in (401, 403):
        return False
    return same_content(reply.text, baseline.text)


def same_content(text: str, base: str) -> bool:
    """Equal, or alike enough that only per-request details (ids, times, nonces) differ."""
    if text == base:
        return True
    import difflib

    a, b = text[:2000], base[:2000]
    return difflib.SequenceMatcher(None, a, b, autojunk=False).ratio() >= 0.8


def _signed_ok(ctx: AttackContext, target: Target) -> tuple[Prepared, Reply]:
    """A correctly signed benign request, which must be accepted for the tests to mean anything."""
    prepared = target.deliver.prepare(target.benign)
    reply = target.send(None, prepared=prepared)
    if reply.status in (None, 401, 403):
        raise TargetError(f"surface {target.name!r}: a correctly signed request was refused "
                          f"({reply.status or reply.error}); check [auth] and the key file")
    return prepared, reply


def _hmac_ready(
    ctx: AttackContext, target: Target, what: str
) -> tuple[Any, Prepared, Reply] | None:
    """(auth, a signed benign request, its accepted reply), or None with a note when not
    applicable.
    """
    auth = _hmac_auth(ctx)
    if auth is None or not getattr(target.deliver, "auth", False):
        target.notes.append(f"{what}: needs [auth] scheme hmac-sha256 with a local key_file")
        return None
    prepared, base = _signed_ok(ctx, target)
    return auth, prepared, base


def _no_credentials(ctx: AttackContext) -> bool:
    import os

    auth = ctx.contract.auth
    if auth is None or auth.scheme != "bearer":
        return False
    return not (auth.token or os.environ.get(auth.token_env or "", "")).strip()


def _hmac_auth(ctx: AttackContext) -> Any:
    auth = ctx.contract.auth
    return auth if auth is not None and auth.scheme == "hmac-sha256" and auth.key_file else None


def path_variants(path: str) -> Iterator[tuple[str, str]]:
    """Spellings of one request path that a router may treat as the same and a guard may not."""
    head, sep, rest = path[1:].partition("/")
    yield "doubled leading slash", "/" + path
    yield "doubled slashes", path.replace("/", "//")
    yield "dot segment", "/." + path
    yield "climb back", "/toolkit-x/.." + path
    if head:
        yield "upper-case first segment", "/" + head.upper() + sep + rest
        yield "percent-encoded first letter", f"/%{ord(head[0]):02x}{head[1:]}{sep}{rest}"
        yield (
            "encoded slash after the first segment",
            f"/{head}%2f{rest}" if sep else "/" + head + "%2f",
        )
        yield "semicolon path parameter", f"/{head};x{sep}{rest}"
        yield "trailing dot on the first segment", f"/{head}.{sep}{rest}"


MIDDLEWARE_NAMES = ("middleware", "src/middleware", "pages/_middleware")


def header_variants(path: str) -> Iterator[tuple[str, dict[str, str], bool]]:
    """(why, headers, sent on a public path) for each trusted-header bypass, most telling
    first: internal-subrequest markers (the form a framework recognises for its own recursive
    calls, repeated past a recursion limit), proxy rewrite headers, claimed local origins.
    """
    for name in MIDDLEWARE_NAMES:
        yield ("internal subrequest marker, repeated",
               {"x-middleware-subrequest": ":".join([name] * 5)}, False)
        yield "internal subrequest marker", {"x-middleware-subrequest": name}, False
    for header in ("X-Original-URL", "X-Rewrite-URL"):
        yield f"{header} rewrite from a public path", {header: path}, True
    yield "claimed local client (X-Forwarded-For)", {"X-Forwarded-For": "127.0.0.1"}, False
    yield "claimed local client (X-Real-IP)", {"X-Real-IP": "127.0.0.1"}, False
    yield "claimed local host (X-Forwarded-Host)", {"X-Forwarded-Host": "localhost"}, False


def _served_everywhere(ctx: AttackContext, target: Target, p: Prepared, base: Reply) -> bool:
    """Control: does a made-up public path, without a token, get the protected reply's very
    content (a single-page app's shell, a catch-all page)? Then that content proves nothing.
    """
    path = f"/toolkit-none-{ctx.canaries.token()}"
    probe = Prepared(p.method, p.url, path.encode("latin-1"), p.headers, p.body, path)
    reply = target.send(None, prepared=probe, token=None)
    if reply.ok and same_content(reply.text, base.text):
        target.notes.append("auth: a made-up path serves the protected reply's content too "
                            "(a catch-all page): path spellings are judged by planted content")
        return True
    return False


@register
class TokenValidation:
    """Authentication token validation (CWE-287, CWE-306).

    Against every authenticated endpoint: a missing token, malformed tokens, a bad
    signature, an unknown key id, one byte changed in the signed method, path, query or
    body, and timestamps just outside the skew window in the past and in the future.
    Each must be refused; a reply equal to the correctly signed baseline's is a finding.
    """

    spec = AttackSpec(
        "T-AUTH-001",
        "auth",
        "Forged, altered or expired tokens accepted",
        287,
        Severity.CRITICAL,
        ("path", "argv", "command", "env", "tool", "option"),
        scope="endpoint",
    )

    def run(self, ctx: AttackContext, target: Target) -> Iterable[Finding]:
        auth = ctx.contract.auth
        if auth is None or auth.scheme == "none" or not getattr(target.deliver, "auth", False):
            target.notes.append("auth: the contract declares no authentication for this endpoint")
            return
        if _no_credentials(ctx):
            # nothing to sign with: compare against the unauthenticated baseline instead
            target.notes.append(
                "auth: no token available (token_env unset); unauthenticated and wrong-token "
                "probes only"
            )
            prepared, base = target.deliver.prepare(target.benign), target.baseline
        else:
            prepared, base = _signed_ok(ctx, target)
        yield from self._path_bypass(ctx, target, prepared, base)
        for why, token in self._cases(ctx, prepared):
            reply = target.send(None, prepared=prepared, token=token)
            ctx.seen(self.spec.id, target, why, reply)
            if _accepted(reply, base):
                cwe_note = "missing token accepted (CWE-306)" if token is None else why
                yield ctx.finding(
                    self.spec,
                    target,
                    "auth",
                    why,
                    reply,
                    f"{cwe_note}: HTTP {reply.status}, same as a correctly signed request",
                    f"auth:{why}",
                )

    def _path_bypass(self, ctx: AttackContext, target: Target, p: Prepared, base: Reply | None,
                     ) -> Iterator[Finding]:
        """The same resource under another spelling of its path, or with a request header a
        framework or proxy trusts to skip or reroute its checks, with no token at all.

        Only judged when the canonical request without a token is refused and the accepted
        reply is known: a variant that brings back the accepted content unauthenticated is
        an authentication bypass (guard and router disagree on the path, or on the headers).
        """
        if base is None or not base.ok or not p.sign_path.startswith("/"):
            return
        bare = target.send(None, prepared=p, token=None)
        if bare.status not in (401, 403):
            return
        marker = (
            target.planted.content
            if target.planted and target.planted.content in base.text
            else None
        )
        specific = marker is not None or not _served_everywhere(ctx, target, p, base)

        def got(reply: Reply) -> bool:
            return reply.ok and ((specific and reply.text == base.text)
                                 or (marker is not None and marker in reply.text))

        refused = f"while {p.sign_path!r} without a token got {bare.status}"
        for why, path in path_variants(p.sign_path):
            variant = Prepared(p.method, p.url, path.encode("latin-1"), p.headers, p.body, path)
            reply = target.send(None, prepared=variant, token=None)
            ctx.seen(self.spec.id, target, why, reply)
            if got(reply):
                yield ctx.finding(
                    self.spec, target, "auth", path, reply,
                    f"{why}: the protected resource came back without a token (HTTP "
                    f"{reply.status}) {refused}", f"auth:path:{why}")
        yield from self._header_bypass(ctx, target, p, got, refused)

    def _header_bypass(self, ctx: AttackContext, target: Target, p: Prepared,
                       got: Callable[[Reply], bool], refused: str) -> Iterator[Finding]:
        """Headers that frameworks and proxies trust: an internal-subrequest marker that
        skips middleware, a rewrite header naming the protected path on a request for a public
        one, a client address or host claimed to be local. Judged by the same content oracle.
        """
        public = Prepared(p.method, p.url, b"/", p.headers, p.body, "/")
        control = target.send(None, prepared=public, token=None)
        for why, headers, rewrite in header_variants(p.sign_path):
            probe = public if rewrite else p
            sent = Prepared(probe.method, probe.url, probe.target, {**probe.headers, **headers},
                            probe.body, probe.sign_path)
            reply = target.send(None, prepared=sent, token=None)
            ctx.seen(self.spec.id, target, why, reply)
            if got(reply) and not (rewrite and control.ok and control.text == reply.text):
                shown = "; ".join(f"{k}: {v}" for k, v in headers.items())
                yield ctx.finding(
                    self.spec, target, "auth", f"{sent.sign_path} [{shown}]", reply,
                    f"{why} ({shown}): the protected resource came back without a token (HTTP "
                    f"{reply.status}) {refused}", f"auth:header:{why}")

    def _cases(self, ctx: AttackContext, p: Prepared) -> Iterator[tuple[str, str | None]]:
        yield "missing token", None
        yield "empty token", ""
        yield "garbage token", "garbage"
        auth = _hmac_auth(ctx)
        if auth is None:
            yield "wrong bearer token", "Bearer " + secrets.token_hex(16)
            return
        key = read_keys(auth.key_file)[0]
        now = int(time.time())
        w = int(auth.window_s)
        yield "malformed token (too few fields)", f"v1:{key.kid}:{now}"
        yield "malformed timestamp", f"v1:{key.kid}:soon:{secrets.token_hex(8)}:{'0' * 64}"
        yield "bad signature", f"v1:{key.kid}:{now}:{secrets.token_hex(8)}:{secrets.token_hex(32)}"
        yield (
            "unknown key id",
            sign_hmac(
                Key("unknown-" + secrets.token_hex(3), secrets.token_bytes(32)),
                p.method,
                p.sign_path,
                p.body,
            ),
        )
        yield (
            "right kid, wrong key",
            sign_hmac(Key(key.kid, secrets.token_bytes(32)), p.method, p.sign_path, p.body),
        )
        other = "PUT" if p.method != "PUT" else "POST"
        yield "signed method changed", sign_hmac(key, other, p.sign_path, p.body)
        yield "signed path changed", sign_hmac(key, p.method, p.sign_path + "x", p.body)
        sep = "&" if "?" in p.sign_path else "?"
        yield "signed query changed", sign_hmac(key, p.method, p.sign_path + sep + "a=1", p.body)
        if p.body:
            flipped = bytearray(p.body)
            flipped[len(flipped) // 2] ^= 0x01
            yield (
                "signed body changed by one byte",
                sign_hmac(key, p.method, p.sign_path, bytes(flipped)),
            )
        yield (
            f"timestamp {w + 5} s in the past",
            sign_hmac(key, p.method, p.sign_path, p.body, ts=now - w - 5),
        )
        yield (
            f"timestamp {w + 5} s in the future",
            sign_hmac(key, p.method, p.sign_path, p.body, ts=now + w + 5),
        )


@register
class TokenReplay:
    """Token replay (CWE-294).

    A correctly signed request is sent, then its exact token is sent again: the replay
    must be refused. Then one fresh token is sent by N concurrent requests at once:
    exactly one may succeed (a check-then-set race in a nonce store lets several in).
    """

    spec = AttackSpec("T-AUTH-002", "replay", "Replayed token accepted", 294, Severity.HIGH,
                      ("path", "argv", "command", "env", "tool", "option"), scope="endpoint")

    def run(self, ctx: AttackContext, target: Target) -> Iterable[Finding]:
        ready = _hmac_ready(ctx, target, "replay")
        if ready is None:
            return
        auth, prepared, base = ready
        key = read_keys(auth.key_file)[0]
        token = sign_hmac(key, prepared.method, prepared.sign_path, prepared.body)
        first = target.send(None, prepared=prepared, token=token)
        second = target.send(None, prepared=prepared, token=token)
        ctx.seen(self.spec.id, target, "sequential replay", second)
        if _accepted(first, base) and _accepted(second, base):
            yield ctx.finding(
                self.spec,
                target,
                "auth",
                "sequential replay",
                second,
                f"the same token was accepted twice (HTTP {first.status}, {second.status})",
                "replay:sequential",
            )
        n = 8
        token = sign_hmac(key, prepared.method, prepared.sign_path, prepared.body)
        send: Callable[[int], Reply] = lambda _: target.send(None, prepared=prepared, token=token)
        with ThreadPoolExecutor(max_workers=n) as pool:
            replies = list(pool.map(send, range(n)))
        wins = sum(_accepted(r, base) for r in replies)
        if wins > 1:
            yield ctx.finding(
                self.spec,
                target,
                "auth",
                f"{n} concurrent replays",
                replies[-1],
                f"{wins} of {n} concurrent requests with one token were accepted (at most 1 may "
                "be)",
                "replay:concurrent",
            )


@register
class KeyRotation:
    """Key rotation without restart (CWE-287 / seed Gate 3a).

    Adds a new key to the contract's key file and signs with it (it must be accepted
    within ``reload_within_s``), then retires the old key (a token signed with it must be
    refused within ``reload_within_s``). No service may restart to get there: pid and
    create_time are compared before and after. The original key file is always restored.
    """

    spec = AttackSpec(
        "T-AUTH-003",
        "rotation",
        "Key rotation not effective without restart",
        287,
        Severity.HIGH,
        ("path", "argv", "command", "env", "tool", "option"),
        scope="service",
    )

    def run(self, ctx: AttackContext, target: Target) -> Iterable[Finding]:
        ready = _hmac_ready(ctx, target, "rotation")
        if ready is None:
            return
        auth, prepared, base = ready
        path = auth.key_file
        original = path.read_bytes()
        old = read_keys(path)[0]
        pids_before = ctx.service_pids()
        fresh = Key("rot" + secrets.token_hex(3), secrets.token_bytes(32))
        try:
            write_keys(path, [fresh, *read_keys(path)])
            took = self._poll(target, prepared, fresh, base, want=True, limit=auth.reload_within_s)
            if took is None:
                yield ctx.finding(self.spec, target, "auth", "new key", None,
                                  f"a token signed with a newly added key was still refused after "
                                  f"{auth.reload_within_s:g} s", "rotation:add")
                return
            write_keys(path, [fresh])
            took = self._poll(target, prepared, old, base, want=False, limit=auth.reload_within_s)
            if took is None:
                yield ctx.finding(self.spec, target, "auth", "retired key", None,
                                  f"a token signed with the retired key was still accepted after "
                                  f"{auth.reload_within_s:g} s", "rotation:retire")
        finally:
            path.write_bytes(original)
        restarted = [n for n, v in pids_before.items() if ctx.service_pids().get(n) != v]
        if restarted:
            yield ctx.finding(self.spec, target, "auth", "rotation", None,
                              f"service(s) restarted during key rotation: {', '.join(restarted)}",
                              "rotation:restart")

    def _poll(
        self, target: Target, p: Prepared, key: Key, base: Reply, want: bool, limit: float
    ) -> float | None:
        t0 = time.monotonic()
        while True:
            reply = target.send(
                None, prepared=p, token=sign_hmac(key, p.method, p.sign_path, p.body)
            )
            if _accepted(reply, base) == want:
                return time.monotonic() - t0
            if time.monotonic() - t0 > limit:
                return None
            time.sleep(0.25)
