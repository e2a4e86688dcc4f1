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
from typing import Any

import httpx
import psutil

from toolkit.core import platform
from toolkit.core.auth import ensure_key_file
from toolkit.core.contract import Contract, Service, expand, start_levels
from toolkit.core.errors import TargetError
from toolkit.core.events import (
    CgroupsRemoved,
    Event,
    ServiceHealthy,
    ServiceLogCut,
    ServiceSpawned,
    ServiceStopped,
    SupervisorReclaimed,
)
from toolkit.core.logcap import CappedLog
from toolkit.core.watchdog import Watchdog

MARKER_ENV = "TOOLKIT_RUN_MARKER"
POLL_S = 0.02
PROBE_BODY_CAP = 64 * 1024


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
    log: CappedLog | None = None

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
    exit_ok: bool = True
    log: dict[str, Any] | None = None


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


def probe(client: httpx.Client, url: str, timeout: float = 2.0,
          max_body: int = PROBE_BODY_CAP) -> tuple[bool, str]:
    """One health check: (healthy, status or error).

    ``timeout`` bounds the whole check, body included: the body is streamed and reading
    stops at the deadline or after ``max_body`` bytes, so a /healthz that never ends or
    answers a gigabyte neither hangs the gate nor fills its memory; both count as unhealthy.
    """
    deadline = time.monotonic() + timeout
    try:
        with client.stream("GET", url, timeout=timeout) as resp:
            return _read_capped(resp, deadline, max_body)
    except httpx.HTTPError as exc:
        return False, type(exc).__name__


def _read_capped(resp: httpx.Response, deadline: float, max_body: int) -> tuple[bool, str]:
    got = 0
    for chunk in resp.iter_raw():
        got += len(chunk)
        if got > max_body:
            return False, f"{resp.status_code}, body over {max_body} bytes"
        if time.monotonic() > deadline:
            return False, f"{resp.status_code}, body not finished within the deadline"
    return resp.status_code == 200, str(resp.status_code)


def exit_code_as_shell(code: int | None) -> int | None:
    """Popen reports death by signal N as -N; shells, systemd and docker say 128+N."""
    if code is None or code >= 0:
        return code
    return 128 - code


class Supervisor:
    """Starts services in depends_on order, each in its own process group and session."""

    def __init__(
        self,
        contract: Contract,
        *,
        marker: str,
        canary: str = "",
        log_dir: Path | None = None,
        extra_env: dict[str, str] | None = None,
        on_event: Callable[[Event], None] | None = None,
    ):
        self.contract = contract
        self.marker = marker
        self.canary = canary
        self.log_dir = log_dir
        self.extra_env = extra_env or {}
        self.running: dict[str, Running] = {}
        self.records: dict[tuple[int, float], ProcRecord] = {}
        self._emit: Callable[[Event], None] = on_event or (lambda event: None)
        self._client = httpx.Client(trust_env=False)
        self._lock = threading.Lock()
        self.subreaper = False
        self._baseline: set[tuple[int, float]] = set()
        self.escaped: list[dict[str, Any]] = []
        self.cgroup: Path | None = None  # this run's cgroup while the toolkit is in it
        self.cgroup_used: str | None = None  # for evidence: the path, also after removal
        self._home_cgroup: Path | None = None
        self._cgroup_planned: Path | None = None  # named in the run file before it is made
        self._abort = threading.Event()
        self._file_lock = threading.Lock()
        self._watchdog: Watchdog | None = None

    # ------------------------------------------------------------ ownership
    def _reclaim(self) -> None:
        """A run file left by a toolkit that died (kill -9): stop its services, so a rerun works.

        The file is only a hint: a process named in it is signalled only when it still
        carries that run's marker in its environment, so a forged or stale file cannot make
        the toolkit kill someone else's process.
        """
        emptied = remove_empty_cgroups()
        if emptied:
            self._emit(CgroupsRemoved(emptied))
        path = run_file(self.contract)
        doc = read_run_file(path)
        if doc is None:
            return
        owner = ProcRecord(
            "toolkit", int(doc.get("owner_pid", 0)), float(doc.get("owner_create", 0)), []
        )
        if owner.alive() and owner.pid != os.getpid():
            raise TargetError(
                f"the stack of {self.contract.name} is run by another toolkit (pid {owner.pid}); "
                f"stop it first (toolkit stack down)"
            )
        owned, refused = owned_processes(doc)
        kill_owned(owned)
        in_cgroup = reclaim_cgroup(doc, keep={os.getpid()})
        self._emit(SupervisorReclaimed([p.pid for p in owned], str(path), refused, in_cgroup))
        path.unlink(missing_ok=True)

    def _write_run_file(self) -> None:
        """Written before the first spawn and after every change, so a kill -9 at any moment
        leaves a file naming the run marker every started process carries."""
        me = psutil.Process()
        with self._lock:
            doc = {"contract": self.contract.name, "marker": self.marker, "owner_pid": me.pid,
                   "owner_create": me.create_time(),
                   "cgroup": str(cgroup) if (cgroup := self.cgroup or self._cgroup_planned)
                   else None,
                   "services": {n: {"pid": r.pid} for n, r in self.running.items()},
                   "records": [asdict(r) for r in self.records.values()]}
        with self._file_lock:
            replace_file(run_file(self.contract), json.dumps(doc, indent=2).encode())

    # ------------------------------------------------------------ start
    def start_all(self) -> dict[str, float]:
        """Start everything; on any failure stop what was started and raise TargetError."""
        ensure_key_file(self.contract.auth)
        self._reclaim()
        self._preflight_ports()
        self.subreaper = platform.become_child_subreaper()
        self._watchdog = Watchdog(run_file(self.contract), os.getpid())
        self._watchdog.start()  # before the baseline: it is ours, never an escaped descendant
        self._baseline = {(p.pid, _create_time(p)) for p in _descendants()}
        startup: dict[str, float] = {}
        try:
            self._enter_cgroup()
            self._write_run_file()
            for level in start_levels(self.contract):
                for svc in level:
                    self._spawn(svc)
                    self._write_run_file()
                startup.update(self._await_level(level))
            self._write_run_file()
        except BaseException:
            self._abort.set()
            self.stop_all()
            raise
        return startup

    def _enter_cgroup(self) -> None:
        """Linux: move the toolkit into a fresh cgroup named by the run marker just before
        the first spawn. Every service and every descendant, daemonized or not, inherits it
        at fork, with no window in which one is outside; the toolkit leaves at stop."""
        if self.cgroup is not None:
            return
        self._cgroup_planned = platform.run_cgroup_path(self.marker)
        self._write_run_file()  # names the cgroup before it exists: a kill -9 now leaks nothing
        path = platform.create_run_cgroup(self.marker)
        home = platform.current_cgroup() if path else None
        if path is None or home is None or not platform.join_cgroup(path):
            if path is not None:
                platform.remove_cgroup(path, timeout=0)
            self._cgroup_planned = None
            return
        self.cgroup, self._home_cgroup, self.cgroup_used = path, home, str(path)

    def _leave_cgroup(self) -> list[dict[str, Any]]:
        """Back to the original cgroup; whatever is still in the run's cgroup is a leftover:
        named, killed, and the cgroup removed."""
        path, home = self.cgroup, self._home_cgroup
        if path is None or home is None:
            return []
        platform.join_cgroup(home)
        found = _sweep(lambda: cgroup_processes(path, keep={os.getpid()}),
                       "cgroup-member-after-stop")
        if platform.remove_cgroup(path):
            self.cgroup = self._cgroup_planned = None
        return found

    def _await_level(self, level: list[Service]) -> dict[str, float]:
        """Wait for one start level; on a signal (KeyboardInterrupt) do not wait for the probes."""
        pool = ThreadPoolExecutor(max_workers=max(1, len(level)))
        try:
            return dict(pool.map(self._await_health, level))
        finally:
            pool.shutdown(wait=False, cancel_futures=True)

    def _preflight_ports(self) -> None:
        for svc in self.contract.services:
            if svc.port is not None and port_in_use(svc.host, svc.port):
                owners = [describe(x["pid"], x["cmdline"]) for x in listeners_on([svc.port])]
                who = f" (held by {owners[0]})" if owners else ""
                raise TargetError(
                    f"service {svc.name!r}: port {svc.port} on {svc.host} is already in use{who}; "
                    f"the toolkit never signals what it did not start: stop "
                    f"whatever holds it or change the port in the contract"
                )

    def variables(self, svc: Service) -> dict[str, Any]:
        return {**self.contract.base_vars(), "port": svc.port if svc.port is not None else "",
                "canary_secret": self.canary}

    def _spawn(self, svc: Service) -> None:
        argv = [str(a) for a in expand(svc.command, self.variables(svc))]
        exe = argv[0]
        resolved = exe if os.sep in exe else shutil.which(exe)
        if not resolved or not os.path.exists(resolved):
            raise TargetError(
                f"service {svc.name!r}: command not found: {exe!r}; install it or fix "
                "services.command"
            )
        variables = self.variables(svc)
        env = {**os.environ, **expand(self.contract.env, variables), **expand(svc.env, variables),
               **self.extra_env, MARKER_ENV: self.marker}
        if not svc.cwd.is_dir():
            raise TargetError(f"service {svc.name!r}: cwd {str(svc.cwd)!r} is not a folder")
        log = self._open_log(svc)
        out = subprocess.PIPE if log else None
        try:
            popen = subprocess.Popen(  # nosec B603
                argv, cwd=svc.cwd, env=env, stdin=subprocess.DEVNULL, stdout=out,
                stderr=subprocess.STDOUT, **platform.spawn_kwargs())
        except OSError as exc:
            raise TargetError(
                f"service {svc.name!r}: cannot start {exe!r}: {exc.strerror}"
            ) from None
        if log and popen.stdout is not None:
            log.start(popen.stdout)
        run = Running(svc, popen, time.monotonic(), log=log)
        self.running[svc.name] = run
        self._record(svc.name, popen.pid)
        self._emit(ServiceSpawned(svc.name, popen.pid, argv))

    def _open_log(self, svc: Service) -> CappedLog | None:
        target = (
            svc.logs[0]
            if svc.logs
            else (self.log_dir / f"{svc.name}.log" if self.log_dir else None)
        )
        if target is None:
            return None
        try:
            return CappedLog(target, svc.log_max_bytes, svc.log_backups)
        except OSError as exc:
            raise TargetError(f"service {svc.name!r}: cannot open its log {str(target)!r}: "
                              f"{exc.strerror}") from None

    def _await_health(self, svc: Service) -> tuple[str, float]:
        run = self.running[svc.name]
        deadline = run.started_at + svc.startup_timeout_s
        url = svc.health_url
        while not self._abort.is_set():
            code = run.popen.poll()
            if code is not None:
                raise TargetError(
                    f"service {svc.name!r} exited with code {code} before it became healthy; "
                    f"see its log{self._log_hint(svc)}"
                )
            healthy, last = (True, "") if url is None else probe(self._client, url, timeout=1.0)
            if healthy:
                run.healthy_at = time.monotonic()
                self.snapshot()
                self._emit(ServiceHealthy(svc.name, run.healthy_at - run.started_at))
                return svc.name, run.healthy_at - run.started_at
            if time.monotonic() > deadline:
                raise TargetError(f"service {svc.name!r} did not become healthy at {url} within "
                                  f"{svc.startup_timeout_s:g} s (last probe: {last}); see its "
                                  f"log{self._log_hint(svc)}")
            time.sleep(POLL_S)
        raise TargetError(f"service {svc.name!r}: start abandoned")

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
        before = len(self.records)
        for name, run in list(self.running.items()):
            try:
                children = psutil.Process(run.pid).children(recursive=True)
            except psutil.NoSuchProcess:
                continue
            for child in children:
                self._record(name, child.pid)
        if len(self.records) != before and run_file(self.contract).exists():
            self._write_run_file()

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
        self.escaped.extend(self._sweep_escaped())
        platform.reap_children()
        self.escaped.extend(self._leave_cgroup())
        run_file(self.contract).unlink(missing_ok=True)
        if self._watchdog is not None:
            self._watchdog.dismiss()
            self._watchdog = None
        return results

    def _sweep_escaped(self) -> list[dict[str, Any]]:
        """Descendants that left their service's tree (double fork, setsid, empty environment).

        As a child subreaper (Linux) every orphan of a service re-parents to us, so after the
        services stopped any new descendant outside our own session is one of theirs (services
        run in sessions of their own, and nothing can join ours). Named, then killed: it is
        ours. Without a subreaper the list is empty and run markers are the fallback.
        """
        if not self.subreaper:
            return []
        return _sweep(lambda: [p for p in _descendants() if self._escaped(p)],
                      "escaped-descendant")

    def _escaped(self, proc: psutil.Process) -> bool:
        if (proc.pid, _create_time(proc)) in self._baseline:
            return False
        if _status(proc) == psutil.STATUS_ZOMBIE:
            return False
        session = platform.session_of(proc.pid)
        return session is not None and session != platform.session_of(os.getpid())

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
        log = run.log.finish().as_dict() if run.log else None
        if log and log["cut"]:
            self._emit(ServiceLogCut(name, log))
        shell_code = exit_code_as_shell(code)
        exit_ok = escalated or shell_code in run.service.stop_exit_codes
        result = StopResult(name, time.monotonic() - t0, escalated, shell_code, leftovers,
                            exit_ok, log)
        self._emit(ServiceStopped(**asdict(result)))
        return result

    def _kill_tree(self, name: str, run: Running) -> None:
        pids = [r.pid for r in self.records.values() if r.service == name and r.alive()]
        platform.force_kill(pids, group_leader=run.pid)

    def _leftovers(self, name: str) -> list[dict[str, Any]]:
        """Recorded descendants still alive after their service exited: name them, then kill
        them.
        """
        time.sleep(0)  # let the kernel finish delivering the group signal
        alive = [r for r in self.records.values() if r.service == name and r.alive()]
        out = []
        for rec in alive:
            out.append(
                {"pid": rec.pid, "cmdline": rec.cmdline, "check": "descendant-alive-after-stop"}
            )
            platform.kill_process(rec.pid, rec.create_time)
        return out

    def owns(self, pid: int) -> bool:
        """Only what this returns True for may ever be signalled: a process this supervisor
        recorded in a service's tree, one carrying this run's marker, or (as subreaper) a
        descendant of ours outside our own session."""
        try:
            proc = psutil.Process(pid)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            return False
        if (pid, _create_time(proc)) in self.records:
            return True
        if carries_marker(pid, self.marker):
            return True
        return self.subreaper and proc in _descendants() and self._escaped(proc)

    def pids(self) -> dict[str, int]:
        return {name: run.pid for name, run in self.running.items()}

    def close(self) -> None:
        self._client.close()


def _sweep(find: Callable[[], list[psutil.Process]], check: str) -> list[dict[str, Any]]:
    """Name and kill what ``find`` proves is ours, looking again while more appear (a daemon
    may fork once more while we look)."""
    found: list[dict[str, Any]] = []
    for _ in range(5):
        fresh = find()
        if not fresh:
            break
        for proc in fresh:
            found.append({"pid": proc.pid, "cmdline": _safe_cmdline(proc), "check": check})
            platform.kill_process(proc.pid, _create_time(proc))
        psutil.wait_procs(fresh, timeout=2)
        platform.reap_children()
    return found


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


def replace_file(path: Path, data: bytes) -> None:
    """Atomic against a kill -9 of the toolkit (rename), without an fsync per service: the
    run file only has to outlive the toolkit process, not the machine (whose reboot ends
    the services too)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        tmp.write_bytes(data)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def read_run_file(path: Path) -> dict[str, Any] | None:
    """The run file as a dict; None when missing. An unreadable file is removed (it can name
    nothing that is still provably ours)."""
    try:
        doc = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        path.unlink(missing_ok=True)
        return None
    if not isinstance(doc, dict):
        path.unlink(missing_ok=True)
        return None
    return doc


def carries_marker(pid: int, marker: str) -> bool:
    """True when the process was started by the toolkit run that owns ``marker``."""
    env = platform.environ_of(pid)
    return bool(marker) and env is not None and env.get(MARKER_ENV) == marker


def owned_processes(doc: dict[str, Any]) -> tuple[list[psutil.Process], list[dict[str, Any]]]:
    """The processes a run file may have us signal, and those it names that we refuse to.

    A record counts only while the process is the same one (pid and create time) and still
    carries the run's marker; every other process carrying the marker is added (spawned
    just before a kill -9, before the file was updated).
    """
    marker = str(doc.get("marker") or "")
    owned: dict[int, psutil.Process] = {}
    refused: list[dict[str, Any]] = []
    for raw in doc.get("records", []) if isinstance(doc.get("records"), list) else []:
        try:
            rec = ProcRecord(str(raw["service"]), int(raw["pid"]), float(raw["create_time"]),
                             [str(x) for x in raw.get("cmdline", [])])
        except (KeyError, TypeError, ValueError):
            continue
        if not rec.alive():
            continue
        if carries_marker(rec.pid, marker):
            owned[rec.pid] = psutil.Process(rec.pid)
        else:
            refused.append({"pid": rec.pid, "cmdline": _cmdline(rec.pid),
                            "reason": "does not carry this run's marker"})
    for proc in processes_with_marker(marker) if marker else []:
        owned.setdefault(proc.pid, proc)
    return list(owned.values()), refused


def kill_owned(owned: list[psutil.Process]) -> None:
    """SIGKILL processes proven ours (pid and create time re-checked) and wait for them."""
    for proc in owned:
        platform.kill_process(proc.pid, _create_time(proc))
    psutil.wait_procs(owned, timeout=5)


def reclaim_processes(doc: dict[str, Any]) -> int:
    """Stop what a run file proves is ours (the watchdog's reclaim); returns the count."""
    owned, _refused = owned_processes(doc)
    kill_owned(owned)
    return len(owned) + len(reclaim_cgroup(doc, keep={os.getpid()}))


def cgroup_processes(path: Path, keep: set[int]) -> list[psutil.Process]:
    """Live members of a run cgroup, except the pids in ``keep`` (live toolkits)."""
    out = []
    for pid in platform.cgroup_members(path):
        if pid in keep:
            continue
        try:
            proc = psutil.Process(pid)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
        if _status(proc) not in ("", psutil.STATUS_ZOMBIE):
            out.append(proc)
    return out


def reclaim_cgroup(doc: dict[str, Any], keep: set[int]) -> list[int]:
    """Kill every member of the run file's cgroup but ``keep``, then remove the cgroup.

    Finds what a kill -9 of the toolkit orphaned even when it carries no marker (a daemon
    that double-forked, called setsid and exec'd with an empty environment): the members
    of a run's cgroup are that run's processes by construction. Only a cgroup at
    ``<cgroup mount>/release-gate-toolkit/<the file's marker>`` is ever looked at.
    """
    raw, marker = doc.get("cgroup"), str(doc.get("marker") or "")
    if not isinstance(raw, str) or not raw or not platform.is_run_cgroup(Path(raw), marker):
        return []
    path = Path(raw)
    killed: list[int] = []
    for _ in range(5):
        members = cgroup_processes(path, keep)
        if not members:
            break
        for proc in members:
            if platform.kill_process(proc.pid, _create_time(proc)):
                killed.append(proc.pid)
        psutil.wait_procs(members, timeout=2)
        platform.reap_children()
    platform.remove_cgroup(path, timeout=0 if cgroup_processes(path, set()) else 2.0)
    return killed


EMPTY_CGROUP_GRACE_S = 10.0


def remove_empty_cgroups(min_age_s: float = EMPTY_CGROUP_GRACE_S) -> list[str]:
    """Remove the empty run cgroups killed toolkits left (see platform.empty_run_cgroups):
    a toolkit killed between creating its cgroup and joining it leaves one behind."""
    removed = []
    for path in platform.empty_run_cgroups(min_age_s):
        if platform.remove_cgroup(path, timeout=0):
            removed.append(str(path))
    return removed


def describe(pid: int | None, cmdline: list[str]) -> str:
    """'pid 123 (python -m http.server)' for messages: one line, each argument cut at 60
    characters and the whole at 300 (a long ``-c`` script does not hide the arguments after
    it); a foreign process's newlines, tabs and terminal control characters (an escape
    sequence in its argv) are shown as spaces, never passed to the terminal."""
    if pid is None:
        return "a process the toolkit cannot see"
    text = " ".join(_short(a, 60) for a in cmdline)
    text = " ".join("".join(ch if ch.isprintable() else " " for ch in _short(text, 300)).split())
    return f"pid {pid} ({text})" if text else f"pid {pid}"


def _short(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit - 1] + "…"


def _create_time(proc: psutil.Process) -> float:
    try:
        return float(proc.create_time())
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return 0.0


def _status(proc: psutil.Process) -> str:
    try:
        return str(proc.status())
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return ""


def _descendants() -> list[psutil.Process]:
    try:
        return list(psutil.Process().children(recursive=True))
    except psutil.NoSuchProcess:  # pragma: no cover - we are alive
        return []
