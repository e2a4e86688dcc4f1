"""Runs the secrets scan as a gate: contract defaults, evidence, report writers."""

from __future__ import annotations

from pathlib import Path

from toolkit.core import litter
from toolkit.core.contract import Contract
from toolkit.core.errors import ContractError
from toolkit.core.events import Bus, SecretsDone
from toolkit.core.predicate import Verdict
from toolkit.core.runner import GateResult, default_contract_path, gate_run, load_locked
from toolkit.gates.base import Profile
from toolkit.gates.secrets_scan import ScanConfig, ScanResult, run_scan


def _contract(path: Path | None, need: bool) -> Contract | None:
    if path is not None:
        return load_locked(path)
    try:
        found = default_contract_path()
    except ContractError:
        if need:
            raise
        return None
    return load_locked(found)


def apply_defaults(cfg: ScanConfig, c: Contract | None) -> ScanConfig:
    sec = c.raw.get("secrets", {}) if c else {}
    if c is not None and not cfg.paths and not (cfg.staged or cfg.changed_since):
        cfg.paths = [c.resolve(p) for p in sec.get("scan", [])]
    if c is not None and cfg.baseline is None and "baseline" in sec:
        cfg.baseline = c.resolve(sec["baseline"])
    if c is not None and not cfg.databases and not (cfg.staged or cfg.changed_since):
        cfg.databases = [
            c.resolve(d["path"]) for d in c.raw.get("durability", {}).get("databases", [])
        ]
    if c is not None and not cfg.code:
        cfg.code = [c.resolve(p) for p in sec.get("code", [])]
    if c is not None:
        cfg.own += own_artifacts(c)
    return cfg


def own_artifacts(c: Contract) -> list[Path]:
    """What the toolkit itself writes for this contract: never scanned, never reported."""
    dur = c.raw.get("durability", {})
    backups = c.resolve(dur.get("backup_dir", "artifacts/backups"))
    return [c.evidence_dir, backups, c.dir / ".toolkit"]


def run_secrets_gate(cfg: ScanConfig, contract_path: Path | None, formats: tuple[str, ...],
                     output: Path | None) -> tuple[ScanResult, Path | None]:
    from reports.secrets import SecretsReports

    explicit = bool(cfg.paths) or cfg.staged or bool(cfg.changed_since)
    c = _contract(contract_path, need=not explicit)
    cfg = apply_defaults(cfg, c)
    work = litter.temp_dir("toolkit-secrets-")
    try:
        if c is None:  # a plain tree (pre-commit in any repo): reports only, no gate evidence
            bus = Bus()
            SecretsReports(formats, None, output).attach(bus)
            result = run_scan(cfg, work)
            bus.emit(SecretsDone(result.to_dict()))
            return result, None
        scope = "explicit" if explicit else "contract"
        with gate_run(c, SecretsGate.name, SecretsGate.label, scope) as run:
            SecretsReports(formats, run.evidence.write_bytes, output).attach(run.bus)
            result = run_scan(cfg, work)
            # explicit paths are an ad hoc scan, not Gate 3d: recorded so, never counted to release
            body = {**result.to_dict(), "scope": scope}
            run.emit(SecretsDone(body))
            run.seal(
                result.verdict,
                {
                    **body,
                    "measurements": [
                        {
                            "metric": "new_secrets",
                            "value": len(result.new),
                            "threshold": 0,
                            "unit": "secrets",
                        },
                        {
                            "metric": "bandit_issues",
                            "value": len(result.bandit),
                            "threshold": 0,
                            "unit": "issues",
                        },
                        {
                            "metric": "canaries_found",
                            "value": result.canaries_found,
                            "threshold": result.canaries_planted,
                            "unit": "canaries",
                        },
                    ],
                },
            )
            return result, run.result.summary_path
    finally:
        litter.remove_tree(work)


class SecretsGate:
    """Gate 3d: hard-coded secrets in the contract's folders and code (detect-secrets, bandit)."""

    name, title, label = "secrets", "Gate 3d", "gate3-secrets-scan"
    needs = ("secrets",)

    def plan(self, contract_path: Path | None, profile: Profile) -> Path | None:
        return contract_path

    def describe(self, c: Contract) -> list[str]:
        sec = c.raw.get("secrets", {})
        scan = [str(c.resolve(p)) for p in sec.get("scan", [])] or ["<the contract's folder>"]
        return [f"scan {', '.join(scan)}; bandit over {len(sec.get('code', []))} code folder(s)"]

    def run(self, plan: Path | None) -> GateResult:
        scan, where = run_secrets_gate(ScanConfig(), plan, ("json", "sarif", "junit"), None)
        return GateResult(Verdict.of(scan.verdict), scan.to_dict(), where)
