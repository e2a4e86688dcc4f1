"""Free ports (bind 0) and a reference contract copy that uses them instead of 7000-7050."""

from __future__ import annotations

import re
import socket
from pathlib import Path

from tests.conftest import reference_copy
from toolkit import contract as contract_mod

PEERS = {"model-router": 7010, "openclaw": 7040, "audit-ledger": 7050}


def free_ports(n: int) -> list[int]:
    """``n`` distinct ports the kernel says are free right now (all sockets held until the end)."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def reference_on_free_ports(folder: Path) -> tuple[Path, list[int]]:
    """The reference contract copied into ``folder`` (see reference_copy) on free ports, locked."""
    path = reference_copy(folder)
    text = path.read_text()
    old = sorted({int(p) for p in re.findall(r"^port = (\d+)$", text, flags=re.MULTILINE)})
    new = dict(zip(old, free_ports(len(old)), strict=True))
    text = re.sub(r"^port = (\d+)$", lambda m: f"port = {new[int(m.group(1))]}", text, flags=re.MULTILINE)
    text = re.sub(r"127\.0\.0\.1:(70[0-5]0)", lambda m: f"127.0.0.1:{new[int(m.group(1))]}", text)
    peers = "".join(f'SONIA_{n.upper().replace("-", "_")}_URL = "http://127.0.0.1:{new[p]}"\n'
                    for n, p in PEERS.items())
    text = text.replace("[env]\n", "[env]\n" + peers, 1)
    path.write_text(text)
    contract_mod.write_lock(contract_mod.load(path))
    return path, sorted(new.values())
