"""Chaos injectors: each one an inject / verify / rollback trio, journaled step by step."""
