"""Start and stop the services of a contract, and remember every process they made."""

from __future__ import annotations

import errno
import json
import os
import shutil
import socket
import subprocess  # nosec B404
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, Any

import httpx
import psutil

from toolkit import platform
from toolkit.auth import ensure_key_file
from toolkit.contract import Contract, Service, expand, start_levels
from toolkit.errors import TargetError
from toolkit.evidence import atomic_write

MARKER_ENV = "TOOLKIT_RUN_MARKER"
POLL_S = 0.02


@dataclass(frozen=True)
class ProcRecord:
    service: str
    pid: int
    create_time: float
    cmdline: list[str]

    def alive(self) -> bool:
        """Still running and still the same process (pid and create_time match)."""
        try:
            proc = psutil.Process(self.pid)
            if abs(proc.create_time() - self.create_time) > 0.01:
                return False
            return bool(proc.status() != psutil.STATUS_ZOMBIE)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            return False


@dataclass
class Running:
    service: Service
    popen: subprocess.Popen[bytes]
    started_at: float
    healthy_at: float | None = None
    log: IO[bytes] | None = None

    @property
    def pid(self) -> int:
        return self.popen.pid


@dataclass
class StopResult:
    service: str
    seconds: float
    escalated: bool
    exit_code: int | None
    leftovers: list[dict[str, Any]] = field(default_factory=list)


def run_file(c: Contract) -> Path:
    """Where a running stack records its owner and processes (read by stack status/down)."""
    return c.dir / ".toolkit" / f"stack-{c.name}.json"


def port_in_use(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            return exc.errno in (errno.EADDRINUSE, errno.EACCES)
    return False


def listeners_on(ports: list[int]) -> list[dict[str, Any]]:
    """Processes (or sockets without a visible owner) listening on any of ``ports``."""
    found = []
    wanted = set(ports)
    for conn in psutil.net_connections(kind="tcp"):
        if conn.status == psutil.CONN_LISTEN and conn.laddr and conn.laddr.port in wanted:
            found.append({"port": conn.laddr.port, "pid": conn.pid, "cmdline": _cmdline(conn.pid)})
    return found


def _cmdline(pid: int | None) -> list[str]:
    if pid is None:
        return []
    try:
        return list(psutil.Process(pid).cmdline())
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return []


def probe(client: httpx.Client, url: str, timeout: float = 2.0) -> tuple[bool, str]:
    """One health check: (healthy, status or error)."""
    try:
        resp = client.get(url, timeout=timeout)
    except httpx.HTTPError as exc:
        return False, type(exc).__name__
    return resp.status_code == 200, str(resp.status_code)


class Supervisor:
    """Starts services in depends_on order, each in its own process group and session."""

    def __init__(self, contract: Contract, *, marker: str, canary: str = "", log_dir: Path | None = None,
                 extra_env: dict[str, str] | None = None, on_event: Callable[..., None] | None = None):
        self.contract = contract
        self.marker = marker
        self.canary = canary
        self.log_dir = log_dir
        self.extra_env = extra_env or {}
        self.running: dict[str, Running] = {}
        self.records: dict[tuple[int, float], ProcRecord] = {}
        self._emit = on_event or (lambda *a, **k: None)
        self._client = httpx.Client(trust_env=False)
        self._lock = threading.Lock()

    # ------------------------------------------------------------ ownership
    def _reclaim(self) -> None:
        """A run file left by a toolkit that died (kill -9): stop its services, so a rerun works."""
        path = run_file(self.contract)
        try:
            doc = json.loads(path.read_text())
        except FileNotFoundError:
            return
        except (OSError, ValueError):
            path.unlink(missing_ok=True)
            return
        owner = ProcRecord("toolkit", int(doc.get("owner_pid", 0)), float(doc.get("owner_create", 0)), [])
        if owner.alive() and owner.pid != os.getpid():
            raise TargetError(f"the stack of {self.contract.name} is run by another toolkit (pid {owner.pid}); "
                              f"stop it first (toolkit stack down)")
        stale = [ProcRecord(**r) for r in doc.get("records", [])]
        for rec in stale:
            if rec.alive():
                platform.kill_process(rec.pid, rec.create_time)
        deadline = time.monotonic() + 5
        while any(rec.alive() for rec in stale) and time.monotonic() < deadline:
            time.sleep(0.02)
        self._emit("supervisor.reclaimed", killed=[r.pid for r in stale], file=str(path))
        path.unlink(missing_ok=True)

    def _write_run_file(self) -> None:
        me = psutil.Process()
        doc = {"contract": self.contract.name, "marker": self.marker, "owner_pid": me.pid,
               "owner_create": me.create_time(), "services": {n: {"pid": r.pid} for n, r in self.running.items()},
               "records": [asdict(r) for r in self.records.values()]}
        atomic_write(run_file(self.contract), json.dumps(doc, indent=2).encode())

    # ------------------------------------------------------------ start
    def start_all(self) -> dict[str, float]:
        """Start everything; on any failure stop what was started and raise TargetError."""
        ensure_key_file(self.contract.auth)
        self._reclaim()
        self._preflight_ports()
        startup: dict[str, float] = {}
        try:
            for level in start_levels(self.contract):
                for svc in level:
                    self._spawn(svc)
                with ThreadPoolExecutor(max_workers=max(1, len(level))) as pool:
                    for name, secs in pool.map(self._await_health, level):
                        startup[name] = secs
            self._write_run_file()
        except BaseException:
            self.stop_all()
            raise
        return startup

    def _preflight_ports(self) -> None:
        for svc in self.contract.services:
            if svc.port is not None and port_in_use(svc.host, svc.port):
                owners = [" ".join(x["cmdline"]) or f"pid {x['pid']}" for x in listeners_on([svc.port])]
                who = f" (held by {owners[0]})" if owners else ""
                raise TargetError(f"service {svc.name!r}: port {svc.port} on {svc.host} is already in use{who}; "
                                  f"stop whatever holds it or change the port in the contract")

    def variables(self, svc: Service) -> dict[str, Any]:
        return {**self.contract.base_vars(), "port": svc.port if svc.port is not None else "",
                "canary_secret": self.canary}

    def _spawn(self, svc: Service) -> None:
        argv = [str(a) for a in expand(svc.command, self.variables(svc))]
        exe = argv[0]
        resolved = exe if os.sep in exe else shutil.which(exe)
        if not resolved or not os.path.exists(resolved):
            raise TargetError(f"service {svc.name!r}: command not found: {exe!r}; install it or fix services.command")
        variables = self.variables(svc)
        env = {**os.environ, **expand(self.contract.env, variables), **expand(svc.env, variables),
               **self.extra_env, MARKER_ENV: self.marker}
        log = self._open_log(svc)
        if not svc.cwd.is_dir():
            raise TargetError(f"service {svc.name!r}: cwd {str(svc.cwd)!r} is not a folder")
        try:
            popen = subprocess.Popen(  # nosec B603
                argv, cwd=svc.cwd, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                **platform.spawn_kwargs())
        except OSError as exc:
            raise TargetError(f"service {svc.name!r}: cannot start {exe!r}: {exc.strerror}") from None
        run = Running(svc, popen, time.monotonic(), log=log)
        self.running[svc.name] = run
        self._record(svc.name, popen.pid)
        self._emit("service.spawned", service=svc.name, pid=popen.pid, argv=argv)

    def _open_log(self, svc: Service) -> IO[bytes] | None:
        target = svc.logs[0] if svc.logs else (self.log_dir / f"{svc.name}.log" if self.log_dir else None)
        if target is None:
            return None
        target.parent.mkdir(parents=True, exist_ok=True)
        return open(target, "ab")

    def _await_health(self, svc: Service) -> tuple[str, float]:
        run = self.running[svc.name]
        deadline = run.started_at + svc.startup_timeout_s
        url = svc.health_url
        while True:
            code = run.popen.poll()
            if code is not None:
                raise TargetError(f"service {svc.name!r} exited with code {code} before it became healthy; "
                                  f"see its log{self._log_hint(svc)}")
            if url is None or probe(self._client, url, timeout=1.0)[0]:
                run.healthy_at = time.monotonic()
                self.snapshot()
                self._emit("service.healthy", service=svc.name, seconds=run.healthy_at - run.started_at)
                return svc.name, run.healthy_at - run.started_at
            if time.monotonic() > deadline:
                raise TargetError(f"service {svc.name!r} did not become healthy at {url} within "
                                  f"{svc.startup_timeout_s:g} s; see its log{self._log_hint(svc)}")
            time.sleep(POLL_S)

    def _log_hint(self, svc: Service) -> str:
        if svc.logs:
            return f" {svc.logs[0]}"
        return f" {self.log_dir / (svc.name + '.log')}" if self.log_dir else ""

    # ------------------------------------------------------------ records
    def _record(self, service: str, pid: int) -> None:
        try:
            proc = psutil.Process(pid)
            rec = ProcRecord(service, pid, proc.create_time(), _safe_cmdline(proc))
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            return
        with self._lock:
            self.records.setdefault((rec.pid, rec.create_time), rec)

    def snapshot(self) -> None:
        """Walk every service's process tree and record each descendant."""
        for name, run in list(self.running.items()):
            try:
                children = psutil.Process(run.pid).children(recursive=True)
            except psutil.NoSuchProcess:
                continue
            for child in children:
                self._record(name, child.pid)

    # ------------------------------------------------------------ stop
    def stop_all(self) -> list[StopResult]:
        """Reverse start order: SIGTERM each group, SIGKILL the tree after stop_timeout_s."""
        self.snapshot()
        results: list[StopResult] = []
        for level in reversed(start_levels(self.contract)):
            names = [svc.name for svc in level if svc.name in self.running]
            if not names:
                continue
            with ThreadPoolExecutor(max_workers=len(names)) as pool:
                results.extend(pool.map(self._stop_one, names))
        platform.reap_children()
        run_file(self.contract).unlink(missing_ok=True)
        return results

    def _stop_one(self, name: str) -> StopResult:
        run = self.running.pop(name)
        t0 = time.monotonic()
        platform.request_stop(run.pid)
        escalated = False
        try:
            code: int | None = run.popen.wait(timeout=run.service.stop_timeout_s)
        except subprocess.TimeoutExpired:
            escalated = True
            self._kill_tree(name, run)
            code = run.popen.wait(timeout=5)
        leftovers = self._leftovers(name)
        if run.log:
            run.log.close()
        result = StopResult(name, time.monotonic() - t0, escalated, code, leftovers)
        self._emit("service.stopped", **asdict(result))
        return result

    def _kill_tree(self, name: str, run: Running) -> None:
        pids = [r.pid for r in self.records.values() if r.service == name and r.alive()]
        platform.force_kill(pids, group_leader=run.pid)

    def _leftovers(self, name: str) -> list[dict[str, Any]]:
        """Recorded descendants still alive after their service exited: name them, then kill them."""
        time.sleep(0)  # let the kernel finish delivering the group signal
        alive = [r for r in self.records.values() if r.service == name and r.alive()]
        out = []
        for rec in alive:
            out.append({"pid": rec.pid, "cmdline": rec.cmdline, "check": "descendant-alive-after-stop"})
            platform.kill_process(rec.pid, rec.create_time)
        return out

    def pids(self) -> dict[str, int]:
        return {name: run.pid for name, run in self.running.items()}

    def close(self) -> None:
        self._client.close()


def _safe_cmdline(proc: psutil.Process) -> list[str]:
    try:
        return list(proc.cmdline())
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
        return []


def processes_with_marker(marker: str) -> list[psutil.Process]:
    """Every process whose environment carries this run's marker (finds double-forked orphans)."""
    found = []
    for proc in psutil.process_iter(["pid"]):
        try:
            if proc.environ().get(MARKER_ENV) == marker:
                found.append(proc)
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess, OSError):
            continue
    return found
