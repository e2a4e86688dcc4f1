"""Issue 11 (found by bench/kill_random.py): a killed attack run's canary files in a sandbox
are removed by the next run.

The traversal attack asks a writing surface to create `../toolkit-canary-<tag>.txt`; the
reference tool stores it in its sandbox under the literal name `..%2ftoolkit-canary-<tag>.txt`.
Only the canary's name ties that file to the toolkit, so the name must be journaled before the
payload is sent, or a kill -9 leaves the file for ever. Real processes: a real `toolkit
attack` on the reference stack is SIGKILLed once such a file exists, then run again.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import REPO, contract_ports, listening, reference_copy

ENV = {**os.environ, "COLUMNS": "200"}


def _canaries(sandbox: Path) -> list[Path]:
    return (
        [p for p in sandbox.rglob("*") if "toolkit-canary-" in p.name] if sandbox.is_dir() else []
    )


def _attack(path: Path) -> list[str]:
    return [
        sys.executable,
        "-m",
        "toolkit",
        "attack",
        "--id",
        "T-TRAV-001",
        "--budget",
        "quick",
        "--seed",
        "1",
        "--contract",
        str(path),
    ]


@pytest.mark.slow
def test_canaries_a_killed_attack_left_in_a_sandbox_are_removed_by_the_next_run(
    tmp_path: Path,
) -> None:
    path = reference_copy(tmp_path)
    sandbox = tmp_path / "state" / "sandbox"
    proc = subprocess.Popen(
        _attack(path), cwd=REPO, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 180  # a bound against hangs, not a speed requirement
    while not _canaries(sandbox) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    left = _canaries(sandbox)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert left, "no canary ever appeared in the sandbox: nothing was tested"
    done = subprocess.run(
        _attack(path), cwd=REPO, env=ENV, capture_output=True, timeout=300, check=False
    )
    assert done.returncode in (0, 1), done.stderr.decode(errors="replace")
    assert _canaries(sandbox) == [], "the killed run's canary files are still in the sandbox"
    assert listening(contract_ports(path)) == []
