"""`toolkit gates --dry-run`: what every gate would do with this contract, touching nothing.

Each planner reads the contract the way its gate does (same sections, same defaults, same
path resolution) and describes the run without starting a process or writing a file. A
gate the contract cannot drive (a missing section) is reported as such, not raised.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from toolkit.core.contract import Contract, start_levels
from toolkit.core.errors import ContractError
from toolkit.core.runner import load_locked

Planner = Callable[[Contract, Path], list[str]]


def _cycle(c: Contract, path: Path) -> list[str]:
    from toolkit.gates.cycle import checks_per_service

    interval = float(c.raw.get("defaults", {}).get("health_interval_s", 5))
    levels = [", ".join(s.name for s in lvl) for lvl in start_levels(c)]
    checks = checks_per_service(1800, interval)
    return [f"start in order: {' | '.join(levels) or 'no services'}",
            f"probe health every {interval:g} s: {checks} checks per service per 30 min cycle"]


def _soak(c: Contract, path: Path) -> list[str]:
    spec = c.section("soak", "soak")
    duration = float(spec.get("duration", 3600))
    warmup = float(spec.get("warmup", min(600.0, duration / 5)))
    if warmup >= duration:
        raise ContractError(f"{c.path}: soak.warmup {warmup:g} s is not shorter than soak.duration "
                            f"{duration:g} s")
    traffic = spec.get("traffic", [])
    for t in traffic:
        if "service" in t:
            c.service(t["service"])
    rate = sum(float(t["rate_per_s"]) for t in traffic)
    return [(f"{len(traffic)} traffic classes, {rate:g} requests/s in all, for {duration:g} s "
             f"(first {warmup:g} s excluded): about {rate * duration:.0f} requests")]


def _attack(c: Contract, path: Path) -> list[str]:
    from toolkit.gates.attack import select

    attacks = select([])
    pairs = [(a.spec.id, s.name) for a in attacks for s in c.surfaces if set(a.spec.classes) & set(s.classes)]
    return [f"{len(c.surfaces)} surfaces, {len(attacks)} attacks, {len(pairs)} attack/surface cases"]


def _secrets(c: Contract, path: Path) -> list[str]:
    sec = c.raw.get("secrets", {})
    scan = [str(c.resolve(p)) for p in sec.get("scan", [])] or ["<the contract's folder>"]
    return [f"scan {', '.join(scan)}; bandit over {len(sec.get('code', []))} code folder(s)"]


def _drill(c: Contract, path: Path) -> list[str]:
    from toolkit.gates.drill import DrillConfig, plan

    c.section("durability", "drill")
    return plan(DrillConfig(path))


def _determinism(c: Contract, path: Path) -> list[str]:
    from toolkit.gates.determinism import build_command

    spec = c.section("determinism", "determinism")
    argv = build_command(c, c.evidence_dir / "gate5-runN-junit.xml")
    cwd = c.resolve(spec.get("cwd", "."))
    return [f"run {spec.get('runs', 2)} times in {cwd}: {' '.join(argv)}"]


PLANNERS: dict[str, Planner] = {"cycle": _cycle, "soak": _soak, "attack": _attack, "secrets": _secrets,
                                "drill": _drill, "determinism": _determinism}


def plan_gates(path: Path) -> dict[str, list[str]]:
    """Every gate's plan; a gate this contract cannot drive says why instead."""
    c = load_locked(path)
    out: dict[str, list[str]] = {}
    for gate, planner in PLANNERS.items():
        try:
            out[gate] = planner(c, c.path)
        except ContractError as exc:
            out[gate] = [f"cannot run: {exc}"]
    return out
