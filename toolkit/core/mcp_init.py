"""`toolkit contract init --mcp-stdio`: a locked contract written from a server's own tool listing.

The server is started, its tools are listed, and every (tool, argument) pair whose name,
title, description or JSON schema says path, file, directory, repository, command,
arguments, ref or environment becomes one surface, with the payload class that fits and
benign values for the tool's other required arguments. `toolkit attack --all` then runs
on the result unchanged.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from toolkit.core.errors import ContractError, TargetError

PATHISH = re.compile(  # "source", not the tail of "resource" (kubectl's resourceType)
    r"path|file|dir|folder|directory|root|cwd|(?<!re)source|destination|dest\b|location",
    re.IGNORECASE,
)
# a tool that wraps a command-line client: its free string operands reach that client's argv
CLI_TOOL = re.compile(r"(?<![a-z])(kubectl|helm|git|docker|podman|terraform|npm|npx|pip|"
                      r"ffmpeg|curl|wget|ssh|rsync|command[- ]line|cli)(?![a-z])", re.IGNORECASE)
FREE_TEXT = re.compile(r"message|msg|description|title|content|text|body|comment|query|"
                       r"pattern|search|prompt", re.IGNORECASE)
REPO = re.compile(r"repo", re.IGNORECASE)
COMMANDISH = re.compile(
    r"^(command|cmd|shell|script|commandline|command_line|exec)$", re.IGNORECASE
)
ARGSISH = re.compile(r"^(args|arguments|argv|flags|options|extra_args)$", re.IGNORECASE)
REFISH = re.compile(r"^(ref|revision|rev|branch|branch_name|commit|target|tag|base|base_branch|sha|"
                    r"since|until|range|refspec|start_point|treeish|tree_ish)$", re.IGNORECASE)
ENVISH = re.compile(r"^(env|environment|env_vars|envs)$", re.IGNORECASE)
URLISH = re.compile(r"url|uri|endpoint|href", re.IGNORECASE)
WRITE_VERBS = re.compile(
    r"write|edit|create|move|rename|delete|remove|mkdir|append|save|upload|put|set|"
    r"commit|add|reset|checkout|init|copy",
    re.IGNORECASE,
)


@dataclass
class Surface:
    name: str
    cls: str
    tool: str
    arguments: dict[str, Any]
    writes: bool
    repository: bool
    note: str = ""


@dataclass
class Plan:
    server: str
    argv: list[str]
    sandbox: Path
    surfaces: list[Surface] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    fingerprint: str = ""  # of the written contract: its version's build metadata
    told: list[str] = field(default_factory=list)  # tools whose arguments their own errors named
    excluded: dict[str, str] = field(default_factory=dict)  # surface -> why no call was accepted
    unverified: list[str] = field(default_factory=list)  # not probed within the time budget
    probe_s: float | None = None  # how long the baseline probe took (None: not probed)


# (contract file) -> (excluded surface -> reason, surfaces not settled in time, seconds)
Verify = Callable[[Path], tuple[dict[str, str], list[str], float]]


def schema_type(prop: dict[str, Any]) -> str:
    t = prop.get("type")
    if isinstance(t, list):
        t = next((x for x in t if x != "null"), None)
    if t is None:
        for key in ("anyOf", "oneOf"):
            for alt in prop.get(key, []) or []:
                if isinstance(alt, dict) and alt.get("type") not in (None, "null"):
                    return schema_type(alt)
    return str(t) if t else "string"


def classify(arg: str, prop: dict[str, Any]) -> tuple[str, bool] | None:
    """(payload class, repository?) for one argument, or None when no attack class fits."""
    words = f"{prop.get('title', '')} {prop.get('description', '')}"
    kind = schema_type(prop)
    items = prop.get("items") if isinstance(prop.get("items"), dict) else {}
    if kind == "array" and schema_type(items or {}) != "string":
        return None
    if ENVISH.match(arg) and kind == "object":
        return "env", False
    if kind not in ("string", "array"):
        return None
    if COMMANDISH.match(arg):
        return ("argv" if kind == "array" else "command"), False
    if ARGSISH.match(arg):
        return "option", False
    if REFISH.match(arg):
        return "option", False
    if URLISH.search(arg):
        return None
    if REPO.search(arg) or (PATHISH.search(arg) and REPO.search(words)):
        return "path", True
    if PATHISH.search(arg) or (
        re.search(r"\b(path|file|directory|folder)\b", words, re.IGNORECASE) and kind == "string"
    ):
        return "path", False
    return None


def operand(arg: str, prop: dict[str, Any]) -> tuple[str, bool] | None:
    """A required free string of a tool wrapping a CLI (kubectl get <resourceType> <name>):
    it lands in the client's argv, so it is an option-injection surface.
    """
    if schema_type(prop) != "string" or prop.get("enum") or FREE_TEXT.search(arg):
        return None
    if prop.get("default") is not None:
        return None
    return "option", False


def operand_free(tool: str, p: Plan) -> bool:
    """One operand surface per tool, and none for a tool that has an option surface already:
    every surface costs the whole attack library's time.
    """
    return not any(s.tool == tool and s.cls == "option" for s in p.surfaces)


def benign(arg: str, prop: dict[str, Any], repository: bool) -> Any:
    """A harmless value the baseline step can accept for an argument that is not under attack."""
    if "default" in prop and prop["default"] is not None:
        return prop["default"]
    if isinstance(prop.get("enum"), list) and prop["enum"]:
        return prop["enum"][0]
    kind = schema_type(prop)
    if COMMANDISH.match(arg):  # a harmless command, in the shape the schema wants
        return ["ls"] if kind == "array" else "ls"
    quoted = re.findall(r"'([A-Za-z0-9_-]+)'", str(prop.get("description", "")))
    if kind == "string" and quoted:
        return quoted[0]  # "Whether to list local branches ('local'), ..." names its own values
    if kind in ("integer", "number"):
        return prop.get("minimum", 1)
    if kind == "boolean":
        return False
    if kind == "object":  # the object's own required fields, each benign in turn
        found = prop.get("properties")
        fields: dict[str, Any] = found if isinstance(found, dict) else {}
        need = [r for r in prop.get("required") or [] if isinstance(fields.get(r), dict)]
        return {r: benign(r, fields[r], repository) for r in need}
    if kind == "array":
        item = prop.get("items") if isinstance(prop.get("items"), dict) else {}
        n = int(prop.get("minItems", 0) or 0)
        return [benign(arg, item or {}, repository) for _ in range(n)]
    if REPO.search(arg) or re.search(r"dir|folder|root|cwd", arg, re.IGNORECASE):
        return "{{sandbox}}"
    if REFISH.match(arg) and "name" in arg.lower():
        return "toolkit-probe-" + re.sub(r"\W", "-", arg)  # a name to create: never an existing ref
    if REFISH.match(arg):
        return "HEAD"
    if re.search(r"dest|target|output|new|^to$", arg, re.IGNORECASE) and PATHISH.search(
        arg + " path"
    ):
        return (
            "{{fresh}}"  # a destination: a new name each request, so "already exists" never answers
        )
    if PATHISH.search(arg):
        return "{{probe}}"  # the benign file the toolkit plants in the sandbox for each surface
    if re.search(r"pattern|glob|query|search", arg, re.IGNORECASE):
        return "*"
    return "toolkit-probe"


def writes(tool: dict[str, Any]) -> bool:
    ann = tool.get("annotations") if isinstance(tool.get("annotations"), dict) else {}
    if isinstance(ann, dict) and "readOnlyHint" in ann:
        return not bool(ann["readOnlyHint"])
    return bool(WRITE_VERBS.search(str(tool.get("name", ""))))


def validate(tools: list[Any]) -> list[dict[str, Any]]:
    if not tools:
        raise TargetError(
            "the server lists no tools (tools/list returned an empty list): nothing to attack"
        )
    out = []
    for i, tool in enumerate(tools):
        if not isinstance(tool, dict) or not isinstance(tool.get("name"), str) or not tool["name"]:
            raise TargetError(
                f"tools/list entry {i} is not a tool (no string name): {json.dumps(tool)[:160]}"
            )
        schema = tool.get("inputSchema")
        if not isinstance(schema, dict) or not isinstance(schema.get("properties", {}), dict):
            raise TargetError(f"tool {tool['name']!r}: inputSchema is not a JSON schema object: "
                              f"{json.dumps(schema)[:160]}")
        out.append(tool)
    return out


TYPES = {"string", "array", "object", "number", "integer", "boolean"}


def asked_for(text: str) -> dict[str, str]:
    """Argument names (and types, when said) that a validator's refusal of ``{}`` names:
    zod issue lists (``"path": ["name"]``, ``"expected": "string"``), pydantic
    (``"loc": [..., "name"]`` or ``name\n  Field required``), and plain "missing required
    argument 'name'" messages.
    """
    found: dict[str, str] = {}
    for m in re.finditer(r"\[\s*\{.*\}\s*\]", text, re.DOTALL):
        try:
            issues = json.loads(m.group(0))
        except ValueError:
            continue
        for issue in issues if isinstance(issues, list) else []:
            if not isinstance(issue, dict):
                continue
            where = issue.get("path") or issue.get("loc") or []
            names = [w for w in where if isinstance(w, str) and w not in ("body", "arguments")]
            if names:
                kind = str(issue.get("expected") or issue.get("type") or "string")
                found.setdefault(names[-1], kind if kind in TYPES else "string")
    for m in re.finditer(r"^(\w+)\n\s+Field required", text, re.MULTILINE):
        found.setdefault(m.group(1), "string")
    for m in re.finditer(r"missing (?:required )?(?:argument|parameter|field|property)s?:?\s+"
                         r"['\"`]?(\w+)", text, re.IGNORECASE):
        found.setdefault(m.group(1), "string")
    return found


def fill_schemas(call: Any, tools: list[dict[str, Any]]) -> list[str]:
    """Tools listed with no ``properties`` at all (a schema generator that lost them): ask
    the tool itself by calling it with ``{}`` and reading its validator's refusal. Returns a
    line per tool whose schema was written this way. ``call(name, args)`` returns the reply
    text, or None.
    """
    told = []
    for tool in tools:
        schema = tool["inputSchema"]
        if "properties" in schema:
            continue
        text = call(tool["name"], {}) or ""
        names = asked_for(text)
        if not names:
            continue
        props = {n: ({"type": "array", "items": {"type": "string"}} if k == "array"
                     else {"type": k}) for n, k in names.items()}
        tool["inputSchema"] = {**schema, "type": "object", "properties": props,
                               "required": list(names)}
        told.append(f"{tool['name']}({', '.join(names)})")
    return told


def plan(server: str, argv: list[str], sandbox: Path, tools: list[dict[str, Any]]) -> Plan:
    p = Plan(server, argv, sandbox)
    used: set[str] = set()
    for tool in tools:
        schema = tool["inputSchema"]
        props = {k: v for k, v in (schema.get("properties") or {}).items() if isinstance(v, dict)}
        required = [r for r in schema.get("required", []) or [] if r in props]
        cli = bool(CLI_TOOL.search(f"{tool['name']} {tool.get('description', '')}"))
        for arg, prop in props.items():
            own = classify(arg, prop)
            if own is None and cli and arg in required and operand_free(tool["name"], p):
                own = operand(arg, prop)
            top: list[tuple[list[str], dict[str, Any]]] = [([], prop)]
            for trail, leaf in top if own else _nested(prop, []):
                hit = classify(trail[-1], leaf) if trail else own
                if hit is None:
                    continue
                cls, repo = hit
                args = {r: benign(r, props[r], repo) for r in required if r != arg}
                slot = ["{{payload}}"] if schema_type(leaf) == "array" and cls != "argv" \
                    else "{{payload}}"
                args[arg] = _fill(prop, trail, slot, repo)
                where = ".".join([arg, *(k for k in trail if k != "[]")])
                name = _unique(re.sub(r"[^A-Za-z0-9_.-]", "-", f"{tool['name']}-{where}"), used)
                p.surfaces.append(Surface(name, cls, tool["name"], args, writes(tool), repo))
        if not any(s.tool == tool["name"] for s in p.surfaces):
            p.skipped.append(tool["name"])
    return p


def _nested(prop: dict[str, Any], trail: list[str],
            depth: int = 0) -> list[tuple[list[str], dict[str, Any]]]:
    """(trail of keys, schema) of every property inside an object or an array of objects
    (``[]`` in a trail is "the array's item"), three levels deep at most.
    """
    if depth >= 3:
        return []
    kind = schema_type(prop)
    items = prop.get("items")
    if kind == "array" and isinstance(items, dict) and schema_type(items) == "object":
        return _nested(items, [*trail, "[]"], depth + 1)
    found = prop.get("properties")
    if kind != "object" or not isinstance(found, dict):
        return []
    out: list[tuple[list[str], dict[str, Any]]] = []
    for key, sub in found.items():
        if isinstance(sub, dict):
            out += [([*trail, key], sub), *_nested(sub, [*trail, key], depth + 1)]
    return out


def _fill(schema: dict[str, Any], trail: list[str], slot: Any, repo: bool) -> Any:
    """A value of ``schema`` with ``slot`` at ``trail`` and benign required fields around it."""
    if not trail:
        return slot
    head, rest = trail[0], trail[1:]
    if head == "[]":
        return [_fill(schema.get("items") or {}, rest, slot, repo)]
    props = schema.get("properties") or {}
    around = benign("", {**schema, "default": None}, repo)
    out = dict(around) if isinstance(around, dict) else {}
    out[head] = _fill(props.get(head) or {}, rest, slot, repo)
    return out


def _unique(name: str, used: set[str]) -> str:
    out, n = name, 2
    while out in used:
        out, n = f"{name}-{n}", n + 1
    used.add(out)
    return out


# ------------------------------------------------------------------ TOML

def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return json.dumps(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{_key(k)} = {toml_value(v)}" for k, v in value.items()) + " }"
    return json.dumps(str(value))


def _key(k: str) -> str:
    return k if re.fullmatch(r"[A-Za-z0-9_-]+", k) else json.dumps(k)


def version(p: Plan) -> str:
    """1.0.0, with the listing's fingerprint as build metadata: a re-init after the server
    changed (an upgrade, other arguments) is a new contract version, not a drift of the old.
    """
    return f"1.0.0+{p.fingerprint}" if p.fingerprint else "1.0.0"


def fingerprint(text: str) -> str:
    """Of the contract as written (command line, surfaces, arguments), its version aside."""
    import hashlib

    return hashlib.sha256(text.encode("utf-8", "replace")).hexdigest()[:12]


def render(p: Plan, sandbox_value: str, env: dict[str, str] | None = None,
           timeout_s: float = 20) -> str:
    name = re.sub(r"[^A-Za-z0-9_.-]", "-", p.server) or "mcp-server"
    lines = ["# Written by `toolkit contract init --mcp-stdio` from the server's own tool listing.",
             f"# Tools with no argument an attack class fits: {', '.join(p.skipped) or 'none'}.",
             *([(f"# Listed without arguments; named by their own refusal of {{}}: "
                f"{', '.join(p.told)}.")] if p.told else []),
             *([f"# Not probed within init's time budget (kept): {', '.join(p.unverified)}."]
               if p.unverified else []),
             "[contract]", f"name = {toml_value(name)}", f"version = {toml_value(version(p))}",
             ""]
    for s in p.surfaces:
        if s.name not in p.excluded:
            lines += _surface_lines(p, s, sandbox_value, env, timeout_s)
    if p.excluded:
        lines += EXCLUDED_HEAD
    for s in p.surfaces:
        if s.name in p.excluded:
            lines += [f"# reason: {p.excluded[s.name]}"]
            lines += ["# " + x if x else "#" for x in
                      _surface_lines(p, s, sandbox_value, env, timeout_s)]
    return "\n".join(lines)


EXCLUDED_HEAD = [
    "# ---- excluded_surfaces: no harmless call was accepted at init, so `toolkit attack`",
    "# could not tell an attack from a failure (a missing backend, cluster or credentials).",
    "# Fix the environment and re-run init, or uncomment a surface (and bump the version) to",
    "# attack it anyway.",
    "",
]


def _surface_lines(p: Plan, s: Surface, sandbox_value: str, env: dict[str, str] | None,
                   timeout_s: float) -> list[str]:
    lines = [
        "[[surfaces]]",
        f"name = {toml_value(s.name)}",
        f"classes = [{toml_value(s.cls)}]",
        'transport = "mcp-stdio"',
        f"sandbox = {toml_value(sandbox_value)}",
        f"command = {toml_value(p.argv)}",
        f"tool = {toml_value(s.tool)}",
        f"arguments = {toml_value(s.arguments)}",
        f"timeout_s = {toml_value(timeout_s)}",
    ]
    if env:
        lines.append(f"env = {toml_value(env)}")
    if s.writes:
        lines.append("writes = true")
    if s.repository:
        lines.append("repository = true")
    lines.append("")
    return lines


# ------------------------------------------------------------------ the command

class _Maker:
    """make_repository's file-maker for init: creates, records nothing (the sandbox is the
    user's).
    """

    def tree(self, path: Path) -> Path | None:
        try:
            path.mkdir()
        except FileExistsError:
            return None
        return path

    def file(self, folder: Path, name: str, content: str) -> tuple[Path, str]:
        (folder / name).write_text(content + "\n", encoding="utf-8")
        return folder / name, content


def init(argv: list[str], sandbox: Path, out: Path, timeout: float = 60.0,
         env: dict[str, str] | None = None, verify: Verify | None = None,
         call_timeout: float = 20) -> Plan:
    """Start the server, list its tools, write and lock the contract; every failure is a
    ToolkitError. ``verify`` (the attack engine's baseline discovery, given by the caller)
    probes each candidate surface; those with no accepted harmless call are written
    commented out, with the reason.
    """
    from toolkit.core import contract as contract_mod
    from toolkit.core.baseline import make_repository
    from toolkit.core.mcp_transport import StdioSession

    if not argv:
        raise ContractError(
            "contract init: give the server's command after --, e.g. -- npx -y SERVER {{sandbox}}"
        )
    box = sandbox.resolve()
    box.mkdir(parents=True, exist_ok=True)
    templated = ["{{sandbox}}" if _same(a, box) else a for a in argv]
    if any(REPO.search(a) or a.endswith("git") for a in argv):
        make_repository(box, _Maker(), f"toolkit init {secrets.token_hex(3)}")
    live = [
        str(box) if a == "{{sandbox}}" else a.replace("{{sandbox}}", str(box)) for a in templated
    ]
    session = StdioSession(live, {**os.environ, **(env or {})}, str(box), timeout)
    try:
        info = session.initialize()
        tools = validate(session.raw_tools())
        ends = time.monotonic() + timeout
        told = fill_schemas(lambda name, args: _call(session, name, args, ends), tools)
    finally:
        session.close()
    server = str((info.get("serverInfo") or {}).get("name") or Path(argv[0]).name)
    p = plan(server, templated, box, tools)
    p.told = told
    if not p.surfaces:
        raise TargetError(
            f"none of the {len(tools)} tools of {server!r} takes an argument an attack class fits "
            f"(path, file, directory, repository, command, args, ref, env): "
            f"{', '.join(t['name'] for t in tools)}"
        )
    try:
        rel = os.path.relpath(box, out.resolve().parent)
    except ValueError:
        rel = str(box)
    _refuse_foreign(out)  # before the probe: a file init may not replace ends it at once
    out.parent.mkdir(parents=True, exist_ok=True)
    if verify is not None:
        _probe(p, verify, out, rel, env or {}, call_timeout)
    p.fingerprint = fingerprint(render(p, rel, env or {}))
    _write_checked(out, render(p, rel, env or {}))
    contract_mod.write_lock(contract_mod.load(out))
    return p


def _write_checked(out: Path, text: str) -> None:
    """Write the contract only if it loads, and never over a link or a file init did not
    write: a hand-written contract at --out was silently replaced, and a server command the
    contract language cannot hold (``}}`` in it) left an invalid file behind."""
    from toolkit.core.evidence import atomic_write

    _refuse_foreign(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with _checked_copy(out, text):
        atomic_write(out, text.encode())


def _refuse_foreign(out: Path) -> None:
    if out.is_symlink() or (out.exists() and not _written_by_init(out)):
        raise ContractError(f"{out} exists and was not written by `toolkit contract init`; "
                            "refusing to replace it: pick another --out or remove it first")


@contextlib.contextmanager
def _checked_copy(out: Path, text: str) -> Iterator[Path]:
    """``text`` in a fresh private file beside ``out``, once it loads as a contract;
    removed on the way out. A text that does not load is an error naming ``out``."""
    import tempfile

    from toolkit.core import contract as contract_mod

    fd, tmp = tempfile.mkstemp(prefix=f".{out.stem}.", suffix=".toml", dir=out.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        try:
            contract_mod.load(Path(tmp))
        except ContractError as exc:
            raise ContractError(
                f"{str(exc).replace(tmp, str(out))} (written from the server's listing and "
                "command line, which the contract cannot hold as they are; nothing written)"
            ) from None
        yield Path(tmp)
    finally:
        os.unlink(tmp)


def _written_by_init(path: Path) -> bool:
    try:
        with open(path, "rb") as fh:
            return fh.read(60).startswith(b"# Written by `toolkit contract init")
    except OSError:
        return False


def _probe(p: Plan, verify: Verify, out: Path, rel: str, env: dict[str, str],
           call_timeout: float) -> None:
    """Write the candidate contract beside ``out`` (its sandbox is relative to that folder),
    let ``verify`` run the baseline discovery on it, and note what it could not use.
    """
    import shutil
    import tempfile

    with tempfile.TemporaryDirectory(prefix="toolkit-init-probe-") as scratch:
        where = rel
        if _found_only_by_placeholder(p, env):
            # a harmless call may still change state (git_create_branch makes its branch), and
            # the attack's own baseline must meet the sandbox as init found it: probe a copy
            copy = Path(scratch) / p.sandbox.name
            shutil.copytree(p.sandbox, copy, symlinks=True)
            where = str(copy)
        with _checked_copy(out, render(p, where, env, call_timeout)) as trial:
            p.excluded, p.unverified, p.probe_s = verify(trial)
    if len(p.excluded) == len(p.surfaces):
        reasons = "; ".join(f"{n}: {why}" for n, why in list(p.excluded.items())[:3])
        raise TargetError(
            f"all {len(p.surfaces)} candidate surfaces of {p.server!r} were excluded: no "
            "harmless call was accepted on any, so there is nothing `toolkit attack` could tell "
            f"apart from a failure ({reasons}). Fix the environment the server needs (backend, "
            "cluster, credentials) and re-run init, or use --keep-unverified to write them anyway"
        )


def _found_only_by_placeholder(p: Plan, env: dict[str, str]) -> bool:
    """The server reaches the sandbox only through ``{{sandbox}}`` and its working folder, so a
    trial contract whose sandbox is a copy points the whole server at the copy."""
    box = str(p.sandbox)
    return not any(box in a for a in p.argv) and not any(box in v for v in env.values())


def _call(session: Any, name: str, args: dict[str, Any], ends: float) -> str | None:
    from toolkit.core.mcp_transport import content_text

    left = min(10.0, ends - time.monotonic())
    if left <= 0:
        return None  # init's time for asking tools their arguments is spent
    try:
        msg = session.request("tools/call", {"name": name, "arguments": args}, deadline=left)
    except TargetError:
        return None
    result = msg.get("result")
    if isinstance(result, dict) and isinstance(result.get("content"), list):
        return "\n".join(content_text(c) for c in result["content"] if isinstance(c, dict))
    return json.dumps(msg.get("error") or msg)[:4000]


def _same(arg: str, box: Path) -> bool:
    try:
        return Path(arg).exists() and Path(arg).resolve() == box
    except OSError:
        return False
