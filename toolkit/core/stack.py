"""`toolkit stack up | status | down`: run the contract's stack by hand."""

from __future__ import annotations

import json
import os
import secrets
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import psutil
from rich.console import Console
from rich.table import Table

from toolkit.core import platform
from toolkit.core.contract import Contract
from toolkit.core.errors import TargetError
from toolkit.core.supervisor import (
    ProcRecord,
    StopResult,
    Supervisor,
    describe,
    owned_processes,
    probe,
    reclaim_cgroup,
    remove_empty_cgroups,
    run_file,
)


def state_file(c: Contract) -> Path:
    return run_file(c)


def health_table(c: Contract, pids: dict[str, int] | None = None) -> tuple[Table, bool]:
    table = Table(title=f"{c.name} {c.version}")
    for col in ("service", "port", "pid", "health"):
        table.add_column(col)
    all_ok = True
    with httpx.Client(trust_env=False) as client:
        for svc in c.services:
            url = svc.health_url
            ok, status = probe(client, url, timeout=2.0) if url else (True, "no health check")
            all_ok &= ok
            pid = str((pids or {}).get(svc.name, "-"))
            table.add_row(svc.name, str(svc.port or "-"), pid,
                          f"[green]{status}[/]" if ok else f"[red]{status}[/]")
    return table, all_ok


def up(c: Contract, console: Console, until: threading.Event | None = None,
       max_seconds: float | None = None) -> int:
    """Foreground: start, show health, wait for Ctrl-C, SIGTERM or SIGHUP (or ``until``),
    stop clean."""
    sup = Supervisor(c, marker=f"stack-{secrets.token_hex(6)}", canary=secrets.token_urlsafe(24))
    results = []
    with platform.stop_signals_as_interrupt():
        try:
            _serve(c, sup, console, until, max_seconds)
        except KeyboardInterrupt as exc:
            console.print(f"stopping ({exc or 'SIGINT'})...")
        finally:
            results = sup.stop_all()
            sup.close()
    return _report_stop(console, results, sup.escaped)


def _serve(c: Contract, sup: Supervisor, console: Console, until: threading.Event | None,
           max_seconds: float | None) -> None:
    t0 = time.monotonic()
    sup.start_all()
    table, _ = health_table(c, sup.pids())
    console.print(table)
    console.print(f"all {len(c.services)} services healthy in {time.monotonic() - t0:.2f} s; "
                  f"Ctrl-C (or SIGTERM) stops them")
    interval = float(c.defaults.health_interval_s)
    stop_at = None if max_seconds is None else time.monotonic() + max_seconds
    while not (until and until.is_set()) and (stop_at is None or time.monotonic() < stop_at):
        time.sleep(min(interval, 0.2))
        gone = [n for n, r in sup.running.items() if r.popen.poll() is not None]
        if gone:
            console.print(f"service(s) exited: {', '.join(gone)}; stopping the rest")
            return
        sup.snapshot()


def _report_stop(console: Console, results: list[StopResult], escaped: list[dict[str, Any]]) -> int:
    bad = [r for r in results if r.escalated or r.leftovers]
    for r in bad:
        console.print(f"[red]{r.service}: needed SIGKILL or left processes behind[/]")
    for r in results:
        if r.log and r.log["cut"]:
            console.print(f"{r.service}: log cut, {r.log['bytes_dropped']} bytes dropped "
                          f"({r.log['path']})")
    for item in escaped:
        who = describe(item["pid"], item["cmdline"])
        console.print(f"[red]escaped daemon {who}: found and killed[/]")
    return 1 if bad or escaped else 0


def _load_state(c: Contract) -> dict[str, Any] | None:
    try:
        return dict(json.loads(state_file(c).read_text()))
    except (OSError, ValueError):
        return None


def status(c: Contract, console: Console) -> int:
    st = _load_state(c)
    services = st.get("services") if st else None
    pids = {str(n): v["pid"] for n, v in services.items() if isinstance(v, dict) and
            isinstance(v.get("pid"), int)} if isinstance(services, dict) else {}
    table, ok = health_table(c, pids)
    console.print(table)
    if st is None:
        console.print("no stack started by `toolkit stack up` is recorded for this contract")
    return 0 if ok else 1


def down(c: Contract, console: Console, timeout: float | None = None) -> int:
    """Stop a stack recorded by `stack up` in another terminal; SIGKILL stragglers.

    Only processes that carry the recorded run's marker are signalled: a stale or forged
    run file cannot make us stop someone else's process.
    """
    for path in remove_empty_cgroups():
        console.print(f"removed {path}: an empty cgroup a killed toolkit left")
    st = _load_state(c)
    if st is None:
        raise TargetError(f"no running stack recorded for {c.name} ({state_file(c)} is missing)")
    owned, refused = owned_processes(st)
    for item in refused:
        who = describe(item["pid"], item["cmdline"])
        console.print(f"[yellow]not signalled: {who}: {item['reason']}[/]")
    for proc in owned:
        platform.request_stop(proc.pid)
    limit = (
        timeout if timeout is not None else max((s.stop_timeout_s for s in c.services), default=10)
    )
    _, stragglers = psutil.wait_procs(owned, timeout=limit)
    for proc in stragglers:
        platform.kill_process(proc.pid, proc.create_time() if proc.is_running() else None)
        console.print(f"[red]killed pid {proc.pid}: did not stop within {limit:g} s[/]")
    for pid in reclaim_cgroup(st, keep=_live_toolkits(st)):
        console.print(f"[red]killed pid {pid}: left in the run's cgroup (escaped daemon)[/]")
    state_file(c).unlink(missing_ok=True)
    services = st.get("services") if isinstance(st.get("services"), dict) else {}
    console.print(f"stopped {len(owned)} processes of {len(services or {})} services")
    return 1 if stragglers else 0


def _live_toolkits(st: dict[str, Any]) -> set[int]:
    """This process and the run's owner while it still runs: never killed from its cgroup."""
    keep = {os.getpid()}
    try:
        owner = ProcRecord("toolkit", int(st.get("owner_pid", 0)),
                           float(st.get("owner_create", 0)), [])
    except (TypeError, ValueError):
        return keep
    return keep | ({owner.pid} if owner.pid > 0 and owner.alive() else set())
