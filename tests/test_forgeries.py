"""Forgeries by someone who can write the evidence folder but holds no key: each is named.

The runs here are sealed by the real runner (GateRun, signed, recorded in the ledger) with
figures written by the test, so the policy itself is what is under test; the genuine
sequence of real gates is in test_release.py.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import run_cli, write_contract
from toolkit.core import contract as contract_mod
from toolkit.core import signing
from toolkit.core.evidence import MANIFEST, SIGNATURE, run_files, verify_run
from toolkit.core.ledger import GateBlocked, Ledger, check_runs
from toolkit.core.runner import gate_run
from toolkit.gates.attack import select
from toolkit.gates.release import GATES, ReleaseBlocked, assess, ceremony

CONTRACT = """
[contract]
name = "pol"
version = "1.0.0"

[[services]]
name = "svc"
command = ["{{python}}", "-c", "pass"]
port = 7990

[auth]
scheme = "hmac-sha256"
key_file = "keys/service.keys"

[[surfaces]]
name = "files"
classes = ["path"]
service = "svc"
path = "/read"
json = { path = "{{payload}}" }

[cycle]
count = 2
health_duration = "2s"
interval = "0.5s"

[soak]
duration = "4s"

[determinism]
command = ["{{python}}", "-c", "pass"]
runs = 2

[evidence]
dir = "evidence"
"""


def _coverage() -> list[dict[str, Any]]:
    return [
        {"attack_id": a.spec.id, "surface": "files", "status": "clean", "sent": 3}
        for a in select([])
        if "path" in a.spec.classes
    ]


def full_body(gate: str, **over: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "cycle": {
            "cycles_requested": 2,
            "cycles_completed": 2,
            "health_duration_s": 2.0,
            "interval_s": 0.5,
            "checks_expected": 4,
            "health_checks_passed": 4,
            "health_checks_failed": 0,
            "zombies": [],
        },
        "soak": {"duration_s": 4.0, "warmup_s": 0.0, "requests_planned": 10},
        "attack": {
            "budget": "standard",
            "attack_seed": 1,
            "payloads_sent": 30,
            "findings": [],
            "cases": _coverage(),
        },
        "secrets": {
            "files_scanned": 3,
            "canaries_planted": 1,
            "canaries_found": 1,
            "scope": "contract",
        },
        "drill": {"faults": ["kill"], "rpo_s": 0.5, "rto_s": 1.0},
        "determinism": {"runs": 2, "tests": 5, "env_sha256": "0" * 64},
    }[gate]
    body.update(over)
    return body


LABELS = {g: label for g, _, label in GATES}


def seal(path: Path, gate: str, verdict: str = "pass", **over: Any) -> Path:
    c = contract_mod.load(path)
    with gate_run(c, gate, LABELS[gate]) as run:
        run.seal(verdict, full_body(gate, **over))
    return run.evidence.dir


@pytest.fixture
def contract(tmp_path: Path) -> Path:
    (tmp_path / "keys").mkdir()
    (tmp_path / "keys" / "service.keys").write_text(
        "k1:" + "ab" * 32 + "\n"
    )  # pragma: allowlist secret
    return write_contract(tmp_path, CONTRACT)


def all_gates(path: Path) -> dict[str, Path]:
    return {gate: seal(path, gate) for gate, _, _ in GATES}


def reasons(path: Path) -> list[str]:
    c = contract_mod.load(path)
    return assess(c, signing.trusted_keys()).reasons()


def test_genuine_sequence_is_approvable_and_releases(contract: Path, tmp_path: Path) -> None:
    all_gates(contract)
    assert reasons(contract) == []
    key = tmp_path / "release.pem"
    assert run_cli("release", "keygen", str(key)) == 0
    args = [
        "release",
        "--contract",
        str(contract),
        "--key",
        str(key),
        "--signer",
        "Ada Lovelace, QA lead",
        "--out",
        str(tmp_path / "out"),
    ]
    assert run_cli(*args) == 0
    assert run_cli(*args) == 0  # a second candidate; the first is never overwritten
    first, second = (
        tmp_path / "out" / "RELEASE_CANDIDATE_1",
        tmp_path / "out" / "RELEASE_CANDIDATE_2",
    )
    assert sorted(p.name for p in first.iterdir()) == [
        "RELEASE_CANDIDATE_1_APPROVED.txt",
        "RELEASE_CANDIDATE_1_BUNDLE.tar.gz",
        "RELEASE_CANDIDATE_1_MANIFEST.sha256",
        "RELEASE_CANDIDATE_1_SIGNATURE.txt",
        "RELEASE_CHECKLIST.md",
    ]
    assert (second / "RELEASE_CANDIDATE_2_APPROVED.txt").is_file()
    checklist = (first / "RELEASE_CHECKLIST.md").read_text()
    assert "2/2 cycles, 0 zombies, 4/4 checks" in checklist
    assert "Release Candidate 1: APPROVED FOR GA\nSign-off: Ada Lovelace/QA lead - " in checklist
    approved = (first / "RELEASE_CANDIDATE_1_APPROVED.txt").read_text()
    assert "role QA lead" in approved and "bundle sha256" in approved
    assert run_cli("release", "verify", str(first), "--trust", str(key) + ".pub") == 0


def test_release_verify_demands_trust_and_names_every_change(
    contract: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    all_gates(contract)
    key, other = tmp_path / "release.pem", tmp_path / "other.pem"
    run_cli("release", "keygen", str(key))
    run_cli("release", "keygen", str(other))
    out = tmp_path / "out"
    assert (
        run_cli(
            "release",
            "--contract",
            str(contract),
            "--key",
            str(key),
            "--signer",
            "A, QA",
            "--out",
            str(out),
        )
        == 0
    )
    rc = out / "RELEASE_CANDIDATE_1"
    assert run_cli("release", "verify", str(rc)) == 2
    assert "needs a trusted public key" in capsys.readouterr().err
    assert run_cli("release", "verify", str(rc), "--trust", str(other) + ".pub") == 1
    assert "not by a trusted key" in capsys.readouterr().err
    approved = rc / "RELEASE_CANDIDATE_1_APPROVED.txt"
    approved.write_text(approved.read_text().replace("QA", "CEO"))
    assert run_cli("release", "verify", str(rc), "--trust", str(key) + ".pub") == 1
    assert "changed: RELEASE_CANDIDATE_1_APPROVED.txt" in capsys.readouterr().err
    (rc / "RELEASE_CANDIDATE_1_SIGNATURE.txt").write_text("{not json")
    assert run_cli("release", "verify", str(rc), "--trust", str(key) + ".pub") == 1
    assert "not JSON" in capsys.readouterr().err
    (rc / "RELEASE_CANDIDATE_1_SIGNATURE.txt").write_text('{"payload": 3}')
    assert run_cli("release", "verify", str(rc), "--trust", str(key) + ".pub") == 1
    assert "not a DSSE envelope" in capsys.readouterr().err
    bad_trust = tmp_path / "bad.pub"
    bad_trust.write_text("ssh-rsa AAAA\n")
    assert run_cli("release", "verify", str(rc), "--trust", str(bad_trust)) == 2
    assert run_cli("release", "verify", str(tmp_path / "nope"), "--trust", str(key) + ".pub") == 2


# ---------------------------------------------------------------- run forgeries


def test_edited_verdict_rehashed_and_rechained_is_caught(contract: Path) -> None:
    run = seal(contract, "cycle", "fail")
    summary = next(run.glob("gate1-summary-*.json"))
    summary.write_text(summary.read_text().replace('"verdict": "fail"', '"verdict": "pass"'))
    lines = [
        f"{hashlib.sha256((run / rel).read_bytes()).hexdigest()}  {rel}\n"
        for rel in run_files(run)
        if rel not in (MANIFEST, SIGNATURE)
    ]
    (run / MANIFEST).write_text("".join(lines))  # what `sha256sum * > manifest.sha256` gives
    problems = verify_run(run)
    assert any(
        p.startswith(f"changed: {summary.name}") and "signed digest" in p for p in problems
    ), problems
    assert any("summary verdict 'pass' differs from the signed 'fail'" in p for p in problems), (
        problems
    )


def test_copied_run_is_caught(contract: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = seal(contract, "soak")
    copy = run.with_name("29991231T000000Z-abcdef")
    shutil.copytree(run, copy)
    assert any("copied or renamed" in p for p in verify_run(copy))
    assert run_cli("verify", str(run.parent.parent)) == 1
    err = capsys.readouterr().err
    assert "copied or renamed" in err and "not in the ledger" in err


def test_renamed_run_is_caught(contract: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = seal(contract, "soak")
    renamed = run.with_name("29991231T000000Z-000000")
    run.rename(renamed)
    assert run_cli("verify", str(run.parent.parent)) == 1
    err = capsys.readouterr().err
    assert "copied or renamed" in err and f"gone: soak run {run.name}" in err


def test_hand_written_run_is_caught(contract: Path) -> None:
    seal(contract, "soak")
    fake = contract.parent / "evidence" / "soak" / "29991231T000000Z-ffffff"
    fake.mkdir()
    summary = {"gate": "soak", "run_id": fake.name, "verdict": "pass", "duration_s": 172800}
    (fake / f"gate2-summary-{fake.name}.json").write_text(json.dumps(summary))
    (fake / "journal.jsonl").write_text("")
    assert any("unsigned" in p for p in verify_run(fake))
    assert any("not in the ledger" in r and fake.name in r for r in reasons(contract))


def test_added_dotfile_is_caught(contract: Path) -> None:
    run = seal(contract, "drill")
    (run / ".hidden").write_text("smuggled into the bundle")
    assert "added: .hidden (not in the signed statement)" in verify_run(run)


def test_swapped_signature_is_caught(contract: Path, capsys: pytest.CaptureFixture[str]) -> None:
    failing = seal(contract, "attack", "fail")
    passing = seal(contract, "attack")
    shutil.copy(passing / SIGNATURE, failing / SIGNATURE)
    assert any("copied or renamed" in p for p in verify_run(failing))
    assert run_cli("verify", str(failing.parent.parent)) == 1
    assert f"replaced: attack run {failing.name}" in capsys.readouterr().err


def test_self_signed_run_with_an_attacker_key_is_untrusted(
    contract: Path, tmp_path: Path, runner_key: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TOOLKIT_RUNNER_KEY", str(tmp_path / "attacker" / "key.pem"))
    run = seal(contract, "soak")
    problems = verify_run(run, [signing.runner_signer(runner_key).public_key])
    assert any("not by a trusted key" in p for p in problems), problems


def test_deleted_failing_run_blocks_the_release(contract: Path) -> None:
    runs = all_gates(contract)
    failing = seal(contract, "soak", "fail")
    shutil.rmtree(failing)
    found = reasons(contract)
    assert any(f"gone: soak run {failing.name} (fail)" in r for r in found), found
    assert any(f"soak: blocker: newest attempt {failing.name} says fail" in r for r in found), found
    assert runs["soak"].is_dir()


def test_truncated_ledger_is_caught(contract: Path) -> None:
    seal(contract, "cycle")
    seal(contract, "soak", "fail")
    ledger = Ledger(contract.parent / "evidence")
    lines = ledger.path.read_bytes().splitlines(keepends=True)
    ledger.path.write_bytes(b"".join(lines[:-2]))  # drop the failed attempt
    problems = check_runs(ledger, signing.trusted_keys())
    assert any("truncated or deleted" in p for p in problems), problems


def test_edited_ledger_line_is_caught(contract: Path) -> None:
    seal(contract, "soak", "fail")
    ledger = Ledger(contract.parent / "evidence")
    text = ledger.path.read_text().replace('"verdict":"fail"', '"verdict":"pass"')
    ledger.path.write_text(text)
    problems = ledger.verify(signing.trusted_keys())
    assert any("not signed by a trusted runner key" in p for p in problems), problems


# ---------------------------------------------------------------- policy forgeries


def test_embedded_key_blocks_the_bundle(contract: Path, tmp_path: Path) -> None:
    c = contract_mod.load(contract)
    for gate, _, label in GATES:
        with gate_run(c, gate, label) as run:
            if gate == "drill":  # what the drill snapshot did before it learnt to skip keys
                run.evidence.write_bytes(
                    "state-snapshot/keys/copy.txt",
                    (tmp_path / "keys" / "service.keys").read_bytes(),
                )
            run.seal("pass", full_body(gate))
    key = tmp_path / "release.pem"
    run_cli("release", "keygen", str(key))
    with pytest.raises(
        ReleaseBlocked, match="embedded key: drill/.*holds a line of the \\[auth\\] key file"
    ):
        ceremony(c, tmp_path / "out", key, "A, QA", assess(c, signing.trusted_keys()))
    assert not (tmp_path / "out" / "RELEASE_CANDIDATE_1").exists()


def test_drill_snapshot_never_copies_key_files(tmp_path: Path) -> None:
    from recovery.state import snapshot

    state = tmp_path / "state"
    (state / "keys").mkdir(parents=True)
    (state / "keys" / "service.keys").write_text("k:00\n")
    (state / "keys" / "tls.pem").write_text("x")
    (state / "auth.bin").write_text("k:00\n")
    (state / "data.txt").write_text("kept")
    entries = snapshot([state], tmp_path / "snap", {state / "auth.bin"})
    assert [e["path"] for e in entries] == ["data.txt"]


def test_scaled_runs_are_rehearsal_only(contract: Path, tmp_path: Path) -> None:
    all_gates(contract)
    seal(
        contract,
        "cycle",
        cycles_requested=1,
        cycles_completed=1,
        health_checks_passed=1,
        checks_expected=1,
    )
    for gate in ("soak", "attack", "secrets", "drill"):
        seal(contract, gate)
    seal(contract, "determinism", runs=1)
    seal(contract, "soak", duration_s=3.0)  # out of order too, now: newest soak after determinism
    found = reasons(contract)
    assert any("cycle: scaled down: 1 cycles" in r for r in found), found
    assert any("determinism: scaled down: 1 runs" in r for r in found), found
    assert any("soak: scaled down: soak ran 3.0 s" in r for r in found), found
    key = tmp_path / "release.pem"
    run_cli("release", "keygen", str(key))
    base = [
        "release",
        "--contract",
        str(contract),
        "--key",
        str(key),
        "--signer",
        "A, QA",
        "--out",
        str(tmp_path / "out"),
    ]
    assert run_cli(*base) == 1 and not (tmp_path / "out" / "RELEASE_CANDIDATE_1").exists()
    assert run_cli(*base, "--rehearsal") == 0
    rehearsal = tmp_path / "out" / "REHEARSAL_1"
    assert "REHEARSAL - NOT FOR GA" in (rehearsal / "RELEASE_CHECKLIST.md").read_text()
    assert not list(rehearsal.glob("*APPROVED*"))
    assert "REHEARSAL - NOT FOR GA" in (rehearsal / "REHEARSAL_1_NOT_FOR_GA.txt").read_text()


def test_subset_attack_and_budget_quick_are_named(contract: Path) -> None:
    all_gates(contract)
    seal(
        contract,
        "attack",
        budget="quick",
        cases=[c for c in _coverage() if c["attack_id"] == "T-TRAV-001"],
    )
    for gate in ("secrets", "drill", "determinism"):
        seal(contract, gate)
    found = reasons(contract)
    assert any("attack: budget 'quick'" in r for r in found), found
    assert any("attack: subset: T-LINK-001 (symlink) did not run" in r for r in found), found


def test_auth_that_could_not_run_is_a_finding_not_a_skip(tmp_path: Path) -> None:
    text = CONTRACT.replace('[auth]\nscheme = "hmac-sha256"\nkey_file = "keys/service.keys"\n', "")
    path = write_contract(tmp_path, text)
    for gate, _, _ in GATES:
        cases = [
            {**c, "status": "skipped", "sent": 0} if c["attack_id"].startswith("T-AUTH") else c
            for c in _coverage()
        ]
        seal(path, gate, **({"cases": cases} if gate == "attack" else {}))
    found = reasons(path)
    assert any(
        "finding: T-AUTH-001 (auth) could not run because the contract has no [auth]" in r
        for r in found
    ), found


def test_weakened_stack_is_named(contract: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    seal(contract, "cycle")
    monkeypatch.setenv("SONIA_WEAKEN", "shell")
    seal(contract, "soak")
    monkeypatch.delenv("SONIA_WEAKEN")
    for gate in ("attack", "secrets", "drill", "determinism"):
        seal(contract, gate)
    found = reasons(contract)
    assert any(
        "soak: recorded environment has a weakening switch SONIA_WEAKEN=shell" in r for r in found
    ), found


def test_out_of_order_gates_are_named(contract: Path) -> None:
    seal(contract, "determinism")
    for gate in ("cycle", "soak", "attack", "secrets", "drill"):
        seal(contract, gate)
    found = reasons(contract)
    assert any(r.startswith("determinism: out of order") for r in found), found


def test_partial_and_interrupted_runs_never_count(contract: Path) -> None:
    from toolkit.core.errors import Interrupted
    from toolkit.core.runner import GateRun

    all_gates(contract)
    c = contract_mod.load(contract)
    with pytest.raises(Interrupted), gate_run(c, "drill", "gate4"):
        raise KeyboardInterrupt
    found = reasons(contract)
    assert any("drill: blocker: newest attempt" in r and "says interrupted" in r for r in found), (
        found
    )
    killed = GateRun(c, "secrets", "gate3-secrets-scan")  # a kill -9: never sealed
    killed.evidence.abandon()
    found = reasons(contract)
    assert any(
        f"secrets: newest attempt {killed.evidence.run_id} never finished" in r for r in found
    ), found


def test_relocked_contract_under_the_same_version_is_drift(
    contract: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lock = contract.with_name(contract.name + ".lock")
    contract.write_text(contract.read_text().replace("runs = 2", "runs = 3"))
    lock.unlink()
    assert run_cli("contract", "lock", "--contract", str(contract)) == 1
    assert "was locked before with sha256" in capsys.readouterr().err
    assert not lock.exists()
    assert run_cli("soak", "--contract", str(contract)) == 2
    assert "was locked before" in capsys.readouterr().err


# ---------------------------------------------------------------- blockers and quarantine


def test_two_failures_block_a_third_attempt_until_resolved(
    contract: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    seal(contract, "cycle", "fail")
    seal(contract, "cycle", "fail")
    with pytest.raises(GateBlocked, match="gate cycle is blocked: it failed 2 times"):
        seal(contract, "cycle")
    cause = tmp_path / "rca.md"
    cause.write_text("The health endpoint raced the database migration.\n")
    assert (
        run_cli(
            "blocker",
            "resolve",
            "--contract",
            str(contract),
            "--gate",
            "cycle",
            "--root-cause",
            str(cause),
            "--fix",
            "migrate before listening",
        )
        == 0
    )
    assert (
        run_cli(
            "blocker",
            "resolve",
            "--contract",
            str(contract),
            "--gate",
            "cycle",
            "--root-cause",
            str(cause),
            "--fix",
            "again",
        )
        == 2
    )  # nothing left to resolve
    seal(contract, "cycle")
    resolved = Ledger(contract.parent / "evidence").resolutions()
    assert resolved[0]["data"]["fix"] == "migrate before listening"
    assert "raced the database" in resolved[0]["data"]["root_cause"]
    for gate in ("soak", "attack", "secrets", "drill", "determinism"):
        seal(contract, gate)
    key = tmp_path / "release.pem"
    run_cli("release", "keygen", str(key))
    c = contract_mod.load(contract)
    done = ceremony(c, tmp_path / "out", key, "A, QA", assess(c, signing.trusted_keys()))
    checklist = (Path(done["out"]) / "RELEASE_CHECKLIST.md").read_text()
    assert "- cycle: migrate before listening (root cause rca.md" in checklist
    import tarfile

    bundle = next(Path(done["out"]).glob("*_BUNDLE.tar.gz"))
    with tarfile.open(bundle) as tar:
        ledger = tar.extractfile("ledger.jsonl")
        assert ledger is not None and b"raced the database" in ledger.read()


def test_quarantine_moves_the_run_and_records_why(
    contract: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = seal(contract, "soak")
    assert run_cli("quarantine", str(run), "--why", "load generator misconfigured") == 0
    moved = contract.parent / "evidence" / "invalidated" / "soak" / run.name
    assert moved.is_dir() and not run.exists()
    entry = Ledger(contract.parent / "evidence").entries()[-1]
    assert entry["kind"] == "quarantine" and entry["data"]["why"] == "load generator misconfigured"
    assert run_cli("verify", str(contract.parent / "evidence")) == 0
    assert any("quarantined (load generator misconfigured)" in r for r in reasons(contract))


def test_verify_quarantines_runs_that_fail(contract: Path) -> None:
    run = seal(contract, "drill")
    (run / ".hidden").write_text("x")
    assert run_cli("verify", str(contract.parent / "evidence"), "--quarantine") == 1
    assert (contract.parent / "evidence" / "invalidated" / "drill" / run.name).is_dir()
    assert run_cli("verify", str(contract.parent / "evidence")) == 0


def test_runner_key_inside_the_evidence_folder_is_refused(
    contract: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from toolkit.core.errors import EvidenceError

    monkeypatch.setenv("TOOLKIT_RUNNER_KEY", str(contract.parent / "evidence" / "k.pem"))
    with pytest.raises(EvidenceError, match="inside the evidence folder"):
        seal(contract, "soak")


def test_runner_key_is_created_0600(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    key = tmp_path / "fresh" / "runner.pem"
    monkeypatch.setenv("TOOLKIT_RUNNER_KEY", str(key))
    signing.runner_signer()
    assert key.stat().st_mode & 0o777 == 0o600
    assert key.with_name("runner.pem.pub").read_text().startswith("ed25519 ")


def test_runner_key_option_and_a_trust_file(
    contract: Path, tmp_path: Path, runner_key: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    other = tmp_path / "ci-runner" / "key.pem"
    assert (
        run_cli("--runner-key", str(other), "soak", "--contract", str(tmp_path / "missing.toml"))
        == 2
    )
    assert not other.exists()  # a contract error comes before any key is made
    assert run_cli("--runner-key", str(other), "contract", "lock", "--contract", str(contract)) == 0
    assert os.environ["TOOLKIT_RUNNER_KEY"] == str(other)  # restored by the fixture
    sealed_by_ci = seal(contract, "soak")
    assert other.stat().st_mode & 0o777 == 0o600
    os.environ["TOOLKIT_RUNNER_KEY"] = str(tmp_path / "unused" / "key.pem")
    evidence = contract.parent / "evidence"
    assert run_cli("verify", str(evidence), "--trust", str(tmp_path / "none.txt")) == 2
    trust = tmp_path / "trusted"
    trust.write_text(other.with_name("key.pem.pub").read_text())
    capsys.readouterr()
    assert (
        run_cli("verify", str(evidence), "--trust", str(trust)) == 1
    )  # the first lock was by the test key
    assert "line 1 (lock) is not signed by a trusted runner key" in capsys.readouterr().err
    trust.write_text(
        other.with_name("key.pem.pub").read_text()
        + runner_key.with_name("runner-key.pem.pub").read_text()
    )
    assert run_cli("verify", str(evidence), "--trust", str(trust)) == 0
    assert sealed_by_ci.is_dir()


def test_an_ad_hoc_secrets_scan_is_no_gate_attempt(contract: Path) -> None:
    all_gates(contract)
    for _ in range(3):  # failing ad hoc scans neither block the gate nor become its accepted run
        seal(contract, "secrets", "fail", scope="explicit")
    assert reasons(contract) == []
    seal(contract, "secrets", "fail")
    assert any("secrets: blocker: newest attempt" in r for r in reasons(contract))


@pytest.mark.parametrize("how", ["deleted", "dev-zero-link"])
def test_a_deleted_or_replaced_ledger_fails_verify(
    contract: Path, how: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """With ledger.jsonl deleted, `toolkit verify` checked each run alone and exited 0; a link
    to /dev/zero in its place would have been read for ever. The runner's head anchor names
    the deletion; a link is refused unread."""
    seal(contract, "cycle")
    ledger = Ledger(contract.parent / "evidence")
    ledger.path.unlink()
    if how == "dev-zero-link":
        ledger.path.symlink_to("/dev/zero")
    code = run_cli("verify", str(ledger.root))
    err = " ".join(capsys.readouterr().err.split())
    if how == "deleted":
        assert code == 1 and "truncated or deleted" in err, err
    else:
        assert code == 2 and "not a plain file" in err, err


def test_quarantine_refuses_a_gate_folder(
    contract: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`quarantine <evidence>/soak` moved every soak run to invalidated/evidence/soak, recorded
    as one run named 'soak'; only a run folder may be quarantined."""
    run = seal(contract, "soak")
    before = len(Ledger(contract.parent / "evidence").entries())
    assert run_cli("quarantine", str(run.parent), "--why", "oops") == 2
    assert "not a run folder" in " ".join(capsys.readouterr().err.split())
    assert run.is_dir() and len(Ledger(contract.parent / "evidence").entries()) == before
