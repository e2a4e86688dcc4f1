"""nuclei-style run controls for attacks: a global request rate limit and parallel surfaces."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

T = TypeVar("T")


class Pacer:
    """At most ``rate`` sends per second over the whole run, shared by every surface and thread."""

    def __init__(
        self,
        rate: float | None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self.interval = 1.0 / rate if rate else 0.0
        self.clock, self.sleep = clock, sleep
        self.next_at = 0.0
        self.lock = threading.Lock()
        self.sent = 0
        self.waited_s = 0.0

    def wait(self) -> None:
        if not self.interval:
            return
        with self.lock:
            now = self.clock()
            at = max(now, self.next_at)
            self.next_at = at + self.interval
            self.sent += 1
        if at > now:
            self.waited_s += at - now
            self.sleep(at - now)


class Paced:
    """A deliverer whose ``send`` waits for the pacer; the rest is the wrapped deliverer's."""

    def __init__(self, inner: Any, pacer: Pacer):
        self._inner, self._pacer = inner, pacer

    def send(self, payload: Any, **kw: Any) -> Any:
        self._pacer.wait()
        return self._inner.send(payload, **kw)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


def paced(deliver: Any, pacer: Pacer) -> Any:
    return Paced(deliver, pacer) if pacer.interval else deliver


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
