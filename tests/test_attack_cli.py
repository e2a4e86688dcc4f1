"""nuclei-style attack controls: --severity, --id, --exclude-id, --rate-limit, --concurrency,
--jsonl and --json."""

from __future__ import annotations

import json
import threading
import time

import pytest

from tests.conftest import run_cli
from toolkit.pacing import Pacer, paced, run_lanes


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
    assert paced(Echo(), Pacer(None)).__class__ is Echo  # unpaced: no wrapper at all


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
