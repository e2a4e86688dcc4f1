"""Reports that fit CI and code scanning: SARIF 2.1.0 (schema-valid, stable fingerprints),
JUnit, Markdown, HTML."""

from __future__ import annotations

import json
import secrets
import string
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from xml.etree import ElementTree as ET  # nosec B405 - parsing our own output in tests

import pytest

from tests.conftest import reference_copy, run_cli
from toolkit.core.events import AttackDone, CaseFinished, CaseStarted, Event, FindingMade
from toolkit.core.model import Finding, Severity, group

SCHEMA = Path(__file__).resolve().parent / "data" / "sarif-schema-2.1.0.json"  # vendored by main


def validate_sarif(doc: dict[str, Any]) -> None:
    """Validate against the vendored OASIS SARIF 2.1.0 schema (draft-04)."""
    import jsonschema

    schema = json.loads(SCHEMA.read_text())
    jsonschema.Draft4Validator(schema).validate(doc)


def _rand(n: int) -> str:
    return "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(n))


def _secrets_tree(tmp_path: Path) -> Path:
    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / "token.txt").write_text(f"token: ghp_{_rand(36)}\n")
    (tree / "<img src=x onerror=alert(1)>.txt").write_text(f"token: ghp_{_rand(36)}\n")
    (tree / "bad.py").write_text(
        "import subprocess\n\ndef run(cmd):\n    return subprocess.call(cmd, shell=True)\n"
    )
    return tree


def test_secrets_reports_validate_and_fingerprints_are_stable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _secrets_tree(tmp_path)
    monkeypatch.chdir(tmp_path)
    runs = []
    for n in (1, 2):
        out = tmp_path / f"out{n}"
        assert (
            run_cli(
                "secrets",
                "scan",
                "tree",
                "--code",
                "tree",
                "--format",
                "json,sarif,junit,md,html",
                "--output",
                str(out),
            )
            == 1
        )
        runs.append(out)
    docs = [json.loads((o / "gate3-secrets-scan.sarif").read_text()) for o in runs]
    for doc in docs:
        validate_sarif(doc)
    prints = [
        {r["partialFingerprints"]["toolkitSecret/v1"] for r in d["runs"][0]["results"]}
        for d in docs
    ]
    assert prints[0] == prints[1] and len(prints[0]) == 3  # two secrets, one bandit issue
    rules = {r["id"]: r for r in docs[0]["runs"][0]["tool"]["driver"]["rules"]}
    assert rules["B602"]["properties"]["security-severity"] == "8.0"
    assert all("security-severity" in r["properties"] for r in rules.values())

    suite = ET.fromstring((runs[0] / "gate3-secrets-scan.junit.xml").read_bytes())
    assert suite.get("hostname") and suite.get("timestamp") and float(suite.get("time") or -1) >= 0
    assert all(f.get("type") for f in suite.iter("failure"))

    html = (runs[0] / "gate3-secrets-scan.html").read_text()
    assert (
        "<img src=x" not in html
        and "&lt;img src=x" in html
        and "CWE-798" in html
        and "Solution" in html
    )
    md = (runs[0] / "gate3-secrets-scan.md").read_text()
    assert md.startswith("# Secrets scan: fail") and "B602" in md and "&lt;img" in md


def _finding(
    surface: str, payload: Any, oracle: str, severity: Severity = Severity.HIGH
) -> Finding:
    return Finding(
        "T-TRAV-001",
        "Path traversal",
        surface,
        "path",
        22,
        severity,
        payload,
        f"read /etc/passwd via {payload!r}",
        f"t/{payload}.txt",
        oracle,
    )


def test_findings_group_by_attack_surface_class_and_oracle() -> None:
    a = _finding("s1", "../../etc/passwd", "canary:relative, depth 2")
    b = _finding("s1", "..%2f..%2fetc/passwd", "canary:encoded slash")
    c = _finding("s2", "../../etc/passwd", "canary:relative, depth 2")
    assert (
        a == b and hash(a) == hash(b) and a.fingerprint == b.fingerprint
    )  # payload and variant don't count
    assert a != c
    log1 = _finding("s1", "x", "leak:log:toolkit-canary-0123456789ab.log")
    log2 = _finding("s1", "y", "leak:log:toolkit-canary-ba9876543210.log")
    state = _finding("s1", "x", "leak:state:toolkit-canary-0123456789ab.log")
    assert log1 == log2 and log1 != state  # random names masked; where it leaked is the weakness
    grouped = group([a, b, c])
    assert [len(g.variants) for g in grouped] == [2, 1]
    assert grouped[0].to_dict()["variant_count"] == 2
    assert [v["payload"] for v in grouped[0].to_dict()["variants"]] == [a.payload, b.payload]


def _fake_run(tmp_path: Path, contract_text: str) -> SimpleNamespace:
    contract = tmp_path / "c.toml"
    contract.write_text(contract_text)
    written: dict[str, bytes] = {}
    evidence = SimpleNamespace(
        run_id="20260101T000000Z-abcdef",
        write_bytes=lambda name, data: written.__setitem__(name, data),
    )
    return SimpleNamespace(
        contract=SimpleNamespace(path=contract, name="<b>x</b>", version="1.0"),
        evidence=evidence,
        written=written,
    )


CONTRACT = """[contract]
name = "x"

[[surfaces]]
name = "first"
classes = ["path"]

[[services]]
name = "first"

[[surfaces]]
# a comment
name = "second<script>"
classes = ["path"]
"""


def test_attack_writers_locate_escape_and_explain(tmp_path: Path) -> None:
    from reports.writers import HtmlWriter, JunitWriter, MarkdownWriter, SarifWriter

    run = _fake_run(tmp_path, CONTRACT)
    classes = (SarifWriter, JunitWriter, MarkdownWriter, HtmlWriter)
    writers = [cls(run) for cls in classes]  # type: ignore[arg-type]
    hostile = "<script>alert(1)</script>"
    findings = group(
        [
            _finding("second<script>", hostile, "o"),
            _finding("second<script>", "x", "o"),
            _finding("first", "y", "p", Severity.CRITICAL),
        ]
    )
    events: list[Event] = [CaseStarted("T-TRAV-001", "second<script>")]
    events += [FindingMade(f) for f in findings]
    events += [
        CaseFinished("T-TRAV-001", "t", "second<script>", "vulnerable", 2, 1, []),
        CaseFinished("T-CMD-001", "t", "first", "skipped", 0, 0, []),
        AttackDone("fail", "quick", 1),
    ]
    for w in writers:
        for e in events:
            w.handle(e)
    sarif = json.loads(run.written["gate3-attack.sarif"])
    validate_sarif(sarif)
    lines = {
        r["locations"][0]["logicalLocations"][0]["name"]: r["locations"][0]["physicalLocation"][
            "region"
        ]["startLine"]
        for r in sarif["runs"][0]["results"]
    }
    assert lines == {"second<script>": 11, "first": 4}  # the [[surfaces]] header of each
    assert sarif["runs"][0]["results"][0]["properties"]["variant_count"] == 2
    suite = ET.fromstring(run.written["gate3-attack.junit.xml"])
    assert suite.get("hostname") and suite.get("timestamp") and suite.get("time")
    assert [f.get("type") for f in suite.iter("failure")] == ["CWE-22"]
    assert all(s.get("message") for s in suite.iter("skipped")) and suite.get("skipped") == "1"
    html = run.written["gate3-attack.html"].decode()
    assert hostile not in html and "&lt;script&gt;" in html and "<b>x</b>" not in html
    assert html.index("critical: ") < html.index("high: ")  # grouped by risk, worst first
    assert "solution" in html and "CWE-22" in html and "variants (2)" in html
    md = run.written["gate3-attack.md"].decode()
    assert "## Critical (1)" in md and "Solution:" in md and "(0 sent)" in md


@pytest.mark.slow
def test_same_seed_gives_the_same_fingerprints(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from toolkit.gates.attack import AttackConfig, run_attacks

    monkeypatch.setenv("SONIA_WEAKEN", "traversal,logs")
    sets, sarifs = [], []
    for n in (1, 2):
        folder = tmp_path / f"r{n}"
        folder.mkdir()
        path = reference_copy(folder)
        result, _ = run_attacks(
            AttackConfig(
                path, ["traversal", "leaks"], seed=1234, budget="quick", formats=("json", "sarif")
            )
        )
        assert result.exit_code == 1
        findings = result.body["findings"]
        prints = [f["fingerprint"] for f in findings]
        assert len(prints) == len(set(prints))  # grouped: one finding per fingerprint
        sets.append(set(prints))
        run_dir = Path(result.summary_path).parent
        sarifs.append(json.loads(next(run_dir.glob("*.sarif")).read_text()))
    assert sets[0] == sets[1] and sets[0]
    for doc in sarifs:
        validate_sarif(doc)
        res = doc["runs"][0]["results"]
        assert {r["partialFingerprints"]["toolkitFinding/v1"] for r in res} == sets[0]
        assert all(r["locations"][0]["physicalLocation"]["region"]["startLine"] > 1 for r in res)
    assert any(r["properties"]["variant_count"] > 1 for r in sarifs[0]["runs"][0]["results"])


def test_vendored_schema_is_the_oasis_2_1_0_schema() -> None:
    schema = json.loads(SCHEMA.read_text())
    assert schema["title"].startswith("Static Analysis Results Format (SARIF) Version 2.1.0")
    import jsonschema

    with pytest.raises(jsonschema.ValidationError):
        validate_sarif({"version": "2.1.0", "runs": [{"results": []}]})  # no tool: invalid
