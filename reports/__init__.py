"""Report writers. They subscribe to a gate run's events; gates never write reports themselves."""

from __future__ import annotations

from toolkit.core.runner import GateRun


def attach(run: GateRun, formats: tuple[str, ...]) -> None:
    from reports.writers import HtmlWriter, JsonWriter, JunitWriter, MarkdownWriter, SarifWriter

    for fmt, cls in (
        ("json", JsonWriter),
        ("sarif", SarifWriter),
        ("junit", JunitWriter),
        ("md", MarkdownWriter),
        ("html", HtmlWriter),
    ):
        if fmt in formats:
            run.bus.subscribe(cls(run).handle)
