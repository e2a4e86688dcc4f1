"""T-LEAK-001: secrets and internals leaking through responses and logs (CWE-200, CWE-209,
CWE-532).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from pathlib import Path

from attacks.base import AttackContext, AttackSpec, Target, encodings, excerpt, register
from toolkit.core.model import Finding, Severity
from toolkit.core.transport import Prepared, Reply

INTERNALS = [
    (re.compile(r"Traceback \(most recent call last\)|^\s+File \"[^\"]+\", line \d+",
                re.MULTILINE), "stack trace"),
    (re.compile(r"(?:/(?:home|usr|opt|var|srv|work|root|tmp|app)/[\w.-]+(?:/[\w.-]+)*\.py)|[A-Z]:\\\\[\w\\\\.-]+\.py"),
     "internal file path"),
    (re.compile(r"\b(?:SELECT\s+.+\s+FROM|INSERT\s+INTO|UPDATE\s+\w+\s+SET|sqlite3\.\w+Error"
                r"|near \".+\": syntax error)",
                re.IGNORECASE),
     "SQL text"),
    (re.compile(r"\b(?:Python|uvicorn|starlette|Werkzeug|gunicorn|Express|nginx)/\d+\.\d+",
                re.IGNORECASE), "library version"),
]


def leaked_secret(text: str, secret: str) -> str | None:
    for form in encodings(secret):
        if form in text:
            return form
    return None


@register
class SecretAndInternalsLeak:
    """Secret and internals leakage (CWE-200, CWE-209, CWE-532).

    The toolkit plants a fresh canary secret in every service's environment
    (``{{canary_secret}}``), and in a request header and body of its own. It then drives
    error-inducing requests at every endpoint: malformed JSON, wrong types, an oversized
    body, an unknown route, a bad token. No reply may hold the canary (raw, base64, hex
    or URL-encoded), a stack trace, an internal file path, SQL text or a library version;
    after the run no service log may hold the canary in any of those encodings. Every
    reply of every other attack is checked for the canary too.
    """

    spec = AttackSpec(
        "T-LEAK-001",
        "leaks",
        "Secret or internals disclosed in a reply or a log",
        209,
        Severity.HIGH,
        ("path", "argv", "command", "env", "tool", "option"),
    )

    def run(self, ctx: AttackContext, target: Target) -> Iterable[Finding]:
        p = target.deliver.prepare(target.benign)
        secret = ctx.canaries.secret
        reply = target.send(target.benign)
        ctx.seen(self.spec.id, target, target.benign, reply)
        said: set[str] = set()  # one finding per kind of internals leak, not one per request
        yield from _once(self.judge(ctx, target, "benign request", reply), said)
        for why, prepared, token in self._requests(p, secret):
            reply = target.send(None, prepared=prepared, token=token)
            ctx.seen(self.spec.id, target, why, reply)
            yield from _once(self.judge(ctx, target, why, reply), said)

    def _requests(self, p: Prepared, secret: str) -> Iterator[tuple[str, Prepared, bool | str]]:
        def variant(
            body: bytes, path: str | None = None, headers: dict[str, str] | None = None
        ) -> Prepared:
            sp = path or p.sign_path
            return Prepared(
                p.method, p.url, sp.encode("latin-1"), {**p.headers, **(headers or {})}, body, sp
            )

        yield "malformed JSON", variant(b'{"tool": "file.read", "args": {'), True
        yield "wrong types", variant(b'{"tool": 12, "args": [1, 2], "path": {"x": null}}'), True
        yield "JSON array body", variant(b"[[[[[]]]]]"), True
        yield "oversized body", variant(b'{"pad": "' + b"A" * (2 << 20) + b'"}'), True
        yield "unknown route", variant(p.body, path="/toolkit-no-such-route"), True
        yield (
            "canary in header and body",
            variant(
                p.body[:-1] + f', "password": "{secret}"}}'.encode()
                if p.body.endswith(b"}")
                else p.body,
                headers={"Authorization": f"Bearer {secret}", "X-Api-Key": secret},
            ),
            True,
        )
        yield "bad token", variant(p.body), "v1:nokey:0:00:" + "0" * 64

    def judge(
        self, ctx: AttackContext, target: Target, why: str, reply: Reply
    ) -> Iterator[Finding]:
        """The canary is looked for in the body and headers; internals only in the body of an error
        reply.

        A ``Server:`` banner or a version on a successful reply is not an error-reply leak
        (every stock static server sends one); the transcript shows the headers judged.
        """
        headers = "\n".join(f"{k}: {v}" for k, v in reply.headers.items())
        form = leaked_secret(reply.text + "\n" + headers, ctx.canaries.secret)
        if form:
            yield ctx.finding(
                self.spec,
                target,
                "leak",
                why,
                reply,
                "canary secret in the reply "
                f"({'raw' if form == ctx.canaries.secret else 'encoded'})",
                f"leak:secret:{why}",
            )
        if reply.status is None or reply.status < 400:
            return
        base = target.baseline.text if target.baseline else ""
        for pattern, what in INTERNALS:
            m = pattern.search(reply.text)
            if m and not pattern.search(base):
                yield ctx.finding(self.spec, target, "leak", why, reply,
                                  f"{what} in an error reply (HTTP {reply.status}): "
                                  f"{excerpt(reply.text, m.group(0), 60)}", f"leak:{what}")
                break


def _once(findings: Iterator[Finding], said: set[str]) -> Iterator[Finding]:
    for f in findings:
        if f.oracle.startswith("leak:secret") or f.oracle not in said:
            said.add(f.oracle)
            yield f


def passive_scan(ctx: AttackContext, spec: AttackSpec, targets: dict[str, Target]) -> list[Finding]:
    """Every reply the run received, checked for the canary secret."""
    found: dict[str, Finding] = {}
    for attack_id, surface, payload, reply in ctx.replies:
        if attack_id == spec.id or surface not in targets:
            continue
        if leaked_secret(reply.text, ctx.canaries.secret):
            f = ctx.finding(
                spec,
                targets[surface],
                "leak",
                payload,
                reply,
                "canary secret planted in the service environment came back in a reply to "
                f"{attack_id}",
                f"leak:secret-passive:{attack_id}",
            )
            found.setdefault(f.fingerprint, f)
    return list(found.values())


def scan_logs(
    ctx: AttackContext, spec: AttackSpec, target: Target, logs: list[Path]
) -> list[Finding]:
    return scan_at_rest(ctx, spec, target, logs, "log")


def scan_at_rest(
    ctx: AttackContext, spec: AttackSpec, target: Target, paths: list[Path], what: str
) -> list[Finding]:
    """Logs, config and state files (SQLite databases and their WAL included, read as bytes)."""
    findings = []
    forms = [f.encode() for f in encodings(ctx.canaries.secret)]
    for path in _files(paths):
        try:
            data = path.read_bytes()[: 64 << 20]
        except OSError:
            continue
        if any(form in data for form in forms):
            findings.append(
                ctx.finding(
                    spec,
                    target,
                    "leak",
                    str(path.name),
                    None,
                    f"canary secret found in {what} file {path.name} (plaintext at rest)",
                    f"leak:{what}:{path.name}",
                )
            )
    return findings


def _files(paths: list[Path]) -> Iterator[Path]:
    for p in paths:
        if p.is_file():
            yield p
            for suffix in ("-wal", "-journal"):
                side = p.with_name(p.name + suffix)
                if side.is_file():
                    yield side
        elif p.is_dir():
            yield from (f for f in sorted(p.rglob("*")) if f.is_file() and not f.is_symlink())
