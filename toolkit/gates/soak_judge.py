"""Gate 2's judgement: per window while the soak runs (early abort) and over the whole run.

A rolling threshold is judged on the merged histogram of the last ``rolling_windows`` steady
windows, and only once they hold ``min_samples`` requests: three requests with one error are
not a 33% error rate worth stopping a 48-hour run for. A dead or restarted service and stuck
requests abort at once, whatever the sample count (k6's abortOnFail).
"""

from __future__ import annotations

import statistics
from typing import Any

from toolkit.core.model import Measurement, measure
from toolkit.core.sections import Thresholds  # [soak.thresholds], defaults declared there
from toolkit.gates.soak_metrics import ClassStats, merge_classes


def service_faults(doc: dict[str, Any], before: dict[str, Any] | None) -> list[str]:
    """Dead or restarted services in this window, by name."""
    out = []
    for name, svc in sorted(doc["services"].items()):
        prev = (before or {}).get("services", {}).get(name, {})
        if "alive" in svc and not svc["alive"]:
            out.append(f"service {name} is dead (exit code {svc.get('exit_code')})")
        elif svc.get("restarts", 0) > prev.get("restarts", 0):
            out.append(f"service {name} restarted")
    return out


def rolling(docs: list[dict[str, Any]]) -> ClassStats:
    return merge_classes(docs).get("*", ClassStats())


def rolling_breaches(steady: list[dict[str, Any]], th: Thresholds) -> list[str]:
    """Thresholds breached over the last ``rolling_windows`` steady windows."""
    span = steady[-th.rolling_windows:]
    merged = rolling(span)
    if merged.count < th.min_samples:
        return []
    where = f"over the last {len(span)} window(s), {merged.count} requests"
    out = []
    rate = merged.error_rate or 0.0
    if rate > th.error_rate:
        out.append(f"error rate {rate:.2%} {where} > {th.error_rate:.2%}")
    for q, limit in ((50, th.p50_ms), (95, th.p95_ms), (99, th.p99_ms)):
        value = merged.latency.pct_ms(q)
        if limit is not None and value is not None and value > limit:
            out.append(f"p{q} {value:.1f} ms {where} > {limit:g} ms")
    return out


def window_verdict(doc: dict[str, Any], history: list[dict[str, Any]], th: Thresholds,
                   warmup_s: float) -> list[str]:
    """Reasons to abort after this window (empty: carry on). ``history`` includes ``doc``."""
    before = history[-2] if len(history) > 1 else None
    reasons = service_faults(doc, before)
    if doc["stuck"]:
        reasons.append(f"{doc['stuck']} stuck request(s) (in flight longer than "
                       f"{doc['stuck_after_s']:g} s)")
    steady = [d for d in history if d["end_s"] > warmup_s]
    if doc["end_s"] > warmup_s:
        reasons += rolling_breaches(steady, th)
    return reasons


def spikes(
    steady: list[dict[str, Any]], th: Thresholds
) -> tuple[list[dict[str, Any]], float | None]:
    """Windows whose p95 exceeds k x the run's median window p95 (windows with enough samples).

    At sub-millisecond medians k x median is scheduler jitter; a spike must also exceed
    ``p95_spike_floor_ms``.
    """
    full = [d for d in steady if d["overall"]["count"] >= th.min_samples
            and d["overall"]["p95_ms"] is not None]
    if len(full) < 3:
        return [], None
    median = statistics.median(d["overall"]["p95_ms"] for d in full)
    bad = [{"window": d["window"], "p95_ms": d["overall"]["p95_ms"]} for d in full
           if d["overall"]["p95_ms"] > max(th.p95_spike_k * median, th.p95_spike_floor_ms)]
    return bad, median


def worst_rolling_error_rate(steady: list[dict[str, Any]], th: Thresholds) -> float | None:
    worst = None
    for i in range(len(steady)):
        merged = rolling(steady[max(0, i + 1 - th.rolling_windows): i + 1])
        if merged.count >= th.min_samples and merged.error_rate is not None:
            worst = max(worst or 0.0, merged.error_rate)
    return worst


def memory_growth(steady: list[dict[str, Any]]) -> dict[str, float]:
    """Per service: RSS of the last steady window over the first (memory after warmup)."""
    if not steady:
        return {}
    first, last = steady[0]["services"], steady[-1]["services"]
    return {n: round((last.get(n, {}).get("rss_bytes", 0) - s["rss_bytes"]) / s["rss_bytes"], 4)
            for n, s in first.items() if s.get("rss_bytes")}


def final(steady: list[dict[str, Any]], windows: list[dict[str, Any]], th: Thresholds,
          abort: str | None, planned: int) -> tuple[list[Measurement], dict[str, Any]]:
    overall = rolling(steady)
    n = overall.count
    growth = memory_growth(steady)
    restarts = sorted({name for w in windows for name, s in w["services"].items()
                       if s.get("restarts")})
    dead = sorted({name for w in windows for name, s in w["services"].items()
                   if s.get("alive") is False})
    unhealthy = sum(1 for w in windows for s in w["services"].values() if s.get("healthy") is False)
    stuck = sum(w["stuck"] for w in windows)
    bad, median = spikes(steady, th)
    worst = worst_rolling_error_rate(steady, th)
    ms = [measure("error_rate", overall.error_rate, th.error_rate, "ratio", n),
          measure("error_rate_rolling_max", worst if worst is not None else 0.0, th.error_rate,
                  "ratio", n, detail=f"{th.rolling_windows} windows, >= {th.min_samples} requests"),
          measure("p50_ms", overall.latency.pct_ms(50), th.p50_ms, "ms", n),
          measure("p95_ms", overall.latency.pct_ms(95), th.p95_ms, "ms", n),
          measure("p99_ms", overall.latency.pct_ms(99), th.p99_ms, "ms", n),
          measure("p95_spikes", len(bad), 0, "windows", len(steady),
                  detail=f"k={th.p95_spike_k:g} x median {median} ms: {bad}" if bad else
                  f"k={th.p95_spike_k:g}, median window p95 {median} ms"),
          measure("memory_growth", max(growth.values(), default=0.0), th.memory_growth, "ratio",
                  len(steady), detail=str(growth)),
          measure("restarts", len(set(restarts) | set(dead)), 0, "services", len(windows),
                  detail=",".join(sorted(set(restarts) | set(dead)))),
          measure("stuck_requests", stuck, 0, "requests", planned),
          measure("unhealthy_probes", unhealthy, 0, "probes", len(windows)),
          measure("aborted", int(abort is not None), 0, "runs", 1, detail=abort or "")]
    facts = {"overall": overall.to_dict(), "memory_growth": growth, "restarts": restarts,
             "dead": dead, "p95_spikes": bad, "median_window_p95_ms": median}
    return ms, facts
