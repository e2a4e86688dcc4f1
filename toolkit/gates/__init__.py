"""The gates: one module per gate, above the core, attacks, chaos, recovery and reports."""
