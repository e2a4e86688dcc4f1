#!/usr/bin/env python3
"""Run `toolkit attack --all` on every real-world target, vulnerable and fixed release.

For each target and release: a fresh folder gets what a user would have in place (the
target's [target.setup]: files, git repositories), the contract
contracts/<name>/<vulnerable|fixed>.toml with {{install}} replaced by that release's install
folder in the cache, a `toolkit contract lock`, then `toolkit attack --all` with a 120 s
timeout. The caller chooses the network: wrap it in `unshare -n` so traffic stays local:

    unshare -n -p -f --mount-proc sh -c 'ip link set lo up && \\
        python bench/realworld/run.py --toolkit .venv/bin/toolkit'

One row per target and release, then the totals: vulnerable releases detected (exit 1 with
every expected class), fixed releases passed (exit 0; those whose only findings are listed in
the target's verified_in_fixed are counted apart, never as passed), class recall (expected
families found, whatever the exit code), runs that exited 2 or timed out, total time.
Run folders (contract, evidence, output) are kept under --runs.
"""
from __future__ import annotations

import argparse
import glob
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import tomllib
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
DEFAULT_CACHE = Path.home() / ".cache" / "toolkit-realworld"
KINDS = ("vulnerable", "fixed")

# Attack families by CWE first (a finding says which weakness it proved), then by attack id.
CWE_FAMILY = {22: "traversal", 23: "traversal", 36: "traversal", 59: "symlink", 61: "symlink",
              78: "command", 77: "command", 88: "option", 454: "env", 526: "env",
              287: "auth", 306: "auth", 294: "auth", 863: "policy", 184: "smuggle",
              209: "leaks", 200: "leaks", 532: "leaks", 248: "crash", 400: "crash"}
ATTACK_FAMILY = {"T-TRAV-001": "traversal", "T-LINK-001": "symlink", "T-CMD-001": "command",
                 "T-OPT-001": "option", "T-ENVLEAK-001": "env", "T-DOS-001": "crash",
                 "T-WRITE-001": "traversal",
                 "T-ENV-001": "env", "T-AUTH-001": "auth", "T-AUTH-002": "auth",
                 "T-AUTH-003": "auth", "T-POL-001": "policy", "T-POL-002": "smuggle",
                 "T-POL-003": "policy", "T-LEAK-001": "leaks"}


@dataclass
class Row:
    target: str
    kind: str
    version: str
    expected: list[str]
    verified: list[str] = field(default_factory=list)
    rc: int | None = None
    found: list[str] = field(default_factory=list)
    verdict: str = ""
    seconds: float = 0.0
    reason: str = ""
    folder: str = ""


def load_targets(only: list[str] | None) -> list[dict[str, Any]]:
    with open(HERE / "targets.toml", "rb") as fh:
        targets: list[dict[str, Any]] = tomllib.load(fh)["target"]
    if only:
        unknown = set(only) - {t["name"] for t in targets}
        if unknown:
            sys.exit(f"unknown target(s): {', '.join(sorted(unknown))}")
        targets = [t for t in targets if t["name"] in only]
    return targets


def family(finding: dict[str, Any]) -> str:
    cwe = finding.get("cwe")
    if isinstance(cwe, int) and cwe in CWE_FAMILY:
        return CWE_FAMILY[cwe]
    return ATTACK_FAMILY.get(str(finding.get("attack_id")), str(finding.get("attack_id")))


def prepare(folder: Path, target: dict[str, Any], contract_text: str) -> Path:
    setup = target.get("setup", {})
    for rel, text in setup.get("files", {}).items():
        path = folder / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    for rel in setup.get("dirs", []):
        (folder / rel).mkdir(parents=True, exist_ok=True)
    for rel in setup.get("git", []):
        make_repo(folder / rel)
    contract = folder / "contract.toml"
    if contract_text:
        contract.write_text(contract_text)
    return contract


def make_repo(path: Path) -> None:
    path.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "GIT_AUTHOR_NAME": "corpus", "GIT_AUTHOR_EMAIL": "corpus@localhost",
           "GIT_COMMITTER_NAME": "corpus", "GIT_COMMITTER_EMAIL": "corpus@localhost"}
    if not any(path.iterdir()):
        (path / "README.md").write_text("corpus repository\n")
    for cmd in (["git", "init", "-q", "-b", "main"], ["git", "add", "-A"],
                ["git", "commit", "-q", "-m", "initial"]):
        subprocess.run(cmd, cwd=path, env=env, check=True, capture_output=True)


def run_cmd(cmd: list[str], cwd: Path, timeout: float) -> tuple[int | None, str, str]:
    """Run in its own session so a timeout can end the toolkit and the servers it started."""
    proc = subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout)
        return proc.returncode, out, err
    except subprocess.TimeoutExpired:
        proc.terminate()  # the toolkit stops the services it started on SIGTERM
        try:
            out, err = proc.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)  # bench only: the group this script started
            out, err = proc.communicate()
        return None, out, err


def first_error(out: str, err: str) -> str:
    for text in (err, out):
        lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
        for ln in lines:
            low = ln.lower()
            if "error" in low or "refused" in low or "traceback" in low:
                return ln[:220]
        if lines:
            return lines[-1][:220]
    return ""


def summary(folder: Path) -> dict[str, Any] | None:
    paths = sorted(glob.glob(str(folder / "**" / "gate3-attack-summary-*.json"), recursive=True))
    if not paths:
        return None
    with open(paths[-1]) as fh:
        data: dict[str, Any] = json.load(fh)
    return data


def judge(row: Row, data: dict[str, Any] | None, out: str, err: str) -> None:
    if data is not None:
        row.found = sorted({family(f) for f in data.get("findings", [])})
        errors = data.get("errors") or []
        if errors and not row.reason:
            row.reason = str(errors[0])[:220]
    missed = sorted(set(row.verified) - set(row.found))
    if missed and row.rc in (0, 1):
        row.reason = "verified true finding(s) not reported: " + ", ".join(missed)
    if row.rc is None:
        row.verdict = "TIMEOUT"
    elif row.rc == 2:
        row.verdict = "ERROR"
        row.reason = row.reason or first_error(out, err)
    elif row.kind == "fixed" and row.rc == 0:
        row.verdict = "pass"
    elif row.kind == "fixed":
        row.verdict = "TRUE-ONLY" if set(row.found) <= set(row.verified) else "FLAGGED"
    elif row.rc == 1 and set(row.expected) <= set(row.found):
        row.verdict = "detected"
    elif row.rc == 1 and set(row.expected) & set(row.found):
        row.verdict = "PARTIAL"
    else:
        row.verdict = "MISS"


def run_one(target: dict[str, Any], kind: str, toolkit: list[str], cache: Path,
            runs: Path, timeout: float) -> Row:
    version = target[kind]
    expected = list(target["expected"]) if kind == "vulnerable" else []
    verified = [v["family"] for v in target.get("verified_in_fixed", [])] if kind == "fixed" else []
    row = Row(target["name"], kind, version, expected, verified)
    install = cache / target["name"] / version
    folder = runs / f"{target['name']}-{kind}"
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    row.folder = str(folder)
    src = HERE / "contracts" / target["name"] / f"{kind}.toml"
    init = target.get("init")
    if init is None and not src.is_file():
        row.verdict, row.reason = "NO-CONTRACT", f"missing {src}"
        return row
    if not (install / ".installed.json").is_file():
        row.verdict, row.reason = "NOT-INSTALLED", f"run install.py first ({install})"
        return row
    t0 = time.monotonic()
    if init is not None:
        contract = prepare(folder, target, "")
        step = "contract init"
        rc, out, err = init_contract(init, toolkit, install, folder)
    else:
        text = (src.read_text().replace("{{install}}", str(install))
                .replace("{{bench}}", str(HERE)))
        contract = prepare(folder, target, text)
        step = "contract lock"
        rc, out, err = run_cmd([*toolkit, "contract", "lock", "--contract", str(contract)],
                               folder, 30)
    if rc != 0:
        row.rc, row.verdict = rc, "ERROR"
        row.seconds = round(time.monotonic() - t0, 1)
        row.reason = f"{step}: " + first_error(out, err)
        (folder / "init.stdout").write_text(out)
        (folder / "init.stderr").write_text(err)
        return row
    rc, out, err = run_cmd([*toolkit, "attack", "--all", "--contract", str(contract),
                            "--format", "json"], folder, timeout)
    row.seconds = round(time.monotonic() - t0, 1)
    row.rc = rc
    (folder / "attack.stdout").write_text(out)
    (folder / "attack.stderr").write_text(err)
    judge(row, summary(folder), out, err)
    return row


def init_contract(init: dict[str, Any], toolkit: list[str], install: Path,
                  folder: Path) -> tuple[int | None, str, str]:
    """Zero-config targets ([target.init]): the contract is written at run time by the
    toolkit's own `contract init --mcp-stdio`, as a new user would, from the server's
    listing; `command` may hold {{install}} and {{folder}} (the run folder)."""
    def sub(text: str) -> str:
        return text.replace("{{install}}", str(install)).replace("{{folder}}", str(folder))
    cmd = [*toolkit, "contract", "init", "--mcp-stdio", "--sandbox", init["sandbox"],
           "--out", str(folder / "contract.toml")]
    for name, value in init.get("env", {}).items():
        cmd += ["--env", f"{name}={sub(str(value))}"]
    return run_cmd([*cmd, "--", *[sub(str(a)) for a in init["command"]]], folder, 60)


def totals(rows: list[Row]) -> dict[str, Any]:
    vul = [r for r in rows if r.kind == "vulnerable"]
    fix = [r for r in rows if r.kind == "fixed"]
    exp = sum(len(r.expected) for r in vul)
    hit = sum(len(set(r.expected) & set(r.found)) for r in vul)
    return {
        "vulnerable_detected": sum(r.verdict == "detected" for r in vul),
        "vulnerable_total": len(vul),
        "fixed_passed": sum(r.verdict == "pass" for r in fix),
        "fixed_true_only": sum(r.verdict == "TRUE-ONLY" for r in fix),
        "fixed_total": len(fix),
        "class_recall": round(hit / exp, 3) if exp else None,
        "classes_found": hit, "classes_expected": exp,
        "exit_2": sum(r.rc == 2 for r in rows),
        "timeouts": sum(r.rc is None and r.verdict == "TIMEOUT" for r in rows),
        "total_seconds": round(sum(r.seconds for r in rows), 1),
    }


def print_row(r: Row) -> None:
    rc = "-" if r.rc is None else str(r.rc)
    found = ",".join(r.found) or "-"
    exp = ",".join(r.expected) or "-"
    print(f"{r.target:16} {r.kind:10} {r.version:11} {rc:>2} {r.verdict:14} "
          f"{r.seconds:6.1f}s found={found} expected={exp}", flush=True)
    if r.reason and (r.verdict not in ("detected", "pass") or r.verified):
        print(f"{'':16} {r.reason}", flush=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--toolkit", default=None,
                    help="toolkit executable (default: `toolkit` on PATH, else python -m toolkit)")
    ap.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    ap.add_argument("--runs", type=Path, default=None,
                    help="where run folders are kept (default: CACHE/runs/<time>)")
    ap.add_argument("--only", action="append", help="only this target (repeatable)")
    ap.add_argument("--kind", choices=KINDS, action="append", help="only these releases")
    ap.add_argument("--timeout", type=float, default=120.0)
    ap.add_argument("--json", action="store_true", help="print rows and totals as JSON")
    args = ap.parse_args()
    if args.toolkit:
        toolkit = [str(Path(args.toolkit).expanduser().resolve())]
    elif shutil.which("toolkit"):
        toolkit = ["toolkit"]
    else:
        toolkit = [sys.executable, "-m", "toolkit"]
    cache = args.cache.expanduser().resolve()
    runs = (args.runs or cache / "runs" / time.strftime("%Y%m%dT%H%M%S")).resolve()
    runs.mkdir(parents=True, exist_ok=True)
    rows: list[Row] = []
    for target in load_targets(args.only):
        for kind in args.kind or KINDS:
            row = run_one(target, kind, toolkit, cache, runs, args.timeout)
            rows.append(row)
            if not args.json:
                print_row(row)
    tot = totals(rows)
    if args.json:
        print(json.dumps({"toolkit": toolkit, "runs": str(runs),
                          "rows": [asdict(r) for r in rows], "totals": tot}, indent=1))
    else:
        print(f"vulnerable detected {tot['vulnerable_detected']}/{tot['vulnerable_total']}, "
              f"fixed passed {tot['fixed_passed']}/{tot['fixed_total']} "
              f"(+{tot['fixed_true_only']} with only hand-verified true findings), class recall "
              f"{tot['classes_found']}/{tot['classes_expected']}, exit 2: {tot['exit_2']}, "
              f"timeouts: {tot['timeouts']}, total {tot['total_seconds']} s; runs: {runs}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
