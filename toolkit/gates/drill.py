"""Gate 4: a disaster drill. Write sentinels, back up, break things, restore, measure RPO/RTO."""

from __future__ import annotations

import dataclasses
import itertools
import json
import os
import random
import re
import secrets
import shutil
import sqlite3
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from chaos.base import FaultContext, run_injector
from chaos.faults import ALL_FAULTS, FILE_FAULTS, ClearState, Hang, Kill
from recovery import pending
from recovery import sqlite as rsql
from recovery.state import restore_snapshot, snapshot
from toolkit.core.auth import Signer
from toolkit.core.contract import Contract, expand
from toolkit.core.errors import (
    ContractError,
    EvidenceError,
    SafetyError,
    TargetError,
    ToolkitError,
    UsageError,
)
from toolkit.core.runner import GateResult, GateRun, gate_run, load_locked
from toolkit.core.supervisor import Supervisor, probe
from toolkit.core.transport import check_host
from toolkit.gates.base import Profile

KEEP_BACKUPS = 3
KNOWN_FAULTS = (*ALL_FAULTS, "corrupt-backup")


def check_faults(faults: list[str]) -> None:
    """Unknown fault names are a usage error that lists the known ones (dry run and run alike)."""
    bad = [f for f in faults if f not in KNOWN_FAULTS]
    if bad:
        raise UsageError(f"--fault {', '.join(bad)}: unknown fault; known faults are "
                         f"{', '.join(KNOWN_FAULTS)}")


def choose_faults(seed: int, faults: list[str]) -> list[str]:
    """The faults a drill injects: the ones asked for, else a combination drawn from ``seed``."""
    if faults:
        return list(faults)
    rng = random.Random(f"{seed}:faults")  # nosec B311 - recorded seed
    return ["kill", rng.choice([*FILE_FAULTS, "clear-state"])]


def draw_seed() -> int:
    """The one place a drill seed is drawn when none is given; callers print and record it."""
    return secrets.randbits(32)


def state_dirs(c: Contract, dur: dict[str, Any]) -> list[Path]:
    """Declared state folders, each refused if the contract path itself is a symlink.

    The check is on the path as written (made absolute, not resolved): resolving first would
    silently swap the link for its target and the drill would empty a folder outside the
    declared tree.
    """
    out = []
    for i, raw in enumerate(dur.get("state_dirs", [])):
        lexical = c.lexical(raw)
        if lexical.is_symlink():
            raise SafetyError(
                f"{c.path}: durability.state_dirs[{i}] = {raw!r}: {lexical} is a symlink "
                f"(to {os.readlink(lexical)}); the drill never clears through a link; "
                "declare the real folder"
            )
        out.append(lexical)
    return out


@dataclass
class DrillConfig:
    contract_path: Path | None = None
    faults: list[str] = field(default_factory=list)
    seed: int | None = None  # None: drawn once by run_drill / plan, printed and recorded
    dry_run: bool = False
    warmup_s: float = 3.0
    backup_interval_s: float = 0.5


@dataclass
class Backup:
    db: Path
    file: Path
    taken_at: float
    sha256: str
    logical_hash: str


class SentinelWriter(threading.Thread):
    """The contract's [durability.writer] at its rate; each acknowledged write is timestamped."""

    def __init__(self, c: Contract, spec: dict[str, Any], base: int):
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
        self.rate = float(spec.get("rate_per_s", 10))

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


def sentinel_pattern(spec: dict[str, Any]) -> re.Pattern[str] | None:
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
    def __init__(self, cfg: DrillConfig, c: Contract, run: GateRun):
        self.cfg, self.c, self.run = cfg, c, run
        dur = c.section("durability", "drill")
        if "writer" not in dur or not dur.get("databases"):
            raise ContractError(
                f"{c.path}: the drill needs [durability.writer] and [[durability.databases]]"
            )
        self.dur = dur
        self.dbs = [c.resolve(d["path"]) for d in dur["databases"]]
        self.state_dirs = state_dirs(c, dur)
        self.backup_root = (
            c.resolve(dur.get("backup_dir", "artifacts/backups")) / run.evidence.run_id
        )
        self.seed = cfg.seed if cfg.seed is not None else draw_seed()
        self.base = random.Random(self.seed).randrange(10**9, 9 * 10**9)  # nosec B311 - recorded seed
        self.pattern = sentinel_pattern(dur["writer"])
        self.backups: list[Backup] = []  # the kept ones, oldest first
        self.backups_taken: list[str] = []  # every backup file ever written, in order
        self._backup_seq = itertools.count(1)  # never reused, whatever the retention
        self._backup_lock = threading.Lock()
        self.backup_errors: list[str] = []
        self.sup: Supervisor | None = None
        dbs = {*self.dbs, *(c.lexical(d["path"]) for d in dur["databases"])}
        self.exclude = dbs | {
            d.with_name(d.name + s) for d in dbs for s in ("-wal", "-shm", "-journal")
        }
        if c.auth is not None and c.auth.key_file is not None:
            self.exclude.add(c.auth.key_file)  # the live key never goes into the state snapshot
        self.faults = choose_faults(self.seed, cfg.faults)
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
            while not stop.wait(self.cfg.backup_interval_s):
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
        names = list(self.faults)
        if any(f in FILE_FAULTS or f == "clear-state" for f in names) and "kill" not in names:
            names.insert(0, "kill")  # files are broken under dead processes, as in a crash
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
                self.run.emit("drill.checkpoint", db=db.name, result=list(row) if row else None)
            except sqlite3.Error as exc:
                self.run.emit("drill.checkpoint", db=db.name, error=str(exc))

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
        self.run.emit(
            "chaos.inject", fault="corrupt-backup", files=[str(b.file) for b in self.backups]
        )
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
    check_faults(cfg.faults)
    c = load_locked(cfg.contract_path)
    dur = c.section("durability", "drill")
    dbs = [c.resolve(d["path"]) for d in dur.get("databases", [])]
    dirs = state_dirs(c, dur)
    seed = cfg.seed if cfg.seed is not None else draw_seed()
    faults = choose_faults(seed, cfg.faults)
    backup_dir = c.resolve(dur.get("backup_dir", "artifacts/backups"))
    rate = dur.get("writer", {}).get("rate_per_s", 10)
    steps = [
        f"seed {seed} (run `toolkit drill --seed {seed}` to execute exactly this plan)",
        f"faults {', '.join(faults)}",
        (
            f"start {len(c.services)} services; run the sentinel writer at {rate}/s; back up "
            f"{', '.join(d.name for d in dbs)} every {cfg.backup_interval_s:g} s with the SQLite "
            f"backup API into {backup_dir}, keeping the newest {KEEP_BACKUPS}"
        ),
        (
            "prove the newest backup restores and verifies before anything destructive; record "
            "what recovery needs (recovery-pending.json) so a killed drill is finished by the next"
        ),
    ]
    for f in faults:
        if f in FILE_FAULTS:
            steps += [f"{f}: {FILE_FAULTS[f](db, f).describe(None)}" for db in dbs]  # type: ignore[arg-type]
        elif f == "clear-state":
            steps.append(
                f"clear-state: empty {', '.join(str(d) for d in dirs) or 'no declared folder'} "
                "without following symlinks"
            )
        else:
            steps.append(
                {
                    "kill": "kill: SIGKILL every service's process tree",
                    "hang": "hang: SIGSTOP every service for 1 s, then SIGCONT",
                    "corrupt-backup": "corrupt-backup: break the header of every backup taken",
                }[f]
            )
    steps.append(f"detect, restore, restart, verify; judge RPO <= {dur.get('rpo_s', 300)} s and "
                 f"RTO <= {dur.get('rto_s', 600)} s")
    return steps


def run_drill(cfg: DrillConfig) -> GateResult:
    check_faults(cfg.faults)
    c = load_locked(cfg.contract_path)
    if cfg.seed is None:
        cfg = dataclasses.replace(cfg, seed=draw_seed())
    run_id = None
    try:
        with gate_run(c, DrillGate.name, DrillGate.label) as run:
            run_id = run.evidence.run_id
            resume_interrupted(c, run)
            drill = Drill(cfg, c, run)
            start_history(c, run_id, drill.faults, drill.seed)
            try:
                return _sequence(drill, cfg)
            finally:
                if drill.sup is not None:
                    drill.sup.stop_all()
                    drill.sup.close()
    finally:
        if run_id is not None:
            finish_history(c, run_id, run.result)


def resume_interrupted(c: Contract, run: GateRun) -> list[dict[str, Any]]:
    """Finish what killed drills promised to restore, before this one takes its baseline."""
    dur = c.raw.get("durability", {})
    root = c.resolve(dur.get("backup_dir", "artifacts/backups"))
    return [pending.resume(rec, run.emit) for rec in pending.interrupted(root)]


def _sequence(d: Drill, cfg: DrillConfig) -> GateResult:
    run = d.run
    run.emit("drill.plan", faults=d.faults, seed=d.seed, sentinel_base=d.base)
    d.start()
    writer = SentinelWriter(d.c, d.dur["writer"], d.base)
    writer.start()
    stop_backups = threading.Event()
    d.backup_once()
    backups = d.continuous(stop_backups)
    time.sleep(cfg.warmup_s)
    proof = d.prove_restorable()
    run.emit("drill.restorable", **proof)
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
    run.emit("drill.disaster", at=t_disaster, acknowledged=len(acked))
    if writer.first_error:
        run.emit("drill.writer_error", reason=writer.first_error,
                 before_disaster=writer.errors_before(t_disaster))
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
            d.dur.get("rpo_s", 300),
            "s",
            samples=len(acked),
        ),
        measure(
            "rto_s",
            None if rto is None else round(rto, 3),
            d.dur.get("rto_s", 600),
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
    run.evidence.write_json(
        "gate4-backup-manifest.json",
        {
            "backups": manifest,
            "state_snapshot": snap_manifest,
            "errors": d.backup_errors,
            "restorable_proof": proof,
        },
    )
    run.evidence.write_json(
        "gate4-recovery-results.json",
        {
            "faults": d._outcomes,
            "recovery": recovered,
            "verification": checks,
            "healthy_after_restart": healthy,
        },
    )
    text = (f"disaster_at={t_disaster:.3f}\nrecovered_at={t_recovered:.3f}\n"
            f"rpo_s={'none survived' if rpo is None else f'{rpo:.3f}'}\n"
            f"rto_s={'not recovered' if rto is None else f'{rto:.3f}'}\n"
            f"acknowledged={len(acked)}\nsurviving={len(surviving & acked)}\nlost={lost}\n"
            f"writer_failures={writer.failures}\n"
            f"writer_errors_before_disaster={writer.errors_before(t_disaster)}\n"
            f"writer_first_error={writer.first_error or 'none'}\n")
    run.evidence.write_bytes("gate4-rpo-rto-measurements.txt", text.encode())
    body = {
        "faults": d.faults,
        "seed": d.seed,
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


# ---------------------------------------------------------------- history

def history_path(c: Contract) -> Path:
    return c.evidence_dir / "drill-history.sqlite"


SCHEMA = ("CREATE TABLE IF NOT EXISTS drills (run_id TEXT PRIMARY KEY, at TEXT, faults TEXT, "
          "rpo_s REAL, rto_s REAL, lost INTEGER, verdict TEXT)")


def _history(c: Contract) -> sqlite3.Connection:
    path = history_path(c)
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path, timeout=10)
    conn.execute(SCHEMA)
    return conn


def start_history(c: Contract, run_id: str, faults: list[str], seed: int) -> None:
    """A row that says "running" until the run is sealed; a killed drill never reads as a pass."""
    try:
        with _history(c) as conn:
            conn.execute(
                "INSERT OR REPLACE INTO drills VALUES (?, ?, ?, NULL, NULL, NULL, 'running')",
                (run_id, datetime.now(UTC).isoformat(timespec="seconds"), ",".join(faults)),
            )
    except sqlite3.Error as exc:
        raise EvidenceError(
            f"{history_path(c)}: cannot record the drill in its history: {exc}"
        ) from None


def finish_history(c: Contract, run_id: str, result: GateResult) -> None:
    """After the seal: the sealed verdict and figures (an unsealed run is never recorded as
    pass).
    """
    verdict = result.verdict if result.summary_path is not None else "error"
    b = result.body
    try:
        with _history(c) as conn:
            conn.execute(
                "UPDATE drills SET rpo_s = ?, rto_s = ?, lost = ?, verdict = ? WHERE run_id = ?",
                (b.get("rpo_s"), b.get("rto_s"), b.get("lost_writes"), verdict, run_id),
            )
    except sqlite3.Error:
        pass  # the sealed evidence is the record; the history table is a convenience


def read_history(c: Contract) -> list[tuple[Any, ...]]:
    path = history_path(c)
    if not path.exists():
        return []
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as conn:
            return conn.execute(
                "SELECT run_id, at, faults, rpo_s, rto_s, lost, verdict FROM drills ORDER BY at"
            ).fetchall()
    except sqlite3.Error as exc:
        raise EvidenceError(
            f"{path}: unreadable drill history ({exc}); move it aside to start a new one"
        ) from None


class DrillGate:
    """Gate 4: back up, break, restore; RPO and RTO measured, integrity checked."""

    name, title, label = "drill", "Gate 4", "gate4"
    needs = ("services", "durability")

    def plan(self, contract_path: Path | None, profile: Profile) -> DrillConfig:
        return DrillConfig(contract_path)

    def describe(self, c: Contract) -> list[str]:
        c.section("durability", "drill")
        return plan(DrillConfig(c.path))

    def run(self, plan: DrillConfig) -> GateResult:
        return run_drill(plan)
