"""voice-session: creates and destroys voice sessions (the seed's pipecat churn)."""

from __future__ import annotations

import os
import secrets
import time

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from targets.sonia.common import ClientError, Service

svc = Service("voice-session")
SESSIONS: dict[str, float] = {}
MAX_SESSIONS = 1000
TTL_S = float(
    os.environ.get("SONIA_SESSION_TTL_S", "300")
)  # sessions churn: they expire after 5 minutes


def _expire(now: float) -> None:
    for sid in [s for s, born in SESSIONS.items() if now - born > TTL_S]:
        del SESSIONS[sid]


@svc.route("/v1/sessions", methods=["POST"])
async def create(request: Request) -> Response:
    _expire(time.time())
    if len(SESSIONS) >= MAX_SESSIONS:
        raise ClientError("too many sessions", 429)
    sid = secrets.token_hex(8)
    SESSIONS[sid] = time.time()
    return JSONResponse({"id": sid}, status_code=201)


@svc.route("/v1/sessions", methods=["GET"])
async def count(request: Request) -> Response:
    return JSONResponse({"active": len(SESSIONS)})


@svc.route("/v1/sessions/{sid}", methods=["DELETE"])
async def destroy(request: Request) -> Response:
    if SESSIONS.pop(request.path_params["sid"], None) is None:
        raise ClientError("not found", 404)
    return JSONResponse({"deleted": True})


if __name__ == "__main__":
    svc.serve()
