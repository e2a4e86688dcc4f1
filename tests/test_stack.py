"""Supervisor and `toolkit stack`: real processes, real ports, checked with psutil."""

from __future__ import annotations

import secrets
import socket
import time
from pathlib import Path

import psutil
import pytest

from tests.conftest import fixture_service, listening, reference_copy, run_cli, write_contract
from toolkit import contract as contract_mod
from toolkit.errors import TargetError
from toolkit.supervisor import Supervisor, processes_with_marker

HEAD = '[contract]\nname = "fx"\nversion = "1.0.0"\n'


def _sup(path: Path) -> Supervisor:
    return Supervisor(contract_mod.load(path), marker="t-" + secrets.token_hex(4))


def test_stack_up_then_down_leaves_nothing(tmp_path: Path) -> None:
    path = reference_copy(tmp_path)
    ports = [s.port for s in contract_mod.load(path).services]
    assert listening(ports) == []
    assert run_cli("stack", "up", "--contract", str(path), "--for", "1") == 0
    assert listening(ports) == []
    left = [p for p in psutil.process_iter(["cmdline"]) if "targets.sonia" in " ".join(p.info["cmdline"] or [])]
    assert left == []
    assert not (tmp_path / ".toolkit" / "stack-sonia-reference.json").exists()


def test_slow_service_is_waited_for_and_order_kept(tmp_path: Path) -> None:
    text = HEAD + fixture_service("db", 7311, "--delay", "1.0") + fixture_service("api", 7312, depends=["db"])
    sup = _sup(write_contract(tmp_path, text))
    try:
        startup = sup.start_all()
        assert startup["db"] >= 1.0
        assert sup.running["api"].started_at >= sup.running["db"].healthy_at
    finally:
        results = sup.stop_all()
    assert [r.service for r in results] == ["api", "db"]
    assert not any(r.escalated for r in results)
    assert listening([7311, 7312]) == []


def test_port_conflict_names_the_service_and_starts_nothing(tmp_path: Path) -> None:
    text = HEAD + fixture_service("first", 7321) + fixture_service("busy", 7322)
    holder = socket.socket()
    holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    holder.bind(("127.0.0.1", 7322))
    holder.listen()
    try:
        sup = _sup(write_contract(tmp_path, text))
        with pytest.raises(TargetError, match=r"'busy'.*7322.*in use"):
            sup.start_all()
        assert listening([7321]) == []
        assert processes_with_marker(sup.marker) == []
    finally:
        holder.close()


def test_never_healthy_times_out_and_stops_everything(tmp_path: Path) -> None:
    text = HEAD + fixture_service("ok", 7331) + fixture_service("sick", 7332, "--never-healthy", timeout=1.5,
                                                                 depends=["ok"])
    sup = _sup(write_contract(tmp_path, text))
    with pytest.raises(TargetError, match=r"'sick' did not become healthy .* within 1.5 s"):
        sup.start_all()
    time.sleep(0.2)
    assert listening([7331, 7332]) == []
    assert processes_with_marker(sup.marker) == []


def test_command_not_found_names_the_service(tmp_path: Path) -> None:
    text = HEAD + '[[services]]\nname = "ghost"\ncommand = ["no-such-binary-xyz"]\nport = 7341\n'
    path = write_contract(tmp_path, text)
    with pytest.raises(TargetError, match=r"'ghost': command not found: 'no-such-binary-xyz'"):
        _sup(path).start_all()
    assert run_cli("stack", "up", "--contract", str(path), "--for", "0.1") == 2


def test_sigterm_ignored_escalates_to_sigkill(tmp_path: Path) -> None:
    text = HEAD + fixture_service("ignores-sigterm", 7351, "--ignore-term", stop=0.5)
    sup = _sup(write_contract(tmp_path, text))
    sup.start_all()
    results = sup.stop_all()
    assert results[0].escalated and results[0].seconds >= 0.5
    assert listening([7351]) == []


def test_stack_up_in_one_terminal_down_in_another(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    from tests.conftest import REPO

    path = reference_copy(tmp_path)
    ports = [s.port for s in contract_mod.load(path).services]
    up = subprocess.Popen([sys.executable, "-m", "toolkit", "stack", "up", "--contract", str(path)], cwd=REPO,
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env={**os.environ, "COLUMNS": "120"})
    deadline = time.monotonic() + 30
    while listening(ports) != sorted(ports) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert run_cli("stack", "status", "--contract", str(path)) == 0
    assert run_cli("stack", "down", "--contract", str(path)) == 0
    assert up.wait(timeout=30) in (0, 1)
    assert listening(ports) == []
    assert run_cli("stack", "status", "--contract", str(path)) == 1  # nothing healthy any more
    assert run_cli("stack", "down", "--contract", str(path)) == 2  # nothing recorded to stop


def test_preflight_fails_on_a_busy_port(tmp_path: Path) -> None:
    path = reference_copy(tmp_path)
    assert run_cli("preflight", "--contract", str(path)) == 0
    holder = socket.socket()
    holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # the port may be in TIME_WAIT
    holder.bind(("127.0.0.1", 7030))
    holder.listen()
    try:
        assert run_cli("preflight", "--contract", str(path)) == 1
    finally:
        holder.close()
