"""Every OS-specific process call lives here.

The seed's team runs Windows. Keeping process groups, signals and tree kills behind
this one module means a Windows port (Job Objects, ``taskkill /T``) replaces this file
and nothing else. The rest of the toolkit only speaks in pids and psutil processes.
"""

from __future__ import annotations

import ctypes
import os
import re
import signal
import subprocess  # nosec B404
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import Any

import psutil

IS_WINDOWS = sys.platform.startswith("win")
IS_LINUX = sys.platform.startswith("linux")
PR_SET_CHILD_SUBREAPER = 36
PR_GET_CHILD_SUBREAPER = 37


def spawn_kwargs() -> dict[str, Any]:
    """Popen keyword arguments that put the child in its own process group and session."""
    if IS_WINDOWS:  # pragma: no cover - exercised on Windows only
        return {"creationflags": subprocess.CREATE_NEW_PROCESS_GROUP}  # type: ignore[attr-defined]
    return {"start_new_session": True}


def group_of(pid: int) -> int | None:
    """The process group id of ``pid``, or None when it is gone."""
    if IS_WINDOWS:  # pragma: no cover
        return pid
    try:
        return os.getpgid(pid)
    except (ProcessLookupError, PermissionError):
        return None


def session_of(pid: int) -> int | None:
    """The session id of ``pid``, or None when it is gone or the OS has no sessions."""
    if IS_WINDOWS:  # pragma: no cover
        return None
    try:
        return os.getsid(pid)
    except (ProcessLookupError, PermissionError):
        return None


def request_stop(pid: int) -> None:
    """Ask a service to stop: SIGTERM to its whole process group."""
    if IS_WINDOWS:  # pragma: no cover
        _signal_pid(pid, signal.CTRL_BREAK_EVENT)  # type: ignore[attr-defined]
        return
    pgid = group_of(pid)
    if pgid is not None and pgid == pid:
        try:
            os.killpg(pgid, signal.SIGTERM)
            return
        except (ProcessLookupError, PermissionError):
            pass
    _signal_pid(pid, signal.SIGTERM)


def force_kill(pids: list[int], group_leader: int | None = None) -> list[int]:
    """SIGKILL a group and every listed pid; returns the pids that were signalled."""
    killed: list[int] = []
    if group_leader is not None and not IS_WINDOWS:
        try:
            os.killpg(group_leader, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    for pid in pids:
        try:
            psutil.Process(pid).kill()
            killed.append(pid)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return killed


def kill_process(pid: int, create_time: float | None = None) -> bool:
    """Kill one process, but only if it is still the one we recorded (pids are reused)."""
    try:
        proc = psutil.Process(pid)
        if create_time is not None and abs(proc.create_time() - create_time) > 0.01:
            return False
        proc.kill()
        return True
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return False


def suspend(pid: int) -> None:
    """Freeze a process (SIGSTOP on POSIX)."""
    psutil.Process(pid).suspend()


def resume(pid: int) -> None:
    """Thaw a process frozen by :func:`suspend`."""
    psutil.Process(pid).resume()


def reap_children() -> list[int]:
    """Collect exit statuses of our own dead children so none lingers as a zombie."""
    reaped: list[int] = []
    if IS_WINDOWS:  # pragma: no cover
        return reaped
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return reaped
        if pid == 0:
            return reaped
        reaped.append(pid)


def _signal_pid(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def become_child_subreaper() -> bool:
    """Make every orphaned descendant re-parent to this process instead of init.

    Linux only (prctl PR_SET_CHILD_SUBREAPER): a service that double-forks, calls setsid and
    execs with an empty environment still ends up as our child, so it can be found and
    stopped. Returns False where the OS has no such thing (the caller then relies on run
    markers and recorded process trees alone).
    """
    if not IS_LINUX:
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return bool(libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0)
    except (OSError, AttributeError):
        return False


def is_child_subreaper() -> bool:
    """Whether :func:`become_child_subreaper` is in effect for this process."""
    if not IS_LINUX:
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        flag = ctypes.c_int(0)
        return bool(libc.prctl(PR_GET_CHILD_SUBREAPER, ctypes.byref(flag), 0, 0, 0) == 0
                    and flag.value)
    except (OSError, AttributeError):
        return False


def stop_signal_names() -> list[str]:
    """The signals :func:`stop_signals_as_interrupt` turns into a clean stop."""
    names = ["SIGINT", "SIGTERM", "SIGHUP", "SIGBREAK"]
    return [n for n in names if hasattr(signal, n)]


@contextmanager
def stop_signals_as_interrupt() -> Iterator[None]:
    """SIGTERM, SIGHUP and SIGINT (even when SIGINT started ignored, as in scripts run with
    ``&``) raise KeyboardInterrupt once in the main thread; repeats are ignored, so the
    cleanup the first one started is not cut short. Outside the main thread: no change.
    """
    owner = os.getpid()
    fired = False

    def handler(signum: int, frame: FrameType | None) -> None:
        nonlocal fired
        if os.getpid() != owner:  # a forked child inherited us: die as asked
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)
            return
        if not fired:
            fired = True
            raise KeyboardInterrupt(signal.Signals(signum).name)

    previous: dict[int, Any] = {}
    try:
        for name in stop_signal_names():
            sig = getattr(signal, name)
            previous[sig] = signal.signal(sig, handler)
    except ValueError:  # not the main thread
        _restore(previous)
        yield
        return
    try:
        yield
    finally:
        _restore(previous)


def _restore(previous: dict[int, Any]) -> None:
    for sig, old in previous.items():
        signal.signal(sig, old if old is not None else signal.SIG_DFL)


def environ_of(pid: int) -> dict[str, str] | None:
    """The environment a process was started with, or None when it cannot be read."""
    try:
        return dict(psutil.Process(pid).environ())
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess, OSError):
        return None


def namespace_id() -> dict[str, str]:
    """This boot and this pid namespace: pids compare only within one namespace of one boot."""
    out = {"boot": "", "pidns": ""}
    try:
        with open("/proc/sys/kernel/random/boot_id", encoding="ascii") as fh:
            out["boot"] = fh.read().strip()
        out["pidns"] = os.readlink("/proc/self/ns/pid")
    except OSError:
        pass
    return out


def ignore_interactive_signals() -> None:
    """A helper process of ours (the watchdog) ignores Ctrl-C and hang-ups: the toolkit
    handles those and then dismisses the helper itself."""
    for name in ("SIGINT", "SIGHUP"):
        if hasattr(signal, name):
            signal.signal(getattr(signal, name), signal.SIG_IGN)


# ---------------------------------------------------------------- per-run cgroups (Linux)
CGROUP_PARENT = "release-gate-toolkit"
_CGROUP_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,200}")


def cgroup_hierarchy() -> tuple[Path, str] | None:
    """A cgroup hierarchy to hold a run: (mount point, "cgroup2" or "pids"), or None.

    cgroup2 is preferred; a v1 ``pids`` hierarchy is the fallback. None off Linux or when
    neither is mounted read-write.
    """
    if not IS_LINUX:
        return None
    try:
        with open("/proc/self/mounts", encoding="utf-8") as fh:
            rows = [line.split() for line in fh]
    except OSError:
        return None
    found: dict[str, Path] = {}
    for row in rows:
        if len(row) < 4 or "rw" not in row[3].split(","):
            continue
        if row[2] == "cgroup2":
            found.setdefault("cgroup2", Path(row[1]))
        elif row[2] == "cgroup" and "pids" in row[3].split(","):
            found.setdefault("pids", Path(row[1]))
    for kind in ("cgroup2", "pids"):
        if kind in found:
            return found[kind], kind
    return None


# a run marker's shape, "<what>-<token>" (cycle-…, soak-…, stack-…): the only names the
# toolkit gives the cgroups it creates, and the only empty ones it ever removes unasked
_RUN_CGROUP_NAME = re.compile(r"[a-z]+-[A-Za-z0-9][A-Za-z0-9._-]{0,190}")


def run_cgroup_path(name: str) -> Path | None:
    """Where :func:`create_run_cgroup` would create ``name``; None when it cannot here."""
    hierarchy = cgroup_hierarchy()
    if hierarchy is None or not _CGROUP_NAME.fullmatch(name):
        return None
    return hierarchy[0] / CGROUP_PARENT / name


def create_run_cgroup(name: str) -> Path | None:
    """``<mount>/release-gate-toolkit/<name>``, created; None when not available here."""
    path = run_cgroup_path(name)
    if path is None:
        return None
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError:
        return None
    return path if (path / "cgroup.procs").exists() else None


def current_cgroup() -> Path | None:
    """This process's cgroup in the hierarchy :func:`cgroup_hierarchy` picks."""
    hierarchy = cgroup_hierarchy()
    if hierarchy is None:
        return None
    mount, kind = hierarchy
    try:
        with open("/proc/self/cgroup", encoding="utf-8") as fh:
            lines = fh.read().splitlines()
    except OSError:
        return None
    for line in lines:
        _, controllers, rel = line.split(":", 2)
        if (kind == "cgroup2" and controllers == "") or kind in controllers.split(","):
            return mount / rel.lstrip("/")
    return None


def join_cgroup(path: Path, pid: int | None = None) -> bool:
    """Move a whole process (every thread: ``cgroup.procs``) into ``path``."""
    try:
        (path / "cgroup.procs").write_text(f"{pid or os.getpid()}\n")
        return True
    except OSError:
        return False


def cgroup_members(path: Path) -> list[int]:
    """The pids in a cgroup (as seen from our pid namespace); [] when it is gone."""
    try:
        text = (path / "cgroup.procs").read_text()
    except OSError:
        return []
    return [int(x) for x in text.split() if x.isdigit() and int(x) > 0]


def is_run_cgroup(path: Path, name: str) -> bool:
    """Only ``<a cgroup mount>/release-gate-toolkit/<name>`` may be emptied or removed."""
    if not IS_LINUX or not _CGROUP_NAME.fullmatch(name) or path.name != name:
        return False
    if path.parent.name != CGROUP_PARENT or path.is_symlink():
        return False
    try:
        with open("/proc/self/mounts", encoding="utf-8") as fh:
            mounts = {Path(r.split()[1]) for r in fh if r.split()[2] in ("cgroup", "cgroup2")}
    except (OSError, IndexError):
        return False
    return path.parent.parent in mounts and (path / "cgroup.procs").is_file()


def empty_run_cgroups(min_age_s: float) -> list[Path]:
    """Run cgroups the toolkit created and a killed toolkit left empty: children of
    ``<mount>/release-gate-toolkit/`` named like a run marker, with no member and no child
    cgroup, made at least ``min_age_s`` ago (a live run's cgroup is empty only for the
    instant between its creation and the toolkit joining it). Nothing else is listed."""
    hierarchy = cgroup_hierarchy()
    if hierarchy is None:
        return []
    parent = hierarchy[0] / CGROUP_PARENT
    try:
        children = [p for p in parent.iterdir() if p.is_dir() and not p.is_symlink()]
    except OSError:
        return []
    now = time.time()
    found = []
    for path in children:
        if not _RUN_CGROUP_NAME.fullmatch(path.name) or not is_run_cgroup(path, path.name):
            continue
        try:
            made = path.stat().st_mtime  # a cgroup folder's mtime is its creation time
            empty = not (path / "cgroup.procs").read_text().split()
            leaf = not any(p.is_dir() for p in path.iterdir())
        except OSError:
            continue
        if empty and leaf and now - made >= min_age_s:
            found.append(path)
    return found


def remove_cgroup(path: Path, timeout: float = 2.0) -> bool:
    """rmdir an emptied run cgroup (the kernel refuses while a member remains)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            path.rmdir()
            return True
        except FileNotFoundError:
            return True
        except OSError:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.02)


@contextmanager
def default_sigterm() -> Iterator[None]:
    """Pool workers must not inherit the gate's SIGTERM-as-Ctrl-C handler.

    A worker that runs a Python handler when the pool terminates it can die holding the
    task queue's lock, and its siblings then wait on that lock for ever.
    """
    import threading

    if threading.current_thread() is not threading.main_thread() or sys.platform.startswith("win"):
        yield
        return
    previous = signal.signal(signal.SIGTERM, signal.SIG_DFL)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
