"""Gate 2 on real processes: a clean soak passes; errors, leaks, deaths and stuck requests fail it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import fixture_service, free_ports, reference_copy, write_contract
from toolkit.soak import SoakConfig, percentile, run_soak


def _fixture(tmp_path: Path, *flags: str, rate: float = 20.0, extra: str = "") -> Path:
    return write_contract(tmp_path, '[contract]\nname = "soak"\nversion = "1.0.0"\n'
                          + fixture_service("svc", free_ports(1)[0], *flags) + f"""
[soak]
duration = "1h"
[[soak.traffic]]
name = "get"
rate_per_s = {rate}
service = "svc"
method = "GET"
path = "/data"
{extra}
[soak.thresholds]
error_rate = 0.005
memory_growth = 0.05
p95_ms = 5000  # generous: these tests judge errors, leaks and deaths, not this machine's speed
""")


def _metric(result, name: str) -> dict:  # type: ignore[no-untyped-def]
    return next(m for m in result.body["measurements"] if m["metric"] == name)


@pytest.mark.slow
def test_reference_stack_soak_passes_with_measurements(tmp_path: Path) -> None:
    result = run_soak(SoakConfig(reference_copy(tmp_path), 6.0, 1.0, 1.0, seed=4))
    assert result.verdict == "pass", result.body["measurements"]
    o = result.body["overall"]
    assert o["requests"] >= 3 and o["p50_ms"] is not None and o["p50_ms"] <= o["p95_ms"] <= o["p99_ms"]
    windows = sorted((result.summary_path.parent / "metrics").glob("gate2-metrics-window-*.json"))
    assert len(windows) >= 5 and set(json.loads(windows[-1].read_text())["rss_bytes"]) >= {"openclaw"}


def test_a_steady_service_passes(tmp_path: Path) -> None:
    result = run_soak(SoakConfig(_fixture(tmp_path), 4.0, 1.0, 0.5, seed=1))
    assert result.verdict == "pass", result.body["measurements"]
    assert result.body["overall"]["requests"] >= 40


def test_errors_fail_the_soak(tmp_path: Path) -> None:
    result = run_soak(SoakConfig(_fixture(tmp_path, "--fail-requests"), 3.0, 0.5, 0.5, seed=2))
    assert result.verdict == "fail" and _metric(result, "error_rate")["value"] == 1.0


def test_a_memory_leak_fails_the_soak(tmp_path: Path) -> None:
    result = run_soak(SoakConfig(_fixture(tmp_path, "--leak-mb-per-s", "20"), 4.0, 1.0, 0.5, seed=3))
    growth = _metric(result, "memory_growth")
    assert result.verdict == "fail" and growth["verdict"] == "fail" and growth["value"] > 0.05


def test_a_service_that_dies_fails_the_soak(tmp_path: Path) -> None:
    result = run_soak(SoakConfig(_fixture(tmp_path, "--exit-after", "2"), 4.0, 0.5, 0.5, seed=5))
    assert result.verdict == "fail"
    assert _metric(result, "restarts")["value"] == 1 and _metric(result, "error_rate")["verdict"] == "fail"


def test_stuck_requests_are_counted(tmp_path: Path) -> None:
    cfg = SoakConfig(_fixture(tmp_path, "--slow-ms", "1500", rate=5.0), 3.0, 0.5, 0.5, seed=6, request_timeout_s=0.5)
    result = run_soak(cfg)
    assert result.verdict == "fail" and _metric(result, "stuck_requests")["value"] > 0


def test_percentiles() -> None:
    assert percentile([], 0.5) is None
    assert percentile([1.0, 2.0, 3.0, 4.0], 0.5) == 2.5
    assert percentile(list(map(float, range(101))), 0.95) == 95.0


def test_soak_traffic_to_a_remote_host_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from tests.conftest import run_cli

    path = write_contract(tmp_path, '[contract]\nname = "r"\nversion = "1.0.0"\n[soak]\nduration = "5s"\n'
                          '[[soak.traffic]]\nname = "x"\nrate_per_s = 1.0\nbase_url = "http://192.0.2.7:80"\n'
                          'method = "GET"\npath = "/"\n')
    assert run_cli("soak", "--contract", str(path)) == 2
    assert "only loopback targets are allowed" in " ".join(capsys.readouterr().err.split())
