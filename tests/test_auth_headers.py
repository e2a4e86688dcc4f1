"""Trusted-header auth bypasses (CWE-287): a framework's internal-subrequest marker that
skips its middleware, a proxy rewrite header; positive and negative controls on a real server.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import REPO, free_ports, write_contract
from toolkit.gates.attack import AttackConfig, run_attacks

pytestmark = pytest.mark.slow
TOKEN = "test-admin-token-9"  # pragma: allowlist secret


def _contract(tmp_path: Path, *flags: str) -> Path:
    port = free_ports(1)[0]
    (tmp_path / "site" / "admin").mkdir(parents=True)
    (tmp_path / "site" / "index.html").write_text("<html>the app</html>\n")
    args = "".join(f', "{f}"' for f in ("--token", TOKEN, *flags))
    return write_contract(tmp_path, f"""
[contract]
name = "auth-headers"
version = "1.0.0"

[auth]
scheme = "bearer"
header = "Authorization"
token = "{TOKEN}"

[[services]]
name = "web"
command = ["{{{{python}}}}", "-m", "tests.targets.http_files", "--port", "{{{{port}}}}",
           "--root", "{{{{contract_dir}}}}/site"{args}]
port = {port}
health = "/healthz"
cwd = "{REPO}"
startup_timeout_s = 20

[[surfaces]]
name = "files"
classes = ["path"]
sandbox = "site/admin"
service = "web"
method = "GET"
path = "/admin/{{{{payload}}}}"
""")


CASES = {
    "subrequest-marker": (["--trust-header", "x-middleware-subrequest"],
                          "auth:header:internal subrequest marker"),
    "rewrite-header": (["--rewrite-header", "X-Original-URL"],
                       "auth:header:X-Original-URL rewrite from a public path"),
    "guarded": ([], None),
}


@pytest.mark.parametrize("case", list(CASES), ids=list(CASES))
def test_trusted_header_bypass_needs_the_protected_content(tmp_path: Path, case: str) -> None:
    """A guard that a header skips or reroutes is found by the protected file's content
    coming back without a token; a guard that trusts no header gives no finding.
    """
    flags, oracle = CASES[case]
    result, _ = run_attacks(AttackConfig(_contract(tmp_path, *flags), ["auth"]))
    assert result.body["errors"] == [], result.body["errors"]
    oracles = {f["oracle"] for f in result.body["findings"]}
    if oracle is None:
        assert oracles == set() and result.exit_code == 0, oracles
    else:
        assert any(o.startswith(oracle) for o in oracles), oracles
        assert result.exit_code == 1
        evidence = " ".join(f["evidence"] for f in result.body["findings"])
        assert "without a token" in evidence
