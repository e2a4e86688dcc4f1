"""Typed contract sections: defaults declared once, the schema derived from them, bad values
refused when the contract loads."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import REPO, run_cli, write_contract
from toolkit.core import contract as contract_mod
from toolkit.core import schema as s
from toolkit.core import sections as sec
from toolkit.core.errors import ContractError

HEAD = '[contract]\nname = "x"\nversion = "1.0.0"\n'


def _toml(value: Any) -> str:
    """A default as the README's table writes it (TOML)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, tuple):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    raise TypeError(value)


def _readme_defaults() -> dict[str, dict[str, str]]:
    text = (REPO / "README.md").read_text()
    table = text[text.index("### Defaults"):].split("\n\n")[2]
    out: dict[str, dict[str, str]] = {}
    for row in table.splitlines()[2:]:
        name = re.match(r"\| `\[([a-z.]+)\]` \|", row).group(1)  # type: ignore[union-attr]
        out[name] = dict(re.findall(r"`(\w+) = ([^`]+)`", row))
    return out


def _declared() -> dict[str, dict[str, str]]:
    classes = {**sec.SECTIONS, "soak.thresholds": sec.Thresholds}
    out = {}
    for name, cls in classes.items():
        shown = {k: _toml(v) for k, v in sec.defaults_of(cls).items()
                 if v not in (None, ()) and not isinstance(v, sec.Thresholds)}
        if shown:
            out[name] = shown
    return out


def test_the_readme_lists_the_defaults_the_sections_declare() -> None:
    assert _readme_defaults() == _declared()


def test_the_schema_of_each_section_is_derived_from_its_fields() -> None:
    for name, cls in sec.SECTIONS.items():
        node = contract_mod.TOP.fields[name]
        assert isinstance(node, s.Table)
        assert list(node.fields) == [f.name for f in sec.keys_of(cls)], name
        required = [f.name for f in sec.keys_of(cls) if f.default is dataclasses.MISSING]
        assert list(node.required) == required, name
    thresholds = contract_mod.TOP.fields["soak"].fields["thresholds"]  # type: ignore[attr-defined]
    assert list(thresholds.fields) == [f.name for f in sec.keys_of(sec.Thresholds)]


def test_a_minimal_contract_reads_every_default_and_sections_are_frozen(tmp_path: Path) -> None:
    c = contract_mod.load(write_contract(tmp_path, HEAD, lock=False))
    assert (c.defaults, c.cycle, c.secrets, c.policy, c.evidence) == (
        sec.Defaults(), sec.CycleSection(), sec.SecretsSection(), sec.PolicySection(),
        sec.EvidenceSection())
    assert c.soak is None and c.durability is None and c.determinism is None
    assert c.evidence_dir == tmp_path / "artifacts" / "evidence"
    assert c.backup_dir == tmp_path / "artifacts" / "backups" and c.database_files == []
    with pytest.raises(dataclasses.FrozenInstanceError):
        c.cycle.count = 3  # type: ignore[misc]
    with pytest.raises(ContractError, match=r"the soak gate needs a \[soak\] section"):
        c.need(c.soak, "soak", "soak")


def test_written_keys_are_typed_and_remembered(tmp_path: Path) -> None:
    c = contract_mod.load(write_contract(tmp_path, HEAD + """
        [cycle]
        interval = "2s"
        [soak]
        duration = "10m"
        [soak.thresholds]
        p95_ms = 250
        [durability]
        rpo_s = 1
        [[durability.databases]]
        path = "d/m.db"
        [determinism]
        command = ["true"]
        """, lock=False))
    assert c.cycle.interval == 2.0 and c.cycle.given == {"interval"}
    assert c.soak is not None and c.soak.duration == 600.0 and c.soak.warmup == 0.0
    assert c.soak.given == {"duration", "thresholds"}
    assert c.soak.thresholds.p95_ms == 250 and c.soak.thresholds.error_rate == 0.005
    assert c.durability is not None and c.durability.rpo_s == 1 and c.durability.rto_s == 600
    assert c.durability.databases == (sec.Database(path="d/m.db"),)
    assert c.database_files == [tmp_path / "d" / "m.db"]
    assert c.determinism is not None and c.determinism.command == ("true",)
    assert c.determinism.runs == 2


@pytest.mark.parametrize(("body", "message"), [
    ('[soak]\nduration = "5m"\nwarmup = "10m"\n',
     "soak.warmup 600 s is not shorter than soak.duration 300 s"),
    ('[[soak.traffic]]\nname = "a"\nrate_per_s = 1\nservice = "nosuch"\npath = "/"\n',
     "soak.traffic[0].service = 'nosuch': no service has that name"),
    ('[durability.writer]\nservice = "nosuch"\npath = "/w"\n',
     "durability.writer.service = 'nosuch': no service has that name"),
    ("[cycle]\ncount = 0\n", "cycle.count = 0: must be a finite number >= 1"),
    ("[determinism]\nruns = 3\n", "determinism.command: required key is missing"),
])
def test_bad_section_values_are_a_contract_error_exit_2(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], body: str, message: str) -> None:
    path = write_contract(tmp_path, HEAD + body, lock=False)
    assert run_cli("contract", "check", "--contract", str(path)) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert message in err and "Traceback" not in err and "internal error" not in err


def test_a_section_default_must_be_immutable() -> None:
    with pytest.raises(TypeError, match="immutable"):
        sec.key([], s.List(s.Str()))
