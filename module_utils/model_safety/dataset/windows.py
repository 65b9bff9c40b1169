"""Windowing and labels: the gap-free runs of each symbol, the candle interval, and which
windows (with their WIN/LOSS labels and chronological split) can be built."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise

import numpy as np

from .candles import Candles, candle_at
from .options import FEATURES, WARMUP_CANDLES, BuildOptions, DatasetError


@dataclass(frozen=True)
class Run:
    """Candles ``start:stop`` of one symbol without a gap, and its windows
    ``offset:offset + windows`` of the output."""

    symbol: int
    start: int
    stop: int
    offset: int
    windows: int


@dataclass(frozen=True)
class Gap:
    """Missing candles of ``symbol`` between the candles opening at ``after_ts`` and
    ``before_ts``."""

    symbol: str
    after_ts: int
    before_ts: int
    missing: int


@dataclass(frozen=True)
class Plan:
    """Every window of the build: its run, end candle, label; what the report counts."""

    options: BuildOptions
    candles: Candles
    interval_s: int
    horizon_candles: int
    runs: tuple[Run, ...]
    gaps: tuple[Gap, ...]
    ends: np.ndarray
    y: np.ndarray
    end_ts: np.ndarray
    window_symbol: np.ndarray

    @property
    def windows(self) -> int:
        """N, the number of windows."""
        return int(self.ends.size)

    @property
    def x_shape(self) -> tuple[int, int, int]:
        """(N, T, F) of X."""
        return self.windows, self.options.lookback, len(FEATURES)


def _interval(symbol: str, ts: np.ndarray) -> int:
    """The symbol's candle interval: its most common step, of which every step must be a
    whole multiple (a larger one is a gap)."""
    steps = np.diff(ts)
    values, counts = np.unique(steps, return_counts=True)
    interval = int(values[np.argmax(counts)])
    irregular = np.flatnonzero(steps % interval)
    if irregular.size:
        row = int(irregular[0])
        raise DatasetError(
            f"irregular candles: {candle_at(symbol, int(ts[row + 1]))} follows ts {int(ts[row])} "
            f"after {int(steps[row])} s, not a multiple of the {interval} s interval "
            f"({irregular.size} such steps)"
        )
    return interval


def plan_windows(candles: Candles, options: BuildOptions) -> Plan:
    """Interval, gaps, runs and every window's end candle and label."""
    intervals: dict[str, int] = {}
    gaps: list[Gap] = []
    spans: list[tuple[int, int, int]] = []  # (symbol, start, stop) of each gap-free run
    for index, symbol in enumerate(candles.symbols):
        lo, hi = int(candles.bounds[index]), int(candles.bounds[index + 1])
        if hi - lo < 2:
            spans.append((index, lo, hi))
            continue
        ts = candles.ts[lo:hi]
        interval = intervals[symbol] = _interval(symbol, ts)
        breaks = np.flatnonzero(np.diff(ts) != interval)
        gaps += [
            Gap(symbol, int(ts[b]), int(ts[b + 1]), int((ts[b + 1] - ts[b]) // interval) - 1)
            for b in breaks.tolist()
        ]
        edges = [lo, *(lo + breaks + 1).tolist(), hi]
        spans += [(index, a, b) for a, b in pairwise(edges)]
    if len(set(intervals.values())) > 1:
        shown = ", ".join(f"{symbol} {seconds} s" for symbol, seconds in intervals.items())
        raise DatasetError(
            f"the symbols have different candle intervals ({shown}): choose symbols of one "
            "interval with --symbols"
        )
    interval_s = next(iter(intervals.values()), 0)
    horizon = options.horizon_s // interval_s if interval_s else 0
    if interval_s and (options.horizon_s % interval_s or horizon < 1):
        raise DatasetError(
            f"--horizon {options.horizon} ({options.horizon_s} s) is not a whole number of "
            f"the {interval_s} s candles"
        )
    needed = WARMUP_CANDLES + options.lookback + horizon
    runs: list[Run] = []
    offset = 0
    for index, start, stop in spans:
        windows = max(0, stop - start - needed + 1) if horizon else 0
        runs.append(Run(index, start, stop, offset, windows))
        offset += windows
    _check_history(candles, runs, options.lookback, horizon)
    first_end = WARMUP_CANDLES + options.lookback - 1
    ends = np.concatenate(
        [np.arange(r.start + first_end, r.start + first_end + r.windows) for r in runs]
    ).astype(np.int64)
    closes = candles.close
    y = (closes[ends + horizon] / closes[ends] - 1.0 > options.threshold).astype(np.int8)
    window_symbol = np.repeat([r.symbol for r in runs], [r.windows for r in runs])
    return Plan(
        options=options,
        candles=candles,
        interval_s=interval_s,
        horizon_candles=horizon,
        runs=tuple(runs),
        gaps=tuple(gaps),
        ends=ends,
        y=y,
        end_ts=candles.ts[ends],
        window_symbol=window_symbol.astype(np.int64),
    )


def _check_history(candles: Candles, runs: Sequence[Run], lookback: int, horizon: int) -> None:
    """Every symbol must yield a window: say which do not and what they lack."""
    needed = WARMUP_CANDLES + lookback + horizon
    short = []
    for index, symbol in enumerate(candles.symbols):
        mine = [r for r in runs if r.symbol == index]
        if not any(r.windows for r in mine):
            longest = max(r.stop - r.start for r in mine)
            short.append(f"{symbol} (longest gap-free run {longest} candles)")
    if short:
        need = (
            f"a window needs {needed} consecutive candles ({WARMUP_CANDLES} warm-up + "
            f"{lookback} lookback + {horizon} horizon)"
            if horizon
            else "at least 2 candles are needed to find the candle interval"
        )
        raise DatasetError(
            f"too little history: {'; '.join(short)}: {need}; leave such symbols out with --symbols"
        )
