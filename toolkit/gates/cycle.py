"""Gate 1: N start/stop cycles; healthy throughout; after each stop, a provably clean machine."""

from __future__ import annotations

import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psutil

from toolkit.core import contract as contract_mod
from toolkit.core import platform
from toolkit.core.contract import Contract, start_levels
from toolkit.core.errors import TargetError
from toolkit.core.events import (
    ChecksCounted,
    CycleDone,
    CycleFailure,
    CyclePhase,
    CycleStarted,
    LeftoverFound,
    ListenerFound,
    OrphanFound,
    ZombieFound,
)
from toolkit.core.runner import GateResult, GateRun, Subscriber, gate_run, load_locked
from toolkit.core.stack import state_file
from toolkit.core.supervisor import Supervisor, describe, listeners_on, probe, processes_with_marker
from toolkit.gates.base import Profile

FOUND: dict[str, type[LeftoverFound]] = {
    "zombies": ZombieFound, "orphans": OrphanFound, "listeners": ListenerFound,
}


@dataclass
class CycleConfig:
    contract_path: Path | None = None
    count: int = 10
    health_duration_s: float = 1800.0
    interval_s: float | None = None
    startup_timeout_s: float | None = None


@dataclass
class Tally:
    cycles_completed: int = 0
    checks_passed: int = 0
    checks_failed: int = 0
    zombies: list[dict[str, Any]] = field(default_factory=list)
    orphans: list[dict[str, Any]] = field(default_factory=list)
    listeners: list[dict[str, Any]] = field(default_factory=list)
    pid_files: list[str] = field(default_factory=list)
    escalations: list[dict[str, Any]] = field(default_factory=list)
    health_failures: list[dict[str, Any]] = field(default_factory=list)
    bad_exits: list[dict[str, Any]] = field(default_factory=list)
    logs_cut: list[dict[str, Any]] = field(default_factory=list)
    cycles: list[dict[str, Any]] = field(default_factory=list)
    failure: str | None = None


class CycleRun:
    def __init__(self, cfg: CycleConfig, c: Contract, run: GateRun):
        self.cfg, self.c, self.run = cfg, c, run
        self.t = Tally()
        self.interval = cfg.interval_s or float(c.defaults.health_interval_s)
        self.client = httpx.Client(trust_env=False)

    def execute(self) -> None:
        for i in range(1, self.cfg.count + 1):
            self.run.emit(CycleStarted(i, self.cfg.count, self.t.checks_passed,
                                       self.t.checks_failed))
            self._cycle(i)
            if self.t.failure:
                self.run.log(f"cycle {i}: FAILED: {self.t.failure}")
                return
            self.t.cycles_completed = i

    def _cycle(self, i: int) -> None:
        marker = f"cycle-{self.run.evidence.run_id}-{i}"
        sup = Supervisor(self.c, marker=marker, log_dir=self.run.evidence.dir / "service-logs",
                         on_event=self.run.emit)
        record: dict[str, Any] = {"cycle": i, "startup_s": {}, "shutdown_s": {}, "exit_codes": {},
                                  "logs": {}, "subreaper": False,
                                  "cgroup": None}
        self.t.cycles.append(record)
        try:
            self.run.emit(CyclePhase(f"cycle {i}: starting"))
            record["startup_s"] = self._start(sup)
            if record["startup_s"] is not None:
                self._watch(sup, i)
        finally:
            self.run.emit(CyclePhase(f"cycle {i}: stopping"))
            self._stop(sup, record)
            self.run.emit(CyclePhase(f"cycle {i}: proving clean"))
            self._prove_clean(sup, marker, i)
            sup.close()

    def _start(self, sup: Supervisor) -> dict[str, float] | None:
        if self.cfg.startup_timeout_s is not None:
            self.c.services = [
                _with_timeout(s, self.cfg.startup_timeout_s) for s in self.c.services
            ]
        try:
            return sup.start_all()
        except TargetError as exc:
            self._fail(f"startup: {exc}")
            return None

    def _watch(self, sup: Supervisor, i: int) -> None:
        start = time.monotonic()
        ticks = checks_per_service(per_cycle_s(self.cfg), self.interval)
        services = [s for s in self.c.services if s.health_url]
        with ThreadPoolExecutor(max_workers=max(1, len(services))) as pool:
            for k in range(ticks):
                time.sleep(max(0.0, start + k * self.interval - time.monotonic()))
                results = list(
                    pool.map(
                        lambda s: (s, probe(self.client, s.health_url or "", timeout=2.0)), services
                    )
                )
                sup.snapshot()
                for svc, (ok, status) in results:
                    if ok:
                        self.t.checks_passed += 1
                    else:
                        self.t.checks_failed += 1
                        self.t.health_failures.append(
                            {"cycle": i, "service": svc.name, "time": time.time(), "status": status}
                        )
                self.run.emit(ChecksCounted(self.t.checks_passed, self.t.checks_failed))
                if self.t.health_failures:
                    bad = self.t.health_failures[0]
                    self._fail(f"health check failed: {bad['service']} answered {bad['status']}")
                    return
        time.sleep(max(0.0, start + per_cycle_s(self.cfg) - time.monotonic()))

    def _stop(self, sup: Supervisor, record: dict[str, Any]) -> None:
        for res in sup.stop_all():
            record["shutdown_s"][res.service] = round(res.seconds, 4)
            record["exit_codes"][res.service] = res.exit_code
            svc = self.c.service(res.service)
            if res.escalated:
                self.t.escalations.append({"service": res.service, "seconds": res.seconds})
                self._fail(
                    f"{res.service} did not stop within {svc.stop_timeout_s:g} s (needed SIGKILL)"
                )
            elif not res.exit_ok:
                self.t.bad_exits.append({"cycle": record["cycle"], "service": res.service,
                                         "exit_code": res.exit_code,
                                         "accepted": list(svc.stop_exit_codes)})
                self._fail(f"{res.service} exited with code {res.exit_code} on SIGTERM (accepted: "
                           f"{', '.join(map(str, svc.stop_exit_codes))}; see stop_exit_codes)")
            for item in res.leftovers:
                self.t.orphans.append({**item, "service": res.service})
                self._fail(
                    f"{res.service} left pid {item['pid']} ({' '.join(item['cmdline'])}) running "
                    "after stop"
                )
            self._log_figures(record, res.service, res.log)
        record["subreaper"] = sup.subreaper
        record["cgroup"] = sup.cgroup_used  # None: no writable cgroup hierarchy here
        for item in sup.escaped:
            self._found("orphans", {**item, "service": None})

    def _log_figures(self, record: dict[str, Any], service: str,
                     log: dict[str, Any] | None) -> None:
        if log is None:
            return
        record["logs"][service] = log
        if log["cut"]:
            self.t.logs_cut.append({"cycle": record["cycle"], "service": service, **log})
            self.run.log(
                f"cycle {record['cycle']}: {service}'s log was cut: "
                f"{log['bytes_dropped']} of {log['bytes_seen']} bytes dropped (log_max_bytes "
                f"{log['max_bytes']}, "
                f"log_backups {log['backups']})"
            )

    def _prove_clean(self, sup: Supervisor, marker: str, i: int) -> None:
        # no settling sleep: stop_all() has waited for every service, so its sockets are closed
        for rec in sup.records.values():
            if rec.alive():
                self._found(
                    "orphans",
                    {"pid": rec.pid, "cmdline": rec.cmdline, "check": "recorded-process-alive"},
                )
                platform.kill_process(rec.pid, rec.create_time)
        for proc in processes_with_marker(marker):
            self._found(
                "orphans",
                {"pid": proc.pid, "cmdline": _cmd(proc), "check": "run-marker-in-environ"},
            )
            platform.kill_process(proc.pid, _create_time(proc))
        for child in psutil.Process().children():
            if _status(child) == psutil.STATUS_ZOMBIE:
                self._found(
                    "zombies", {"pid": child.pid, "cmdline": [], "check": "zombie-child-of-toolkit"}
                )
        platform.reap_children()
        ports = [s.port for s in self.c.services if s.port]
        for item in listeners_on(ports):
            if item["pid"] and sup.owns(item["pid"]):
                created = _create_time_of(item["pid"])  # the process owns() just judged
                self._found("listeners", {**item, "check": "listener-on-contract-port"})
                platform.kill_process(item["pid"], created)
            else:  # never signalled: the toolkit did not start it
                self._found("listeners", {**item, "check": "foreign-listener-on-contract-port",
                                          "signalled": False})
        for pid_file in self._pid_files():
            self.t.pid_files.append(str(pid_file))
            self._fail(f"pid file left behind: {pid_file}")

    def _pid_files(self) -> list[Path]:
        found = [state_file(self.c)] if state_file(self.c).exists() else []
        for svc in self.c.services:
            for p in svc.state:
                if p.is_dir():
                    found += sorted(p.rglob("*.pid"))
                elif p.suffix == ".pid" and p.exists():
                    found.append(p)
        return found

    def _found(self, kind: str, item: dict[str, Any]) -> None:
        getattr(self.t, kind).append(item)
        self.run.emit(FOUND[kind](item))
        who = describe(item.get("pid"), item.get("cmdline") or [])
        port = f" on port {item['port']}" if "port" in item else ""
        foreign = item.get("signalled") is False
        note = "; not signalled: the toolkit did not start it" if foreign else ""
        self._fail(f"{item['check']}: {who}{port}{note}")

    def _fail(self, reason: str) -> None:
        self.run.emit(CycleFailure(reason))
        self.run.log(f"failure: {reason}")
        if self.t.failure is None:
            self.t.failure = reason


def checks_per_service(duration: float, interval: float) -> int:
    """Probes per service in one cycle of ``duration`` seconds at ``interval``."""
    return max(1, int(round(duration / interval, 6)))


def per_cycle_s(cfg: CycleConfig) -> float:
    """The seed's health duration is the total over the gate: 30 min over 10 cycles at 5 s is
    36 probes per cycle, 360 intervals x 6 services = 2,160 checks (not 30 min per cycle)."""
    return cfg.health_duration_s / max(1, cfg.count)


def _with_timeout(svc: Any, timeout: float) -> Any:
    from dataclasses import replace

    return replace(svc, startup_timeout_s=timeout)


def _cmd(proc: psutil.Process) -> list[str]:
    try:
        return list(proc.cmdline())
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
        return []


def _create_time(proc: psutil.Process) -> float | None:
    try:
        return float(proc.create_time())
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return None


def _create_time_of(pid: int) -> float | None:
    try:
        return _create_time(psutil.Process(pid))
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return None


def _status(proc: psutil.Process) -> str:
    try:
        return str(proc.status())
    except psutil.NoSuchProcess:
        return ""


def run_cycle(cfg: CycleConfig, subscribers: Sequence[Subscriber] = ()) -> GateResult:
    """Gate 1; ``subscribers`` (a progress display) attach to the run's bus first."""
    if cfg.count < 1 or cfg.health_duration_s < 0:
        from toolkit.core.errors import UsageError

        raise UsageError(
            f"--count {cfg.count} and --health-duration {cfg.health_duration_s:g}s must be positive"
        )
    c = load_locked(cfg.contract_path)
    with gate_run(c, CycleGate.name, CycleGate.label, subscribers=subscribers) as run:
        from reports.cycle_html import CycleHtmlWriter

        CycleHtmlWriter(run).attach(run.bus)
        gate = CycleRun(cfg, c, run)
        try:
            gate.execute()
        finally:
            gate.client.close()
        return _seal(run, gate, cfg)


def _seal(run: GateRun, gate: CycleRun, cfg: CycleConfig) -> GateResult:
    t = gate.t
    verdict = "fail" if t.failure or t.cycles_completed < cfg.count else "pass"
    services = [s for s in gate.c.services if s.health_url]
    per_cycle = checks_per_service(per_cycle_s(cfg), gate.interval)
    body = {
        "cycles_requested": cfg.count,
        "cycles_completed": t.cycles_completed,
        "health_duration_s": cfg.health_duration_s,
        "interval_s": gate.interval,
        "checks_expected": per_cycle * len(services) * cfg.count,
        "health_checks_passed": t.checks_passed,
        "health_checks_failed": t.checks_failed,
        "zombies": t.zombies,
        "orphans": t.orphans,
        "leftover_listeners": t.listeners,
        "pid_files": t.pid_files,
        "escalations": t.escalations,
        "health_failures": t.health_failures,
        "bad_exit_codes": t.bad_exits,
        "logs_cut": t.logs_cut,
        "cycles": t.cycles,
        "failure": t.failure,
        "measurements": [asdict(m) for m in _measurements(t, cfg)],
    }
    run.emit(CycleDone(verdict, run.evidence.run_id, gate.c.name, body))
    return run.seal(verdict, body)


def _measurements(t: Tally, cfg: CycleConfig) -> list[Any]:
    from toolkit.core.model import measure

    return [
        measure("cycles_completed", t.cycles_completed, cfg.count, "cycles", higher_is_worse=False),
        measure(
            "health_checks_failed",
            t.checks_failed,
            0,
            "checks",
            samples=t.checks_passed + t.checks_failed,
        ),
        measure("zombies", len(t.zombies), 0, "processes"),
        measure("orphans", len(t.orphans), 0, "processes"),
        measure("leftover_listeners", len(t.listeners), 0, "sockets"),
        measure("sigkill_escalations", len(t.escalations), 0, "services"),
        measure("unaccepted_exit_codes", len(t.bad_exits), 0, "services"),
        measure("pid_files_left", len(t.pid_files), 0, "files"),
    ]


@dataclass(frozen=True)
class Strength:
    """Gate 1 at full strength, as the contract's [cycle] defines it."""

    count: int
    health_s: float
    interval_s: float
    startup_s: float | None


def cycle_strength(contract_path: Path | None) -> Strength:
    from toolkit.core.runner import default_contract_path

    return strength_of(contract_mod.load(contract_path or default_contract_path()))


def strength_of(c: Contract) -> Strength:
    """Gate 1 at full strength: the contract's [cycle], its interval else [defaults]'."""
    cyc = c.cycle
    interval = c.defaults.health_interval_s if cyc.interval is None else cyc.interval
    startup = cyc.startup_timeout_s
    return Strength(int(cyc.count), float(cyc.health_duration), float(interval),
                    None if startup is None else float(startup))


class CycleGate:
    """Gate 1: N start/stop cycles, healthy throughout, nothing left behind."""

    name, title, label = "cycle", "Gate 1", "gate1"
    needs = ("services", "cycle", "defaults")

    def plan(self, contract_path: Path | None, profile: Profile) -> CycleConfig:
        if profile.cycles:
            return CycleConfig(contract_path, profile.cycles, profile.health_s, profile.interval_s)
        full = cycle_strength(contract_path)  # full strength comes from the contract
        return CycleConfig(contract_path, full.count, full.health_s, full.interval_s,
                           full.startup_s)

    def describe(self, c: Contract) -> list[str]:
        interval = float(c.defaults.health_interval_s)
        levels = [", ".join(s.name for s in lvl) for lvl in start_levels(c)]
        checks = checks_per_service(1800, interval)
        return [f"start in order: {' | '.join(levels) or 'no services'}",
                f"probe health every {interval:g} s: {checks} checks per service per 30 min cycle"]

    def run(self, plan: CycleConfig) -> GateResult:
        return run_cycle(plan)
