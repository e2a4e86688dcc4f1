"""Path rules of the boot contract that the schema cannot see: what a path resolves to.

Every folder the toolkit writes into or empties must be a real, specific place: never a
filesystem root, the home folder or a folder that holds the contract itself (``evidence.dir
= "/"`` wrote ``/cycle`` and ``/attack``; ``state_dirs = [".."]`` would let clear-state empty
the repository). A path that must be a folder cannot be an existing file (``sandbox =
"/dev/null"``), and a file cannot be an existing folder (``logs = [".."]``).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from toolkit.core.errors import ContractError

if TYPE_CHECKING:
    from toolkit.core.contract import Contract


def _too_wide(c: Contract, p: Path) -> str | None:
    if p == p.parent:
        return "a filesystem root"
    if p == Path.home().resolve():
        return "the home folder"
    if p == c.dir or p in c.dir.parents:
        return "the contract's own folder or one that holds it"
    return None


NAME_MAX = 255
PATH_MAX = 4000


def _resolve(c: Contract, where: str, value: Any) -> Path:
    """The resolved path, or a ContractError if no file system could hold it."""
    try:
        p = c.resolve(str(value))
        if len(str(p).encode()) > PATH_MAX or any(len(x.encode()) > NAME_MAX for x in p.parts):
            raise OSError(f"a name longer than {NAME_MAX} bytes or a path longer than {PATH_MAX}")
        p.exists()  # stat errors other than "missing" (a loop, a permission wall) surface here
        return p
    except (OSError, RuntimeError, ValueError) as exc:  # a symlink loop, an embedded NUL
        raise ContractError(f"{c.path}: {where} = {value!r}: not a usable path ({exc})") from None


def _other_paths(c: Contract) -> Iterator[tuple[str, Any]]:
    """Path keys not checked for kind: they only need to be paths a file system can hold."""
    raw = c.raw
    for i, svc in enumerate(raw.get("services", [])):
        for key in ("state", "code"):
            for j, v in enumerate(svc.get(key, [])):
                yield f"services[{i}].{key}[{j}]", v
    sec = c.secrets
    for key, values in (("scan", sec.scan), ("code", sec.code), ("logs", sec.logs)):
        for j, v in enumerate(values):
            yield f"secrets.{key}[{j}]", v
    if sec.baseline is not None:
        yield "secrets.baseline", sec.baseline


def _folders(c: Contract) -> Iterator[tuple[str, Any, bool]]:
    """(key path, value, written-into) of every folder the toolkit uses; cwd is only run in."""
    raw = c.raw
    yield "evidence.dir", c.evidence.dir, True
    dur = c.durability
    if dur is not None and dur.given:
        yield "durability.backup_dir", dur.backup_dir, True
        for i, d in enumerate(dur.state_dirs):
            yield f"durability.state_dirs[{i}]", d, True
    for i, surf in enumerate(raw.get("surfaces", [])):
        if "sandbox" in surf:
            yield f"surfaces[{i}].sandbox", surf["sandbox"], True
        if "cwd" in surf:
            yield f"surfaces[{i}].cwd", surf["cwd"], False
    for i, svc in enumerate(raw.get("services", [])):
        if "cwd" in svc:
            yield f"services[{i}].cwd", svc["cwd"], False
    if c.determinism is not None and "cwd" in c.determinism.given:
        yield "determinism.cwd", c.determinism.cwd, False


def _files(c: Contract) -> Iterator[tuple[str, Any]]:
    raw = c.raw
    for i, svc in enumerate(raw.get("services", [])):
        for j, log in enumerate(svc.get("logs", [])):
            yield f"services[{i}].logs[{j}]", log
    for i, db in enumerate(c.durability.databases if c.durability else ()):
        yield f"durability.databases[{i}].path", db.path
    if "key_file" in raw.get("auth", {}):
        yield "auth.key_file", raw["auth"]["key_file"]
    if c.policy.file is not None:
        yield "policy.file", c.policy.file


def check_paths(c: Contract) -> None:
    """A ContractError naming the key, its value and what it resolves to, for the first bad path."""
    f = str(c.path)
    for where, value, written in _folders(c):
        p = _resolve(c, where, value)
        wide = _too_wide(c, p)
        if wide and written:
            raise ContractError(
                f"{f}: {where} = {value!r} resolves to {p}, {wide}; name a folder of "
                "its own (the toolkit writes into it)"
            )
        if p.exists() and not p.is_dir():
            raise ContractError(
                f"{f}: {where} = {value!r} resolves to {p}, which exists and is not a folder"
            )
    for where, value in _files(c):
        p = _resolve(c, where, value)
        if p.is_dir() or _too_wide(c, p):
            raise ContractError(
                f"{f}: {where} = {value!r} resolves to {p}, which is a folder; name a file"
            )
    for where, value in _other_paths(c):
        _resolve(c, where, value)
    _state_overlap(c)


def _state_overlap(c: Contract) -> None:
    """clear-state must never empty the contract, the evidence or the backups."""
    keep = {"the contract": c.path, "evidence.dir": c.evidence_dir,
            "durability.backup_dir": c.backup_dir}
    for i, d in enumerate(c.durability.state_dirs if c.durability else ()):
        state = c.resolve(d)
        for what, p in keep.items():
            if p == state or state in p.parents:
                raise ContractError(
                    f"{c.path}: durability.state_dirs[{i}] = {d!r} holds {what} ({p}); "
                    "clear-state would destroy it; declare narrower state folders"
                )
