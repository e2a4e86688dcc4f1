"""The Locust side of ``toolkit soak --engine locust``: loaded by the master and every worker.

Not imported by the toolkit itself. The plan (contract path, seed, users per class, stuck
limit) comes in ``TOOLKIT_SOAK_PLAN``; each traffic class becomes one User class with a fixed
user count, pacing Poisson arrivals at ``rate / users`` per user. Latency is timed from each
arrival's intended start, as the built-in engine does, so a user held up by a slow reply
still counts the wait (wrk2's correction for coordinated omission).

Workers ship their counters and HdrHistograms to the master with every stats report
(``report_to_master``); the master appends them to ``TOOLKIT_SOAK_SPOOL`` as JSON lines,
which the toolkit turns into the same windows, thresholds and evidence as its own engine.
"""

from __future__ import annotations

import json
import os
import random
import time
from pathlib import Path
from typing import Any

import locust.runners
import psutil
import requests
from locust import HttpUser, events, task

from toolkit.core import contract as contract_mod
from toolkit.gates.soak_engine import TrafficClass
from toolkit.gates.soak_hist import Hist
from toolkit.gates.soak_metrics import ClassStats, Sample

PLAN: dict[str, Any] = json.loads(os.environ.get("TOOLKIT_SOAK_PLAN", "{}"))
SPOOL = os.environ.get("TOOLKIT_SOAK_SPOOL", "")
locust.runners.WORKER_REPORT_INTERVAL = float(PLAN.get("report_s", 3.0))

STATE: dict[str, Any] = {"stats": {}, "lag": Hist(), "in_flight": {}, "started": 0, "seq": 0}
PROC = psutil.Process()


def _record(sample: Sample) -> None:
    STATE["stats"].setdefault(sample.cls, ClassStats()).record(sample)


class SoakUser(HttpUser):
    """One user of one traffic class (subclassed per class below)."""

    abstract = True
    tclass: TrafficClass
    per_user: float = 1.0
    host = "http://127.0.0.1"

    def on_start(self) -> None:
        self.rng = random.Random(f"{PLAN.get('seed')}:{self.tclass.name}:{id(self)}")  # nosec B311
        self.next_at = time.monotonic() + self.rng.expovariate(self.per_user)
        self.held: list[tuple[float, str]] = []

    def wait_time(self) -> float:
        return max(0.0, self.next_at - time.monotonic())

    @task
    def arrive(self) -> None:
        now = time.monotonic()
        intended, self.next_at = self.next_at, self.next_at + self.rng.expovariate(self.per_user)
        STATE["lag"].record_ms(max(0.0, now - intended) * 1000)
        for due in [h for h in self.held if h[0] <= now]:
            self.held.remove(due)
            self.send(due[0], due[1])
        self.send(intended, None)

    def on_stop(self) -> None:
        for _, sid in self.held:
            self.send(time.monotonic(), sid)
        self.held = []

    def send(self, intended: float, session: str | None) -> None:
        cls = self.tclass
        sample = Sample(cls.destroy_name if session else cls.name, intended)
        STATE["started"] += session is None  # arrivals; destroys follow from them
        STATE["seq"] += 1
        STATE["in_flight"][id(sample)] = intended
        body_bytes = b""
        try:
            method, target, headers, body = cls.build(
                STATE["seq"], {"id": session} if session else None, destroy=session is not None
            )
            with self.client.request(method, target, data=body, headers=dict(headers), stream=True,
                                     timeout=float(PLAN.get("stuck_s", 30.0)), name=sample.cls,
                                     catch_response=True) as resp:
                sample.headers_ms = (time.monotonic() - intended) * 1000
                sample.status = resp.status_code
                for chunk in resp.iter_content(4096):
                    if chunk and sample.first_event_ms is None:
                        sample.first_event_ms = (time.monotonic() - intended) * 1000
                    if len(body_bytes) < 65536:
                        body_bytes += chunk
                sample.error = cls.judge(resp.status_code)
                resp.success()
        except requests.Timeout:
            sample.error = "stuck"
        except requests.RequestException as exc:
            sample.error = type(exc).__name__
        finally:
            STATE["in_flight"].pop(id(sample), None)
        sample.latency_ms = (time.monotonic() - intended) * 1000
        if not cls.stream:
            sample.headers_ms = sample.first_event_ms = None
        _record(sample)
        if session is None and cls.destroy is not None and sample.ok:
            self._hold(body_bytes, intended)

    def _hold(self, body: bytes, intended: float) -> None:
        try:
            sid = json.loads(body or b"{}").get(str(self.tclass.spec.get("id_field", "id")))
        except (ValueError, AttributeError):
            return
        if isinstance(sid, str | int):
            self.held.append((intended + self.tclass.hold_s, str(sid)))


def _user_classes() -> None:
    if not PLAN:
        return
    c = contract_mod.load(Path(PLAN["contract"]))
    for i, spec in enumerate(c.need(c.soak, "soak", "soak").traffic):
        cls = TrafficClass(c, spec, float(PLAN["hold_cap_s"]))
        users = int(PLAN["users"][cls.name])
        name = f"Soak{i}_{''.join(ch for ch in cls.name if ch.isalnum())}"
        globals()[name] = type(name, (SoakUser,), {
            "tclass": cls, "per_user": cls.rate / users, "fixed_count": users,
            "host": f"http://{cls.host}:{cls.port}", "abstract": False})


def _report(client_id: str, data: dict[str, Any]) -> None:
    now = time.monotonic()
    stuck_s = float(PLAN.get("stuck_s", 30.0))
    data["toolkit"] = {
        "classes": {n: s.to_dict() for n, s in STATE["stats"].items()},
        "lag": STATE["lag"].encode(), "started": STATE["started"],
        "in_flight": len(STATE["in_flight"]),
        "stuck_now": sum(1 for t in STATE["in_flight"].values() if now - t > stuck_s),
        "cpu_percent": PROC.cpu_percent(None)}
    STATE.update(stats={}, lag=Hist(), started=0)


def _collect(client_id: str, data: dict[str, Any]) -> None:
    if SPOOL and "toolkit" in data:
        with open(SPOOL, "a", encoding="utf-8") as fh:
            fh.write(json.dumps({"worker": client_id, "t": time.time(), **data["toolkit"]}) + "\n")


def _started(environment: Any, **_: Any) -> None:
    if SPOOL and isinstance(environment.runner, locust.runners.MasterRunner):
        with open(SPOOL, "a", encoding="utf-8") as fh:
            fh.write(json.dumps({"start": time.time()}) + "\n")


events.report_to_master.add_listener(_report)  # type: ignore[no-untyped-call]
events.worker_report.add_listener(_collect)  # type: ignore[no-untyped-call]
events.test_start.add_listener(_started)  # type: ignore[no-untyped-call]
_user_classes()
