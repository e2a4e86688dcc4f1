"""Gate 1 with real misbehaving fixture services, and the reference stack."""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path
from typing import Any

import psutil
import pytest

from tests.conftest import (
    contract_ports,
    fixture_service,
    free_ports,
    listening,
    own_survivors,
    reference_copy,
    survivors,
    toolkit_process,
    write_contract,
)
from toolkit.core.supervisor import Supervisor
from toolkit.gates.cycle import CycleConfig, run_cycle

Sups = list[Supervisor]

HEAD = '[contract]\nname = "cyc"\nversion = "1.0.0"\n[defaults]\nhealth_interval_s = 0.2\n'


def _gate(tmp_path: Path, services: str, count: int = 2, duration: float = 0.6) -> dict:
    path = write_contract(tmp_path, HEAD + services)
    result = run_cycle(CycleConfig(path, count, duration, 0.2))
    return {"verdict": result.verdict, "code": result.exit_code, **result.body}


def test_seed_figures_health_duration_is_the_total_over_the_gate() -> None:
    from toolkit.gates.cycle import checks_per_service, per_cycle_s

    seed = CycleConfig(None, 10, 1800.0, 5.0)
    assert checks_per_service(per_cycle_s(seed), 5.0) * seed.count * 6 == 2160


def _events(tmp_path: Path, kind: str) -> list[dict[str, Any]]:
    journal = next((tmp_path / "artifacts" / "evidence" / "cycle").rglob("journal.jsonl"))
    events = [json.loads(line) for line in journal.read_text().splitlines()]
    return [e["data"] for e in events if e["event"] == kind]


def _spawned(folder: Path) -> tuple[str, list[int]]:
    """The run id and the pids the gate journaled as spawned: what a subprocess gate started."""
    journal = next(folder.rglob("journal.jsonl"))
    events = [json.loads(line) for line in journal.read_text().splitlines()]
    pids = [e["data"]["pid"] for e in events if e["event"] == "service.spawned"]
    return journal.parent.name, pids


def test_clean_services_pass_every_cycle(tmp_path: Path) -> None:
    a, b = free_ports(2)
    body = _gate(tmp_path, fixture_service("a", a) + fixture_service("b", b, depends=["a"]),
                 count=3, duration=1.8)  # the total over the gate: 0.6 s per cycle
    assert body["verdict"] == "pass" and body["code"] == 0
    assert body["cycles_completed"] == 3 and body["health_checks_failed"] == 0
    assert body["health_checks_passed"] == 3 * 2 * 3 == body["checks_expected"]
    assert set(body["cycles"][0]["startup_s"]) == {"a", "b"}


def test_sigterm_ignored_fails_and_is_killed(tmp_path: Path, supervisors: Sups) -> None:
    port = free_ports(1)[0]
    body = _gate(tmp_path, fixture_service("ignores-sigterm", port, "--ignore-term", stop=0.5))
    assert body["verdict"] == "fail" and body["cycles_completed"] == 0
    assert "did not stop within 0.5 s" in body["failure"]
    assert body["escalations"][0]["service"] == "ignores-sigterm"
    assert listening([port]) == [] and supervisors and own_survivors(supervisors) == []


def test_double_forked_daemon_is_named_and_removed(tmp_path: Path, supervisors: Sups) -> None:
    body = _gate(tmp_path, fixture_service("forker", free_ports(1)[0], "--double-fork"))
    assert body["verdict"] == "fail"
    orphan = body["orphans"][0]
    assert orphan["pid"] > 0 and "fixture_service" in " ".join(orphan["cmdline"])
    assert orphan["check"] in ("run-marker-in-environ", "recorded-process-alive",
                               "descendant-alive-after-stop", "escaped-descendant")
    assert (
        not psutil.pid_exists(orphan["pid"]) or psutil.Process(orphan["pid"]).status() == "zombie"
    )
    assert supervisors and own_survivors(supervisors) == []


def test_inherited_listening_socket_is_reported(tmp_path: Path, supervisors: Sups) -> None:
    port = free_ports(1)[0]
    body = _gate(tmp_path, fixture_service("leaky", port, "--leak-listener"))
    assert body["verdict"] == "fail"
    found = body["leftover_listeners"] + body["orphans"]
    assert found, body
    assert listening([port]) == [] and supervisors and own_survivors(supervisors) == []


def test_never_healthy_fails_and_stops_everything(tmp_path: Path, supervisors: Sups) -> None:
    ports = free_ports(2)
    services = fixture_service("ok", ports[0]) + fixture_service(
        "sick", ports[1], "--never-healthy", timeout=1, depends=["ok"])
    body = _gate(tmp_path, services)
    assert body["verdict"] == "fail" and "did not become healthy" in body["failure"]
    assert listening(ports) == [] and supervisors and own_survivors(supervisors) == []


def test_unhealthy_mid_cycle_is_counted(tmp_path: Path) -> None:
    body = _gate(tmp_path, fixture_service("flaky", free_ports(1)[0], "--unhealthy-after", "0.5"),
                 duration=3.0)
    assert body["verdict"] == "fail" and body["health_checks_failed"] >= 1
    assert (
        body["health_failures"][0]["service"] == "flaky"
        and body["health_failures"][0]["status"] == "503"
    )


@pytest.mark.slow
def test_ctrl_c_stops_everything_and_says_interrupted(tmp_path: Path) -> None:
    ports = sorted(free_ports(2))
    services = fixture_service("a", ports[0]) + fixture_service("b", ports[1])
    path = write_contract(tmp_path, HEAD + services)
    proc = toolkit_process(
        "cycle",
        "--contract",
        str(path),
        "--count",
        "5",
        "--health-duration",
        "30s",
        "--interval",
        "0.2s",
        output=True,
    )
    deadline = time.monotonic() + 120  # bounds against hangs, not speed requirements
    while listening(ports) != ports and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.1)
    assert listening(ports) == ports, "the services never came up"
    time.sleep(0.5)
    proc.send_signal(signal.SIGINT)
    out = proc.communicate(timeout=120)[0].decode()
    assert proc.returncode == 130, out
    assert listening(ports) == []
    summary = next((tmp_path / "artifacts" / "evidence" / "cycle").rglob("gate1-summary-*.json"))
    assert json.loads(summary.read_text())["verdict"] == "interrupted"
    run_id, pids = _spawned(tmp_path / "artifacts" / "evidence" / "cycle")
    assert len(pids) >= 2
    stopped = _events(
        tmp_path, "service.stopped"
    )  # the shutdown was measured, however long it took
    assert {e["service"] for e in stopped} == {"a", "b"} and all(e["seconds"] >= 0 for e in stopped)
    markers = [f"cycle-{run_id}-{i}" for i in range(1, 6)]
    assert survivors(markers) == [] and not [p for p in pids if _alive(p)]


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


@pytest.mark.slow
def test_reference_stack_passes_three_cycles(tmp_path: Path) -> None:
    path = reference_copy(tmp_path)
    result = run_cycle(CycleConfig(path, 3, 3.0, 0.5))
    assert result.verdict == "pass", result.body["failure"]
    assert (
        result.body["health_checks_passed"] == 3 * 2 * 6 == result.body["checks_expected"]
        and result.body["health_checks_failed"] == 0
    )
    assert listening(contract_ports(path)) == []


def test_cycle_writes_an_html_report_with_two_plots_in_its_evidence(tmp_path: Path) -> None:
    import shutil
    import subprocess  # nosec B404

    a, b = free_ports(2)
    path = write_contract(tmp_path, HEAD + fixture_service("a", a) + fixture_service("b", b))
    result = run_cycle(CycleConfig(path, 2, 0.6, 0.2))
    assert result.verdict == "pass"
    page = Path(result.summary_path).parent / "gate1-report.html"  # type: ignore[arg-type]
    html = page.read_text()
    assert html.count("<svg") == 2 and html.count("<polyline") >= 4  # a line per service, twice
    assert "2/2 cycles" in html and "pass" in html
    manifest = (page.parent / "manifest.sha256").read_text()
    assert "gate1-report.html" in manifest  # sealed with the run, not written after it
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        return  # the page itself is checked above; rendering needs Debian's chromium
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={tmp_path / 'chromium-profile'}"]
    dom = subprocess.run([browser, *flags, "--dump-dom", page.as_uri()], capture_output=True,
                         text=True, timeout=120, check=False)  # nosec B603
    assert dom.stdout.count("<svg") == 2, dom.stderr[-2000:]


def test_cycle_report_escapes_hostile_text() -> None:
    from reports.cycle_html import render

    html = render({"verdict": "fail", "failure": "<script>alert(1)</script>",
                   "cycles": [{"cycle": 1, "startup_s": {"<b>x": 0.1}, "shutdown_s": {}}],
                   "orphans": [{"cmdline": ["<img src=x>"]}]})
    assert "<script>" not in html and "<img" not in html and "&lt;script&gt;" in html
