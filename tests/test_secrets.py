"""Gate 3d: detect-secrets with baselines, positive-control canaries, bad files, git modes,
bandit.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import string
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import run_cli
from toolkit.gates.secrets_scan import ScanConfig, run_scan


def _rand(n: int, alphabet: str = string.ascii_letters + string.digits) -> str:
    return "".join(secrets.choice(alphabet) for _ in range(n))


def _jwt() -> str:
    enc = lambda d: base64.urlsafe_b64encode(json.dumps(d).encode()).decode().rstrip("=")
    head, claims = enc({'alg': 'HS256', 'typ': 'JWT'}), enc({'sub': _rand(8), 'iat': 1700000000})
    return f"{head}.{claims}.{_rand(43)}"


def fake_secrets(root: Path) -> dict[str, str]:
    """Realistic fake secrets, generated at run time so this source file holds none."""
    items = {
        "aws.py": f'aws_access_key_id = "AKIA{_rand(16, string.ascii_uppercase + "234567")}"\n'
        f'aws_secret_access_key = "{_rand(40)}"\n',
        "github.txt": f"token: ghp_{_rand(36)}\n",
        "slack.txt": f"hook = xoxb-{_rand(12, string.digits)}-{_rand(12, string.digits)}-"
                     f"{_rand(24).lower()}\n",
        "id_rsa": "-----BEGIN "
        + "RSA PRIVATE KEY-----\n"
        + _rand(64)
        + "\n-----END "
        + "RSA PRIVATE KEY-----\n",
        "jwt.txt": f"auth = {_jwt()}\n",
        "entropy.py": f'blob = "{secrets.token_hex(24)}"\n',
        "url.cfg": f"db = https://admin:{_rand(14)}@db.internal.example/main\n",
        ".env": f"DB_PASSWORD={_rand(18)}\n",
    }
    for name, text in items.items():
        (root / name).write_text(text)
    return items


EXPECTED = {
    "aws.py": "AWS Access Key",
    "github.txt": "GitHub Token",
    "slack.txt": "Slack Token",
    "id_rsa": "Private Key",
    "jwt.txt": "JSON Web Token",
    "entropy.py": "Hex High Entropy String",
    "url.cfg": "Basic Auth Credentials",
    ".env": "Secret Keyword",
}


def _scan(tmp_path: Path, *paths: Path, **kw: object) -> dict:
    res = run_scan(ScanConfig(list(paths), **kw), tmp_path / "work-fallback")  # type: ignore[arg-type]
    return {**res.to_dict(), "verdict": res.verdict}


def test_every_fake_secret_is_found(tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    tree.mkdir()
    fake_secrets(tree)
    body = _scan(tmp_path, tree)
    found = {(Path(s["filename"]).name, s["type"]) for s in body["new_secrets"]}
    for name, kind in EXPECTED.items():
        assert (name, kind) in found, (name, kind, found)
    assert body["verdict"] == "fail" and body["canaries_found"] == 1
    assert not list(tree.glob(".toolkit-canary-*"))  # the canary was removed


def test_clean_tree_passes_and_reports_hold_no_secret(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tree = tmp_path / "clean"
    tree.mkdir()
    (tree / "app.py").write_text("def add(a, b):\n    return a + b\n")
    out = tmp_path / "out"
    assert run_cli("secrets", "scan", str(tree), "--no-bandit", "--output", str(out)) == 0
    sarif = json.loads((out / "gate3-secrets-scan.sarif").read_text())
    assert sarif["version"] == "2.1.0" and sarif["runs"][0]["results"] == []


def test_reports_never_hold_the_secret(tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    tree.mkdir()
    items = fake_secrets(tree)
    out = tmp_path / "out"
    assert run_cli("secrets", "scan", str(tree), "--no-bandit", "--output", str(out)) == 1
    sarif = json.loads((out / "gate3-secrets-scan.sarif").read_text())
    assert {r["ruleId"] for r in sarif["runs"][0]["results"]} >= {
        "secret/AWSAccessKey",
        "secret/GitHubToken",
    }
    blob = "".join(p.read_text() for p in out.iterdir())
    aws_secret = items["aws.py"].split('"')[3]
    assert aws_secret not in blob and items[".env"].split("=")[1].strip() not in blob


def test_baseline_round_trip_with_detect_secrets_cli(tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    tree.mkdir()
    fake_secrets(tree)
    baseline = tmp_path / ".secrets.baseline"
    rel = str(tree.relative_to(tmp_path))
    cwd = Path.cwd()
    try:
        import os

        os.chdir(tmp_path)
        assert (
            run_cli(
                "secrets",
                "scan",
                rel,
                "--no-bandit",
                "--baseline",
                str(baseline),
                "--update-baseline",
            )
            == 0
        )
        assert run_cli("secrets", "scan", rel, "--no-bandit", "--baseline", str(baseline)) == 0
        doc = json.loads(baseline.read_text())
        first = next(iter(doc["results"]))
        doc["results"][first][0]["is_secret"] = False  # an auditor's label
        baseline.write_text(json.dumps(doc, indent=2))
        cli = subprocess.run(
            [
                sys.executable,
                "-m",
                "detect_secrets",
                "scan",
                rel,
                "--all-files",
                "--baseline",
                str(baseline),
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        assert cli.returncode == 0, cli.stderr
        assert (
            run_cli(
                "secrets",
                "scan",
                rel,
                "--no-bandit",
                "--baseline",
                str(baseline),
                "--update-baseline",
            )
            == 0
        )
        assert (
            json.loads(baseline.read_text())["results"][first][0]["is_secret"] is False
        )  # label kept
        (tree / "new.txt").write_text(f"token: ghp_{_rand(36)}\n")
        assert (
            run_cli("secrets", "scan", rel, "--no-bandit", "--baseline", str(baseline)) == 1
        )  # only the new one
        made = subprocess.run([sys.executable, "-m", "detect_secrets", "scan", rel, "--all-files"],
                              capture_output=True, text=True, check=False)
        (tmp_path / "ds.baseline").write_text(made.stdout)
        assert run_cli("secrets", "scan", rel, "--no-bandit", "--baseline", "ds.baseline") == 0
    finally:
        os.chdir(cwd)


def test_bad_files_are_skipped_and_counted(tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / "blob.bin").write_bytes(b"\x00\x01\x02" * 100)
    (tree / "latin1.txt").write_bytes(b"caf\xe9 \xff\xfe")
    (tree / "huge.log").write_bytes(b"a" * (5 << 20))
    (tree / "link").symlink_to("/etc/hostname")
    (tree / "ok.txt").write_text("fine\n")
    body = _scan(tmp_path, tree)
    assert body["skipped"] == {"binary": 1, "invalid-utf8": 1, "huge": 1, "not-a-regular-file": 1}
    assert body["verdict"] == "pass" and body["files_scanned"] == 2  # ok.txt and the canary


def test_missing_path_exits_2(tmp_path: Path) -> None:
    assert run_cli("secrets", "scan", str(tmp_path / "nope"), "--no-bandit") == 2


def test_a_blind_scanner_fails_the_gate(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    from detect_secrets import SecretsCollection

    import toolkit.gates.secrets_scan as mod

    monkeypatch.setattr(mod, "detect", lambda files, exclude=None: SecretsCollection())
    tree = tmp_path / "t"
    tree.mkdir()
    assert run_cli("secrets", "scan", str(tree), "--no-bandit") == 1
    assert "scanner saw nothing" in capsys.readouterr().err


def test_staged_files_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    git = lambda *a: subprocess.run(["git", *a], cwd=repo, check=True, capture_output=True)
    git("init", "-q")
    (repo / "staged.txt").write_text(f"token: ghp_{_rand(36)}\n")
    (repo / "unstaged.txt").write_text(f"token: ghp_{_rand(36)}\n")
    git("add", "staged.txt")
    monkeypatch.chdir(repo)
    body = _scan(tmp_path, staged=True)
    assert [Path(s["filename"]).name for s in body["new_secrets"]] == ["staged.txt"]
    assert body["canaries_found"] == body["canaries_planted"] == 1


def test_bandit_findings_join_the_report(tmp_path: Path) -> None:
    code = tmp_path / "code"
    code.mkdir()
    (code / "bad.py").write_text(
        "import subprocess\n\ndef run(cmd):\n    return subprocess.call(cmd, shell=True)\n"
    )
    (code / "ok.py").write_text("import subprocess\n\ndef run(cmd):\n"
                                "    return subprocess.call(cmd, shell=True)  # nosec B602\n")
    out = tmp_path / "out"
    assert run_cli("secrets", "scan", str(code), "--code", str(code), "--output", str(out)) == 1
    sarif = json.loads((out / "gate3-secrets-scan.sarif").read_text())
    hits = [(r["ruleId"], r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"])
            for r in sarif["runs"][0]["results"]]
    assert [h[0] for h in hits] == ["B602"] and hits[0][1].endswith("bad.py")


def test_own_tree_passes_its_own_gate() -> None:
    """The toolkit is held to its own gates: no secret in its tree, no high bandit finding."""
    repo = Path(__file__).resolve().parent.parent
    dirs = [
        repo / d
        for d in ("toolkit", "attacks", "reports", "targets", "contracts", "tests", "bench")
    ]
    res = run_scan(
        ScanConfig(dirs, code=[repo / d for d in ("toolkit", "attacks", "reports", "targets")]),
        repo / "artifacts",
    )
    assert res.new == [] and res.bandit == [] and res.verdict == "pass", (res.new, res.bandit)


def test_prefiltered_scan_finds_exactly_what_detect_secrets_finds(tmp_path: Path) -> None:
    """The fast front end may skip work, never findings: compared on fake secrets, config files and
    real code.
    """
    import os
    import sysconfig

    from toolkit.gates.secrets_scan import classify, detect, detect_plain, walk

    tree = tmp_path / "tree"
    tree.mkdir()
    fake_secrets(tree)
    (tree / "app.yaml").write_text(f"db:\n  password: {_rand(20)}\n  host: example\n")
    (tree / "app.ini").write_text(f"[main]\napi_key = {secrets.token_hex(20)}\nname = demo\n")
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    roots = [tree, stdlib / "json", stdlib / "email", stdlib / "http"]
    files = [os.path.relpath(p) for p in walk(roots) if classify(p) is None]
    fast = {(f, s.type, s.secret_hash, s.line_number) for f, s in detect(files)}
    plain = {(f, s.type, s.secret_hash, s.line_number) for f, s in detect_plain(files)}
    assert fast == plain and len(plain) >= len(EXPECTED)


def test_credentials_at_rest_in_sqlite_are_found(tmp_path: Path) -> None:
    import sqlite3

    db = tmp_path / "app.db"
    conn = sqlite3.connect(db)
    conn.execute("CREATE TABLE settings (name TEXT, value TEXT)")
    conn.execute("INSERT INTO settings VALUES ('gh', ?)", (f"ghp_{_rand(36)}",))
    conn.commit()
    conn.close()
    empty = tmp_path / "empty"
    empty.mkdir()
    body = _scan(tmp_path, empty, databases=[db])
    assert [(Path(s["filename"]).name, s["type"]) for s in body["new_secrets"]] == [
        ("app.db#cells", "GitHub Token")
    ]


def test_changed_since_scans_only_changed_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    git = lambda *a: subprocess.run(["git", "-c", "user.email=t@t", "-c", "user.name=t", *a],
                                    cwd=repo, check=True, capture_output=True)
    git("init", "-q")
    (repo / "old.txt").write_text(f"token: ghp_{_rand(36)}\n")
    git("add", ".")
    git("commit", "-qm", "base")
    git("tag", "base")
    (repo / "new.txt").write_text(f"token: ghp_{_rand(36)}\n")
    git("add", ".")
    git("commit", "-qm", "change")
    monkeypatch.chdir(repo)
    body = _scan(tmp_path, changed_since="base")
    assert [Path(s["filename"]).name for s in body["new_secrets"]] == ["new.txt"]
    assert run_cli("secrets", "scan", "--changed-since", "no-such-rev", "--no-bandit") == 2


@pytest.mark.slow
def test_reference_stack_logs_config_and_database_stay_clean(tmp_path: Path) -> None:
    """After a full hardened attack run, the contract's own secrets gate passes on what the stack
    left.
    """
    from tests.conftest import reference_copy
    from toolkit.gates.attack import AttackConfig, run_attacks
    from toolkit.gates.secrets_gate import run_secrets_gate

    path = reference_copy(tmp_path)
    result, _ = run_attacks(AttackConfig(path, ["leaks", "traversal", "auth"], budget="quick"))
    assert result.exit_code == 0
    scan, evidence = run_secrets_gate(ScanConfig(), path, ("json",), None)
    assert scan.verdict == "pass", (scan.new, scan.bandit, scan.errors)
    assert scan.files_scanned >= 6 and evidence is not None  # logs, config and the SQLite cells


# ---------------------------------------------------- issue 13: baselines, hooks, exclusions


def _git(repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["git", "-c", "user.email=t@t", "-c", "user.name=t", "-c", "commit.gpgsign=false", *args],
        cwd=repo,
        capture_output=True,
        text=True,
        check=False,
    )


def _hook_entry() -> list[str]:
    """The hook's own entry from .pre-commit-hooks.yaml, run with this interpreter."""
    text = (Path(__file__).resolve().parent.parent / ".pre-commit-hooks.yaml").read_text()
    entry = next(
        line.split(":", 1)[1].split()
        for line in text.splitlines()
        if line.strip().startswith("entry:")
    )
    assert entry[0] == "toolkit"
    return [sys.executable, "-m", "toolkit", *entry[1:]]


def _ds_hook(repo: Path, files: list[str]) -> int:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "detect_secrets.pre_commit_hook",
            "--baseline",
            ".secrets.baseline",
            *files,
        ],
        cwd=repo,
        capture_output=True,
        text=True,
        check=False,
    ).returncode


def test_pre_commit_hook_on_three_commits(tmp_path: Path) -> None:
    """Clean change 0, new secret 1, baseline change 0; detect-secrets-hook agrees on each."""
    repo = tmp_path / "repo"
    repo.mkdir()
    _git(repo, "init", "-q")
    (repo / "config.py").write_text(f'API_KEY = "{secrets.token_hex(20)}"\n')
    (repo / "app.py").write_text("print('hi')\n")
    setup = subprocess.run(
        [
            *_hook_entry()[:3],
            "secrets",
            "scan",
            ".",
            "--no-bandit",
            "--baseline",
            ".secrets.baseline",
            "--update-baseline",
        ],
        cwd=repo,
        capture_output=True,
        text=True,
        check=False,
    )
    assert setup.returncode == 0, setup.stdout + setup.stderr
    _git(repo, "add", ".")
    assert _git(repo, "commit", "-qm", "base").returncode == 0
    hook = repo / ".git" / "hooks" / "pre-commit"
    hook.write_text("#!/bin/sh\nexec " + " ".join(f"'{a}'" for a in _hook_entry()) + "\n")
    hook.chmod(0o755)
    run_hook = lambda: subprocess.run(
        [str(hook)], cwd=repo, capture_output=True, text=True, check=False
    )

    (repo / "app.py").write_text("print('hello')\n")  # 1: clean
    _git(repo, "add", "app.py")
    first = run_hook()
    assert first.returncode == 0 and _ds_hook(repo, ["app.py"]) == 0, first.stdout + first.stderr
    assert _git(repo, "commit", "-qm", "clean").returncode == 0

    (repo / "token.txt").write_text(f"token: ghp_{_rand(36)}\n")  # 2: a new secret
    _git(repo, "add", "token.txt")
    second = run_hook()
    assert second.returncode == 1 and "token.txt" in second.stdout, second.stdout + second.stderr
    assert _ds_hook(repo, ["token.txt"]) == 1
    assert _git(repo, "commit", "-qm", "leak").returncode != 0  # git ran the hook and refused

    update = [
        *_hook_entry()[:3],
        "secrets",
        "scan",
        ".",
        "--no-bandit",
        "--baseline",
        ".secrets.baseline",
        "--update-baseline",
    ]  # 3: the secret is audited into the baseline
    assert subprocess.run(update, cwd=repo, capture_output=True, check=False).returncode == 0
    settled = (repo / ".secrets.baseline").read_bytes()
    assert b"token.txt" in settled and b".secrets.baseline" not in settled.split(b'"results"')[1]
    assert subprocess.run(update, cwd=repo, capture_output=True, check=False).returncode == 0
    assert (repo / ".secrets.baseline").read_bytes() == settled  # --update-baseline settles
    _git(repo, "add", ".secrets.baseline", "token.txt")
    third = run_hook()
    assert third.returncode == 0, third.stdout + third.stderr
    assert _ds_hook(repo, [".secrets.baseline", "token.txt"]) == 0
    assert _git(repo, "commit", "-qm", "audited").returncode == 0


def test_own_artifacts_gitignore_and_exclusions(tmp_path: Path) -> None:
    from toolkit.gates.secrets_scan import ScanConfig

    tree = tmp_path / "plain"  # not a git repository: the .gitignore matcher
    (tree / "build").mkdir(parents=True)
    (tree / "evidence").mkdir()
    (tree / ".gitignore").write_text("build/\n*.log\n!keep.log\n")
    leak = lambda: f"token: ghp_{_rand(36)}\n"
    for name in (
        "build/out.txt",
        "evidence/summary.json",
        "debug.log",
        "keep.log",
        "tests.txt",
        "app.txt",
    ):
        (tree / name).write_text(leak())
    (tree / "lines.txt").write_text(f"fixture = ghp_{_rand(36)}  # fake-fixture\n")
    res = run_scan(
        ScanConfig(
            [tree],
            own=[tree / "evidence"],
            exclude_files=[r"tests\.txt$"],
            exclude_lines=["fake-fixture"],
        ),
        tmp_path / "w",
    )
    assert sorted(Path(s["filename"]).name for s in res.new) == ["app.txt", "keep.log"]
    assert res.excluded == 2  # evidence/summary.json and tests.txt (build/ and *.log are ignored)
    _git(tree, "init", "-q")  # inside git: git ls-files decides, with the same outcome
    res = run_scan(
        ScanConfig(
            [tree],
            own=[tree / "evidence"],
            exclude_files=[r"tests\.txt$"],
            exclude_lines=["fake-fixture"],
        ),
        tmp_path / "w2",
    )
    assert sorted(Path(s["filename"]).name for s in res.new) == ["app.txt", "keep.log"]
    assert run_cli("secrets", "scan", str(tree), "--no-bandit", "--exclude-lines", "(") == 2


def test_stale_canary_is_removed_and_new_ones_never_enter_the_tree(tmp_path: Path) -> None:
    from toolkit.gates.secrets_scan import canary_text

    tree = tmp_path / "t"
    tree.mkdir()
    stale = tree / f".toolkit-canary-{secrets.token_hex(6)}.env"
    stale.write_text(canary_text())
    lookalike = (
        tree / ".toolkit-canary-notmine.env"
    )  # not our name pattern: left alone, and scanned
    lookalike.write_text("hello\n")
    seen: list[list[str]] = []
    import toolkit.gates.secrets_scan as mod

    real = mod.detect

    def spy(files: list[str], exclude: list[str] | None = None) -> object:
        seen.append([str(Path(f).resolve()) for f in files])
        assert not [p for p in tree.iterdir() if mod.CANARY_NAME.match(p.name)], (
            "a canary entered the tree"
        )
        return real(files, exclude)

    mod.detect = spy  # type: ignore[assignment]
    try:
        res = run_scan(ScanConfig([tree]), tmp_path / "w")
    finally:
        mod.detect = real  # type: ignore[assignment]
    assert not stale.exists() and lookalike.exists()
    assert (
        res.verdict == "pass"
        and res.canaries_found == 1
        and any("stale canary" in n for n in res.notes)
    )


def test_sqlite_evasions_and_cell_credentials(tmp_path: Path) -> None:
    import sqlite3

    db = tmp_path / "app.db"
    conn = sqlite3.connect(db)
    conn.execute('CREATE TABLE "evade""" (k TEXT, v TEXT)')
    aws = _rand(40, string.ascii_letters + string.digits + "/+")
    userpass = base64.b64encode(f"admin:{_rand(14)}".encode()).decode()
    rows = [
        ("dsn", f"db_password={_rand(16)}"),
        ("basic", f"Basic {userpass}"),
        ("aws", aws),
        ("name", "just a normal sentence"),
        ("empty_pw", "password=changeme"),
    ]
    conn.executemany('INSERT INTO "evade""" VALUES (?, ?)', rows)
    conn.commit()
    conn.close()
    empty = tmp_path / "empty"
    empty.mkdir()
    body = _scan(tmp_path, empty, databases=[db])
    kinds = sorted((s["line_number"], s["type"]) for s in body["new_secrets"])
    assert [k[0] for k in kinds] == [2, 4, 6], (
        kinds
    )  # text cells: k1 v1 k2 v2 ...; 8 and 10 are clean
    assert body["verdict"] == "fail" and body["skipped"] == {}


def test_fresh_clone_passes_its_own_scan(tmp_path: Path) -> None:
    """`toolkit secrets scan .` in a fresh clone exits 0, twice (its own evidence is ignored)."""
    repo = Path(__file__).resolve().parent.parent
    if not (repo / ".git").exists():
        pytest.skip("not a git checkout: nothing to clone")
    clone = tmp_path / "clone"
    assert _git(tmp_path, "clone", "-q", str(repo), str(clone)).returncode == 0
    env = {
        k: v for k, v in os.environ.items() if k != "TOOLKIT_CONTRACT"
    }  # the clone's own contract
    for _ in range(2):
        out = subprocess.run(
            [sys.executable, "-m", "toolkit", "secrets", "scan", "."],
            cwd=clone, env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        assert out.returncode == 0, out.stdout + out.stderr
    assert "verdict pass" in out.stdout and list(
        (clone / "artifacts").rglob("*secrets-scan-summary*.json")
    )


def test_a_folder_git_ignores_is_still_scanned_when_named(tmp_path: Path) -> None:
    """A contract's [secrets].scan names state/logs, which .gitignore hides: it is walked anyway."""
    repo = tmp_path / "repo"
    (repo / "state" / "logs").mkdir(parents=True)
    _git(repo, "init", "-q")
    (repo / ".gitignore").write_text("/state/\n")
    (repo / "state" / "logs" / "svc.log").write_text(f"token: ghp_{_rand(36)}\n")
    (repo / "state" / "noise.log").write_text(f"token: ghp_{_rand(36)}\n")
    named = run_scan(ScanConfig([repo / "state" / "logs"]), tmp_path / "w1")
    assert [Path(s["filename"]).name for s in named.new] == ["svc.log"]
    whole = run_scan(ScanConfig([repo]), tmp_path / "w2")
    assert whole.new == [] and whole.verdict == "pass"  # from the top, .gitignore decides


def test_changed_since_outside_a_repository_is_one_line_of_git_reason(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Outside a git work tree, git printed its whole option list into the error."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path.parent))
    assert run_cli("secrets", "scan", "--changed-since", "main", "--no-bandit") == 2
    err = capsys.readouterr().err
    assert "run it inside a git work tree" in " ".join(err.split())
    assert "usage: git" not in err and len(err.strip().splitlines()) <= 4
