"""The features of each window, filled chunk by chunk from strided views (causal ones from
the run's candles up to each candle, scaled ones from the window's own candles)."""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from .candles import Candles
from .options import (
    FEATURES,
    VOLATILITY_CANDLES,
    VOLUME_Z_MIN_STD,
    WARMUP_CANDLES,
    DatasetError,
    Progress,
)
from .windows import Plan

CHUNK_WINDOWS = 4096
"""Windows filled per step: bounds the float64 temporaries to a few MB."""

FEATURE_NAMES = tuple(name for name, _ in FEATURES)

_CAUSAL_FEATURES = 5  # the first five: per candle, from the run's candles up to that one


class _RunningStats:
    """Per feature: count, mean and M2 (merged chunk by chunk with Chan's formula), min, max."""

    def __init__(self, features: int) -> None:
        self.count = np.zeros(features)
        self.mean = np.zeros(features)
        self.m2 = np.zeros(features)
        self.min = np.full(features, np.inf)
        self.max = np.full(features, -np.inf)

    def add(self, columns: slice, values: np.ndarray, weights: np.ndarray | None = None) -> None:
        """Merge ``values`` (n, k) of the features ``columns``; with ``weights`` (n,), value
        row i counts weights[i] times (a candle's value is in that many windows)."""
        if weights is None:
            count = float(values.shape[0])
            mean = values.mean(axis=0)
            m2 = np.square(values - mean).sum(axis=0)
        else:
            count = float(weights.sum())
            mean = weights @ values / count
            m2 = weights @ np.square(values - mean)
        before = self.count[columns]
        total = before + count
        delta = mean - self.mean[columns]
        self.mean[columns] += delta * (count / total)
        self.m2[columns] += m2 + np.square(delta) * (before * count / total)
        self.count[columns] = total
        self.min[columns] = np.minimum(self.min[columns], values.min(axis=0))
        self.max[columns] = np.maximum(self.max[columns], values.max(axis=0))

    def as_dict(self) -> dict[str, dict[str, float]]:
        std = np.sqrt(self.m2 / np.maximum(self.count, 1.0))
        return {
            name: {
                "mean": float(self.mean[f]),
                "std": float(std[f]),
                "min": float(self.min[f]),
                "max": float(self.max[f]),
            }
            for f, name in enumerate(FEATURE_NAMES)
        }


def _candle_features(
    candles: Candles, start: int, stop: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(causal features (m, 5), ln close (m,), ln(1 + volume) (m,)), float64, of the run's
    candles from its candle WARMUP on (m = stop - start - WARMUP); each causal feature from
    that candle and the WARMUP candles before it."""
    first = start + WARMUP_CANDLES
    log_close = np.log(candles.close[start:stop])
    returns = np.diff(log_close)  # returns[j] is the log return of the run's candle j + 1
    log_volume = np.log1p(candles.volume[start:stop])
    causal = np.empty((stop - first, _CAUSAL_FEATURES))
    causal[:, 0] = returns[WARMUP_CANDLES - 1 :]
    causal[:, 1] = np.log(candles.high[first:stop] / candles.low[first:stop])
    causal[:, 2] = np.log(candles.close[first:stop] / candles.open[first:stop])
    causal[:, 3] = np.diff(log_volume)[WARMUP_CANDLES - 1 :]
    causal[:, 4] = sliding_window_view(returns, VOLATILITY_CANDLES).std(axis=1)
    return causal, log_close[WARMUP_CANDLES:], log_volume[WARMUP_CANDLES:]


def _check_finite(plan: Plan, out: np.ndarray, offset: int) -> None:
    """The assertion that X is clean (the input checks should make a NaN or Inf impossible)."""
    if not np.isfinite(out).all():
        bad = offset + int(np.flatnonzero(~np.isfinite(out).all(axis=(1, 2)))[0])
        where = plan.candles.where(int(plan.ends[bad]))
        raise DatasetError(f"NaN or Inf in X: window {bad}, ending {where}")


def fill_features(
    plan: Plan, x: np.ndarray, progress: Progress | None = None
) -> dict[str, dict[str, float]]:
    """Fill X (N, T, F) float32 run by run, CHUNK_WINDOWS windows at a time, from strided
    views of per-candle arrays; return each feature's mean, std, min and max over X
    (from the float64 values before their cast to float32).

    Window k of a run is rows k .. k + T - 1 of the run's per-candle features, so its causal
    part is one contiguous block of T * F values of a float32 per-candle array: it is copied
    as such. The two per-window features are computed for a chunk of windows at a time.
    Raises DatasetError on a NaN or an infinity in X.
    """
    lookback, width = plan.options.lookback, len(FEATURES)
    stats = _RunningStats(width)
    done = 0
    for run in plan.runs:
        if not run.windows:
            continue
        causal, log_close, log_volume = _candle_features(plan.candles, run.start, run.stop)
        per_candle = np.zeros((len(causal), width), dtype=np.float32)
        per_candle[:, :_CAUSAL_FEATURES] = causal
        blocks = sliding_window_view(per_candle.reshape(-1), lookback * width)[::width]
        closes_seen = sliding_window_view(log_close, lookback)
        volumes_seen = sliding_window_view(log_volume, lookback)
        for k in range(0, run.windows, CHUNK_WINDOWS):
            k_end = min(k + CHUNK_WINDOWS, run.windows)
            out = x[run.offset + k : run.offset + k_end]
            out.reshape(k_end - k, -1)[:] = blocks[k:k_end]
            closes = closes_seen[k:k_end]
            close_vs_last = closes - closes[:, -1:]
            volumes = volumes_seen[k:k_end]
            std = volumes.std(axis=1, keepdims=True)
            centred = volumes - volumes.mean(axis=1, keepdims=True)
            volume_z = np.divide(
                centred, std, out=np.zeros_like(centred), where=std >= VOLUME_Z_MIN_STD
            )
            out[:, :, _CAUSAL_FEATURES] = close_vs_last
            out[:, :, _CAUSAL_FEATURES + 1] = volume_z
            _check_finite(plan, out, run.offset + k)
            coverage = np.convolve(np.ones(k_end - k), np.ones(lookback))
            stats.add(slice(0, _CAUSAL_FEATURES), causal[k : k_end + lookback - 1], coverage)
            stats.add(slice(_CAUSAL_FEATURES, width - 1), close_vs_last.reshape(-1, 1))
            stats.add(slice(width - 1, width), volume_z.reshape(-1, 1))
            done += k_end - k
            if progress is not None:
                progress("windows", done, plan.windows)
    return stats.as_dict()
