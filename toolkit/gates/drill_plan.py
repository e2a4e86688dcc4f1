"""Gate 4's plan: everything a drill will do, computed once from the contract and a seed.

`toolkit drill --dry-run` prints a `DrillPlan`; the drill runs that same object and records it
(`drill.plan` event, the summary's ``plan``), so a dry run with ``--seed N`` shows exactly what
a run with ``--seed N`` does.
"""

from __future__ import annotations

import os
import random
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from chaos.faults import ALL_FAULTS, FILE_FAULTS
from toolkit.core.contract import Contract
from toolkit.core.errors import ContractError, DriftError, SafetyError, UsageError
from toolkit.core.runner import load_locked
from toolkit.core.sections import WRITER_RATE_PER_S

KEEP_BACKUPS = 3
KNOWN_FAULTS = (*ALL_FAULTS, "corrupt-backup")
_OTHER_STEPS = {
    "kill": "kill: SIGKILL every service's process tree",
    "hang": "hang: SIGSTOP every service for 1 s, then SIGCONT",
    "corrupt-backup": "corrupt-backup: break the header of every backup taken",
}


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


def injection_order(faults: list[str]) -> list[str]:
    """Files are broken under dead processes, as in a crash: kill first when a file fault or
    clear-state is chosen without it."""
    names = list(faults)
    if any(f in FILE_FAULTS or f == "clear-state" for f in names) and "kill" not in names:
        names.insert(0, "kill")
    return names


def draw_seed() -> int:
    """The one place a drill seed is drawn when none is given; callers print and record it."""
    return secrets.randbits(32)


def sentinel_base(seed: int) -> int:
    """Where this drill's sentinel sequence numbers start (apart from every other drill's)."""
    return random.Random(seed).randrange(10**9, 9 * 10**9)  # nosec B311 - recorded seed


def state_dirs(c: Contract, dirs: tuple[str, ...]) -> list[Path]:
    """Declared state folders, each refused if the contract path itself is a symlink.

    The check is on the path as written (made absolute, not resolved): resolving first would
    silently swap the link for its target and the drill would empty a folder outside the
    declared tree.
    """
    out = []
    for i, raw in enumerate(dirs):
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
    seed: int | None = None  # None: drawn once by the plan, printed and recorded
    dry_run: bool = False
    warmup_s: float = 3.0
    backup_interval_s: float = 0.5


@dataclass(frozen=True)
class DrillPlan:
    """What one drill does: seed, faults and their order, the files it touches, its limits."""

    contract_path: Path
    contract_sha256: str
    seed: int
    faults: tuple[str, ...]  # as chosen (asked for, or drawn from the seed)
    order: tuple[str, ...]  # as injected (kill first under file faults)
    sentinel_base: int
    services: int
    databases: tuple[Path, ...]
    state_dirs: tuple[Path, ...]
    backup_dir: Path  # each run backs up into backup_dir/<run id>
    writer_rate_per_s: float
    warmup_s: float
    backup_interval_s: float
    keep_backups: int
    rpo_s: float
    rto_s: float

    def to_dict(self) -> dict[str, Any]:
        """The plan as evidence records it (paths as strings)."""
        return {
            "seed": self.seed, "faults": list(self.faults), "order": list(self.order),
            "sentinel_base": self.sentinel_base, "services": self.services,
            "databases": [str(p) for p in self.databases],
            "state_dirs": [str(p) for p in self.state_dirs],
            "backup_dir": str(self.backup_dir), "writer_rate_per_s": self.writer_rate_per_s,
            "warmup_s": self.warmup_s, "backup_interval_s": self.backup_interval_s,
            "keep_backups": self.keep_backups, "rpo_s": self.rpo_s, "rto_s": self.rto_s,
            "contract_sha256": self.contract_sha256, "steps": self.steps(),
        }

    def steps(self) -> list[str]:
        """--dry-run: the plan in words, one step a line."""
        dbs = ", ".join(d.name for d in self.databases)
        steps = [
            (f"seed {self.seed} (run `toolkit drill --seed {self.seed}` to execute exactly "
             "this plan)"),
            f"faults {', '.join(self.faults)}",
            (f"start {self.services} services; run the sentinel writer at "
             f"{self.writer_rate_per_s:g}/s; back up {dbs} every {self.backup_interval_s:g} s "
             f"with the SQLite backup API into {self.backup_dir}, keeping the newest "
             f"{self.keep_backups}"),
            ("prove the newest backup restores and verifies before anything destructive; "
             "record what recovery needs (recovery-pending.json) so a killed drill is "
             "finished by the next"),
        ]
        for f in self.faults:
            steps += self._fault_steps(f)
        steps.append(f"detect, restore, restart, verify; judge RPO <= {self.rpo_s:g} s and "
                     f"RTO <= {self.rto_s:g} s")
        return steps

    def _fault_steps(self, f: str) -> list[str]:
        if f in FILE_FAULTS:
            return [f"{f}: {FILE_FAULTS[f](db, f).describe(None)}"  # type: ignore[arg-type]
                    for db in self.databases]
        if f == "clear-state":
            dirs = ", ".join(str(d) for d in self.state_dirs) or "no declared folder"
            return [f"clear-state: empty {dirs} without following symlinks"]
        return [_OTHER_STEPS[f]]


def make_plan(cfg: DrillConfig, c: Contract) -> DrillPlan:
    """The drill's plan from a loaded contract; the seed is drawn here when none is given."""
    check_faults(cfg.faults)
    dur = c.need(c.durability, "durability", "drill")
    if dur.writer is None or not dur.databases:
        raise ContractError(
            f"{c.path}: the drill needs [durability.writer] and [[durability.databases]]"
        )
    seed = cfg.seed if cfg.seed is not None else draw_seed()
    faults = choose_faults(seed, cfg.faults)
    return DrillPlan(
        contract_path=c.path, contract_sha256=c.sha256, seed=seed, faults=tuple(faults),
        order=tuple(injection_order(faults)), sentinel_base=sentinel_base(seed),
        services=len(c.services), databases=tuple(c.database_files),
        state_dirs=tuple(state_dirs(c, dur.state_dirs)), backup_dir=c.backup_dir,
        writer_rate_per_s=dur.writer.get("rate_per_s", WRITER_RATE_PER_S),
        warmup_s=cfg.warmup_s, backup_interval_s=cfg.backup_interval_s,
        keep_backups=KEEP_BACKUPS, rpo_s=dur.rpo_s, rto_s=dur.rto_s,
    )


def drill_plan(cfg: DrillConfig) -> DrillPlan:
    """Load the locked contract and plan the drill (what ``--dry-run`` prints and a run runs)."""
    check_faults(cfg.faults)
    return make_plan(cfg, load_locked(cfg.contract_path))


def check_unchanged(plan: DrillPlan, c: Contract) -> None:
    """A plan runs only against the contract it was made from."""
    if c.sha256 != plan.contract_sha256:
        raise DriftError(f"{c.path}: the contract changed after the drill was planned (sha256 "
                         f"{plan.contract_sha256[:12]}… then, {c.sha256[:12]}… now); plan again")
