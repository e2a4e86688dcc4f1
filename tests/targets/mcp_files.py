"""A small MCP file server over stdio, written with the official `mcp` SDK.

    python -m tests.targets.mcp_files ROOT            # hardened: realpath containment
    python -m tests.targets.mcp_files ROOT --weak     # vulnerable: naive join, follows links
"""

from __future__ import annotations

import logging
import os
import sys

from mcp.server.mcpserver import MCPServer

ROOT = os.path.realpath(sys.argv[1]) if len(sys.argv) > 1 else os.getcwd()
WEAK = "--weak" in sys.argv
server = MCPServer("toolkit-test-files")
# The SDK logs every refused call (a raised exception) with a rich-rendered traceback: about
# 1 s of CPU each on a loaded 2-core machine, and an attack run makes hundreds of them.
# The same records, plain, on stderr.
logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s",
                    force=True)


def _resolve(path: str) -> str:
    joined = os.path.join(ROOT, path)
    if WEAK:
        return joined
    real = os.path.realpath(joined)
    if os.path.commonpath([real, ROOT]) != ROOT:
        raise ValueError("access denied: outside the root")
    return real


@server.tool()
def read_file(path: str) -> str:
    """Read a text file below the server's root."""
    with open(_resolve(path), encoding="utf-8", errors="replace") as fh:
        return fh.read(65536)


@server.tool()
def list_dir(path: str = ".") -> str:
    """List a folder below the server's root."""
    return "\n".join(sorted(os.listdir(_resolve(path))))


if __name__ == "__main__":
    server.run("stdio")
