"""Shared fixtures: contracts in temporary folders, the CLI in-process, port hygiene."""

from __future__ import annotations

import re
import sys
import textwrap
from pathlib import Path

import psutil
import pytest

from toolkit import contract as contract_mod
from toolkit.cli import main

REPO = Path(__file__).resolve().parent.parent
REFERENCE = REPO / "contracts" / "boot_contract.toml"


def write_contract(folder: Path, text: str, lock: bool = True) -> Path:
    path = folder / "contract.toml"
    path.write_text(textwrap.dedent(text))
    if lock:
        contract_mod.write_lock(contract_mod.load(path))
    return path


def reference_copy(folder: Path) -> Path:
    """The reference contract with state and evidence in ``folder``, run from the repo."""
    text = REFERENCE.read_text()
    text = text.replace('cwd = ".."', f'cwd = "{REPO}"')
    text = text.replace("{{contract_dir}}/../state", "{{contract_dir}}/state")
    text = re.sub(r'"\.\./(state|artifacts)', r'"\1', text)
    text = text.replace('"../targets/', f'"{REPO}/targets/').replace('"../.secrets.baseline"', '".secrets.baseline"')
    return write_contract(folder, text)


def fixture_service(name: str, port: int, *flags: str, depends: list[str] | None = None,
                    timeout: float = 10, stop: float = 2) -> str:
    argv = ", ".join(f'"{a}"' for a in ["{{python}}", "-m", "tests.targets.fixture_service",
                                        "--port", "{{port}}", *flags])
    deps = f"\ndepends_on = {depends!r}".replace("'", '"') if depends else ""
    return (f'[[services]]\nname = "{name}"\ncommand = [{argv}]\nport = {port}\ncwd = "{REPO}"\n'
            f'startup_timeout_s = {timeout}\nstop_timeout_s = {stop}{deps}\n')


def run_cli(*argv: str) -> int:
    return main(list(argv))


def listening(ports: list[int]) -> list[int]:
    return sorted({c.laddr.port for c in psutil.net_connections("tcp")
                   if c.status == psutil.CONN_LISTEN and c.laddr.port in ports})


@pytest.fixture(scope="session")
def _runner_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("runner-home")


@pytest.fixture(autouse=True)
def runner_key(_runner_home: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Runner keys and trust files of the tests live in a temporary home, never in ~/.config."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(_runner_home))
    monkeypatch.setenv("TOOLKIT_RUNNER_KEY", str(_runner_home / "runner-key.pem"))
    monkeypatch.delenv("TOOLKIT_TRUSTED_KEYS", raising=False)
    return _runner_home / "runner-key.pem"


@pytest.fixture
def python() -> str:
    return sys.executable
