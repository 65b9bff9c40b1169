"""The two shapes of argument check the project's code makes again and again: a string that a
pattern matches in full, an integer in a range (a bool is no integer here). Each raises the
caller's own error type, with the caller's message and the refused value. Standard library
only (runs on the target through AnsiballZ).
"""

from __future__ import annotations

import math
import re


def full_match(value: object, pattern: re.Pattern[str], error: type[Exception], what: str) -> str:
    """``value`` if it is a string ``pattern`` matches in full, else ``error("<what>: <v>")``."""
    if not isinstance(value, str) or not pattern.fullmatch(value):
        raise error(f"{what}: {value!r}")
    return value


def int_in_range(
    value: object, error: type[Exception], what: str, low: int = 1, high: float = math.inf
) -> int:
    """``value`` if it is an int in ``low..high``, else ``error("<what>: <v>")``."""
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise error(f"{what}: {value!r}")
    return value
