"""What one soak window holds: per traffic class and overall, per service, and the generator
itself.
"""

from __future__ import annotations

import os
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import httpx
import psutil

from toolkit.core.supervisor import Supervisor, probe
from toolkit.gates.soak_hist import Hist


@dataclass
class Sample:
    """One request: latency counts from the *intended* start (no coordinated omission)."""

    cls: str
    intended: float
    latency_ms: float | None = None
    headers_ms: float | None = None
    first_event_ms: float | None = None
    status: int | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass
class ClassStats:
    """Counters and histograms of one traffic class (or all of them) over one or more windows."""

    count: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    latency: Hist = field(default_factory=Hist)
    headers: Hist = field(default_factory=Hist)
    first_event: Hist = field(default_factory=Hist)

    def record(self, s: Sample) -> None:
        self.count += 1
        if s.error is not None:
            self.errors[s.error] += 1
        elif s.latency_ms is not None:
            self.latency.record_ms(s.latency_ms)
        if s.error is None and s.headers_ms is not None:
            self.headers.record_ms(s.headers_ms)
        if s.error is None and s.first_event_ms is not None:
            self.first_event.record_ms(s.first_event_ms)

    def merge(self, other: ClassStats) -> ClassStats:
        self.count += other.count
        self.errors.update(other.errors)
        self.latency.merge(other.latency)
        self.headers.merge(other.headers)
        self.first_event.merge(other.first_event)
        return self

    @property
    def error_count(self) -> int:
        return sum(self.errors.values())

    @property
    def error_rate(self) -> float | None:
        return self.error_count / self.count if self.count else None

    def to_dict(self) -> dict[str, Any]:
        lat = self.latency.summary()
        return {"count": self.count, "errors": self.error_count, "error_rate": self.error_rate,
                "errors_by_kind": dict(sorted(self.errors.items())),
                "p50_ms": lat["p50_ms"], "p95_ms": lat["p95_ms"], "p99_ms": lat["p99_ms"],
                "max_ms": lat["max_ms"], "headers": self.headers.summary(),
                "first_event": self.first_event.summary(),
                "hdr": {"latency": self.latency.encode(), "headers": self.headers.encode(),
                        "first_event": self.first_event.encode()}}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ClassStats:
        hdr = d.get("hdr", {})
        return cls(int(d["count"]), Counter(d.get("errors_by_kind", {})),
                   Hist.decode(hdr.get("latency", "")), Hist.decode(hdr.get("headers", "")),
                   Hist.decode(hdr.get("first_event", "")))


def merge_classes(docs: list[dict[str, Any]]) -> dict[str, ClassStats]:
    """Merge the per-class figures of several window documents (exactly: histograms, counts)."""
    out: dict[str, ClassStats] = {}
    for doc in docs:
        for name, d in doc["classes"].items():
            out.setdefault(name, ClassStats()).merge(ClassStats.from_dict(d))
        out.setdefault("*", ClassStats()).merge(ClassStats.from_dict(doc["overall"]))
    return out


class ServiceSampler:
    """RSS, CPU, open files, threads, connections, restarts, liveness and health of each service."""

    def __init__(self, sup: Supervisor | None, health: dict[str, str]):
        self.sup, self.health = sup, health
        self.identity: dict[str, tuple[int, float]] = {}
        self.restarts: Counter[str] = Counter()
        self.cpu_prev: dict[str, tuple[float, float]] = {}

    def sample(self) -> dict[str, dict[str, Any]]:
        out = {name: self._one(name) for name in (self.sup.running if self.sup else {})}
        with httpx.Client(trust_env=False) as client:
            for name, url in self.health.items():
                out.setdefault(name, {})["healthy"] = probe(client, url, timeout=2.0)[0]
        return out

    def _one(self, name: str) -> dict[str, Any]:
        assert self.sup is not None
        running = self.sup.running[name]
        code = running.popen.poll()  # an exited child stays a zombie until reaped
        doc: dict[str, Any] = {"pid": running.pid, "alive": code is None, "exit_code": code}
        try:
            procs = self._tree(running.pid) if code is None else []
        except psutil.Error:
            procs, doc["alive"] = [], False
        ident = (running.pid, procs[0].create_time() if procs else -1.0)
        if self.identity.setdefault(name, ident) != ident:
            self.restarts[name] += 1
            self.identity[name] = ident
        doc["restarts"] = self.restarts[name]
        doc.update(_resources(procs))
        doc["cpu_percent"] = self._cpu(name, doc.pop("cpu_s"))
        return doc

    @staticmethod
    def _tree(pid: int) -> list[psutil.Process]:
        proc = psutil.Process(pid)
        return [proc, *proc.children(recursive=True)]

    def _cpu(self, name: str, cpu_s: float) -> float | None:
        now = time.monotonic()
        prev = self.cpu_prev.get(name)
        self.cpu_prev[name] = (now, cpu_s)
        if prev is None or now <= prev[0]:
            return None
        return round(100 * max(0.0, cpu_s - prev[1]) / (now - prev[0]), 1)


def _resources(procs: list[psutil.Process]) -> dict[str, Any]:
    rss = fds = threads = conns = 0
    cpu = 0.0
    for p in procs:
        try:
            with p.oneshot():
                rss += p.memory_info().rss
                t = p.cpu_times()
                cpu += t.user + t.system
                threads += p.num_threads()
                fds += p.num_fds() if hasattr(p, "num_fds") else p.num_handles()
            conns += len(p.net_connections(kind="inet"))
        except psutil.Error:
            continue
    return {"rss_bytes": rss, "cpu_s": cpu, "open_files": fds, "threads": threads,
            "connections": conns}


class GeneratorMeter:
    """The load generator's own fidelity: schedule lag and CPU, so its limits are never the
    target's.
    """

    LAG_LIMIT_MS = 5.0
    CPU_LIMIT = 80.0

    def __init__(self) -> None:
        self.lag = Hist()
        self.proc = psutil.Process(os.getpid())
        self._mark = self._now()

    def _now(self) -> tuple[float, float]:
        t = self.proc.cpu_times()
        return time.monotonic(), t.user + t.system

    def take(self) -> dict[str, Any]:
        """The window's figures; resets for the next window."""
        (w0, c0), (w1, c1) = self._mark, self._now()
        self._mark = (w1, c1)
        lag, self.lag = self.lag, Hist()
        cpu = round(100 * (c1 - c0) / (w1 - w0), 1) if w1 - w0 >= 0.2 else None  # else noise
        return {"cpu_percent": cpu, "lag": lag.summary(), "lag_hdr": lag.encode()}


def saturated(lag_p99_ms: float | None, cpu_percent: float | None) -> str | None:
    """Why the figures are the generator's rather than the target's, or None."""
    why = []
    if lag_p99_ms is not None and lag_p99_ms > GeneratorMeter.LAG_LIMIT_MS:
        busy = cpu_percent is not None and cpu_percent < GeneratorMeter.CPU_LIMIT / 2
        why.append(f"schedule lag p99 {lag_p99_ms:.1f} ms > {GeneratorMeter.LAG_LIMIT_MS:g} ms"
                   + (f" at {cpu_percent:.0f}% generator CPU: other processes held the CPU"
                      if busy else ""))
    if cpu_percent is not None and cpu_percent > GeneratorMeter.CPU_LIMIT:
        why.append(f"generator CPU {cpu_percent:.0f}% > {GeneratorMeter.CPU_LIMIT:g}%")
    return "; ".join(why) or None
