"""The reference contract on free ports, with the ports it uses (for leftover-listener checks)."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import contract_ports, reference_copy


def reference_on_free_ports(folder: Path) -> tuple[Path, list[int]]:
    """reference_copy (which already picks free ports) plus the ports it picked."""
    path = reference_copy(folder)
    return path, contract_ports(path)
