"""argparse ``type=`` converters shared by the ``model-safety`` subcommands: each returns the
value or raises ArgumentTypeError with the text that was refused."""

from __future__ import annotations

import argparse
import math

from .cutover import parse_cutover


def _integer(text: str, minimum: int, wanted: str) -> int:
    try:
        value = int(str(text), 10)
    except ValueError:
        value = minimum - 1
    if value < minimum:
        raise argparse.ArgumentTypeError(f"not {wanted}: {text!r}")
    return value


def positive_int(text: str) -> int:
    """An integer >= 1 (decimal digits only)."""
    return _integer(text, 1, "a positive integer")


def non_negative_int(text: str) -> int:
    """An integer >= 0 (decimal digits only)."""
    return _integer(text, 0, "an integer >= 0")


def positive_float(text: str) -> float:
    """A finite number > 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a positive number: {text!r}") from None
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"not a positive number: {text!r}")
    return value


def share(text: str) -> float:
    """A fraction in [0, 1]."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a share in [0, 1]: {text!r}") from None
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"not a share in [0, 1]: {text!r}")
    return value


def cutover(text: str) -> str:
    """An ``--after`` value (:func:`.cutover.parse_cutover`: a stream id or an ISO-8601 time
    with a zone, 1970..9999), returned as given: a bad one is a usage error of every command."""
    try:
        parse_cutover(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text
