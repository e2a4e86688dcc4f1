"""The soak's open-model load engine: seeded Poisson arrivals, sent on schedule on one event loop.

Arrivals are generated lazily per traffic class and merged in a heap, so memory does not grow
with the duration. Every request is timed from its intended start; the dispatch delay past
that start (schedule lag) is measured separately, so a generator that falls behind says so.
A request in flight longer than ``stuck_s`` is abandoned and counted as stuck.
"""

from __future__ import annotations

import asyncio
import heapq
import json
import os
import random
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode, urlsplit

from toolkit.core.auth import Signer
from toolkit.core.contract import Contract, expand, expand_str
from toolkit.core.errors import ContractError, ToolkitError
from toolkit.core.transport import check_host
from toolkit.gates.soak_http import HttpError, Pool, Reply
from toolkit.gates.soak_metrics import ClassStats, GeneratorMeter, Sample

_uvloop: Any
try:  # a faster event loop where it exists (POSIX); the engine is correct without it
    import uvloop as _uvloop
except ImportError:  # pragma: no cover
    _uvloop = None


@dataclass
class Endpoint:
    host: str
    port: int
    method: str
    path: str


class TrafficClass:
    """One [[soak.traffic]] entry: how to build its request and judge its reply."""

    def __init__(self, c: Contract, spec: Mapping[str, Any], hold_cap_s: float):
        self.c, self.spec, self.name = c, spec, str(spec["name"])
        self.rate = float(spec["rate_per_s"])
        if self.rate <= 0:
            raise ContractError(f"{c.path}: soak.traffic {self.name!r}: rate_per_s must be > 0")
        root = _root(c, spec, self.name)
        check_host(root + "/", set())  # load only ever goes to loopback
        parts = urlsplit(root)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        self.method = str(spec.get("method", "POST" if "json" in spec else "GET"))
        self.path = (parts.path.rstrip("/") + str(spec.get("path", "/"))) or "/"
        if spec.get("query"):
            self.path += "?" + urlencode(spec["query"])
        self.stream = bool(spec.get("stream", False))
        self.expect = set(spec.get("expect_status", [])) or None
        self.signer = Signer(c.auth) if spec.get("auth", True) else Signer(None)
        self.destroy = spec.get("destroy")
        self.destroy_name = str((self.destroy or {}).get("name", f"{self.name}-destroy"))
        self.hold_s = min(float(spec.get("hold", 300.0)), hold_cap_s)

    def arrivals(self, seed: int, start: float) -> Iterator[float]:
        rng = random.Random(f"{seed}:{self.name}")  # nosec B311 - recorded seed, not security
        at = start
        while True:
            at += rng.expovariate(self.rate)
            yield at

    def build(self, seq: int, extra: dict[str, Any] | None = None,
              destroy: bool = False) -> tuple[str, str, list[tuple[str, str]], bytes]:
        v = {**self.c.base_vars(), "seq": seq, "now": time.time(), **(extra or {})}
        spec = self.destroy if destroy and self.destroy else self.spec
        method = str(spec.get("method", "DELETE" if destroy else self.method))
        path = expand_str(str(spec["path"]), v) if destroy else self.path
        body = json.dumps(expand(spec["json"], v)).encode() if "json" in spec else \
            str(expand(spec.get("body", ""), v)).encode()
        headers = [("content-type", "application/json"),
                   *((k, str(x)) for k, x in spec.get("headers", {}).items())]
        token = self.signer.token(method, path, body)
        if token and self.signer.header:
            headers.append((self.signer.header, token))
        return method, path, headers, body

    def judge(self, status: int) -> str | None:
        if self.expect is not None:
            return None if status in self.expect else f"http_{status}"
        return None if 200 <= status < 400 else f"http_{status}"


def _root(c: Contract, spec: Mapping[str, Any], name: str) -> str:
    if "base_url" in spec:
        return str(spec["base_url"]).rstrip("/")
    if "service" in spec:
        svc = c.service(spec["service"])
        return f"http://{svc.host}:{svc.port}"
    raise ContractError(f"{c.path}: soak.traffic {name!r} needs service or base_url")


@dataclass(order=True)
class _Due:
    at: float
    seq: int
    cls: TrafficClass = field(compare=False)
    session: str | None = field(default=None, compare=False)


@dataclass
class WindowCut:
    """What the engine hands over when a window closes (no longer touched by the event loop)."""

    index: int
    start_s: float
    end_s: float
    classes: dict[str, ClassStats]
    dispatched: int
    in_flight: int
    stuck: int
    generator: dict[str, Any]
    open_sessions: int
    final: bool = False


class Engine:
    """Drives the classes for ``duration_s``; ``observe`` judges each closed window.

    ``observe`` runs in a worker thread (it samples processes and writes files) and returns an
    abort reason or None. An abort stops new arrivals at once and closes the run.
    """

    def __init__(self, classes: list[TrafficClass], seed: int, duration_s: float, window_s: float,
                 stuck_s: float, observe: Callable[[WindowCut], str | None]):
        self.classes, self.seed = classes, seed
        self.duration, self.window_s, self.stuck_s = duration_s, window_s, stuck_s
        self.observe = observe
        self.pool = Pool()
        self.meter = GeneratorMeter()
        self.stats: dict[str, ClassStats] = {}
        self.in_flight: dict[int, float] = {}
        self.sessions: dict[str, TrafficClass] = {}
        self.dispatched = 0
        self.abort: str | None = None
        self.t0 = 0.0
        self.windows = 0
        self.last_end = 0.0
        self._heap: list[_Due] = []
        self._lock = asyncio.Lock()
        self.tasks: set[asyncio.Task[None]] = set()

    def run(self) -> str | None:
        """Run to the end (or an abort); the abort reason or None.

        The whole run has a deadline (duration + three stuck limits + 2 min), and the loop
        is closed without waiting on leftovers, so the gate can end in error but never hang.
        """
        # uvloop where installed; TOOLKIT_SOAK_LOOP=asyncio selects the stdlib loop.
        fast = _uvloop is not None and os.environ.get("TOOLKIT_SOAK_LOOP", "uvloop") == "uvloop"
        loop = _uvloop.new_event_loop() if fast else asyncio.new_event_loop()
        limit = self.duration + 3 * self.stuck_s + 120.0
        try:
            return loop.run_until_complete(asyncio.wait_for(self._main(), limit))
        except TimeoutError:
            raise ToolkitError(f"the soak engine overran its {limit:.0f} s deadline; "
                               "its evidence up to here is sealed as an error") from None
        finally:
            loop.run_until_complete(self._leftovers())
            loop.close()

    async def _leftovers(self) -> None:
        pending = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.wait(pending, timeout=2.0)

    async def _main(self) -> str | None:
        await self._prime()
        self.t0 = time.monotonic() + 0.2
        self.meter = GeneratorMeter()
        ticker = asyncio.create_task(self._ticker())
        try:
            await self._dispatch()
            await self._drain()
        finally:
            async with self._lock:  # never cancel a window half observed
                ticker.cancel()
            await asyncio.gather(ticker, return_exceptions=True)
        await self._abandon()
        if self.abort is None or self._pending_stats():
            await self._close_window(final=True)
        self.pool.close()
        return self.abort

    async def _abandon(self) -> None:
        """Cancel what is still in flight (recorded as stuck), waiting a bounded time for it."""
        for task in list(self.tasks):
            task.cancel()
        if self.tasks:
            await asyncio.wait(list(self.tasks), timeout=2.0)

    def _pending_stats(self) -> bool:
        return any(s.count for s in self.stats.values())

    async def _prime(self) -> None:
        """One unmeasured request per class warms lazy initialisation (imports, pools, JITs)."""
        for cls in self.classes:
            if cls.destroy is None:
                await self._send(cls, time.monotonic(), -1, None, measure=False)

    async def _dispatch(self) -> None:
        heap = self._heap
        gens = {c.name: c.arrivals(self.seed, self.t0) for c in self.classes}
        for c in self.classes:
            heapq.heappush(heap, _Due(next(gens[c.name]), 0, c))
        end, seq = self.t0 + self.duration, 0
        while heap and self.abort is None:
            now = time.monotonic()
            if heap[0].at >= end:
                break
            if heap[0].at > now:
                await asyncio.sleep(min(heap[0].at - now, 0.05))
                continue
            due = heapq.heappop(heap)
            if due.session is None:
                heapq.heappush(heap, _Due(next(gens[due.cls.name]), seq, due.cls))
            self.meter.lag.record_ms((now - due.at) * 1000)
            seq += 1
            self.dispatched += due.session is None  # arrivals; destroys follow from them
            task = asyncio.get_running_loop().create_task(
                self._send(due.cls, due.at, seq, due.session))
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)
        while time.monotonic() < end and self.abort is None:
            await asyncio.sleep(min(0.05, end - time.monotonic()))

    async def _drain(self) -> None:
        """Let requests in flight finish (up to the stuck limit); destroy sessions left open."""
        grace = self.stuck_s if self.abort is None else min(self.stuck_s, 2.0)
        deadline = time.monotonic() + grace
        while self.tasks and time.monotonic() < deadline:  # tasks: started or not yet
            await asyncio.sleep(0.02)
        open_sessions = list(self.sessions.items())
        await asyncio.gather(*(self._send(cls, time.monotonic(), -2, sid)
                               for sid, cls in open_sessions))

    async def _ticker(self) -> None:
        nxt = self.t0 + self.window_s
        while nxt < self.t0 + self.duration - 1e-3:  # the last window closes after the drain
            await asyncio.sleep(max(0.0, nxt - time.monotonic()))
            nxt += self.window_s
            async with self._lock:
                await self._close_window()
            if self.abort is not None:
                return

    async def _close_window(self, final: bool = False) -> None:
        now = time.monotonic()
        stats, self.stats = self.stats, {}
        stuck_now = sum(1 for t in self.in_flight.values() if now - t > self.stuck_s)
        start, self.last_end = self.last_end, round(now - self.t0, 3)
        self.windows += 1
        cut = WindowCut(
            self.windows,
            start,
            self.last_end,
            stats,
            self.dispatched,
            len(self.in_flight),
            stuck_now,
            self.meter.take(),
            len(self.sessions),
            final,
        )
        self.dispatched = 0
        reason = await asyncio.to_thread(self.observe, cut)
        if reason and self.abort is None:
            self.abort = reason

    async def _send(self, cls: TrafficClass, at: float, seq: int, session: str | None,
                    measure: bool = True) -> None:
        name = cls.destroy_name if session else cls.name
        sample = Sample(name, at)
        key = id(sample)
        self.in_flight[key] = at
        reply = Reply(capture=cls.destroy is not None and session is None)
        try:
            method, target, headers, body = cls.build(seq, {"id": session} if session else None,
                                                      destroy=session is not None)
            async with asyncio.timeout(self.stuck_s):
                await self.pool.request(cls.host, cls.port, method, target, headers, body, reply)
            sample.status, sample.error = reply.status, cls.judge(reply.status)
        except (TimeoutError, asyncio.CancelledError):  # over the limit, or abandoned at the end
            sample.error = "stuck"
        except HttpError as exc:
            sample.error = type(exc).__name__
        finally:
            del self.in_flight[key]
        done = time.monotonic()
        sample.latency_ms = (done - at) * 1000
        if cls.stream and reply.headers_at is not None:
            sample.headers_ms = (reply.headers_at - at) * 1000
            if reply.first_byte_at is not None:
                sample.first_event_ms = (reply.first_byte_at - at) * 1000
        if session is not None:
            self.sessions.pop(session, None)
        elif cls.destroy is not None and sample.ok:
            self._hold(cls, reply, at)
        if measure:
            self.stats.setdefault(name, ClassStats()).record(sample)

    def _hold(self, cls: TrafficClass, reply: Reply, at: float) -> None:
        """Schedule the destroy of a session just created, ``hold`` after its intended start."""
        try:
            sid = json.loads(reply.body or b"{}").get(str(cls.spec.get("id_field", "id")))
        except (ValueError, AttributeError):
            sid = None
        if not isinstance(sid, str | int):
            return
        self.sessions[str(sid)] = cls
        if at + cls.hold_s < self.t0 + self.duration:
            heapq.heappush(self._heap, _Due(at + cls.hold_s, -1, cls, str(sid)))
