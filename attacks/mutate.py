"""Hypothesis-driven payload mutation under the run's seed (budget "deep").

Hypothesis draws the mutation plan (which characters, which encoding, which case) and
the run's recorded seed pins it, so the same seed gives the same payloads.
"""

from __future__ import annotations

from urllib.parse import quote

from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st

_LOOKALIKE = {
    ".": ["\uff0e", "\u2024", "%2e", "%252e"],
    "/": ["\\", "%2f", "%252f", "\u2215", "%c0%af"],
}
_OPS = ("lookalike", "encode_one", "double_slash", "case_flip", "upper")


def _apply(text: str, op: str, index: int, choice: int) -> str:
    if not text:
        return text
    i = index % len(text)
    ch = text[i]
    if op == "upper":
        return text.upper()
    if op == "encode_one":
        return text[:i] + quote(ch, safe="") + text[i + 1:]
    if op == "lookalike" and ch in _LOOKALIKE:
        options = _LOOKALIKE[ch]
        return text[:i] + options[choice % len(options)] + text[i + 1:]
    if op == "double_slash" and ch == "/":
        return text[:i] + "//" + text[i + 1:]
    if op == "case_flip":
        return text[:i] + ch.swapcase() + text[i + 1:]
    return text


def mutations(text: str, run_seed: int, count: int) -> list[str]:
    """Up to ``count`` distinct mutations of ``text``, reproducible from ``run_seed``."""
    out: list[str] = []
    plan = st.lists(st.tuples(st.sampled_from(_OPS), st.integers(0, 10_000), st.integers(0, 10)),
                    min_size=1, max_size=3)

    @seed(run_seed)
    @settings(max_examples=count * 12, database=None, derandomize=False, deadline=None,
              phases=[Phase.generate], suppress_health_check=list(HealthCheck))
    @given(plan)
    def collect(steps: list[tuple[str, int, int]]) -> None:
        mutated = text
        for op, index, choice in steps:
            mutated = _apply(mutated, op, index, choice)
        if mutated != text and mutated not in out and len(out) < count:
            out.append(mutated)

    collect()
    return out
