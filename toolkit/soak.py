"""Gate 2: an open-model soak. Traffic arrives on schedule whether or not the system keeps up.

Each traffic class is a Poisson arrival process at its ``rate_per_s`` (seeded). Latency is
measured from the *intended* start, so a stalled system cannot hide its queueing
(coordinated omission). Streams are timed to headers, first event and end. Memory
(RSS of each service's process tree), restarts (pid or create_time changed) and
health are sampled each window; every window is written as its own metrics file.
"""

from __future__ import annotations

import json
import random
import secrets
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psutil

from toolkit.auth import Signer
from toolkit.contract import Contract, expand
from toolkit.errors import ContractError, UsageError
from toolkit.model import measure
from toolkit.runner import GateResult, GateRun, gate_run, load_locked
from toolkit.supervisor import Supervisor, probe
from toolkit.transport import check_host

STUCK_S = 30.0
WORKERS = 64


@dataclass
class SoakConfig:
    contract_path: Path | None = None
    duration_s: float | None = None
    warmup_s: float | None = None
    sample_s: float = 60.0
    seed: int | None = None
    request_timeout_s: float = STUCK_S


@dataclass
class Sample:
    cls: str
    intended: float
    latency_ms: float | None = None
    headers_ms: float | None = None
    first_event_ms: float | None = None
    status: int | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None and self.status is not None and 200 <= self.status < 400


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    k = (len(ordered) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


class Traffic:
    """Builds and sends one traffic class's request, timing every phase."""

    def __init__(self, c: Contract, spec: dict[str, Any], client: httpx.Client, timeout: float = STUCK_S):
        self.c, self.spec, self.client, self.timeout = c, spec, client, timeout
        self.name = str(spec["name"])
        if "base_url" in spec:
            root = str(spec["base_url"])
        elif "service" in spec:
            svc = c.service(spec["service"])
            root = f"http://{svc.host}:{svc.port}"
        else:
            raise ContractError(f"{c.path}: soak.traffic {self.name!r} needs service or base_url")
        self.path = str(spec.get("path", "/"))
        self.url = root.rstrip("/") + self.path
        check_host(self.url, set())  # load only ever goes to loopback
        self.method = str(spec.get("method", "POST" if "json" in spec else "GET"))
        self.signer = Signer(c.auth)
        self.stream = bool(spec.get("stream", False))

    def send(self, sample: Sample, seq: int) -> Sample:
        v = {**self.c.base_vars(), "seq": seq, "now": time.time()}
        body = json.dumps(expand(self.spec["json"], v)).encode() if "json" in self.spec else \
            str(expand(self.spec.get("body", ""), v)).encode()
        headers = {"content-type": "application/json", **self.spec.get("headers", {})}
        token = self.signer.token(self.method, self.path, body)
        if token and self.signer.header:
            headers[self.signer.header] = token
        try:
            with self.client.stream(self.method, self.url, content=body, headers=headers,
                                    timeout=self.timeout) as resp:
                sample.headers_ms = (time.monotonic() - sample.intended) * 1000
                sample.status = resp.status_code
                for chunk in resp.iter_raw():
                    if sample.first_event_ms is None and chunk:
                        sample.first_event_ms = (time.monotonic() - sample.intended) * 1000
        except httpx.TimeoutException:
            sample.error = "stuck"
        except httpx.HTTPError as exc:
            sample.error = type(exc).__name__
        sample.latency_ms = (time.monotonic() - sample.intended) * 1000
        return sample


class Soak:
    def __init__(self, cfg: SoakConfig, c: Contract, run: GateRun):
        self.cfg, self.c, self.run = cfg, c, run
        spec = c.section("soak", "soak")
        if not spec.get("traffic"):
            raise ContractError(f"{c.path}: [soak] needs at least one [[soak.traffic]]")
        self.spec = spec
        self.duration = cfg.duration_s if cfg.duration_s is not None else float(spec.get("duration", 3600))
        self.warmup = cfg.warmup_s if cfg.warmup_s is not None else min(float(spec.get("warmup", 0)),
                                                                          self.duration / 5)
        if self.duration <= 0 or self.warmup >= self.duration:
            raise UsageError(f"--duration {self.duration:g}s must be positive and longer than the warmup "
                             f"({self.warmup:g}s)")
        self.seed = cfg.seed if cfg.seed is not None else run.seed
        self.samples: list[Sample] = []
        self.windows: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        self.sup: Supervisor | None = None
        self.identity: dict[str, tuple[int, float]] = {}
        self.t_start = 0.0

    # ------------------------------------------------------------------ load
    def schedule(self, start: float) -> list[tuple[float, str]]:
        """Poisson arrivals for every class over the whole duration, merged in time order."""
        events = []
        for t in self.spec["traffic"]:
            rng = random.Random(f"{self.seed}:{t['name']}")  # nosec B311 - recorded seed
            at = start
            while True:
                at += rng.expovariate(float(t["rate_per_s"]))
                if at >= start + self.duration:
                    break
                events.append((at, str(t["name"])))
        return sorted(events)

    def drive(self) -> tuple[int, int]:
        with httpx.Client(trust_env=False, limits=httpx.Limits(max_connections=WORKERS)) as client:
            classes = {t["name"]: Traffic(self.c, t, client, self.cfg.request_timeout_s) for t in self.spec["traffic"]}
            for traffic in classes.values():  # prime lazy initialisation; these requests are not measured
                traffic.send(Sample(traffic.name, time.monotonic()), -1)
            start = time.monotonic() + 0.2
            self.t_start = start
            plan = self.schedule(start)
            next_window = start + self.cfg.sample_s
            pending: list[Future[Sample]] = []
            with ThreadPoolExecutor(max_workers=WORKERS) as pool:
                for seq, (at, name) in enumerate(plan):
                    while time.monotonic() < at:
                        if time.monotonic() >= next_window:
                            self.window(start, next_window)
                            next_window += self.cfg.sample_s
                        time.sleep(min(0.01, max(0.0, at - time.monotonic())))
                    pending.append(pool.submit(classes[name].send, Sample(name, at), seq))
                while time.monotonic() < start + self.duration:
                    time.sleep(0.05)
                stuck = sum(1 for f in pending if not f.done())
                self.samples = [f.result() for f in pending]
            self.window(start, time.monotonic())
        return len(plan), stuck

    # ------------------------------------------------------------------ observation
    def rss(self) -> dict[str, int]:
        out = {}
        for name, pid in (self.sup.pids() if self.sup else {}).items():
            try:
                proc = psutil.Process(pid)
                out[name] = sum(p.memory_info().rss for p in [proc, *proc.children(recursive=True)])
            except psutil.NoSuchProcess:
                out[name] = 0
        return out

    def restarts(self) -> list[str]:
        changed = []
        for name, running in (self.sup.running.items() if self.sup else []):
            pid = running.pid
            try:
                alive = running.popen.poll() is None  # an exited child stays a zombie until reaped
                ident = (pid, psutil.Process(pid).create_time() if alive else -1.0)
            except psutil.NoSuchProcess:
                ident = (pid, -1.0)
            if self.identity.setdefault(name, ident) != ident:
                changed.append(name)
        return changed

    def window(self, start: float, now: float) -> None:
        with httpx.Client(trust_env=False) as client:
            health = {s.name: probe(client, s.health_url)[0] for s in self.c.services if s.health_url}
        doc = {"window": len(self.windows) + 1, "t_s": round(now - start, 3), "rss_bytes": self.rss(),
               "restarted": self.restarts(), "health": health}
        self.windows.append(doc)
        self.run.evidence.write_json(f"metrics/gate2-metrics-window-{doc['window']:05d}.json", doc)
        self.run.emit("soak.window", **{k: v for k, v in doc.items() if k != "rss_bytes"})


def run_soak(cfg: SoakConfig) -> GateResult:
    c = load_locked(cfg.contract_path)
    with gate_run(c, "soak", "gate2") as run:
        soak = Soak(cfg, c, run)
        soak.sup = Supervisor(c, marker=f"soak-{secrets.token_hex(4)}", log_dir=run.evidence.dir / "service-logs",
                              on_event=run.emit)
        try:
            soak.sup.start_all()
            soak.restarts()
            soak.window(time.monotonic(), time.monotonic())  # the memory baseline before load
            sent, stuck = soak.drive()
        finally:
            soak.sup.stop_all()
            soak.sup.close()
        return seal(soak, run, sent, stuck)


def _stats(samples: list[Sample]) -> dict[str, Any]:
    lat = [s.latency_ms for s in samples if s.ok and s.latency_ms is not None]
    first = [s.first_event_ms for s in samples if s.ok and s.first_event_ms is not None]
    errors = sum(not s.ok for s in samples)
    return {"requests": len(samples), "errors": errors, "error_rate": errors / len(samples) if samples else None,
            "p50_ms": percentile(lat, 0.50), "p95_ms": percentile(lat, 0.95), "p99_ms": percentile(lat, 0.99),
            "first_event_p95_ms": percentile(first, 0.95),
            "headers_p95_ms": percentile([s.headers_ms for s in samples if s.ok and s.headers_ms], 0.95)}


def seal(soak: Soak, run: GateRun, sent: int, stuck: int) -> GateResult:
    th = soak.spec.get("thresholds", {})
    measured = [s for s in soak.samples if s.intended - soak.t_start >= soak.warmup]
    overall = _stats(measured)
    per_class = {name: _stats([s for s in measured if s.cls == name]) for name in {s.cls for s in soak.samples}}
    steady = [w for w in soak.windows if w["t_s"] >= soak.warmup] or soak.windows[-1:]
    base = steady[0]["rss_bytes"] if steady else {}  # memory after warmup, not before the first request
    last = steady[-1]["rss_bytes"] if steady else {}
    growth = {n: (last.get(n, 0) - b) / b for n, b in base.items() if b}
    restarts = sorted({n for w in soak.windows for n in w["restarted"]})
    unhealthy = sum(1 for w in soak.windows for ok in w["health"].values() if not ok)
    stuck_total = stuck + sum(1 for s in soak.samples if s.error == "stuck")
    worst_growth = max(growth.values(), default=0.0)
    ms = [measure("error_rate", overall["error_rate"], th.get("error_rate", 0.005), "ratio", overall["requests"]),
          measure("p95_ms", overall["p95_ms"], th.get("p95_ms"), "ms", overall["requests"]),
          measure("p99_ms", overall["p99_ms"], th.get("p99_ms"), "ms", overall["requests"]),
          measure("p50_ms", overall["p50_ms"], th.get("p50_ms"), "ms", overall["requests"]),
          measure("memory_growth", round(worst_growth, 4), th.get("memory_growth", 0.05), "ratio", len(soak.windows),
                  detail=json.dumps({n: round(g, 4) for n, g in growth.items()})),
          measure("restarts", len(restarts), 0, "services", len(soak.windows), detail=",".join(restarts)),
          measure("stuck_requests", stuck_total, 0, "requests", sent),
          measure("unhealthy_probes", unhealthy, 0, "probes", len(soak.windows))]
    verdict = "pass" if all(m.verdict == "pass" for m in ms) and overall["requests"] else "fail"
    body = {"duration_s": soak.duration, "warmup_s": soak.warmup, "requests_planned": sent,
            "overall": overall, "per_class": per_class, "memory_growth": growth, "restarts": restarts,
            "windows": len(soak.windows), "seed": soak.seed, "measurements": [m.to_dict() for m in ms]}
    return run.seal(verdict, body)
