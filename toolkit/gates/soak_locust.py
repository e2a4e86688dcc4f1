"""``toolkit soak --engine locust``: the contract's traffic on Locust's master/worker engine.

Locust spreads users over worker processes (here, or on other machines pointed at the
master), which lifts the one-process ceiling of the built-in engine. The toolkit runs the
master and N local workers, reads what the workers report (counts, errors by kind and
HdrHistograms, via ``toolkit/gates/soak_locustfile.py``) and builds the *same* windows from it:
same files, same thresholds, same early abort, same evidence. Workers report every
``report_s`` seconds, so a window holds the reports that arrived during it.
"""

from __future__ import annotations

import json
import math
import socket
import subprocess  # nosec B404 - fixed argv, no shell
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from toolkit.core.errors import ToolkitError
from toolkit.gates.soak_engine import TrafficClass, WindowCut
from toolkit.gates.soak_hist import Hist
from toolkit.gates.soak_metrics import ClassStats

LOCUSTFILE = Path(__file__).with_name("soak_locustfile.py")
START_TIMEOUT_S = 60.0


def users_per_class(rate: float, per_user_max: float = 5.0) -> int:
    """Enough users that none is asked for more than ``per_user_max`` arrivals a second."""
    return max(1, math.ceil(rate / per_user_max))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class LocustEngine:
    """Same interface as :class:`toolkit.gates.soak_engine.Engine`: ``run()`` returns the abort
    reason.
    """

    def __init__(
        self,
        contract_path: Path,
        classes: list[TrafficClass],
        seed: int,
        duration_s: float,
        window_s: float,
        stuck_s: float,
        observe: Callable[[WindowCut], str | None],
        workers: int,
        log_dir: Path,
    ):
        self.path, self.classes, self.seed = contract_path, classes, seed
        self.duration, self.window_s, self.stuck_s = duration_s, window_s, stuck_s
        self.observe, self.workers, self.log_dir = observe, workers, log_dir
        self.procs: list[subprocess.Popen[bytes]] = []
        self.windows, self.last_end, self.offset = 0, 0.0, 0
        self.worker_ids: set[str] = set()
        self.in_flight: dict[str, tuple[int, int, float | None]] = {}

    def plan(self) -> dict[str, Any]:
        return {"contract": str(self.path), "seed": self.seed, "stuck_s": self.stuck_s,
                "hold_cap_s": self.duration / 5, "report_s": min(3.0, max(0.5, self.window_s / 2)),
                "users": {c.name: users_per_class(c.rate) for c in self.classes}}

    def run(self) -> str | None:
        with tempfile.TemporaryDirectory(prefix="toolkit-locust-") as tmp:
            spool = Path(tmp) / "spool.jsonl"
            spool.touch()
            try:
                self._launch(spool)
                return self._watch(spool)
            finally:
                self._stop()

    def _launch(self, spool: Path) -> None:
        plan = self.plan()
        env = {
            **_base_env(),
            "TOOLKIT_SOAK_PLAN": json.dumps(plan),
            "TOOLKIT_SOAK_SPOOL": str(spool),
        }
        port, users = _free_port(), sum(plan["users"].values())
        base = [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--loglevel", "WARNING"]
        master = [*base, "--master", "--headless", "--expect-workers", str(self.workers),
                  "-u", str(users), "-r", str(users), "-t", f"{math.ceil(self.duration)}s",
                  "--stop-timeout", f"{math.ceil(self.stuck_s)}", "--only-summary",
                  "--master-bind-host", "127.0.0.1", "--master-bind-port", str(port)]
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.procs.append(self._spawn(master, env, "locust-master"))
        for i in range(self.workers):
            worker = [*base, "--worker", "--master-host", "127.0.0.1", "--master-port", str(port)]
            self.procs.append(self._spawn(worker, env, f"locust-worker-{i + 1}"))

    def _spawn(self, argv: list[str], env: dict[str, str], name: str) -> subprocess.Popen[bytes]:
        log: IO[bytes] = (self.log_dir / f"{name}.log").open("wb")
        return subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT)  # nosec B603

    def _watch(self, spool: Path) -> str | None:
        t0 = self._await_start(spool)
        nxt = t0 + self.window_s
        master = self.procs[0]
        while True:
            time.sleep(max(0.0, min(nxt, time.time() + 0.2) - time.time()))
            ended = master.poll() is not None
            if time.time() >= nxt or ended:
                reason = self._window(spool, t0, final=ended)
                nxt += self.window_s
                if reason or ended:
                    return reason

    def _await_start(self, spool: Path) -> float:
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            for line in self._read(spool):
                if "start" in line:
                    return float(line["start"])
            if self.procs[0].poll() is not None:
                break
            time.sleep(0.1)
        raise ToolkitError(
            f"locust did not start {self.workers} worker(s) within {START_TIMEOUT_S:g} s "
            f"(exit {self.procs[0].poll()}); see {self.log_dir}/locust-*.log"
        )

    def _read(self, spool: Path) -> list[dict[str, Any]]:
        with spool.open("rb") as fh:
            fh.seek(self.offset)
            data = fh.read()
        complete = data[: data.rfind(b"\n") + 1]
        self.offset += len(complete)
        return [json.loads(x) for x in complete.splitlines() if x.strip()]

    def _window(self, spool: Path, t0: float, final: bool) -> str | None:
        if final:
            time.sleep(0.5)  # the workers' last reports, sent as they quit
        classes: dict[str, ClassStats] = {}
        lag, started, cpu = Hist(), 0, None
        for line in self._read(spool):
            if "worker" not in line:
                continue
            self.worker_ids.add(line["worker"])
            for name, d in line["classes"].items():
                classes.setdefault(name, ClassStats()).merge(ClassStats.from_dict(d))
            lag.merge(Hist.decode(line["lag"]))
            started += int(line["started"])
            self.in_flight[line["worker"]] = (int(line["in_flight"]), int(line["stuck_now"]),
                                              line.get("cpu_percent"))
            cpu = max(cpu or 0.0, float(line.get("cpu_percent") or 0.0))
        end = round(time.time() - t0, 3)
        start, self.last_end = self.last_end, end
        self.windows += 1
        cut = WindowCut(self.windows, start, end, classes, started,
                        sum(v[0] for v in self.in_flight.values()),
                        sum(v[1] for v in self.in_flight.values()),
                        {"cpu_percent": cpu, "lag": lag.summary(), "lag_hdr": lag.encode(),
                         "workers": sorted(self.worker_ids)}, 0, final)
        return self.observe(cut)

    def _stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.terminate()
        for proc in self.procs:
            try:
                proc.wait(timeout=self.stuck_s + 10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)


def _base_env() -> dict[str, str]:
    import os

    return {k: v for k, v in os.environ.items() if not k.startswith("LOCUST_")}
