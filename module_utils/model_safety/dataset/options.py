"""What a dataset build is asked for: :class:`BuildOptions` (validated), the horizon and
time options, and the error that stops a build."""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from ..utctime import as_utc

_HORIZON_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


VOLATILITY_CANDLES = 16
"""The rolling volatility is the std of this many log returns."""

WARMUP_CANDLES = VOLATILITY_CANDLES
"""Candles of the same run needed before a window's first candle (the volatility's returns)."""

VOLUME_Z_MIN_STD = 1e-9
"""Below this std the window's volume is constant (up to rounding): volume_z is 0 there."""

FEATURES: tuple[tuple[str, str], ...] = (
    ("log_return", "ln(close[i] / close[i-1]) (causal)"),
    ("log_range", "ln(high[i] / low[i]): the high-low range (this candle only)"),
    ("body", "ln(close[i] / open[i]): the candle body (this candle only)"),
    ("volume_change", "ln(1 + volume[i]) - ln(1 + volume[i-1]) (causal)"),
    (
        "volatility",
        f"population std of the last {VOLATILITY_CANDLES} log returns, candle i's included "
        "(causal)",
    ),
    ("close_vs_last", "ln(close[i] / close[t]): relative to the window's last close"),
    (
        "volume_z",
        "ln(1 + volume[i]) z-scored by its mean and population std over the window's own "
        f"candles (0 when that std < {VOLUME_Z_MIN_STD:g})",
    ),
)

Progress = Callable[[str, int, int], None]
"""progress(stage, done, total), called as the build goes: "read" (rows read so far, total 0:
unknown), "windows" (windows filled of total), "write" (done 0, total the bytes of X)."""


class DatasetError(Exception):
    """Bad input or options: the build stops and writes nothing."""


@dataclass(frozen=True)
class BuildOptions:
    """What to build; :meth:`parse` turns command-line text into checked values (the
    defaults are the command line's: :mod:`.dataset_cli`)."""

    db: str
    symbols: tuple[str, ...]  # empty: every symbol
    start: int | None  # unix seconds, inclusive
    end: int | None  # unix seconds, exclusive
    lookback: int
    horizon: str  # as given
    horizon_s: int
    threshold: float
    validation_fraction: float

    @classmethod
    def parse(
        cls,
        *,
        db: str,
        symbols: str | None,
        start: str | None,
        end: str | None,
        lookback: int,
        horizon: str,
        threshold: float,
        validation_fraction: float,
    ) -> BuildOptions:
        """Checked options; DatasetError says which one is bad and why."""
        names = tuple(dict.fromkeys(name.strip() for name in (symbols or "").split(",")))
        if symbols is not None and (not names or "" in names):
            raise DatasetError(f"bad --symbols {symbols!r}: a comma-separated list of names")
        start_ts = None if start is None else parse_time(start, "--start")
        end_ts = None if end is None else parse_time(end, "--end")
        if start_ts is not None and end_ts is not None and start_ts >= end_ts:
            raise DatasetError(f"--start {start} is not before --end {end}")
        if lookback < 2:
            raise DatasetError(f"--lookback must be at least 2 candles, not {lookback}")
        if not (math.isfinite(threshold) and threshold > -1.0):
            raise DatasetError(f"--threshold must be a finite return above -1, not {threshold}")
        if not 0.0 < validation_fraction < 1.0:
            raise DatasetError(
                f"--validation-fraction must be between 0 and 1, not {validation_fraction}"
            )
        return cls(
            db=db,
            symbols=names if symbols is not None else (),
            start=start_ts,
            end=end_ts,
            lookback=lookback,
            horizon=horizon,
            horizon_s=parse_horizon(horizon),
            threshold=float(threshold),
            validation_fraction=float(validation_fraction),
        )


def parse_horizon(text: str) -> int:
    """Seconds of a duration ``<n><unit>``, unit s, m, h, d or w: ``4h`` is 14400."""
    match = re.fullmatch(r"\s*(\d+)\s*([smhdw])\s*", text)
    if match is None or int(match.group(1)) == 0:
        raise DatasetError(
            f"bad --horizon {text!r}: a positive duration such as 4h, 90m, 1d (units s m h d w)"
        )
    return int(match.group(1)) * _HORIZON_UNITS[match.group(2)]


def parse_time(text: str, option: str) -> int:
    """Unix seconds of ``text``: an integer (unix seconds), a date (``2026-01-10``, UTC
    midnight) or an ISO-8601 time with ``Z`` or an offset; a time without a zone is refused."""
    text = text.strip()
    if re.fullmatch(r"-?\d+", text):
        return int(text)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        moment = None
    if moment is not None and re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
        moment = moment.replace(tzinfo=UTC)
    if moment is None or moment.tzinfo is None:
        raise DatasetError(
            f"bad {option} {text!r}: unix seconds, a date (2026-01-10) or a time with Z or an "
            "offset (2026-01-10T12:00:00Z)"
        )
    return math.floor(as_utc(moment).timestamp())
