"""Gate 4: a disaster drill. Write sentinels, back up, break things, restore, measure RPO/RTO."""

from __future__ import annotations

import itertools
import json
import re
import secrets
import shutil
import sqlite3
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from chaos.base import FaultContext, run_injector
from chaos.faults import FILE_FAULTS, ClearState, Hang, Kill
from recovery import pending
from recovery import sqlite as rsql
from recovery.state import restore_snapshot, snapshot
from reports.drill_history import DrillHistory
from reports.evidence_files import DrillEvidenceWriter
from toolkit.core.auth import Signer
from toolkit.core.contract import Contract, expand
from toolkit.core.errors import (
    TargetError,
    ToolkitError,
    UsageError,
)
from toolkit.core.events import (
    BackupsCorrupted,
    BackupsRestorable,
    Checkpointed,
    CheckpointFailed,
    DrillDisaster,
    DrillPlanned,
    DrillRecorded,
    RpoRto,
    WriterFailed,
)
from toolkit.core.runner import GateResult, GateRun, gate_run, load_locked
from toolkit.core.supervisor import Supervisor, probe
from toolkit.core.transport import check_host
from toolkit.gates.base import Profile
from toolkit.gates.drill_plan import (  # noqa: F401  (the plan; importable from here, as before)
    KEEP_BACKUPS,
    KNOWN_FAULTS,
    DrillConfig,
    DrillPlan,
    check_faults,
    check_unchanged,
    choose_faults,
    draw_seed,
    drill_plan,
    make_plan,
    state_dirs,
)


@dataclass
class Backup:
    db: Path
    file: Path
    taken_at: float
    sha256: str
    logical_hash: str


class SentinelWriter(threading.Thread):
    """The contract's [durability.writer] at its rate; each acknowledged write is timestamped."""

    def __init__(self, c: Contract, spec: Mapping[str, Any], base: int, rate: float):
        super().__init__(daemon=True)
        self.c, self.spec, self.base = c, spec, base
        self.acks: dict[int, float] = {}
        self.failures = 0
        self.errors: list[float] = []  # when a write could not be made at all (not sent)
        self.first_error: str | None = None
        self.crashed: str | None = None
        self.stop_event = threading.Event()
        if "base_url" in spec:
            root = str(spec["base_url"])
        else:
            svc = c.service(spec["service"])
            root = f"http://{svc.host}:{svc.port}"
        self.url = root.rstrip("/") + spec.get("path", "/")
        check_host(self.url, set())  # sentinel writes only ever go to loopback
        self.signer = Signer(c.auth)
        self.rate = float(rate)

    def run(self) -> None:
        """Never raises: a write that cannot even be signed (the key file gone) is a failed
        write with its reason kept, and anything unexpected ends the writer with its reason
        kept; the drill records both in its evidence and fails on them."""
        try:
            self._loop()
        except Exception as exc:  # noqa: BLE001 - a writer thread never ends in a traceback
            self.crashed = f"{type(exc).__name__}: {exc}"
            self.error(self.crashed)

    def _loop(self) -> None:
        seq = self.base
        with httpx.Client(trust_env=False, timeout=2.0) as client:
            next_at = time.monotonic()
            while not self.stop_event.is_set():
                self._write(client, seq)
                seq += 1
                next_at += 1.0 / self.rate
                self.stop_event.wait(max(0.0, next_at - time.monotonic()))

    def error(self, reason: str) -> None:
        """A write that failed before it was sent: counted, with its first reason and time."""
        self.failures += 1
        self.errors.append(time.time())
        self.first_error = self.first_error or reason

    def errors_before(self, t: float) -> int:
        return sum(1 for at in self.errors if at <= t) + (self.crashed is not None)

    def _write(self, client: httpx.Client, seq: int) -> None:
        now = datetime.now(UTC).isoformat()
        v = {**self.c.base_vars(), "seq": seq, "now": now}
        body = json.dumps(expand(self.spec.get("json", {}), v)).encode()
        method = self.spec.get("method", "POST")
        headers = {"content-type": "application/json"}
        path = self.spec.get("path", "/")
        try:
            token = self.signer.token(method, path, body)
        except (ToolkitError, OSError) as exc:  # e.g. the auth key file deleted mid-drill
            self.error(f"cannot sign write {seq}: {exc}")
            return
        if token and self.signer.header:
            headers[self.signer.header] = token
        try:
            resp = client.request(method, self.url, content=body, headers=headers)
            if 200 <= resp.status_code < 300:
                self.acks[seq] = time.time()
                return
        except httpx.HTTPError:
            pass
        self.failures += 1


def sentinel_pattern(spec: Mapping[str, Any]) -> re.Pattern[str] | None:
    """A regex that recovers {{seq}} from stored data, built from the writer's own template."""
    for text in _strings(spec.get("json", spec.get("body", ""))):
        if "{{seq}}" in text:
            head, _, tail = text.partition("{{seq}}")
            head = re.sub(r"\{\{[^}]+\}\}", "", head)
            tail = re.sub(r"\{\{[^}]+\}\}.*", "", tail)
            return re.compile(re.escape(head) + r"(\d+)" + re.escape(tail))
    return None


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return []


class Drill:
    def __init__(self, plan: DrillPlan, c: Contract, run: GateRun):
        self.plan, self.c, self.run = plan, c, run
        dur = c.need(c.durability, "durability", "drill")
        assert dur.writer is not None  # nosec B101 - make_plan refused a plan without one
        self.writer_spec = dur.writer
        self.dbs = list(plan.databases)
        self.state_dirs = list(plan.state_dirs)
        self.backup_root = plan.backup_dir / run.evidence.run_id
        self.seed = plan.seed
        self.base = plan.sentinel_base
        self.pattern = sentinel_pattern(dur.writer)
        self.backups: list[Backup] = []  # the kept ones, oldest first
        self.backups_taken: list[str] = []  # every backup file ever written, in order
        self._backup_seq = itertools.count(1)  # never reused, whatever the retention
        self._backup_lock = threading.Lock()
        self.backup_errors: list[str] = []
        self.sup: Supervisor | None = None
        dbs = {*self.dbs, *(c.lexical(d.path) for d in dur.databases)}
        self.exclude = dbs | {
            d.with_name(d.name + s) for d in dbs for s in ("-wal", "-shm", "-journal")
        }
        if c.auth is not None and c.auth.key_file is not None:
            self.exclude.add(c.auth.key_file)  # the live key never goes into the state snapshot
        self.faults = list(plan.faults)
        self._outcomes: list[dict[str, Any]] = []

    # ---------------------------------------------------------------- stack
    def start(self) -> dict[str, float]:
        self.sup = Supervisor(
            self.c,
            marker=f"drill-{self.run.evidence.run_id}",
            canary=secrets.token_urlsafe(16),
            log_dir=self.run.evidence.dir / "service-logs",
            on_event=self.run.emit,
        )
        return self.sup.start_all()

    def pids(self) -> dict[str, int]:
        return self.sup.pids() if self.sup else {}

    # ---------------------------------------------------------------- backups
    def backup_once(self) -> None:
        for db in self.dbs:
            # a sequence number that only grows, plus the wall clock: never the count of kept
            # backups
            dst = (
                self.backup_root / db.name / f"{next(self._backup_seq):08d}-{time.time_ns()}.sqlite"
            )
            t = time.time()
            try:
                rsql.backup(db, dst)
                with rsql.connect_ro(dst) as conn:
                    lh = rsql.logical_hash(conn)
                entry = rsql.file_entry(dst)
            except (sqlite3.Error, OSError) as exc:
                self.backup_errors.append(f"{db.name}: {type(exc).__name__}: {exc}")
                continue
            with self._backup_lock:
                self.backups.append(Backup(db, dst, t, entry["sha256"], lh))
                self.backups_taken.append(str(dst))
                self._prune(db)

    def _prune(self, db: Path) -> None:
        """Keep the newest KEEP_BACKUPS of ``db`` (by sequence), delete the older ones."""
        mine = [b for b in self.backups if b.db == db]
        for old in mine[:-KEEP_BACKUPS]:
            self.backups.remove(old)
            old.file.unlink(missing_ok=True)

    def continuous(self, stop: threading.Event) -> threading.Thread:
        def loop() -> None:
            while not stop.wait(self.plan.backup_interval_s):
                self.backup_once()

        thread = threading.Thread(target=loop, daemon=True)
        thread.start()
        return thread

    def prove_restorable(self) -> dict[str, Any]:
        """Before anything destructive: the newest backup of each database restores and verifies."""
        proofs = {}
        for db in self.dbs:
            probe_dir = self.backup_root / ".restore-probe"
            with self._backup_lock:  # the backup loop must not prune the file being proven
                latest = self.latest(db)
                if latest is None:
                    raise UsageError(f"no backup of {db.name} was taken; refusing to inject faults")
                rsql.restore(latest.file, probe_dir / db.name)
            try:
                check = rsql.verify(probe_dir / db.name)
            finally:
                shutil.rmtree(probe_dir, ignore_errors=True)
            if not check.ok or check.logical_hash != latest.logical_hash:
                raise UsageError(
                    f"backup {latest.file} does not restore cleanly ({check.integrity}); "
                    "refusing to inject faults without a restorable backup"
                )
            proofs[db.name] = {"backup": str(latest.file), "logical_hash": latest.logical_hash}
        return proofs

    def promise_recovery(self, snap: Path) -> None:
        """Write down (fsynced) what recovery needs, so a kill -9 after the fault loses nothing."""
        dbs = {}
        for db in self.dbs:
            latest = self.latest(db)
            if latest is not None:
                dbs[str(db)] = {"file": str(latest.file), "logical_hash": latest.logical_hash}
        pending.write(self.backup_root, {"run_id": self.run.evidence.run_id, "faults": self.faults,
                                         "state_dirs": [str(d) for d in self.state_dirs],
                                         "exclude": sorted(str(x) for x in self.exclude),
                                         "snapshot": str(snap), "databases": dbs})

    def latest(self, db: Path) -> Backup | None:
        mine = [b for b in self.backups if b.db == db]
        return mine[-1] if mine else None

    # ---------------------------------------------------------------- faults
    def inject(self) -> list[dict[str, Any]]:
        ctx = FaultContext(self.seed, self.dbs, self.state_dirs, self.pids, self.run.emit)
        outcomes = []
        names = list(self.plan.order)  # kill first under file faults, as in a crash
        wal_faults = {"torn-wal", "delete-wal"} & set(names)
        for name in names:
            if name in FILE_FAULTS and name not in wal_faults and not wal_faults:
                # the data must be in the main file for a main-file fault to hurt it
                self._checkpoint()
            if name == "corrupt-backup":
                outcomes.append(self._corrupt_backups())
                continue
            for inj in self._injectors(name):
                outcomes.append(run_injector(inj, ctx))
        return outcomes

    def _checkpoint(self) -> None:
        """Fold the WAL into the main file (services are dead by now), as an at-rest database would
        be.
        """
        for db in self.dbs:
            try:
                conn = sqlite3.connect(db, timeout=5)
                try:
                    row = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
                finally:
                    conn.close()
                self.run.emit(Checkpointed(db.name, list(row) if row else None))
            except sqlite3.Error as exc:
                self.run.emit(CheckpointFailed(db.name, str(exc)))

    def _injectors(self, name: str) -> list[Any]:
        if name == "kill":
            return [Kill()]
        if name == "hang":
            return [Hang(seconds=1.0)]
        if name == "clear-state":
            return [ClearState()]
        return [FILE_FAULTS[name](db, name) for db in self.dbs]

    def _corrupt_backups(self) -> dict[str, Any]:
        """Backup media failure: every backup taken so far gets a broken header."""
        for b in self.backups:
            data = bytearray(b.file.read_bytes())
            data[:16] = b"\xde\xad" * 8
            b.file.write_bytes(bytes(data))
        self.run.emit(BackupsCorrupted("corrupt-backup", [str(b.file) for b in self.backups]))
        return {"fault": "corrupt-backup", "took_effect": bool(self.backups)}

    # ---------------------------------------------------------------- recovery
    def recover(self, acked: set[int], snap: Path) -> dict[str, Any]:
        hi = self.base + 10**8
        results: dict[str, Any] = {}
        if self.sup is not None:
            self.sup.stop_all()
        for db in self.dbs:
            live = rsql.verify(db, self.pattern, self.base, hi)
            results[db.name] = self._recover_db(db, live, acked, hi)
        if any(isinstance(o, dict) and o.get("fault") == "clear-state" for o in self._outcomes):
            results["state_files_restored"] = restore_snapshot(self.state_dirs, snap, self.exclude)
        return results

    def _recover_db(self, db: Path, live: rsql.DbCheck, acked: set[int], hi: int) -> dict[str, Any]:
        out: dict[str, Any] = {
            "detected": not live.ok or bool(acked - live.sentinels),
            "live": live.to_dict(),
            "lost_in_live": len(acked - live.sentinels),
        }
        best, best_check = None, None
        for b in reversed([x for x in self.backups if x.db == db]):
            check = rsql.verify(b.file, self.pattern, self.base, hi)
            if check.ok and check.logical_hash == b.logical_hash:
                best, best_check = b, check
                break
            out.setdefault("bad_backups", []).append(
                {"file": str(b.file), "integrity": check.integrity, "error": check.error}
            )
        use_live = live.ok and (
            best_check is None or len(live.sentinels & acked) >= len(best_check.sentinels & acked)
        )
        if use_live:
            out["action"] = (
                "kept the live database (intact and at least as complete as the newest backup)"
            )
        elif best is not None:
            rsql.restore(best.file, db)
            out["action"] = f"restored {best.file.name} taken at {best.taken_at:.3f}"
            out["restored_from"] = str(best.file)
            out["expected_logical_hash"] = best.logical_hash
        else:
            out["action"] = "FAILED: no intact live database and no restorable backup"
        return out

    def verify_after(self, acked: set[int], recovered: dict[str, Any]) -> dict[str, Any]:
        hi = self.base + 10**8
        checks = {}
        for db in self.dbs:
            check = rsql.verify(db, self.pattern, self.base, hi)
            expected = recovered.get(db.name, {}).get("expected_logical_hash")
            checks[db.name] = {
                **check.to_dict(),
                "hash_matches_backup": expected is None or expected == check.logical_hash,
                "surviving": sorted(check.sentinels & acked),
            }
        return checks

    def healthy(self) -> bool:
        with httpx.Client(trust_env=False) as client:
            return all(probe(client, s.health_url)[0] for s in self.c.services if s.health_url)


def plan(cfg: DrillConfig) -> list[str]:
    """--dry-run: what the drill would do with ``cfg.seed``, without starting or touching
    anything.
    """
    return drill_plan(cfg).steps()


def run_drill(cfg: DrillConfig) -> GateResult:
    """Plan (drawing the seed if none is given) and run one drill."""
    return run_plan(drill_plan(cfg))


def run_plan(plan: DrillPlan) -> GateResult:
    """Run a planned drill; the plan is recorded in the journal and the summary."""
    c = load_locked(plan.contract_path)
    check_unchanged(plan, c)  # a plan runs only against the contract it was made from
    with gate_run(c, DrillGate.name, DrillGate.label) as run:
        DrillHistory(c, run.evidence.run_id).attach(run.bus)
        DrillEvidenceWriter(run).attach(run.bus)
        resume_interrupted(c, run)
        drill = Drill(plan, c, run)
        try:
            return _sequence(drill)
        finally:
            if drill.sup is not None:
                drill.sup.stop_all()
                drill.sup.close()


def resume_interrupted(c: Contract, run: GateRun) -> list[dict[str, Any]]:
    """Finish what killed drills promised to restore, before this one takes its baseline."""
    return [pending.resume(rec, run.emit) for rec in pending.interrupted(c.backup_dir)]


def _sequence(d: Drill) -> GateResult:
    run = d.run
    run.emit(DrillPlanned(d.plan.to_dict()))
    d.start()
    writer = SentinelWriter(d.c, d.writer_spec, d.base, d.plan.writer_rate_per_s)
    writer.start()
    stop_backups = threading.Event()
    d.backup_once()
    backups = d.continuous(stop_backups)
    time.sleep(d.plan.warmup_s)
    proof = d.prove_restorable()
    run.emit(BackupsRestorable(proof))
    # beside the backups, not in the evidence: state holds keys and whatever targets wrote
    # (names that are not UTF-8 included), and evidence is bundled into signed releases
    snap = d.backup_root / "state-snapshot"
    snap_manifest = snapshot(d.state_dirs, snap, d.exclude)
    stop_backups.set()  # the last backup must predate the disaster, or RPO would be flattered
    backups.join(10)
    d.promise_recovery(snap)
    t_disaster = time.time()
    d._outcomes = d.inject()
    writer.stop_event.set()
    writer.join(5)
    acked = {s for s, t in writer.acks.items() if t <= t_disaster}
    run.emit(DrillDisaster(t_disaster, len(acked)))
    if writer.first_error:
        run.emit(WriterFailed(writer.first_error, writer.errors_before(t_disaster)))
    recovered = d.recover(acked, snap)
    try:
        d.start()
    except TargetError as exc:  # the system did not come back: a failed drill, not a tool error
        recovered["restart_error"] = str(exc)
        d.sup = None
    pending.done(d.backup_root)
    checks = d.verify_after(acked, recovered)
    healthy = "restart_error" not in recovered and d.healthy()
    t_recovered = time.time()
    return _seal(
        d,
        run,
        writer,
        acked,
        recovered,
        checks,
        healthy,
        t_disaster,
        t_recovered,
        proof,
        snap_manifest,
    )


def _seal(
    d: Drill,
    run: GateRun,
    writer: SentinelWriter,
    acked: set[int],
    recovered: dict[str, Any],
    checks: dict[str, Any],
    healthy: bool,
    t_disaster: float,
    t_recovered: float,
    proof: dict[str, Any],
    snap_manifest: list[dict[str, Any]],
) -> GateResult:
    from toolkit.core.model import measure

    surviving = set().union(*(set(ch["surviving"]) for ch in checks.values())) if checks else set()
    newest = max((writer.acks[s] for s in surviving), default=None)
    rpo = (t_disaster - newest) if newest is not None else None
    rto = (t_recovered - t_disaster) if healthy else None
    integrity_ok = all(ch["ok"] and ch["hash_matches_backup"] for ch in checks.values())
    lost = len(acked - surviving)
    ms = [
        measure(
            "rpo_s",
            None if rpo is None else round(rpo, 3),
            d.plan.rpo_s,
            "s",
            samples=len(acked),
        ),
        measure(
            "rto_s",
            None if rto is None else round(rto, 3),
            d.plan.rto_s,
            "s",
            detail="" if healthy else "services did not come back",
        ),
        measure("acknowledged_writes_lost", lost, None, "writes", samples=len(acked)),
        measure(
            "integrity_failures",
            sum(not (ch["ok"] and ch["hash_matches_backup"]) for ch in checks.values()),
            0,
            "databases",
        ),
        measure("services_unhealthy_after_restart", 0 if healthy else 1, 0, "stacks"),
        measure(
            "writer_errors_before_disaster",
            writer.errors_before(t_disaster),
            0,
            "writes",
            detail=writer.first_error or "",
        ),
    ]
    verdict = (
        "pass" if all(m.verdict == "pass" for m in ms) and integrity_ok and healthy else "fail"
    )
    manifest = [{"db": b.db.name, "file": str(b.file), "taken_at": b.taken_at, "sha256": b.sha256,
                 "logical_hash": b.logical_hash} for b in d.backups]
    run.emit(DrillRecorded(
        {"backups": manifest, "state_snapshot": snap_manifest, "errors": d.backup_errors,
         "restorable_proof": proof},
        {"faults": d._outcomes, "recovery": recovered, "verification": checks,
         "healthy_after_restart": healthy},
    ))
    run.emit(RpoRto(t_disaster, t_recovered, rpo, rto, len(acked), len(surviving & acked), lost,
                    writer.failures, writer.errors_before(t_disaster), writer.first_error))
    body = {
        "faults": d.faults,
        "seed": d.seed,
        "plan": d.plan.to_dict(),
        "backups_taken": len(d.backups_taken),
        "rpo_s": rpo,
        "rto_s": rto,
        "acknowledged_writes": len(acked),
        "lost_writes": lost,
        "writer_error": writer.first_error,
        "integrity_ok": integrity_ok,
        "healthy": healthy,
        "measurements": [m.to_dict() for m in ms],
    }
    if d.sup is not None:  # stop before sealing, so every stop event lands in the journal
        d.sup.stop_all()
        d.sup.close()
        d.sup = None
    return run.seal(verdict, body)


class DrillGate:
    """Gate 4: back up, break, restore; RPO and RTO measured, integrity checked."""

    name, title, label = "drill", "Gate 4", "gate4"
    needs = ("services", "durability")

    def plan(self, contract_path: Path | None, profile: Profile) -> DrillPlan:
        """The seed is drawn here, once: the run executes and records this very plan."""
        return drill_plan(DrillConfig(contract_path))

    def describe(self, c: Contract) -> list[str]:
        return make_plan(DrillConfig(c.path), c).steps()

    def run(self, plan: DrillPlan) -> GateResult:
        return run_plan(plan)
