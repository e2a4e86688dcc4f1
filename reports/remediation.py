"""What each weakness means and how to fix it, for reports (ZAP-style: description, solution)."""

from __future__ import annotations

SOLUTIONS: dict[int, tuple[str, str]] = {
    22: (
        "A path built from request input reached a file outside the sandbox.",
        (
            "Resolve every path (symlinks included) and refuse it unless it stays under "
            "the sandbox root; open files relative to a directory handle (openat with "
            "O_NOFOLLOW / RESOLVE_BENEATH)."
        ),
    ),
    59: (
        "A symbolic link let a request read or write outside the sandbox.",
        (
            "Open with O_NOFOLLOW on every component (or RESOLVE_BENEATH), check the "
            "opened file's location after opening, and never follow links created by "
            "untrusted callers."
        ),
    ),
    78: (
        "Shell metacharacters in input ran a command the policy did not allow.",
        (
            "Never pass input through a shell: run an argv list with an absolute "
            "executable, and check the program and every argument against the allow-list"
            " after parsing."
        ),
    ),
    184: (
        "A denied command ran because the allow-list matched an incomplete spelling of it.",
        (
            "Normalise the command (resolve the executable, split arguments as the OS "
            "will) before matching, and deny interpreters or wrappers that run further "
            "commands."
        ),
    ),
    209: (
        "A reply or log disclosed a secret or internal detail.",
        (
            "Return generic errors to callers, redact secrets before logging, and keep "
            "stack traces, paths and SQL out of responses."
        ),
    ),
    287: (
        "The service accepted a token it should have refused.",
        (
            "Verify signature, algorithm, expiry and key id on every request with a "
            "constant-time comparison; reject unsigned or 'none' tokens and keys that "
            "were rotated out."
        ),
    ),
    294: (
        "A captured request was accepted a second time.",
        (
            "Bind each token to a nonce and a short lifetime and remember used nonces "
            "until expiry, atomically, so concurrent replays fail too."
        ),
    ),
    454: (
        "Request input set environment variables of a child process.",
        (
            "Start children with an explicit, minimal environment and refuse loader and "
            "interpreter variables (LD_*, PYTHON*, BASH_ENV, ...) from callers."
        ),
    ),
    798: (
        "A credential is written in source, configuration or data at rest.",
        (
            "Move it to a secret store or the environment, rotate the exposed value, and"
            " keep a detect-secrets baseline so only audited, non-secret strings remain."
        ),
    ),
    863: (
        "A denied action was reachable through another name, shape or timing.",
        (
            "Canonicalise the request before the policy check, check it again where the "
            "action runs, and reload policy atomically with the check."
        ),
    ),
}
GENERIC = (
    "The target did something its contract forbids.",
    "Fix the root cause shown in the evidence, then rerun the attack with the same seed.",
)


def solution(cwe: int) -> tuple[str, str]:
    """(description, solution) for a CWE; a generic pair for one without a specific text."""
    return SOLUTIONS.get(int(cwe), GENERIC)


def cwe_url(cwe: int) -> str:
    return f"https://cwe.mitre.org/data/definitions/{int(cwe)}.html"
