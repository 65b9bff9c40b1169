"""The PatchTST sequence dataset: labelled windows of OHLCV candles from SQLite, as one .npz.

Input: the table ``ohlcv(symbol TEXT, ts INTEGER /* candle open, unix seconds */, open, high,
low, close, volume REAL)`` of a SQLite database, opened read-only in one read transaction
(one snapshot). Rows are selected by symbol and by ``start <= ts < end``; the
``sqlite3`` module's fetch is the floor of the read (each row becomes a Python tuple).

Checks (each a :class:`DatasetError`, nothing written): the table and its columns exist;
every selected value has its type (``ts`` INTEGER unix seconds, prices and volume numbers; a
NULL, which is how SQLite stores a NaN, is refused); prices are finite and > 0, volume finite
and >= 0, ``low <= open, close <= high``; no symbol has two rows with one ``ts`` (a
duplicate), and per symbol the rows, in the order they were stored (rowid), have increasing
``ts`` (a smaller one is non-monotonic); the candle interval, the most common step between
candles, is the same for every symbol and every step is a whole multiple of it (a larger step
is a gap: it splits the series into runs); the horizon is a whole number of candles; every
selected symbol yields at least one window.

Windows: a window is the ``lookback`` (T) consecutive candles of one run ending at candle t
(inclusive). Its label compares ``close[t + h]`` with ``close[t]`` (h = horizon in candles):
WIN (1) when ``close[t + h] / close[t] - 1 > threshold``, else LOSS (0). A window never
crosses a symbol or a gap, and only windows whose label candle exists in the same run are built.

Features, per candle i of the window (float32, in this order, see :data:`FEATURES`):

* ``log_return`` ln(close[i] / close[i-1]); ``log_range`` ln(high[i] / low[i]);
  ``body`` ln(close[i] / open[i]); ``volume_change`` ln(1 + volume[i]) - ln(1 + volume[i-1]);
  ``volatility`` population std of the last :data:`VOLATILITY_CANDLES` log returns (i's
  included). These depend on candle i and earlier candles only (causal).
* ``close_vs_last`` ln(close[i] / close[t]): the price relative to the window's last close;
  ``volume_z`` ln(1 + volume[i]) z-scored by the mean and population std of that quantity over
  the window's own T candles (0 where that std is below :data:`VOLUME_Z_MIN_STD`). These
  are scaled by the window's own candles only.

No leakage: the features of the window ending at t are a function of candles
t - T + 1 - :data:`WARMUP_CANDLES` .. t of its run and of nothing else (no statistic of the
whole dataset is used), so changing any candle after t never changes them. The causal
features need :data:`WARMUP_CANDLES` earlier candles: they must lie in the same gap-free run,
so a run's first window ends at its candle WARMUP + T - 1 (counting from 0).

Split: chronological, never shuffled. With ``split_ts`` the end ts at the
``1 - validation_fraction`` quantile of the windows' end ts, validation is every window with
``end_ts >= split_ts`` and training every window whose label candle has closed by then
(``end_ts + (h + 1) * interval <= split_ts``); the windows between (their label would look
into the validation period) are purged.

Output: ``<out_dir>/patchtst_sequences_<UTC stamp>.npz`` (uncompressed, loads with
``allow_pickle=False``): ``X`` (N, T, F) float32, ``y`` (N,) int8, ``end_ts`` (N,) int64
(ts of candle t), ``symbol`` (N,) fixed-width unicode and ``metadata`` (a 0-d unicode array:
one JSON document), windows sorted by (symbol, end_ts); and the Markdown report
``<report_dir>/patchtst_sequence_dataset_<stamp>.md``. X is allocated once and filled chunk by
chunk from strided views (no per-window Python loop, no float64 copy of X); the .npz is written
to a temporary file in the output directory, fsynced and then linked to its name, so a failed
build leaves no file behind. The same database gives the same bytes in X and y (with the same
numpy build: another numpy's ``log`` may differ in the last bit).
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np

from ..fileio import ensure_directory, fsync_directory, write_atomic
from ..judgement.reports import DIR_MODE, FILE_MODE, dumps
from ..utctime import as_utc
from .candles import read_candles
from .features import fill_features
from .metadata import build_metadata
from .options import BuildOptions, DatasetError, Progress
from .report import render_report
from .windows import plan_windows

_MAX_SUFFIX = 1000  # _1 .. _999 after a name already taken in the same second


@dataclass(frozen=True)
class BuildResult:
    """What a build made: the metadata, and the paths written (None in a dry run)."""

    metadata: dict[str, Any]
    dataset_path: str | None = None
    report_path: str | None = None


def _allocate(shape: tuple[int, int, int]) -> np.ndarray:
    try:
        return np.empty(shape, dtype=np.float32)
    except MemoryError:
        size = math.prod(shape) * 4 / 1e9
        raise DatasetError(
            f"not enough memory for X {shape} float32 ({size:.1f} GB): select fewer symbols or "
            "a shorter time range"
        ) from None


def _save_npz(directory: str, stem: str, arrays: dict[str, np.ndarray]) -> str:
    """Write the arrays as an uncompressed .npz to a temporary file, fsync it, then link it to
    ``<stem>.npz``, or ``<stem>_1.npz``, ... when taken (a link never replaces a file);
    return the suffix used ("" or "_1", ...)."""
    fd, temporary = tempfile.mkstemp(prefix=f".{stem}.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as handle:
            np.savez(handle, **arrays)
            handle.flush()
            os.fchmod(handle.fileno(), FILE_MODE)
            os.fsync(handle.fileno())
        for suffix in ("", *(f"_{n}" for n in range(1, _MAX_SUFFIX))):
            try:
                os.link(temporary, os.path.join(directory, f"{stem}{suffix}.npz"))
            except FileExistsError:
                continue
            break
        else:
            raise FileExistsError(f"no free name for {stem}.npz in {directory}")
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
    fsync_directory(directory)
    return suffix


def _stamp(now: datetime) -> str:
    return as_utc(now).strftime("%Y%m%dT%H%M%SZ")


def build_dataset(
    options: BuildOptions,
    out_dir: str,
    report_dir: str,
    *,
    dry_run: bool = False,
    progress: Progress | None = None,
    now: datetime | None = None,
) -> BuildResult:
    """Read, check, window and label the candles; unless ``dry_run``, write the .npz and its
    report (both or neither: a report that cannot be written removes the .npz again)."""
    now = now or datetime.now(UTC)
    plan = plan_windows(read_candles(options, progress), options)
    if dry_run:
        return BuildResult(build_metadata(plan, None, now))
    ensure_directory(out_dir, DIR_MODE)
    ensure_directory(report_dir, DIR_MODE)
    x = _allocate(plan.x_shape)
    feature_stats = fill_features(plan, x, progress)
    metadata = build_metadata(plan, feature_stats, now)
    if progress is not None:
        progress("write", 0, x.nbytes)
    arrays = {
        "X": x,
        "y": plan.y,
        "end_ts": plan.end_ts,
        "symbol": np.array(plan.candles.symbols)[plan.window_symbol],
        "metadata": np.array(dumps(metadata)),
    }
    stamp = _stamp(now)
    suffix = _save_npz(out_dir, f"patchtst_sequences_{stamp}", arrays)
    dataset_path = os.path.join(out_dir, f"patchtst_sequences_{stamp}{suffix}.npz")
    report_path = os.path.join(report_dir, f"patchtst_sequence_dataset_{stamp}{suffix}.md")
    try:
        report = render_report(metadata, dataset_path, now)
        write_atomic(report_path, report.encode(), FILE_MODE, replace=False)
    except BaseException:
        os.unlink(dataset_path)
        fsync_directory(out_dir)
        raise
    return BuildResult(metadata, dataset_path, report_path)


def load_dataset(path: str) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """(arrays X, y, end_ts, symbol; the metadata) of a built .npz, without pickle."""
    with np.load(path, allow_pickle=False) as npz:
        arrays = {name: npz[name] for name in ("X", "y", "end_ts", "symbol")}
        metadata = json.loads(str(npz["metadata"][()]))
    return arrays, metadata
