"""A server of one file type (an image server) refuses the text canaries: traversal through
it is judged with image canaries, planted when only the image form of the baseline passed.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import REPO, free_ports, write_contract
from toolkit.gates.attack import AttackConfig, run_attacks

pytestmark = pytest.mark.slow


def _contract(tmp_path: Path, *flags: str) -> Path:
    port = free_ports(1)[0]
    (tmp_path / "site").mkdir()
    args = "".join(f', "{f}"' for f in ("--images-only", *flags))
    return write_contract(tmp_path, f"""
[contract]
name = "typed"
version = "1.0.0"

[[services]]
name = "web"
command = ["{{{{python}}}}", "-m", "tests.targets.http_files", "--port", "{{{{port}}}}",
           "--root", "{{{{contract_dir}}}}/site"{args}]
port = {port}
health = "/healthz"
cwd = "{REPO}"
startup_timeout_s = 20

[[surfaces]]
name = "images"
classes = ["path"]
sandbox = "site"
service = "web"
method = "GET"
path = "/{{{{payload}}}}"
""")


@pytest.mark.parametrize("traverse", [True, False], ids=["traversing", "contained"])
def test_image_only_server_is_judged_with_image_canaries(tmp_path: Path, traverse: bool) -> None:
    """The traversing image server is found (an image canary's text came back); the
    contained one passes: the typed canaries are no finding by themselves.
    """
    path = _contract(tmp_path, *(["--traverse"] if traverse else []))
    result, _ = run_attacks(AttackConfig(path, ["traversal"]))
    assert result.body["errors"] == [], result.body["errors"]
    ids = {f["attack_id"] for f in result.body["findings"]}
    if traverse:
        assert result.exit_code == 1 and ids == {"T-TRAV-001"}, result.body["findings"]
        assert any(".svg" in str(f["payload"]) for f in result.body["findings"])
    else:
        assert result.exit_code == 0 and ids == set(), result.body["findings"]
