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


def paced(deliver: Any, pacer: Pacer) -> Any:
    """``deliver`` itself, its ``send`` now waiting for the pacer.

    The object keeps its identity and type (a subclass made on the fly), so isinstance
    checks, attributes set later and closers registered earlier all still apply.
    """
    if not pacer.interval:
        return deliver
    base = type(deliver)

    def send(self: Any, payload: Any, **kw: Any) -> Any:
        pacer.wait()
        return base.send(self, payload, **kw)

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
