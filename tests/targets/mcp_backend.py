"""An MCP server whose one tool needs a backend that is not there, with the official `mcp` SDK.

    python -m tests.targets.mcp_backend ROOT              # read_file works, apply_manifest
                                                          # always fails (backend refused)
    python -m tests.targets.mcp_backend ROOT --all-down   # read_file fails the same way
    python -m tests.targets.mcp_backend ROOT --hang       # apply_manifest never answers

Like a Kubernetes MCP server with no cluster, or an API-backed tool with no credentials:
every call is refused whatever its argument, so no harmless baseline exists for it.
"""

from __future__ import annotations

import logging
import os
import sys
import time

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError

ROOT = os.path.realpath(sys.argv[1]) if len(sys.argv) > 1 else os.getcwd()
ALL_DOWN = "--all-down" in sys.argv
HANG = "--hang" in sys.argv
REFUSED = "backend unreachable: connect ECONNREFUSED 127.0.0.1:6443 (connection refused)"
server = MCPServer("toolkit-test-backend")
logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s",
                    force=True)


@server.tool()
def apply_manifest(filename: str) -> str:
    """Apply a manifest file to the cluster."""
    if HANG:
        time.sleep(3600)
    raise ToolError(f"failed to apply {filename}: {REFUSED}")


@server.tool()
def read_file(path: str) -> str:
    """Read a text file below the server's root."""
    if ALL_DOWN:
        raise ToolError(f"failed to read {path}: {REFUSED}")
    real = os.path.realpath(os.path.join(ROOT, path))
    if os.path.commonpath([real, ROOT]) != ROOT:
        raise ValueError("access denied: outside the root")
    with open(real, encoding="utf-8", errors="replace") as fh:
        return fh.read(65536)


if __name__ == "__main__":
    server.run("stdio")
