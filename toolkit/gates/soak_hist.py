"""Latency histograms for the soak: HdrHistogram, bounded memory whatever the duration, mergeable.

Values are recorded in microseconds from 1 us to 1 h with 2 significant digits (1% error),
the configuration wrk2 uses. A window stores its histograms encoded (HdrHistogram's own
compressed base64 format), so the summary and any later reader merge windows exactly
instead of averaging percentiles.
"""

from __future__ import annotations

from typing import Any

from hdrh.histogram import HdrHistogram

LOWEST_US = 1
HIGHEST_US = 3_600_000_000
DIGITS = 2


class Hist:
    """One latency distribution in milliseconds."""

    def __init__(self) -> None:
        self.h = HdrHistogram(LOWEST_US, HIGHEST_US, DIGITS)

    def record_ms(self, ms: float) -> None:
        self.h.record_value(max(LOWEST_US, min(HIGHEST_US, int(ms * 1000))))

    def merge(self, other: Hist) -> Hist:
        if other.count:
            self.h.add(other.h)
        return self

    @property
    def count(self) -> int:
        return int(self.h.get_total_count())

    def pct_ms(self, q: float) -> float | None:
        if not self.count:
            return None
        return round(float(self.h.get_value_at_percentile(q)) / 1000, 3)

    def summary(self) -> dict[str, Any]:
        return {"count": self.count, "p50_ms": self.pct_ms(50), "p95_ms": self.pct_ms(95),
                "p99_ms": self.pct_ms(99),
                "max_ms": round(self.h.get_max_value() / 1000, 3) if self.count else None}

    def encode(self) -> str:
        return "" if not self.count else self.h.encode().decode("ascii")

    @classmethod
    def decode(cls, text: str) -> Hist:
        hist = cls()
        if text:
            hist.h.decode_and_add(text.encode("ascii"))
        return hist
