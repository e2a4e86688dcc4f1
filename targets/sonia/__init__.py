"""The six-service reference stack ("sonia"), hardened by default; see common.WEAKNESSES."""
