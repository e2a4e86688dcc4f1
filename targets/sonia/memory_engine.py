"""memory-engine: key/value memory on SQLite in WAL mode."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import threading
import time
from pathlib import Path

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from targets.sonia.common import ClientError, Service, json_body

svc = Service("memory-engine")
DB = Path(os.environ.get("SONIA_DB", "state/memory-engine.db"))
_local = threading.local()
_write_lock = threading.Lock()


def conn() -> sqlite3.Connection:
    c = getattr(_local, "conn", None)
    if c is None:
        DB.parent.mkdir(parents=True, exist_ok=True)
        c = sqlite3.connect(DB, timeout=10, isolation_level=None)
        c.execute("PRAGMA journal_mode=WAL")
        c.execute("PRAGMA synchronous=FULL")
        c.execute("CREATE TABLE IF NOT EXISTS memory (key TEXT PRIMARY KEY, value TEXT NOT NULL, "
                  "updated REAL NOT NULL)")
        _local.conn = c
    return c


def _put(key: str, value: str) -> None:
    with _write_lock:
        conn().execute(
            "INSERT INTO memory(key, value, updated) VALUES (?, ?, ?) ON CONFLICT(key) DO UPDATE "
            "SET value = excluded.value, updated = excluded.updated",
            (key, value, time.time()),
        )


def _get(key: str) -> str | None:
    row = conn().execute("SELECT value FROM memory WHERE key = ?", (key,)).fetchone()
    return None if row is None else str(row[0])


@svc.route("/v1/memory", methods=["POST"])
async def write(request: Request) -> Response:
    body = await json_body(request)
    key, value = body.get("key"), body.get("value")
    if not isinstance(key, str) or not key or len(key) > 256 or not isinstance(value, str):
        raise ClientError("key and value must be strings")
    await asyncio.to_thread(_put, key, value)
    return JSONResponse({"stored": key})


@svc.route("/v1/memory", methods=["GET"])
async def read(request: Request) -> Response:
    key = request.query_params.get("key", "")
    value = await asyncio.to_thread(_get, key)
    if value is None:
        raise ClientError("not found", 404)
    return JSONResponse({"key": key, "value": value})


if __name__ == "__main__":
    conn()
    svc.serve()
