"""A static file server (stdlib) with the habits real servers have, each behind a flag.

    python -m tests.targets.http_quirks --port N --root DIR [--traverse] [--gzip|--deflate]
        [--chunked] [--soft-404] [--spa] [--token T [--soft-auth]] [--host NAME] [--slow S]

--traverse    joins the decoded request path to ROOT with no containment (a real traversal);
              without it, paths are normalized and contained in ROOT.
--first-component  refuses a path whose first component is '..' (the string, unresolved),
              then opens it as given (gradio 4.10's check): a real folder then '../..' escapes.
--gzip        compresses every body (Content-Encoding: gzip), --deflate likewise.
--chunked     sends bodies with Transfer-Encoding: chunked, in small chunks.
--soft-404    a missing file is HTTP 200 with an error page.
--spa         a missing file is HTTP 200 with ROOT's index page (single-page-app fallback).
--token T     every request needs 'Authorization: Bearer T'; a refusal is 401, or with
              --soft-auth HTTP 200 with an error document.
--host NAME   a request whose Host header is not NAME[:port] is refused (421).
--slow S      every reply waits S seconds.
--redirect    a missing file is a 302 to /index.html?from=<decoded path>, written into the
              Location header as it is (CR and LF included: response splitting);
--redirect-safe  the same with the path percent-encoded.
"""

from __future__ import annotations

import argparse
import gzip
import http.server
import os
import posixpath
import time
import zlib
from urllib.parse import quote, unquote


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--root", required=True)
    for flag in ("--traverse", "--gzip", "--deflate", "--chunked", "--soft-404", "--spa",
                 "--soft-auth", "--redirect", "--redirect-safe", "--first-component"):
        ap.add_argument(flag, action="store_true")
    ap.add_argument("--token", default=None)
    ap.add_argument("--host", default=None)
    ap.add_argument("--slow", type=float, default=0.0)
    args = ap.parse_args()
    root = os.path.realpath(args.root)

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *a: object) -> None:
            pass

        def do_GET(self) -> None:
            time.sleep(args.slow)
            if self.path == "/healthz":
                return self._send(200, b"ok")
            host = (self.headers.get("Host") or "").split(":")[0]
            if args.host and host != args.host:
                return self._send(421, b"misdirected request: unknown host")
            if args.token and self.headers.get("Authorization") != f"Bearer {args.token}":
                if args.soft_auth:
                    return self._send(200, b'{"ok": false, "error": "unauthorized"}')
                return self._send(401, b"token required")
            body = self._file(unquote(self.path.split("?")[0]))
            if body is not None:
                return self._send(200, body)
            if args.redirect or args.redirect_safe:
                where = unquote(self.path)
                where = quote(where, safe="/") if args.redirect_safe else where
                self.send_response(302)
                self.send_header("Location", f"/index.html?from={where}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return None
            if args.soft_404:
                return self._send(200, b"<html><h1>Oops</h1><p>That page is gone.</p></html>")
            if args.spa:
                index = self._file("/index.html")
                return self._send(200, index or b"<html>app</html>")
            return self._send(404, b"not found")

        def _file(self, path: str) -> bytes | None:
            if args.first_component:
                rel = path.lstrip("/")
                if rel.split("/")[0] == ".." or os.path.isabs(rel):
                    return None
                real = os.path.join(root, rel)
            elif args.traverse:
                real = os.path.join(root, path.lstrip("/"))
            else:
                clean = posixpath.normpath("/" + path.lstrip("/"))
                real = os.path.realpath(os.path.join(root, clean.lstrip("/")))
                if os.path.commonpath([real, root]) != root:
                    return None
            if os.path.isdir(real):
                return "\n".join(sorted(os.listdir(real))).encode()
            try:
                with open(real, "rb") as fh:
                    return fh.read()
            except OSError:
                return None

        def _send(self, code: int, body: bytes) -> None:
            self.send_response(code)
            if args.gzip:
                body = gzip.compress(body)
                self.send_header("Content-Encoding", "gzip")
            elif args.deflate:
                body = zlib.compress(body)
                self.send_header("Content-Encoding", "deflate")
            if args.chunked:
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                for i in range(0, len(body), 7):
                    part = body[i:i + 7]
                    self.wfile.write(f"{len(part):x}\r\n".encode() + part + b"\r\n")
                self.wfile.write(b"0\r\n\r\n")
                return
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    http.server.ThreadingHTTPServer(("127.0.0.1", args.port), Handler).serve_forever()


if __name__ == "__main__":
    main()
