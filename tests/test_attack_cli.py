"""nuclei-style attack controls: --severity, --id, --exclude-id, --rate-limit, --concurrency,
--jsonl and --json."""

from __future__ import annotations

import json
import re
import threading
import time
from pathlib import Path

import pytest

from tests.conftest import run_cli
from toolkit.core.pacing import Pacer, paced, run_lanes


def test_list_filters_and_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert run_cli("attack", "--list", "--json", "--severity", "critical") == 0
    items = json.loads(capsys.readouterr().out)
    assert items and {i["severity"] for i in items} == {"critical"}
    assert (
        run_cli(
            "attack",
            "--list",
            "--json",
            "--id",
            "T-TRAV-001,T-CMD-001",
            "--exclude-id",
            "T-CMD-001",
        )
        == 0
    )
    assert [i["id"] for i in json.loads(capsys.readouterr().out)] == ["T-TRAV-001"]
    assert run_cli("attack", "--list") == 0
    out = capsys.readouterr().out
    assert "T-TRAV-001" in out and "CWE-22" in out


@pytest.mark.parametrize(
    "argv",
    [
        ["--list", "--severity", "urgent"],
        ["--list", "--id", "T-NOPE-001"],
        ["--list", "--severity", "info"],
        ["--all", "--rate-limit", "0"],
        ["--all", "--concurrency", "0"],
        [],
    ],
)
def test_bad_controls_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert run_cli("attack", *argv) == 2
    assert "error" in capsys.readouterr().err.lower()


def test_pacer_holds_the_rate_across_threads() -> None:
    pacer = Pacer(100.0)
    sent: list[float] = []

    class Echo:
        endpoint = ("svc", "/x")

        def send(self, payload: object) -> object:
            sent.append(time.monotonic())
            return payload

    echo = Echo()
    deliver = paced(echo, pacer)
    assert deliver is echo and isinstance(deliver, Echo)  # same object, same type checks
    t0 = time.monotonic()
    threads = [
        threading.Thread(target=lambda: [deliver.send(i) for i in range(7)]) for _ in range(3)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert (
        len(sent) == 21 and time.monotonic() - t0 >= 0.2 * 0.95
    )  # 21 sends at 100/s: >= 20 intervals
    assert pacer.measured(1)["requests"] == 21 and pacer.measured(1)["max_in_flight"] >= 1
    free = Pacer(None)
    loose = paced(Echo(), free)
    t0 = time.monotonic()
    for i in range(50):
        loose.send(i)
    assert time.monotonic() - t0 < 0.2 and free.waited_s == 0  # no limit: never held back
    assert free.measured(3)["requests"] == 50 and free.measured(3)["concurrency"] == 3


def test_lanes_run_surfaces_in_parallel_and_each_surface_in_order() -> None:
    seen: dict[str, list[int]] = {}
    active, peak = [0], [0]
    lock = threading.Lock()

    def work(job: tuple[str, int]) -> None:
        with lock:
            active[0] += 1
            peak[0] = max(peak[0], active[0])
        time.sleep(0.02)
        with lock:
            seen.setdefault(job[0], []).append(job[1])
            active[0] -= 1

    jobs = [(lane, (lane, i)) for i in range(4) for lane in ("a", "b", "c")]
    run_lanes(jobs, work, 3)
    assert seen == {lane: [0, 1, 2, 3] for lane in "abc"} and peak[0] >= 2
    peak[0] = 0
    run_lanes(jobs, work, 1)
    assert peak[0] == 1


def test_output_fits_80_columns_and_never_breaks_a_path(tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    from toolkit.cli import console

    assert console.width == 80  # not a terminal: what CI logs get
    assert run_cli("attack", "--list") == 0
    lines = capsys.readouterr().out.splitlines()
    assert max(len(line) for line in lines) <= 80
    ids = [line.split()[0] for line in lines if line.startswith("T-")]
    assert ids and all(re.fullmatch(r"T-[A-Z]+-\d{3}", i) for i in ids)  # ids never cut
    deep = tmp_path / ("a-rather-long-folder-name-" * 4) / "leak"
    deep.mkdir(parents=True)
    (deep / "token.txt").write_text(
        "token: ghp_" + "aB3dE6gH9jK2mN5pQ8sT1vW4yZ7bC0eF3hJ6\n"  # pragma: allowlist secret
    )
    assert run_cli("secrets", "scan", str(deep), "--no-bandit") == 1
    out = capsys.readouterr().out
    hit = [line for line in out.splitlines() if line.startswith("NEW SECRET")]
    assert len(hit) == 1 and "a-rather-long-folder-name-" * 4 + "/leak/token.txt:1" in hit[0]


def test_an_unknown_surface_is_a_usage_error_not_a_failed_attempt(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Two failed attempts block a gate: a typo in --surface must not count as one."""
    from tests.conftest import reference_copy
    from toolkit.core import contract as contract_mod
    from toolkit.core.ledger import Ledger

    path = reference_copy(tmp_path)
    for _ in range(3):
        assert run_cli("attack", "--all", "--surface", "nope", "--contract", str(path)) == 2
        err = " ".join(capsys.readouterr().err.split())
        assert "no surface named nope" in err and "blocked" not in err
    assert Ledger(contract_mod.load(path).evidence_dir).attempts() == []
