"""A non-conforming and hostile MCP server over stdio, for the lenient client's tests.

    python -m tests.targets.mcp_hostile MODE
MODE: "loose" (tool inputSchema without "type", garbage lines on stdout, otherwise works),
      "silent" (never answers), "exit" (exits in the middle of a tool call),
      "garbage" (answers only with garbage), "empty" (lists no tools),
      "invalid" (a tool listing that does not validate),
      "crashy" (like loose, but exits on any call whose arguments hold ".."),
      "readonly" (lists read_file only, refuses every other name like an unknown tool),
      "readonly-weak" (lists read_file only, but still dispatches delete_file).
"""

from __future__ import annotations

import json
import sys

MODE = sys.argv[1] if len(sys.argv) > 1 else "loose"


def send(obj: object) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def main() -> None:
    for line in sys.stdin:
        if MODE == "silent":
            continue
        if MODE == "garbage":
            sys.stdout.write("\x00\xff not json at all {{{\n")
            sys.stdout.flush()
            continue
        msg = json.loads(line)
        if "id" not in msg:
            continue
        method = msg.get("method")
        sys.stdout.write("debug: a server that prints to stdout\n")
        if method == "initialize":
            send({"jsonrpc": "2.0", "id": msg["id"], "result": {
                "protocolVersion": msg["params"].get("protocolVersion", "2025-06-18"),
                "capabilities": {"tools": {}}, "serverInfo": {"name": "hostile", "version": "0"}}})
        elif method == "tools/list" and MODE in ("empty", "invalid"):
            tools: list[object] = [] if MODE == "empty" else [{"name": 3, "inputSchema": "no"}]
            send({"jsonrpc": "2.0", "id": msg["id"], "result": {"tools": tools}})
        elif method == "tools/list":
            send({"jsonrpc": "2.0", "id": msg["id"], "result": {"tools": [
                {"name": "read_file", "inputSchema": {"properties": {"path": {}}}}]}})
        elif method == "tools/call" and MODE.startswith("readonly"):
            name = msg["params"].get("name")
            if name == "read_file" or (MODE == "readonly-weak" and name == "delete_file"):
                text = f"{name} done for {msg['params'].get('arguments')}"
                send(
                    {
                        "jsonrpc": "2.0",
                        "id": msg["id"],
                        "result": {"content": [{"type": "text", "text": text}]},
                    }
                )
            else:  # hidden tools are refused exactly like unknown ones
                send(
                    {
                        "jsonrpc": "2.0",
                        "id": msg["id"],
                        "error": {"code": -32602, "message": f"Unknown tool: {name}"},
                    }
                )
        elif method == "tools/call":
            if MODE == "exit" or (MODE == "crashy" and ".." in json.dumps(msg["params"])):
                sys.exit(3)
            path = msg["params"]["arguments"].get("path", "")
            try:
                with open(path, encoding="utf-8", errors="replace") as fh:
                    text = fh.read(65536)
                send(
                    {
                        "jsonrpc": "2.0",
                        "id": msg["id"],
                        "result": {"content": [{"type": "text", "text": text}]},
                    }
                )
            except OSError as exc:
                send(
                    {
                        "jsonrpc": "2.0",
                        "id": msg["id"],
                        "result": {
                            "isError": True,
                            "content": [{"type": "text", "text": str(exc.strerror)}],
                        },
                    }
                )
        else:
            send(
                {
                    "jsonrpc": "2.0",
                    "id": msg["id"],
                    "error": {"code": -32601, "message": "no such method"},
                }
            )


if __name__ == "__main__":
    main()
