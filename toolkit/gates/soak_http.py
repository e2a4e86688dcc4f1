"""A small HTTP/1.1 keep-alive client on asyncio + h11, timed per phase, for the soak's open model.

Why not httpx: at 1-2k req/s its per-request overhead in one process becomes the latency the
gate reports (measured: p95 182 ms at 2,000 req/s against nginx). h11 is the parser httpx
itself uses; driving it directly over asyncio streams (uvloop where installed) removes the
layers the soak does not need (redirects, cookies, proxies, HTTP/2) and keeps correct
HTTP/1.1 framing: content-length, chunked streams, keep-alive and connection reuse.
"""

from __future__ import annotations

import asyncio
import socket
import time
from dataclasses import dataclass, field
from typing import Any

import h11

READ = 65536
BODY_CAP = 65536


class HttpError(Exception):
    """A transport failure; the class name is the error kind recorded in the window."""


class ConnectFailed(HttpError):
    pass


class ProtocolFailed(HttpError):
    pass


class ConnectionLost(HttpError):
    pass


@dataclass
class Reply:
    status: int = 0
    headers_at: float | None = None
    first_byte_at: float | None = None
    body: bytes = b""
    capture: bool = False


@dataclass
class _Conn:
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    h: h11.Connection = field(default_factory=lambda: h11.Connection(h11.CLIENT))

    def close(self) -> None:
        self.writer.close()


class Pool:
    """Idle keep-alive connections per (host, port); a new one whenever none is idle."""

    def __init__(self) -> None:
        self.idle: dict[tuple[str, int], list[_Conn]] = {}
        self.opened = 0

    async def _get(self, host: str, port: int, reuse: bool = True) -> tuple[_Conn, bool]:
        stack = self.idle.get((host, port)) if reuse else None
        while stack:
            conn = stack.pop()
            if not conn.reader.at_eof():
                return conn, True
            conn.close()
        try:
            reader, writer = await _connect(host, port)
        except OSError as exc:
            raise ConnectFailed(f"{host}:{port}: {exc.strerror or exc}") from None
        self.opened += 1
        return _Conn(reader, writer), False

    def _put(self, host: str, port: int, conn: _Conn) -> None:
        if conn.h.our_state is h11.DONE and conn.h.their_state is h11.DONE:
            conn.h.start_next_cycle()
            self.idle.setdefault((host, port), []).append(conn)
        else:
            conn.close()

    async def request(self, host: str, port: int, method: str, target: str,
                      headers: list[tuple[str, str]], body: bytes, reply: Reply) -> Reply:
        """Send one request and read the whole reply; the caller bounds it with a timeout.

        A kept-alive connection the server closed while idle fails before any reply byte;
        that one case is retried once on a fresh connection, as browsers and httpx do.
        """
        conn, reused = await self._get(host, port)
        try:
            await _exchange(conn, host, port, method, target, headers, body, reply)
        except ConnectionLost:
            conn.close()
            if not reused or reply.headers_at is not None:
                raise
            conn, _ = await self._get(host, port, reuse=False)
            try:
                await _exchange(conn, host, port, method, target, headers, body, reply)
            except BaseException:
                conn.close()
                raise
        except BaseException:
            conn.close()
            raise
        self._put(host, port, conn)
        return reply

    def close(self) -> None:
        for stack in self.idle.values():
            for conn in stack:
                conn.close()
        self.idle.clear()


async def _connect(host: str, port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """Connect through a socket we own: a cancelled connect (a server whose backlog is full
    never answers the SYN) is dropped at once, instead of waiting out the kernel's retries."""
    loop = asyncio.get_running_loop()
    family, addr = _address(host, port)
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setblocking(False)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        await loop.sock_connect(sock, addr)
        return await asyncio.open_connection(sock=sock, limit=READ * 4)
    except BaseException:
        sock.close()
        raise


_RESOLVED: dict[tuple[str, int], tuple[socket.AddressFamily, Any]] = {}


def _address(host: str, port: int) -> tuple[socket.AddressFamily, Any]:
    """Resolved once per target, outside the event loop's resolver: soak targets are loopback
    literals or ``localhost``, and a resolver call per new connection was seen to wedge the
    loop when the run cancelled them at the end."""
    key = (host, port)
    if key not in _RESOLVED:
        family, _, _, _, addr = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        _RESOLVED[key] = (family, addr)
    return _RESOLVED[key]


async def _exchange(conn: _Conn, host: str, port: int, method: str, target: str,
                    headers: list[tuple[str, str]], body: bytes, reply: Reply) -> None:
    hdrs = [("host", f"{host}:{port}"), ("content-length", str(len(body))), *headers]
    try:
        data = conn.h.send(h11.Request(method=method, target=target, headers=hdrs))
        data += conn.h.send(h11.Data(data=body)) if body else b""
        data += conn.h.send(h11.EndOfMessage())
        conn.writer.write(data)
        while True:
            event = conn.h.next_event()
            if event is h11.NEED_DATA:
                chunk = await conn.reader.read(READ)
                if not chunk and conn.h.their_state is h11.SEND_RESPONSE:
                    raise ConnectionLost("the server closed the connection before answering")
                conn.h.receive_data(chunk)
            elif isinstance(event, h11.Response):
                reply.status, reply.headers_at = event.status_code, time.monotonic()
            elif isinstance(event, h11.Data):
                if reply.first_byte_at is None and event.data:
                    reply.first_byte_at = time.monotonic()
                if reply.capture and len(reply.body) < BODY_CAP:
                    reply.body += bytes(event.data[: BODY_CAP - len(reply.body)])
            elif isinstance(event, (h11.EndOfMessage, h11.ConnectionClosed)):
                return
    except h11.ProtocolError as exc:
        raise ProtocolFailed(str(exc)) from None
    except (ConnectionError, OSError) as exc:
        raise ConnectionLost(str(exc)) from None
