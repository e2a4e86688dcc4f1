"""Gate 2: an open-model soak. Traffic arrives on schedule whether or not the system keeps up.

Each traffic class is a Poisson arrival process at its ``rate_per_s`` (seeded). Latency is
measured from the *intended* start, so a stalled system cannot hide its queueing
(coordinated omission). Every window (``[soak].window``, the seed's minute by default) is
written as ``metrics/gate2-metrics-minute-NNNN.json``: per class and overall counts, errors
by kind and HdrHistogram percentiles; per service RSS, CPU, open files, threads,
connections, restarts and health; the generator's own lag and CPU. Each window is judged
as it closes, and a breach, a dead or restarted service or a stuck request ends the run
within that window. The summary merges the windows' histograms.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from toolkit.core.contract import Contract
from toolkit.core.errors import ContractError, UsageError
from toolkit.core.events import MinuteWindow, SoakAborted, SoakDone
from toolkit.core.runner import GateResult, GateRun, Subscriber, gate_run, load_locked
from toolkit.core.supervisor import Supervisor
from toolkit.gates.base import Profile
from toolkit.gates.soak_engine import Engine, TrafficClass, WindowCut
from toolkit.gates.soak_hist import Hist
from toolkit.gates.soak_judge import final, window_verdict
from toolkit.gates.soak_locust import LocustEngine
from toolkit.gates.soak_metrics import ClassStats, ServiceSampler, merge_classes, saturated


@dataclass
class SoakConfig:
    contract_path: Path | None = None
    duration_s: float | None = None
    warmup_s: float | None = None
    sample_s: float | None = None  # the window; None: [soak].window, else 60 s
    seed: int | None = None
    request_timeout_s: float | None = None  # stuck after; None: [soak].stuck_after, else 30 s
    start_services: bool = True
    engine: str = "builtin"  # builtin | locust
    workers: int = 2  # locust workers started here


def percentile(values: list[float], q: float) -> float | None:
    """Exact linear-interpolated percentile (used for small figures such as the lag table)."""
    if not values:
        return None
    ordered = sorted(values)
    k = (len(ordered) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


class Soak:
    """One soak: the plan from the contract, the window documents, and their judgement."""

    def __init__(self, cfg: SoakConfig, c: Contract, run: GateRun):
        self.cfg, self.c, self.run = cfg, c, run
        spec = c.need(c.soak, "soak", "soak")
        if not spec.traffic:
            raise ContractError(f"{c.path}: [soak] needs at least one [[soak.traffic]]")
        self.spec = spec
        self.duration, self.warmup, self.window_s, self.stuck_s = timings(cfg, c)
        self.th = spec.thresholds
        self.seed = cfg.seed if cfg.seed is not None else run.seed
        self.classes = [TrafficClass(c, t, self.duration / 5) for t in spec.traffic]
        self.asked = sum(t.rate for t in self.classes)
        self.windows: list[dict[str, Any]] = []
        self.sampler = ServiceSampler(None, {})
        self.planned = 0
        self.lag = Hist()
        self.gen_cpu: list[float] = []

    def observe(self, cut: WindowCut) -> str | None:
        """Called from the engine as each window closes: sample, judge, emit (a subscriber
        writes the window's metrics file)."""
        doc = self.document(cut)
        self.windows.append(doc)
        reasons = window_verdict(doc, self.windows, self.th, self.warmup)
        doc["breaches"] = reasons
        self.run.emit(MinuteWindow(cut.index, doc, compact(doc)))
        if reasons and self.th.abort:
            self.run.emit(SoakAborted(cut.index, "; ".join(reasons)))
            return "; ".join(reasons)
        return None

    def document(self, cut: WindowCut) -> dict[str, Any]:
        overall = ClassStats()
        for stats in cut.classes.values():
            overall.merge(_copy(stats))
        self.planned += cut.dispatched
        span = max(cut.end_s - cut.start_s, 1e-9)
        gen = cut.generator
        self.lag.merge(Hist.decode(gen["lag_hdr"]))
        if gen["cpu_percent"] is not None:
            self.gen_cpu.append(gen["cpu_percent"])
        return {
            "window": cut.index,
            "start_s": round(cut.start_s, 3),
            "end_s": cut.end_s,
            "interval_s": self.window_s,
            "duration_s": self.duration,
            "warmup": cut.end_s <= self.warmup,
            "final": cut.final,
            "asked_rate_per_s": round(self.asked, 4),
            "achieved_rate_per_s": round(cut.dispatched / span, 4),
            "dispatched": cut.dispatched,
            "in_flight": cut.in_flight,
            "stuck": cut.stuck + overall.errors.get("stuck", 0),
            "stuck_after_s": self.stuck_s,
            "open_sessions": cut.open_sessions,
            "classes": {n: s.to_dict() for n, s in sorted(cut.classes.items())},
            "overall": overall.to_dict(),
            "services": self.sampler.sample(),
            "generator": {
                "cpu_percent": gen["cpu_percent"],
                "lag": gen["lag"],
                "workers": gen.get("workers"),
                "saturated": saturated(gen["lag"]["p99_ms"], gen["cpu_percent"]),
            },
            "time": time.time(),
        }

    def steady(self) -> list[dict[str, Any]]:
        return [w for w in self.windows if not w["warmup"]] or self.windows[-1:]


def compact(doc: dict[str, Any]) -> dict[str, Any]:
    """A window's headline figures: the journal entry and what report writers plot."""
    o = doc["overall"]
    return {"window": doc["window"], "end_s": doc["end_s"], "warmup": doc["warmup"],
            "requests": o["count"], "errors": o["errors"], "error_rate": o["error_rate"],
            "p50_ms": o["p50_ms"], "p95_ms": o["p95_ms"], "p99_ms": o["p99_ms"],
            "asked_rate_per_s": doc["asked_rate_per_s"],
            "achieved_rate_per_s": doc["achieved_rate_per_s"], "stuck": doc["stuck"],
            "rss_mb": {n: round(s["rss_bytes"] / 2**20, 2) for n, s in doc["services"].items()
                       if "rss_bytes" in s},
            "generator_lag_p99_ms": doc["generator"]["lag"]["p99_ms"],
            "generator_cpu_percent": doc["generator"]["cpu_percent"],
            "breaches": doc["breaches"]}


def _copy(stats: ClassStats) -> ClassStats:
    return ClassStats().merge(stats)


def timings(cfg: SoakConfig, c: Contract) -> tuple[float, float, float, float]:
    """Duration, warmup, window and stuck-after in seconds: options over the contract's.

    Called before the attempt starts too, so a mistyped option is a usage error that
    leaves no failed attempt in the ledger (two of those would block the gate).
    """
    spec = c.need(c.soak, "soak", "soak")
    duration = _pick(cfg.duration_s, spec.duration)
    warmup = cfg.warmup_s if cfg.warmup_s is not None else min(spec.warmup, duration / 5)
    window = _pick(cfg.sample_s, spec.window)
    if duration <= 0 or warmup >= duration or window <= 0:
        raise UsageError(f"--duration {duration:g}s must be positive and longer than the "
                         f"warmup ({warmup:g}s); the window ({window:g}s) positive")
    return duration, warmup, window, _pick(cfg.request_timeout_s, spec.stuck_after)


def _check_engine(cfg: SoakConfig) -> None:
    if cfg.engine == "locust":
        import importlib.util

        if importlib.util.find_spec("locust") is None:
            raise UsageError("--engine locust: Locust is not installed here; "
                             "pip install 'release-gate-toolkit[locust]' (or -e '.[locust]')")
        if cfg.workers < 1:
            raise UsageError(f"--workers {cfg.workers}: the locust engine needs at least one")
    elif cfg.engine != "builtin":
        raise UsageError(f"--engine {cfg.engine!r}: use builtin or locust")


def _pick(cli: float | None, contract: float) -> float:
    """A command-line value over the contract's (which holds its declared default)."""
    return float(cli if cli is not None else contract)


def _engine(soak: Soak, run: GateRun) -> Engine | LocustEngine:
    _check_engine(soak.cfg)
    if soak.cfg.engine == "locust":
        return LocustEngine(soak.c.path, soak.classes, soak.seed, soak.duration, soak.window_s,
                            soak.stuck_s, soak.observe, soak.cfg.workers,
                            run.evidence.dir / "service-logs")
    return Engine(soak.classes, soak.seed, soak.duration, soak.window_s, soak.stuck_s, soak.observe)


def run_soak(cfg: SoakConfig, subscribers: Sequence[Subscriber] = ()) -> GateResult:
    """Gate 2; ``subscribers`` (a progress display) attach to the run's bus first."""
    c = load_locked(cfg.contract_path)
    timings(cfg, c)  # bad options: a usage error before the attempt, not a failed attempt
    _check_engine(cfg)
    with gate_run(c, SoakGate.name, SoakGate.label, subscribers=subscribers) as run:
        from reports.evidence_files import MinuteMetricsWriter
        from reports.soak_html import SoakHtmlWriter

        MinuteMetricsWriter(run).attach(run.bus)
        SoakHtmlWriter(run).attach(run.bus)
        soak = Soak(cfg, c, run)
        engine = _engine(soak, run)  # options checked before any service starts
        sup = Supervisor(c, marker=f"soak-{secrets.token_hex(4)}",
                         log_dir=run.evidence.dir / "service-logs", on_event=run.emit)
        health = {s.name: s.health_url for s in c.services if s.health_url}
        try:
            if cfg.start_services:
                sup.start_all()
            soak.sampler = ServiceSampler(sup, health)
            baseline = soak.sampler.sample()  # identities and CPU marks before the first request
            abort = engine.run()
        finally:
            sup.stop_all()
            sup.close()
        return seal(soak, run, abort, baseline)


def seal(soak: Soak, run: GateRun, abort: str | None, baseline: dict[str, Any]) -> GateResult:
    steady = soak.steady()
    ms, facts = final(steady, soak.windows, soak.th, abort, soak.planned)
    per_class = {n: s.to_dict() for n, s in merge_classes(steady).items() if n != "*"}
    lag = soak.lag.summary()
    cpu = max(soak.gen_cpu, default=None)
    verdict = (
        "pass" if all(m.verdict == "pass" for m in ms) and facts["overall"]["count"] else "fail"
    )
    body = {
        "engine": soak.cfg.engine,
        "duration_s": soak.duration,
        "warmup_s": soak.warmup,
        "window_s": soak.window_s,
        "stuck_after_s": soak.stuck_s,
        "thresholds": soak.th.limits(),
        "requests_planned": soak.planned,
        "asked_rate_per_s": soak.asked,
        **facts,
        "per_class": per_class,
        "windows": len(soak.windows),
        "abort_reason": abort,
        "baseline_services": baseline,
        "generator": {
            "lag": lag,
            "cpu_percent_max": cpu,
            "saturated": saturated(lag["p99_ms"], cpu),
        },
        "seed": soak.seed,
        "measurements": [m.to_dict() for m in ms],
        "report": str(run.evidence.dir / "gate2-report.html"),
    }
    run.emit(SoakDone(verdict, run.evidence.run_id, f"{soak.c.name} {soak.c.version}",
                      soak.window_s, soak.duration, soak.seed, abort,
                      body["generator"]["saturated"], body["measurements"]))
    return run.seal(verdict, body)


class SoakGate:
    """Gate 2: open-model traffic for the contract's duration, judged per window."""

    name, title, label = "soak", "Gate 2", "gate2"
    needs = ("services", "soak")

    def plan(self, contract_path: Path | None, profile: Profile) -> SoakConfig:
        return SoakConfig(contract_path, profile.soak_s, profile.soak_warmup_s, profile.window_s)

    def describe(self, c: Contract) -> list[str]:
        spec = c.need(c.soak, "soak", "soak")
        duration = float(spec.duration)
        warmup = min(float(spec.warmup), duration / 5)  # as the run takes it
        traffic = spec.traffic  # their services were checked when the contract loaded
        rate = sum(float(t["rate_per_s"]) for t in traffic)
        return [(f"{len(traffic)} traffic classes, {rate:g} requests/s in all, for {duration:g} s "
                 f"(first {warmup:g} s excluded): about {rate * duration:.0f} requests")]

    def run(self, plan: SoakConfig) -> GateResult:
        return run_soak(plan)
