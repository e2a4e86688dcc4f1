"""A static file server (raw sockets) with a hostile connection habit, for the
unanswered-payload rule.

    python -m tests.targets.http_hostile --port N --root DIR --mode MODE

Serves files below ROOT with realpath containment (it never traverses). MODE:
``hang-after-reply`` answers each request, then holds the connection open without reading
(a reused connection gets no reply); ``hang-malicious`` never answers a request that looks
like an attack (dot segments, percent-encoding, backslashes, absolute paths, canary names)
and answers the rest; ``drop-malicious`` closes the connection without a reply on those.
"""

from __future__ import annotations

import argparse
import os
import socket
import threading
import time
from urllib.parse import unquote

MARKS = ("..", "%", "\\", "passwd", "canary", "//")


def looks_malicious(target: str) -> bool:
    path = target.split("?", 1)[0]
    return any(m in target for m in MARKS) or path.startswith("/tmp") or "/etc" in path


def answer(root: str, target: str) -> bytes:
    path = unquote(target.split("?", 1)[0]).lstrip("/")
    full = os.path.realpath(os.path.join(root, path))
    if (full == root or full.startswith(root + os.sep)) and os.path.isfile(full):
        with open(full, "rb") as fh:
            body, status = fh.read(), b"200 OK"
    else:
        body, status = b"not found\n", b"404 Not Found"
    return (b"HTTP/1.1 " + status + b"\r\nContent-Type: text/plain\r\nContent-Length: "
            + str(len(body)).encode() + b"\r\n\r\n" + body)


def handle(conn: socket.socket, root: str, mode: str) -> None:
    try:
        while True:
            data = b""
            while b"\r\n\r\n" not in data:
                chunk = conn.recv(65536)
                if not chunk:
                    return
                data += chunk
            target = data.split(b"\r\n", 1)[0].split(b" ")[1].decode("latin-1")
            if target == "/healthz":  # the supervisor's probe: answered, then closed
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nConnection: close"
                             b"\r\n\r\nok\n")
                return
            bad = looks_malicious(target)
            if bad and mode == "drop-malicious":
                return
            if bad and mode == "hang-malicious":
                time.sleep(3600)
            conn.sendall(answer(root, target))
            if mode == "hang-after-reply":
                time.sleep(3600)
    except (OSError, IndexError):
        return
    finally:
        conn.close()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--root", required=True)
    ap.add_argument("--mode", required=True,
                    choices=["hang-after-reply", "hang-malicious", "drop-malicious"])
    args = ap.parse_args()
    root = os.path.realpath(args.root)
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", args.port))
    srv.listen(64)
    while True:
        conn, _ = srv.accept()
        threading.Thread(target=handle, args=(conn, root, args.mode), daemon=True).start()


if __name__ == "__main__":
    main()
