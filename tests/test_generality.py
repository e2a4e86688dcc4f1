"""Oracles on server behaviours the toolkit was not written against: each with a real server
showing the behaviour, a positive and a negative control.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import REPO, free_ports, write_contract
from toolkit.core.transport import plain_forms
from toolkit.gates.attack import AttackConfig, run_attacks

pytestmark = pytest.mark.slow


def _contract(tmp_path: Path, command: str, sandbox: str = "site", prefix: str = "",
              extra: str = "", surface_extra: str = "", health: str = "/") -> Path:
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
health = "{health}"
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
    # arrival gaps are the machine's scheduling, not the pacer's (a delayed request lands
    # just before the next one on a loaded machine); what proves every request was paced is
    # that the pacer counted each one the server saw, hops included, at the sender's rate
    pacing = result.body["pacing"]
    assert pacing["rate_limit_per_s"] == rate and pacing["concurrency"] == 2
    assert pacing["requests"] == len(times)
    assert (len(times) - 1) / (times[-1] - times[0]) <= rate * 2  # unpaced is hundreds/s
    assert 0 < pacing["achieved_rate_per_s"] <= rate * 1.01
    assert pacing["max_in_flight"] == 1  # one surface: its lane runs one request at a time
    folder = Path(str(result.summary_path)).parent
    assert f"Rate limit {rate:g}/s" in (folder / "gate3-attack.md").read_text()
    assert 'name="pacing.rate_limit_per_s"' in (folder / "gate3-attack.junit.xml").read_text()


# ------------------------------------------------------------ habits of real HTTP servers

def _quirks(*flags: str) -> str:
    args = "".join(f', "{f}"' for f in flags)
    return ('["{{python}}", "-m", "tests.targets.http_quirks", "--port", "{{port}}", '
            f'"--root", "{{{{contract_dir}}}}/site"{args}]')


QUIRKS = {
    "gzip": ["--gzip"],
    "deflate": ["--deflate"],
    "chunked": ["--chunked"],
    "chunked-gzip": ["--chunked", "--gzip"],
    "soft-404": ["--soft-404"],
    "spa-fallback": ["--spa"],
    "slow": ["--slow", "0.05"],
}


@pytest.mark.parametrize("traverse", [True, False], ids=["traversing", "contained"])
@pytest.mark.parametrize("quirk", list(QUIRKS), ids=list(QUIRKS))
def test_traversal_oracle_through_server_habits(tmp_path: Path, quirk: str,
                                                traverse: bool) -> None:
    """Compressed, chunked, soft-404, SPA-fallback and slow servers: the traversing one is
    found, the contained one passes, none ends in exit 2.
    """
    flags = QUIRKS[quirk] + (["--traverse"] if traverse else [])
    (tmp_path / "site").mkdir()
    (tmp_path / "site" / "index.html").write_text("<html>the app</html>\n")
    path = _contract(tmp_path, _quirks(*flags),
                     surface_extra="" if quirk != "slow" else "timeout_s = 5")
    result, _ = run_attacks(AttackConfig(path, ["traversal", "leaks"]))
    assert result.body["errors"] == [], result.body["errors"]
    ids = {f["attack_id"] for f in result.body["findings"]}
    if traverse:
        assert result.exit_code == 1 and "T-TRAV-001" in ids, result.body["findings"]
    else:
        assert result.exit_code == 0 and ids == set(), result.body["findings"]


AUTH_CASES = {
    # (server flags beyond --token, expect a finding)
    "refuses-401": (["--token", "T0K"], False),
    "refuses-200-error-document": (["--token", "T0K", "--soft-auth"], False),
    "refuses-401-spa": (["--token", "T0K", "--spa"], False),
    "no-auth-at-all": ([], True),
    "no-auth-spa": (["--spa"], True),
}


@pytest.mark.parametrize("case", list(AUTH_CASES), ids=list(AUTH_CASES))
def test_auth_oracle_judges_content_not_only_status(tmp_path: Path, case: str) -> None:
    """A refusal answered 200 with an error document is a refusal; a server that takes no
    token at all is found whatever its fallback page.
    """
    flags, vulnerable = AUTH_CASES[case]
    (tmp_path / "site").mkdir()
    (tmp_path / "site" / "index.html").write_text("<html>the app</html>\n")
    path = _contract(tmp_path, _quirks(*flags),
                     extra='[auth]\nscheme = "bearer"\nheader = "Authorization"\n'
                     'token = "T0K"\n', health="/healthz")  # pragma: allowlist secret
    result, _ = run_attacks(AttackConfig(path, ["auth"]))
    assert result.body["errors"] == [], result.body["errors"]
    ids = {f["attack_id"] for f in result.body["findings"]}
    if vulnerable:
        assert result.exit_code == 1 and ids == {"T-AUTH-001"}, result.body["findings"]
    else:
        assert result.exit_code == 0 and ids == set(), [
            (f["payload"], f["evidence"]) for f in result.body["findings"]]


# ------------------------------------------------------------ MCP servers

@pytest.mark.parametrize("strict", [False, True], ids=["operator-filter", "strict-find"])
def test_smuggling_without_operator_tokens(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                           strict: bool) -> None:
    """A server that refuses argv elements equal to ';' or '|' still runs find -exec ... {} +
    (corpus2 finding 1, mcp-shell-server 1.0.3); one that refuses find's exec options passes.
    """
    import sys

    from tests.conftest import run_cli

    monkeypatch.setenv("PYTHONPATH", str(REPO))
    out = tmp_path / "init.toml"
    server = [sys.executable, "-m", "tests.targets.mcp_tools", str(tmp_path / "ws"),
              "--operator-filter", *(["--strict-find"] if strict else [])]
    assert run_cli("contract", "init", "--mcp-stdio", "--sandbox", str(tmp_path / "ws"),
                   "--out", str(out), "--", *server) == 0
    result, _ = run_attacks(AttackConfig(out, ["smuggle"], surfaces=["run_command-command"]))
    assert result.body["errors"] == [], result.body["errors"]
    found = {v["evidence"].split(":")[0] for f in result.body["findings"]
             for v in f.get("variants") or [f]}
    if strict:
        assert found == set() and result.exit_code == 0, found
    else:
        assert {"find -exec +", "find -execdir +", "find -fprintf (writes)"} <= found, found
        assert "find -exec" not in found  # its ';' token is refused


SHAPES = ["text", "resource", "blob", "image", "structured", "error", "nested", "array-objects",
          "noschema"]


@pytest.mark.parametrize("weak", [True, False], ids=["traversing", "contained"])
@pytest.mark.parametrize("shape", SHAPES, ids=SHAPES)
def test_mcp_reply_and_argument_shapes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                       shape: str, weak: bool) -> None:
    """contract init + attack on a server whose file content comes back as an embedded
    resource, a base64 blob or image, structured content or inside an isError result, or
    whose paths sit in nested objects and arrays: found when it traverses, clean when not.
    """
    import sys

    from tests.conftest import run_cli

    monkeypatch.setenv("PYTHONPATH", str(REPO))
    out, box = tmp_path / "init.toml", tmp_path / "box"
    server = [sys.executable, "-m", "tests.targets.mcp_shapes", str(box), shape,
              *(["--weak"] if weak else [])]
    assert run_cli("contract", "init", "--mcp-stdio", "--sandbox", str(box), "--out", str(out),
                   "--", *server) == 0
    result, _ = run_attacks(AttackConfig(out, ["traversal"]))
    assert result.body["errors"] == [], result.body["errors"]
    ids = {f["attack_id"] for f in result.body["findings"]}
    if weak:
        assert result.exit_code == 1 and "T-TRAV-001" in ids, out.read_text()
    else:
        assert result.exit_code == 0 and ids == set(), result.body["findings"]


# ------------------------------------------------------------ header injection

@pytest.mark.parametrize("safe", [False, True], ids=["splitting", "encoded"])
def test_header_injection_through_a_redirect(tmp_path: Path, safe: bool) -> None:
    """A server that writes the decoded path into Location is split by %0d%0a; one that
    percent-encodes it is not. Either way the redirect is followed and judged.
    """
    (tmp_path / "site").mkdir()
    (tmp_path / "site" / "index.html").write_text("<html>the app</html>\n")
    flag = "--redirect-safe" if safe else "--redirect"
    path = _contract(tmp_path, _quirks(flag), health="/healthz")
    result, cases = run_attacks(AttackConfig(path, ["header", "traversal"]))
    assert result.body["errors"] == [], result.body["errors"]
    ids = {f["attack_id"] for f in result.body["findings"]}
    if safe:
        assert ids == set() and result.exit_code == 0, result.body["findings"]
    else:
        assert ids == {"T-HDR-001"} and result.exit_code == 1, result.body["findings"]
        hdr = next(f for f in result.body["findings"] if f["attack_id"] == "T-HDR-001")
        assert hdr["cwe"] == 113 and "x-toolkit-" in hdr["evidence"].lower()
    assert next(c for c in cases if c.attack_id == "T-HDR-001").sent > 5


@pytest.mark.parametrize("weak", [True, False], ids=["first-component-check", "contained"])
def test_descend_through_a_real_folder_then_climb(tmp_path: Path, weak: bool) -> None:
    """corpus2 finding 2 (gradio 4.10): a check on the string's first component, then open()
    on the unresolved path, is passed by '<existing folder>/../../x' but not by 'a/../../x'.
    """
    flags = ["--first-component"] if weak else []
    path = _contract(tmp_path, _quirks(*flags), health="/healthz")
    result, _ = run_attacks(AttackConfig(path, ["traversal"]))
    assert result.body["errors"] == [], result.body["errors"]
    found = [v["evidence"] for f in result.body["findings"] for v in f.get("variants") or [f]]
    if weak:
        assert result.exit_code == 1, found
        assert any(e.startswith("descend through a real folder") for e in found), found
    else:
        assert result.exit_code == 0 and found == [], found


def test_contract_init_twice_after_an_upgrade_is_no_drift(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """corpus2 finding 3: two inits of one server name into one folder (its listing or command
    line changed) get different versions, so neither attack ends in a contract drift.
    """
    import sys

    from tests.conftest import run_cli

    monkeypatch.setenv("PYTHONPATH", str(REPO))
    box = tmp_path / "box"
    outs = []
    for shape in ("text", "resource"):
        out = tmp_path / f"init-{shape}.toml"
        assert run_cli("contract", "init", "--mcp-stdio", "--sandbox", str(box), "--out",
                       str(out), "--", sys.executable, "-m", "tests.targets.mcp_shapes",
                       str(box), shape) == 0
        outs.append(out)
    versions = {o.read_text().split('version = "')[1].split('"')[0] for o in outs}
    assert len(versions) == 2 and all(v.startswith("1.0.0+") for v in versions)
    for out in outs:
        result, _ = run_attacks(AttackConfig(out, ["traversal"]))
        assert result.exit_code == 0 and result.body["errors"] == [], result.body["errors"]


@pytest.mark.parametrize("weak", [True, False], ids=["operand-as-option", "refused"])
def test_cli_operand_pointed_at_the_toolkits_listener(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, weak: bool
) -> None:
    """corpus2 finding 4 (mcp-server-kubernetes 2.9.6): a required free string of a tool that
    wraps a CLI is an option surface, and '--server=<the toolkit's listener>' in it makes the
    client call the listener; a server refusing values that start with '-' passes.
    """
    import sys

    from tests.conftest import run_cli

    monkeypatch.setenv("PYTHONPATH", str(REPO))
    out, box = tmp_path / "init.toml", tmp_path / "box"
    server = [sys.executable, "-m", "tests.targets.mcp_shapes", str(box), "cli",
              *(["--weak"] if weak else [])]
    assert run_cli("contract", "init", "--mcp-stdio", "--sandbox", str(box), "--out", str(out),
                   "--", *server) == 0
    text = out.read_text()
    assert 'name = "cluster_get-resourceType"' in text and 'classes = ["option"]' in text
    result, _ = run_attacks(AttackConfig(out, ["options"]))
    assert result.body["errors"] == [], result.body["errors"]
    oracles = {f["oracle"] for f in result.body["findings"]}
    if weak:
        assert any(o.startswith("option:listener:--server=") for o in oracles), oracles
        assert result.exit_code == 1
    else:
        assert oracles == set() and result.exit_code == 0, oracles


@pytest.mark.parametrize("spa", [False, True], ids=["file", "catch-all-page"])
def test_path_spelling_bypass_needs_the_protected_content(tmp_path: Path, spa: bool) -> None:
    """A guard on the raw path is bypassed by '//admin/...'. When what comes back is the
    catch-all page every made-up path gets too, it proves nothing: no finding; when it is the
    protected file, the bypass is found.
    """
    token = "test-admin-token-3"  # pragma: allowlist secret
    flags = ["--token", token, "--naive-guard", *(["--spa"] if spa else [])]
    (tmp_path / "site").mkdir()
    (tmp_path / "site" / "index.html").write_text("<html>the app</html>\n")
    path = _contract(tmp_path, _http_files(*flags), sandbox="site/admin", prefix="/admin",
                     health="/healthz", extra=f'[auth]\nscheme = "bearer"\n'
                     f'header = "Authorization"\ntoken = "{token}"\n')
    if spa:  # the surface addresses a page of the app, not a file: the reply is the shell
        text = path.read_text().replace('path = "/admin/{{payload}}"',
                                        'path = "/admin/page"\nquery = { f = "{{payload}}" }')
        path.write_text(text.replace('version = "1.0.0"', 'version = "1.0.1"'))
        from toolkit.core import contract as contract_mod

        contract_mod.write_lock(contract_mod.load(path))
    result, cases = run_attacks(AttackConfig(path, ["auth"]))
    assert result.body["errors"] == [], result.body["errors"]
    oracles = {f["oracle"] for f in result.body["findings"]}
    if spa:
        assert oracles == set() and result.exit_code == 0, oracles
        assert any("catch-all" in n for c in cases for n in c.notes)
    else:
        assert any(o.startswith("auth:path:") for o in oracles) and result.exit_code == 1


@pytest.mark.parametrize("how", ["base_url", "header", "unnamed"])
def test_a_server_that_checks_the_host_header(tmp_path: Path, how: str) -> None:
    """A server answering only its own host name (421 otherwise) is attacked once the contract
    names it, by a localhost base_url or by the surface's Host header; a traversal is found.
    Unnamed, the error says every form got the same refusal and what to give the surface.
    """
    (tmp_path / "site").mkdir()
    path = _contract(tmp_path, _quirks("--host", "localhost", "--traverse"), health="/healthz")
    port = path.read_text().split("port = ")[1].split("\n")[0]
    text = path.read_text().replace('version = "1.0.0"', 'version = "1.0.1"')
    if how == "base_url":
        text = text.replace('service = "web"\nmethod', f'base_url = "http://localhost:{port}"\n'
                            'method')
    elif how == "header":
        text = text.replace('method = "GET"', 'method = "GET"\nheaders = { Host = "localhost" }')
    path.write_text(text)
    from toolkit.core import contract as contract_mod

    contract_mod.write_lock(contract_mod.load(path))
    result, _ = run_attacks(AttackConfig(path, ["traversal"]))
    if how == "unnamed":
        assert result.exit_code == 2
        assert "every form got the same HTTP 421" in result.body["errors"][0]
        return
    assert result.body["errors"] == [], result.body["errors"]
    assert result.exit_code == 1 and {f["attack_id"] for f in result.body["findings"]} == {
        "T-TRAV-001"}


# ------------------------------------------------------------ time budget

def test_a_slow_server_gets_the_most_telling_payloads_within_the_time_budget(
    tmp_path: Path
) -> None:
    """0.3 s a reply: with a 6 s budget every case still runs, each cut to its share after its
    most telling payloads; the traversal is still found, and the evidence says what was cut.
    """
    import time

    (tmp_path / "site").mkdir()
    path = _contract(tmp_path, _quirks("--slow", "0.3", "--traverse"), health="/healthz",
                     surface_extra="timeout_s = 5")
    t0 = time.monotonic()
    result, cases = run_attacks(AttackConfig(path, ["traversal", "robustness", "leaks"],
                                             time_budget_s=6.0))
    took = time.monotonic() - t0
    assert result.body["errors"] == [], result.body["errors"]
    assert "T-TRAV-001" in {f["attack_id"] for f in result.body["findings"]}
    assert took < 20, took  # unbudgeted: 40 traversal payloads alone take 12 s
    assert result.body["time_budget"]["cases_cut"]
    cut = [c for c in cases if any("time share" in n for n in c.notes)]
    assert cut and all(c.sent >= 3 for c in cut)


def test_time_budget_usage_error() -> None:
    from tests.conftest import run_cli

    assert run_cli("attack", "--all", "--time-budget", "-1") == 2
