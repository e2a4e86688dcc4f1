"""Gate 3 (a-c): run the attack library against a contract's surfaces."""

from __future__ import annotations

import dataclasses
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psutil

from attacks.base import (
    CRASH_SPEC,
    REGISTRY,
    AttackContext,
    Canaries,
    Target,
    load_attacks,
    share_cut,
    time_share,
)
from toolkit.core.auth import Signer
from toolkit.core.baseline import (
    accepted,
    discover,
    forms,
    make_repository,
    plant,
    repository_typed,
)
from toolkit.core.contract import Contract, Surface
from toolkit.core.errors import TargetError, ToolkitError, UsageError
from toolkit.core.events import (
    AttackDone,
    CanariesRecovered,
    CanariesRemoved,
    CaseFinished,
    CaseStarted,
    FindingMade,
    SurfaceBaseline,
    SurfaceUnreachable,
    TargetCrashed,
    ToolFingerprints,
    TranscriptMade,
)
from toolkit.core.model import Finding
from toolkit.core.pacing import Pacer, paced, run_lanes
from toolkit.core.runner import GateResult, GateRun, Subscriber, gate_run, load_locked
from toolkit.core.supervisor import Supervisor, listeners_on
from toolkit.core.transport import Deliverer, HttpDeliverer, Reply, check_host
from toolkit.gates.base import Profile

FORMATS = ("json", "sarif", "junit", "md", "html")
LITTER_JOURNAL = ".attack-litter.jsonl"
ENV_CANARY = "TOOLKIT_ENV_CANARY"  # planted in every target's environment (CWE-526 oracle)
MAX_CRASHES = 3
MIN_UNANSWERED = 3  # a case with at least this many unanswered payloads ...
UNANSWERED_SHARE = 1 / 3  # ... making more than this share of its requests is inconclusive


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
    rate_limit: float | None = None  # payloads per second over the whole run (None: unpaced)
    concurrency: int = 1  # surfaces attacked at the same time
    time_budget_s: float | None = None  # the whole run's time, shared out between its cases


@dataclass
class Case:
    attack_id: str
    title: str
    surface: str
    status: str  # vulnerable | clean | skipped | error
    sent: int
    findings: list[Finding] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    unanswered: int = 0  # requests that got no reply in time, even on a fresh connection
    dropped: int = 0  # requests the live target hung up on (a refusal by disconnecting)
    retried: int = 0  # requests answered only when retried on a fresh connection

    def to_dict(self) -> dict[str, Any]:
        return {"attack_id": self.attack_id, "title": self.title, "surface": self.surface,
                "status": self.status, "sent": self.sent, "findings": len(self.findings),
                "notes": self.notes, "unanswered": self.unanswered, "dropped": self.dropped,
                "retried": self.retried}


def select(selection: list[str]) -> list[type[Any]]:
    attacks = load_attacks()
    if not selection:
        return list(attacks.values())
    chosen: list[type[Any]] = []
    for name in selection:
        hits = [a for i, a in attacks.items() if name in (i, a.spec.family)]
        if not hits:
            known = sorted({a.spec.family for a in attacks.values()} | set(attacks))
            raise UsageError(
                f"unknown attack {name!r}; known: {', '.join(known)} (see toolkit attack --list)"
            )
        chosen += [a for a in hits if a not in chosen]
    return chosen


class Fresh:
    """``{{fresh}}``: a new, not yet existing file name in the sandbox each time it is expanded.

    For tools that refuse to overwrite (a move or copy destination). The names share the
    planted probe's stem, so cleanup sweeps whatever the target created under them.
    """

    def __init__(self, folder: Path, stem: str):
        self.folder, self.stem, self.n = folder, stem, 0

    def __str__(self) -> str:
        self.n += 1
        return str(self.folder / f"{self.stem}-{self.n}.txt")


class Engine:
    def __init__(self, cfg: AttackConfig, c: Contract, run: GateRun):
        self.cfg, self.c, self.run = cfg, c, run
        journal = c.evidence_dir / LITTER_JOURNAL
        recovered = Canaries.recover(journal)
        if recovered:
            run.emit(CanariesRecovered(recovered))
        self.work = Path(tempfile.mkdtemp(prefix="toolkit-canaries-"))
        self.canaries = Canaries(self.work, journal)
        self.crash_streak: dict[str, int] = {}
        self.sup: Supervisor | None = None
        self.client = httpx.Client(trust_env=False, follow_redirects=False)
        self.ctx = AttackContext(c, cfg.seed if cfg.seed is not None else run.seed, cfg.budget,
                                 self.canaries, self.service_pids, self.transcript)
        self.cases: list[Case] = []
        self.errors: list[str] = []
        self.inconclusive: list[str] = []  # cases with no finding where too much went unanswered
        self.closers: list[Callable[[], None]] = []
        self.listings: dict[str, list[dict[str, Any]]] = {}
        # one stdio server process per command line when surfaces go one at a time
        self.mcp_servers: dict[Any, Any] | None = {} if cfg.concurrency <= 1 else None
        self.pacer = Pacer(cfg.rate_limit)
        self.t0 = time.monotonic()
        self.lock = threading.Lock()
        self.left = 0  # cases not yet started, for the time shares
        self.cut: list[str] = []  # cases whose time share ran out

    # ---------------------------------------------------------- plumbing
    def transcript(self, finding: Finding, text: str) -> str:
        rel = f"transcripts/{finding.attack_id}-{finding.fingerprint[:16]}-{finding.variant_id}.txt"
        self.run.emit(TranscriptMade(rel, self.ctx.redact(text).encode("utf-8", "replace")))
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
                found[ports[item["port"]]] = (
                    item["pid"],
                    psutil.Process(item["pid"]).create_time(),
                )
        return found

    def start(self) -> None:
        """Start every service with a command, however the surfaces address it (base_url or
        service).
        """
        if self.cfg.start_stack and any(s.command for s in self.c.services) and self.c.surfaces:
            self.sup = Supervisor(
                self.c,
                marker=f"attack-{self.run.evidence.run_id}",
                canary=self.canaries.secret,
                log_dir=self.run.evidence.dir / "service-logs",
                on_event=self.run.emit,
            )
            self.sup.extra_env = {
                **getattr(self.sup, "extra_env", {}),
                ENV_CANARY: self.canaries.secret,
            }
            self.run.log("starting the stack")
            self.sup.start_all()

    def stop(self) -> None:
        for close in (
            self.closers
        ):  # stdio servers first: the supervisor's sweep must not take them for escapees
            close()
        self.closers.clear()
        if self.sup is not None:
            self.sup.stop_all()
            self.sup.close()
            self.sup = None

    def cleanup(self) -> None:
        for close in self.closers:
            close()
        problems = self.canaries.cleanup()
        shutil.rmtree(self.work, ignore_errors=True)
        self.client.close()
        self.run.emit(CanariesRemoved(problems))

    # ---------------------------------------------------------- targets
    def targets(self) -> dict[str, Target]:
        wanted = check_surfaces(self.cfg, self.c)
        out = {}
        for surf in self.c.surfaces:
            if wanted and surf.name not in wanted:
                continue
            try:
                out[surf.name] = self._target(surf)
            except TargetError as exc:
                self.errors.append(f"surface {surf.name!r} could not be attacked: {exc}")
                self.run.emit(SurfaceUnreachable(surf.name, [str(exc)]))
        if not out and not self.errors:
            raise ToolkitError(f"{self.c.path}: no [[surfaces]] to attack; add at least one")
        return out

    def _target(self, surf: Surface) -> Target:
        variables: dict[str, Any] = {
            **self.c.base_vars(),
            "sandbox": str(surf.sandbox or ""),
            "canary_secret": self.canaries.secret,
            "port": self._port(surf),
        }
        self.canaries.watch(surf.sandbox)
        if surf.sandbox is not None and repository_typed(surf):
            make_repository(surf.sandbox, self.canaries)
        planted = plant(self.canaries.file, self.canaries.folder, surf.sandbox)
        if planted is not None and surf.sandbox is not None:
            variables["probe"] = str(surf.sandbox / planted.file_name)
            variables["fresh"] = Fresh(surf.sandbox, planted.file_name.rsplit(".", 1)[0] + "-fresh")
        if surf.transport == "mcp-stdio":
            from toolkit.core.mcp_transport import McpDeliverer

            mcp = McpDeliverer(self.c, surf, variables, {ENV_CANARY: self.canaries.secret},
                               self.mcp_servers)
            self.closers.append(mcp.close)
            self.listings[surf.name] = mcp.listing
            deliver: Deliverer = mcp
        else:
            http = HttpDeliverer(self.c, surf, Signer(self.c.auth), self.client, variables)
            check_host(http.base, self.cfg.allow_remote)
            deliver = http
        target = Target(surf, paced(deliver, self.pacer), planted=planted)
        missing = self._no_credentials(deliver)
        absolute = surf.classes[0] in ("command", "argv", "option")
        form, reply, tried = discover(
            forms(self.c, surf, planted), self._trial(target), missing, absolute
        )
        if not accepted(reply, missing):
            target.notes.append(
                f"no harmless form was accepted; attacked from the refused {form.label!r}"
            )
        target.benign, target.baseline, target.form = form.payload, reply, form.label
        self.run.emit(SurfaceBaseline(surf.name, form.label, repr(form.payload), reply.status,
                                      tried))
        if missing:
            target.notes.append(
                "no credentials available (token variable unset): unauthenticated probes only"
            )
        target.revive = self._revive
        return target

    @staticmethod
    def _trial(target: Target) -> Callable[[Any], Reply]:
        """Send for baseline discovery: a stdio server that dies on a form is restarted for the
        next.
        """

        def send(payload: Any) -> Reply:
            target.sent += 1
            reply: Reply = target.deliver.send(payload)
            deliver: Any = target.deliver
            if reply.status is None and hasattr(deliver, "restart") and not deliver.alive:
                deliver.restart()
            return reply

        return send

    def _no_credentials(self, deliver: Any) -> bool:
        auth = self.c.auth
        if auth is None or auth.scheme != "bearer" or not getattr(deliver, "auth", False):
            return False
        return not (auth.token or os.environ.get(auth.token_env or "", "")).strip()

    # ---------------------------------------------------------- crashes
    def _revive(self, target: Target, payload: Any, reply: Reply) -> bool:
        """A target that died or wedged on a payload: a finding, a restart, and the attack goes
        on.
        """
        what = self._dead(target, reply)
        if what is None:
            return False
        streak = self.crash_streak.get(target.name, 0) + 1
        self.crash_streak[target.name] = streak
        cwe, why = (248, "exited") if what == "exited" else (400, "stopped answering (wedged)")
        spec = dataclasses.replace(CRASH_SPEC, cwe=cwe)
        cls = target.surface.classes[0]
        target.crashes.append(self.ctx.finding(
            spec, target, cls, payload, reply, f"the target {why} on this payload: {reply.error}",
            f"crash:{what}"))
        self.run.emit(TargetCrashed(target.name, what, streak))
        if streak >= MAX_CRASHES:
            raise TargetError(
                f"surface {target.name!r}: the target crashed {streak} times in a row on "
                f"{cls} payloads; the rest of this attack was not run (findings kept)"
            )
        try:
            self._restart(target)
        except ToolkitError as exc:
            raise TargetError(
                f"surface {target.name!r}: the target died and could not be restarted: {exc}"
            ) from None
        return True

    def _dead(self, target: Target, reply: Reply) -> str | None:
        deliver: Any = target.deliver
        if hasattr(
            deliver, "restart"
        ):  # a stdio server: dead if exited, wedged if it no longer answers a ping
            if not deliver.alive:
                return "exited"
            return None if deliver.responsive() else "wedged"
        name = target.surface.get("service") or self._service_at(getattr(deliver, "base", ""))
        if self.sup is None or name not in self.sup.running:
            return None
        return self._http_dead(self.sup.running[name], self.c.service(name), reply)

    @staticmethod
    def _http_dead(run: Any, svc: Any, reply: Reply) -> str | None:
        """Exited, or alive but no longer listening on its port (a dying process may take a
        moment).
        """
        from toolkit.core.supervisor import port_in_use

        error = reply.error or ""
        refused = "ConnectError" in error
        # a connection dropped without a reply may be the process dying right now: give it a
        # moment to finish, so the crash is pinned on this payload and not on the next one
        dropped = "RemoteProtocolError" in error or "ReadError" in error
        deadline = time.monotonic() + (2.0 if refused else 0.5)
        while True:
            if run.popen.poll() is not None:
                return "exited"
            if not (refused or dropped):
                return None  # a slow or silent answer is the stopped-answering rule's business
            if refused and svc.port is not None and port_in_use(svc.host, svc.port):
                return None
            if time.monotonic() > deadline:
                return "wedged" if refused else None  # dropped, but alive: it just hung up
            time.sleep(0.02)

    def _service_at(self, base: str) -> str | None:
        from urllib.parse import urlsplit

        port = urlsplit(base).port
        return next(
            (s.name for s in self.c.services if s.port is not None and s.port == port), None
        )

    def _restart(self, target: Target) -> None:
        deliver = target.deliver
        if hasattr(deliver, "restart"):
            deliver.restart()
            return
        name = target.surface.get("service") or self._service_at(getattr(deliver, "base", ""))
        assert self.sup is not None and name is not None  # nosec B101 - _dead checked both
        self.sup._stop_one(name)
        svc = self.c.service(name)
        self.sup._spawn(svc)
        self.sup._await_health(svc)

    def _port(self, surf: Surface) -> Any:
        name = surf.get("service")
        return self.c.service(name).port if name else ""

    # ---------------------------------------------------------- running
    def execute(self, attacks: list[type[Any]], targets: dict[str, Target]) -> None:
        usable = {n: t for n, t in targets.items() if t.baseline and t.baseline.status is not None}
        for name, t in targets.items():
            if name not in usable:
                self.errors.append(f"surface {name!r} could not be attacked: {'; '.join(t.notes)}")
                self.run.emit(SurfaceUnreachable(name, t.notes))
        jobs = [(t.name, (cls, t)) for cls in attacks for t in self._scope(cls, usable)]
        self.left = len(jobs)
        run_lanes(jobs, lambda job: self._case(*job), self.cfg.concurrency)
        order = {(cls.spec.id, t.name): i for i, (_, (cls, t)) in enumerate(jobs)}
        self.cases.sort(key=lambda c: order.get((c.attack_id, c.surface), len(order)))
        if not self.cfg.selection:
            self._listing_checks(usable)
        leak = REGISTRY.get("T-LEAK-001")
        if leak is not None and leak in attacks and usable:
            self._passive(leak, usable)

    def _listing_checks(self, targets: dict[str, Target]) -> None:
        """Static checks on each MCP server's tool listing, once per server command line."""
        from attacks.base import AttackSpec
        from toolkit.gates import mcp_static

        servers: dict[str, Target] = {}
        for t in targets.values():
            if t.surface.name in self.listings:
                servers.setdefault(str(t.deliver.endpoint[1]), t)
        kept: dict[str, dict[str, str]] = {}
        for server, t in servers.items():
            tools = self.listings[t.surface.name]
            prints, changed = mcp_static.compare(
                self.c.evidence_dir / mcp_static.STATE_FILE, server, tools
            )
            kept[server] = prints
            issues = mcp_static.inspect(tools) + changed
            for check in mcp_static.CHECKS:
                spec = AttackSpec(
                    check.id, "mcp-listing", check.title, check.cwe, check.severity, ("tool",)
                )
                found = [
                    self.ctx.finding(
                        spec,
                        t,
                        "listing",
                        f"{i.tool}:{i.where}",
                        None,
                        f"tool {i.tool!r}, {i.where}: {i.evidence}",
                        f"listing:{i.where}",
                    )
                    for i in issues
                    if i.check is check
                ]
                self._record(Case(check.id, check.title, f"{t.name} (tool listing)",
                                  "vulnerable" if found else "clean", len(tools), _dedupe(found),
                                  [f"checked {len(tools)} tools of {server[:80]}"]))
        if kept:
            self.run.emit(ToolFingerprints(kept))

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
        before, notes_before, crashes_before = target.sent, len(target.notes), len(target.crashes)
        silent_before = (target.unanswered, target.dropped, target.retried)
        self.crash_streak[target.name] = 0
        findings: list[Finding] = []
        status = "clean"
        self.run.emit(CaseStarted(spec.id, target.name))
        share = self._share()
        try:
            for finding in cls().run(self.ctx, target):
                findings.append(finding)  # noqa: PERF402 - kept if the target dies later
        except ToolkitError as exc:
            status, notes = "error", [str(exc)]
            self.errors.append(f"{spec.id} on {target.name}: {exc}")
        except Exception as exc:  # noqa: BLE001 - tool broke: an errored case
            status, notes = "error", [f"{type(exc).__name__}: {exc}"]
            self.errors.append(
                f"{spec.id} on {target.name}: tool error {type(exc).__name__}: {exc}"
            )
        findings += target.crashes[crashes_before:]
        sent = target.sent - before
        notes = target.notes[notes_before:] if status != "error" else notes
        if share_cut() and share is not None:
            notes = [*notes, (f"time share of {share:.1f} s used up after {sent} requests: the "
                     "most telling payloads were sent, the rest left out (--time-budget)")]
            self.cut.append(f"{spec.id} on {target.name}")
        time_share(None)
        if status != "error":
            status = "vulnerable" if findings else ("clean" if sent else "skipped")
        counts = (target.unanswered - silent_before[0], target.dropped - silent_before[1],
                  target.retried - silent_before[2])
        status, notes = self._answered(spec.id, target.name, status, sent, counts, notes)
        self._record(Case(spec.id, spec.title, target.name, status, sent, _dedupe(findings), notes,
                          *counts))

    def _answered(self, aid: str, surface: str, status: str, sent: int,
                  counts: tuple[int, int, int], notes: list[str]) -> tuple[str, list[str]]:
        """A case cannot be clean on payloads nobody answered: when more than a third of its
        requests (and at least MIN_UNANSWERED) timed out, even retried on a fresh connection,
        it is inconclusive (an error naming the count). Drops and retries are noted.
        """
        unanswered, dropped, retried = counts
        extra = []
        if retried:
            extra.append(f"{retried} request(s) got no reply on a kept-alive connection and were "
                         "answered when retried on a fresh one")
        if dropped:
            extra.append(f"{dropped} request(s) were hung up on without a reply, also on a fresh "
                         "connection: taken as refusals")
        if unanswered:
            extra.append(f"{unanswered} of {sent} request(s) got no reply in time, also on a "
                         "fresh connection")
        if (status == "clean" and unanswered >= MIN_UNANSWERED
                and unanswered > sent * UNANSWERED_SHARE):
            why = (f"inconclusive: {unanswered} of {sent} requests got no reply (timed out, "
                   "also retried on a fresh connection), so a clean result would claim what "
                   "was never observed")
            self.inconclusive.append(f"{aid} on {surface}: {why}")
            return "error", [*notes, *extra, why]
        return status, [*notes, *extra]

    def _share(self) -> float | None:
        """This case's share of the time left: what remains over the cases still to start,
        times the lanes running at once; set as the thread's deadline for `take`.
        """
        budget = self.cfg.time_budget_s
        with self.lock:
            left, self.left = max(self.left, 1), max(self.left - 1, 0)
        if not budget:
            time_share(None)
            return None
        remaining = self.t0 + budget - time.monotonic()
        share = max(1.0, remaining / left * max(1, self.cfg.concurrency))
        time_share(time.monotonic() + share)
        return share

    def _record(self, case: Case) -> None:
        self.cases.append(case)
        for f in case.findings:
            self.run.emit(FindingMade(f))
        self.run.emit(CaseFinished(**case.to_dict()))

    def _passive(self, leak: type[Any], targets: dict[str, Target]) -> None:
        from attacks.leaks import passive_scan, scan_at_rest, scan_logs

        first = next(iter(targets.values()))
        logs = [p for s in self.c.services for p in s.logs]
        if self.sup is None:
            logs = [p for p in logs if p.exists()]
        else:
            logs += sorted((self.run.evidence.dir / "service-logs").glob("*.log"))
        at_rest = [p for s in self.c.services for p in s.state]
        at_rest += [self.c.resolve(p) for p in self.c.secrets.scan]
        at_rest += self.c.database_files
        findings = (
            passive_scan(self.ctx, leak.spec, targets)
            + scan_logs(self.ctx, leak.spec, first, logs)
            + scan_at_rest(self.ctx, leak.spec, first, at_rest, "state")
        )
        self._record(Case(leak.spec.id, leak.spec.title, "(all replies and logs)",
                          "vulnerable" if findings else "clean", len(self.ctx.replies) + len(logs),
                          _dedupe(findings),
                          [(f"checked {len(self.ctx.replies)} replies, {len(logs)} logs "
                            f"and {len(at_rest)} state/config paths")]))


def check_surfaces(cfg: AttackConfig, c: Contract) -> set[str]:
    """The surfaces --surface names; an unknown one is a usage error (checked before the
    attempt starts, so a typo leaves no failed attempt in the ledger)."""
    wanted = set(cfg.surfaces)
    unknown = wanted - {s.name for s in c.surfaces}
    if unknown:
        raise UsageError(f"no surface named {', '.join(sorted(unknown))}; surfaces: "
                         f"{', '.join(s.name for s in c.surfaces)}")
    return wanted


def _dedupe(findings: list[Finding]) -> list[Finding]:
    """One finding per (attack, surface, weakness class, oracle), its payloads as variants."""
    from toolkit.core.model import group

    return group(findings)


def run_attacks(
    cfg: AttackConfig, subscribers: Sequence[Subscriber] = ()
) -> tuple[GateResult, list[Case]]:
    """Gate 3; ``subscribers`` (a JSON-lines stream) attach to the run's bus first."""
    if cfg.budget not in ("quick", "standard", "deep"):
        raise UsageError(f"--budget {cfg.budget!r}: use quick, standard or deep")
    attacks = select(cfg.selection)
    c = load_locked(cfg.contract_path)
    check_surfaces(cfg, c)
    with gate_run(c, AttackGate.name, AttackGate.label, subscribers=subscribers) as run:
        from reports import attach
        from reports.evidence_files import AttackEvidenceWriter

        AttackEvidenceWriter(run).attach(run.bus)
        attach(run, cfg.formats)
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
    if not findings:  # findings stand on their own; without any, an unanswered case is an error
        errors += engine.inconclusive
    verdict = "error" if errors else ("fail" if findings else "pass")
    pacing = engine.pacer.measured(cfg.concurrency)
    run.emit(AttackDone(verdict, cfg.budget, engine.ctx.seed, pacing))
    body = {
        "budget": cfg.budget,
        "attack_seed": engine.ctx.seed,
        "payloads_sent": sent,
        "pacing": pacing,  # rate limit and concurrency as asked, and as really used
        "time_budget": {"budget_s": cfg.time_budget_s, "cases_cut": engine.cut,
                        "elapsed_s": round(time.monotonic() - engine.t0, 3)},
        "findings": [f.to_dict() for f in findings],
        "cases": [c.to_dict() for c in cases],
        "errors": errors,
        "inconclusive": engine.inconclusive,
        "unanswered": sum(case.unanswered for case in cases),
        "measurements": [
            {
                "metric": "findings",
                "value": len(findings),
                "threshold": 0,
                "unit": "count",
                "verdict": "pass" if not findings else "fail",
                "samples": len(cases),
            },
            {
                "metric": "payloads_sent",
                "value": sent,
                "threshold": 1,
                "unit": "requests",
                "verdict": "pass" if sent else "error",
                "samples": sent,
            },
        ],
    }
    return run.seal(verdict, body)


class AttackGate:
    """Gate 3 (a-c): every registered attack against every surface of its payload classes."""

    name, title, label = "attack", "Gate 3a-c", "gate3-attack"
    needs = ("services", "surfaces", "auth")

    def plan(self, contract_path: Path | None, profile: Profile) -> AttackConfig:
        return AttackConfig(contract_path)

    def describe(self, c: Contract) -> list[str]:
        attacks = select([])
        pairs = [(a.spec.id, s.name) for a in attacks for s in c.surfaces
                 if set(a.spec.classes) & set(s.classes)]
        return [(f"{len(c.surfaces)} surfaces, {len(attacks)} attacks, "
                f"{len(pairs)} attack/surface cases")]

    def run(self, plan: AttackConfig) -> GateResult:
        return run_attacks(plan)[0]


# ---------------------------------------------------------------- baselines, before a run

class OutOfTime(TargetError):
    """The probe's total time budget ran out before this surface was settled."""


@dataclass
class Probe:
    """What baseline discovery made of each surface, before any attack (``contract init``)."""

    excluded: dict[str, str] = field(default_factory=dict)  # surface -> why no form was usable
    unverified: list[str] = field(default_factory=list)  # not settled within the time budget
    seconds: float = 0.0


class _Quiet:
    """A stand-in for the gate run while probing: no bus, no evidence, nothing to seal."""

    def emit(self, event: Any) -> None:
        """Probe events are not evidence: no gate is running."""

    def log(self, message: str) -> None:
        """Nothing to log to."""


class _Prober(Engine):
    """The engine's own target set-up (planting, delivery, ``discover``), with each trial
    reply kept so an excluded surface can say what the server answered.
    """

    def __init__(self, c: Contract, deadline: float):
        from typing import cast

        super().__init__(AttackConfig(c.path, seed=0, start_stack=False), c,
                         cast(GateRun, _Quiet()))
        self.deadline = deadline
        self.answers: dict[str, list[tuple[Any, Reply]]] = {}

    def _trial(self, target: Target) -> Callable[[Any], Reply]:  # type: ignore[override]
        send = Engine._trial(target)
        seen = self.answers.setdefault(target.name, [])

        def timed(payload: Any) -> Reply:
            if time.monotonic() > self.deadline:
                raise OutOfTime("the probe's time budget ran out")
            reply = send(payload)
            seen.append((payload, reply))
            return reply

        return timed


def probe_baselines(c: Contract, budget_s: float = 120.0) -> Probe:
    """Run ``attack``'s baseline discovery on every surface of ``c`` against the live target,
    sending no attack payload. A surface is excluded when ``attack`` could not attack it: no
    form accepted (nor kept for an injection oracle), or no reply at all.
    """
    t0 = time.monotonic()
    engine = _Prober(c, t0 + budget_s)
    out = Probe()
    try:
        for surf in c.surfaces:
            if time.monotonic() > engine.deadline:
                out.unverified.append(surf.name)
                continue
            try:
                target = engine._target(surf)
            except OutOfTime:
                out.unverified.append(surf.name)
                continue
            except ToolkitError as exc:
                out.excluded[surf.name] = _why(engine.answers.get(surf.name, []), str(exc))
                continue
            if target.baseline is None or target.baseline.status is None:
                out.excluded[surf.name] = _why(engine.answers.get(surf.name, []),
                                               "; ".join(target.notes) or "no reply")
    finally:
        engine.stop()
        engine.cleanup()
    out.seconds = time.monotonic() - t0
    return out


def _why(answers: list[tuple[Any, Reply]], fallback: str) -> str:
    """"N forms tried; the server answered: ..." with each distinct answer once (its own
    argument blanked out), else the discovery's own message.
    """
    if not answers:
        return " ".join(fallback.split())[:400]
    said: list[str] = []
    for payload, reply in answers:
        line = _gist(reply, str(payload)) if reply.status is not None \
            else f"no reply ({reply.error})"
        if line not in said:
            said.append(line)
    more = f" (+{len(said) - 2} other answers)" if len(said) > 2 else ""
    return (f"{len(answers)} harmless forms tried, none accepted; the server answered: "
            + " | ".join(said[:2]) + more)


def _gist(reply: Reply, payload: str) -> str:
    """A refusal in one short line: its message's first line and, when it goes on, its last
    (where a command's own error, "connection refused", usually is).
    """
    import json

    text = reply.text
    try:
        found = json.loads(text)
    except ValueError:
        found = None
    if isinstance(found, dict) and isinstance(found.get("content"), list):  # an isError result
        text = "\n".join(str(x) for x in found["content"])
    elif isinstance(found, dict) and "message" in found:  # a JSON-RPC error
        text = str(found["message"])
    if len(payload) >= 3:
        text = text.replace(payload, "<arg>")
    lines = [" ".join(x.split()) for x in text.splitlines() if x.strip()] or ["(empty)"]
    if len(lines) == 1 and len(lines[0]) > 240:
        return f"{lines[0][:100]} ... {lines[0][-140:]}"
    return lines[0] if len(lines) == 1 else f"{lines[0][:100]} ... {lines[-1][-140:]}"
