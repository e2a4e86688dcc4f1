"""The attack library. Each module registers one or more attacks with attacks.base.register.

Importing this package registers the built-ins; it is what the package's own entry point
(``builtin = "attacks"`` in the ``release_gate_toolkit.attacks`` group) names, so built-ins
load exactly the way third-party attacks do.
"""

from attacks import (  # noqa: F401  (each import registers its attacks)
    auth,
    command,
    envinject,
    envleak,
    headers,
    leaks,
    options,
    policy,
    robust,
    symlink,
    traversal,
    writes,
)
