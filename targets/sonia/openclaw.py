"""openclaw: the tool executor. File, shell and browser tools under a server-side policy.

Hardened behaviour (each line names the SONIA_WEAKEN switch that turns it off):

* file tools resolve the path, then check the opened descriptor's real path is inside the
  sandbox component-wise (``traversal``: no check; ``prefix``: string-prefix check;
  ``symlink``: lexical check that follows links on open);
* ``shell.exec`` runs an argv, never a shell, argv[0] exactly in the policy's allowlist,
  only known options, path arguments confined (``shell``: joins argv into a shell line;
  ``smuggle``: honours ``|`` and ``>`` inside argv, checking only the first command);
* child processes get an allowlisted environment (``env``: inherits everything and takes
  any client variable); responses never echo it (``disclosure``: replies echo the server's
  environment);
* the policy is read server-side from a file, hot-reloaded on change, with exact tool
  names and no client overrides (``policy``, ``policy-client``, ``policy-reload``).
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import os
import shutil
import subprocess  # nosec B404
import tomllib
import unicodedata
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from targets.sonia.common import ClientError, Service, peer, weakened

svc = Service("openclaw")
SANDBOX = Path(os.environ.get("OPENCLAW_SANDBOX", "state/sandbox")).absolute()
POLICY_FILE = Path(os.environ.get("SONIA_POLICY_FILE", "state/config/policy.toml"))
DEFAULT_POLICY = Path(__file__).with_name("config") / "policy.toml"
ALL_TOOLS = ("file.read", "file.write", "file.list", "shell.exec", "browser.fetch")
SAFE_PATH = "/usr/bin:/bin"
CLIENT_ENV_ALLOWED = {"TZ", "LANG", "LC_ALL"}
COMMAND_OPTIONS = {"ls": {"-l", "-a", "-1", "-la", "-al"}, "cat": {"-n"}, "echo": None}
MAX_OUT = 64 * 1024


class Policy:
    def __init__(self) -> None:
        self.allowed_tools: list[str] = []
        self.allowed_commands: list[str] = []
        self._mtime: int | None = None
        if not POLICY_FILE.exists():
            POLICY_FILE.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(DEFAULT_POLICY, POLICY_FILE)
        self.load(force=True)

    def load(self, force: bool = False) -> None:
        if weakened("policy-reload") and not force:
            return
        try:
            mtime = POLICY_FILE.stat().st_mtime_ns
            if mtime == self._mtime and not force:
                return
            data = tomllib.loads(POLICY_FILE.read_text())
        except (OSError, tomllib.TOMLDecodeError) as exc:
            svc.log("policy.unreadable", error=str(exc))  # keep the last good policy
            return
        self.allowed_tools = [str(t) for t in data.get("allowed_tools", [])]
        self.allowed_commands = [str(c) for c in data.get("allowed_commands", [])]
        self._mtime = mtime
        svc.log("policy.loaded", tools=self.allowed_tools, commands=self.allowed_commands)


policy = Policy()


# ------------------------------------------------------------------ paths

def _inside(real: str, root: str) -> bool:
    return os.path.commonpath([real, root]) == root


def confine(raw: Any) -> str:
    """The real path of ``raw`` inside the sandbox, or a ClientError."""
    if not isinstance(raw, str) or not raw or "\x00" in raw:
        raise ClientError("invalid path")
    root = os.path.realpath(SANDBOX)
    joined = os.path.join(root, raw)
    if weakened("traversal"):
        return joined
    if weakened("symlink"):
        lexical = os.path.normpath(joined)
        if not _inside(lexical, root):
            raise ClientError("path outside sandbox", 403)
        return lexical
    real = os.path.realpath(joined)
    ok = real.startswith(root) if weakened("prefix") else _inside(real, root)
    if not ok:
        raise ClientError("path outside sandbox", 403)
    return real


def _check_fd(fd: int) -> None:
    """Re-check the opened file: a link swapped in after confine() is caught here."""
    if weakened("traversal") or weakened("symlink") or weakened("prefix"):
        return
    real = os.path.realpath(f"/proc/self/fd/{fd}") if os.path.exists("/proc/self/fd") else None
    if real is not None and not _inside(real, os.path.realpath(SANDBOX)):
        os.close(fd)
        raise ClientError("path outside sandbox", 403)


def file_read(args: dict[str, Any]) -> dict[str, Any]:
    path = confine(args.get("path"))
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        raise ClientError("not found", 404) from None
    except OSError:
        raise ClientError("cannot read", 400) from None
    _check_fd(fd)
    with os.fdopen(fd, "rb") as fh:
        try:
            data = fh.read(MAX_OUT)
        except IsADirectoryError:
            raise ClientError("is a folder; use file.list", 400) from None
    return {"content": data.decode("utf-8", "replace")}


def file_write(args: dict[str, Any]) -> dict[str, Any]:
    path = confine(args.get("path"))
    content = args.get("content", "")
    if not isinstance(content, str):
        raise ClientError("content must be a string")
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC
    if not (weakened("traversal") or weakened("symlink") or weakened("prefix")):
        flags |= os.O_NOFOLLOW
    try:
        fd = os.open(path, flags, 0o644)
    except OSError:
        raise ClientError("cannot write", 400) from None
    _check_fd(fd)
    with os.fdopen(fd, "wb") as fh:
        fh.write(content.encode())
    return {"written": len(content)}


def file_list(args: dict[str, Any]) -> dict[str, Any]:
    path = confine(args.get("path", "."))
    try:
        entries = sorted(os.listdir(path))
    except OSError:
        raise ClientError("cannot list", 400) from None
    # a name that is not UTF-8 is shown with \x escapes instead of failing the whole listing
    return {"entries": [os.fsencode(e).decode("utf-8", "backslashreplace") for e in entries]}


# ------------------------------------------------------------------ shell

def _child_env(client_env: Any) -> dict[str, str]:
    if client_env is None:
        client_env = {}
    if not isinstance(client_env, dict):
        raise ClientError("env must be an object")
    if weakened("env"):
        return {**os.environ, **{str(k): str(v) for k, v in client_env.items()}}
    env = {"PATH": SAFE_PATH, "HOME": str(SANDBOX), "LANG": "C.UTF-8"}
    for key, value in client_env.items():
        if (
            key not in CLIENT_ENV_ALLOWED
            or not isinstance(value, str)
            or not value.replace("_", "")
            .replace(".", "")
            .replace("-", "")
            .replace("/", "")
            .isalnum()
        ):
            raise ClientError(f"environment variable not allowed: {str(key)[:40]}", 403)
        env[key] = value
    return env


def _check_argv(argv: list[str]) -> None:
    cmd = argv[0]
    if cmd not in policy.allowed_commands or "/" in cmd:
        raise ClientError("command not allowed", 403)
    options = COMMAND_OPTIONS.get(cmd, set())
    for arg in argv[1:]:
        if options is None:
            continue  # echo: arguments are inert text
        if arg.startswith("-"):
            if arg not in options:
                raise ClientError("option not allowed", 403)
        else:
            confine(arg)


def _run(argv: list[str], env: dict[str, str]) -> dict[str, Any]:
    if weakened("shell"):
        line = " ".join(argv)
        proc = subprocess.run(line, shell=True, cwd=SANDBOX, env=env, capture_output=True,  # nosec B602
                              timeout=10, check=False)
    elif weakened("smuggle") and ("|" in argv or ">" in argv):
        return _run_pipeline(argv, env)
    else:
        exe = shutil.which(argv[0], path=env.get("PATH", SAFE_PATH))
        if exe is None:
            raise ClientError("command not found", 404)
        proc = subprocess.run([exe, *argv[1:]], cwd=SANDBOX, env=env, capture_output=True,  # nosec B603
                              timeout=10, check=False)
    return {
        "exit_code": proc.returncode,
        "stdout": proc.stdout[:MAX_OUT].decode("utf-8", "replace"),
        "stderr": proc.stderr[:MAX_OUT].decode("utf-8", "replace"),
    }


def _run_pipeline(argv: list[str], env: dict[str, str]) -> dict[str, Any]:
    """The weak 'helpful' executor: pipes and a trailing redirection inside argv."""
    target = None
    if ">" in argv:
        i = argv.index(">")
        argv, target = argv[:i], (argv[i + 1] if i + 1 < len(argv) else None)
    segments: list[list[str]] = [[]]
    for arg in argv:
        if arg == "|":
            segments.append([])
        else:
            segments[-1].append(arg)
    data = b""
    code = 0
    for seg in segments:
        if not seg:
            continue
        proc = subprocess.run(seg, input=data, cwd=SANDBOX, env=env, capture_output=True,  # nosec B603
                              timeout=10, check=False)
        data, code = proc.stdout, proc.returncode
    if target:
        Path(SANDBOX, target).write_bytes(data)
    return {"exit_code": code, "stdout": data[:MAX_OUT].decode("utf-8", "replace"), "stderr": ""}


def shell_exec(args: dict[str, Any]) -> dict[str, Any]:
    argv = args.get("argv")
    if not isinstance(argv, list) or not argv or not all(isinstance(a, str) for a in argv):
        raise ClientError("argv must be a non-empty list of strings")
    if any("\x00" in a for a in argv):
        raise ClientError("invalid argument")
    _check_argv(argv)
    env = _child_env(args.get("env"))
    try:
        result = _run(argv, env)
    except subprocess.TimeoutExpired:
        raise ClientError("command timed out", 504) from None
    if weakened("disclosure"):
        result["debug_env"] = dict(os.environ)
    return result


# ------------------------------------------------------------------ browser

def browser_fetch(args: dict[str, Any]) -> dict[str, Any]:
    import httpx

    url = args.get("url")
    if not isinstance(url, str):
        raise ClientError("url must be a string")
    parts = urlsplit(url)
    try:
        loopback = (
            parts.hostname == "localhost" or ipaddress.ip_address(parts.hostname or "").is_loopback
        )
    except ValueError:
        loopback = False
    if parts.scheme not in ("http", "https") or not loopback:
        raise ClientError("only loopback URLs may be fetched", 403)
    try:
        resp = httpx.get(url, timeout=5.0, follow_redirects=False, trust_env=False)
    except httpx.HTTPError:
        raise ClientError("fetch failed", 502) from None
    return {"status": resp.status_code, "body": resp.text[:2048]}


TOOLS = {"file.read": file_read, "file.write": file_write, "file.list": file_list,
         "shell.exec": shell_exec, "browser.fetch": browser_fetch}


def _normalise(name: str) -> str:
    text = unicodedata.normalize("NFKC", name).casefold()
    text = "".join(ch for ch in text if unicodedata.category(ch)[0] != "C").strip().strip(" ./")
    return text.replace("/", ".").replace("\\", ".").replace("_", ".")


def _reject_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    keys = [k for k, _ in pairs]
    if len(keys) != len(set(keys)):
        raise ClientError("duplicate JSON keys")
    return dict(pairs)


def authorise(body: dict[str, Any]) -> tuple[str, Any]:
    """(canonical tool name, handler) if the server-side policy allows the call."""
    policy.load()
    tool = body.get("tool")
    if not isinstance(tool, str):
        raise ClientError("tool must be a string")
    allowed = list(policy.allowed_tools)
    if weakened("policy-client") and isinstance(body.get("policy"), dict):
        allowed += [str(t) for t in body["policy"].get("allowed_tools", [])]
    if weakened("policy"):
        denied = set(ALL_TOOLS) - set(allowed)
        name = _normalise(tool)
        if tool in denied or name not in TOOLS:
            raise ClientError("tool denied by policy", 403)
        return name, TOOLS[name]
    if tool not in allowed or tool not in TOOLS:
        raise ClientError("tool denied by policy", 403)
    return tool, TOOLS[tool]


@svc.route("/v1/action", methods=["POST"])
async def action(request: Request) -> Response:
    try:
        body = json.loads(await request.body() or b"{}", object_pairs_hook=_reject_duplicates)
    except ValueError:
        raise ClientError("malformed JSON") from None
    if not isinstance(body, dict):
        raise ClientError("expected a JSON object")
    name, handler = authorise(body)
    args = body.get("args", {})
    if not isinstance(args, dict):
        raise ClientError("args must be an object")
    try:
        result = await asyncio.to_thread(handler, args)
    except OSError:  # a filesystem race or oddity is the client's problem, never a 500 with details
        raise ClientError("file operation failed", 400) from None
    await _audit(name)
    return JSONResponse({"tool": name, "result": result})


async def _audit(tool: str) -> None:
    try:
        await svc.call(
            peer("audit-ledger", 7050), "POST", "/v1/audit", {"event": "tool", "tool": tool}
        )
    except Exception as exc:  # noqa: BLE001 - best-effort audit; the failure is logged
        svc.log("audit.unreachable", error=type(exc).__name__)


def cache_credentials() -> None:
    """Hardened: the upstream token lives only in memory. Weakened (``plaintext``): cached on
    disk.
    """
    if weakened("plaintext"):
        cache = POLICY_FILE.parent / "credentials.cache"
        cache.write_text(json.dumps({"openclaw_token": os.environ.get("OPENCLAW_TOKEN", "")}))


if __name__ == "__main__":
    SANDBOX.mkdir(parents=True, exist_ok=True)
    cache_credentials()
    svc.serve()
