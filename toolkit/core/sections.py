"""Typed contract sections: each key's schema node and default, declared once.

Every optional section of the boot contract (``[defaults]``, ``[cycle]``, ``[soak]``,
``[durability]``, ``[determinism]``, ``[secrets]``, ``[policy]``, ``[evidence]``) is a frozen
dataclass here. A field is a contract key: ``key(default, node)`` gives its default and the
schema node that validates it, so the schema table of the section (``table(cls)``) and its
defaults come from the same line. ``build(cls, raw)`` turns a validated table into the typed
section; ``given`` records which keys the contract wrote (a release asks whether
``[soak].duration`` was set, not only what it defaults to).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from toolkit.core import schema as s

MAX_RATE = 10_000.0  # requests per second from one traffic class or the sentinel writer
NAME_RE = r"[a-z0-9-]+"
BASE_PH = frozenset({"python", "contract_dir"})
WRITER_PH = BASE_PH | {"seq", "now", "port"}

_REQUIRED = object()

REQUEST_FIELDS: dict[str, s.Node] = {
    "service": s.Str(pattern=NAME_RE, what="a service name"),
    "base_url": s.Str(),
    "method": s.Str(choices=("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS")),
    "path": s.Str(),
    "query": s.Map(s.Any_()),
    "headers": s.Map(s.Str()),
    "json": s.Any_(),
    "body": s.Str(),
}

TRAFFIC = s.Table(
    {**REQUEST_FIELDS, "name": s.Str(), "rate_per_s": s.Num(positive=True, maximum=MAX_RATE),
     "stream": s.Bool(), "auth": s.Bool(),
     "expect_status": s.List(s.Num(minimum=100, maximum=599, integer=True)),
     # session churn: what a successful reply created is destroyed ``hold`` later
     "destroy": s.Table({"name": s.Str(), "method": s.Str(choices=("DELETE", "POST", "PUT")),
                         "path": s.Str(), "headers": s.Map(s.Str()), "json": s.Any_()},
                        required=("path",), placeholders=WRITER_PH | {"id"}),
     "hold": s.Duration(), "id_field": s.Str()},
    required=("name", "rate_per_s"),
    placeholders=WRITER_PH,
)

WRITER_RATE_PER_S = 10  # [durability.writer].rate_per_s when the writer names none
WRITER = s.Table(
    {**REQUEST_FIELDS, "rate_per_s": s.Num(positive=True, maximum=MAX_RATE)},
    placeholders=WRITER_PH,
)


def key(default: Any, node: s.Node, make: Callable[[Any], Any] | None = None) -> Any:
    """A contract key: its default (``_REQUIRED`` for none), the node that validates it and,
    for a nested table, how to type the validated value (``make``)."""
    meta: dict[str, Any] = {"node": node, "make": make}
    if default is _REQUIRED:
        return field(metadata=meta)
    if isinstance(default, (list, dict, set)):
        raise TypeError("section defaults are immutable: use a tuple")
    return field(default=default, metadata=meta)


def given_field() -> Any:
    return field(default=frozenset(), compare=False, repr=False)


T = TypeVar("T")


def keys_of(cls: type[Any]) -> list[dataclasses.Field[Any]]:
    """The fields of a section that are contract keys (everything but ``given``)."""
    return [f for f in dataclasses.fields(cls) if "node" in f.metadata]


def table(cls: type[Any], placeholders: frozenset[str] | None = None) -> s.Table:
    """The schema table of a section, derived from its fields."""
    nodes = {f.name: f.metadata["node"] for f in keys_of(cls)}
    required = tuple(f.name for f in keys_of(cls) if f.default is dataclasses.MISSING)
    return s.Table(nodes, required=required, placeholders=placeholders)


def defaults_of(cls: type[Any]) -> dict[str, Any]:
    """Each optional key's default, as the section declares it."""
    return {f.name: f.default for f in keys_of(cls) if f.default is not dataclasses.MISSING}


def build(cls: type[T], raw: Mapping[str, Any] | None) -> T:
    """The typed section from its validated table (``None``: the section is absent)."""
    raw = raw or {}
    values = {f.name: _typed(f, raw[f.name]) for f in keys_of(cls) if f.name in raw}
    return cls(**{**values, "given": frozenset(values)})


def _typed(f: dataclasses.Field[Any], value: Any) -> Any:
    """Nested tables through their ``make``; lists become tuples (a section is frozen).

    Numbers stay as the contract wrote them (an int is a float to the type checker), so
    evidence records ``300``, not ``300.0``; request templates stay plain mappings, like a
    surface's, because placeholder expansion and JSON encoding walk them as dicts.
    """
    make = f.metadata["make"]
    if make is not None:
        return make(value)
    return tuple(value) if isinstance(value, list) else value


@dataclass(frozen=True, kw_only=True)
class Defaults:
    """``[defaults]``: per-service keys override these."""

    host: str = key("127.0.0.1", s.Str())
    startup_timeout_s: float = key(90.0, s.Seconds())
    stop_timeout_s: float = key(10.0, s.Seconds())
    health_interval_s: float = key(5.0, s.Seconds())
    log_max_bytes: int = key(10 * 1024 * 1024, s.Num(minimum=1024, integer=True))
    log_backups: int = key(2, s.Num(integer=True, maximum=100))
    stop_exit_codes: tuple[int, ...] = key((0, 143), s.List(s.Num(integer=True, maximum=255)))
    allow_remote_health: tuple[str, ...] = key((), s.List(s.Str()))
    given: frozenset[str] = given_field()


@dataclass(frozen=True, kw_only=True)
class CycleSection:
    """``[cycle]``: Gate 1 at full strength; ``health_duration`` is the total over all cycles.

    ``interval`` unset means ``[defaults].health_interval_s``; ``startup_timeout_s`` unset
    means each service's own.
    """

    count: int = key(10, s.Num(minimum=1, integer=True))
    health_duration: float = key(1800.0, s.Duration())
    interval: float | None = key(None, s.Duration())
    startup_timeout_s: float | None = key(None, s.Num())
    given: frozenset[str] = given_field()


@dataclass(frozen=True, kw_only=True)
class Thresholds:
    """``[soak.thresholds]``: Gate 2's limits and how it judges them."""

    error_rate: float = key(0.005, s.Num())
    memory_growth: float = key(0.05, s.Num())
    p95_ms: float | None = key(None, s.Num())
    p99_ms: float | None = key(None, s.Num())
    p50_ms: float | None = key(None, s.Num())
    min_samples: int = key(20, s.Num(minimum=1, integer=True))
    rolling_windows: int = key(5, s.Num(minimum=1, integer=True))
    p95_spike_k: float = key(3.0, s.Num(minimum=1))
    # below this a window's p95 is jitter, not a spike
    p95_spike_floor_ms: float = key(20.0, s.Num())
    abort: bool = key(True, s.Bool())
    given: frozenset[str] = given_field()

    def limits(self) -> dict[str, Any]:
        """The thresholds as evidence records them (contract keys only)."""
        return {f.name: getattr(self, f.name) for f in keys_of(Thresholds)}


@dataclass(frozen=True, kw_only=True)
class SoakSection:
    """``[soak]``: open-model traffic for ``duration``, the first ``warmup`` left out."""

    duration: float = key(3600.0, s.Duration(positive=True))
    warmup: float = key(0.0, s.Duration())
    traffic: tuple[Mapping[str, Any], ...] = key((), s.TableList(TRAFFIC))
    window: float = key(60.0, s.Duration(positive=True))
    stuck_after: float = key(30.0, s.Duration(positive=True))
    thresholds: Thresholds = key(  # noqa: RUF009  (key() returns a dataclasses.field)
        Thresholds(), table(Thresholds), lambda v: build(Thresholds, v))
    given: frozenset[str] = given_field()


@dataclass(frozen=True, kw_only=True)
class Database:
    path: str
    service: str | None = None


DATABASE = s.Table({"path": s.Str(), "service": s.Str()}, required=("path",))


@dataclass(frozen=True, kw_only=True)
class DurabilitySection:
    """``[durability]``: what must survive a disaster, and how fast it must come back."""

    rpo_s: float = key(300, s.Seconds())
    rto_s: float = key(600, s.Seconds())
    state_dirs: tuple[str, ...] = key((), s.List(s.Str()))
    backup_dir: str = key("artifacts/backups", s.Str())
    databases: tuple[Database, ...] = key(
        (), s.TableList(DATABASE), lambda v: tuple(Database(**d) for d in v))
    writer: Mapping[str, Any] | None = key(None, WRITER)
    given: frozenset[str] = given_field()


@dataclass(frozen=True, kw_only=True)
class DeterminismSection:
    """``[determinism]``: the test command run ``runs`` times under a locked environment."""

    command: tuple[str, ...] = key(_REQUIRED, s.List(s.Str(), min_items=1))
    runs: int = key(2, s.Num(minimum=2, maximum=1000, integer=True))
    cwd: str = key(".", s.Str())
    expected_failures: tuple[str, ...] = key((), s.List(s.Str()))
    given: frozenset[str] = given_field()


@dataclass(frozen=True, kw_only=True)
class SecretsSection:
    """``[secrets]``: what the secrets gate scans, its baseline, logs and code for bandit."""

    scan: tuple[str, ...] = key((), s.List(s.Str()))
    baseline: str | None = key(None, s.Str())
    logs: tuple[str, ...] = key((), s.List(s.Str()))
    code: tuple[str, ...] = key((), s.List(s.Str()))
    given: frozenset[str] = given_field()


@dataclass(frozen=True, kw_only=True)
class PolicySection:
    """``[policy]``: the policy the target claims to enforce server-side."""

    allowed_tools: tuple[str, ...] = key((), s.List(s.Str()))
    allowed_commands: tuple[str, ...] = key((), s.List(s.Str()))
    denied_tools: tuple[str, ...] = key((), s.List(s.Str()))
    file: str | None = key(None, s.Str())
    reload_within_s: float = key(30.0, s.Seconds())
    given: frozenset[str] = given_field()


@dataclass(frozen=True, kw_only=True)
class EvidenceSection:
    """``[evidence]``: where runs, the ledger and drill history go."""

    dir: str = key("artifacts/evidence", s.Str())
    given: frozenset[str] = given_field()


SECTIONS: dict[str, type[Any]] = {
    "defaults": Defaults,
    "cycle": CycleSection,
    "soak": SoakSection,
    "durability": DurabilitySection,
    "determinism": DeterminismSection,
    "secrets": SecretsSection,
    "policy": PolicySection,
    "evidence": EvidenceSection,
}

PLACEHOLDERS: dict[str, frozenset[str]] = {"determinism": BASE_PH | {"junit"}}


def schema_tables() -> dict[str, s.Table]:
    """Every typed section's schema table, by section name (the contract's TOP uses these)."""
    return {name: table(cls, PLACEHOLDERS.get(name)) for name, cls in SECTIONS.items()}
