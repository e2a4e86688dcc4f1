"""Supervisor and `toolkit stack`: real processes, real ports, checked with psutil."""

from __future__ import annotations

import json
import secrets
import socket
import time
from pathlib import Path

import pytest

from tests.conftest import (
    contract_ports,
    fixture_service,
    free_ports,
    listening,
    own_survivors,
    reference_copy,
    run_cli,
    survivors,
    toolkit_process,
    write_contract,
)
from toolkit.core import contract as contract_mod
from toolkit.core.errors import TargetError
from toolkit.core.supervisor import Supervisor, processes_with_marker, run_file

HEAD = '[contract]\nname = "fx"\nversion = "1.0.0"\n'


def _sup(path: Path) -> Supervisor:
    return Supervisor(contract_mod.load(path), marker="t-" + secrets.token_hex(4))


@pytest.mark.slow
def test_stack_up_then_down_leaves_nothing(tmp_path: Path, supervisors: list[Supervisor]) -> None:
    path = reference_copy(tmp_path)
    ports = contract_ports(path)
    assert listening(ports) == []
    assert run_cli("stack", "up", "--contract", str(path), "--for", "1") == 0
    assert listening(ports) == []
    assert len(supervisors) == 1 and len(supervisors[0].records) >= 6  # it really started them
    assert own_survivors(supervisors) == []
    assert not (tmp_path / ".toolkit" / "stack-sonia-reference.json").exists()


def test_slow_service_is_waited_for_and_order_kept(tmp_path: Path) -> None:
    db, api = ports = free_ports(2)
    text = (HEAD + fixture_service("db", db, "--delay", "1.0")
            + fixture_service("api", api, depends=["db"]))
    sup = _sup(write_contract(tmp_path, text))
    try:
        startup = sup.start_all()
        assert startup["db"] >= 1.0
        assert sup.running["api"].started_at >= sup.running["db"].healthy_at
    finally:
        results = sup.stop_all()
    assert [r.service for r in results] == ["api", "db"]
    assert not any(r.escalated for r in results)
    assert listening(ports) == [] and own_survivors([sup]) == []


def test_port_conflict_names_the_service_and_starts_nothing(tmp_path: Path) -> None:
    first, busy = free_ports(2)
    text = HEAD + fixture_service("first", first) + fixture_service("busy", busy)
    holder = socket.socket()
    holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    holder.bind(("127.0.0.1", busy))
    holder.listen()
    try:
        sup = _sup(write_contract(tmp_path, text))
        with pytest.raises(TargetError, match=rf"'busy'.*{busy}.*in use"):
            sup.start_all()
        assert listening([first]) == []
        assert processes_with_marker(sup.marker) == []
    finally:
        holder.close()


def test_never_healthy_times_out_and_stops_everything(tmp_path: Path) -> None:
    ports = free_ports(2)
    text = HEAD + fixture_service("ok", ports[0]) + fixture_service(
        "sick", ports[1], "--never-healthy", timeout=1.5, depends=["ok"])
    sup = _sup(write_contract(tmp_path, text))
    with pytest.raises(TargetError, match=r"'sick' did not become healthy .* within 1.5 s"):
        sup.start_all()
    time.sleep(0.2)
    assert listening(ports) == []
    assert processes_with_marker(sup.marker) == [] and own_survivors([sup]) == []


def test_command_not_found_names_the_service(tmp_path: Path) -> None:
    text = HEAD + ('[[services]]\nname = "ghost"\ncommand = ["no-such-binary-xyz"]\n'
                   f"port = {free_ports(1)[0]}\n")
    path = write_contract(tmp_path, text)
    with pytest.raises(TargetError, match=r"'ghost': command not found: 'no-such-binary-xyz'"):
        _sup(path).start_all()
    assert run_cli("stack", "up", "--contract", str(path), "--for", "0.1") == 2


def test_sigterm_ignored_escalates_to_sigkill(tmp_path: Path) -> None:
    port = free_ports(1)[0]
    text = HEAD + fixture_service("ignores-sigterm", port, "--ignore-term", stop=0.5)
    sup = _sup(write_contract(tmp_path, text))
    sup.start_all()
    results = sup.stop_all()
    assert results[0].escalated and results[0].seconds >= 0.5
    assert listening([port]) == [] and own_survivors([sup]) == []


@pytest.mark.slow
def test_stack_up_in_one_terminal_down_in_another(tmp_path: Path) -> None:
    path = reference_copy(tmp_path)
    ports = contract_ports(path)
    up = toolkit_process("stack", "up", "--contract", str(path))
    deadline = time.monotonic() + 120  # a bound against hangs, not a speed requirement
    while not (listening(ports) == ports and run_file(contract_mod.load(path)).exists()) \
            and time.monotonic() < deadline:
        time.sleep(0.1)
    recorded = json.loads(run_file(contract_mod.load(path)).read_text())  # the other terminal's
    assert run_cli("stack", "status", "--contract", str(path)) == 0
    assert run_cli("stack", "down", "--contract", str(path)) == 0
    assert up.wait(timeout=60) in (0, 1)
    assert listening(ports) == []
    pids = [(r["pid"], r["create_time"]) for r in recorded["records"]]
    assert len(pids) >= 6 and survivors([recorded["marker"]], pids) == []
    assert run_cli("stack", "status", "--contract", str(path)) == 1  # nothing healthy any more
    assert run_cli("stack", "down", "--contract", str(path)) == 2  # nothing recorded to stop


def test_preflight_fails_on_a_busy_port(tmp_path: Path) -> None:
    path = reference_copy(tmp_path)
    assert run_cli("preflight", "--contract", str(path)) == 0
    holder = socket.socket()
    holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # the port may be in TIME_WAIT
    holder.bind(("127.0.0.1", contract_mod.load(path).service("voice-session").port or 0))
    holder.listen()
    try:
        assert run_cli("preflight", "--contract", str(path)) == 1
    finally:
        holder.close()
