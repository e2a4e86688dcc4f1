"""A static file server (stdlib) that dies on a malformed request target, for restart tests.

    python -m tests.targets.http_files --port N --root DIR [--crash-on-nul] \
        [--token T [--naive-guard] [--trust-header NAME] [--rewrite-header NAME]]
        [--traverse] [--log FILE] [--spa] [--images-only]

Serves files below ROOT with realpath containment; redirects a folder without a trailing
slash (like every static server). With --crash-on-nul the whole process exits when a
request target holds ``%00`` (a crash the toolkit must report, restart and get past).
With --traverse it joins the decoded request path to ROOT as it comes, dot segments and
all, with no containment check (a real traversal, unlike the default normalising router).
--log FILE appends one line per request but /healthz: arrival time and request target.
--spa answers a missing file with ROOT/index.html (a single-page app's catch-all).
--images-only refuses (400) any file that is not an image, as an image server does.
--trust-header NAME skips the /admin guard when the request carries header NAME (a
framework's internal-subrequest marker); --rewrite-header NAME routes to the path in header
NAME after the guard judged the request line's path (a proxy-rewrite header).
"""

from __future__ import annotations

import argparse
import http.server
import os
import posixpath
import sys
import time
from urllib.parse import unquote


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--root", required=True)
    ap.add_argument("--crash-on-nul", action="store_true")
    ap.add_argument("--token", default=None, help="/admin/ needs 'Authorization: Bearer TOKEN'")
    ap.add_argument(
        "--naive-guard", action="store_true", help="guard the raw path, route the normalised one"
    )
    ap.add_argument("--traverse", action="store_true", help="no normalisation, no containment")
    ap.add_argument("--images-only", action="store_true", help="a non-image file: 400")
    ap.add_argument("--trust-header", default=None, help="guard skipped when this header is sent")
    ap.add_argument("--rewrite-header", default=None, help="route to this header's path")
    ap.add_argument("--log", default=None, help="append 'TIME TARGET' per request")
    ap.add_argument("--spa", action="store_true", help="missing file: ROOT/index.html")
    args = ap.parse_args()
    root = os.path.realpath(args.root)

    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, *a: object) -> None:
            pass

        def do_GET(self) -> None:
            if self.path == "/healthz":
                return self._send(200, b"ok")
            if args.log:
                with open(args.log, "a", encoding="utf-8") as fh:
                    fh.write(f"{time.time():.6f} {self.path}\n")
            if args.crash_on_nul and "%00" in self.path:
                sys.stderr.write("fatal: NUL in request target\n")
                os._exit(70)
            clean = posixpath.normpath("/" + unquote(self.path.split("?")[0]).lstrip("/"))
            guarded = self.path if args.naive_guard else clean
            trusted = bool(args.trust_header and self.headers.get(args.trust_header))
            if args.token and guarded.startswith("/admin") and not trusted and \
                    self.headers.get("Authorization") != f"Bearer {args.token}":
                return self._send(401, b"token required")
            rewrite = self.headers.get(args.rewrite_header) if args.rewrite_header else None
            if rewrite:
                clean = posixpath.normpath("/" + unquote(rewrite.split("?")[0]).lstrip("/"))
            if args.traverse:
                clean = unquote(self.path.split("?")[0])
            real = os.path.realpath(os.path.join(root, clean.lstrip("/")))
            if not args.traverse and os.path.commonpath([real, root]) != root:
                return self._send(404, b"not found")
            if args.images_only and not os.path.isdir(real) and \
                    not real.endswith((".svg", ".png")):
                return self._send(400, b"cannot parse image metadata")
            if os.path.isdir(real):
                if not self.path.endswith("/"):
                    self.send_response(301)
                    self.send_header("Location", self.path + "/")
                    self.end_headers()
                    return None
                return self._send(200, "\n".join(sorted(os.listdir(real))).encode())
            try:
                with open(real if os.path.exists(real) or not args.spa
                          else os.path.join(root, "index.html"), "rb") as fh:
                    return self._send(200, fh.read())
            except OSError:
                return self._send(404, b"not found")

        def _send(self, code: int, body: bytes) -> None:
            self.send_response(code)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    http.server.ThreadingHTTPServer(("127.0.0.1", args.port), Handler).serve_forever()


if __name__ == "__main__":
    main()
