"""The telemetry event contract of DESIGN.md "Telemetry event" as the parser applies it: the
actions and their codes, the window's limits, and the record of an entry that breaks it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

ACTIONS = ("BUY", "SELL", "HOLD")
"""Action names; their index is the action code stored in the columns."""
BUY, SELL, HOLD = 0, 1, 2
NO_ACTION = -1
"""Action code where a model is absent from an event or reported inactive."""
ACTION_CODES = {name: code for code, name in enumerate(ACTIONS)}

MAX_MODELS = 64
"""Distinct model names accepted in one window."""
MAX_FEATURES = 256
"""Distinct feature names accepted in one window."""
VOTER_REASON = "shadow model counted as voter"
"""Prefix of the malformed reason for events whose consensus_count/total_models include a
shadow model; the shadow report turns those into a hard blocker."""

# Applied with fullmatch: a "$" anchor would let a trailing newline through.
FEATURE_NAME_RE = re.compile(r"[A-Za-z0-9_.:-]{1,64}")


@dataclass(frozen=True, slots=True)
class Malformed:
    """One stream entry that is not a valid event, and the first reason found."""

    stream_id: str
    reason: str
    models: tuple[str, ...] = ()
    """Models the reason is about (set for :data:`VOTER_REASON`: the shadow models)."""
