"""Discover a surface's harmless baseline instead of assuming one.

Real targets disagree on what a harmless argument looks like: a file server may resolve a
relative name against its own working folder, want an absolute path, or answer ``.`` with a
redirect; ``git diff --version`` is an error. So the toolkit plants a benign file and a
benign folder in the sandbox, tries the forms a target may expect, and keeps the first one
the target accepts (a 2xx reply, preferably one that shows the planted file's content or
the planted folder's entry). Payloads are then derived in that form and in the others.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from toolkit.core.contract import Contract, Surface
from toolkit.core.errors import TargetError
from toolkit.core.transport import Reply

FOLDERISH = re.compile(r"dir|folder|repo|tree|list|root|workspace|project|cwd", re.IGNORECASE)
REPOISH = re.compile(r"repo|git", re.IGNORECASE)


@dataclass(frozen=True)
class Form:
    label: str
    payload: Any
    marker: str | None  # text that proves the target really used the planted item


@dataclass(frozen=True)
class Planted:
    file_name: str
    content: str
    folder_name: str
    inner_name: str  # a file inside the planted folder: its name shows up in a listing
    typed_name: str = ""  # the same content as an image (SVG), for servers of one file type


TYPED_FORM = "relative name, image file"  # the form label traversal plants typed canaries for


def svg(text: str) -> str:
    """``text`` as a minimal, valid SVG image (an image server serves it, the text intact)."""
    return ('<svg xmlns="http://www.w3.org/2000/svg" width="1" height="1"><text>'
            f"{text}</text></svg>")


def plant(make_file: Callable[..., tuple[Path, str]], make_folder: Callable[[Path], Path | None],
          sandbox: Path | None) -> Planted | None:
    """A benign file and a benign folder (with one file) in the sandbox."""
    if sandbox is None:
        return None
    sandbox.mkdir(parents=True, exist_ok=True)
    tag = secrets.token_hex(4)
    path, content = make_file(
        sandbox, f"toolkit-probe-{tag}.txt", f"toolkit probe {secrets.token_hex(8)}"
    )
    folder = sandbox / f"toolkit-probe-dir-{tag}"
    make_folder(folder)
    inner, _ = make_file(folder, f"toolkit-probe-inner-{tag}.txt", "toolkit probe inner file")
    typed, _ = make_file(sandbox, f"toolkit-probe-{tag}.svg", svg(content))
    return Planted(path.name, content, folder.name, inner.name, typed.name)


def folder_typed(surface: Surface) -> bool:
    text = " ".join(
        str(surface.raw.get(k, "")) for k in ("name", "tool", "arguments", "path", "json", "query")
    )
    return bool(FOLDERISH.search(text)) or bool(surface.raw.get("repository", False))


def repository_typed(surface: Surface) -> bool:
    if "repository" in surface.raw:
        return bool(surface.raw["repository"])
    return bool(
        REPOISH.search(str(surface.raw.get("arguments", "")) + str(surface.raw.get("tool", "")))
    )


def path_forms(surface: Surface, p: Planted | None, http_path: bool) -> list[Form]:
    if p is None or surface.sandbox is None:
        return [Form("current folder", ".", None), Form("root", "", None)]
    box = surface.sandbox
    files = [Form("relative name", p.file_name, p.content),
             Form("absolute path", str(box / p.file_name), p.content),
             Form("./name", "./" + p.file_name, p.content)]
    if p.typed_name:  # a server that serves only images refuses the text file
        files.append(Form(TYPED_FORM, p.typed_name, p.content))
    folders = [Form("sandbox folder (absolute)", str(box), p.file_name),
               Form("planted folder, relative", p.folder_name, p.inner_name),
               Form("planted folder, absolute", str(box / p.folder_name), p.inner_name),
               Form("current folder", ".", p.file_name)]
    extra = [Form("root", "", None), Form("index", "index.html", None)] if http_path else []
    if surface.raw.get(
        "writes"
    ):  # a tool that creates (move, copy, mkdir) may refuse existing names
        stem = p.file_name.rsplit(".", 1)[0]
        files += [Form("new relative name", f"{stem}-new.txt", None),
                  Form("new absolute path", str(box / f"{stem}-new2.txt"), None)]
    ordered = folders + files if folder_typed(surface) else files + folders
    return ordered + extra


def forms(c: Contract, surface: Surface, p: Planted | None) -> list[Form]:
    """Candidate harmless payloads for the surface's first class, most telling first."""
    cls = surface.classes[0]
    pol = c.policy
    commands = [str(x) for x in (pol.allowed_commands or ("echo",))]
    name = p.file_name if p else "toolkit-probe"
    if cls == "path":
        http_path = "{{payload}}" in str(surface.raw.get("path", "")).replace(" ", "")
        return path_forms(surface, p, http_path)
    if cls == "argv":
        reader = next((x for x in commands if x in ("cat", "head", "tail")), commands[0])
        out = [Form("command with planted file", [reader, name], p.content if p else None),
               Form("command with a word", [commands[0], "toolkit-probe"], None),
               Form("command alone", [commands[0]], None)]
        return out
    if cls == "command":
        return [Form("command line with a word", f"{commands[0]} toolkit-probe", None),
                Form("command alone", commands[0], None), Form("plain word", "toolkit-probe", None)]
    if cls == "env":
        return [Form("empty mapping", {}, None)]
    if cls == "tool":
        return [Form(f"tool {t}", t, None) for t in (pol.allowed_tools or ("file.read",))]
    return [Form("plain word", "toolkit-probe", None), Form("HEAD", "HEAD", None),
            Form("planted file name", name, None), Form("main", "main", None),
            Form("--help", "--help", None), Form("--version", "--version", None)]


def accepted(reply: Reply, no_credentials: bool) -> bool:
    if reply.ok:
        return True
    return no_credentials and reply.status in (401, 403)


def discover(candidates: list[Form], send: Callable[[Any], Reply], no_credentials: bool = False,
             absolute_oracles: bool = False) -> tuple[Form, Reply, list[str]]:
    """The first form whose reply shows the planted item, else the first accepted, else an error.

    ``absolute_oracles``: the surface's classes are judged by evidence no refusal can fake
    (a side-effect file, a computed product), so a target that refuses every harmless form
    (a tool whose upstream API is unreachable) is still attacked, from its refusal.
    """
    tried: list[str] = []
    first_ok: tuple[Form, Reply] | None = None
    replies: list[Reply] = []
    for form in candidates:
        reply = send(form.payload)
        replies.append(reply)
        tried.append(f"{form.label} {form.payload!r}: {describe(reply)}")
        if not accepted(reply, no_credentials):
            continue
        if form.marker is None or form.marker in reply.text:
            return form, reply, tried
        if first_ok is None:
            first_ok = (form, reply)
    if first_ok is not None:
        return first_ok[0], first_ok[1], tried
    shown = [(f, r) for f, r in zip(candidates, replies) if f.marker and f.marker in r.text]
    if shown:  # refused, yet the planted file's content came back: the form reached it
        tried.append(f"kept {shown[0][0].label!r}: refused, but its reply shows the planted "
                     "content, so the target read what this form names")
        return shown[0][0], shown[0][1], tried
    odd = distinct_refusal(candidates, replies)
    if odd is not None:
        tried.append(
            f"kept {odd[0].label!r}: the only form refused for a reason of its own (not its "
            "argument)"
        )
        return odd[0], odd[1], tried
    answered = [(f, r) for f, r in zip(candidates, replies) if r.status is not None]
    if absolute_oracles and answered:
        tried.append(
            f"kept the refused {answered[0][0].label!r}: injection oracles (side-effect files, "
            "computed "
            "products) do not need an accepted baseline"
        )
        return answered[0][0], answered[0][1], tried
    hint = _same_refusal(candidates, replies)
    raise TargetError(
        "no harmless baseline was accepted, so no attack could be told apart from a failure; "
        "forms tried: " + "; ".join(tried) + ". Check the surface's request template and sandbox"
        + hint
    )


def _same_refusal(candidates: list[Form], replies: list[Reply]) -> str:
    """A hint when every form got one refusal, its own argument aside: the argument was never
    looked at (or only echoed).
    """
    answered = {(r.status, _shape(f, r).replace("<arg>", ""))
                for f, r in zip(candidates, replies, strict=False) if r.status is not None}
    if len(answered) != 1 or len(replies) < 3 or any(r.status is None for r in replies):
        return ""
    status = next(iter(answered))[0]
    return (f"; every form got the same HTTP {status} whatever the argument, so the refusal "
            "comes before it (a Host-header or origin check, credentials, a missing backend): "
            "give the surface the headers or base_url host the server expects")


def _shape(form: Form, reply: Reply) -> str:
    """The reply's text with the form's argument blanked out."""
    text = reply.text
    for variant in sorted(
        {str(form.payload), str(form.payload).lstrip("./")}, key=len, reverse=True
    ):
        if variant:
            text = text.replace(variant, "<arg>")
    return re.sub(r"/\S*<arg>", "<arg>", text)[:300]


def distinct_refusal(candidates: list[Form], replies: list[Reply]) -> tuple[Form, Reply] | None:
    """A form whose refusal differs from every other form's once the argument is blanked out.

    A tool may refuse every harmless request for an application reason ("no changes staged
    for commit"), while all wrong forms get the same "not a repository: <arg>". The one
    form refused differently was understood; it is the best baseline there is.
    """
    shape = _shape
    # the image copy of the probe is there for servers of one file type: only its acceptance
    # counts (its refusal, which quotes different content, would look like one of its own)
    answered = [(f, r) for f, r in zip(candidates, replies)
                if r.status is not None and f.label != TYPED_FORM]
    if len(answered) < 3:
        return None
    shapes = [shape(f, r) for f, r in answered]
    unique = [i for i, sh in enumerate(shapes) if shapes.count(sh) == 1 and "<arg>" not in sh]
    common = max(set(shapes), key=shapes.count)
    if len(unique) == 1 and shapes.count(common) >= 2:
        return answered[unique[0]]
    return None


def describe(reply: Reply) -> str:
    if reply.status is None:
        return f"no reply ({reply.error})"
    hops = f" after {len(reply.redirects)} redirect(s)" if reply.redirects else ""
    return f"HTTP {reply.status}{hops} {reply.text[:80]!r}"


def git(args: list[str], cwd: Path) -> bool:
    """Run git quietly with a fixed identity; False when git is missing or fails."""
    import shutil
    import subprocess  # nosec B404

    exe = shutil.which("git")
    if exe is None:
        return False
    env = {"PATH": "/usr/bin:/bin", "HOME": str(cwd), "GIT_CONFIG_NOSYSTEM": "1",
           "GIT_AUTHOR_NAME": "toolkit", "GIT_AUTHOR_EMAIL": "toolkit@localhost",
           "GIT_COMMITTER_NAME": "toolkit", "GIT_COMMITTER_EMAIL": "toolkit@localhost"}
    done = subprocess.run([exe, *args], cwd=cwd, env=env, capture_output=True, timeout=30,  # nosec B603
                          check=False)
    return done.returncode == 0


def make_repository(folder: Path, canaries: Any, message: str = "toolkit baseline commit") -> bool:
    """Make ``folder`` a git repository with one commit, unless it already is one.

    The ``.git`` folder and the committed file are recorded with ``canaries`` and removed
    after the run. Returns True when this call created the repository.
    """
    folder.mkdir(parents=True, exist_ok=True)
    if (folder / ".git").exists():
        return False
    if canaries.tree(folder / ".git") is None:
        return False
    (folder / ".git").rmdir()  # git init wants to create it itself; the journal already names it
    tag = secrets.token_hex(4)
    canaries.file(folder, f"toolkit-probe-committed-{tag}.txt", f"toolkit committed {tag}")
    ok = git(["init", "-q", "-b", f"toolkit-{tag}", "."], folder)
    ok = ok and git(["add", f"toolkit-probe-committed-{tag}.txt"], folder)
    return ok and git(["commit", "-q", "-m", message], folder)
