"""Generated contracts through load and every gate's plan: a clear error or a plan, never a
crash.
"""

from __future__ import annotations

import json
import math
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from tests.conftest import run_cli, write_contract
from toolkit.core import contract as contract_mod
from toolkit.core.errors import ContractError, ToolkitError
from toolkit.gates.drill import DrillConfig, plan
from toolkit.gates.registry import plan_gates

HOSTILE_STR = [
    "/dev/null",
    "..",
    ".",
    "/",
    "",
    "../..",
    "/etc",
    "~",
    "a\x00b",
    "x" * 300,
    "{{payload}}",
    "{{python}}",
    "{{contract_dir}}/..",
    "state",
    "state/db.sqlite",
    "http://10.0.0.1/",
    "/healthz",
    "memory-engine",
    "ghost",
    " ",
    "é",
    "../../../../../../..",
]
HOSTILE_NUM: list[Any] = [
    0,
    -1,
    0.0,
    -0.5,
    math.inf,
    -math.inf,
    math.nan,
    1e300,
    2**62,
    1,
    2,
    0.001,
    65536,
    5,
    True,
]

scalar = st.one_of(st.sampled_from(HOSTILE_STR), st.sampled_from(HOSTILE_NUM), st.text(max_size=12),
                   st.integers(-10, 70000), st.floats(allow_nan=True, allow_infinity=True))
value = st.one_of(
    scalar,
    st.lists(scalar, max_size=3),
    st.dictionaries(st.sampled_from(["a", "b", "service", "path"]), scalar, max_size=2),
)

BASE: dict[str, Any] = {
    "contract": {"name": "fuzz", "version": "1.0.0"},
    "defaults": {"health_interval_s": 5, "startup_timeout_s": 5, "stop_timeout_s": 5},
    "services": [{"name": "svc", "command": ["{{python}}", "-c", "pass"], "port": 7999,
                  "logs": ["logs/svc.log"], "state": ["state"]}],
    "surfaces": [{"name": "s", "classes": ["path"], "service": "svc", "sandbox": "box",
                  "path": "/f/{{payload}}", "timeout_s": 5}],
    "durability": {"rpo_s": 60, "rto_s": 60, "state_dirs": ["state"], "backup_dir": "backups",
                   "databases": [{"path": "state/db.sqlite"}],
                   "writer": {"service": "svc", "path": "/w", "json": {"k": "sentinel-{{seq}}"},
                              "rate_per_s": 10}},
    "determinism": {"command": ["{{python}}", "-m", "pytest"], "runs": 2, "cwd": "."},
    "soak": {"duration": "10m", "warmup": "1m",
             "traffic": [{"name": "t", "rate_per_s": 1, "service": "svc", "path": "/"}]},
    "secrets": {"scan": ["state"], "code": ["src"]},
    "evidence": {"dir": "evidence"},
}
KEYS = [
    ("defaults", "health_interval_s"),
    ("defaults", "startup_timeout_s"),
    ("defaults", "stop_timeout_s"),
    ("defaults", "host"),
    ("services.0", "port"),
    ("services.0", "cwd"),
    ("services.0", "logs"),
    ("services.0", "state"),
    ("services.0", "health"),
    ("services.0", "startup_timeout_s"),
    ("services.0", "command"),
    ("services.0", "depends_on"),
    ("services.0", "env"),
    ("surfaces.0", "sandbox"),
    ("surfaces.0", "service"),
    ("surfaces.0", "timeout_s"),
    ("surfaces.0", "classes"),
    ("surfaces.0", "transport"),
    ("durability", "rpo_s"),
    ("durability", "rto_s"),
    ("durability", "state_dirs"),
    ("durability", "backup_dir"),
    ("durability.databases.0", "path"),
    ("durability.writer", "rate_per_s"),
    ("durability.writer", "service"),
    ("durability.writer", "base_url"),
    ("determinism", "runs"),
    ("determinism", "cwd"),
    ("determinism", "command"),
    ("determinism", "expected_failures"),
    ("soak", "duration"),
    ("soak", "warmup"),
    ("soak.traffic.0", "rate_per_s"),
    ("soak.traffic.0", "service"),
    ("secrets", "scan"),
    ("evidence", "dir"),
    ("auth", "scheme"),
    ("auth", "key_file"),
    ("auth", "window_s"),
]


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if math.isnan(v):
            return "nan"
        return ("inf" if v > 0 else "-inf") if math.isinf(v) else repr(v)
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, list):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    return "{" + ", ".join(f"{json.dumps(k)} = {_toml_value(x)}" for k, x in v.items()) + "}"


def to_toml(doc: dict[str, Any]) -> str:
    out = []
    for section, body in doc.items():
        tables = body if isinstance(body, list) else [body]
        for table in tables:
            out.append(f"[[{section}]]" if isinstance(body, list) else f"[{section}]")
            out += [f"{json.dumps(k)} = {_toml_value(v)}" for k, v in table.items()]
    return "\n".join(out) + "\n"


def _set(doc: dict[str, Any], where: str, key: str, v: Any) -> None:
    node: Any = doc
    for part in where.split("."):
        node = node[int(part)] if part.isdigit() else node.setdefault(part, {})
    if v is None:
        node.pop(key, None)
    else:
        node[key] = v


def _check(doc: dict[str, Any]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        path = folder / "contract.toml"
        path.write_text(to_toml(doc))
        try:
            contract_mod.write_lock(contract_mod.load(path))
        except ContractError:
            return
        for step in (lambda: plan_gates(path), lambda: plan(DrillConfig(path, seed=1))):
            try:
                step()
            except ToolkitError:
                pass
        assert run_cli("contract", "check", "--contract", str(path)) == 0


@settings(max_examples=400, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    st.lists(st.tuples(st.sampled_from(KEYS), st.one_of(st.none(), value)), min_size=1, max_size=4)
)
@example(
    [(("services.0", "cwd"), "a\x00b")]
)  # found by this test: os.path.realpath raised ValueError
@example([(("soak.traffic.0", "rate_per_s"), 1e300)])
@example([(("defaults", "health_interval_s"), 0)])
@example([(("evidence", "dir"), "x" * 300)])  # found by this fuzz: OSError ENAMETOOLONG
def test_generated_contracts_load_and_plan_or_fail_clearly(edits: list[Any]) -> None:
    doc = json.loads(json.dumps(BASE))
    for (where, key), v in edits:
        _set(doc, where, key, v)
    _check(doc)  # any exception but ToolkitError fails the test


BAD = [
    ("surfaces.0", "sandbox", "/dev/null", "not a folder"),
    ("services.0", "logs", [".."], "is a folder"),
    ("defaults", "health_interval_s", 0, "finite number >"),
    ("evidence", "dir", "/", "filesystem root"),
    ("evidence", "dir", "../../../../../../../..", "filesystem root"),
    ("services.0", "startup_timeout_s", math.inf, "finite"),
    ("services.0", "startup_timeout_s", math.nan, "finite"),
    ("services.0", "stop_timeout_s", -1, "finite"),
    ("durability", "state_dirs", [".."], "holds"),
    ("durability", "state_dirs", ["."], "the contract"),
    ("durability.writer", "rate_per_s", 1e12, "<="),
    ("soak", "duration", "99999999d", "366 days"),
    ("services.0", "cwd", "a\x00b", "NUL"),
    ("evidence", "dir", "x" * 300, "not a usable path"),
    ("services.0", "state", ["y" * 300], "not a usable path"),
]


@pytest.mark.parametrize(("where", "key", "bad", "says"), BAD)
def test_known_bad_inputs_are_validation_errors(
    tmp_path: Path, where: str, key: str, bad: Any, says: str, capsys: pytest.CaptureFixture[str]
) -> None:
    doc = json.loads(json.dumps(BASE))
    _set(doc, where, key, bad)
    path = write_contract(tmp_path, to_toml(doc), lock=False)
    with pytest.raises(ContractError, match=None) as err:
        contract_mod.load(path)
    assert says in str(err.value), str(err.value)
    assert run_cli("contract", "check", "--contract", str(path)) == 2
    assert "internal error" not in capsys.readouterr().err
    assert not Path("/cycle").exists() and not Path("/attack").exists()
