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
    if c is None:
        return cfg
    sec = c.secrets
    if not cfg.paths and not (cfg.staged or cfg.changed_since):
        cfg.paths = [c.resolve(p) for p in sec.scan]
    if cfg.baseline is None and sec.baseline is not None:
        cfg.baseline = c.resolve(sec.baseline)
    if not cfg.databases and not (cfg.staged or cfg.changed_since):
        cfg.databases = c.database_files
    if not cfg.code:
        cfg.code = [c.resolve(p) for p in sec.code]
    cfg.own += own_artifacts(c)
    return cfg


def own_artifacts(c: Contract) -> list[Path]:
    """What the toolkit itself writes for this contract: never scanned, never reported."""
    return [c.evidence_dir, c.backup_dir, c.dir / ".toolkit"]


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
        scan = [str(c.resolve(p)) for p in c.secrets.scan] or ["<the contract's folder>"]
        return [f"scan {', '.join(scan)}; bandit over {len(c.secrets.code)} code folder(s)"]

    def run(self, plan: Path | None) -> GateResult:
        scan, where = run_secrets_gate(ScanConfig(), plan, ("json", "sarif", "junit"), None)
        return GateResult(Verdict.of(scan.verdict), scan.to_dict(), where)
