#!/usr/bin/env python3
"""Install every real-world target's vulnerable and fixed release into a cache folder.

Each target in targets.toml is installed twice, once per version, into
CACHE/<name>/<version>/: npm packages with `npm install --prefix` (binaries under
node_modules/.bin), PyPI packages into a venv of their own (CACHE/<name>/<version>/venv).
A version that installed before (marker file with the same spec) is skipped, so the
script can be re-run. It needs the network: run it outside `unshare -n`.

    python bench/realworld/install.py [--cache DIR] [--only NAME]... [--force]
"""
from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
import tomllib
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
DEFAULT_CACHE = Path.home() / ".cache" / "toolkit-realworld"
MARKER = ".installed.json"


def load_targets(only: list[str] | None = None) -> list[dict[str, Any]]:
    with open(HERE / "targets.toml", "rb") as fh:
        targets: list[dict[str, Any]] = tomllib.load(fh)["target"]
    if only:
        unknown = set(only) - {t["name"] for t in targets}
        if unknown:
            sys.exit(f"unknown target(s): {', '.join(sorted(unknown))}")
        targets = [t for t in targets if t["name"] in only]
    return targets


def install_dir(cache: Path, target: dict[str, Any], version: str) -> Path:
    return cache / str(target["name"]) / str(version)


def extras(target: dict[str, Any], version: str) -> list[str]:
    """Packages installed beside the target: `extra` for both releases, plus
    `extra_vulnerable` / `extra_fixed` for one (e.g. an SDK major the old release predates)."""
    kind = "vulnerable" if version == target["vulnerable"] else "fixed"
    return [*target.get("extra", []), *target.get(f"extra_{kind}", [])]


def spec_of(target: dict[str, Any], version: str) -> dict[str, Any]:
    return {"ecosystem": target["ecosystem"], "package": target["package"],
            "version": version, "extra": extras(target, version)}


def _run(cmd: list[str], cwd: Path | None = None) -> tuple[bool, str]:
    try:
        proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=900,
                              check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return False, str(exc)
    tail = (proc.stdout + proc.stderr).strip().splitlines()[-15:]
    return proc.returncode == 0, "\n".join(tail)


def install_npm(dest: Path, target: dict[str, Any], version: str) -> tuple[bool, str]:
    dest.mkdir(parents=True, exist_ok=True)
    (dest / "package.json").write_text('{"private": true}\n')
    pkgs = [f"{target['package']}@{version}", *extras(target, version)]
    return _run(["npm", "install", "--prefix", str(dest), "--no-audit", "--no-fund",
                 "--loglevel=error", *pkgs])


def install_pypi(dest: Path, target: dict[str, Any], version: str) -> tuple[bool, str]:
    venv = dest / "venv"
    ok, out = _run([sys.executable, "-m", "venv", str(venv)])
    if not ok:
        return ok, out
    pkgs = [f"{target['package']}=={version}", *extras(target, version)]
    return _run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q",
                 "--disable-pip-version-check", *pkgs])


def install_one(cache: Path, target: dict[str, Any], version: str,
                force: bool) -> tuple[str, str]:
    dest = install_dir(cache, target, version)
    spec = spec_of(target, version)
    marker = dest / MARKER
    if not force and marker.is_file():
        try:
            if json.loads(marker.read_text()) == spec:
                return "cached", ""
        except ValueError:
            pass
    if dest.exists():
        shutil.rmtree(dest)
    installer = install_npm if target["ecosystem"] == "npm" else install_pypi
    ok, out = installer(dest, target, version)
    if not ok:
        return "FAILED", out
    marker.write_text(json.dumps(spec, indent=1) + "\n")
    return "installed", ""


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    ap.add_argument("--only", action="append", help="install only this target (repeatable)")
    ap.add_argument("--force", action="store_true", help="reinstall even when cached")
    args = ap.parse_args()
    cache: Path = args.cache.expanduser().resolve()
    failed: list[str] = []
    for target in load_targets(args.only):
        for kind in ("vulnerable", "fixed"):
            version = target[kind]
            t0 = time.monotonic()
            status, out = install_one(cache, target, version, args.force)
            label = f"{target['name']} {kind} {target['package']}@{version}"
            print(f"{status:9} {label} ({time.monotonic() - t0:.1f} s)", flush=True)
            if status == "FAILED":
                failed.append(label)
                print("          " + out.replace("\n", "\n          "), flush=True)
    print(f"cache: {cache}")
    if failed:
        print(f"{len(failed)} install(s) failed: " + "; ".join(failed))
        return 1
    print("all installed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
