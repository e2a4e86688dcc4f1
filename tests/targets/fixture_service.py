"""A tiny HTTP service that misbehaves on request, for supervisor and cycle tests.

python -m tests.targets.fixture_service --port N [--delay S] [--never-healthy]
    [--ignore-term] [--double-fork] [--unhealthy-after S] [--leak-listener]
    [--escape-on-term TOKEN] [--exit-code-on-term N] [--default-term] [--flood-log]
    [--endless-health] [--huge-health] [--escape-at-start TOKEN --escape-pid-file PATH]
"""

from __future__ import annotations

import argparse
import http.server
import os
import signal
import sys
import threading
import time


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--delay", type=float, default=0.0)
    ap.add_argument("--never-healthy", action="store_true")
    ap.add_argument("--ignore-term", action="store_true")
    ap.add_argument("--double-fork", action="store_true")
    ap.add_argument("--unhealthy-after", type=float, default=None)
    ap.add_argument("--leak-listener", action="store_true")
    ap.add_argument(
        "--ready-file", default=None, help="write the wall time the socket started listening"
    )
    ap.add_argument(
        "--leak-mb-per-s", type=float, default=0.0, help="grow resident memory steadily"
    )
    ap.add_argument(
        "--exit-after", type=float, default=None, help="die this many seconds after start"
    )
    ap.add_argument("--slow-ms", type=float, default=0.0, help="answer every request this late")
    ap.add_argument(
        "--fail-requests", action="store_true", help="answer 500 to everything but /healthz"
    )
    ap.add_argument("--escape-on-term", default=None, metavar="TOKEN",
                    help="on SIGTERM: double fork, setsid, exec a sleeper, empty environment")
    ap.add_argument("--exit-code-on-term", type=int, default=None,
                    help="on SIGTERM: exit with this code")
    ap.add_argument("--default-term", action="store_true", help="die by SIGTERM's default action")
    ap.add_argument("--flood-log", action="store_true", help="write to stdout as fast as possible")
    ap.add_argument("--endless-health", action="store_true",
                    help="/healthz: 200, chunked, never ends")
    ap.add_argument("--huge-health", action="store_true", help="/healthz: 200 with a 1 GiB body")
    ap.add_argument("--escape-at-start", default=None, metavar="TOKEN",
                    help="at start: the same escaping daemon as --escape-on-term")
    ap.add_argument("--escape-pid-file", default=None,
                    help="the escaped daemon writes its pid here")
    args = ap.parse_args()
    if args.escape_at_start:
        _escape(args.escape_at_start, args.escape_pid_file)
    if args.ignore_term:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    if args.double_fork:
        _daemonize()
    time.sleep(args.delay)
    started = time.monotonic()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path == "/healthz" and (args.endless_health or args.huge_health):
                _hostile_health(self, args.huge_health)
                return
            if args.slow_ms and self.path != "/healthz":
                time.sleep(args.slow_ms / 1000)
            sick = (
                (args.fail_requests and self.path != "/healthz")
                or args.never_healthy
                or (
                    args.unhealthy_after is not None
                    and time.monotonic() - started > args.unhealthy_after
                )
            )
            self.send_response(503 if sick else 200)
            self.end_headers()
            self.wfile.write(b"sick" if sick else b"ok")

        def log_message(self, *a: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    if args.leak_mb_per_s:
        threading.Thread(target=_leak, args=(args.leak_mb_per_s,), daemon=True).start()
    if args.exit_after is not None:
        threading.Timer(args.exit_after, lambda: os._exit(3)).start()
    if args.ready_file:
        with open(args.ready_file, "w") as fh:
            fh.write(repr(time.time()))
    # a child inherits the listening socket and outlives its parent
    if args.leak_listener and os.fork() == 0:
        os.setsid()
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        time.sleep(600)
        os._exit(0)
    if args.flood_log:
        threading.Thread(target=_flood, daemon=True).start()
    if args.default_term:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
    elif not args.ignore_term:
        signal.signal(signal.SIGTERM, lambda *a: _on_term(server, args))
    server.serve_forever()
    if args.exit_code_on_term is not None:
        os._exit(args.exit_code_on_term)
    sys.exit(0)


def _on_term(server: http.server.HTTPServer, args: argparse.Namespace) -> None:
    if args.escape_on_term:
        _escape(args.escape_on_term)
    threading.Thread(target=server.shutdown).start()


def _escape(token: str, pid_file: str | None = None) -> None:
    """The daemon that no tree walk and no environment marker can find."""
    if os.fork() == 0:
        os.setsid()
        if os.fork() == 0:
            code = "import time; time.sleep(600)"
            if pid_file:
                code = (f"import os, time; open({pid_file!r}, 'w').write(str(os.getpid())); "
                        "time.sleep(600)")
            os.execve(sys.executable, [sys.executable, "-c", code, token], {})
        os._exit(0)


def _flood() -> None:
    line = b"flood " * 10_000 + b"\n"
    out = sys.stdout.buffer
    while True:
        out.write(line)
        out.flush()


def _hostile_health(handler: http.server.BaseHTTPRequestHandler, huge: bool) -> None:
    handler.protocol_version = "HTTP/1.1"
    handler.send_response(200)
    block = b"0" * 65536
    try:
        if huge:
            handler.send_header("Content-Length", str(1 << 30))
            handler.end_headers()
            for _ in range((1 << 30) // len(block)):
                handler.wfile.write(block)
            return
        handler.send_header("Transfer-Encoding", "chunked")
        handler.end_headers()
        while True:
            handler.wfile.write(b"1\r\nx\r\n")
            handler.wfile.flush()
            time.sleep(0.05)
    except OSError:
        return


_HOARD: list[bytearray] = []


def _leak(mb_per_s: float) -> None:
    while True:
        _HOARD.append(bytearray(b"x" * int(mb_per_s * 1024 * 1024 / 10)))  # touched, so resident
        time.sleep(0.1)


def _daemonize() -> None:
    if os.fork() == 0:
        os.setsid()
        if os.fork() == 0:
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
            time.sleep(600)
            os._exit(0)
        os._exit(0)
    time.sleep(0.1)


if __name__ == "__main__":
    main()
