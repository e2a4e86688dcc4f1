"""api-gateway: the public entry. Streams chat as SSE and forwards actions to openclaw."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from targets.sonia.common import ClientError, Service, json_body, peer, sign

svc = Service("api-gateway")
ROUTER = peer("model-router", 7010)
OPENCLAW = peer("openclaw", 7040)


async def _relay(message: str) -> AsyncIterator[bytes]:
    body = json.dumps({"prompt": message, "max_tokens": 16}).encode()
    headers = {"content-type": "application/json",
               "x-service-token": sign(svc.keys, "POST", "/v1/generate", body)}
    async with svc.client.stream(
        "POST", ROUTER + "/v1/generate", content=body, headers=headers
    ) as resp:
        if resp.status_code != 200:
            yield b"event: error\ndata: {\"error\": \"upstream unavailable\"}\n\n"
            return
        async for chunk in resp.aiter_raw():
            yield chunk


@svc.route("/v1/chat", methods=["POST"])
async def chat(request: Request) -> Response:
    body = await json_body(request)
    message = body.get("message")
    if not isinstance(message, str) or len(message) > 4096:
        raise ClientError("message must be a string of at most 4096 characters")
    return StreamingResponse(_relay(message), media_type="text/event-stream")


@svc.route("/v1/action", methods=["POST"])
async def action(request: Request) -> Response:
    body = await request.body()
    headers = {"content-type": "application/json",
               "x-service-token": sign(svc.keys, "POST", "/v1/action", body)}
    resp = await svc.client.post(OPENCLAW + "/v1/action", content=body, headers=headers)
    return Response(resp.content, status_code=resp.status_code, media_type="application/json")


if __name__ == "__main__":
    svc.serve()
