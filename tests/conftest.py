"""Shared fixtures: contracts in temporary folders, the CLI in-process, port hygiene.

Isolation: every service a test starts listens on a port from ``free_ports`` (never a fixed
one), and tests check only processes they started (the toolkit's run marker and recorded
pids), so two copies of the suite can run side by side on one machine.
"""

from __future__ import annotations

import os
import random
import re
import signal
import socket
import subprocess
import sys
import textwrap
import tomllib
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import psutil
import pytest

from toolkit.cli import main
from toolkit.core import contract as contract_mod
from toolkit.core.supervisor import Supervisor, processes_with_marker

REPO = Path(__file__).resolve().parent.parent
REFERENCE = REPO / "contracts" / "boot_contract.toml"


def write_contract(folder: Path, text: str, lock: bool = True) -> Path:
    path = folder / "contract.toml"
    path.write_text(textwrap.dedent(text))
    if lock:
        contract_mod.write_lock(contract_mod.load(path))
    return path


# below the Linux ephemeral range (32768-60999), so outgoing connections never take them
PORT_RANGE = (20000, 32000)
_HANDED_OUT: set[int] = set()


def _port_range() -> tuple[int, int]:
    """This xdist worker's own slice of PORT_RANGE, so workers of one run never meet."""
    count = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    index = int(os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw") or 0) % count
    width = (PORT_RANGE[1] - PORT_RANGE[0]) // count
    return PORT_RANGE[0] + index * width, PORT_RANGE[0] + (index + 1) * width


def free_ports(n: int) -> list[int]:
    """``n`` distinct loopback ports that are free now and not handed out before in this run.

    Random, so two suites on one machine rarely try the same port; each is bound (without
    SO_REUSEADDR, so TIME_WAIT counts as busy) until all ``n`` are found.
    """
    rng = random.SystemRandom()
    held: list[socket.socket] = []
    try:
        for _ in range(1000):
            if len(held) == n:
                break
            port = rng.randrange(*_port_range())
            if port in _HANDED_OUT:
                continue
            sock = socket.socket()
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                sock.close()
                continue
            held.append(sock)
            _HANDED_OUT.add(port)
        if len(held) < n:
            raise RuntimeError(f"no {n} free loopback ports in {_port_range()}")
        return [s.getsockname()[1] for s in held]
    finally:
        for sock in held:
            sock.close()


@pytest.fixture
def free_port() -> Callable[[], int]:
    """A fresh free loopback port per call."""
    return lambda: free_ports(1)[0]


def _service_ports(text: str) -> dict[str, int]:
    return {s["name"]: s["port"] for s in tomllib.loads(text).get("services", []) if "port" in s}


def remap_ports(text: str) -> tuple[str, dict[str, int]]:
    """Give every service of a contract a free port, in ``port =`` lines and loopback URLs,
    and tell the services where their peers are (``SONIA_<NAME>_URL`` in ``[env]``)."""
    old = _service_ports(text)
    new = dict(zip(old, free_ports(len(old)), strict=True))
    for name, port in old.items():
        text = re.sub(rf"(?m)^port = {port}$", f"port = {new[name]}", text)
        text = re.sub(rf"\b(127\.0\.0\.1|localhost):{port}\b", rf"\g<1>:{new[name]}", text)
    urls = "".join(f'SONIA_{n.upper().replace("-", "_")}_URL = "http://127.0.0.1:{p}"\n'
                   for n, p in new.items())
    text = text.replace("\n[env]\n", "\n[env]\n" + urls, 1) if "\n[env]\n" in text else \
        text + "\n[env]\n" + urls
    live = "\n".join(ln for ln in text.splitlines() if not ln.lstrip().startswith("#"))
    stale = [p for p in old.values() if re.search(rf"(?<![\w.-]){p}(?![\w.-])", live)]
    if stale or _service_ports(text) != new:
        raise AssertionError(f"reference contract still mentions fixed ports {stale}: "
                             "extend remap_ports")
    return text, new


def reference_copy(folder: Path) -> Path:
    """The reference contract with state and evidence in ``folder``, run from the repo,
    on free ports (so two suites, or a developer's own stack, never collide)."""
    text, _ = remap_ports(REFERENCE.read_text())
    text = text.replace('cwd = ".."', f'cwd = "{REPO}"')
    text = text.replace("{{contract_dir}}/../state", "{{contract_dir}}/state")
    text = re.sub(r'"\.\./(state|artifacts)', r'"\1', text)
    text = text.replace('"../targets/', f'"{REPO}/targets/').replace(
        '"../.secrets.baseline"', '".secrets.baseline"'
    )
    # latency limits judge this machine's load, not the toolkit: a test soak of the reference
    # stack judges errors, leaks, deaths and stuck requests (latency verdicts: test_soak's data
    # and slow-fixture tests)
    for key, value in (("p95_ms = 2000", "p95_ms = 60000"),
                       ("p95_spike_floor_ms = 20", "p95_spike_floor_ms = 60000")):
        assert key in text, key  # the reference contract changed: revisit this override
        text = text.replace(key, value)
    return write_contract(folder, text)


def fixture_service(name: str, port: int, *flags: str, depends: list[str] | None = None,
                    timeout: float = 10, stop: float = 2) -> str:
    argv = ", ".join(f'"{a}"' for a in ["{{python}}", "-m", "tests.targets.fixture_service",
                                        "--port", "{{port}}", *flags])
    deps = f"\ndepends_on = {depends!r}".replace("'", '"') if depends else ""
    return (f'[[services]]\nname = "{name}"\ncommand = [{argv}]\nport = {port}\ncwd = "{REPO}"\n'
            f'startup_timeout_s = {timeout}\nstop_timeout_s = {stop}{deps}\n')


def toolkit_process(*argv: str, output: bool = False) -> subprocess.Popen[bytes]:
    """``python -m toolkit ARGV`` as a user starts it in a terminal, where Ctrl-C works.

    A shell ignores SIGINT for the commands it runs in the background (``pytest ... &``),
    and the ignore is inherited; a test that presses Ctrl-C must undo that for its child.
    """
    def default_sigint() -> None:
        signal.signal(signal.SIGINT, signal.SIG_DFL)

    sink = subprocess.PIPE if output else subprocess.DEVNULL
    return subprocess.Popen([sys.executable, "-m", "toolkit", *argv], cwd=REPO, stdout=sink,
                            stderr=subprocess.STDOUT if output else subprocess.DEVNULL,
                            env={**os.environ, "COLUMNS": "120"},
                            preexec_fn=default_sigint)  # noqa: PLW1509 - only signal(): async-signal-safe


def run_cli(*argv: str) -> int:
    return main(list(argv))


def contract_ports(path: Path) -> list[int]:
    return sorted(s.port for s in contract_mod.load(path).services if s.port)


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


@pytest.fixture
def supervisors(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[Supervisor]]:
    """Every Supervisor made in this test process, so a test can check exactly its own processes."""
    made: list[Supervisor] = []
    init = Supervisor.__init__

    def recording(self: Supervisor, *args: object, **kwargs: object) -> None:
        init(self, *args, **kwargs)  # type: ignore[arg-type]
        made.append(self)

    monkeypatch.setattr(Supervisor, "__init__", recording)
    yield made


def survivors(markers: list[str], pids: Sequence[tuple[int, float]] = ()) -> list[int]:
    """Processes still alive that carry one of these run markers or are these recorded pids."""
    alive = {p.pid for m in markers for p in processes_with_marker(m)
             if p.status() != psutil.STATUS_ZOMBIE}
    for pid, created in pids:
        try:
            proc = psutil.Process(pid)
            if abs(proc.create_time() - created) < 0.01 and proc.status() != psutil.STATUS_ZOMBIE:
                alive.add(pid)
        except psutil.NoSuchProcess:
            continue
    return sorted(alive)


def own_survivors(sups: list[Supervisor]) -> list[int]:
    """Survivors of the supervisors this test made (their markers and recorded pids)."""
    return survivors([s.marker for s in sups],
                     [(r.pid, r.create_time) for s in sups for r in s.records.values()])


@pytest.fixture(autouse=True, scope="session")
def _private_litter_ledger(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Tests record what they create in a ledger of their own, never the user's."""
    import os

    os.environ["TOOLKIT_STATE_HOME"] = str(tmp_path_factory.mktemp("toolkit-state-home"))


@pytest.fixture(scope="session")
def _default_contract(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return reference_copy(tmp_path_factory.mktemp("default-contract"))


@pytest.fixture(autouse=True)
def _evidence_outside_the_repo(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A command run without --contract uses a reference copy in a temporary folder, so its
    evidence never lands in the repository (two suites in one clone stay apart too).
    Inside a determinism gate run, the gate's own TOOLKIT_CONTRACT (the running stack) stays."""
    if os.environ.get("TOOLKIT_DETERMINISM_RUN") == "1":
        return
    monkeypatch.setenv("TOOLKIT_CONTRACT", str(request.getfixturevalue("_default_contract")))
