"""Gate 3 (a-c): run the attack library against a contract's surfaces."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psutil

from attacks.base import REGISTRY, AttackContext, Canaries, Target, load_attacks
from toolkit import litter
from toolkit.auth import Signer
from toolkit.contract import Contract, Surface
from toolkit.errors import TargetError, ToolkitError, UsageError
from toolkit.model import Finding
from toolkit.runner import GateResult, GateRun, gate_run, load_locked
from toolkit.supervisor import Supervisor, listeners_on
from toolkit.transport import HttpDeliverer, check_host

FORMATS = ("json", "sarif", "junit", "md", "html")


@dataclass
class AttackConfig:
    contract_path: Path | None = None
    selection: list[str] = field(default_factory=list)  # families or ids; empty = all
    surfaces: list[str] = field(default_factory=list)
    seed: int | None = None
    budget: str = "standard"
    formats: tuple[str, ...] = ("json", "sarif", "junit", "md")
    allow_remote: set[str] = field(default_factory=set)
    start_stack: bool = True


@dataclass
class Case:
    attack_id: str
    title: str
    surface: str
    status: str  # vulnerable | clean | skipped | error
    sent: int
    findings: list[Finding] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"attack_id": self.attack_id, "title": self.title, "surface": self.surface,
                "status": self.status, "sent": self.sent, "findings": len(self.findings),
                "notes": self.notes}


def select(selection: list[str]) -> list[type[Any]]:
    attacks = load_attacks()
    if not selection:
        return list(attacks.values())
    chosen: list[type[Any]] = []
    for name in selection:
        hits = [a for i, a in attacks.items() if name in (i, a.spec.family)]
        if not hits:
            known = sorted({a.spec.family for a in attacks.values()} | set(attacks))
            raise UsageError(f"unknown attack {name!r}; known: {', '.join(known)} (see toolkit attack --list)")
        chosen += [a for a in hits if a not in chosen]
    return chosen


def benign(c: Contract, surface: Surface, probe_name: str) -> list[Any]:
    """Harmless payloads per class, most specific first, for baselines and auth tests."""
    cls = surface.classes[0]
    pol = c.raw.get("policy", {})
    commands = pol.get("allowed_commands") or ["echo"]
    if cls == "path":
        return [probe_name, "."]
    if cls == "argv":
        return [[commands[0], "toolkit-probe"], [commands[0]]]
    if cls == "command":
        return [f"{commands[0]} toolkit-probe", commands[0]]
    if cls == "env":
        return [{}]
    if cls == "tool":
        return list(pol.get("allowed_tools") or ["file.read"])
    return ["--help", "--version"]


class Engine:
    def __init__(self, cfg: AttackConfig, c: Contract, run: GateRun):
        self.cfg, self.c, self.run = cfg, c, run
        self.work = litter.temp_dir("toolkit-canaries-")
        self.canaries = Canaries(self.work)
        self.sup: Supervisor | None = None
        self.client = httpx.Client(trust_env=False, follow_redirects=False)
        self.ctx = AttackContext(c, cfg.seed if cfg.seed is not None else run.seed, cfg.budget,
                                 self.canaries, self.service_pids, self.transcript)
        self.cases: list[Case] = []
        self.errors: list[str] = []
        self.closers: list[Callable[[], None]] = []

    # ---------------------------------------------------------- plumbing
    def transcript(self, finding: Finding, text: str) -> str:
        rel = f"transcripts/{finding.attack_id}-{finding.fingerprint[:16]}.txt"
        self.run.evidence.write_bytes(rel, self.ctx.redact(text).encode("utf-8", "replace"))
        return rel

    def service_pids(self) -> dict[str, tuple[int, float]]:
        if self.sup is not None:
            out = {}
            for name, r in self.sup.running.items():
                try:
                    out[name] = (r.pid, psutil.Process(r.pid).create_time())
                except psutil.NoSuchProcess:
                    out[name] = (r.pid, 0.0)
            return out
        ports = {s.port: s.name for s in self.c.services if s.port}
        found = {}
        for item in listeners_on(list(ports)):
            if item["pid"]:
                found[ports[item["port"]]] = (item["pid"], psutil.Process(item["pid"]).create_time())
        return found

    def start(self) -> None:
        if self.cfg.start_stack and any(s.command for s in self.c.services) and self.c.surfaces:
            used = {s.get("service") for s in self.c.surfaces if s.transport == "http"}
            if used - {None}:
                self.sup = Supervisor(self.c, marker=f"attack-{self.run.evidence.run_id}",
                                      canary=self.canaries.secret, log_dir=self.run.evidence.dir / "service-logs",
                                      on_event=self.run.emit)
                self.run.log("starting the stack")
                self.sup.start_all()

    def stop(self) -> None:
        if self.sup is not None:
            self.sup.stop_all()
            self.sup.close()
            self.sup = None

    def cleanup(self) -> None:
        for close in self.closers:
            close()
        problems = self.canaries.cleanup()
        litter.remove_tree(self.work)
        self.client.close()
        self.run.emit("canaries.removed", problems=problems)

    # ---------------------------------------------------------- targets
    def targets(self) -> dict[str, Target]:
        wanted = set(self.cfg.surfaces)
        unknown = wanted - {s.name for s in self.c.surfaces}
        if unknown:
            raise UsageError(f"no surface named {', '.join(sorted(unknown))}; surfaces: "
                             f"{', '.join(s.name for s in self.c.surfaces)}")
        out = {}
        for surf in self.c.surfaces:
            if wanted and surf.name not in wanted:
                continue
            try:
                out[surf.name] = self._target(surf)
            except TargetError as exc:
                self.errors.append(f"surface {surf.name!r} could not be attacked: {exc}")
                self.run.emit("surface.unreachable", surface=surf.name, notes=[str(exc)])
        if not out and not self.errors:
            raise ToolkitError(f"{self.c.path}: no [[surfaces]] to attack; add at least one")
        return out

    def _target(self, surf: Surface) -> Target:
        variables = {**self.c.base_vars(), "sandbox": str(surf.sandbox or ""), "canary_secret": self.canaries.secret,
                     "port": self._port(surf)}
        if surf.transport == "mcp-stdio":
            from toolkit.mcp_transport import McpDeliverer

            deliver: Any = McpDeliverer(self.c, surf, variables)
            self.closers.append(deliver.close)
        else:
            deliver = HttpDeliverer(self.c, surf, Signer(self.c.auth), self.client, variables)
            check_host(deliver.base, self.cfg.allow_remote)
        probe = self._probe_file(surf)
        target = Target(surf, deliver)
        for candidate in benign(self.c, surf, probe):
            target.benign = candidate
            target.baseline = target.send(candidate)
            if target.baseline.ok or target.baseline.status is None:
                break
        assert target.baseline is not None  # nosec B101 - benign() never returns an empty list
        if target.baseline.status is None:
            target.notes.append(f"baseline failed: {target.baseline.error}")
        elif not target.baseline.ok:
            # a surface that refuses even a harmless request cannot show an attack succeeding
            raise TargetError(f"surface {surf.name!r}: the harmless baseline request {target.benign!r} was refused "
                              f"(HTTP {target.baseline.status}: {target.baseline.text[:160]!r}), so no attack "
                              f"could be told apart from a failure; check the surface's request template")
        return target

    def _port(self, surf: Surface) -> Any:
        name = surf.get("service")
        return self.c.service(name).port if name else ""

    def _probe_file(self, surf: Surface) -> str:
        name = f"toolkit-probe-{secrets.token_hex(4)}.txt"
        box = surf.sandbox
        if box is None:
            return "."
        box.mkdir(parents=True, exist_ok=True)
        self.canaries.file(box, name, "toolkit probe file")
        return name

    # ---------------------------------------------------------- running
    def execute(self, attacks: list[type[Any]], targets: dict[str, Target]) -> None:
        usable = {n: t for n, t in targets.items() if t.baseline and t.baseline.status is not None}
        for name, t in targets.items():
            if name not in usable:
                self.errors.append(f"surface {name!r} could not be attacked: {'; '.join(t.notes)}")
                self.run.emit("surface.unreachable", surface=name, notes=t.notes)
        for cls in attacks:
            for target in self._scope(cls, usable):
                self._case(cls, target)
        leak = REGISTRY.get("T-LEAK-001")
        if leak is not None and leak in attacks and usable:
            self._passive(leak, usable)

    def _scope(self, cls: type[Any], targets: dict[str, Target]) -> list[Target]:
        matching = [t for t in targets.values() if set(cls.spec.classes) & set(t.surface.classes)]
        if cls.spec.scope == "surface":
            return matching
        seen: dict[Any, Target] = {}
        for t in matching:
            key = getattr(t.deliver, "endpoint", t.name)
            if cls.spec.scope == "service":
                key = key[0] if isinstance(key, tuple) else key
            seen.setdefault(key, t)
        return list(seen.values())

    def _case(self, cls: type[Any], target: Target) -> None:
        spec = cls.spec
        before, notes_before = target.sent, len(target.notes)
        findings: list[Finding] = []
        status = "clean"
        self.run.emit("attack.start", attack_id=spec.id, surface=target.name)
        try:
            for finding in cls().run(self.ctx, target):
                findings.append(finding)  # kept even if the target dies later in the case
        except ToolkitError as exc:
            status, notes = "error", [str(exc)]
            self.errors.append(f"{spec.id} on {target.name}: {exc}")
        except Exception as exc:  # the tool broke: an errored case, never a green one
            status, notes = "error", [f"{type(exc).__name__}: {exc}"]
            self.errors.append(f"{spec.id} on {target.name}: tool error {type(exc).__name__}: {exc}")
        sent = target.sent - before
        notes = target.notes[notes_before:] if status != "error" else notes
        if status != "error":
            status = "vulnerable" if findings else ("clean" if sent else "skipped")
        self._record(Case(spec.id, spec.title, target.name, status, sent, _dedupe(findings), notes))

    def _record(self, case: Case) -> None:
        self.cases.append(case)
        for f in case.findings:
            self.run.emit("finding", **f.to_dict())
        self.run.emit("attack.case", **case.to_dict())

    def _passive(self, leak: type[Any], targets: dict[str, Target]) -> None:
        from attacks.leaks import passive_scan, scan_at_rest, scan_logs

        first = next(iter(targets.values()))
        logs = [p for s in self.c.services for p in s.logs]
        if self.sup is None:
            logs = [p for p in logs if p.exists()]
        else:
            logs += sorted((self.run.evidence.dir / "service-logs").glob("*.log"))
        at_rest = [p for s in self.c.services for p in s.state]
        at_rest += [self.c.resolve(p) for p in self.c.raw.get("secrets", {}).get("scan", [])]
        at_rest += [self.c.resolve(d["path"]) for d in self.c.raw.get("durability", {}).get("databases", [])]
        findings = (passive_scan(self.ctx, leak.spec, targets) + scan_logs(self.ctx, leak.spec, first, logs)
                    + scan_at_rest(self.ctx, leak.spec, first, at_rest, "state"))
        self._record(Case(leak.spec.id, leak.spec.title, "(all replies and logs)",
                          "vulnerable" if findings else "clean", len(self.ctx.replies) + len(logs),
                          _dedupe(findings), [f"checked {len(self.ctx.replies)} replies, {len(logs)} logs and "
                                              f"{len(at_rest)} state/config paths"]))


def _dedupe(findings: list[Finding]) -> list[Finding]:
    out: dict[str, Finding] = {}
    for f in findings:
        out.setdefault(f.fingerprint, f)
    return list(out.values())


def run_attacks(cfg: AttackConfig, subscribe: Callable[[GateRun], None] | None = None) -> tuple[GateResult, list[Case]]:
    if cfg.budget not in ("quick", "standard", "deep"):
        raise UsageError(f"--budget {cfg.budget!r}: use quick, standard or deep")
    attacks = select(cfg.selection)
    c = load_locked(cfg.contract_path)
    with gate_run(c, "attack", "gate3-attack") as run:
        from reports import attach

        attach(run, cfg.formats)
        if subscribe:
            subscribe(run)
        engine = Engine(cfg, c, run)
        try:
            engine.start()
            targets = engine.targets()
            engine.execute(attacks, targets)
        finally:
            engine.stop()
            engine.cleanup()
        result = _verdict(run, engine, cfg)
    return result, engine.cases


def _verdict(run: GateRun, engine: Engine, cfg: AttackConfig) -> GateResult:
    cases = engine.cases
    findings = [f for case in cases for f in case.findings]
    sent = sum(case.sent for case in cases)
    errors = list(engine.errors)
    if sent == 0:
        errors.append("no payload was sent: nothing was tested")
    verdict = "error" if errors else ("fail" if findings else "pass")
    run.emit("attack.done", verdict=verdict, budget=cfg.budget, seed=engine.ctx.seed)
    body = {"budget": cfg.budget, "attack_seed": engine.ctx.seed, "payloads_sent": sent,
            "findings": [f.to_dict() for f in findings], "cases": [c.to_dict() for c in cases],
            "errors": errors,
            "measurements": [{"metric": "findings", "value": len(findings), "threshold": 0, "unit": "count",
                              "verdict": "pass" if not findings else "fail", "samples": len(cases)},
                             {"metric": "payloads_sent", "value": sent, "threshold": 1, "unit": "requests",
                              "verdict": "pass" if sent else "error", "samples": sent}]}
    return run.seal(verdict, body)
