"""Issue 11 (found by bench/kill_random.py): a killed release ceremony's unpacked bundle is
removed by the next ceremony.

The ceremony unpacks its bundle into a `toolkit-bundle-*` temp folder to scan it for secrets;
a kill -9 there left the folder (a copy of the evidence) in the temp dir for ever. Real
processes: `toolkit release --rehearsal` is SIGKILLed while the folder exists, then run again.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import REPO, reference_copy


@pytest.mark.skipif(sys.platform.startswith("win"), reason="POSIX signals")
def test_bundle_folder_of_a_killed_ceremony_is_removed_by_the_next(tmp_path: Path) -> None:
    path = reference_copy(tmp_path)
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    env = {
        **os.environ,
        "COLUMNS": "200",
        "TMPDIR": str(tmp),
        "TOOLKIT_STATE_HOME": str(tmp_path / "state-home"),
    }
    key = tmp_path / "release-key.pem"
    subprocess.run(
        [sys.executable, "-m", "toolkit", "release", "keygen", str(key)],
        cwd=REPO,
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
    )
    argv = [
        sys.executable,
        "-m",
        "toolkit",
        "release",
        "--rehearsal",
        "--key",
        str(key),
        "--signer",
        "Test Signer, tester",
        "--contract",
        str(path),
    ]
    bundles: list[Path] = []
    for _ in range(5):  # the folder lives a fraction of a second: retry until a kill lands in it
        proc = subprocess.Popen(
            argv, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + 120  # a bound against hangs, not a speed requirement
        while proc.poll() is None and time.monotonic() < deadline:
            bundles = list(tmp.glob("toolkit-bundle-*"))
            if bundles:
                proc.send_signal(signal.SIGKILL)
                break
            time.sleep(0.002)
        proc.wait()
        if bundles and proc.returncode == -signal.SIGKILL:
            break
    assert bundles and all(b.exists() for b in bundles), "no kill landed while it existed"
    done = subprocess.run(argv, cwd=REPO, env=env, capture_output=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr.decode(errors="replace")
    assert list(tmp.glob("toolkit-bundle-*")) == [], "the killed ceremony's bundle folder is left"
