"""Runner keys, trusted keys, and DSSE envelopes of in-toto Statements.

Envelopes, PAE and Ed25519 come from ``securesystemslib`` (``dsse.Envelope``,
``CryptoSigner``, ``SSlibKey``) and the Statement from ``in-toto-attestation``, so the
format is the one in-toto and sigstore tooling read; nothing here re-implements them.

The runner key signs every sealed run and every ledger entry. It lives outside the
evidence folder: ``--runner-key`` / ``$TOOLKIT_RUNNER_KEY``, else
``$XDG_CONFIG_HOME/release-gate-toolkit/runner-key.pem``; created 0600 on first use.
Trusted runner keys are its public half plus the lines of a trust file
(``--trust``, ``$TOOLKIT_TRUSTED_KEYS``, or ``trusted-runner-keys`` beside the key).
"""

from __future__ import annotations

import base64
import binascii
import json
import os
from pathlib import Path
from typing import Any

from toolkit.core.errors import EvidenceError, ToolkitError

KEY_ENV = "TOOLKIT_RUNNER_KEY"
TRUST_ENV = "TOOLKIT_TRUSTED_KEYS"
PAYLOAD_TYPE = "application/vnd.in-toto+json"
RUN_PREDICATE = "https://release-gate-toolkit.dev/attestation/gate-run/v1"
RELEASE_PREDICATE = "https://release-gate-toolkit.dev/attestation/release/v1"
KEY_FILE_PATTERNS = (
    "*.pem",
    "*.key",
    "*.keys",
    "*.p8",
    "*.p12",
    "*.pfx",
    "id_rsa*",
    "id_ed25519*",
    "*runner-key*",
)

_signers: dict[Path, Any] = {}


class SignatureError(ToolkitError):
    """An envelope is malformed, unsigned, or signed by no trusted key."""


def config_dir() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "release-gate-toolkit"


def key_path(option: Path | None = None) -> Path:
    """--runner-key, else $TOOLKIT_RUNNER_KEY, else the per-user default."""
    env = os.environ.get(KEY_ENV)
    return (option or (Path(env) if env else config_dir() / "runner-key.pem")).expanduser()


def runner_signer(option: Path | None = None) -> Any:
    """The runner's signer; the key file is created (0600, O_EXCL) on first use."""
    path = key_path(option).absolute()
    if path not in _signers:
        _signers[path] = _load_or_create(path)
    return _signers[path]


def load_ed25519_signer(path: Path, error: type[Exception], hint: str) -> Any:
    """A signer for an unencrypted Ed25519 PEM key; anything else is ``error`` with ``hint``."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from securesystemslib.signer import CryptoSigner  # type: ignore[attr-defined]

    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (OSError, ValueError, TypeError) as exc:
        raise error(f"{path}: not a readable unencrypted Ed25519 PEM key ({exc}); {hint}") \
            from None
    if not isinstance(key, Ed25519PrivateKey):
        raise error(f"{path}: not an Ed25519 key; {hint}")
    return CryptoSigner(key)


def _load_or_create(path: Path) -> Any:
    if not path.exists():
        _create(path)
    signer = load_ed25519_signer(
        path, EvidenceError,
        f"point ${KEY_ENV} at a good key or move this file away to create a new one")
    if os.name == "posix" and path.stat().st_mode & 0o077:
        raise EvidenceError(
            f"{path}: runner key is readable by others (mode "
            f"{path.stat().st_mode & 0o777:o}); run `chmod 600 {path}`"
        )
    return signer


def _create(path: Path) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from securesystemslib.signer import CryptoSigner  # type: ignore[attr-defined]

    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return  # another process created it first; load theirs
    with os.fdopen(fd, "wb") as fh:
        fh.write(pem)
    pub = path.with_name(path.name + ".pub")
    pub.write_text(key_line(CryptoSigner(key).public_key) + "\n")


def key_line(key: Any) -> str:
    """One trust-file line: ``ed25519 <hex public key> <keyid>``."""
    return f"ed25519 {key.keyval['public']} {key.keyid}"


def parse_key_line(line: str, where: str) -> Any:
    parts = line.split()
    if len(parts) < 2 or parts[0] != "ed25519" or len(parts[1]) != 64:
        raise SignatureError(
            f"{where}: {line[:80]!r} is not a trusted-key line 'ed25519 <64 hex digits> [keyid]'"
        )
    try:
        raw = bytes.fromhex(parts[1])
    except ValueError:
        raise SignatureError(f"{where}: {parts[1][:80]!r} is not hex") from None
    return public_key_from_raw(raw)


def public_key_from_raw(raw: bytes) -> Any:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
    from securesystemslib.signer import SSlibKey  # type: ignore[attr-defined]

    return SSlibKey.from_crypto(Ed25519PublicKey.from_public_bytes(raw))


def read_trust_file(path: Path) -> list[Any]:
    from toolkit.core.files import read_regular_text

    try:
        text = read_regular_text(path)
    except (OSError, UnicodeDecodeError) as exc:
        raise SignatureError(f"{path}: cannot read the trust file ({exc})") from None
    keys = []
    for n, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if line and not line.startswith("#"):
            keys.append(parse_key_line(line, f"{path}:{n}"))
    return keys


def trusted_keys(trust: list[Path] | None = None, include_own: bool = True) -> list[Any]:
    """Explicit trust files, else $TOOLKIT_TRUSTED_KEYS / the default file; plus the own key."""
    files = list(trust or [])
    if not files:
        env = os.environ.get(TRUST_ENV)
        files = [Path(p) for p in env.split(os.pathsep) if p] if env else []
        default = config_dir() / "trusted-runner-keys"
        if not env and default.is_file():
            files.append(default)
    keys = [k for f in files for k in read_trust_file(f)]
    own = key_path().absolute()
    if include_own and not trust and own.is_file():
        keys.append(runner_signer(own).public_key)
    return keys


# ---------------------------------------------------------------- statements and envelopes


def statement(
    subjects: dict[str, str], predicate_type: str, predicate: dict[str, Any]
) -> dict[str, Any]:
    """An in-toto v1 Statement (validated by in-toto-attestation); subjects: name -> sha256."""
    from google.protobuf import json_format
    from in_toto_attestation.v1.resource_descriptor import ResourceDescriptor
    from in_toto_attestation.v1.statement import Statement

    descs = [
        ResourceDescriptor(name=n, digest={"sha256": d}).pb for n, d in sorted(subjects.items())
    ]
    stmt = Statement(descs, predicate_type, predicate)
    stmt.validate()
    out: dict[str, Any] = json_format.MessageToDict(stmt.pb, preserving_proto_field_name=True)
    out["predicate"] = predicate  # protobuf Struct turns every int into a float; keep the original
    return out


def sign_statement(stmt: dict[str, Any], signer: Any) -> dict[str, Any]:
    from securesystemslib.dsse import Envelope

    payload = json.dumps(stmt, sort_keys=True, separators=(",", ":")).encode()
    env = Envelope(payload=payload, payload_type=PAYLOAD_TYPE, signatures={})
    env.sign(signer)
    out: dict[str, Any] = env.to_dict()
    return out


def open_envelope(doc: Any, keys: list[Any], where: str) -> dict[str, Any]:
    """The Statement inside a DSSE envelope signed by one of ``keys``; else SignatureError."""
    from securesystemslib.dsse import Envelope
    from securesystemslib.exceptions import VerificationError

    if not keys:
        raise SignatureError(
            f"{where}: no trusted key to check the signature with; pass --trust FILE "
            f"or set ${TRUST_ENV}"
        )
    try:
        env = Envelope.from_dict(doc)
    except (KeyError, TypeError, ValueError, AttributeError, binascii.Error) as exc:
        raise SignatureError(
            f"{where}: not a DSSE envelope ({type(exc).__name__}: {exc})"
        ) from None
    if env.payload_type != PAYLOAD_TYPE:
        raise SignatureError(f"{where}: payload type {env.payload_type!r}, expected {PAYLOAD_TYPE}")
    try:
        env.verify(keys, 1)
    except VerificationError:
        raise SignatureError(
            f"{where}: signature is not by a trusted key, or the signed payload was altered"
        ) from None
    try:
        stmt = json.loads(env.payload)
    except ValueError:
        raise SignatureError(f"{where}: signed payload is not JSON") from None
    if not isinstance(stmt, dict) or not isinstance(stmt.get("predicate"), dict):
        raise SignatureError(f"{where}: signed payload is not an in-toto Statement")
    return stmt


def subject_name(rel: str) -> str:
    """A run file's subject name: its path, or for a name that is not UTF-8 (a hostile target
    may create one) the percent-encoded bytes, so the Statement stays valid JSON."""
    try:
        rel.encode("utf-8")
        return rel
    except UnicodeEncodeError:
        from urllib.parse import quote

        return "bytes:" + quote(os.fsencode(rel), safe="/")


def subjects_of(stmt: dict[str, Any]) -> dict[str, str]:
    out = {}
    for s in stmt.get("subject", []):
        out[str(s.get("name"))] = str(s.get("digest", {}).get("sha256"))
    return out


def sign_bytes(data: bytes, signer: Any) -> dict[str, str]:
    sig = signer.sign(data)
    return {"keyid": sig.keyid, "sig": sig.signature}


def verify_bytes(data: bytes, sig: Any, keys: list[Any]) -> bool:
    from securesystemslib.exceptions import UnverifiedSignatureError, VerificationError
    from securesystemslib.signer import Signature  # type: ignore[attr-defined]

    if not isinstance(sig, dict):
        return False
    try:
        signature = Signature(str(sig["keyid"]), str(sig["sig"]))
    except KeyError:
        return False
    for key in keys:
        if key.keyid != signature.keyid:
            continue
        try:
            key.verify_signature(signature, data)
            return True
        except (UnverifiedSignatureError, VerificationError, ValueError):
            return False
    return False


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()
