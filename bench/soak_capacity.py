"""Benchmark (issue #12): how fast the soak's open-model generator really is, next to its peers.

In one run, against one nginx (1 worker, a 3-byte reply, on a free loopback port):
- the machine's noise floor: how late a bare 0.5 ms sleep wakes up (p99), right now;
- `toolkit soak` at 500, 1,000, 2,000 and 4,000 req/s (Poisson arrivals, latency from the
  intended start), with its own schedule lag and CPU;
- wrk (closed loop, 1 thread, 32 connections: the server's ceiling and latency floor);
- Locust (FastHttpUser, constant throughput, headless) asked for 1,000 req/s, if installed.

    unshare -n -p -f --mount-proc sh -c 'ip link set lo up && python bench/soak_capacity.py'

The machine is shared: other jobs' CPU shows up as schedule lag. Read the figures with the
noise floor printed beside them.
"""

from __future__ import annotations

import argparse
import csv
import re
import shutil
import socket
import subprocess  # nosec B404
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from toolkit.core import contract as contract_mod
from toolkit.gates.soak import SoakConfig, run_soak

NGINX = """worker_processes 1;
pid {d}/nginx.pid;
error_log {d}/error.log;
daemon off;
events {{ worker_connections 8192; }}
http {{
  access_log off;
  client_body_temp_path {d}/body; proxy_temp_path {d}/proxy; fastcgi_temp_path {d}/fcgi;
  uwsgi_temp_path {d}/uwsgi; scgi_temp_path {d}/scgi;
  keepalive_requests 10000000;
  server {{ listen 127.0.0.1:{port}; location / {{ return 200 "ok\\n"; }} }}
}}
"""

LOCUSTFILE = """
from locust import FastHttpUser, constant_throughput, task

class Get(FastHttpUser):
    wait_time = constant_throughput({per_user})

    @task
    def get(self):
        self.client.get("/")
"""

Row = tuple[str, str, str, str, str, str, str, str]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def noise_floor(seconds: float = 3.0) -> float:
    lags = []
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        t = time.monotonic()
        time.sleep(0.0005)
        lags.append((time.monotonic() - t - 0.0005) * 1000)
    return sorted(lags)[int(len(lags) * 0.99)]


def contract(d: Path, port: int, rate: int, duration: float) -> Path:
    path = d / f"bench-{rate}.toml"
    path.write_text(textwrap.dedent(f"""
        [contract]
        name = "soak-capacity-{rate}"
        version = "1.0.0"
        [[services]]
        name = "nginx"
        command = ["nginx", "-c", "{d}/nginx.conf"]
        port = {port}
        health = "/"
        [soak]
        duration = {duration}
        window = "1s"
        stuck_after = "10s"
        [[soak.traffic]]
        name = "get"
        rate_per_s = {rate}
        service = "nginx"
        method = "GET"
        path = "/"
        [soak.thresholds]
        abort = false
        [evidence]
        dir = "{d}/evidence"
        """))
    contract_mod.write_lock(contract_mod.load(path))
    return path


def _f(v: Any) -> str:
    return "-" if v is None else f"{v:.2f}" if isinstance(v, float) else str(v)


def toolkit_row(d: Path, port: int, rate: int, duration: float) -> Row:
    r = run_soak(SoakConfig(contract(d, port, rate, duration), None, 1.0, 1.0, seed=rate))
    b, o, g = r.body, r.body["overall"], r.body["generator"]
    achieved = b["requests_planned"] / b["duration_s"]  # dispatched, warmup included
    return (
        f"toolkit soak {rate}/s",
        f"{rate}",
        f"{achieved:.0f}",
        _f(o["p50_ms"]),
        _f(o["p95_ms"]),
        _f(o["p99_ms"]),
        _f(g["lag"]["p99_ms"]),
        _f(g["cpu_percent_max"]),
    )


def wrk_row(port: int, duration: float) -> Row:
    out = subprocess.run(["wrk", "-t1", "-c32", f"-d{int(duration)}s", "--latency",
                          f"http://127.0.0.1:{port}/"], capture_output=True, text=True,
                         timeout=duration + 30, check=True).stdout  # nosec B603 B607
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    pct = dict(re.findall(r"^\s+(\d+)%\s+([\d.]+\w+)", out, re.MULTILINE))
    return ("wrk -t1 -c32 (closed loop)", "max", f"{float(rps.group(1)) if rps else 0:.0f}",
            pct.get("50", "-"), "-", pct.get("99", "-"), "-", "-")


def locust_row(d: Path, port: int, rate: int, duration: float) -> Row | None:
    exe = shutil.which("locust") or str(Path(sys.executable).parent / "locust")
    if not Path(exe).exists():
        return None
    users = max(1, rate // 20)
    (d / "locustfile.py").write_text(LOCUSTFILE.format(per_user=rate / users))
    subprocess.run([exe, "-f", str(d / "locustfile.py"), "--headless", "-u", str(users), "-r",
                    str(users), "-t", f"{int(duration)}s", "--host", f"http://127.0.0.1:{port}",
                    "--csv", str(d / "locust"), "--only-summary"], capture_output=True,
                   timeout=duration + 60, check=False)  # nosec B603
    rows = list(csv.DictReader((d / "locust_stats.csv").open()))
    agg = next(r for r in rows if r["Name"] == "Aggregated")
    return (f"locust {users} users x {rate / users:g}/s", f"{rate}",
            f"{float(agg['Requests/s']):.0f}", agg["50%"], agg["95%"], agg["99%"], "-", "-")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--duration", type=float, default=6.0)
    ap.add_argument("--rates", default="500,1000,2000,4000")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        d, port = Path(tmp), free_port()
        (d / "nginx.conf").write_text(NGINX.format(d=d, port=port))
        floor = noise_floor()
        rows = [toolkit_row(d, port, int(r), args.duration) for r in args.rates.split(",")]
        nginx = subprocess.Popen(["nginx", "-c", str(d / "nginx.conf")])  # nosec B603 B607
        try:
            time.sleep(0.5)
            rows.append(wrk_row(port, args.duration))
            rows += [r for r in [locust_row(d, port, 1000, args.duration)] if r]
        finally:
            nginx.terminate()
            nginx.wait(10)
    head = (
        "generator",
        "asked/s",
        "achieved/s",
        "p50 ms",
        "p95 ms",
        "p99 ms",
        "lag p99 ms",
        "CPU %",
    )
    print(f"machine noise floor (0.5 ms sleep, p99 overshoot): {floor:.2f} ms")
    print("| " + " | ".join(head) + " |\n|" + "---|" * len(head))
    for row in rows:
        print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
