"""Client side of the contract's authentication schemes: key files and request signing."""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import time
from dataclasses import dataclass
from pathlib import Path

from toolkit.core.contract import Auth
from toolkit.core.errors import ContractError


@dataclass(frozen=True)
class Key:
    kid: str
    secret: bytes


def read_keys(path: Path) -> list[Key]:
    """Lines ``kid:hexsecret``; the first signs, all verify. Blank lines and # comments skipped."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ContractError(
            f"{path}: auth key file not found; create it or set [auth].create_key_file = true"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ContractError(f"{path}: cannot read the auth key file: {exc}") from None
    keys = []
    for n, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        kid, sep, hexsecret = line.partition(":")
        try:
            secret = bytes.fromhex(hexsecret)
        except ValueError:
            secret = b""
        if not sep or not kid or not secret:
            raise ContractError(f"{path}: line {n} is not 'kid:hexsecret'")
        keys.append(Key(kid, secret))
    if not keys:
        raise ContractError(f"{path}: the auth key file holds no key")
    return keys


def write_keys(path: Path, keys: list[Key]) -> None:
    from toolkit.core.evidence import atomic_write

    atomic_write(path, "".join(f"{k.kid}:{k.secret.hex()}\n" for k in keys).encode())
    os.chmod(path, 0o600)


def new_key(prefix: str = "k") -> Key:
    return Key(f"{prefix}{secrets.token_hex(4)}", secrets.token_bytes(32))


def ensure_key_file(auth: Auth | None) -> None:
    if auth is None or auth.scheme != "hmac-sha256" or auth.key_file is None:
        return
    if auth.create_key_file and not auth.key_file.exists():
        auth.key_file.parent.mkdir(parents=True, exist_ok=True)
        write_keys(auth.key_file, [new_key()])


def canonical(method: str, path_qs: str, ts: int, nonce: str, body: bytes) -> bytes:
    return "\n".join(
        ["v1", method.upper(), path_qs, str(ts), nonce, hashlib.sha256(body).hexdigest()]
    ).encode()


def sign_hmac(key: Key, method: str, path_qs: str, body: bytes, ts: int | None = None,
              nonce: str | None = None) -> str:
    ts = int(time.time()) if ts is None else ts
    nonce = secrets.token_hex(12) if nonce is None else nonce
    mac = hmac.new(
        key.secret, canonical(method, path_qs, ts, nonce, body), hashlib.sha256
    ).hexdigest()
    return f"v1:{key.kid}:{ts}:{nonce}:{mac}"


class Signer:
    """Attaches credentials per the contract's [auth] table."""

    def __init__(self, auth: Auth | None):
        self.auth = auth

    @property
    def header(self) -> str | None:
        return self.auth.header if self.auth and self.auth.scheme != "none" else None

    def token(self, method: str, path_qs: str, body: bytes) -> str | None:
        auth = self.auth
        if auth is None or auth.scheme == "none":
            return None
        if auth.scheme == "bearer":
            token = auth.token or os.environ.get(auth.token_env or "", "")
            # an unset variable must not become the illegal header "Bearer ": send none
            return f"Bearer {token}" if token.strip() else None
        assert auth.key_file is not None  # nosec B101
        return sign_hmac(read_keys(auth.key_file)[0], method, path_qs, body)
