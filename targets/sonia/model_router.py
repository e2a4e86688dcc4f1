"""model-router: streams deterministic, seeded tokens as server-sent events."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import random
from collections.abc import AsyncIterator

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from targets.sonia.common import ClientError, Service, json_body

svc = Service("model-router")
WORDS = (
    "the",
    "gate",
    "holds",
    "evidence",
    "service",
    "stream",
    "token",
    "quiet",
    "proof",
    "signal",
)
SEED = int(os.environ.get("SONIA_MODEL_SEED", "1337"))


def tokens(prompt: str, n: int) -> list[str]:
    """Same prompt and seed, same tokens: the determinism gate relies on it."""
    digest = hashlib.sha256(f"{SEED}:{prompt}".encode()).digest()
    rng = random.Random(int.from_bytes(digest[:8], "big"))  # nosec B311
    return [rng.choice(WORDS) for _ in range(n)]


async def _events(prompt: str, n: int) -> AsyncIterator[bytes]:
    for i, tok in enumerate(tokens(prompt, n)):
        yield f"data: {json.dumps({'i': i, 'token': tok})}\n\n".encode()
        await asyncio.sleep(0.002)
    yield b"data: [DONE]\n\n"


@svc.route("/v1/generate", methods=["POST"])
async def generate(request: Request) -> Response:
    body = await json_body(request)
    prompt = body.get("prompt")
    n = body.get("max_tokens", 16)
    if not isinstance(prompt, str) or not isinstance(n, int) or not 0 < n <= 256:
        raise ClientError("prompt must be a string and max_tokens 1-256")
    return StreamingResponse(_events(prompt, n), media_type="text/event-stream")


if __name__ == "__main__":
    svc.serve()
