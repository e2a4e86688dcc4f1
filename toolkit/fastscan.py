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


def build_prefilter(plugins: Iterable[Any]) -> re.Pattern[str] | None:
    from detect_secrets.plugins.base import RegexBasedDetector
    from detect_secrets.plugins.high_entropy_strings import HighEntropyStringsPlugin
    from detect_secrets.plugins.keyword import DENYLIST, KeywordDetector

    cheap = _rules_apply()
    parts: list[str] = []
    for plugin in plugins:
        name = type(plugin).__name__
        if isinstance(plugin, KeywordDetector):
            parts.append(KEYWORD_LITERALS if cheap else "(?i:" + "|".join(DENYLIST) + ")")
        elif cheap and name in CHEAP_RULES:
            parts.append(CHEAP_RULES[name])
        elif isinstance(plugin, HighEntropyStringsPlugin):
            shortest = max(1, math.floor(2 ** float(plugin.entropy_limit)) - 1)
            parts.append(f"[{re.escape(plugin.charset)}]{{{shortest},}}")
        elif isinstance(plugin, RegexBasedDetector):
            for rx in plugin.denylist:
                flags = "i" if rx.flags & re.IGNORECASE else ""
                flags += "m" if rx.flags & re.MULTILINE else ""
                flags += "s" if rx.flags & re.DOTALL else ""
                parts.append(f"(?{flags}:{rx.pattern})" if flags else f"(?:{rx.pattern})")
        else:
            return None
    return re.compile("|".join(parts)) if parts else None


_PREFILTER: re.Pattern[str] | None = None


def _init(settings: dict[str, Any]) -> None:
    global _PREFILTER
    from detect_secrets.core.plugins.util import get_mapping_from_secret_type_to_class  # noqa: F401
    from detect_secrets.settings import configure_settings_from_baseline, get_plugins

    configure_settings_from_baseline(settings)
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
    drop a finding), so a line no plugin can match is skipped without changing results.
    """
    from detect_secrets.core.scan import _get_lines_from_file, _is_filtered_out, _scan_line
    from detect_secrets.settings import get_plugins
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
                if _is_filtered_out(required_filter_parameters=["line"], filename=filename, line=line,
                                    context=context):
                    continue
                for plugin in get_plugins():
                    for secret in _scan_line(plugin=plugin, filename=filename, line=line, line_number=number,
                                             context=context):
                        if not _is_filtered_out(required_filter_parameters=["context"], filename=secret.filename,
                                                secret=secret.secret_value, plugin=plugin, line=line,
                                                context=context):
                            found.append(secret)
            if found:
                return found
    except OSError:
        return []
    return []


def scan_files(files: list[str], processes: int | None = None) -> Any:
    """A detect-secrets SecretsCollection for ``files``, using every core."""
    from detect_secrets.core.potential_secret import PotentialSecret
    from detect_secrets.core.secrets_collection import SecretsCollection
    from detect_secrets.settings import default_settings, get_settings

    from toolkit.secrets_scan import default_sigterm

    found = SecretsCollection()
    with default_settings():
        settings = get_settings().json()
        if len(files) < 64 or (processes or mp.cpu_count()) == 1:
            _init(settings)
            results: Iterable[list[Any]] = map(_scan, files)
            for items in results:
                _collect(found, items, PotentialSecret)
            return found
        with default_sigterm(), mp.get_context("fork").Pool(processes or mp.cpu_count(), _init, (settings,)) as pool:
            for items in pool.imap_unordered(_scan, files, chunksize=CHUNK):
                _collect(found, items, PotentialSecret)
    return found


def _collect(found: Any, items: list[dict[str, Any]], cls: Any) -> None:
    for item in items:
        secret = cls.load_secret_from_dict(item)
        found[item["filename"]].add(secret)
