"""A small declarative validator for the boot contract.

Each node knows how to check one value and where it sits (the key path), so every
error can name the file, the key path, the offending value and, for a misspelled key,
the nearest known key. Unknown keys are errors, never silently ignored.
"""

from __future__ import annotations

import abc
import difflib
import math
import re
from dataclasses import dataclass, field
from typing import Any

from toolkit.core.errors import ContractError

PLACEHOLDER_RE = re.compile(r"\{\{\s*([^{}]*?)\s*\}\}")
SEMVER_RE = re.compile(
    r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
    r"(?:-[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*)?(?:\+[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*)?$"
)
DURATION_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, None: 1.0}


def parse_duration(value: Any) -> float:
    """Seconds from ``30``, ``"500ms"``, ``"5s"``, ``"10m"``, ``"48h"`` or ``"1d"``."""
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a duration")  # noqa: TRY004 - callers catch ValueError
    if isinstance(value, (int, float)):
        if not math.isfinite(value):
            raise ValueError(f"{value!r} is not a finite duration")
        if value < 0:
            raise ValueError(f"{value!r} is negative")
        return float(value)
    match = DURATION_RE.match(str(value))
    if not match:
        raise ValueError(f"{value!r} is not a duration like 30s, 10m or 48h")
    return float(match.group(1)) * _UNITS[match.group(2)]


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


@dataclass
class Ctx:
    file: str
    placeholders: frozenset[str] = frozenset()

    def fail(self, path: str, value: Any, why: str) -> ContractError:
        return ContractError(f"{self.file}: {path or '<root>'} = {_show(value)}: {why}")


class Node(abc.ABC):
    """Base validator node: check one value at one key path."""

    @abc.abstractmethod
    def check(self, value: Any, path: str, ctx: Ctx) -> Any: ...


def _check_placeholders(text: str, path: str, ctx: Ctx) -> None:
    for match in PLACEHOLDER_RE.finditer(text):
        name = match.group(1)
        if name not in ctx.placeholders:
            allowed = ", ".join(f"{{{{{p}}}}}" for p in sorted(ctx.placeholders)) or "none"
            hint = difflib.get_close_matches(name, sorted(ctx.placeholders), n=1)
            near = f" (did you mean {{{{{hint[0]}}}}}?)" if hint else ""
            raise ctx.fail(
                path, text, f"unknown placeholder {{{{{name}}}}}{near}; allowed here: {allowed}"
            )
    if "{{" in PLACEHOLDER_RE.sub("", text) or "}}" in PLACEHOLDER_RE.sub("", text):
        raise ctx.fail(path, text, "unbalanced placeholder braces; write {{name}}")


@dataclass
class Str(Node):
    choices: tuple[str, ...] = ()
    pattern: str | None = None
    what: str = ""

    def check(self, value: Any, path: str, ctx: Ctx) -> Any:
        if not isinstance(value, str):
            raise ctx.fail(path, value, f"expected a string, got {type(value).__name__}")
        if "\x00" in value:
            raise ctx.fail(
                path, value, "contains a NUL character, which no path, command or name can hold"
            )
        if self.choices and value not in self.choices:
            raise ctx.fail(path, value, f"must be one of {', '.join(map(repr, self.choices))}")
        if self.pattern and not re.fullmatch(self.pattern, value):
            raise ctx.fail(path, value, f"must be {self.what or 'of the form ' + self.pattern}")
        _check_placeholders(value, path, ctx)
        return value


class SemVer(Node):
    def check(self, value: Any, path: str, ctx: Ctx) -> Any:
        if not isinstance(value, str) or not SEMVER_RE.match(value):
            raise ctx.fail(path, value, "must be a semantic version such as \"1.0.0\"")
        return value


MAX_NUMBER = 1e9
MAX_SECONDS = 30 * 86400.0  # a timeout or interval longer than 30 days is a typo, not a plan
MAX_DURATION = 366 * 86400.0


@dataclass
class Num(Node):
    minimum: float = 0.0
    integer: bool = False
    positive: bool = False  # strictly above ``minimum`` (an interval or timeout of 0 is no plan)
    maximum: float = MAX_NUMBER

    def check(self, value: Any, path: str, ctx: Ctx) -> Any:
        ok = isinstance(value, int) if self.integer else isinstance(value, (int, float))
        if isinstance(value, bool) or not ok:
            kind = "an integer" if self.integer else "a number"
            raise ctx.fail(path, value, f"expected {kind}, got {type(value).__name__}")
        low = value <= self.minimum if self.positive else value < self.minimum
        if not math.isfinite(value) or low or value > self.maximum:
            op = ">" if self.positive else ">="
            raise ctx.fail(path, value, f"must be a finite number {op} {self.minimum:g} and "
                                        f"<= {self.maximum:g}")
        return value


def Seconds() -> Num:
    """A timeout, interval or objective in seconds: finite, above 0, at most 30 days."""
    return Num(positive=True, maximum=MAX_SECONDS)


class Bool(Node):
    def check(self, value: Any, path: str, ctx: Ctx) -> Any:
        if not isinstance(value, bool):
            raise ctx.fail(path, value, f"expected true or false, got {type(value).__name__}")
        return value


@dataclass
class Duration(Node):
    positive: bool = False

    def check(self, value: Any, path: str, ctx: Ctx) -> Any:
        try:
            seconds = parse_duration(value)
        except ValueError as exc:
            raise ctx.fail(path, value, str(exc)) from None
        if not math.isfinite(seconds) or seconds > MAX_DURATION or (self.positive and seconds <= 0):
            raise ctx.fail(
                path, value, f"must be {'above 0 and ' if self.positive else ''}at most 366 days"
            )
        return seconds


@dataclass
class Port(Node):
    def check(self, value: Any, path: str, ctx: Ctx) -> Any:
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 65535:
            raise ctx.fail(path, value, "expected a TCP port number 1-65535")
        return value


@dataclass
class List(Node):
    item: Node
    min_items: int = 0

    def check(self, value: Any, path: str, ctx: Ctx) -> Any:
        if not isinstance(value, list):
            raise ctx.fail(path, value, f"expected a list, got {type(value).__name__}")
        if len(value) < self.min_items:
            raise ctx.fail(path, value, f"needs at least {self.min_items} item(s)")
        return [self.item.check(v, f"{path}[{i}]", ctx) for i, v in enumerate(value)]


@dataclass
class Map(Node):
    """A table with free keys (an env mapping, headers, a query)."""

    value: Node
    key_pattern: str | None = None

    def check(self, value: Any, path: str, ctx: Ctx) -> Any:
        if isinstance(value, str) and value == "{{payload}}" and "payload" in ctx.placeholders:
            return value
        if not isinstance(value, dict):
            raise ctx.fail(path, value, f"expected a table, got {type(value).__name__}")
        out = {}
        for key, item in value.items():
            if self.key_pattern and not re.fullmatch(self.key_pattern, key):
                raise ctx.fail(f"{path}.{key}", key, f"key must match {self.key_pattern}")
            out[key] = self.value.check(item, f"{path}.{key}", ctx)
        return out


class Any_(Node):
    """Free JSON-like data (a request body); only placeholders are checked."""

    def check(self, value: Any, path: str, ctx: Ctx) -> Any:
        if isinstance(value, str):
            _check_placeholders(value, path, ctx)
        elif isinstance(value, list):
            for i, v in enumerate(value):
                self.check(v, f"{path}[{i}]", ctx)
        elif isinstance(value, dict):
            for k, v in value.items():
                self.check(v, f"{path}.{k}", ctx)
        elif not isinstance(value, (int, float, bool)):
            raise ctx.fail(path, value, f"{type(value).__name__} cannot be sent as JSON")
        return value


@dataclass
class OneOf(Node):
    options: tuple[Node, ...]
    what: str

    def check(self, value: Any, path: str, ctx: Ctx) -> Any:
        for option in self.options:
            try:
                return option.check(value, path, ctx)
            except ContractError:
                continue
        raise ctx.fail(path, value, f"expected {self.what}")


@dataclass
class Table(Node):
    fields: dict[str, Node]
    required: tuple[str, ...] = ()
    placeholders: frozenset[str] | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def check(self, value: Any, path: str, ctx: Ctx) -> Any:
        if not isinstance(value, dict):
            raise ctx.fail(path, value, f"expected a table, got {type(value).__name__}")
        inner = ctx if self.placeholders is None else Ctx(ctx.file, self.placeholders)
        for key in value:
            if key not in self.fields:
                raise self._unknown(key, value[key], path, ctx)
        for key in self.required:
            if key not in value:
                where = f"{path}.{key}" if path else key
                raise ContractError(f"{ctx.file}: {where}: required key is missing")
        return {
            key: self.fields[key].check(item, f"{path}.{key}" if path else key, inner)
            for key, item in value.items()
        }

    def _unknown(self, key: str, value: Any, path: str, ctx: Ctx) -> ContractError:
        near = difflib.get_close_matches(key, list(self.fields), n=1, cutoff=0.6)
        hint = f"; did you mean {near[0]!r}?" if near else f"; known keys: {', '.join(self.fields)}"
        return ctx.fail(f"{path}.{key}" if path else key, value, f"unknown key{hint}")


@dataclass
class TableList(Node):
    table: Table

    def check(self, value: Any, path: str, ctx: Ctx) -> Any:
        if not isinstance(value, list):
            raise ctx.fail(
                path, value, f"expected an array of tables ([[{path}]]), got {type(value).__name__}"
            )
        return [self.table.check(v, f"{path}[{i}]", ctx) for i, v in enumerate(value)]
