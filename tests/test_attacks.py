"""Gate 3: positive controls (each weakness found by its attack) and the hardened negative
control.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from attacks.base import MAX_SILENT, REGISTRY, AttackSpec, load_attacks, register
from attacks.command import linear_fit
from attacks.mutate import mutations
from tests.conftest import REFERENCE, reference_copy, run_cli
from toolkit.core import contract as contract_mod
from toolkit.core.errors import ToolkitError
from toolkit.core.model import Severity
from toolkit.gates.attack import AttackConfig, run_attacks

pytestmark = pytest.mark.slow


def _run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, weaken: str, *selection: str,
         budget: str = "standard") -> tuple[int, dict]:
    path = reference_copy(tmp_path)
    if weaken == "policy-reload":
        _short_policy_reload(path)
    if weaken:
        monkeypatch.setenv("SONIA_WEAKEN", weaken)
    else:
        monkeypatch.delenv("SONIA_WEAKEN", raising=False)
    result, _cases = run_attacks(AttackConfig(path, list(selection), budget=budget))
    return result.exit_code, result.body


def _short_policy_reload(path: Path) -> None:
    """A service that never reloads its policy is caught after ``[policy].reload_within_s``:
    3 s prove that as well as the reference's 30 (the hardened run keeps 30 and must reload).
    """
    text = path.read_text()
    policy = text.index("[policy]")
    head, tail = text[:policy], text[policy:]
    tail = tail.replace("reload_within_s = 30\n", "reload_within_s = 3\n", 1)
    assert "reload_within_s = 3\n" in tail
    text = re.sub(r'version = "[^"]+"', 'version = "9.0.2"', head + tail, count=1)
    path.write_text(text)
    assert run_cli("contract", "lock", "--contract", str(path)) == 0


def test_hardened_stack_has_zero_findings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    code, body = _run(tmp_path, monkeypatch, "")
    assert body["findings"] == [], body["findings"]
    assert code == 0 and body["payloads_sent"] > 500
    ran = {c["attack_id"] for c in body["cases"] if c["status"] == "clean"}
    classes = {k for s in contract_mod.load(REFERENCE).surfaces for k in s.classes}
    applicable = {aid for aid, cls in load_attacks().items() if set(cls.spec.classes) & classes}
    assert ran == applicable  # every attack for a class the reference stack has really ran
    folder = Path(next((tmp_path / "artifacts" / "phase3" / "attack").iterdir()))
    sarif = json.loads(next(folder.glob("*.sarif")).read_text())
    assert sarif["version"] == "2.1.0" and sarif["runs"][0]["results"] == []
    assert run_cli("verify", str(folder)) == 0
    # canaries and probes were removed; nothing of ours is left next to the sandbox
    assert not list((tmp_path / "state").glob("toolkit-canary-*"))
    assert not (tmp_path / "state" / "sandbox_x").exists()
    # nor anything a writing surface made of a payload (``..%2ftoolkit-canary-*.txt`` and the like)
    assert [
        p.name for p in (tmp_path / "state" / "sandbox").rglob("*") if "toolkit-" in p.name
    ] == []
    assert not (tmp_path / "artifacts" / "phase3" / ".attack-litter.jsonl").exists()


POSITIVE = [
    ("traversal", "traversal", {"T-TRAV-001"}),
    ("prefix", "traversal", {"T-TRAV-001"}),
    ("symlink", "symlink", {"T-LINK-001"}),
    ("shell", "command", {"T-CMD-001"}),
    ("smuggle", "smuggle", {"T-POL-002"}),
    ("env", "env", {"T-ENV-001"}),
    ("policy", "policy", {"T-POL-001"}),
    ("policy-client", "policy", {"T-POL-001"}),
    ("policy-reload", "policy-reload", {"T-POL-003"}),
    ("auth", "auth", {"T-AUTH-001"}),
    ("skew", "auth", {"T-AUTH-001"}),
    ("replay", "replay", {"T-AUTH-002"}),
    ("logs", "leaks", {"T-LEAK-001"}),
    ("errors", "leaks", {"T-LEAK-001"}),
    ("disclosure", "leaks", {"T-LEAK-001"}),
    ("plaintext", "leaks", {"T-LEAK-001"}),
]


@pytest.mark.parametrize("weaken,family,expected", POSITIVE, ids=[p[0] for p in POSITIVE])
def test_each_weakness_is_found_by_its_attack(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, weaken: str, family: str, expected: set[str]
) -> None:
    selection = [family, "leaks"] if family in ("env", "smuggle", "command") else [family]
    code, body = _run(tmp_path, monkeypatch, weaken, *selection)
    found = {f["attack_id"] for f in body["findings"]}
    assert expected <= found, body["cases"]
    assert code == 1
    for f in body["findings"]:
        assert f["transcript"] and (tmp_path / "artifacts").exists()
        assert "tkc-" not in json.dumps(f)  # the canary secret never appears in clear text


def test_rotation_without_reload_is_found(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = reference_copy(tmp_path)
    text = path.read_text().replace(
        "reload_within_s = 30\n\n[[surfaces]]", "reload_within_s = 2\n\n[[surfaces]]", 1
    )
    text = re.sub(r'version = "[^"]+"', 'version = "9.0.1"', text, count=1)
    path.write_text(text)
    assert run_cli("contract", "lock", "--contract", str(path)) == 0
    keys = tmp_path / "state" / "keys" / "service.keys"
    monkeypatch.setenv("SONIA_WEAKEN", "rotation")
    result, _ = run_attacks(AttackConfig(path, ["rotation"], surfaces=["openclaw-file-read"]))
    assert {f["oracle"] for f in result.body["findings"]} == {"rotation:add"}
    monkeypatch.delenv("SONIA_WEAKEN")
    original = keys.read_text()
    result, _ = run_attacks(AttackConfig(path, ["rotation"], surfaces=["openclaw-file-read"]))
    assert result.body["findings"] == [] and result.exit_code == 0
    assert keys.read_text() == original  # rollback restored the key file


def _one_surface(tmp_path: Path, base_url: str, extra: str = "") -> Path:
    """A locked two-table contract with one path surface at ``base_url``."""
    path = tmp_path / "c.toml"
    path.write_text(
        '[contract]\nname = "x"\nversion = "1.0.0"\n[[surfaces]]\nname = "s"\nclasses = ["path"]\n'
        f'base_url = "{base_url}"\npath = "/f/{{{{payload}}}}"\n{extra}'
    )
    assert run_cli("contract", "lock", "--contract", str(path)) == 0
    return path


def test_unreachable_surface_is_an_error_not_a_pass(tmp_path: Path) -> None:
    assert (
        run_cli("attack", "--all", "--contract", str(_one_surface(tmp_path, "http://127.0.0.1:9")))
        == 2
    )


def test_remote_target_refused(tmp_path: Path) -> None:
    assert (
        run_cli(
            "attack", "traversal", "--contract", str(_one_surface(tmp_path, "http://192.0.2.10:80"))
        )
        == 2
    )


def test_list_and_usage(capsys: pytest.CaptureFixture[str]) -> None:
    assert run_cli("attack", "--list") == 0
    out = capsys.readouterr().out
    for aid in ("T-TRAV-001", "T-LINK-001", "T-CMD-001", "T-ENV-001", "T-AUTH-002", "T-POL-001"):
        assert aid in out
    assert run_cli("attack") == 2
    assert run_cli("attack", "no-such-family") == 2


def test_registry_rejects_duplicates_and_bad_ids() -> None:
    load_attacks()

    class Dup:
        """Duplicate."""
        spec = AttackSpec("T-TRAV-001", "x", "x", 22, Severity.LOW, ("path",))

    with pytest.raises(ToolkitError, match="registered twice"):
        register(Dup)

    class BadId:
        """Bad id."""
        spec = AttackSpec("TRAV1", "x", "x", 22, Severity.LOW, ("path",))

    with pytest.raises(ToolkitError, match="must look like"):
        register(BadId)
    assert "TRAV1" not in REGISTRY


def test_timing_fit_needs_a_linear_relation() -> None:
    xs = [0, 2, 0, 1, 0, 2]
    slope, _, r2 = linear_fit(xs, [0.01 + x + 0.005 * i for i, x in enumerate(xs)])
    assert 0.9 < slope < 1.1 and r2 > 0.99
    noisy = linear_fit(xs, [0.5, 0.01, 0.7, 0.02, 0.4, 0.03])
    assert noisy is not None and (noisy[0] < 0.7 or noisy[2] < 0.9)
    assert linear_fit([1, 1, 1], [1, 2, 3]) is None


def test_mutations_are_reproducible_from_the_seed() -> None:
    a = mutations("../secret.txt", 42, 5)
    assert a == mutations("../secret.txt", 42, 5)
    assert len(a) == 5 and "../secret.txt" not in a


def test_blind_timing_oracle_fires_on_a_real_shell(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = reference_copy(tmp_path)
    text = path.read_text().replace('name = "openclaw-shell"\nclasses = ["argv"]',
                                    'name = "openclaw-shell"\nclasses = ["argv"]\nblind = true')
    path.write_text(re.sub(r'version = "[^"]+"', 'version = "9.0.2"', text, count=1))
    assert run_cli("contract", "lock", "--contract", str(path)) == 0
    monkeypatch.setenv("SONIA_WEAKEN", "shell")
    result, _ = run_attacks(
        AttackConfig(path, ["command"], surfaces=["openclaw-shell"], budget="quick")
    )
    timing = [f for f in result.body["findings"] if f["oracle"] == "timing:linear-fit"]
    assert timing and "slope" in timing[0]["evidence"]
    monkeypatch.delenv("SONIA_WEAKEN")
    result, _ = run_attacks(
        AttackConfig(path, ["command"], surfaces=["openclaw-shell"], budget="quick")
    )
    assert result.body["findings"] == []


def test_a_surface_that_stops_answering_ends_its_case_quickly(tmp_path: Path) -> None:
    """A server that accepts connections and then never answers: errors, not a hang."""
    import socket
    import threading

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    port = listener.getsockname()[1]
    held: list[socket.socket] = []
    answered = threading.Event()

    def accept() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            held.append(conn)
            if not answered.is_set():  # answer the baseline only, then go silent
                conn.recv(65536)
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
                conn.close()
                answered.set()

    threading.Thread(target=accept, daemon=True).start()
    path = _one_surface(tmp_path, f"http://127.0.0.1:{port}", "timeout_s = 1\n")
    result, cases = run_attacks(AttackConfig(path, ["traversal"]))
    assert result.exit_code == 2 and "stopped answering" in " ".join(result.body["errors"])
    # it ended after MAX_SILENT unanswered requests, not after every payload's timeout
    # (counted, not timed: a loaded machine is slow but sends the same requests)
    assert result.body["payloads_sent"] == MAX_SILENT and [c.sent for c in cases] == [MAX_SILENT]
    listener.close()
    for conn in held:
        conn.close()


def test_html_and_markdown_reports_escape_hostile_payloads() -> None:
    from types import SimpleNamespace

    from reports.writers import HtmlWriter, MarkdownWriter
    from toolkit.core.events import CaseFinished, FindingMade
    from toolkit.core.model import Finding, Severity

    run = SimpleNamespace(
        evidence=SimpleNamespace(run_id="r1"), contract=SimpleNamespace(name="c", version="1")
    )
    finding = Finding("T-TRAV-001", "Path traversal", "s<b>", "path", 22, Severity.HIGH,
                      "<img src=x onerror=alert(1)>", "<script>alert(1)</script> | row", "t.txt")
    case = CaseFinished("T-TRAV-001", "t", "s<b>", "vulnerable", 3, 1, [])
    done = {"verdict": "fail", "budget": "quick", "seed": 1}
    for cls in (HtmlWriter, MarkdownWriter):
        writer = cls(run)  # type: ignore[arg-type]
        writer.handle(FindingMade(finding))
        writer.handle(case)
        text = writer.render(done).decode()
        if cls is HtmlWriter:
            assert "<script>" not in text and "<img" not in text and "&lt;script&gt;" in text
        else:
            assert "\\| row" in text and text.count("\n| T-TRAV-001 |") == 1


# ---------------------------------------------------------------- real servers the toolkit never
# saw


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _static_contract(
    tmp_path: Path, command: str, extra: str = "", surface_extra: str = ""
) -> Path:
    """A service started from its command, addressed by base_url (not by service name)."""
    from tests.conftest import REPO, write_contract

    port = _free_port()
    (tmp_path / "site").mkdir(exist_ok=True)
    return write_contract(tmp_path, f"""
[contract]
name = "static"
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
sandbox = "site"
base_url = "http://127.0.0.1:{port}"
method = "GET"
path = "/{{{{payload}}}}"
{surface_extra}
""")


def test_stdlib_http_server_is_started_by_base_url_and_passes(tmp_path: Path) -> None:
    """python -m http.server: started though only base_url names it; no traversal, no banner
    'leak'.
    """
    path = _static_contract(tmp_path, '["{{python}}", "-m", "http.server", "--bind", "127.0.0.1", '
                                      '"--directory", "{{contract_dir}}/site", "{{port}}"]')
    result, _ = run_attacks(AttackConfig(path, ["traversal", "leaks"]))
    assert result.body["errors"] == [] and result.body["findings"] == [], result.body
    assert result.exit_code == 0 and result.body["payloads_sent"] > 20
    folder = Path(result.summary_path).parent
    journal = (folder / "journal.jsonl").read_text()
    assert '"form": "relative name"' in journal  # the planted file was served under its plain name
    assert not list((tmp_path / "site").iterdir())  # probes and canaries removed


def test_a_crashing_http_service_is_restarted_and_the_crash_is_a_finding(tmp_path: Path) -> None:
    path = _static_contract(
        tmp_path,
        '["{{python}}", "-m", "tests.targets.http_files", "--port", "{{port}}", '
        '"--root", "{{contract_dir}}/site", "--crash-on-nul"]',
    )
    result, cases = run_attacks(AttackConfig(path, ["traversal"]))
    crash = [f for f in result.body["findings"] if f["attack_id"] == "T-DOS-001"]
    assert crash and crash[0]["cwe"] == 248
    # grouped: the NUL payload that crashed it is one of the finding's variants
    # (evidence may carry the payload raw or escaped; either way it names the NUL)
    assert any("x00" in repr(v["payload"]) for f in crash for v in f["variants"]), crash
    assert {f["attack_id"] for f in result.body["findings"]} == {"T-DOS-001"}
    trav = next(c for c in cases if c.attack_id == "T-TRAV-001")
    assert trav.sent > 20  # the attack went on after the restart
    assert result.exit_code == 1 and result.body["errors"] == []


def test_bearer_token_from_an_unset_variable_sends_no_header(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TOOLKIT_TEST_UNSET_TOKEN", raising=False)
    path = _static_contract(
        tmp_path,
        '["{{python}}", "-m", "tests.targets.http_files", "--port", "{{port}}", '
        '"--root", "{{contract_dir}}/site"]',
        extra='[auth]\nscheme = "bearer"\nheader = "Authorization"\n'
        'token_env = "TOOLKIT_TEST_UNSET_TOKEN"\n',
    )
    result, _ = run_attacks(AttackConfig(path, ["auth", "traversal"]))
    assert result.exit_code != 2, result.body["errors"]
    # the server takes no token at all: the missing-token probe is accepted, which is the finding
    assert {f["attack_id"] for f in result.body["findings"]} == {"T-AUTH-001"}
    folder = Path(result.summary_path).parent
    assert "Bearer \n" not in "".join(p.read_text() for p in (folder / "transcripts").iterdir())


def test_same_origin_redirects_are_followed(tmp_path: Path) -> None:
    from toolkit.core.transport import same_origin_target

    assert same_origin_target("http://127.0.0.1:1", "/a", "/a/") == "/a/"
    assert same_origin_target("http://127.0.0.1:1", "/a/b", "c") == "/a/c"
    assert same_origin_target("http://127.0.0.1:1", "/a", "http://127.0.0.1:1/x?y=1") == "/x?y=1"
    assert same_origin_target("http://127.0.0.1:1", "/a", "http://example.com/") is None
    assert same_origin_target("http://127.0.0.1:1", "/a", "") is None


def test_a_killed_runs_litter_is_removed_by_the_next_run(tmp_path: Path) -> None:
    """Canaries journaled before creation; a run that never cleaned up leaves a list to act on."""
    from attacks.base import Canaries

    box = tmp_path / "box"
    box.mkdir()
    journal = tmp_path / "ev" / ".attack-litter.jsonl"
    work = tmp_path / "toolkit-canaries-x"
    work.mkdir()
    first = Canaries(work, journal)
    near, _ = first.file(tmp_path)
    first.watch(box)
    echoed = box / f"..%2f{near.name}"  # what a writing target made of a traversal payload
    echoed.write_text("x")
    keep = box / "user-file.txt"
    keep.write_text("mine")
    # the run is killed here: no cleanup
    removed = Canaries.recover(journal)
    assert not near.exists() and not echoed.exists() and not work.exists()
    assert keep.exists() and not journal.exists()
    assert str(near) in removed


def test_a_run_killed_mid_attack_leaves_nothing_after_the_next_run(tmp_path: Path) -> None:
    """kill -9 during the traversal case; the next run removes the canaries the first one
    recorded.
    """
    import subprocess
    import sys
    import time

    from tests.conftest import REPO

    path = _static_contract(
        tmp_path,
        '["{{python}}", "-m", "tests.targets.http_files", "--port", "{{port}}", '
        '"--root", "{{contract_dir}}/site"]',
        surface_extra="timeout_s = 5",
    )
    journal = tmp_path / "artifacts" / "evidence" / ".attack-litter.jsonl"
    proc = subprocess.Popen(
        [sys.executable, "-m", "toolkit", "attack", "traversal", "symlink", "-c", str(path)],
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        if journal.exists() and journal.read_text().count("toolkit-canary") >= 3:
            break
        time.sleep(0.05)
    proc.kill()
    proc.wait()
    recorded = [line for line in journal.read_text().splitlines() if '"kind": "file"' in line]
    assert recorded, "the killed run journaled nothing"
    left = [p for p in tmp_path.rglob("*toolkit-canary*")]
    assert left  # the killed run did leave litter behind
    result, _ = run_attacks(AttackConfig(path, ["traversal"]))
    assert result.exit_code == 0, result.body
    assert [p for p in tmp_path.rglob("*toolkit-*") if "artifacts" not in p.parts] == []
    assert not journal.exists()


@pytest.mark.parametrize("naive", [True, False], ids=["raw-path-guard", "normalised-guard"])
def test_auth_bypass_through_another_spelling_of_the_path(tmp_path: Path, naive: bool) -> None:
    """A guard that checks the raw path while the router normalises it (//admin/...) is found."""
    token = "test-admin-token-1"  # pragma: allowlist secret
    flags = f', "--token", "{token}"' + (', "--naive-guard"' if naive else "")
    path = _static_contract(
        tmp_path,
        '["{{python}}", "-m", "tests.targets.http_files", "--port", "{{port}}", '
        f'"--root", "{{{{contract_dir}}}}/site"{flags}]',
        extra=f'[auth]\nscheme = "bearer"\nheader = "Authorization"\ntoken = "{token}"\n',
    )
    text = (
        path.read_text()
        .replace('sandbox = "site"', 'sandbox = "site/admin"')
        .replace('path = "/{{payload}}"', 'path = "/admin/{{payload}}"')
        .replace('version = "1.0.0"', 'version = "1.0.1"')
    )
    path.write_text(text)
    assert run_cli("contract", "lock", "--contract", str(path)) == 0
    result, _ = run_attacks(AttackConfig(path, ["auth"]))
    oracles = {f["oracle"] for f in result.body["findings"]}
    if naive:
        assert any(o.startswith("auth:path:") for o in oracles) and result.exit_code == 1, (
            result.body
        )
    else:
        assert oracles == set() and result.exit_code == 0, result.body


def test_a_plugin_reusing_a_builtin_id_and_qualname_is_a_load_error() -> None:
    load_attacks()
    builtin = REGISTRY["T-TRAV-001"]
    shadow = type(builtin.__name__, (), {"__doc__": "Shadow.", "spec": builtin.spec,
                                          "__qualname__": builtin.__qualname__,
                                          "__module__": "evil_plugin"})
    with pytest.raises(ToolkitError, match="registered twice") as err:
        register(shadow)
    assert builtin.__module__ in str(err.value) and "evil_plugin" in str(err.value)
    assert REGISTRY["T-TRAV-001"] is builtin


def test_builtins_load_through_the_entry_point_group() -> None:
    import importlib.metadata

    from attacks.base import ENTRY_POINT_GROUP

    points = {ep.name: ep.value for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)}
    assert points.get("builtin") == "attacks"
    assert {"T-TRAV-001", "T-CMD-001", "T-LEAK-001"} <= set(load_attacks())
