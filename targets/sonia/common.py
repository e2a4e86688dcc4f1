"""What every reference service shares: HMAC auth, redacting logs, opaque errors, weaknesses.

Each hardening can be switched off, one at a time, with ``SONIA_WEAKEN=name[,name]``.
The attack library uses these switches as its positive controls; the default is hardened.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import os
import re
import sys
import threading
import time
import traceback
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

WEAKNESSES = frozenset(
    {
        "traversal",
        "prefix",
        "symlink",
        "shell",
        "smuggle",
        "env",
        "policy",
        "policy-client",
        "policy-reload",
        "auth",
        "replay",
        "skew",
        "rotation",
        "logs",
        "errors",
        "disclosure",
        "plaintext",
    }
)


def weakened(name: str) -> bool:
    """True when the hardening ``name`` is switched off for this process."""
    if name not in WEAKNESSES:
        raise ValueError(f"unknown weakness {name!r}")
    return name in {w.strip() for w in os.environ.get("SONIA_WEAKEN", "").split(",")}


# ------------------------------------------------------------------ logging

_SECRET_PATTERNS = [
    re.compile(r"(v1:[^:\s]+:\d+:[^:\s]+:)[0-9a-f]{64}"),
    re.compile(r"(?i)((?:token|secret|password|key|authorization)[\"']?\s*[:=]\s*[\"']?)[^\s\"',}]+"),
]


class Log:
    """Line logs to stderr; secrets and known secret values are redacted unless weakened."""

    def __init__(self, service: str):
        self.service = service
        self.secret_values = [v for k, v in os.environ.items()
                              if re.search(r"TOKEN|SECRET|PASSWORD|KEY", k) and len(v) >= 8]

    def redact(self, text: str) -> str:
        if weakened("logs"):
            return text
        for value in self.secret_values:
            text = text.replace(value, "[REDACTED]")
        for pat in _SECRET_PATTERNS:
            text = pat.sub(lambda m: m.group(1) + "[REDACTED]", text)
        return text

    def __call__(self, event: str, **fields: Any) -> None:
        line = json.dumps(
            {"ts": round(time.time(), 3), "svc": self.service, "event": event, **fields},
            default=str,
        )
        sys.stderr.write(self.redact(line) + "\n")
        sys.stderr.flush()


# ------------------------------------------------------------------ auth

class KeyRing:
    """Key file lines ``kid:hexsecret``; re-read when its mtime changes (rotation without
    restart).
    """

    def __init__(self, path: Path):
        self.path = path
        self._mtime: float | None = None
        self._keys: dict[str, bytes] = {}
        self._first: tuple[str, bytes] | None = None
        self._lock = threading.Lock()
        self.refresh(force=True)

    def refresh(self, force: bool = False) -> None:
        if weakened("rotation") and not force:
            return
        try:
            mtime = self.path.stat().st_mtime_ns
        except OSError:
            return
        if not force and mtime == self._mtime:
            return
        keys: dict[str, bytes] = {}
        first = None
        for line in self.path.read_text().splitlines():
            kid, sep, hexs = line.strip().partition(":")
            if sep and kid:
                try:
                    keys[kid] = bytes.fromhex(hexs)
                except ValueError:
                    continue
                first = first or (kid, keys[kid])
        with self._lock:
            self._keys, self._first, self._mtime = keys, first, mtime

    def get(self, kid: str) -> bytes | None:
        self.refresh()
        return self._keys.get(kid)

    def signing_key(self) -> tuple[str, bytes]:
        self.refresh()
        if self._first is None:
            raise RuntimeError("no signing key")
        return self._first


class Verifier:
    """The contract's hmac-sha256 scheme: one-time nonces, a two-sided skew window."""

    def __init__(self, keys: KeyRing, window_s: int = 300):
        self.keys = keys
        self.window_s = window_s
        self._nonces: dict[str, float] = {}
        self._lock = threading.Lock()

    def check(self, header: str | None, method: str, path_qs: str, body: bytes) -> str | None:
        """None when the request is authentic, else a short reason (never echoed to clients)."""
        if not header:
            return None if weakened("auth") else "missing token"
        parts = header.split(":")
        if len(parts) != 5 or parts[0] != "v1" or not parts[2].isdigit():
            return "malformed token"
        _, kid, ts_text, nonce, mac = parts
        key = self.keys.get(kid)
        if key is None:
            return "unknown key"
        ts = int(ts_text)
        now = time.time()
        if now - ts > self.window_s or (ts - now > self.window_s and not weakened("skew")):
            return "stale timestamp"
        msg = "\n".join(["v1", method, path_qs, ts_text, nonce, hashlib.sha256(body).hexdigest()])
        good = hmac.new(key, msg.encode(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(good, mac):
            return "bad signature"
        return self._spend(nonce, now)

    def _spend(self, nonce: str, now: float) -> str | None:
        if weakened("replay"):
            return None
        with self._lock:
            if len(self._nonces) > 10000:
                self._nonces = {n: t for n, t in self._nonces.items() if t > now}
            if nonce in self._nonces:
                return "replayed nonce"
            self._nonces[nonce] = now + 2 * self.window_s + 1
        return None


def sign(keys: KeyRing, method: str, path_qs: str, body: bytes) -> str:
    """Sign an outgoing service-to-service call."""
    kid, key = keys.signing_key()
    ts = str(int(time.time()))
    nonce = os.urandom(12).hex()
    msg = "\n".join(["v1", method, path_qs, ts, nonce, hashlib.sha256(body).hexdigest()])
    return f"v1:{kid}:{ts}:{nonce}:{hmac.new(key, msg.encode(), hashlib.sha256).hexdigest()}"


# ------------------------------------------------------------------ app

Handler = Callable[[Request], Awaitable[Response]]


class Service:
    """A reference service: routes behind auth, opaque errors, redacting logs."""

    def __init__(self, name: str):
        self.name = name
        self.log = Log(name)
        key_file = Path(os.environ.get("SONIA_KEY_FILE", "state/keys/service.keys"))
        self.keys = KeyRing(key_file)
        self.verifier = Verifier(self.keys, int(os.environ.get("SONIA_AUTH_WINDOW_S", "300")))
        self.routes: list[Route] = [Route("/healthz", self._health, methods=["GET"])]
        self.client = httpx.AsyncClient(trust_env=False, timeout=30.0)

    async def _health(self, request: Request) -> Response:
        return JSONResponse({"status": "ok", "service": self.name})

    def route(self, path: str, methods: list[str]) -> Callable[[Handler], Handler]:
        def wrap(fn: Handler) -> Handler:
            async def guarded(request: Request) -> Response:
                return await self._guard(fn, request)
            self.routes.append(Route(path, guarded, methods=methods))
            return fn
        return wrap

    async def _guard(self, fn: Handler, request: Request) -> Response:
        body = await request.body()
        raw_path = request.scope.get("raw_path") or request.url.path.encode()
        path_qs = raw_path.decode("latin-1")
        if request.url.query:
            path_qs += "?" + request.scope["query_string"].decode("latin-1")
        reason = self.verifier.check(
            request.headers.get("x-service-token"), request.method, path_qs, body
        )
        if weakened("logs"):  # verbose logging: full headers and body, unredacted
            self.log("request", method=request.method, path=path_qs, headers=dict(request.headers),
                     body=body[:2000].decode("utf-8", "replace"))
        else:
            self.log("request", method=request.method, path=path_qs[:200], bytes=len(body))
        if reason:
            self.log("auth.denied", reason=reason, path=path_qs)
            return JSONResponse({"error": "unauthorized"}, status_code=401)
        try:
            return await fn(request)
        except ClientError as exc:
            if weakened("errors"):  # "debug mode": every error carries the trace and secrets
                return self.debug_error(exc.status)
            return JSONResponse({"error": exc.message}, status_code=exc.status)
        except Exception as exc:  # noqa: BLE001 - error contract: log it, tell the client nothing
            return self.internal_error(exc)

    def internal_error(self, exc: BaseException) -> Response:
        # not secret-shaped: scanners stay quiet
        ref = f"err-{int.from_bytes(os.urandom(5), 'big'):013d}"
        self.log("error", ref=ref, kind=type(exc).__name__, detail=str(exc))
        if weakened("errors"):
            return self.debug_error(500)
        return JSONResponse({"error": "internal error", "ref": ref}, status_code=500)

    def debug_error(self, status: int) -> Response:
        env = {k: v for k, v in os.environ.items() if "TOKEN" in k or "SECRET" in k}
        return Response(f"Error\n{traceback.format_exc()}\nenv={env}\n", status_code=status)

    async def call(self, base: str, method: str, path: str, payload: Any) -> httpx.Response:
        """A signed service-to-service call."""
        body = json.dumps(payload).encode()
        headers = {"content-type": "application/json",
                   "x-service-token": sign(self.keys, method, path, body)}
        return await self.client.request(method, base + path, content=body, headers=headers)

    def app(self) -> Starlette:
        async def not_found(request: Request, exc: Exception) -> Response:
            return JSONResponse({"error": "not found"}, status_code=404)

        async def server_error(request: Request, exc: Exception) -> Response:
            return self.internal_error(exc)

        return Starlette(routes=self.routes, exception_handlers={404: not_found, 405: not_found,
                                                                 500: server_error})

    def serve(self, argv: list[str] | None = None) -> None:
        parser = argparse.ArgumentParser(prog=f"sonia-{self.name}")
        parser.add_argument("--port", type=int, required=True)
        parser.add_argument("--host", default="127.0.0.1")
        args = parser.parse_args(argv)
        self.log(
            "start", port=args.port, pid=os.getpid(), weaken=os.environ.get("SONIA_WEAKEN", "")
        )
        uvicorn.run(
            self.app(),
            host=args.host,
            port=args.port,
            log_level="warning",
            access_log=False,
            lifespan="off",
            server_header=False,
            date_header=False,
        )


class ClientError(Exception):
    """A request the service refuses, with a message safe to show the client."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.message = message
        self.status = status


async def json_body(request: Request) -> dict[str, Any]:
    try:
        data = json.loads(await request.body() or b"{}")
    except ValueError:
        raise ClientError("malformed JSON") from None
    if not isinstance(data, dict):
        raise ClientError("expected a JSON object")
    return data


def peer(name: str, default_port: int) -> str:
    """Base URL of another service, from SONIA_<NAME>_URL."""
    env = "SONIA_" + name.upper().replace("-", "_") + "_URL"
    return os.environ.get(env, f"http://127.0.0.1:{default_port}")
