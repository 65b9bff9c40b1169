"""argparse ``type=`` converters shared by the ``model-safety`` subcommands: each returns the
value or raises ArgumentTypeError with the text that was refused."""

from __future__ import annotations

import argparse
import math


def positive_int(text: str) -> int:
    """An integer >= 1 (decimal digits only)."""
    try:
        value = int(str(text), 10)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a positive integer: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"not a positive integer: {text!r}")
    return value


def non_negative_int(text: str) -> int:
    """An integer >= 0 (decimal digits only)."""
    try:
        value = int(str(text), 10)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer >= 0: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"not an integer >= 0: {text!r}")
    return value


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
