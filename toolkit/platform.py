"""Every OS-specific process call lives here.

The seed's team runs Windows. Keeping process groups, signals and tree kills behind
this one module means a Windows port (Job Objects, ``taskkill /T``) replaces this file
and nothing else. The rest of the toolkit only speaks in pids and psutil processes.
"""

from __future__ import annotations

import os
import signal
import subprocess  # nosec B404
import sys
from typing import Any

import psutil

IS_WINDOWS = sys.platform.startswith("win")


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
