"""One exception tree. Every message quotes the offending value and says what to do."""

from __future__ import annotations


class ToolkitError(Exception):
    """Root of every error the toolkit raises on purpose; the CLI maps it to exit code 2."""

    exit_code = 2


class ContractError(ToolkitError):
    """The boot contract is missing, malformed or fails validation."""


class DriftError(ToolkitError):
    """The contract changed but its version did not (or the lock is stale)."""


class UsageError(ToolkitError):
    """A command-line argument is wrong."""


class TargetError(ToolkitError):
    """The system under test could not be started, reached or attacked."""


class SafetyError(ToolkitError):
    """The toolkit refused to do something unsafe (a non-loopback target, an undeclared path)."""


class EvidenceError(ToolkitError):
    """The evidence store could not be written or read."""


class Interrupted(ToolkitError):
    """The run was interrupted by the user (Ctrl-C)."""

    exit_code = 130
