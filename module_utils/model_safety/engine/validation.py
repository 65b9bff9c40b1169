"""What the engine readers accept: unit names, invocation ids, checkouts, model and stream
names, sample sizes and waits. Each ``validate_*`` returns its value or raises
:class:`EngineStateError`; the patterns are always used with fullmatch (a trailing newline never
slips through).
"""

from __future__ import annotations

import math
import os
import re

from ..checks import full_match, int_in_range
from ..names import is_model_name
from .commands import EngineStateError

MAX_SAMPLE = 10_000
MAX_PROOF_TIMEOUT_S = 3600.0

_UNIT_RE = re.compile(
    r"[A-Za-z0-9:_.\\][A-Za-z0-9:_.\\@-]{0,240}"
    r"\.(service|socket|target|timer|mount|automount|path|swap|slice|scope|device)"
)
_INVOCATION_RE = re.compile(r"[0-9a-f]{32}")
_STREAM_NAME_RE = re.compile(r"[!-~]{1,256}")


def validate_unit(unit: str) -> str:
    """Return ``unit`` if it is a well-formed systemd unit name, else raise."""
    return full_match(unit, _UNIT_RE, EngineStateError, "not a valid systemd unit name")


def validate_invocation_id(invocation_id: str) -> str:
    """Return ``invocation_id`` if it is 32 lowercase hex digits (systemd's format), else raise."""
    what = "not a systemd invocation id (32 lowercase hex)"
    return full_match(invocation_id, _INVOCATION_RE, EngineStateError, what)


def validate_checkout(checkout: str) -> str:
    """Return ``checkout`` if it is a normalised absolute path without control characters."""
    if (
        not isinstance(checkout, str)
        or not os.path.isabs(checkout)
        or os.path.normpath(checkout) != checkout
        or any(ord(char) < 32 or ord(char) == 127 for char in checkout)
    ):
        raise EngineStateError(f"checkout must be a normalised absolute path: {checkout!r}")
    return checkout


def validate_model_name(model: str) -> str:
    """Return ``model`` if it matches the contract's model-name pattern, else raise."""
    if not is_model_name(model):
        raise EngineStateError(f"not a valid model name: {model!r}")
    return model


def validate_stream_name(stream: str) -> str:
    """Return ``stream`` if it is 1..256 printable, non-blank ASCII characters, else raise."""
    return full_match(stream, _STREAM_NAME_RE, EngineStateError, "not a valid stream name")


def validate_sample(sample: int) -> int:
    """Return ``sample`` if it is an int in 2..MAX_SAMPLE (a rate needs two events)."""
    what = f"sample must be an integer in 2..{MAX_SAMPLE}"
    return int_in_range(sample, EngineStateError, what, 2, MAX_SAMPLE)


def validate_timeout(timeout: float) -> float:
    """Return ``timeout`` as a float if it is a finite number in 0..MAX_PROOF_TIMEOUT_S."""
    if isinstance(timeout, bool) or not isinstance(timeout, int | float):
        raise EngineStateError(f"timeout must be a number of seconds: {timeout!r}")
    if not (math.isfinite(timeout) and 0 <= timeout <= MAX_PROOF_TIMEOUT_S):
        raise EngineStateError(f"timeout must be in 0..{MAX_PROOF_TIMEOUT_S:g} s: {timeout!r}")
    return float(timeout)
