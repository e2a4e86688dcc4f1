"""MCP over stdio: a lenient session layer for attacking tool servers.

The official SDK's client validates every server message with pydantic, and refuses to
call a tool whose listing does not validate (seen with SDK 2.3.0 against older releases
of a popular npm server whose ``inputSchema`` lacks ``"type"``). A security tool has to
talk to such servers, and to hostile ones: a server that never answers, prints garbage
on stdout, or exits mid-call. So this layer speaks the same newline-delimited JSON-RPC
(``initialize``, ``notifications/initialized``, ``tools/list``, ``tools/call``) with
only the checks an attacker's client needs, a deadline on every call, and a clear
report of what could not be done. The SDK is still used where it fits: our test servers
are written with it, and its protocol version is preferred when it is installed.
"""

from __future__ import annotations

import collections
import json
import os
import queue
import shutil
import subprocess  # nosec B404
import threading
import time
from typing import IO, Any

from toolkit.core import platform
from toolkit.core.contract import Contract, Surface, expand
from toolkit.core.errors import TargetError
from toolkit.core.transport import Prepared, Reply

DEADLINE_S = 15.0
MAX_LINE = 4 << 20


def content_text(item: dict[str, Any]) -> str:
    """What one content item of a tool result says, as text: a text item's text, an embedded
    resource's text or decoded blob, an image's or audio's decoded data, a link's uri.
    """
    found = item.get("resource")
    res: dict[str, Any] = found if isinstance(found, dict) else {}
    parts = [item.get("text"), res.get("text"), res.get("uri"), item.get("uri"),
             _b64(item.get("data")), _b64(res.get("blob"))]
    return "\n".join(p for p in parts if isinstance(p, str) and p)


def _b64(value: Any) -> str | None:
    import base64
    import binascii

    if not isinstance(value, str):
        return None
    try:
        return base64.b64decode(value[:MAX_LINE], validate=False).decode("utf-8", "replace")
    except (binascii.Error, ValueError):
        return None


def protocol_version() -> str:
    try:
        from mcp_types import LATEST_PROTOCOL_VERSION

        return str(LATEST_PROTOCOL_VERSION)
    except ImportError:
        return "2025-06-18"


class StdioSession:
    """One MCP server process and its JSON-RPC stream."""

    def __init__(
        self, argv: list[str], env: dict[str, str], cwd: str | None, deadline: float = DEADLINE_S
    ):
        exe = argv[0] if os.sep in argv[0] else shutil.which(argv[0])
        if not exe:
            raise TargetError(f"MCP server command not found: {argv[0]!r}")
        self.deadline = deadline
        self.garbage: list[str] = []
        self._replies: dict[int, queue.Queue[dict[str, Any]]] = {}
        self._next = 0
        self._lock = threading.Lock()
        if cwd is not None and not os.path.isdir(cwd):
            raise TargetError(
                f"MCP server working folder {cwd!r} is not a folder; fix the surface's cwd"
            )
        self.stderr: collections.deque[str] = collections.deque(maxlen=20)
        try:
            self.proc = subprocess.Popen(  # nosec B603 - argv from the contract, no shell
                [exe, *argv[1:]],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                env=env,
                cwd=cwd,
                **platform.spawn_kwargs(),
            )
        except OSError as exc:
            raise TargetError(f"cannot start MCP server {argv[0]!r}: {exc.strerror}") from None
        threading.Thread(target=self._read, args=(self.proc.stdout,), daemon=True).start()
        threading.Thread(target=self._drain, args=(self.proc.stderr,), daemon=True).start()

    def _drain(self, stream: IO[bytes] | None) -> None:
        """Keep the last lines of stderr: they say why a server refused to start or died."""
        assert stream is not None  # nosec B101
        for raw in iter(lambda: stream.readline(MAX_LINE), b""):
            line = raw.decode("utf-8", "replace").strip()
            if line:
                self.stderr.append(line[:300])

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None

    def _read(self, stream: IO[bytes] | None) -> None:
        assert stream is not None  # nosec B101
        for raw in iter(lambda: stream.readline(MAX_LINE), b""):
            try:
                msg = json.loads(raw)
            except ValueError:
                self.garbage.append(raw[:200].decode("utf-8", "replace"))
                continue
            if (
                isinstance(msg, dict)
                and isinstance(msg.get("id"), int)
                and ("result" in msg or "error" in msg)
            ):
                box = self._replies.get(msg["id"])
                if box is not None:
                    box.put(msg)

    def request(
        self, method: str, params: dict[str, Any], deadline: float | None = None
    ) -> dict[str, Any]:
        with self._lock:
            self._next += 1
            rid = self._next
            self._replies[rid] = queue.Queue()
        self._write({"jsonrpc": "2.0", "id": rid, "method": method, "params": params})
        limit = time.monotonic() + (deadline or self.deadline)
        try:
            while True:
                try:
                    return self._replies[rid].get(timeout=0.05)
                except queue.Empty:
                    pass
                code = self.proc.poll()
                if code is not None:
                    raise TargetError(
                        f"MCP server exited (code {code}) during {method}{self._garbage_hint()}"
                    )
                if time.monotonic() > limit:
                    raise TargetError(f"MCP server gave no answer to {method} within "
                                      f"{deadline or self.deadline:g} s{self._garbage_hint()}")
        finally:
            self._replies.pop(rid, None)

    def notify(self, method: str, params: dict[str, Any] | None = None) -> None:
        self._write({"jsonrpc": "2.0", "method": method, **({"params": params} if params else {})})

    def _write(self, msg: dict[str, Any]) -> None:
        assert self.proc.stdin is not None  # nosec B101
        try:
            self.proc.stdin.write(json.dumps(msg).encode() + b"\n")
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError):
            raise TargetError(
                f"MCP server closed its input (exit code {self.proc.poll()})"
            ) from None

    def _garbage_hint(self) -> str:
        hint = ""
        if self.garbage:
            hint = (f"; it wrote {len(self.garbage)} non-JSON line(s) to stdout, "
                    f"first: {self.garbage[0][:80]!r}")
        if self.stderr:
            time.sleep(0.05)  # let the drain thread catch the last words of a dying server
            hint += f"; its stderr ends: {' | '.join(list(self.stderr)[-3:])[:400]!r}"
        return hint

    def initialize(self) -> dict[str, Any]:
        reply = self.request(
            "initialize",
            {
                "protocolVersion": protocol_version(),
                "capabilities": {},
                "clientInfo": {"name": "release-gate-toolkit", "version": "0"},
            },
        )
        if "error" in reply:
            raise TargetError(f"MCP initialize refused: {reply['error']}")
        self.notify("notifications/initialized")
        return dict(reply.get("result") or {})

    def tools(self) -> list[dict[str, Any]]:
        return [
            t for t in self.raw_tools() if isinstance(t, dict) and isinstance(t.get("name"), str)
        ]

    def raw_tools(self) -> list[Any]:
        """The ``tools`` array as listed (following ``nextCursor``), unvalidated."""
        out: list[Any] = []
        params: dict[str, Any] = {}
        for _ in range(50):
            reply = self.request("tools/list", params)
            if "error" in reply:
                raise TargetError(f"MCP tools/list refused: {reply['error']}")
            result = reply.get("result")
            if not isinstance(result, dict) or not isinstance(result.get("tools"), list):
                raise TargetError(
                    f"MCP tools/list answer has no tools array: {json.dumps(reply)[:200]}"
                )
            out += result["tools"]
            cursor = result.get("nextCursor")
            if not isinstance(cursor, str) or not cursor:
                break
            params = {"cursor": cursor}
        return out

    def close(self) -> None:
        try:
            if self.proc.stdin:
                self.proc.stdin.close()
        except OSError:
            pass
        try:
            self.proc.wait(timeout=2)
        except subprocess.TimeoutExpired:
            platform.request_stop(self.proc.pid)
            try:
                self.proc.wait(timeout=3)
            except subprocess.TimeoutExpired:
                platform.force_kill([self.proc.pid], group_leader=self.proc.pid)
                self.proc.wait(timeout=5)


def server_cwd(contract: Contract, surface: Surface, variables: dict[str, Any]) -> str:
    """The server's working folder: the contract's ``cwd`` (placeholders expanded), else the
    sandbox.
    """
    if "cwd" in surface.raw:
        return str(contract.resolve(str(expand(surface.raw["cwd"], variables))))
    if surface.sandbox is not None:
        surface.sandbox.mkdir(parents=True, exist_ok=True)
        return str(surface.sandbox)
    return str(contract.dir)


class McpServer:
    """A started, initialized server and its listing; shared by the surfaces that start it
    alike.
    """

    def __init__(self, argv: list[str], env: dict[str, str], cwd: str | None, timeout: float):
        # starting (an interpreter, npx) is not a tool call: a short per-call timeout must not
        # cut the server's start-up short
        self.session = StdioSession(argv, env, cwd, max(timeout, DEADLINE_S))
        self.users = 0
        try:
            self.info = self.session.initialize()
            self.listing = self.session.tools()
        except TargetError:
            self.session.close()
            raise
        self.session.deadline = timeout


ServerKey = tuple[str, ...]


class McpDeliverer:
    """A tool call as a surface: ``tool`` and ``arguments`` may hold {{payload}}.

    ``servers`` (optional) shares one server process among the surfaces with the same
    command line, environment and working folder: a server with 18 tools was otherwise
    started 18 times. Share only when surfaces are attacked one at a time (a crash is then
    still pinned on the payload that caused it); a restart replaces the process for all.
    """

    auth = False
    _last: McpServer  # set by _open before any use

    def __init__(self, contract: Contract, surface: Surface, variables: dict[str, Any],
                 extra_env: dict[str, str] | None = None,
                 servers: dict[ServerKey, McpServer] | None = None):
        extra_env = extra_env or {}
        self.surface = surface
        self.vars = variables
        self.argv = [str(a) for a in expand(surface.raw["command"], variables)]
        self.env = {**os.environ, **expand(contract.env, variables),
                    **expand(surface.raw.get("env", {}), variables), **extra_env}
        self.cwd = server_cwd(contract, surface, variables)
        self.timeout = float(surface.raw.get("timeout_s", DEADLINE_S))
        self.endpoint = ("mcp-stdio", " ".join(self.argv), surface.name)
        self.sent = 0
        self.restarts = 0
        self.closed = False
        self.servers: dict[ServerKey, McpServer] = {} if servers is None else servers
        self.key: ServerKey = (json.dumps(self.argv), json.dumps(sorted(self.env.items())),
                               str(self.cwd), repr(self.timeout))
        self._open()

    @property
    def server(self) -> McpServer:
        """The shared server now (a restart by another surface included); after the last
        surface closed it, the stopped one.
        """
        server = self.servers.get(self.key)
        if server is not None:
            self._last = server
        return self._last

    @property
    def session(self) -> StdioSession:
        return self.server.session

    def _open(self) -> None:
        server = self.servers.get(self.key)
        if server is None or not server.session.alive:
            server = self._start(server.users if server else 0)
        self._last = server
        server.users += 1
        self.info, self.listing = server.info, server.listing
        self.tool_names = [t["name"] for t in self.listing]
        tool = str(self.surface.raw["tool"])
        if "{{" not in tool and tool not in self.tool_names:
            self.close()
            raise TargetError(
                f"MCP server has no tool {tool!r}; "
                f"it offers: {', '.join(self.tool_names) or 'none'}"
            )

    def _start(self, users: int) -> McpServer:
        """Start the server (closing a dead or wedged one first); if it does not come up, the
        closed one stays in place, so every surface sharing it sees a dead target.
        """
        old = self.servers.get(self.key)
        if old is not None:
            old.session.close()
        server = McpServer(self.argv, self.env, self.cwd, self.timeout)
        server.users = users
        self.servers[self.key] = self._last = server
        return server

    @property
    def alive(self) -> bool:
        return self.session.alive

    def restart(self) -> None:
        """Replace a dead or wedged server process with a fresh one (same argv, env and cwd)."""
        self.restarts += 1
        self._start(self.server.users)

    def prepare(self, payload: Any) -> Prepared:
        v = {**self.vars, "payload": payload}
        call = {
            "name": expand(self.surface.raw["tool"], v),
            "arguments": expand(self.surface.raw.get("arguments", {}), v),
        }
        body = json.dumps(call).encode()
        return Prepared("tools/call", "mcp-stdio", b"tools/call", {}, body, "tools/call")

    def send(self, payload: Any, *, token: Any = True, prepared: Prepared | None = None,
             timeout: float | None = None) -> Reply:
        p = prepared or self.prepare(payload)
        self.sent += 1
        request = f"tools/call {p.body.decode('utf-8', 'replace')}"
        t0 = time.monotonic()
        params = self._params(p.body)
        try:
            msg = self.session.request("tools/call", params, deadline=timeout or self.timeout)
        except TargetError as exc:
            return Reply(None, b"", time.monotonic() - t0, str(exc), request)
        elapsed = time.monotonic() - t0
        if "error" in msg:
            return Reply(400, json.dumps(msg["error"]).encode(), elapsed, None, request)
        got = msg.get("result")
        result: dict[str, Any] = got if isinstance(got, dict) else {}
        content = result.get("content")
        texts = [content_text(c) for c in (content if isinstance(content, list) else [])
                 if isinstance(c, dict)]
        body = json.dumps({"content": texts, "structured": result.get("structuredContent")},
                          ensure_ascii=False).encode("utf-8", "replace")
        return Reply(400 if result.get("isError") else 200, body, elapsed, None, request)

    def _params(self, body: bytes) -> dict[str, Any]:
        """A tools/call params object; a malformed body becomes the tool's (malformed) arguments."""
        try:
            params = json.loads(body)
        except ValueError:
            params = body.decode("utf-8", "replace")
        if isinstance(params, dict) and isinstance(params.get("name"), str):
            return params
        return {
            "name": str(expand(self.surface.raw["tool"], {**self.vars, "payload": ""})),
            "arguments": params,
        }

    def responsive(self) -> bool:
        """Does the server still answer a ping (any reply, even an error, counts)?"""
        if not self.session.alive:
            return False
        try:
            self.session.request("ping", {}, deadline=min(5.0, self.timeout))
        except TargetError:
            return False
        return True

    def close(self) -> None:
        """Stop the server when its last surface is done with it (idempotent)."""
        server = self.servers.get(self.key)
        if server is None or self.closed:
            return
        self.closed = True
        server.users -= 1
        if server.users <= 0:
            self.servers.pop(self.key, None)
            server.session.close()
