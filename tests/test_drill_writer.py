"""Issue 11: the drill's sentinel writer never dies in a thread traceback.

A real drill of the reference stack (real services, real toolkit process) whose auth key
file is deleted during the warmup: the writer can no longer sign a write. The drill must
end as a clear failure recorded in its evidence, and print no traceback.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import REPO, contract_ports, listening, reference_copy


def _wait_for(cond: object, timeout: float) -> bool:
    deadline = time.monotonic() + timeout  # a bound against hangs, not a speed requirement
    while time.monotonic() < deadline:
        if cond():  # type: ignore[operator]
            return True
        time.sleep(0.05)
    return False


@pytest.mark.slow
def test_key_file_deleted_mid_drill_is_a_recorded_failure_not_a_traceback(
    tmp_path: Path,
) -> None:
    path = reference_copy(tmp_path)
    key = tmp_path / "state" / "keys" / "service.keys"
    backups = tmp_path / "artifacts" / "backups"
    argv = ["drill", "--contract", str(path), "--fault", "kill", "--warmup", "4s", "--seed", "3"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "toolkit", *argv],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "COLUMNS": "200"},
    )
    # the writer starts before the first backup: once one exists, the writer is running
    assert _wait_for(lambda: key.exists() and any(backups.rglob("*.sqlite")), 120)
    key.unlink()
    out, err = proc.communicate(timeout=300)
    text = out.decode(errors="replace") + err.decode(errors="replace")
    assert "Traceback" not in text and "Exception in thread" not in text, text
    assert proc.returncode == 1, text
    summaries = list((tmp_path / "artifacts").rglob("*-summary-*.json"))
    assert len(summaries) == 1, summaries
    body = json.loads(summaries[0].read_text())
    assert body["verdict"] == "fail"
    ms = {m["metric"]: m for m in body["measurements"]}
    writer = ms["writer_errors_before_disaster"]
    assert writer["verdict"] == "fail" and writer["value"] >= 1
    assert "auth key file not found" in writer["detail"]
    measured = (summaries[0].parent / "gate4-rpo-rto-measurements.txt").read_text()
    assert "writer_first_error=cannot sign write" in measured
    assert listening(contract_ports(path)) == []
