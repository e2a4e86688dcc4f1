"""A faster front end to detect-secrets with the same findings.

The speed comes from work not done. Each file is read once and checked with one
compiled prefilter. Only files where some plugin could possibly match go to
detect-secrets' own ``scan_file``, so the findings are its findings. The prefilter is a
superset, built from the active plugins themselves:

* regex plugins: the union of their own ``denylist`` patterns;
* the keyword plugin: its keyword list (every one of its patterns contains a keyword);
* entropy plugins: a run of at least ``floor(2 ** limit)`` characters of the plugin's
  charset, since a string of n characters has a Shannon entropy of at most log2(n).

With a plugin it does not know, it turns itself off and every file goes to detect-secrets.
"""

from __future__ import annotations

import math
import multiprocessing as mp
import os
import re
from collections.abc import Iterable
from typing import Any

CHUNK = 32


# Necessary conditions for plugins whose own patterns are slow to search, read off their
# source for detect-secrets 1.5: each pattern requires a run of these characters (or the
# keyword). Any other detect-secrets version uses the plugins' own patterns instead.
CHEAP_RULES = {
    "CloudantDetector": r"[0-9a-fA-F]{64}|[a-zA-Z]{24}",
    "IbmCloudIamDetector": r"[a-zA-Z0-9_\-]{44}",
    "IbmCosHmacDetector": r"[a-fA-F0-9]{32}",
    "SoftlayerDetector": r"[a-zA-Z0-9]{64}",
    "ArtifactoryDetector": r"AKC|AP[\dABCDEF]",
}
KEYWORD_LITERALS = r"(?i:key|pass|pwd|secret|contrase)"  # every DENYLIST entry contains one


def _rules_apply() -> bool:
    from detect_secrets.__version__ import VERSION

    return VERSION.startswith("1.5.")


def plugin_pattern(plugin: Any, cheap: bool) -> str | None:
    """A regex every line the plugin can report matches; None for a plugin it does not know."""
    from detect_secrets.plugins.base import RegexBasedDetector
    from detect_secrets.plugins.high_entropy_strings import HighEntropyStringsPlugin
    from detect_secrets.plugins.keyword import DENYLIST, KeywordDetector

    name = type(plugin).__name__
    if isinstance(plugin, KeywordDetector):
        return KEYWORD_LITERALS if cheap else "(?i:" + "|".join(DENYLIST) + ")"
    if cheap and name in CHEAP_RULES:
        return CHEAP_RULES[name]
    if isinstance(plugin, HighEntropyStringsPlugin):
        shortest = max(1, math.floor(2 ** float(plugin.entropy_limit)) - 1)
        return f"[{re.escape(plugin.charset)}]{{{shortest},}}"
    if isinstance(plugin, RegexBasedDetector):
        parts = []
        for rx in plugin.denylist:
            flags = "i" if rx.flags & re.IGNORECASE else ""
            flags += "m" if rx.flags & re.MULTILINE else ""
            flags += "s" if rx.flags & re.DOTALL else ""
            parts.append(f"(?{flags}:{rx.pattern})" if flags else f"(?:{rx.pattern})")
        return "|".join(parts) or None
    return None


def build_filters(plugins: Iterable[Any]) -> list[tuple[Any, re.Pattern[str]]] | None:
    """Each plugin with its own necessary condition; None if any plugin is unknown."""
    cheap = _rules_apply()
    out = []
    for plugin in plugins:
        pattern = plugin_pattern(plugin, cheap)
        if pattern is None:
            return None
        out.append((plugin, re.compile(pattern)))
    return out


def build_prefilter(plugins: Iterable[Any]) -> re.Pattern[str] | None:
    """One regex for the whole file: the union of every plugin's condition."""
    filters = build_filters(plugins)
    if not filters:
        return None
    return re.compile("|".join(f"(?:{rx.pattern})" for _, rx in filters))


_PREFILTER: re.Pattern[str] | None = None
_FILTERS: list[tuple[Any, re.Pattern[str]]] = []


def _init(settings: dict[str, Any]) -> None:
    global _PREFILTER, _FILTERS
    from detect_secrets.core.plugins.util import get_mapping_from_secret_type_to_class  # noqa: F401
    from detect_secrets.settings import configure_settings_from_baseline, get_plugins

    configure_settings_from_baseline(settings)
    _FILTERS = build_filters(get_plugins()) or []
    _PREFILTER = build_prefilter(get_plugins())


def _scan(filename: str) -> list[Any]:
    from detect_secrets.core import scan

    if _PREFILTER is None:
        return [_out(s) for s in scan.scan_file(filename)]
    try:
        with open(filename, encoding="utf-8") as fh:
            text = fh.read()
    except (OSError, UnicodeDecodeError):
        return []
    if _PREFILTER.search(text) is None:
        return []
    return [_out(s) for s in _scan_candidates(filename)]


def _out(secret: Any) -> dict[str, Any]:
    return dict(secret.json()) | {"filename": secret.filename}


def _scan_candidates(filename: str) -> Iterable[Any]:
    """detect-secrets' scan_file, visiting only lines the prefilter admits.

    Plugins judge one line at a time (context only feeds filters, which can only
    drop a finding), so a line no plugin can match is skipped, on a line only the
    plugins whose own condition matches run, and the (slow) line filters run only when
    a plugin found something they could drop: the same findings, in the same order.
    """
    from detect_secrets.core.scan import _get_lines_from_file, _is_filtered_out, _scan_line
    from detect_secrets.util.code_snippet import get_code_snippet

    assert _PREFILTER is not None  # nosec B101 - checked by the caller
    if _is_filtered_out(required_filter_parameters=["filename"], filename=filename):
        return []
    try:
        for lines in _get_lines_from_file(filename):
            found = []
            for number, raw in enumerate(lines, start=1):
                if _PREFILTER.search(raw) is None:
                    continue
                line = raw.rstrip()
                context = get_code_snippet(lines=lines, line_number=number)
                hits = [
                    (plugin, secret)
                    for plugin, rx in _FILTERS
                    if rx.search(raw)
                    for secret in _scan_line(
                        plugin=plugin,
                        filename=filename,
                        line=line,
                        line_number=number,
                        context=context,
                    )
                ]
                # line filters only drop findings: run them when there is one to drop
                if not hits or _is_filtered_out(
                    required_filter_parameters=["line"],
                    filename=filename,
                    line=line,
                    context=context,
                ):
                    continue
                found += [
                    secret
                    for plugin, secret in hits
                    if not _is_filtered_out(
                        required_filter_parameters=["context"],
                        filename=secret.filename,
                        secret=secret.secret_value,
                        plugin=plugin,
                        line=line,
                        context=context,
                    )
                ]
            if found:
                return found
    except OSError:
        return []
    return []


def scan_files(
    files: list[str],
    processes: int | None = None,
    exclude_lines: list[str] | None = None,
    pool_bytes: int | None = None,
) -> Any:
    """A detect-secrets SecretsCollection for ``files``, using every core for big scans.

    Small scans run in this process: a pool's start-up (forking, configuring and
    compiling every plugin's condition in each worker, ~35 ms on two cores) costs more
    than it saves below ``SERIAL_BYTES`` of input (see bench/secrets_throughput.py).
    """
    from detect_secrets.core.potential_secret import PotentialSecret
    from detect_secrets.core.secrets_collection import SecretsCollection
    from detect_secrets.settings import default_settings, get_settings, transient_settings

    from toolkit.core.platform import default_sigterm

    found = SecretsCollection()
    with default_settings():
        config = get_settings().json()
    if exclude_lines:
        config["filters_used"].append({"path": LINE_FILTER, "pattern": list(exclude_lines)})
    with transient_settings(config):
        settings = get_settings().json()
        workers = processes or mp.cpu_count()
        if not uses_pool(files, workers, pool_bytes):
            _init(settings)
            for items in map(_scan, files):
                _collect(found, items, PotentialSecret)
            return found
        with default_sigterm(), mp.get_context("fork").Pool(workers, _init, (settings,)) as pool:
            for items in pool.imap_unordered(_scan, files, chunksize=CHUNK):
                _collect(found, items, PotentialSecret)
    return found


LINE_FILTER = "detect_secrets.filters.regex.should_exclude_line"
SERIAL_BYTES = 512 << 10  # measured: a forked pool costs ~35 ms, serial code runs at 2-10 MB/s


def uses_pool(files: list[str], workers: int, pool_bytes: int | None = None) -> bool:
    """Whether ``scan_files`` starts a worker pool for ``files`` (big scans only)."""
    floor = SERIAL_BYTES if pool_bytes is None else pool_bytes
    return workers > 1 and len(files) >= 8 and _total_bytes(files, floor) >= floor


def _total_bytes(files: list[str], enough: int) -> int:
    total = 0
    for name in files:
        try:
            total += os.stat(name).st_size
        except OSError:
            continue
        if total >= enough:
            break
    return total


def _collect(found: Any, items: list[dict[str, Any]], cls: Any) -> None:
    for item in items:
        secret = cls.load_secret_from_dict(item)
        found[item["filename"]].add(secret)
