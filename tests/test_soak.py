"""Gate 2 on real processes: a clean soak passes; errors, leaks, deaths and stuck requests fail it,
and the ones that can be seen within a window end the run within that window."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import fixture_service, free_ports, reference_copy, write_contract
from toolkit.core.events import Bus, MinuteWindow
from toolkit.gates.soak import SoakConfig, percentile, run_soak
from toolkit.gates.soak_hist import Hist
from toolkit.gates.soak_judge import Thresholds, rolling_breaches, spikes
from toolkit.gates.soak_metrics import ClassStats, Sample, merge_classes


def _fixture(tmp_path: Path, *flags: str, rate: float = 20.0, extra: str = "",
             thresholds: str = "") -> Path:
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
min_samples = 5
rolling_windows = 2
p95_spike_floor_ms = 5000  # as p95_ms: spikes are judged on data in the unit tests below
{thresholds}
""")


def _metric(result: Any, name: str) -> dict[str, Any]:
    return next(m for m in result.body["measurements"] if m["metric"] == name)


def _windows(result: Any) -> list[dict[str, Any]]:
    files = sorted((result.summary_path.parent / "metrics").glob("gate2-metrics-minute-*.json"))
    return [json.loads(f.read_text()) for f in files]


@pytest.mark.slow
def test_reference_stack_soak_passes_with_measurements(tmp_path: Path) -> None:
    result = run_soak(SoakConfig(reference_copy(tmp_path), 12.0, 1.0, 1.0, seed=4))
    assert result.verdict == "pass", result.body["measurements"]
    o = result.body["overall"]
    assert o["count"] >= 3 and o["p50_ms"] is not None and o["p50_ms"] <= o["p95_ms"] <= o["p99_ms"]
    windows = _windows(result)
    assert len(windows) >= 7 and set(windows[-1]["services"]) >= {"openclaw", "api-gateway"}
    svc = windows[-1]["services"]["api-gateway"]
    assert svc["rss_bytes"] > 0 and svc["threads"] >= 1 and svc["open_files"] > 0
    assert svc["healthy"] is True and svc["restarts"] == 0
    every = {n for w in windows for n in w["classes"]}
    assert every >= {"chat", "action", "executor-shell", "executor-file", "executor-browser",
                     "session-create", "session-destroy"}, every
    created = sum(w["classes"].get("session-create", {}).get("count", 0) for w in windows)
    destroyed = sum(w["classes"].get("session-destroy", {}).get("count", 0) for w in windows)
    assert created == destroyed > 0 and windows[-1]["open_sessions"] == 0  # churn, none leaked
    chat = result.body["per_class"]["chat"]
    assert (
        chat["first_event"]["count"] > 0
        and chat["headers"]["p95_ms"] <= chat["first_event"]["p95_ms"]
    )


@pytest.mark.slow
def test_killing_a_reference_service_mid_run_ends_it_within_one_window(tmp_path: Path) -> None:
    import psutil

    killed: dict[str, float] = {}

    def kill_at_window_3(doc: dict[str, Any]) -> None:
        if doc["window"] == 3:
            psutil.Process(doc["services"]["openclaw"]["pid"]).kill()  # our own child
            killed["at"] = doc["end_s"]

    def subscriber(bus: Bus) -> None:
        bus.on(MinuteWindow, lambda event: kill_at_window_3(event.document))

    result = run_soak(SoakConfig(reference_copy(tmp_path), 60.0, 1.0, 1.0, seed=13), [subscriber])
    assert result.verdict == "fail" and result.exit_code == 1
    assert "service openclaw is dead" in result.body["abort_reason"]
    windows = _windows(result)
    aborting = next(w for w in windows if w["breaches"])
    assert aborting["window"] == 4 and "openclaw" in " ".join(aborting["breaches"])
    # after the abort only the sessions left open are destroyed (a final, partial window)
    assert windows[-1]["window"] <= 5 and windows[-1]["end_s"] <= killed["at"] + 1.0 + 1.0
    assert "openclaw" in _metric(result, "restarts")["detail"]


def test_a_steady_service_passes_and_every_window_holds_the_figures(tmp_path: Path) -> None:
    result = run_soak(SoakConfig(_fixture(tmp_path), 4.0, 1.0, 0.5, seed=1))
    assert result.verdict == "pass", result.body["measurements"]
    assert result.body["overall"]["count"] >= 40 and result.body["abort_reason"] is None
    windows = _windows(result)
    assert len(windows) >= 8 and [w["window"] for w in windows] == list(range(1, len(windows) + 1))
    w = windows[len(windows) // 2]
    assert w["classes"]["get"]["count"] == w["overall"]["count"] > 0
    assert (
        w["overall"]["p50_ms"]
        <= w["overall"]["p95_ms"]
        <= w["overall"]["p99_ms"]
        <= w["overall"]["max_ms"]
    )
    svc = w["services"]["svc"]
    assert svc["alive"] and svc["healthy"] and svc["rss_bytes"] > 0 and svc["threads"] >= 1
    assert svc["open_files"] >= 1 and svc["cpu_percent"] is not None and "connections" in svc
    assert w["generator"]["lag"]["count"] > 0 and w["achieved_rate_per_s"] > 0
    # the summary is the exact merge of the steady windows' histograms
    steady = [d for d in windows if not d["warmup"]]
    assert merge_classes(steady)["*"].count == result.body["overall"]["count"]


def test_errors_abort_the_soak_within_a_window(tmp_path: Path) -> None:
    t0 = time.monotonic()
    result = run_soak(SoakConfig(_fixture(tmp_path, "--fail-requests"), 20.0, 0.5, 0.5, seed=2))
    assert result.verdict == "fail" and result.exit_code == 1
    assert "error rate 100.00%" in result.body["abort_reason"]
    assert time.monotonic() - t0 < 12 and _metric(result, "aborted")["verdict"] == "fail"
    assert result.body["per_class"]["get"]["errors_by_kind"] == {
        "http_503": result.body["per_class"]["get"]["count"]
    }


def test_a_memory_leak_fails_the_soak(tmp_path: Path) -> None:
    result = run_soak(
        SoakConfig(_fixture(tmp_path, "--leak-mb-per-s", "20"), 4.0, 1.0, 0.5, seed=3)
    )
    growth = _metric(result, "memory_growth")
    assert result.verdict == "fail" and growth["verdict"] == "fail" and growth["value"] > 0.05


def test_a_service_that_dies_ends_the_run_within_one_window_naming_it(tmp_path: Path) -> None:
    result = run_soak(SoakConfig(_fixture(tmp_path, "--exit-after", "3"), 30.0, 0.5, 1.0, seed=5))
    assert result.verdict == "fail" and result.exit_code == 1
    assert "service svc is dead" in result.body["abort_reason"]
    last = _windows(result)[-1]
    assert (
        last["end_s"] < 3 + 2 * 1.0 + 1.0
    )  # death at ~3 s (+ start-up), caught by the next window
    assert (
        _metric(result, "restarts")["value"] == 1 and "svc" in _metric(result, "restarts")["detail"]
    )


def test_stuck_requests_abort_the_soak(tmp_path: Path) -> None:
    cfg = SoakConfig(_fixture(tmp_path, "--slow-ms", "1500", rate=5.0), 20.0, 0.5, 0.5, seed=6,
                     request_timeout_s=0.5)
    result = run_soak(cfg)
    assert result.verdict == "fail" and _metric(result, "stuck_requests")["value"] > 0
    assert "stuck request" in result.body["abort_reason"]
    assert result.body["windows"] < 10


def test_no_abort_when_the_contract_says_so(tmp_path: Path) -> None:
    path = _fixture(tmp_path, "--fail-requests", thresholds="abort = false")
    result = run_soak(SoakConfig(path, 2.0, 0.5, 0.5, seed=7))
    assert result.verdict == "fail" and result.body["abort_reason"] is None
    assert _metric(result, "error_rate")["value"] == 1.0


def test_percentiles() -> None:
    assert percentile([], 0.5) is None
    assert percentile([1.0, 2.0, 3.0, 4.0], 0.5) == 2.5
    assert percentile(list(map(float, range(101))), 0.95) == 95.0


def test_histograms_merge_exactly_and_stay_bounded() -> None:
    a, b, both = Hist(), Hist(), Hist()
    for i in range(1, 5001):
        (a if i % 2 else b).record_ms(i / 10)
        both.record_ms(i / 10)
    merged = Hist.decode(a.encode()).merge(Hist.decode(b.encode()))
    assert merged.summary() == both.summary() and merged.count == 5000
    assert abs((merged.pct_ms(95) or 0) - 475.0) <= 475.0 * 0.01
    assert len(both.encode()) < 20_000  # bounded, whatever the count


def _doc(i: int, count: int, errors: int, lat_ms: float) -> dict[str, Any]:
    st = ClassStats()
    for k in range(count):
        st.record(Sample("c", 0.0, lat_ms, error="http_500" if k < errors else None))
    d = st.to_dict()
    return {"window": i, "classes": {"c": d}, "overall": d, "end_s": float(i)}


def test_rolling_thresholds_wait_for_the_minimum_sample_count() -> None:
    th = Thresholds(min_samples=20, rolling_windows=2, p95_ms=100)
    assert rolling_breaches([_doc(1, 3, 1, 5.0)], th) == []  # 33% errors but only 3 requests
    got = rolling_breaches([_doc(1, 10, 0, 5.0), _doc(2, 15, 1, 5.0)], th)
    assert len(got) == 1 and got[0].startswith("error rate 4.00%") and "25 requests" in got[0]
    assert rolling_breaches([_doc(1, 30, 0, 500.0)], th)[0].startswith("p95 50")


def test_p95_spikes_are_windows_above_k_times_the_median() -> None:
    th = Thresholds(min_samples=5, p95_spike_k=3.0)
    docs = [_doc(i, 10, 0, 10.0) for i in range(1, 6)] + [_doc(6, 10, 0, 40.0)]
    bad, median = spikes(docs, th)
    assert median is not None and abs(median - 10.0) < 0.2 and [b["window"] for b in bad] == [6]
    assert spikes([_doc(i, 10, 0, 10.0) for i in range(1, 6)], th)[0] == []
    jitter = [_doc(i, 10, 0, 0.3) for i in range(1, 6)] + [_doc(6, 10, 0, 1.5)]
    assert spikes(jitter, th)[0] == []  # 5 x a 0.3 ms median is jitter, under the 20 ms floor


def test_soak_traffic_to_a_remote_host_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from tests.conftest import run_cli

    path = write_contract(
        tmp_path,
        '[contract]\nname = "r"\nversion = "1.0.0"\n[soak]\nduration = "5s"\n'
        '[[soak.traffic]]\nname = "x"\nrate_per_s = 1.0\nbase_url = "http://192.0.2.7:80"\n'
        'method = "GET"\npath = "/"\n',
    )
    assert run_cli("soak", "--contract", str(path)) == 2
    assert "only loopback targets are allowed" in " ".join(capsys.readouterr().err.split())


def test_cli_prints_one_plain_line_per_window_off_a_terminal(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from tests.conftest import run_cli

    code = run_cli("soak", "--contract", str(_fixture(tmp_path)), "--duration", "2s", "--warmup",
                   "0.5s", "--window", "0.5s", "--seed", "3")
    out = capsys.readouterr().out
    lines = [ln for ln in out.splitlines() if ln.startswith("window ")]
    assert code == 0 and len(lines) >= 3, out
    assert "rate " in lines[-1] and "p95 " in lines[-1] and "rss svc=" in lines[-1]


def _need_locust() -> None:
    """Skip without Locust, and never import it here: importing locust monkey-patches the test
    process with gevent (sockets, threads, subprocess), which broke every later test."""
    import importlib.util

    if importlib.util.find_spec("locust") is None:
        pytest.skip("locust is an optional extra: pip install -e '.[locust]'")


def _report(result: Any) -> Path:
    path = result.summary_path.parent / "gate2-report.html"
    assert path.is_file() and result.body["report"] == str(path)
    return path


def test_the_html_report_has_four_plots_and_is_in_the_manifest(tmp_path: Path) -> None:
    from toolkit.core.evidence import verify_run

    result = run_soak(SoakConfig(_fixture(tmp_path), 3.0, 0.5, 0.5, seed=8))
    html = _report(result).read_text()
    assert html.count("<svg") == 4 and html.count("<polyline") >= 4 and "<script" not in html
    for title in ("Latency per window", "Error rate per window", "Resident memory per service",
                  "achieved vs asked"):
        assert title in html
    manifest = (result.summary_path.parent / "manifest.sha256").read_text()
    assert "  gate2-report.html\n" in manifest and verify_run(result.summary_path.parent) == []


def test_the_report_escapes_what_it_shows() -> None:
    from reports.soak_html import render

    html = render({"verdict": "fail", "abort_reason": "<img src=x onerror=alert(1)>",
                   "measurements": [{"metric": "<b>", "value": 1, "threshold": 0, "unit": "u",
                                     "verdict": "fail", "detail": "<script>"}]}, [])
    assert "<img" not in html and "<script>" not in html and "&lt;img" in html


def test_the_report_renders_in_headless_chromium(tmp_path: Path) -> None:
    import shutil
    import subprocess  # nosec B404

    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        pytest.skip("chromium is not installed (apt-get install -y chromium)")
    result = run_soak(SoakConfig(_fixture(tmp_path), 3.0, 0.5, 0.5, seed=9))
    page = _report(result).as_uri()
    shot = tmp_path / "artifacts" / "gate2-report.png"
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={tmp_path / 'chromium-profile'}"]
    dom = subprocess.run([browser, *flags, "--dump-dom", page], capture_output=True, text=True,
                         timeout=120, check=False)  # nosec B603
    assert dom.stdout.count("<svg") == 4 and dom.stdout.count("<polyline") >= 4, dom.stderr[-2000:]
    subprocess.run([browser, *flags, f"--screenshot={shot}", "--window-size=900,1400", page],
                   capture_output=True, timeout=120, check=False)  # nosec B603
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 15_000  # a blank page is ~5 kB


def test_the_locust_engine_runs_one_master_and_two_workers_into_the_same_evidence(
        tmp_path: Path) -> None:
    _need_locust()
    cfg = SoakConfig(_fixture(tmp_path, rate=20.0), 8.0, 2.0, 2.0, seed=11, engine="locust",
                     workers=2)
    result = run_soak(cfg)
    assert result.verdict == "pass", (result.body["measurements"], result.body["abort_reason"])
    windows = _windows(result)
    assert result.body["engine"] == "locust" and len(windows) >= 3
    workers = {w for d in windows for w in (d["generator"]["workers"] or [])}
    assert len(workers) == 2  # both workers reported
    total = sum(d["overall"]["count"] for d in windows)
    assert 20.0 * 8 * 0.6 <= total <= 20.0 * 8 * 1.4  # the contract's rate, within Poisson noise
    assert (
        windows[-1]["services"]["svc"]["alive"] and merge_classes(windows)["get"].latency.count > 0
    )
    logs = result.summary_path.parent / "service-logs"
    assert (logs / "locust-master.log").is_file() and (logs / "locust-worker-2.log").is_file()


def test_the_locust_engine_aborts_on_a_dead_service_too(tmp_path: Path) -> None:
    _need_locust()
    cfg = SoakConfig(_fixture(tmp_path, "--exit-after", "4"), 40.0, 1.0, 2.0, seed=12,
                     engine="locust", workers=2)
    result = run_soak(cfg)
    assert result.verdict == "fail" and "service svc is dead" in result.body["abort_reason"]
    assert result.body["windows"] < 10


def test_a_hostile_server_is_an_error_kind_not_a_crash(tmp_path: Path) -> None:
    import socket
    import threading

    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(64)
    port = srv.getsockname()[1]

    def serve() -> None:
        while True:
            try:
                conn, _ = srv.accept()
            except ConnectionAbortedError:  # the client gave up before the accept
                continue
            except OSError:  # closed: the test is over
                return
            with conn:
                try:
                    conn.recv(4096)
                    conn.sendall(b"NOT HTTP AT ALL\r\n\x00\xff\r\n\r\n")
                except OSError:  # the client gave up first: serve the next one
                    continue

    threading.Thread(target=serve, daemon=True).start()
    path = write_contract(tmp_path, f"""[contract]\nname = "h"\nversion = "1.0.0"\n[soak]
[[soak.traffic]]\nname = "x"\nrate_per_s = 20.0\nbase_url = "http://127.0.0.1:{port}"
method = "GET"\npath = "/"\n[soak.thresholds]\nabort = false\n""")
    try:
        result = run_soak(SoakConfig(path, 1.5, 0.5, 0.5, seed=14))
    finally:
        srv.close()
    assert result.verdict == "fail" and _metric(result, "error_rate")["value"] == 1.0
    assert set(result.body["per_class"]["x"]["errors_by_kind"]) == {"ProtocolFailed"}


def test_bad_soak_options_are_usage_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from tests.conftest import run_cli

    path = str(_fixture(tmp_path))
    assert run_cli("soak", "--contract", path, "--duration", "2s", "--warmup", "5s") == 2
    assert run_cli("soak", "--contract", path, "--duration", "2s", "--engine", "locust",
                   "--workers", "0") == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "longer than the warmup" in err and "--workers 0" in err
    # a mistyped option is not a failed attempt: two of those must not block the gate
    assert run_cli("soak", "--contract", path, "--duration", "0s") == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "blocked" not in err and "must be positive" in err
    from toolkit.core import contract as contract_mod
    from toolkit.core.ledger import Ledger

    assert Ledger(contract_mod.load(Path(path)).evidence_dir).attempts() == []


def test_drill_history_html_plots_rpo_and_rto(tmp_path: Path) -> None:
    from reports.drill_history import finish_history, start_history
    from tests.conftest import run_cli
    from toolkit.core import contract as contract_mod
    from toolkit.core.runner import GateResult

    path = write_contract(tmp_path, '[contract]\nname = "d"\nversion = "1.0.0"\n')
    c = contract_mod.load(path)
    for i, (rpo, rto, verdict) in enumerate(
        [(0.4, 0.9, "pass"), (None, None, "fail"), (0.5, 1.1, "pass")]
    ):
        start_history(c, f"run-{i}", ["kill", "<b>"], i)
        finish_history(
            c,
            f"run-{i}",
            GateResult(
                verdict, {"rpo_s": rpo, "rto_s": rto, "lost_writes": i}, tmp_path / "summary.json"
            ),
        )
    out = tmp_path / "history.html"
    assert run_cli("drill", "history", "--contract", str(path), "--html", str(out)) == 0
    html = out.read_text()
    assert html.count("<svg") == 2 and html.count("<polyline") == 3 and "run-2" in html
    assert "<b>" not in html and "kill,&lt;b&gt;" in html
    folder = tmp_path / "a-folder"
    folder.mkdir()
    assert run_cli("drill", "history", "--contract", str(path), "--html", str(folder)) == 2
    assert folder.is_dir() and list(folder.iterdir()) == [] and not list(tmp_path.glob(".*.tmp"))


@pytest.mark.slow
def test_the_locust_engine_carries_the_reference_profile_with_churn(tmp_path: Path) -> None:
    _need_locust()
    cfg = SoakConfig(reference_copy(tmp_path), 12.0, 2.0, 2.0, seed=15, engine="locust", workers=2)
    result = run_soak(cfg)
    assert result.verdict == "pass", (result.body["measurements"], result.body["abort_reason"])
    merged = merge_classes(_windows(result))
    assert {"chat", "executor-browser", "session-create"} <= set(merged)
    assert merged["session-create"].count == merged["session-destroy"].count > 0
    assert merged["chat"].first_event.count > 0


def test_a_server_that_never_answers_is_stuck_and_the_run_still_ends(tmp_path: Path) -> None:
    import socket

    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)  # never accepted: the backlog fills and later SYNs go unanswered
    path = write_contract(tmp_path, f"""[contract]\nname = "n"\nversion = "1.0.0"\n[soak]
[[soak.traffic]]\nname = "x"\nrate_per_s = 50.0\nbase_url = "http://127.0.0.1:{srv.getsockname()[1]}"
method = "GET"\npath = "/"\n[soak.thresholds]\nabort = false\n""")
    t0 = time.monotonic()
    try:
        result = run_soak(SoakConfig(path, 2.0, 0.5, 0.5, seed=16, request_timeout_s=0.5))
    finally:
        srv.close()
    assert time.monotonic() - t0 < 20
    assert result.verdict == "fail" and _metric(result, "stuck_requests")["value"] > 50
