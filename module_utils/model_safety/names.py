"""The model-name rule of DESIGN.md (`^[a-z][a-z0-9_]{0,31}$`), defined once.

Always applied with ``fullmatch``: a ``$`` anchor would let a trailing newline through.
"""

from __future__ import annotations

import re

MODEL_NAME_RE = re.compile(r"[a-z][a-z0-9_]{0,31}")


def is_model_name(name: object) -> bool:
    """True when name is a string that follows the model-name rule."""
    return isinstance(name, str) and MODEL_NAME_RE.fullmatch(name) is not None
