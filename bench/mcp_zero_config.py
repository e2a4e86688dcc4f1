"""Zero-config on released MCP servers: `contract init` + `attack --all`, no contract edited.

    python bench/mcp_zero_config.py [--cache DIR]        # installs (network), then runs offline

Installs the current @modelcontextprotocol/server-filesystem (npm, into CACHE/npm) and
mcp-server-git (PyPI, into CACHE/venv), then for each: writes a contract from the server's
own listing, attacks it, and prints one row (surfaces, payloads, findings, errors, seconds).
Run the second half inside a network namespace if you like: nothing is fetched after install.
"""

from __future__ import annotations

import argparse
import json
import subprocess  # nosec B404
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def install(cache: Path) -> dict[str, Path]:
    npm = cache / "npm"
    venv = cache / "venv"
    npm.mkdir(parents=True, exist_ok=True)
    subprocess.run(["npm", "install", "--silent", "--prefix", str(npm),  # nosec B603 B607
                    "@modelcontextprotocol/server-filesystem"], check=True)
    if not (venv / "bin" / "python").exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)  # nosec B603
    subprocess.run([str(venv / "bin" / "pip"), "install", "-q", "mcp-server-git"], check=True)  # nosec B603
    return {"filesystem": npm / "node_modules" / ".bin" / "mcp-server-filesystem",
            "git": venv / "bin" / "mcp-server-git"}


def run(name: str, exe: Path, toolkit: list[str]) -> dict[str, object]:
    work = Path(tempfile.mkdtemp(prefix=f"toolkit-zero-{name}-"))
    box = work / "box"
    args = [str(box)] if name == "filesystem" else ["--repository", str(box)]
    t0 = time.monotonic()
    init = subprocess.run(
        [
            *toolkit,
            "contract",
            "init",
            "--mcp-stdio",
            "--sandbox",
            str(box),  # nosec B603
            "--out",
            str(work / "c.toml"),
            "--",
            str(exe),
            *args,
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if init.returncode != 0:
        return {"server": name, "init_exit": init.returncode, "error": init.stderr.strip()[:300]}
    attack = subprocess.run(
        [*toolkit, "attack", "--all", "-c", str(work / "c.toml"), "--format", "json"],  # nosec
        capture_output=True,
        text=True,
        cwd=work,
        check=False,
    )
    summary = next(iter(sorted((work / "artifacts").rglob("gate3-attack.json"))), None)
    body = json.loads(summary.read_text()) if summary else {}
    return {
        "server": name,
        "surfaces": init.stdout.count(": "),
        "exit": attack.returncode,
        "payloads": body.get("payloads_sent"),
        "findings": len(body.get("findings", [])),
        "errors": body.get("errors", []),
        "seconds": round(time.monotonic() - t0, 1),
        "folder": str(work),
    }


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--cache", type=Path, default=Path.home() / ".cache" / "toolkit-zero-config")
    ap.add_argument(
        "--toolkit", default=None, help="toolkit command (default: this interpreter's -m toolkit)"
    )
    args = ap.parse_args()
    servers = install(args.cache)
    toolkit = args.toolkit.split() if args.toolkit else [sys.executable, "-m", "toolkit"]
    rows = [run(name, exe, toolkit) for name, exe in servers.items()]
    for row in rows:
        print(json.dumps(row))
    return 0 if all(r.get("exit") == 0 and not r.get("errors") for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
