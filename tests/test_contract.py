"""Contract parsing, validation errors, lock and drift, and a fuzzed parser."""

from __future__ import annotations

import string
from pathlib import Path

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from tests.conftest import REFERENCE, run_cli, write_contract
from toolkit.core import contract as contract_mod
from toolkit.core.errors import ContractError

MINIMAL = """
[contract]
name = "demo"
version = "1.0.0"

[[surfaces]]
name = "files"
classes = ["path"]
base_url = "http://127.0.0.1:8080"
path = "/files/{{payload}}"
"""


def test_reference_contract_is_valid_and_ordered() -> None:
    c = contract_mod.load(REFERENCE)
    assert c.name == "sonia-reference"
    levels = [[s.name for s in lvl] for lvl in contract_mod.start_levels(c)]
    assert levels[-1] == ["api-gateway"]
    assert {s.port for s in c.services} <= set(range(7000, 7051))
    assert len(c.services) == 6


def test_two_line_contract_is_enough(tmp_path: Path) -> None:
    c = contract_mod.load(write_contract(tmp_path, MINIMAL, lock=False))
    assert c.surfaces[0].raw["base_url"] == "http://127.0.0.1:8080"


BAD = [
    ("[contract]\nname='x'\nversion='1.0.0'\nnmae='y'\n", ["contract.nmae", "did you mean 'name'"]),
    ("[contract]\nname='x'\n", ["contract.version", "required"]),
    ("[contract]\nname='x'\nversion='one'\n", ["contract.version", "'one'", "semantic version"]),
    (
        "[contract]\nname='x'\nversion='1.0.0'\n[defaults]\nstartup_timeout_s='soon'\n",
        ["defaults.startup_timeout_s", "'soon'", "expected a number"],
    ),
    (
        "[contract]\nname='x'\nversion='1.0.0'\n[[services]]\nname='a'\ncommand=['{{pyton}}']\n",
        ["services[0].command[0]", "{{pyton}}", "did you mean {{python}}"],
    ),
    (
        "[contract]\nname='x'\nversion='1.0.0'\n[[services]]\nname='a'\ncommand=['x']\ndepends_on=['b']\n",
        ["depends_on", "'b'"],
    ),
    (
        (
            "[contract]\nname='x'\nversion='1.0.0'\n[[services]]\nname='a'\ncommand=['x']\n"
            "depends_on=['b']\n[[services]]\nname='b'\ncommand=['x']\ndepends_on=['a']\n"
        ),
        ["cycle"],
    ),
    (
        "[contract]\nname='x'\nversion='1.0.0'\n[[surfaces]]\nname='s'\nclasses=['paht']\nbase_url='http://127.0.0.1'\n",
        ["surfaces[0].classes[0]", "'paht'"],
    ),
    (
        "[contract]\nname='x'\nversion='1.0.0'\n[[surfaces]]\nname='s'\nclasses=['path']\nbase_url='http://127.0.0.1'\n",
        ["no {{payload}}"],
    ),
    ("[contract]\nname='x'\nversion='1.0.0'\n[auth]\nscheme='hmac-sha256'\n", ["auth.key_file"]),
    (
        "[contract]\nname='x'\nversion='1.0.0'\n[soak]\nduration='forever'\n",
        ["soak.duration", "duration"],
    ),
    ("[contract\n", ["not valid TOML"]),
    (
        "[contract]\nname='x'\nversion='1.0.0'\n[[services]]\nname='A B'\ncommand=['x']\n",
        ["services[0].name"],
    ),
]


@pytest.mark.parametrize("text,fragments", BAD)
def test_bad_contracts_name_file_key_and_value(
    tmp_path: Path, text: str, fragments: list[str]
) -> None:
    path = tmp_path / "c.toml"
    path.write_text(text)
    with pytest.raises(ContractError) as info:
        contract_mod.load(path)
    message = str(info.value)
    assert str(path) in message
    for fragment in fragments:
        assert fragment in message


def test_cli_bad_contract_exits_2_without_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "c.toml"
    path.write_text("[contract]\nname='x'\nversion='1.0.0'\nnmae='y'\n")
    assert run_cli("contract", "check", "--contract", str(path)) == 2
    err = capsys.readouterr().err
    assert "did you mean 'name'" in err and "Traceback" not in err


def test_missing_contract_file_exits_2(tmp_path: Path) -> None:
    assert run_cli("attack", "--all", "--contract", str(tmp_path / "nope.toml")) == 2


def test_lock_then_drift_then_bump(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_contract(tmp_path, MINIMAL, lock=False)
    assert run_cli("contract", "verify", "--contract", str(path)) == 1  # no lock yet
    assert run_cli("contract", "lock", "--contract", str(path)) == 0
    assert run_cli("contract", "verify", "--contract", str(path)) == 0
    path.write_text(path.read_text().replace('"/files/', '"/v2/files/'))
    capsys.readouterr()
    assert run_cli("contract", "verify", "--contract", str(path)) == 1
    err = capsys.readouterr().err
    assert "drift" in err and "1.0.0" in err
    # every gate refuses a drifted contract
    assert run_cli("attack", "--all", "--contract", str(path)) == 2
    assert (
        run_cli("contract", "lock", "--contract", str(path)) == 1
    )  # no silent re-lock under the same version
    path.write_text(path.read_text().replace('version = "1.0.0"', 'version = "1.1.0"'))
    assert run_cli("contract", "verify", "--contract", str(path)) == 1  # stale lock
    assert run_cli("contract", "lock", "--contract", str(path)) == 0
    assert run_cli("contract", "verify", "--contract", str(path)) == 0


def test_payload_replaces_whole_value() -> None:
    tpl = {"a": "{{payload}}", "b": "x-{{payload}}", "c": ["{{payload}}"]}
    out = contract_mod.expand(tpl, {"payload": ["ls", "-l"]})
    assert out == {"a": ["ls", "-l"], "b": "x-['ls', '-l']", "c": [["ls", "-l"]]}


toml_scalars = st.one_of(
    st.integers(), st.text(max_size=20), st.booleans(), st.floats(allow_nan=True)
)
keys = st.sampled_from(["contract", "name", "version", "services", "surfaces", "command", "port",
                        "classes", "auth", "scheme", "nmae", "env", "{{x}}", "depends_on", "soak"])
trees = st.recursive(toml_scalars, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                          st.dictionaries(keys, inner, max_size=5)),
                     max_leaves=20)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(keys, trees, max_size=6))
@example(
    {"contract": {"name": "x", "version": "1.0.0"}, "services": [{"name": "a", "command": []}]}
)
@example(
    {
        "contract": {"name": "x", "version": "1.0.0"},
        "surfaces": [{"name": "s", "classes": ["path"], "base_url": 1}],
    }
)
def test_parser_never_crashes_on_structures(
    tmp_path_factory: pytest.TempPathFactory, tree: dict
) -> None:
    import tomllib  # noqa: F401 - the structures go through the validator directly

    try:
        contract_mod.TOP.check(tree, "", contract_mod.s.Ctx("fuzz.toml"))
    except ContractError:
        pass


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=string.printable + "é\u2025\x00", max_size=200))
@example('[contract]\nname="x"\nversion="1.0.0"\n[[services]]\nname="a"\ncommand=["{{"]\n')
def test_parser_never_crashes_on_text(text: str) -> None:
    try:
        contract_mod.parse(text.encode("utf-8", "surrogatepass"), Path("fuzz.toml"))
    except ContractError:
        pass


@pytest.mark.parametrize("kind", ["fifo", "dev-zero"])
def test_inputs_that_never_end_are_refused_not_read(
    tmp_path: Path, kind: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """A FIFO blocked `open` for ever and /dev/zero was read until memory ran out: the
    contract, a trust file, a blocker's root cause and a secrets baseline each hung."""
    import os

    from tests.conftest import run_cli, write_contract

    if kind == "fifo":
        bad = tmp_path / "pipe"
        os.mkfifo(bad)
    else:
        bad = Path("/dev/zero")
    good = write_contract(tmp_path, '[contract]\nname = "x"\nversion = "1.0.0"\n')
    for argv in (["contract", "check", "--contract", str(bad)],
                 ["verify", str(tmp_path), "--trust", str(bad)],
                 ["blocker", "resolve", "--gate", "soak", "--root-cause", str(bad), "--fix", "x",
                  "--contract", str(good)],
                 ["secrets", "scan", "--no-bandit", "--baseline", str(bad), str(good)]):
        assert run_cli(*argv) == 2, argv
        err = " ".join(capsys.readouterr().err.split())
        assert "not a regular file" in err or "readable detect-secrets baseline" in err, err
