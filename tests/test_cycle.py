"""Gate 1 with real misbehaving fixture services, and the reference stack."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from tests.conftest import REPO, fixture_service, listening, reference_copy, write_contract
from toolkit.cycle import CycleConfig, run_cycle

HEAD = '[contract]\nname = "cyc"\nversion = "1.0.0"\n[defaults]\nhealth_interval_s = 0.2\n'


def _gate(tmp_path: Path, services: str, count: int = 2, duration: float = 0.6) -> dict:
    path = write_contract(tmp_path, HEAD + services)
    result = run_cycle(CycleConfig(path, count, duration, 0.2))
    return {"verdict": result.verdict, "code": result.exit_code, **result.body}


def test_seed_figures_health_duration_is_the_total_over_the_gate() -> None:
    from toolkit.cycle import checks_per_service, per_cycle_s

    seed = CycleConfig(None, 10, 1800.0, 5.0)
    assert checks_per_service(per_cycle_s(seed), 5.0) * seed.count * 6 == 2160


def _fixture_procs() -> list[psutil.Process]:
    out = []
    for p in psutil.process_iter(["cmdline"]):
        if "tests.targets.fixture_service" in " ".join(p.info["cmdline"] or []):
            out.append(p)
    return out


def test_clean_services_pass_every_cycle(tmp_path: Path) -> None:
    body = _gate(tmp_path, fixture_service("a", 7401) + fixture_service("b", 7402, depends=["a"]), count=3,
                 duration=1.8)  # the total over the gate: 0.6 s per cycle
    assert body["verdict"] == "pass" and body["code"] == 0
    assert body["cycles_completed"] == 3 and body["health_checks_failed"] == 0
    assert body["health_checks_passed"] == 3 * 2 * 3 == body["checks_expected"]
    assert set(body["cycles"][0]["startup_s"]) == {"a", "b"}


def test_sigterm_ignored_fails_and_is_killed(tmp_path: Path) -> None:
    body = _gate(tmp_path, fixture_service("ignores-sigterm", 7411, "--ignore-term", stop=0.5))
    assert body["verdict"] == "fail" and body["cycles_completed"] == 0
    assert "did not stop within 0.5 s" in body["failure"]
    assert body["escalations"][0]["service"] == "ignores-sigterm"
    assert listening([7411]) == [] and _fixture_procs() == []


def test_double_forked_daemon_is_named_and_removed(tmp_path: Path) -> None:
    body = _gate(tmp_path, fixture_service("forker", 7421, "--double-fork"))
    assert body["verdict"] == "fail"
    orphan = body["orphans"][0]
    assert orphan["pid"] > 0 and "fixture_service" in " ".join(orphan["cmdline"])
    assert orphan["check"] in ("run-marker-in-environ", "recorded-process-alive", "descendant-alive-after-stop")
    assert not psutil.pid_exists(orphan["pid"]) or psutil.Process(orphan["pid"]).status() == "zombie"
    assert _fixture_procs() == []


def test_inherited_listening_socket_is_reported(tmp_path: Path) -> None:
    body = _gate(tmp_path, fixture_service("leaky", 7431, "--leak-listener"))
    assert body["verdict"] == "fail"
    found = body["leftover_listeners"] + body["orphans"]
    assert found, body
    assert listening([7431]) == [] and _fixture_procs() == []


def test_never_healthy_fails_and_stops_everything(tmp_path: Path) -> None:
    services = fixture_service("ok", 7441) + fixture_service("sick", 7442, "--never-healthy", timeout=1,
                                                              depends=["ok"])
    body = _gate(tmp_path, services)
    assert body["verdict"] == "fail" and "did not become healthy" in body["failure"]
    assert listening([7441, 7442]) == [] and _fixture_procs() == []


def test_unhealthy_mid_cycle_is_counted(tmp_path: Path) -> None:
    body = _gate(tmp_path, fixture_service("flaky", 7451, "--unhealthy-after", "0.5"), duration=3.0)
    assert body["verdict"] == "fail" and body["health_checks_failed"] >= 1
    assert body["health_failures"][0]["service"] == "flaky" and body["health_failures"][0]["status"] == "503"


def test_ctrl_c_stops_everything_and_says_interrupted(tmp_path: Path) -> None:
    path = write_contract(tmp_path, HEAD + fixture_service("a", 7461) + fixture_service("b", 7462))
    proc = subprocess.Popen([sys.executable, "-m", "toolkit", "cycle", "--contract", str(path), "--count", "5",
                             "--health-duration", "30s", "--interval", "0.2s"], cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env={**os.environ, "COLUMNS": "120"})
    deadline = time.monotonic() + 20
    while listening([7461, 7462]) != [7461, 7462] and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(0.5)
    proc.send_signal(signal.SIGINT)
    out = proc.communicate(timeout=30)[0].decode()
    assert proc.returncode == 130, out
    assert listening([7461, 7462]) == [] and _fixture_procs() == []
    summary = next((tmp_path / "artifacts" / "evidence" / "cycle").rglob("gate1-summary-*.json"))
    assert json.loads(summary.read_text())["verdict"] == "interrupted"


@pytest.mark.slow
def test_reference_stack_passes_three_cycles(tmp_path: Path) -> None:
    path = reference_copy(tmp_path)
    result = run_cycle(CycleConfig(path, 3, 3.0, 0.5))
    assert result.verdict == "pass", result.body["failure"]
    assert result.body["health_checks_passed"] == 3 * 2 * 6 == result.body["checks_expected"] and result.body["health_checks_failed"] == 0
    assert listening(list(range(7000, 7051, 10))) == []
