"""A stand-in for a cluster client such as kubectl: ``fake_cli get KIND [NAME] [--server=URL]``.

Like kubectl, it takes ``--server=URL`` anywhere on its command line and calls that server
first (GET URL/version); without one it fails with "no cluster configured".
"""

from __future__ import annotations

import sys
import urllib.request


def main(argv: list[str]) -> int:
    server = next((a.split("=", 1)[1] for a in argv if a.startswith("--server=")), None)
    if server is None:
        print("error: no cluster configured", file=sys.stderr)
        return 1
    try:
        with urllib.request.urlopen(server.rstrip("/") + "/version", timeout=2):  # nosec B310
            pass
    except OSError as exc:
        print(f"error: {exc}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
