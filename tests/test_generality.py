"""Oracles on server behaviours the toolkit was not written against: each with a real server
showing the behaviour, a positive and a negative control.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from tests.conftest import REPO, free_ports, write_contract
from toolkit.core.transport import plain_forms
from toolkit.gates.attack import AttackConfig, run_attacks

pytestmark = pytest.mark.slow


def _contract(tmp_path: Path, command: str, sandbox: str = "site", prefix: str = "",
              extra: str = "", surface_extra: str = "") -> Path:
    """One GET path surface on a service started from ``command`` (module args after -m)."""
    port = free_ports(1)[0]
    (tmp_path / sandbox).mkdir(parents=True, exist_ok=True)
    return write_contract(tmp_path, f"""
[contract]
name = "generality"
version = "1.0.0"
{extra}
[[services]]
name = "web"
command = {command}
port = {port}
health = "/"
cwd = "{REPO}"
startup_timeout_s = 20

[[surfaces]]
name = "files"
classes = ["path"]
sandbox = "{sandbox}"
service = "web"
method = "GET"
path = "{prefix}/{{{{payload}}}}"
{surface_extra}
""")


def _http_files(*flags: str) -> str:
    args = ", ".join(f'"{f}"' for f in flags)
    return ('["{{python}}", "-m", "tests.targets.http_files", "--port", "{{port}}", '
            f'"--root", "{{{{contract_dir}}}}/site"{", " + args if args else ""}]')


# ------------------------------------------------------------ dot-segment normalisation

def test_plain_forms_follow_remove_dot_segments() -> None:
    assert plain_forms(b"/admin/../x.txt") == [b"/x.txt"]
    assert plain_forms(b"/admin/./../x.txt?raw") == [b"/x.txt?raw"]
    assert plain_forms(b"/a/b/../../../../x") == [b"/x"]  # clamped at the root
    assert plain_forms(b"/admin/%2E%2e/x") == [b"/x"]  # WHATWG: %2e is a dot
    assert plain_forms(b"/admin/..\\x") == [b"/x"]  # and a backslash a slash
    assert plain_forms(b"/admin/..") == [b"/"]
    assert plain_forms(b"/admin/x%20y.txt") == []  # nothing to normalise: no control
    assert plain_forms(b"/admin/....//x") == []
    # a server that decodes before it normalizes: the decoded form, when it is plain
    assert plain_forms(b"/admin/..%2fx") == [b"/x"]
    assert plain_forms(b"/admin/%252e%252e%252fx") == [b"/x"]
    # never a control that could itself escape: climbs, absolute, NUL, separators left
    assert plain_forms(b"/admin/../../x/..%2f..%2f%2e%2e") == [b"/"]  # clamped, decoded
    assert plain_forms(b"/admin/..//etc/passwd") == []
    assert plain_forms(b"/admin/../x%00.txt") == []
    assert plain_forms(b"/admin/../x%3f.txt") == []
    assert plain_forms(b"/admin/..%c0%afx") == []
    assert plain_forms(b"tools/call") == []


@pytest.mark.parametrize("traverse", [False, True], ids=["normalizing", "traversing"])
def test_dot_segments_resolved_by_the_router_are_not_traversal(
    tmp_path: Path, traverse: bool
) -> None:
    """/admin/../x on a server that normalizes first serves the public /x: no escape.

    The sandbox is the admin part of a site whose root is public too (www/ at /, www/admin at
    /admin/). The normalizing server answers ``/admin/../canary`` like ``/canary``; the
    traversing one reaches files outside its root, which no plain URL serves.
    """
    path = _contract(tmp_path, _http_files(*(["--traverse"] if traverse else [])),
                     sandbox="site/admin", prefix="/admin")
    result, cases = run_attacks(AttackConfig(path, ["traversal"]))
    assert result.body["errors"] == [], result.body["errors"]
    found = result.body["findings"]
    trav = next(c for c in cases if c.attack_id == "T-TRAV-001")
    if traverse:
        assert result.exit_code == 1 and {f["attack_id"] for f in found} == {"T-TRAV-001"}
    else:
        assert found == [] and result.exit_code == 0, [(f["payload"], f["evidence"]) for f in found]
        assert any("dot segments normalized before routing" in n for n in trav.notes)


# ------------------------------------------------------------ run controls in the evidence

def test_rate_limit_holds_for_every_request_and_is_recorded(tmp_path: Path) -> None:
    """Every request the server sees (auth probes and redirect hops included) keeps the
    limit's spacing, and the evidence records the limit, concurrency and what was achieved.
    """
    token = "test-admin-token-2"  # pragma: allowlist secret
    log = tmp_path / "arrivals.log"
    path = _contract(
        tmp_path, _http_files("--token", token, "--log", str(log)), sandbox="site/admin",
        prefix="/admin", extra=f'[auth]\nscheme = "bearer"\nheader = "Authorization"\n'
        f'token = "{token}"\n')
    text = path.read_text().replace('health = "/"', 'health = "/healthz"')
    path.write_text(text.replace('version = "1.0.0"', 'version = "1.0.1"'))
    from toolkit.core import contract as contract_mod

    contract_mod.write_lock(contract_mod.load(path))
    rate = 25.0
    result, _ = run_attacks(
        AttackConfig(path, ["auth", "traversal"], rate_limit=rate, concurrency=2))
    assert result.body["errors"] == [], result.body["errors"]
    times = sorted(float(line.split()[0]) for line in log.read_text().splitlines())
    hops = [line for line in log.read_text().splitlines() if line.rstrip().endswith("/")]
    assert len(times) > 10 and hops  # redirects were followed: they count as requests too
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert min(gaps) >= 0.5 / rate, min(gaps)
    assert (len(times) - 1) / (times[-1] - times[0]) <= rate * 1.05
    pacing = result.body["pacing"]
    assert pacing["rate_limit_per_s"] == rate and pacing["concurrency"] == 2
    assert pacing["requests"] == len(times)
    assert 0 < pacing["achieved_rate_per_s"] <= rate * 1.01
    assert pacing["max_in_flight"] == 1  # one surface: its lane runs one request at a time
    folder = Path(result.summary_path).parent
    assert f"Rate limit {rate:g}/s" in (folder / "gate3-attack.md").read_text()
    assert 'name="pacing.rate_limit_per_s"' in (folder / "gate3-attack.junit.xml").read_text()
