"""A raw MCP file server over stdio whose replies and arguments take the less common shapes.

    python -m tests.targets.mcp_shapes ROOT SHAPE [--weak]

ROOT is the sandbox (the server also works in its own working folder). SHAPE says how a
file's content comes back, or where the path goes in:
  text           {"type": "text"}                        (the common case)
  resource       an embedded resource {"type": "resource", "resource": {"uri", "text"}}
  blob           an embedded resource with base64 "blob" instead of text
  image          {"type": "image", "data": base64, "mimeType"}
  structured     only structuredContent {"content": "..."} next to an empty content list
  error          the content comes back inside an isError result ("cannot parse: ...")
  nested         read_files(request: {"paths": [str], "encoding": "utf-8"}) takes the paths
                 inside an object, in an array
  array-objects  read_many(items: [{"path": str, "max": int}]) takes objects in an array
  noschema       read_file and read_multiple_files listed with a schema that lost its
                 properties (zod 4 beside zod-to-json-schema 3); the server still validates
                 and names the missing arguments in a zod-style error
  cli            cluster_get(resourceType, name) runs a kubectl-like client (fake_cli) with
                 both as operands; --weak lets a value starting with '-' through (an option)
--weak joins paths to ROOT without containment (traversal); without it, they are contained.
"""

from __future__ import annotations

import base64
import json
import os
import sys
from typing import Any

ROOT = os.path.realpath(sys.argv[1])
SHAPE = sys.argv[2]
WEAK = "--weak" in sys.argv


def send(obj: object) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def read(path: str) -> str:
    joined = os.path.join(ROOT, path)
    real = os.path.realpath(joined)
    if not WEAK and os.path.commonpath([real, ROOT]) != ROOT:
        raise ValueError("access denied: outside the root")
    if os.path.isdir(joined):
        return "\n".join(sorted(os.listdir(joined)))
    with open(joined, encoding="utf-8", errors="replace") as fh:
        return fh.read(65536)


def tools() -> list[dict[str, Any]]:
    if SHAPE == "nested":
        schema = {"type": "object", "required": ["request"], "properties": {"request": {
            "type": "object", "required": ["paths", "encoding"], "properties": {
                "paths": {"type": "array", "items": {"type": "string"},
                          "description": "files to read"},
                "encoding": {"type": "string", "enum": ["utf-8"]}}}}}
        return [{"name": "read_files", "description": "Read files.", "inputSchema": schema}]
    if SHAPE == "array-objects":
        item = {"type": "object", "required": ["path"], "properties": {
            "path": {"type": "string"}, "max": {"type": "integer", "minimum": 1}}}
        schema = {"type": "object", "required": ["items"], "properties": {
            "items": {"type": "array", "items": item, "minItems": 1}}}
        return [{"name": "read_many", "description": "Read files.", "inputSchema": schema}]
    if SHAPE == "noschema":
        lost = {"$schema": "http://json-schema.org/draft-07/schema#"}
        return [{"name": "read_file", "description": "Read a file.", "inputSchema": lost},
                {"name": "read_multiple_files", "description": "Read files.",
                 "inputSchema": dict(lost)}]
    if SHAPE == "cli":
        schema = {"type": "object", "required": ["resourceType", "name"], "properties": {
            "resourceType": {"type": "string", "description": "kind of resource (pods, ...)"},
            "name": {"type": "string"}}}
        return [{"name": "cluster_get", "description": "Get resources with kubectl.",
                 "inputSchema": schema}]
    schema = {"type": "object", "required": ["path"],
              "properties": {"path": {"type": "string", "description": "file to read"}}}
    return [{"name": "read_file", "description": "Read a file.", "inputSchema": schema}]


def paths(args: dict[str, Any], tool: str = "") -> list[str]:
    if SHAPE == "noschema":
        key, kind = ("paths", "array") if tool == "read_multiple_files" else ("path", "string")
        value = args.get(key)
        if not isinstance(value, list if kind == "array" else str):
            issue = {"expected": kind, "code": "invalid_type", "path": [key],
                     "message": "Required"}
            raise ValueError(f"Invalid arguments for {tool}: {json.dumps([issue])}")
        return list(value) if isinstance(value, list) else [value]
    if SHAPE == "nested":
        return list(args["request"]["paths"])
    if SHAPE == "array-objects":
        return [item["path"] for item in args["items"]]
    return [args["path"]]


def result(text: str) -> dict[str, Any]:
    data = base64.b64encode(text.encode()).decode()
    if SHAPE == "resource":
        return {"content": [{"type": "resource",
                             "resource": {"uri": "file:///x", "mimeType": "text/plain",
                                          "text": text}}]}
    if SHAPE == "blob":
        return {"content": [{"type": "resource", "resource": {"uri": "file:///x", "blob": data}}]}
    if SHAPE == "image":
        return {"content": [{"type": "image", "data": data, "mimeType": "image/png"}]}
    if SHAPE == "structured":
        return {"content": [], "structuredContent": {"content": text}}
    if SHAPE == "error":
        return {"isError": True,
                "content": [{"type": "text", "text": f"cannot parse as JSON: {text}"}]}
    return {"content": [{"type": "text", "text": text}]}


def cli(args: dict[str, Any]) -> dict[str, Any]:
    import subprocess  # nosec B404

    operands = [str(args.get("resourceType", "")), str(args.get("name", ""))]
    if not WEAK and any(o.startswith("-") for o in operands):
        return {"isError": True, "content": [{"type": "text", "text": "refusing an option"}]}
    done = subprocess.run([sys.executable, "-m", "tests.targets.fake_cli", "get", *operands],  # nosec B603
                          capture_output=True, text=True, timeout=10, check=False)
    return {"isError": done.returncode != 0,
            "content": [{"type": "text", "text": done.stdout + done.stderr}]}


def call(msg: dict[str, Any]) -> dict[str, Any]:
    if SHAPE == "cli":
        return cli(msg["params"].get("arguments") or {})
    try:
        args = msg["params"].get("arguments") or {}
        texts = [read(p) for p in paths(args, msg["params"].get("name", ""))]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        return {"isError": True, "content": [{"type": "text", "text": f"error: {exc}"}]}
    return result("\n".join(texts))


def main() -> None:
    for line in sys.stdin:
        msg = json.loads(line)
        if "id" not in msg:
            continue
        method = msg.get("method")
        if method == "initialize":
            out: dict[str, Any] = {
                "protocolVersion": msg["params"].get("protocolVersion", "2025-06-18"),
                "capabilities": {"tools": {}}, "serverInfo": {"name": "shapes", "version": "0"}}
        elif method == "tools/list":
            out = {"tools": tools()}
        elif method == "tools/call":
            out = call(msg)
        elif method == "ping":
            out = {}
        else:
            send({"jsonrpc": "2.0", "id": msg["id"],
                  "error": {"code": -32601, "message": "no such method"}})
            continue
        send({"jsonrpc": "2.0", "id": msg["id"], "result": out})


if __name__ == "__main__":
    main()
