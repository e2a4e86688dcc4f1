"""Issue 11 item 6: a per-run cgroup finds daemons that escaped a kill -9'd toolkit.

The daemon double-forks, calls setsid and execs with an empty environment, so it carries no
run marker, and after the kill -9 it is re-parented to init: only its cgroup proves it is
ours. Every test checks only processes it started itself (by pid or a random token).
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from tests.conftest import fixture_service, free_ports, run_cli, toolkit_process, write_contract
from tests.test_supervisor_safety import alive, kill_all, wait_for
from toolkit.core import contract as contract_mod
from toolkit.core import platform
from toolkit.core.supervisor import Supervisor, run_file
from toolkit.gates.cycle import CycleConfig, run_cycle

HEAD = '[contract]\nname = "cg"\nversion = "1.0.0"\n[defaults]\nhealth_interval_s = 0.2\n'


def _writable_cgroup() -> str:
    """Empty when a run cgroup can be made here, else why not (the skip reason)."""
    if platform.cgroup_hierarchy() is None:
        return "no read-write cgroup2 or cgroup v1 pids hierarchy in /proc/self/mounts"
    probe = platform.create_run_cgroup("probe-" + secrets.token_hex(4))
    if probe is None:
        return "the cgroup hierarchy is not writable here (not root, or delegated elsewhere)"
    platform.remove_cgroup(probe)
    return ""


pytestmark = pytest.mark.skipif(bool(_writable_cgroup()), reason=_writable_cgroup() or "-")






def with_token(token: str) -> list[int]:
    return [p.pid for p in psutil.process_iter(["cmdline"])
            if token in (p.info["cmdline"] or []) and p.pid != os.getpid()]




@pytest.fixture
def sleeper() -> Iterator[subprocess.Popen[bytes]]:
    """A child of this test, never in any run cgroup: it must survive every test."""
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    yield proc
    proc.kill()
    proc.wait()


def _read_doc(path: Path) -> dict[str, object]:
    try:
        return dict(json.loads(path.read_text()))
    except (OSError, ValueError):
        return {}


@pytest.mark.parametrize("then", ["stack-down", "next-run"])
def test_escaped_daemon_of_a_kill9d_toolkit_is_killed_and_cgroup_removed(
    tmp_path: Path, then: str, sleeper: subprocess.Popen[bytes]
) -> None:
    token = "cg-escapee-" + secrets.token_hex(4)
    pid_file = tmp_path / "daemon.pid"
    svc = fixture_service("sly", free_ports(1)[0], "--escape-at-start", token,
                          "--escape-pid-file", str(pid_file))
    path = write_contract(tmp_path, HEAD + svc)
    c = contract_mod.load(path)
    up = toolkit_process("stack", "up", "--contract", str(path))
    try:
        assert wait_for(lambda: pid_file.exists() and pid_file.read_text().isdigit()), "no daemon"
        daemon = int(pid_file.read_text())
        doc: dict[str, object] = {}

        def recorded() -> bool:
            doc.update(_read_doc(run_file(c)))
            return bool(doc.get("cgroup")) and bool(doc.get("services"))

        assert wait_for(recorded), "the run file never named a cgroup"
        cgroup = Path(str(doc["cgroup"]))
        assert cgroup.parent.name == "release-gate-toolkit" and cgroup.name == doc["marker"]
        assert daemon in platform.cgroup_members(cgroup)
        assert platform.environ_of(daemon) in ({}, None), "the daemon must carry no marker"
        watchdog = [p for p in psutil.Process(up.pid).children()
                    if "toolkit.core.reclaimer" in " ".join(p.cmdline())]
        assert len(watchdog) == 1
        watchdog[0].kill()  # the adversary kills the watchdog too: the cgroup must still tell
        assert wait_for(lambda: not alive(watchdog[0].pid), 5)
        up.kill()  # kill -9: no cleanup, the daemon is re-parented away from the toolkit
        up.wait()
        assert alive(daemon)
        if then == "stack-down":
            run_cli("stack", "down", "--contract", str(path))
        else:
            sup = Supervisor(c, marker="t-" + secrets.token_hex(4))
            sup._reclaim()
            sup.close()
        assert wait_for(lambda: not alive(daemon), 10), "the escaped daemon survived"
        assert not cgroup.exists(), "the run's cgroup was left behind"
        assert alive(sleeper.pid), "a process outside the cgroup was signalled"
    finally:
        up.kill()
        up.wait()
        kill_all(with_token(token))


def test_forged_cgroup_in_run_file_signals_nothing(
    tmp_path: Path, sleeper: subprocess.Popen[bytes]
) -> None:
    path = write_contract(tmp_path, HEAD + fixture_service("a", free_ports(1)[0]))
    c = contract_mod.load(path)
    other = platform.create_run_cgroup("other-" + secrets.token_hex(4))
    home = platform.current_cgroup()
    assert other is not None and home is not None
    try:
        assert platform.join_cgroup(other, sleeper.pid)
        mount = other.parent.parent
        for forged in (other, mount, other.parent):  # wrong marker; outside release-gate-toolkit/
            run_file(c).parent.mkdir(parents=True, exist_ok=True)
            run_file(c).write_text(json.dumps({"marker": "forged-x", "owner_pid": 0,
                                               "cgroup": str(forged), "records": []}))
            run_cli("stack", "down", "--contract", str(path))
            assert alive(sleeper.pid), f"a forged cgroup {forged} made the toolkit kill"
        assert other.exists()
    finally:
        platform.join_cgroup(home, sleeper.pid)
        platform.remove_cgroup(other)


def test_cycle_records_its_cgroup_removes_it_and_spares_others(
    tmp_path: Path, sleeper: subprocess.Popen[bytes]
) -> None:
    path = write_contract(tmp_path, HEAD + fixture_service("a", free_ports(1)[0]))
    home = platform.current_cgroup()
    result = run_cycle(CycleConfig(path, 1, 0.4, 0.2))
    assert result.verdict == "pass", result.body["failure"]
    used = result.body["cycles"][0]["cgroup"]
    assert used and Path(used).parent.name == "release-gate-toolkit", used
    assert not Path(used).exists()
    assert platform.current_cgroup() == home, "the toolkit did not return to its cgroup"
    assert alive(sleeper.pid)


def _v1_pids() -> tuple[Path, str] | None:
    try:
        rows = Path("/proc/self/mounts").read_text().splitlines()
    except OSError:
        return None
    for row in (r.split() for r in rows):
        if row[2] == "cgroup" and "pids" in row[3].split(",") and "rw" in row[3].split(","):
            return Path(row[1]), "pids"
    return None


@pytest.mark.parametrize("hierarchy", ["preferred", "v1-pids"])
def test_cgroup_member_left_after_stop_fails_gate_1(
    tmp_path: Path, hierarchy: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without the subreaper sweep, the cgroup alone still finds the escaped daemon."""
    if hierarchy == "v1-pids":
        v1 = _v1_pids()
        if v1 is None or not os.access(v1[0], os.W_OK):
            pytest.skip("no writable cgroup v1 pids hierarchy on this host")
        monkeypatch.setattr(platform, "cgroup_hierarchy", lambda: v1)
    token = "cg-late-" + secrets.token_hex(4)
    path = write_contract(
        tmp_path, HEAD + fixture_service("sly", free_ports(1)[0], "--escape-on-term", token))
    sup = Supervisor(contract_mod.load(path), marker="t-" + secrets.token_hex(4))
    try:
        sup.start_all()
        sup.subreaper = False  # as where prctl is refused: only the cgroup is left
        sup.stop_all()
        found = [o for o in sup.escaped if o["check"] == "cgroup-member-after-stop"]
        assert found and token in found[0]["cmdline"], sup.escaped
        assert with_token(token) == [] or not any(alive(p) for p in with_token(token))
        assert sup.cgroup is None and sup.cgroup_used and not Path(sup.cgroup_used).exists()
        if hierarchy == "v1-pids":
            assert sup.cgroup_used.startswith(str(_v1_pids()[0]))  # type: ignore[index]
    finally:
        sup.close()
        kill_all(with_token(token))
