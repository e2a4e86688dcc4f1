"""Live soak progress: a rich panel on a terminal, one plain line per window otherwise (CI logs).

A subscriber to the soak's ``MinuteWindow`` events; it never touches the run itself.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from rich.console import Console
from rich.live import Live
from rich.markup import escape
from rich.table import Table

from toolkit.core.events import Bus, MinuteWindow


def _ms(v: float | None) -> str:
    return "-" if v is None else f"{v:.1f}"


def _mb(services: dict[str, Any]) -> str:
    return " ".join(
        f"{n}={s.get('rss_bytes', 0) / 2**20:.0f}MB"
        for n, s in sorted(services.items())
        if "rss_bytes" in s
    )


def line(doc: dict[str, Any], duration_s: float) -> str:
    """One window as one plain line."""
    o = doc["overall"]
    gen = doc["generator"]
    tail = f" GENERATOR-BOUND ({gen['saturated']})" if gen.get("saturated") else ""
    breach = f" BREACH: {'; '.join(doc['breaches'])}" if doc.get("breaches") else ""
    return (
        f"window {doc['window']:04d} t={doc['end_s']:.0f}/{duration_s:.0f}s "
        f"rate {doc['achieved_rate_per_s']:.2f}/{doc['asked_rate_per_s']:.2f} req/s "
        f"req {o['count']} err {o['errors']} p95 {_ms(o['p95_ms'])} ms p99 {_ms(o['p99_ms'])} ms "
        f"in-flight {doc['in_flight']} stuck {doc['stuck']} lag-p99 {_ms(gen['lag']['p99_ms'])} ms "
        f"cpu {gen['cpu_percent']}% rss {_mb(doc['services'])}{tail}{breach}"
    )


class Progress:
    """Call ``start()``, pass ``attach`` to the soak as a subscriber, then ``stop()``."""

    def __init__(self, console: Console, duration_s: float | None, window_s: float | None):
        self.console, self.duration, self.window = console, duration_s, window_s
        self.live: Live | None = None
        self.t0 = time.monotonic()
        self.last: dict[str, Any] | None = None
        self.errors = self.requests = 0
        self._lock = threading.Lock()

    def start(self) -> None:
        self.t0 = time.monotonic()
        if self.console.is_terminal:
            self.live = Live(get_renderable=self.render, console=self.console,
                             refresh_per_second=2, transient=False)
            self.live.start()

    def stop(self) -> None:
        if self.live is not None:
            self.live.stop()

    def attach(self, bus: Bus) -> None:
        bus.on(MinuteWindow, lambda event: self.on_window(event.document))

    def on_window(self, doc: dict[str, Any]) -> None:
        with self._lock:
            self.duration, self.window = doc["duration_s"], doc["interval_s"]
            self.t0 = time.monotonic() - doc["end_s"]
            self.last = doc
            self.requests += doc["overall"]["count"]
            self.errors += doc["overall"]["errors"]
        if self.live is None:
            self.console.print(line(doc, doc["duration_s"]), markup=False, highlight=False,
                               soft_wrap=True)

    def render(self) -> Table:
        elapsed = time.monotonic() - self.t0
        t = Table(title="toolkit soak (Gate 2)", show_header=False, expand=False)
        t.add_column("what")
        t.add_column("value")
        left = "-" if self.duration is None else f"{max(0.0, self.duration - elapsed):.0f} s"
        t.add_row("elapsed / remaining", f"{elapsed:.0f} s / {left}")
        with self._lock:
            doc = self.last
            t.add_row("requests / errors", f"{self.requests} / {self.errors}")
        if doc is None:
            t.add_row("first window", "after the services are up and one window has passed")
            return t
        o, gen = doc["overall"], doc["generator"]
        t.add_row("rate achieved / asked",
                  f"{doc['achieved_rate_per_s']:.2f} / {doc['asked_rate_per_s']:.2f} req/s")
        t.add_row("last window p95 / p99", f"{_ms(o['p95_ms'])} / {_ms(o['p99_ms'])} ms")
        t.add_row("in flight / stuck", f"{doc['in_flight']} / {doc['stuck']}")
        t.add_row(
            "generator lag p99 / CPU",
            f"{_ms(gen['lag']['p99_ms'])} ms / {gen['cpu_percent']}%"
            + (f" [red]{escape(gen['saturated'])}[/]" if gen.get("saturated") else ""),
        )
        for name, s in sorted(doc["services"].items()):
            t.add_row(f"  {escape(name)}", f"RSS {s.get('rss_bytes', 0) / 2**20:.1f} MB, CPU "
                      f"{s.get('cpu_percent')}%, health {s.get('healthy', '-')}")
        if doc.get("breaches"):
            t.add_row("[red]breach[/]", escape("; ".join(doc["breaches"])))
        return t
