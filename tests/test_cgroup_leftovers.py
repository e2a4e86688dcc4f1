"""Issue 11: no empty run cgroup outlives a killed toolkit, and no one else's is touched.

A toolkit killed (-9) right after it created its run cgroup used to leave the cgroup behind
for ever: the run file that names it was written only afterwards. Real processes: the
toolkit is a real `toolkit stack up` whose own process is SIGKILLed at that instant.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import REPO, fixture_service, free_ports, run_cli, write_contract
from tests.test_cgroup import _writable_cgroup
from tests.test_supervisor_safety import alive, wait_for
from toolkit.core import contract as contract_mod
from toolkit.core import platform
from toolkit.core.supervisor import Supervisor, run_file

EMPTY_CGROUP_GRACE_S = 10.0

pytestmark = pytest.mark.skipif(bool(_writable_cgroup()), reason=_writable_cgroup() or "-")

HEAD = '[contract]\nname = "cgl"\nversion = "1.0.0"\n[defaults]\nhealth_interval_s = 0.2\n'

# `toolkit stack up`, SIGKILLed by itself the instant its run cgroup exists
KILLED_AFTER_MKDIR = """
import os, signal, sys
from pathlib import Path
from toolkit.core import platform
made = platform.create_run_cgroup
def create_then_die(name):
    path = made(name)
    Path(sys.argv[1]).write_text(str(path))
    os.kill(os.getpid(), signal.SIGKILL)
platform.create_run_cgroup = create_then_die
from toolkit.cli import main
sys.exit(main(["stack", "up", "--contract", sys.argv[2]]))
"""


def _contract(tmp_path: Path) -> Path:
    return write_contract(tmp_path, HEAD + fixture_service("a", free_ports(1)[0]))


@pytest.mark.parametrize("then", ["watchdog", "stack-down", "next-run"])
def test_kill9_right_after_creating_the_cgroup_leaves_no_cgroup(tmp_path: Path, then: str) -> None:
    path = _contract(tmp_path)
    told = tmp_path / "cgroup.txt"
    proc = subprocess.run(
        [sys.executable, "-c", KILLED_AFTER_MKDIR, str(told), str(path)],
        cwd=REPO,
        env={**os.environ, "COLUMNS": "200"},
        timeout=120,
        check=False,
    )
    assert proc.returncode == -9
    cgroup = Path(told.read_text())
    assert cgroup.parent.name == "release-gate-toolkit"
    if then == "stack-down":
        run_cli("stack", "down", "--contract", str(path))
    elif then == "next-run":
        sup = Supervisor(contract_mod.load(path), marker="t-" + secrets.token_hex(4))
        sup._reclaim()
        sup.close()
    assert wait_for(lambda: not cgroup.exists(), 10), f"{cgroup} was left behind ({then})"
    assert not run_file(contract_mod.load(path)).exists()


def _aged(name: str, age_s: float) -> Path:
    path = platform.create_run_cgroup(name)
    assert path is not None
    then = time.time() - age_s
    os.utime(path, (then, then))  # a cgroup folder's mtime is when it was made
    return path


def test_stack_down_removes_old_empty_toolkit_cgroups_and_nothing_else(tmp_path: Path) -> None:
    """What an older toolkit (no run file naming its cgroup) left: removed when empty, run-
    marker shaped and older than the grace; a young one (a run between creating and joining
    its cgroup), one holding a process, and one not named like a run marker are kept."""
    path = _contract(tmp_path)
    tag = secrets.token_hex(4)
    stale = _aged(f"stack-{tag}old", EMPTY_CGROUP_GRACE_S + 60)
    young = _aged(f"stack-{tag}young", 0)
    odd = _aged(f"Keep_{tag}", EMPTY_CGROUP_GRACE_S + 60)
    busy = _aged(f"stack-{tag}busy", EMPTY_CGROUP_GRACE_S + 60)
    home = platform.current_cgroup()
    member = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    try:
        assert home is not None and platform.join_cgroup(busy, member.pid)
        code = run_cli("stack", "down", "--contract", str(path))
        assert code == 2  # no stack recorded: still a clear error after the sweep
        assert not stale.exists(), "the old empty toolkit cgroup was left"
        assert young.exists() and odd.exists() and busy.exists()
        assert alive(member.pid)
    finally:
        if home is not None:
            platform.join_cgroup(home, member.pid)
        member.kill()
        member.wait()
        for p in (stale, young, odd, busy):
            platform.remove_cgroup(p, timeout=1)
