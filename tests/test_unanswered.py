"""A case cannot pass on payloads nobody answered: real servers with hostile connection
habits (keep-alive broken, silence on attacks, hang-ups on attacks).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import REPO, free_ports, write_contract
from toolkit.gates.attack import AttackConfig, run_attacks

pytestmark = pytest.mark.slow


def _contract(tmp_path: Path, mode: str) -> Path:
    port = free_ports(1)[0]
    (tmp_path / "site").mkdir()
    (tmp_path / "site" / "index.html").write_text("<html>the app</html>\n")
    return write_contract(tmp_path, f"""
[contract]
name = "unanswered"
version = "1.0.0"

[[services]]
name = "web"
command = ["{{{{python}}}}", "-m", "tests.targets.http_hostile", "--port", "{{{{port}}}}",
           "--root", "{{{{contract_dir}}}}/site", "--mode", "{mode}"]
port = {port}
cwd = "{REPO}"
startup_timeout_s = 20

[[surfaces]]
name = "files"
classes = ["path"]
sandbox = "site"
service = "web"
method = "GET"
path = "/{{{{payload}}}}"
timeout_s = 1
""")


def _case(cases: list, aid: str):  # type: ignore[no-untyped-def, type-arg]
    return next(c for c in cases if c.attack_id == aid)


def test_a_server_that_breaks_keep_alive_is_retried_on_fresh_connections(
        tmp_path: Path) -> None:
    """Answers once per connection, then holds it open: every payload is still answered (on a
    fresh connection), the case is clean on real replies and says so; nothing is unanswered.
    """
    result, cases = run_attacks(AttackConfig(_contract(tmp_path, "hang-after-reply"),
                                             ["traversal"]))
    assert result.exit_code == 0, result.body["errors"]
    trav = _case(cases, "T-TRAV-001")
    assert trav.status == "clean" and trav.unanswered == 0 and trav.sent >= 20
    summary = {c["attack_id"]: c for c in result.body["cases"]}["T-TRAV-001"]
    assert summary["unanswered"] == 0
    notes = [n for c in cases for n in c.notes]
    assert any("one connection per request" in n for n in notes), notes


def test_silence_on_attacks_is_inconclusive_not_clean(tmp_path: Path) -> None:
    """Never answers an attack-looking request (answers the benign one): the traversal case
    is an error naming the count of unanswered payloads, the run exits 2, not a pass.
    """
    result, cases = run_attacks(AttackConfig(_contract(tmp_path, "hang-malicious"),
                                             ["traversal"]))
    trav = _case(cases, "T-TRAV-001")
    assert trav.status == "error" and trav.unanswered >= 3, (trav.status, trav.notes)
    assert any(f"{trav.unanswered} of {trav.sent} requests got no reply" in n
               for n in trav.notes), trav.notes
    assert result.exit_code == 2 and result.verdict == "error"
    assert any("inconclusive" in e for e in result.body["errors"]), result.body["errors"]
    assert result.body["unanswered"] >= trav.unanswered


def test_hang_ups_on_attacks_are_refusals(tmp_path: Path) -> None:
    """Closes the connection without a reply on attack-looking requests (a refusal by
    disconnecting) and answers the rest: counted as dropped, and the run passes.
    """
    result, cases = run_attacks(AttackConfig(_contract(tmp_path, "drop-malicious"),
                                             ["traversal"]))
    assert result.exit_code == 0, result.body["errors"]
    trav = _case(cases, "T-TRAV-001")
    assert trav.status == "clean" and trav.unanswered == 0 and trav.dropped >= 3, trav.notes
