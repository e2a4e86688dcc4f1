"""MCP over stdio: SDK-built vulnerable and hardened servers, hostile servers, a real npm server."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.conftest import REPO, run_cli, write_contract
from toolkit.attack import AttackConfig, run_attacks


def _contract(tmp_path: Path, command: str, tool: str = "read_file", extra: str = "", cwd: str | None = None) -> Path:
    (tmp_path / "box").mkdir(exist_ok=True)
    return write_contract(tmp_path, f"""
        [contract]
        name = "mcp"
        version = "1.0.0"

        [[surfaces]]
        name = "files"
        classes = ["path"]
        transport = "mcp-stdio"
        sandbox = "box"
        command = {command}
        cwd = "{cwd or REPO}"
        tool = "{tool}"
        arguments = {{ path = "{{{{payload}}}}" }}
        {extra}
        """)


SDK_SERVER = '["{{python}}", "-m", "tests.targets.mcp_files", "{{sandbox}}"'


def test_vulnerable_sdk_server_is_found(tmp_path: Path) -> None:
    path = _contract(tmp_path, SDK_SERVER + ', "--weak"]')
    result, _ = run_attacks(AttackConfig(path, ["traversal", "symlink"]))
    found = {f["attack_id"] for f in result.body["findings"]}
    assert found == {"T-TRAV-001", "T-LINK-001"} and result.exit_code == 1


def test_hardened_sdk_server_is_clean(tmp_path: Path) -> None:
    path = _contract(tmp_path, SDK_SERVER + "]")
    result, cases = run_attacks(AttackConfig(path, ["traversal", "symlink", "leaks"]))
    assert result.body["findings"] == [] and result.exit_code == 0
    assert all(c.sent > 0 for c in cases)


def test_non_conforming_server_still_attacked(tmp_path: Path) -> None:
    """inputSchema without "type" and debug lines on stdout: the lenient layer copes."""
    path = _contract(tmp_path, '["{{python}}", "-m", "tests.targets.mcp_hostile", "loose"]',
                     cwd=str(tmp_path / "box"), extra=f'env = {{ PYTHONPATH = "{REPO}" }}')
    result, _ = run_attacks(AttackConfig(path, ["traversal"]))
    assert {f["attack_id"] for f in result.body["findings"]} == {"T-TRAV-001", "T-DOS-001"}
    # a NUL byte in a path crashes this server: the crash is a finding with its payload, the
    # server is restarted and the attack goes on to the end
    crash = [f for f in result.body["findings"] if f["attack_id"] == "T-DOS-001"]
    assert crash[0]["cwe"] == 248 and "\x00" in crash[0]["payload"]
    assert result.exit_code == 1 and result.body["errors"] == []
    assert result.body["payloads_sent"] > 20


@pytest.mark.parametrize("mode,message", [("silent", "no answer to initialize within 2 s"),
                                          ("exit", "exited (code 3) during tools/call"),
                                          ("garbage", "non-JSON line")])
def test_hostile_servers_are_reported_not_passed(tmp_path: Path, mode: str, message: str,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    path = _contract(tmp_path, f'["{{{{python}}}}", "-m", "tests.targets.mcp_hostile", "{mode}"]',
                     extra="timeout_s = 2")
    assert run_cli("attack", "traversal", "--contract", str(path)) == 2
    assert message in " ".join(capsys.readouterr().err.split())


# installed by .ci/run before pytest; nothing is fetched from a registry at test time
NPM_FS_SERVER = REPO / ".cache" / "npm" / "node_modules" / ".bin" / "mcp-server-filesystem"


@pytest.mark.skipif(not NPM_FS_SERVER.exists() or shutil.which("node") is None,
                    reason="@modelcontextprotocol/server-filesystem not installed in .cache/npm "
                           "(.ci/run installs it when npm is available) or Node.js missing")
def test_real_filesystem_server_from_npm_is_clean(tmp_path: Path) -> None:
    """@modelcontextprotocol/server-filesystem confines paths with realpath: no escape, and it
    really answered."""
    path = _contract(tmp_path, f'["{NPM_FS_SERVER}", "{{{{sandbox}}}}"]',
                     tool="read_text_file", cwd=str(tmp_path / "box"), extra="timeout_s = 60")
    result, cases = run_attacks(AttackConfig(path, ["traversal", "symlink"]))
    assert result.body["errors"] == [] and result.body["findings"] == []
    assert {c.attack_id for c in cases if c.status == "clean" and c.sent > 5} == {"T-TRAV-001", "T-LINK-001"}
