"""The reference stack end to end: chat streams, memory, sessions, actions, auth."""

from __future__ import annotations

import json

import httpx
import pytest

from toolkit.core.auth import Signer
from toolkit.core.contract import Contract


def call(c: Contract, service: str, method: str, path: str, body: object | None = None,
         sign: bool = True) -> httpx.Response:
    svc = c.service(service)
    data = json.dumps(body).encode() if body is not None else b""
    headers = {"content-type": "application/json"}
    token = Signer(c.auth).token(method, path, data)
    if sign and token:
        headers["X-Service-Token"] = token
    return httpx.request(
        method,
        f"http://{svc.host}:{svc.port}{path}",
        content=data,
        headers=headers,
        timeout=10,
        trust_env=False,
    )


def test_every_service_is_healthy(contract: Contract) -> None:
    for svc in contract.services:
        assert httpx.get(svc.health_url or "", timeout=5, trust_env=False).status_code == 200


def test_chat_streams_the_same_tokens_for_the_same_prompt(contract: Contract) -> None:
    first = call(contract, "api-gateway", "POST", "/v1/chat", {"message": "determinism"}).text
    second = call(contract, "api-gateway", "POST", "/v1/chat", {"message": "determinism"}).text
    assert first == second and first.rstrip().endswith("data: [DONE]")
    assert first.count("data: {") == 16


def test_memory_round_trip(contract: Contract) -> None:
    assert (
        call(
            contract, "memory-engine", "POST", "/v1/memory", {"key": "e2e", "value": "v1"}
        ).status_code
        == 200
    )
    got = call(contract, "memory-engine", "GET", "/v1/memory?key=e2e")
    assert got.json() == {"key": "e2e", "value": "v1"}


def test_sessions_are_created_and_destroyed(contract: Contract) -> None:
    sid = call(contract, "voice-session", "POST", "/v1/sessions").json()["id"]
    assert call(contract, "voice-session", "DELETE", f"/v1/sessions/{sid}").status_code == 200
    assert call(contract, "voice-session", "DELETE", f"/v1/sessions/{sid}").status_code == 404


def test_action_through_the_gateway(contract: Contract) -> None:
    resp = call(
        contract, "api-gateway", "POST", "/v1/action", {"tool": "file.list", "args": {"path": "."}}
    )
    assert resp.status_code == 200 and "entries" in resp.json()["result"]


@pytest.mark.parametrize("service", ["api-gateway", "memory-engine", "openclaw"])
def test_unsigned_calls_are_refused(contract: Contract, service: str) -> None:
    path = {"api-gateway": "/v1/action", "memory-engine": "/v1/memory", "openclaw": "/v1/action"}[
        service
    ]
    assert call(contract, service, "POST", path, {"x": 1}, sign=False).status_code == 401
