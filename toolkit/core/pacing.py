"""nuclei-style run controls for attacks: a global request rate limit and parallel surfaces."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

T = TypeVar("T")


class Pacer:
    """At most ``rate`` sends per second over the whole run, shared by every surface and thread.

    It also measures what was really used: requests sent, the most in flight at once, the
    span from the first to the last, and how long the limit held requests back.
    """

    def __init__(
        self,
        rate: float | None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self.rate = rate
        self.interval = 1.0 / rate if rate else 0.0
        self.clock, self.sleep = clock, sleep
        self.next_at = 0.0
        self.lock = threading.Lock()
        self.sent = 0
        self.waited_s = 0.0
        self.in_flight = 0
        self.peak = 0
        self.first: float | None = None
        self.last = 0.0

    def wait(self) -> None:
        """Hold the caller until its slot; every request (a redirect hop too) takes one."""
        with self.lock:
            now = self.clock()
            at = max(now, self.next_at) if self.interval else now
            self.next_at = at + self.interval
            self.sent += 1
            self.first = at if self.first is None else self.first
            self.last = max(self.last, at)
        if at > now:
            self.waited_s += at - now
            self.sleep(at - now)

    def enter(self) -> None:
        with self.lock:
            self.in_flight += 1
            self.peak = max(self.peak, self.in_flight)

    def leave(self) -> None:
        with self.lock:
            self.in_flight -= 1

    def measured(self, concurrency: int) -> dict[str, Any]:
        """The run controls as asked and as used, for the evidence."""
        span = self.last - self.first if self.first is not None else 0.0
        return {
            "rate_limit_per_s": self.rate,
            "concurrency": concurrency,
            "requests": self.sent,
            "span_s": round(span, 3),
            "achieved_rate_per_s": round((self.sent - 1) / span, 2) if span > 0 else None,
            "max_in_flight": self.peak,
            "held_back_s": round(self.waited_s, 3),
        }


def paced(deliver: Any, pacer: Pacer) -> Any:
    """``deliver`` itself, each request now taking a slot of the pacer and being counted.

    The object keeps its identity and type (a subclass made on the fly), so isinstance
    checks, attributes set later and closers registered earlier all still apply. A deliverer
    with a ``pace`` hook (HTTP: one slot per redirect hop too) gets the pacer there instead.
    """
    base = type(deliver)
    hooked = hasattr(deliver, "pace")
    if hooked:
        deliver.pace = pacer.wait

    def send(self: Any, payload: Any, **kw: Any) -> Any:
        if not hooked:
            pacer.wait()
        pacer.enter()
        try:
            return base.send(self, payload, **kw)
        finally:
            pacer.leave()

    deliver.__class__ = type(f"Paced{base.__name__}", (base,), {"send": send})
    return deliver


def run_lanes(jobs: Sequence[tuple[str, T]], work: Callable[[T], None], concurrency: int) -> None:
    """Run ``work`` on each job; jobs sharing a lane (a surface) run in order, lanes in parallel.

    A surface never sees two attacks at once (its request counters and baselines stay
    per-attack); up to ``concurrency`` surfaces are attacked at the same time.
    """
    if concurrency <= 1:
        for _, job in jobs:
            work(job)
        return
    lanes: dict[str, list[T]] = {}
    for lane, job in jobs:
        lanes.setdefault(lane, []).append(job)

    def drain(items: list[T]) -> None:
        for item in items:
            work(item)

    with ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="attack-lane") as pool:
        for future in [pool.submit(drain, items) for items in lanes.values()]:
            future.result()
