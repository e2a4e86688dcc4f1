"""What signing and the ledger cost a gate run, and how fast `toolkit verify` checks 1,000 runs.

    python bench/evidence_sign.py [--runs 1000] [--files 12]

1. Per gate run: the time ``finalize()`` + ledger entries take with signing (DSSE of an
   in-toto Statement over every file, two signed ledger lines) minus the time the same
   seal takes unsigned (the manifest alone), plus one signature verification. Budget: 50 ms.
2. ``toolkit verify EVIDENCE`` over N sealed runs (signature, manifest, journal, ledger):
   budget 10 s for 1,000 runs.

Keys and evidence live in a temporary folder; nothing outside it is touched.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

INFO = {"name": "bench", "version": "1.0.0", "sha256": "0" * 64, "path": "bench.toml"}


def _fill(run: Any, files: int) -> None:
    for i in range(40):
        run.journal("tick", i=i)
    for i in range(files):
        run.write_bytes(f"metrics-{i:03d}.json", os.urandom(2048).hex().encode())


def seal_cost(root: Path, samples: int, files: int) -> tuple[list[float], list[float], list[float]]:
    """(signed overhead ms per run, its CPU part in ms, verification ms per run)."""
    from toolkit.core import evidence, signing
    from toolkit.core.ledger import Ledger

    ledger = Ledger(root)
    keys = signing.trusted_keys()
    overhead, cpu, verify = [], [], []
    for _ in range(samples):
        signed = evidence.EvidenceRun(root, "cycle", "gate1", INFO)
        _fill(signed, files)
        c0 = time.process_time()
        t0 = time.perf_counter()
        ledger.append(
            "attempt.start",
            durable=False,
            run_id=signed.run_id,
            gate="cycle",
            contract=INFO,
            profile="bench",
        )
        signed.finalize("pass", {"cycles_requested": 2})
        ledger.append(
            "attempt.end", run_id=signed.run_id, gate="cycle", verdict="pass", digest=signed.digest
        )
        t_signed = time.perf_counter() - t0
        c_signed = time.process_time() - c0
        t0 = time.perf_counter()
        problems = evidence.verify_signature(signed.dir, keys)
        verify.append((time.perf_counter() - t0) * 1000)
        assert not problems, problems
        t_plain, c_plain = _unsigned_seal(root, files)
        overhead.append((t_signed - t_plain) * 1000)
        cpu.append((c_signed - c_plain) * 1000)
    return overhead, cpu, verify


def _unsigned_seal(root: Path, files: int) -> tuple[float, float]:
    """The same seal with the manifest only (what the toolkit did before signing)."""
    import hashlib

    from toolkit.core import evidence

    run = evidence.EvidenceRun(root / "unsigned", "cycle", "gate1", INFO)
    _fill(run, files)
    c0 = time.process_time()
    t0 = time.perf_counter()
    run.journal("run.end", verdict="pass")
    os.fsync(run._journal.fileno())
    run._journal.close()
    run._log.close()
    summary = evidence.to_json(run._envelope("pass", {}))
    entries = {rel: evidence.sha256_file(run.dir / rel) for rel in evidence.run_files(run.dir)}
    entries[run.summary_name] = hashlib.sha256(summary).hexdigest()
    manifest = "".join(f"{d}  {r}\n" for r, d in sorted(entries.items())).encode()
    evidence.atomic_write(run.dir / evidence.MANIFEST, manifest)
    evidence.atomic_write(run.dir / run.summary_name, summary)
    return time.perf_counter() - t0, time.process_time() - c0


def verify_many(root: Path, n: int, files: int) -> float:
    from toolkit.cli import main
    from toolkit.core import evidence
    from toolkit.core.ledger import Ledger

    ledger = Ledger(root)
    for _ in range(n):
        run = evidence.EvidenceRun(root, "soak", "gate2", INFO)
        _fill(run, files)
        ledger.append(
            "attempt.start",
            durable=False,
            run_id=run.run_id,
            gate="soak",
            contract=INFO,
            profile="bench",
        )
        run.finalize("pass", {"duration_s": 1.0})
        ledger.append(
            "attempt.end", run_id=run.run_id, gate="soak", verdict="pass", digest=run.digest
        )
    devnull = open(os.devnull, "w")  # noqa: SIM115 - kept open for the timed call only
    saved = sys.stdout, sys.stderr
    sys.stdout = sys.stderr = devnull
    try:
        t0 = time.perf_counter()
        code = main(["verify", str(root)])
        elapsed = time.perf_counter() - t0
    finally:
        sys.stdout, sys.stderr = saved
        devnull.close()
    assert code == 0, f"verify exit {code}"
    return elapsed


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=1000)
    ap.add_argument("--samples", type=int, default=30)
    ap.add_argument("--files", type=int, default=12, help="files per run besides the envelope ones")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="toolkit-bench-") as tmp:
        os.environ["XDG_CONFIG_HOME"] = str(Path(tmp) / "home")
        os.environ["TOOLKIT_RUNNER_KEY"] = str(Path(tmp) / "home" / "runner-key.pem")
        from toolkit.core import signing

        t0 = time.perf_counter()
        signing.runner_signer()
        signing.statement({"x": "0" * 64}, signing.RUN_PREDICATE, {"warm": True})
        first_use = (time.perf_counter() - t0) * 1000
        overhead, cpu, verify = seal_cost(Path(tmp) / "seal", args.samples, args.files)
        per = [o + v for o, v in zip(overhead, verify, strict=True)]
        print(f"first use (key creation, imports): {first_use:.1f} ms, once per process")
        print(
            f"signing overhead per gate run: median {statistics.median(overhead):.2f} ms, "
            f"max {max(overhead):.2f} ms"
        )
        print(
            f"  of which CPU (statement, Ed25519, hashing): median {statistics.median(cpu):.2f} "
            "ms; the rest is fsync of the envelope and the ledger line"
        )
        print(f"verifying one run's signature: median {statistics.median(verify):.2f} ms")
        print(
            f"signing + verifying per gate run: median {statistics.median(per):.2f} ms, "
            f"max {max(per):.2f} ms (budget 50 ms) -> {'ok' if max(per) <= 50 else 'OVER'}"
        )
        elapsed = verify_many(Path(tmp) / "many", args.runs, args.files)
        print(
            f"toolkit verify over {args.runs} runs + ledger ({args.runs * 2} entries): "
            f"{elapsed:.2f} s (budget 10 s) -> {'ok' if elapsed < 10 else 'OVER'}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
