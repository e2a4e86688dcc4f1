"""Property tests: evidence manifests and journals, SARIF against the 2.1.0 schema,
detect-secrets baselines and contract placeholders round-trip for any input."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import string
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import jsonschema
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from attacks.base import REGISTRY, load_attacks
from reports.secrets import render_sarif
from reports.writers import SarifWriter
from toolkit.core import contract as contract_mod
from toolkit.core.evidence import (
    JOURNAL,
    MANIFEST,
    SIGNATURE,
    EvidenceRun,
    parse_manifest_line,
    verify_journal,
    verify_run,
)
from toolkit.core.signing import subject_name
from toolkit.gates.secrets_scan import detect, load_baseline, save_baseline

DATA = Path(__file__).resolve().parent / "data"
INFO = {"name": "prop", "version": "1.0.0", "sha256": "0" * 64}
FAST = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])

json_scalars = st.one_of(st.none(), st.booleans(), st.integers(-(2**53), 2**53),
                         st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=30))
json_values = st.recursive(
    json_scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)


@contextmanager
def _folder() -> Iterator[Path]:
    """A fresh folder per example (pytest's tmp_path is shared by all examples of a test)."""
    with tempfile.TemporaryDirectory(prefix="toolkit-prop-") as tmp:
        yield Path(tmp)


# ---------------------------------------------------------------- evidence: manifest and journal

event_names = st.text(alphabet=string.ascii_letters + "._-", min_size=1, max_size=20)
event_data = st.dictionaries(st.text(max_size=10).filter(lambda k: k not in ("event", "self")),
                             json_values, max_size=4)
file_names = st.one_of(
    st.from_regex(r"[a-z0-9_-]{1,12}(/[a-z0-9_-]{1,12})?\.(json|txt|bin)", fullmatch=True),
    # names that are not UTF-8 (os.fsdecode gives lone surrogates), as a state snapshot may hold
    st.binary(min_size=1, max_size=8).filter(lambda b: b"/" not in b and b"\x00" not in b
                                             and not b.startswith(b".")).map(os.fsdecode))


@FAST
@example(events=[], files={os.fsdecode(b"state-\x80.db"): b"x", "a\\b": b"", "c\nd": b"y"},
         verdict="pass")
@example(events=[], files={"\r": b""}, verdict="pass")  # found by hypothesis: universal newlines
@given(events=st.lists(st.tuples(event_names, event_data), max_size=12),
       files=st.dictionaries(file_names, st.binary(max_size=200), max_size=5),
       verdict=st.sampled_from(["pass", "fail", "error", "interrupted"]))
def test_a_sealed_run_round_trips_its_journal_and_manifest(
        events: list[tuple[str, dict[str, Any]]], files: dict[str, bytes], verdict: str) -> None:
    with _folder() as root:
        run = EvidenceRun(root, "cycle", "gate1", INFO)
        for name, data in events:
            run.journal(name, **data)
        for rel, blob in files.items():
            run.write_bytes(rel, blob)
        summary = run.finalize(verdict, {"measurements": []})
        assert verify_run(run.dir) == []
        # the journal reads back as exactly what was written, in order, chained
        entries = [json.loads(line) for line in (run.dir / JOURNAL).read_text().splitlines()]
        assert [e["seq"] for e in entries] == list(range(len(events) + 2))
        assert [(e["event"], e["data"]) for e in entries[1:-1]] == events
        assert entries[-1]["event"] == "run.end" and entries[-1]["data"] == {"verdict": verdict}
        # the manifest lists every file once (but itself and the signature over it), with
        # its sha256, sorted, summary included
        lines = (run.dir / MANIFEST).read_bytes().decode("utf-8", "surrogateescape").split("\n")
        assert lines[-1] == ""
        parsed = [parse_manifest_line(line) for line in lines[:-1]]
        listed = {entry[1]: entry[0] for entry in parsed if entry is not None}
        assert len(listed) == len(parsed)
        on_disk = {p.relative_to(run.dir).as_posix() for p in run.dir.rglob("*")
                   if p.is_file() and p.name not in (MANIFEST, SIGNATURE)}
        assert set(listed) == on_disk and list(listed) == sorted(listed)
        assert all(hashlib.sha256((run.dir / rel).read_bytes()).hexdigest() == digest
                   for rel, digest in listed.items())
        assert json.loads(summary.read_text())["verdict"] == verdict
        if shutil.which(
            "sha256sum"
        ):  # the manifest is what GNU sha256sum -c accepts, odd names too
            check = subprocess.run(["sha256sum", "-c", "--quiet", MANIFEST], cwd=run.dir,
                                   capture_output=True, check=False)
            assert check.returncode == 0, check.stdout + check.stderr


@FAST
@given(
    files=st.dictionaries(file_names, st.binary(min_size=1, max_size=100), min_size=1, max_size=4),
    pick=st.integers(min_value=0),
    bit=st.integers(min_value=0, max_value=7),
)
def test_any_flipped_bit_is_reported_as_changed(
    files: dict[str, bytes], pick: int, bit: int
) -> None:
    with _folder() as root:
        run = EvidenceRun(root, "cycle", "gate1", INFO)
        for rel, blob in files.items():
            run.write_bytes(rel, blob)
        run.finalize("pass", {})
        rel = sorted(files)[pick % len(files)]
        data = bytearray((run.dir / rel).read_bytes())
        data[pick % len(data)] ^= 1 << bit
        (run.dir / rel).write_bytes(bytes(data))
        name = subject_name(rel)  # a name that is not UTF-8 is named by its escaped bytes
        assert verify_run(run.dir) == [f"changed: {name} (differs from the signed digest)"]


@FAST
@given(count=st.integers(min_value=2, max_value=10), drop=st.integers(min_value=0))
def test_any_removed_journal_line_breaks_the_chain(count: int, drop: int) -> None:
    with _folder() as root:
        run = EvidenceRun(root, "cycle", "gate1", INFO)
        for i in range(count):
            run.journal("tick", i=i)
        run.abandon()
        journal = run.dir / JOURNAL
        lines = journal.read_bytes().splitlines(keepends=True)
        assert verify_journal(journal) == []
        gone = drop % (len(lines) - 1)  # any line but the last: its successor must notice
        journal.write_bytes(b"".join(lines[:gone] + lines[gone + 1:]))
        assert any("broken link" in p for p in verify_journal(journal))


# ---------------------------------------------------------------- SARIF 2.1.0

@pytest.fixture(scope="module")
def sarif_schema() -> jsonschema.Draft4Validator:
    schema = json.loads((DATA / "sarif-schema-2.1.0.json").read_text())
    jsonschema.Draft4Validator.check_schema(schema)
    return jsonschema.Draft4Validator(schema)


def _attack_ids() -> list[str]:
    load_attacks()
    return sorted(REGISTRY)


findings = st.fixed_dictionaries(
    {
        "attack_id": st.sampled_from(_attack_ids()),
        "severity": st.sampled_from(["info", "low", "medium", "high", "critical"]),
        "title": st.text(max_size=40),
        "surface": st.text(max_size=20),
        "evidence": st.text(max_size=600),
        "fingerprint": st.text(alphabet="0123456789abcdef", min_size=1, max_size=64),
        "payload": json_values,
        "cwe": st.integers(1, 2000),
        "transcript": st.text(max_size=100),
    }
)


def _attack_sarif(found: list[dict[str, Any]]) -> dict[str, Any]:
    run = SimpleNamespace(evidence=SimpleNamespace(run_id="20260101T000000Z-abcdef"),
                          contract=SimpleNamespace(path=Path.cwd() / "contract.toml"))
    writer = SarifWriter(run)  # type: ignore[arg-type]
    writer.findings = found
    return dict(json.loads(writer.render({})))


def _rule_indexes_point_at_their_rules(doc: dict[str, Any]) -> bool:
    run = doc["runs"][0]
    rules = run["tool"]["driver"]["rules"]
    return all(rules[r["ruleIndex"]]["id"] == r["ruleId"] for r in run["results"])


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.lists(findings, max_size=5))
def test_attack_sarif_is_valid_2_1_0(sarif_schema: jsonschema.Draft4Validator,
                                     found: list[dict[str, Any]]) -> None:
    doc = _attack_sarif(found)
    sarif_schema.validate(doc)
    assert len(doc["runs"][0]["results"]) == len(found) and _rule_indexes_point_at_their_rules(doc)


secret_items = st.fixed_dictionaries(
    {
        "type": st.sampled_from(
            ["GitHub Token", "AWS Access Key", "Secret Keyword", "Base64 High Entropy String"]
        ),
        "hashed_secret": st.text(alphabet="0123456789abcdef", min_size=40, max_size=40),
        "filename": st.text(min_size=1, max_size=30),
        "line_number": st.integers(0, 10**6),
    }
)
bandit_items = st.fixed_dictionaries(
    {
        "test_id": st.from_regex(r"B[0-9]{3}", fullmatch=True),
        "test_name": st.text(min_size=1, max_size=20),
        "severity": st.sampled_from(["low", "medium", "high"]),
        "confidence": st.sampled_from(["low", "high"]),
        "text": st.text(max_size=80),
        "filename": st.text(min_size=1, max_size=30),
        "line_number": st.integers(0, 10**6),
    }
)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.lists(secret_items, max_size=5), st.lists(bandit_items, max_size=5))
def test_secrets_sarif_is_valid_2_1_0(
    sarif_schema: jsonschema.Draft4Validator,
    secrets: list[dict[str, Any]],
    issues: list[dict[str, Any]],
) -> None:
    doc = json.loads(render_sarif({"new_secrets": secrets, "bandit_issues": issues}))
    sarif_schema.validate(doc)
    assert len(doc["runs"][0]["results"]) == len(secrets) + len(issues)
    assert _rule_indexes_point_at_their_rules(doc)


def test_the_schema_rejects_what_it_should(sarif_schema: jsonschema.Draft4Validator) -> None:
    """Negative control: the validator really checks (a wrong level, a line 0, a missing
    version).
    """
    good = _attack_sarif(
        [
            {
                "attack_id": _attack_ids()[0],
                "severity": "high",
                "title": "t",
                "surface": "s",
                "evidence": "e",
                "fingerprint": "ab",
                "payload": "p",
                "cwe": 22,
                "transcript": "",
            }
        ]
    )
    sarif_schema.validate(good)
    for mutate in (
        lambda d: d["runs"][0]["results"][0].update(level="fatal"),
        lambda d: d["runs"][0]["results"][0]["locations"][0]["physicalLocation"]["region"].update(
            startLine=0
        ),
        lambda d: d.pop("version"),
    ):
        bad = json.loads(json.dumps(good))
        mutate(bad)
        assert not sarif_schema.is_valid(bad)


# ---------------------------------------------------------------- detect-secrets baselines

ALNUM = string.ascii_letters + string.digits
tokens = st.one_of(
    st.text(alphabet=ALNUM, min_size=36, max_size=36).map(lambda s: f"token: ghp_{s}"),
    st.text(alphabet=string.ascii_uppercase + string.digits, min_size=16, max_size=16)
    .map(lambda s: f"aws_access_key_id = AKIA{s}"),
    st.text(alphabet=string.ascii_lowercase + " ", max_size=30))  # plain text, usually no secret
trees = st.dictionaries(st.from_regex(r"[a-z]{1,8}\.txt", fullmatch=True),
                        st.lists(tokens, min_size=1, max_size=4), min_size=1, max_size=3)


def _keys(collection: Any) -> set[tuple[str, str, str, int]]:
    return {(name, s.secret_hash, s.type, s.line_number) for name, s in collection}


@contextmanager
def _inside(folder: Path) -> Iterator[None]:
    cwd = Path.cwd()
    os.chdir(folder)
    try:
        yield
    finally:
        os.chdir(cwd)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tree=trees, labels=st.lists(st.booleans(), max_size=12))
@example(tree={"a.txt": ["token: ghp_" + "A1b2" * 9, "x"], "b.txt": ["key AKIA" + "Q7" * 8]},
         labels=[False, True])  # built at run time, so the source holds no token
def test_baseline_round_trips_and_keeps_audit_labels(
    tree: dict[str, list[str]], labels: list[bool]
) -> None:
    with _folder() as root, _inside(root):
        for name, lines in tree.items():
            Path(name).write_text("\n".join(lines) + "\n")
        found = detect(sorted(tree))
        baseline = root / ".secrets.baseline"
        save_baseline(baseline, found, load_baseline(None)[0])
        loaded, raw = load_baseline(baseline)
        assert raw is not None and _keys(loaded) == _keys(found)
        if any("ghp_" in line for lines in tree.values() for line in lines):
            assert any(s.type == "GitHub Token" for _, s in found)  # the scan really ran
        assert list(detect(sorted(tree)) - loaded) == []  # a rescan finds nothing new
        # an auditor labels some secrets; a later --update-baseline keeps every label
        doc = json.loads(baseline.read_text())
        flat = [s for name in sorted(doc["results"]) for s in doc["results"][name]]
        for secret, label in zip(flat, labels, strict=False):
            secret["is_secret"] = label
        baseline.write_text(json.dumps(doc))
        expected = {
            (s["filename"], s["hashed_secret"], s["line_number"]): s.get("is_secret") for s in flat
        }
        save_baseline(baseline, detect(sorted(tree)), load_baseline(baseline)[0])
        again = json.loads(baseline.read_text())["results"]
        kept = {(s["filename"], s["hashed_secret"], s["line_number"]): s.get("is_secret")
                for name in again for s in again[name]}
        assert kept == expected


# ---------------------------------------------------------------- contract placeholders

names = st.from_regex(r"[a-z_]{1,10}", fullmatch=True)
literal = st.text(alphabet=st.characters(blacklist_characters="{}"), max_size=10)


@settings(max_examples=200, deadline=None)
@given(variables=st.dictionaries(names, st.text(alphabet=st.characters(blacklist_characters="{}"),
                                                max_size=10), min_size=1, max_size=4),
       parts=st.lists(st.tuples(literal, st.one_of(st.none(), names), st.booleans()), max_size=6))
@example(variables={"python": "/usr/bin/python3"}, parts=[("", "python", True)])
def test_expansion_substitutes_known_names_and_keeps_the_rest(
        variables: dict[str, str], parts: list[tuple[str, str | None, bool]]) -> None:
    template, expected = "", ""
    for text, name, spaced in parts:
        template += text
        expected += text
        if name is None:
            continue
        template += "{{ " + name + " }}" if spaced else "{{" + name + "}}"
        expected += variables[name] if name in variables and name != "payload" else \
            ("{{ " + name + " }}" if spaced else "{{" + name + "}}")
    variables.pop("payload", None)
    out = contract_mod.expand_str(template, variables)
    assert out == expected
    assert contract_mod.expand_str(out, variables) == out  # values without braces: idempotent


@settings(max_examples=200, deadline=None)
@given(
    tree=st.recursive(
        st.sampled_from(["{{payload}}", "x-{{payload}}", "{{other}}", "plain", 1, None]),
        lambda inner: st.one_of(
            st.lists(inner, max_size=3), st.dictionaries(names, inner, max_size=3)
        ),
        max_leaves=10,
    ),
    payload=json_values,
)
def test_whole_value_payload_is_the_payload_itself_at_any_depth(tree: Any, payload: Any) -> None:
    out = contract_mod.expand(tree, {"payload": payload})

    def check(tpl: Any, got: Any) -> None:
        if tpl == "{{payload}}":
            assert got is payload
        elif tpl == "x-{{payload}}":
            assert got == f"x-{payload}"
        elif isinstance(tpl, list):
            assert isinstance(got, list) and len(got) == len(tpl)
            for a, b in zip(tpl, got, strict=True):
                check(a, b)
        elif isinstance(tpl, dict):
            assert isinstance(got, dict) and list(got) == list(tpl)
            for key in tpl:
                check(tpl[key], got[key])
        else:
            assert got == tpl  # unknown placeholders and non-strings are left alone

    check(tree, out)
