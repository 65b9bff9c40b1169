"""Model Safety Ops: the logic, written once.

The same files are importable as ``model_safety`` (the installed package behind the
``model-safety`` CLI) and as ``ansible.module_utils.model_safety`` (shipped to targets by
AnsiballZ), so modules inside this package import each other relatively and depend only on
the standard library, numpy and redis as Debian bookworm ships them.
"""

__version__ = "0.1.0"
