"""The boot contract (format v1): parse, validate, expand placeholders, lock and detect drift."""

from __future__ import annotations

import hashlib
import json
import os
import sys
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from toolkit.core import schema as s
from toolkit.core import sections as sec
from toolkit.core.errors import ContractError, DriftError
from toolkit.core.sections import MAX_RATE, NAME_RE, TRAFFIC  # noqa: F401  (re-exported)

CLASSES = ("path", "command", "argv", "option", "env", "tool")

_BASE = sec.BASE_PH
_SERVICE_PH = _BASE | {"port", "canary_secret"}
_SURFACE_PH = _BASE | {"port", "sandbox", "payload", "canary_secret", "probe", "fresh"}
_REQUEST_FIELDS = sec.REQUEST_FIELDS
_SECTIONS = sec.schema_tables()  # [defaults], [cycle], [soak], ...: nodes beside their defaults
T = TypeVar("T")

SERVICE = s.Table(
    {
        "name": s.Str(pattern=NAME_RE, what="lower-case letters, digits and dashes"),
        "command": s.List(s.Str(), min_items=1),
        "port": s.Port(),
        "health": s.Str(),
        "cwd": s.Str(),
        "env": s.Map(s.Str()),
        "depends_on": s.List(s.Str()),
        "startup_timeout_s": s.Seconds(),
        "stop_timeout_s": s.Seconds(),
        "state": s.List(s.Str()),
        "logs": s.List(s.Str()),
        "code": s.List(s.Str()),
        "log_max_bytes": s.Num(minimum=1024, integer=True),
        "log_backups": s.Num(integer=True, maximum=100),
        "stop_exit_codes": s.List(s.Num(integer=True, maximum=255)),
    },
    required=("name", "command"),
    placeholders=_SERVICE_PH,
)

SURFACE = s.Table(
    {
        "name": s.Str(pattern=r"[A-Za-z0-9_.-]+", what="letters, digits, dot, dash, underscore"),
        "classes": s.List(s.Str(choices=CLASSES), min_items=1),
        "sandbox": s.Str(),
        "transport": s.Str(choices=("http", "mcp-stdio")),
        **_REQUEST_FIELDS,
        "auth": s.Bool(),
        "blind": s.Bool(),
        "writes": s.Bool(),
        "links": s.Bool(),
        "repository": s.Bool(),
        "command": s.List(s.Str(), min_items=1),
        "env": s.Map(s.Str()),
        "tool": s.Str(),
        "arguments": s.Any_(),
        "cwd": s.Str(),
        "timeout_s": s.Seconds(),
    },
    required=("name", "classes"),
    placeholders=_SURFACE_PH,
)

TOP = s.Table(
    {
        "contract": s.Table(
            {
                "name": s.Str(
                    pattern=r"[A-Za-z0-9_.-]+", what="letters, digits, dot, dash, underscore"
                ),
                "version": s.SemVer(),
                "description": s.Str(),
            },
            required=("name", "version"),
        ),
        "defaults": _SECTIONS["defaults"],
        "env": s.Map(s.Str(), key_pattern=r"[A-Za-z_][A-Za-z0-9_]*"),
        "services": s.TableList(SERVICE),
        "auth": s.Table(
            {
                "scheme": s.Str(choices=("none", "bearer", "hmac-sha256")),
                "header": s.Str(),
                "key_file": s.Str(),
                "window_s": s.Seconds(),
                "reload_within_s": s.Seconds(),
                "token": s.Str(),
                "token_env": s.Str(),
                "create_key_file": s.Bool(),
            },
            required=("scheme",),
        ),
        "surfaces": s.TableList(SURFACE),
        "policy": _SECTIONS["policy"],
        "secrets": _SECTIONS["secrets"],
        "cycle": _SECTIONS["cycle"],  # Gate 1 at full strength
        "soak": _SECTIONS["soak"],
        "durability": _SECTIONS["durability"],
        "determinism": _SECTIONS["determinism"],
        "evidence": _SECTIONS["evidence"],
    },
    required=("contract",),
    placeholders=_BASE,
)


@dataclass(frozen=True)
class Service:
    name: str
    command: list[str]
    port: int | None
    health: str | None
    cwd: Path
    env: dict[str, str]
    depends_on: list[str]
    startup_timeout_s: float
    stop_timeout_s: float
    state: list[Path]
    logs: list[Path]
    host: str
    log_max_bytes: int = 10 * 1024 * 1024
    log_backups: int = 2
    stop_exit_codes: tuple[int, ...] = (0, 143)

    @property
    def health_url(self) -> str | None:
        if not self.health:
            return None
        if self.health.startswith(("http://", "https://")):
            return self.health
        return f"http://{self.host}:{self.port}{self.health}"


@dataclass(frozen=True)
class Surface:
    name: str
    classes: list[str]
    transport: str
    raw: dict[str, Any]
    sandbox: Path | None

    def get(self, key: str, default: Any = None) -> Any:
        return self.raw.get(key, default)


@dataclass(frozen=True)
class Auth:
    scheme: str
    header: str
    key_file: Path | None
    window_s: float
    reload_within_s: float
    token: str | None
    token_env: str | None
    create_key_file: bool


@dataclass
class Contract:
    path: Path
    raw: dict[str, Any]
    sha256: str
    services: list[Service] = field(default_factory=list)
    surfaces: list[Surface] = field(default_factory=list)
    auth: Auth | None = None
    # typed sections (toolkit.core.sections): absent optional ones hold their defaults; the
    # sections a gate cannot run without are None when absent (see ``need``)
    defaults: sec.Defaults = field(default_factory=sec.Defaults)
    cycle: sec.CycleSection = field(default_factory=sec.CycleSection)
    secrets: sec.SecretsSection = field(default_factory=sec.SecretsSection)
    policy: sec.PolicySection = field(default_factory=sec.PolicySection)
    evidence: sec.EvidenceSection = field(default_factory=sec.EvidenceSection)
    soak: sec.SoakSection | None = None
    durability: sec.DurabilitySection | None = None
    determinism: sec.DeterminismSection | None = None

    @property
    def name(self) -> str:
        return str(self.raw["contract"]["name"])

    @property
    def version(self) -> str:
        return str(self.raw["contract"]["version"])

    @property
    def dir(self) -> Path:
        return self.path.parent

    @property
    def env(self) -> dict[str, str]:
        return dict(self.raw.get("env", {}))

    def need(self, section: T | None, name: str, gate: str) -> T:
        """A typed section the gate cannot run without, or a ContractError saying so."""
        if section is None:
            raise self._missing(name, gate)
        return section

    def _missing(self, name: str, gate: str) -> ContractError:
        return ContractError(
            f"{self.path}: the {gate} gate needs a [{name}] section, which this contract "
            f"does not have; add it (see the contract format, section [{name}])"
        )

    def section(self, name: str, gate: str) -> dict[str, Any]:
        """The named section, or a ContractError saying which gate needs it."""
        if name not in self.raw:
            raise ContractError(
                f"{self.path}: the {gate} gate needs a [{name}] section, which this contract "
                f"does not have; add it (see the contract format, section [{name}])"
            )
        return dict(self.raw[name])

    def resolve(self, value: str) -> Path:
        """A contract path, relative to the contract's folder unless absolute."""
        p = Path(expand_str(value, self.base_vars()))
        return (p if p.is_absolute() else self.dir / p).resolve()

    def lexical(self, value: str) -> Path:
        """A contract path made absolute without resolving symlinks (to check for a link first)."""
        p = Path(expand_str(value, self.base_vars()))
        return Path(os.path.normpath(p if p.is_absolute() else self.dir / p))

    def base_vars(self) -> dict[str, Any]:
        return {"python": sys.executable, "contract_dir": str(self.dir)}

    def service(self, name: str) -> Service:
        for svc in self.services:
            if svc.name == name:
                return svc
        raise ContractError(f"{self.path}: no service named {name!r}")

    @property
    def evidence_dir(self) -> Path:
        return self.resolve(self.evidence.dir)

    @property
    def backup_dir(self) -> Path:
        """[durability].backup_dir, resolved (its default when the section is absent)."""
        return self.resolve((self.durability or sec.DurabilitySection()).backup_dir)

    @property
    def database_files(self) -> list[Path]:
        """[[durability.databases]] paths, resolved; none without a [durability] section."""
        dur = self.durability or sec.DurabilitySection()
        return [self.resolve(d.path) for d in dur.databases]

    @property
    def host(self) -> str:
        return self.defaults.host


def expand_str(text: str, variables: dict[str, Any]) -> str:
    def repl(match: Any) -> str:
        name = match.group(1)
        if name not in variables:
            return str(match.group(0))
        return str(variables[name])

    return s.PLACEHOLDER_RE.sub(repl, text)


def expand(value: Any, variables: dict[str, Any]) -> Any:
    """Expand placeholders; a value that is exactly ``{{payload}}`` becomes the payload itself."""
    if isinstance(value, str):
        stripped = s.PLACEHOLDER_RE.fullmatch(value.strip()) if value.strip() == value else None
        if stripped and stripped.group(1) in variables and stripped.group(1) == "payload":
            return variables["payload"]
        return expand_str(value, variables)
    if isinstance(value, list):
        return [expand(v, variables) for v in value]
    if isinstance(value, dict):
        return {k: expand(v, variables) for k, v in value.items()}
    return value


def load(path: str | os.PathLike[str]) -> Contract:
    """Read, validate and type a contract file. Every failure is a ContractError."""
    p = Path(path)
    from toolkit.core.files import read_regular

    try:
        data = read_regular(p)
    except FileNotFoundError:
        raise ContractError(f"{p}: contract file not found; pass --contract PATH") from None
    except OSError as exc:
        raise ContractError(f"{p}: cannot read the contract: {exc.strerror}") from None
    return parse(data, p)


def parse(data: bytes, path: Path) -> Contract:
    try:
        raw = tomllib.loads(data.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise ContractError(
            f"{path}: not UTF-8 text at byte {exc.start}; save it as UTF-8"
        ) from None
    except tomllib.TOMLDecodeError as exc:
        raise ContractError(f"{path}: not valid TOML: {exc}") from None
    ctx = s.Ctx(str(path))
    checked = TOP.check(raw, "", ctx)
    contract = Contract(path=path.resolve(), raw=checked, sha256=hashlib.sha256(data).hexdigest())
    _sections(contract)
    contract.services = _services(contract)
    contract.surfaces = _surfaces(contract)
    contract.auth = _auth(contract)
    _cross_check(contract)
    return contract


def _sections(c: Contract) -> None:
    """Type every section once, at load; gates read these, never the raw tables."""
    r = c.raw
    c.defaults = sec.build(sec.Defaults, r.get("defaults"))
    c.cycle = sec.build(sec.CycleSection, r.get("cycle"))
    c.secrets = sec.build(sec.SecretsSection, r.get("secrets"))
    c.policy = sec.build(sec.PolicySection, r.get("policy"))
    c.evidence = sec.build(sec.EvidenceSection, r.get("evidence"))
    c.soak = sec.build(sec.SoakSection, r["soak"]) if "soak" in r else None
    c.durability = sec.build(sec.DurabilitySection, r["durability"]) if "durability" in r else None
    c.determinism = (
        sec.build(sec.DeterminismSection, r["determinism"]) if "determinism" in r else None
    )


def _services(c: Contract) -> list[Service]:
    d = c.defaults
    out = []
    for raw in c.raw.get("services", []):
        out.append(Service(
            name=raw["name"], command=list(raw["command"]), port=raw.get("port"),
            health=raw.get("health", "/healthz" if raw.get("port") else None),
            cwd=c.resolve(raw.get("cwd", ".")), env=dict(raw.get("env", {})),
            depends_on=list(raw.get("depends_on", [])),
            startup_timeout_s=float(raw.get("startup_timeout_s", d.startup_timeout_s)),
            stop_timeout_s=float(raw.get("stop_timeout_s", d.stop_timeout_s)),
            state=[c.resolve(x) for x in raw.get("state", [])],
            logs=[c.resolve(x) for x in raw.get("logs", [])],
            host=d.host,
            log_max_bytes=int(raw.get("log_max_bytes", d.log_max_bytes)),
            log_backups=int(raw.get("log_backups", d.log_backups)),
            stop_exit_codes=tuple(int(x) for x in raw.get("stop_exit_codes", d.stop_exit_codes)),
        ))
    return out


def _surfaces(c: Contract) -> list[Surface]:
    out = []
    for raw in c.raw.get("surfaces", []):
        sandbox = c.resolve(raw["sandbox"]) if "sandbox" in raw else None
        out.append(
            Surface(raw["name"], list(raw["classes"]), raw.get("transport", "http"), raw, sandbox)
        )
    return out


def _auth(c: Contract) -> Auth | None:
    raw = c.raw.get("auth")
    if raw is None:
        return None
    return Auth(
        scheme=raw["scheme"],
        header=raw.get("header", "X-Service-Token"),
        key_file=c.resolve(raw["key_file"]) if "key_file" in raw else None,
        window_s=float(raw.get("window_s", 300)),
        reload_within_s=float(raw.get("reload_within_s", 30)),
        token=raw.get("token"),
        token_env=raw.get("token_env"),
        create_key_file=bool(raw.get("create_key_file", False)),
    )


def _cross_check(c: Contract) -> None:
    f = str(c.path)
    names = [svc.name for svc in c.services]
    _unique(names, "services", "name", f)
    _unique([x.name for x in c.surfaces], "surfaces", "name", f)
    for i, svc in enumerate(c.services):
        for dep in svc.depends_on:
            if dep not in names:
                raise ContractError(
                    f"{f}: services[{i}].depends_on = {dep!r}: no service has that name"
                )
        if svc.port is None and svc.health and not svc.health.startswith("http"):
            raise ContractError(
                f"{f}: services[{i}].health = {svc.health!r}: a relative health path needs a port"
            )
        _check_health_host(c, i, svc, f)
    for i, surf in enumerate(c.surfaces):
        _check_surface(c, i, surf, names, f)
    auth = c.auth
    if auth and auth.scheme == "hmac-sha256" and auth.key_file is None:
        raise ContractError(f"{f}: auth.key_file: required when scheme = \"hmac-sha256\"")
    if auth and auth.scheme == "bearer" and not (auth.token or auth.token_env):
        raise ContractError(f"{f}: auth: scheme \"bearer\" needs token or token_env")
    _check_sections(c, names, f)
    _toposort(c)
    from toolkit.core.contract_paths import check_paths

    check_paths(c)


def _check_sections(c: Contract, names: list[str], f: str) -> None:
    """What the schema cannot see in one key: services named by soak traffic and the drill's
    writer exist, and the soak's warmup is shorter than its duration."""
    soak = c.soak
    if soak is not None:
        if soak.warmup and soak.warmup >= soak.duration:
            raise ContractError(f"{f}: soak.warmup {soak.warmup:g} s is not shorter than "
                                f"soak.duration {soak.duration:g} s")
        for i, t in enumerate(soak.traffic):
            _known_service(t, f"soak.traffic[{i}]", names, f)
    if c.durability is not None and c.durability.writer is not None:
        _known_service(c.durability.writer, "durability.writer", names, f)


def _known_service(request: Any, where: str, names: list[str], f: str) -> None:
    if "service" in request and request["service"] not in names:
        raise ContractError(f"{f}: {where}.service = {request['service']!r}: no service has "
                            "that name")


def _check_health_host(c: Contract, i: int, svc: Service, f: str) -> None:
    """Health probes go to loopback only, unless [defaults] allow_remote_health names the host."""
    url = svc.health_url
    if url is None:
        return
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
    except ValueError:
        raise ContractError(f"{f}: services[{i}].health = {url!r}: not a valid URL") from None
    if parts.scheme not in ("http", "https"):
        raise ContractError(f"{f}: services[{i}].health = {url!r}: only http and https are probed")
    allowed = c.defaults.allow_remote_health
    if host == "localhost" or host in allowed or _is_loopback(host):
        return
    raise ContractError(f"{f}: services[{i}].health = {url!r}: host {host!r} is not loopback; "
                        f"the toolkit only probes 127.0.0.1/::1/localhost unless "
                        f"[defaults] allow_remote_health lists {host!r}")


def _is_loopback(host: str) -> bool:
    import ipaddress

    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _check_surface(c: Contract, i: int, surf: Surface, names: list[str], f: str) -> None:
    where = f"{f}: surfaces[{i}]"
    if surf.transport == "http":
        if "service" in surf.raw and surf.raw["service"] not in names:
            raise ContractError(
                f"{where}.service = {surf.raw['service']!r}: no service has that name"
            )
        if "service" not in surf.raw and "base_url" not in surf.raw:
            raise ContractError(f"{where}: an http surface needs service or base_url")
        for key in ("command", "tool", "arguments"):
            if key in surf.raw:
                raise ContractError(f"{where}.{key}: only for transport \"mcp-stdio\"")
    else:
        for key in ("command", "tool"):
            if key not in surf.raw:
                raise ContractError(f"{where}.{key}: required for transport \"mcp-stdio\"")
    if not _mentions_payload(surf.raw):
        raise ContractError(
            f"{where}: no {{{{payload}}}} anywhere in the request; the attacks would have nothing "
            "to vary"
        )


def _mentions_payload(value: Any, top: bool = True) -> bool:
    """Is ``{{payload}}`` anywhere in the request (the surface's own name and classes aside,
    but a tool argument called ``name`` counts)?
    """
    if isinstance(value, str):
        return "{{payload}}" in value.replace(" ", "")
    if isinstance(value, list):
        return any(_mentions_payload(v, False) for v in value)
    if isinstance(value, dict):
        return any(_mentions_payload(v, False) for k, v in value.items()
                   if not (top and k in ("name", "classes")))
    return False


def _unique(values: list[str], table: str, key: str, f: str) -> None:
    seen: set[str] = set()
    for i, v in enumerate(values):
        if v in seen:
            raise ContractError(f"{f}: {table}[{i}].{key} = {v!r}: duplicate; names must be unique")
        seen.add(v)


def _toposort(c: Contract) -> list[list[Service]]:
    """Services grouped in start levels; every level depends only on earlier ones."""
    remaining = {svc.name: svc for svc in c.services}
    done: set[str] = set()
    levels: list[list[Service]] = []
    while remaining:
        level = [svc for svc in remaining.values() if set(svc.depends_on) <= done]
        if not level:
            cycle = ", ".join(sorted(remaining))
            raise ContractError(f"{c.path}: services depends_on form a cycle among: {cycle}")
        levels.append(level)
        for svc in level:
            done.add(svc.name)
            del remaining[svc.name]
    return levels


def start_levels(c: Contract) -> list[list[Service]]:
    return _toposort(c)


# ---------------------------------------------------------------- lock and drift

def lock_path(c: Contract) -> Path:
    return c.path.with_name(c.path.name + ".lock")


def write_lock(c: Contract) -> Path:
    from toolkit.core.evidence import atomic_write

    target = lock_path(c)
    doc = {"name": c.name, "version": c.version, "sha256": c.sha256}
    atomic_write(target, (json.dumps(doc, indent=2) + "\n").encode())
    _record_lock(c)
    return target


def _record_lock(c: Contract) -> None:
    """Lock history lives in the evidence ledger, so deleting the .lock forgets nothing."""
    from toolkit.core.ledger import Ledger

    ledger = Ledger(c.evidence_dir)
    if c.sha256 not in ledger.lock_shas(c.name, c.version):
        ledger.append("lock", name=c.name, version=c.version, sha256=c.sha256, path=str(c.path))


def lock_history_drift(c: Contract) -> str | None:
    """A different SHA-256 locked earlier under this name and version is drift, .lock or not."""
    from toolkit.core.ledger import Ledger

    others = [s for s in Ledger(c.evidence_dir).lock_shas(c.name, c.version) if s != c.sha256]
    if not others:
        return None
    return (f"{c.path}: contract drift: {c.name} {c.version} was locked before with sha256 "
            f"{others[0][:12]}… (ledger {c.evidence_dir / 'ledger.jsonl'}), current sha256 "
            f"{c.sha256[:12]}…; a changed contract needs a new [contract].version")


@dataclass(frozen=True)
class LockStatus:
    state: str  # "ok" | "drift" | "stale" | "missing"
    message: str


def check_lock(c: Contract) -> LockStatus:
    history = lock_history_drift(c)
    if history:
        return LockStatus("drift", history)
    target = lock_path(c)
    try:
        lock = json.loads(target.read_text())
        locked = (str(lock["name"]), str(lock["version"]), str(lock["sha256"]))
    except FileNotFoundError:
        return LockStatus(
            "missing",
            f"{c.path}: no lock file {target.name}; run `toolkit contract lock --contract "
            f"{c.path}`",
        )
    except (OSError, ValueError, KeyError, TypeError):
        return LockStatus(
            "missing", f"{target}: unreadable lock file; re-create it with `toolkit contract lock`"
        )
    name, version, sha = locked
    if sha == c.sha256 and name == c.name and version == c.version:
        return LockStatus(
            "ok", f"{c.path}: matches lock ({c.name} {c.version}, sha256 {sha[:12]}…)"
        )
    if version == c.version:
        return LockStatus("drift", (
            f"{c.path}: contract drift: the contract changed but its version did not "
            f"(locked {name} {version} sha256 {sha[:12]}…, current {c.name} {c.version} sha256 "
            f"{c.sha256[:12]}…); bump [contract].version and re-lock, or revert the change"))
    return LockStatus("stale", (
        f"{c.path}: lock is stale: locked version {version}, current version {c.version}; "
        f"review the change and run `toolkit contract lock` to pin {c.version}"))


def require_lock(c: Contract) -> None:
    """Every gate calls this first: no gate runs on an unlocked or drifted contract."""
    status = check_lock(c)
    if status.state != "ok":
        raise DriftError(status.message)
