"""audit-ledger: the sixth service. An append-only, hash-chained ledger of tool executions.

openclaw reports every executed tool here over a signed call, so an auditor can prove
after a run which tools ran, in order, and that no entry was removed or edited.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
from pathlib import Path

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from targets.sonia.common import ClientError, Service, json_body

svc = Service("audit-ledger")
LEDGER = Path(os.environ.get("SONIA_LEDGER", "state/audit/ledger.jsonl"))
_lock = threading.Lock()


def _last_hash() -> str:
    if not LEDGER.exists():
        return "0" * 64
    lines = LEDGER.read_bytes().splitlines()
    return hashlib.sha256(lines[-1]).hexdigest() if lines else "0" * 64


@svc.route("/v1/audit", methods=["POST"])
async def append(request: Request) -> Response:
    body = await json_body(request)
    if not isinstance(body.get("event"), str):
        raise ClientError("event must be a string")
    with _lock:
        LEDGER.parent.mkdir(parents=True, exist_ok=True)
        entry = {"ts": round(time.time(), 3), "prev": _last_hash(),
                 "event": body["event"], "tool": str(body.get("tool", ""))[:64]}
        with open(LEDGER, "ab") as fh:  # noqa: ASYNC230 - one short append under the lock
            fh.write(json.dumps(entry, sort_keys=True).encode() + b"\n")
    return JSONResponse({"appended": True})


@svc.route("/v1/audit/verify", methods=["GET"])
async def verify(request: Request) -> Response:
    prev, n = "0" * 64, 0
    if LEDGER.exists():
        for n, line in enumerate(LEDGER.read_bytes().splitlines(), 1):
            if json.loads(line).get("prev") != prev:
                return JSONResponse({"ok": False, "broken_at": n})
            prev = hashlib.sha256(line).hexdigest()
    return JSONResponse({"ok": True, "entries": n})


if __name__ == "__main__":
    svc.serve()
