"""Release-gate toolkit: attack library, chaos injectors and gate runner."""

__version__ = "0.1.0"
