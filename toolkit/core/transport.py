"""Deliver a payload to a surface and bring back what happened.

HTTP goes through httpx with the request target set byte-for-byte (no client-side
normalisation of dot segments or percent-encoding), a total deadline per request and a
cap on the response size. Only bytes HTTP/1.1 cannot carry on the wire (non-ASCII,
controls, space) are percent-encoded in the path; JSON bodies carry payloads unchanged.
"""

from __future__ import annotations

import ipaddress
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import quote, urlencode, urljoin, urlsplit

import httpx

from toolkit.core.auth import Signer
from toolkit.core.contract import Contract, Surface, expand
from toolkit.core.errors import ContractError, SafetyError

MAX_BODY = 1 << 20
DEADLINE_S = 15.0
MAX_HOPS = 5
_WIRE_SAFE = "".join(chr(c) for c in range(0x21, 0x7F))


@dataclass
class Reply:
    status: int | None
    body: bytes
    elapsed: float
    error: str | None = None
    request: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    redirects: list[str] = field(default_factory=list)  # "302 /a -> /b/" for each hop followed
    hop_headers: list[dict[str, str]] = field(default_factory=list)  # each followed hop's headers

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300

    @property
    def redirect(self) -> bool:
        return self.status is not None and 300 <= self.status < 400

    def transcript(self) -> str:
        head = f"HTTP {self.status}" if self.status is not None else f"ERROR {self.error}"
        hops = "".join(
            f"redirect followed: {hop}\n"
            + "".join(f"  {k}: {v}\n" for k, v in (self.hop_headers[i:i + 1] or [{}])[0].items())
            for i, hop in enumerate(self.redirects)
        )
        hdrs = "".join(f"{k}: {v}\n" for k, v in self.headers.items())
        return (
            f"{self.request}\n\n--- response ({self.elapsed * 1000:.1f} ms) "
            f"---\n{hops}{head}\n{hdrs}\n"
            f"{self.text[:8000]}"
        )


@dataclass
class Prepared:
    method: str
    url: str
    target: bytes
    headers: dict[str, str]
    body: bytes
    sign_path: str


def check_host(url: str, allow_remote: set[str]) -> None:
    """Refuse anything but loopback unless the user named the host with --allow-remote."""
    host = urlsplit(url).hostname or ""
    if host in allow_remote or host == "localhost":
        return
    try:
        if ipaddress.ip_address(host).is_loopback:
            return
    except ValueError:
        pass
    raise SafetyError(f"refusing to attack {host!r}: only loopback targets are allowed; "
                      f"pass --allow-remote {host} if you own it and mean it")


def same_origin_target(base: str, current: str, location: str) -> str | None:
    """The request target of a redirect, or None when it leaves the origin (never followed)."""
    if not location:
        return None
    here = urlsplit(base + current)
    there = urlsplit(urljoin(base + current, location))
    if (there.scheme, there.netloc) != (here.scheme, here.netloc):
        return None
    return wire_path(there.path or "/") + (f"?{there.query}" if there.query else "")


def wire_path(raw: str) -> str:
    return quote(raw.encode("utf-8", "surrogatepass"), safe=_WIRE_SAFE)


_DOT = {".", "%2e"}
_DOTDOT = {"..", ".%2e", "%2e.", "%2e%2e"}


def plain_forms(target: bytes) -> list[bytes]:
    """Plain request targets a normalizing server may have turned ``target`` into, most
    likely first: its path's dot segments removed as a browser or router does (RFC 3986
    remove_dot_segments, WHATWG spellings: ``%2e`` is a dot, ``\\`` a slash), then the same
    after percent-decoding (a server that decodes before it normalizes). Only results that
    are plain (no dot segment, empty segment, NUL, backslash or percent sign left in any
    decoding) and differ from ``target`` are kept; the query stays as it was.
    """
    text = target.decode("latin-1")
    if not text.startswith("/"):
        return []
    cut = min((i for i in (text.find("?"), text.find("#")) if i >= 0), default=len(text))
    path, rest = text[:cut], text[cut:]
    out: list[bytes] = []
    for form in (_remove_dots(path), _remove_dots(_decoded(path))):
        if form is not None and form != path and _plain(form):
            wire = (wire_path(form) + rest).encode("latin-1")
            if wire not in out and wire != target:
                out.append(wire)
    return out


def dot_normalized(target: bytes) -> bytes | None:
    """The first of `plain_forms`, or None."""
    forms = plain_forms(target)
    return forms[0] if forms else None


def _decoded(path: str) -> str:
    from urllib.parse import unquote_to_bytes

    raw = path.encode("utf-8", "surrogatepass")
    for _ in range(3):
        raw = unquote_to_bytes(raw)
    return raw.decode("utf-8", "replace")


def _remove_dots(path: str) -> str:
    out: list[str] = []
    segments = path.replace("\\", "/").split("/")[1:]
    for i, seg in enumerate(segments):
        low = seg.lower()
        if low in _DOTDOT:
            if out:
                out.pop()
        elif low not in _DOT:
            out.append(seg)
            continue
        if i == len(segments) - 1:
            out.append("")
    return "/" + "/".join(out)


def _plain(path: str) -> bool:
    """No separator, dot, empty segment or NUL left in any spelling a server might decode."""
    text = _decoded(path)
    if any(c in text for c in "\\\x00%?#\ufffd"):
        return False
    segments = text.split("/")[1:]
    if any(seg == "" for seg in segments[:-1]):
        return False  # '//etc/x' is an absolute path to a server that strips one slash
    return not any(seg in (".", "..") for seg in segments)


class Deliverer(Protocol):
    """How an attack reaches a surface: HTTP (`HttpDeliverer`) or an MCP tool call (`McpDeliverer`).

    A new transport implements these members; attacks see nothing else of it.
    """

    surface: Surface
    sent: int

    @property
    def auth(self) -> bool:
        """Does this surface take the contract's credentials?"""
        ...

    @property
    def endpoint(self) -> tuple[str, str, str]:
        """(base, method, path): what one crash or wedge is counted against."""
        ...

    def prepare(self, payload: Any) -> Prepared:
        """The request with ``payload`` in place, not yet sent."""
        ...

    def send(self, payload: Any, *, token: Any = True, prepared: Prepared | None = None,
             timeout: float | None = None) -> Reply:
        """Send it; a target that does not answer is a `Reply` with an error, not an exception."""
        ...


class HttpDeliverer:
    """Builds and sends one surface's request with a payload in place."""

    def __init__(self, contract: Contract, surface: Surface, signer: Signer, client: httpx.Client,
                 variables: dict[str, Any]):
        self.surface = surface
        self.signer = signer
        self.client = client
        self.vars = variables
        raw = surface.raw
        if "base_url" in raw:
            self.base = expand(raw["base_url"], variables).rstrip("/")
        else:
            svc = contract.service(raw["service"])
            if svc.port is None:
                raise ContractError(f"surface {surface.name!r}: service {svc.name!r} has no port")
            self.base = f"http://{svc.host}:{svc.port}"
        self.auth = bool(raw.get("auth", signer.header is not None))
        self.timeout = float(raw.get("timeout_s", DEADLINE_S))
        self.sent = 0
        self.fresh_only = False  # set once the target broke keep-alive: a new connection each
        self.pace: Callable[[], None] = _unpaced  # called before every request, hops included

    @property
    def endpoint(self) -> tuple[str, str, str]:
        return (self.base, self.surface.get("method", "POST"), self.surface.get("path", "/"))

    def prepare(self, payload: Any) -> Prepared:
        raw = self.surface.raw
        v = {**self.vars, "payload": payload}
        method = raw.get("method", "POST" if ("json" in raw or "body" in raw) else "GET")
        path = wire_path(str(expand(raw.get("path", "/"), v)))
        query = expand(raw.get("query", {}), v)
        if isinstance(query, dict) and query:
            path += "?" + urlencode({k: (json.dumps(x) if isinstance(x, (dict, list)) else x)
                                     for k, x in query.items()}, doseq=False)
        headers = {str(k): str(x) for k, x in expand(raw.get("headers", {}), v).items()}
        body = b""
        if "json" in raw:
            body = json.dumps(expand(raw["json"], v), ensure_ascii=False).encode(
                "utf-8", "surrogatepass"
            )
            headers.setdefault("content-type", "application/json")
        elif "body" in raw:
            body = str(expand(raw["body"], v)).encode("utf-8", "surrogatepass")
        return Prepared(method, self.base + "/", path.encode("latin-1"), headers, body, path)

    def send(
        self,
        payload: Any,
        *,
        token: str | None | bool = True,
        prepared: Prepared | None = None,
        timeout: float | None = None,
        client: httpx.Client | None = None,
    ) -> Reply:
        """Send; ``token`` True signs per the contract, a string sends that header, None omits
        it. ``client``: another connection pool for this request (see `send_fresh`).
        """
        if client is None and self.fresh_only:
            return self.send_fresh(payload, token=token, prepared=prepared, timeout=timeout)
        p = prepared or self.prepare(payload)
        headers = dict(p.headers)
        if self.auth and self.signer.header:
            value = self.signer.token(p.method, p.sign_path, p.body) if token is True else token
            if isinstance(value, str):
                headers[self.signer.header] = value
        self.sent += 1
        self.pace()
        use = client or self.client
        reply = send_raw(use, p.method, p.url, p.target, headers, p.body, timeout or self.timeout)
        return self._follow(p, reply, token, timeout or self.timeout, use)

    def send_fresh(self, payload: Any, *, timeout: float | None = None, **kw: Any) -> Reply:
        """Send again on a new connection that is closed afterwards, as a careful client retries
        a request that got no reply on a kept-alive connection (a server may break keep-alive:
        answer once, then leave the connection open without reading from it).
        """
        with httpx.Client(trust_env=False, follow_redirects=False) as fresh:
            return self.send(payload, timeout=timeout, client=fresh, **kw)

    def no_keepalive(self) -> None:
        """From now on every request goes on its own new connection (the target answered a
        request on a fresh connection that got no reply on a kept-alive one)."""
        self.fresh_only = True

    def _follow(self, p: Prepared, reply: Reply, token: str | None | bool, timeout: float,
                client: httpx.Client) -> Reply:
        """Follow same-origin redirects (at most MAX_HOPS), keeping each hop in the reply."""
        hops: list[str] = []
        seen: list[dict[str, str]] = []
        current = p.sign_path
        while reply.redirect and len(hops) < MAX_HOPS:
            nxt = same_origin_target(self.base, current, reply.headers.get("location", ""))
            if nxt is None:
                break
            hops.append(f"{reply.status} {current} -> {nxt}")
            seen.append(reply.headers)
            keep = reply.status in (307, 308)
            method, body = (p.method, p.body) if keep else ("GET", b"")
            headers = {k: v for k, v in p.headers.items() if keep or k.lower() != "content-type"}
            if self.auth and self.signer.header:
                value = self.signer.token(method, nxt, body) if token is True else token
                if isinstance(value, str):
                    headers[self.signer.header] = value
            self.pace()
            reply = send_raw(client, method, p.url, nxt.encode("latin-1"), headers, body, timeout)
            current = nxt
        reply.redirects = hops + reply.redirects
        reply.hop_headers = seen + reply.hop_headers
        return reply


def _unpaced() -> None:
    return None


def send_raw(client: httpx.Client, method: str, url: str, target: bytes, headers: dict[str, str],
             body: bytes, timeout: float = DEADLINE_S) -> Reply:
    request_text = _request_text(method, target, headers, body)
    t0 = time.monotonic()
    try:
        req = client.build_request(method, url, headers=headers, content=body,
                                   extensions={"target": target, "timeout": _timeouts(timeout)})
        resp = client.send(req, stream=True)
        try:
            data = _read_capped(resp, t0 + timeout)
        except httpx.DecodingError as exc:  # a reply, if a broken one: the server did answer
            data = f"[body not decodable as {resp.headers.get('content-encoding')}: {exc}]".encode()
        finally:
            resp.close()
    except httpx.HTTPError as exc:
        return Reply(
            None, b"", time.monotonic() - t0, f"{type(exc).__name__}: {exc}"[:300], request_text
        )
    except TimeoutError:
        return Reply(None, b"", time.monotonic() - t0, "deadline exceeded", request_text)
    return Reply(resp.status_code, data, time.monotonic() - t0, None, request_text,
                 {k.lower(): v for k, v in resp.headers.items()})


def _timeouts(total: float) -> dict[str, float]:
    return {"connect": min(5.0, total), "read": total, "write": total, "pool": total}


def _read_capped(resp: httpx.Response, deadline: float) -> bytes:
    """The body as the server meant it: chunked framing removed and any Content-Encoding
    (gzip, deflate, br) decoded, so oracles see text; at most MAX_BODY decoded bytes.
    """
    chunks: list[bytes] = []
    size = 0
    for chunk in resp.iter_bytes():
        chunks.append(chunk)
        size += len(chunk)
        if size >= MAX_BODY:
            break
        if time.monotonic() > deadline:
            raise TimeoutError
    return b"".join(chunks)[:MAX_BODY]


def _request_text(method: str, target: bytes, headers: dict[str, str], body: bytes) -> str:
    head = "\n".join(f"{k}: {v}" for k, v in headers.items())
    return (
        f"{method} {target.decode('latin-1')}\n{head}\n\n{body[:4000].decode('utf-8', 'replace')}"
    )
