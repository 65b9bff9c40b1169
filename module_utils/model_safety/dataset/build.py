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
import hashlib
import json
import math
import os
import re
import sqlite3
import tempfile
import urllib.parse
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from itertools import pairwise
from typing import Any

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from ..fileio import ensure_directory, fsync_directory, write_atomic
from ..judgement.reports import DIR_MODE, FILE_MODE, dumps
from ..utctime import as_utc, iso_s
from .report import render_report

TABLE = "ohlcv"
FORMAT = "patchtst_sequences/1"

VOLATILITY_CANDLES = 16
"""The rolling volatility is the std of this many log returns."""
WARMUP_CANDLES = VOLATILITY_CANDLES
"""Candles of the same run needed before a window's first candle (the volatility's returns)."""
VOLUME_Z_MIN_STD = 1e-9
"""Below this std the window's volume is constant (up to rounding): volume_z is 0 there."""
BALANCE_WARN_SHARE = 0.70
"""A class above this share of the windows is warned about (the 100 %-WIN bias)."""
CHUNK_WINDOWS = 4096
"""Windows filled per step: bounds the float64 temporaries to a few MB."""
LISTED_GAPS = 100
"""Gaps listed one by one in the metadata and the report (all are counted)."""
MAX_UNIX_SECONDS = 10**11
"""ts at or above this (year 5138) is not unix seconds (milliseconds, most likely)."""

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
FEATURE_NAMES = tuple(name for name, _ in FEATURES)
_CAUSAL_FEATURES = 5  # the first five: per candle, from the run's candles up to that one

LABEL_RULE = "WIN (1) when close[t + h] / close[t] - 1 > threshold, else LOSS (0)"
LEAKAGE_RULE = (
    f"the features of the window ending at candle t use candles t - T + 1 - {WARMUP_CANDLES} "
    "(warm-up for the causal features, inside the same gap-free run) .. t only; scaling uses "
    "only the window's own candles (close_vs_last, volume_z); no statistic of the whole "
    "dataset is used"
)

_COLUMNS = ("symbol", "ts", "open", "high", "low", "close", "volume")
_PRICES = ("open", "high", "low", "close")
_READ_BATCH = 65536
_TYPED = " AND ".join(  # 1 when the row's values have their column's SQLite type, else 0
    f"typeof({column}) IN ({types})"
    for column, types in zip(
        _COLUMNS, ("'text'", "'integer'", *["'integer', 'real'"] * 5), strict=True
    )
)
_HORIZON_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_HASH_BLOCK = 1 << 20
_MAX_SUFFIX = 1000  # _1 .. _999 after a name already taken in the same second

Progress = Callable[[str, int, int], None]
"""progress(stage, done, total), called as the build goes: "read" (rows read so far, total 0:
unknown), "windows" (windows filled of total), "write" (done 0, total the bytes of X)."""


class DatasetError(Exception):
    """Bad input or options: the build stops and writes nothing."""


# --------------------------------------------------------------------------- options


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


# --------------------------------------------------------------------------- reading


@dataclass(frozen=True)
class Candles:
    """The selected candles, sorted by (symbol, ts): symbol s is rows bounds[s]:bounds[s+1]."""

    symbols: tuple[str, ...]
    bounds: np.ndarray
    ts: np.ndarray
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray
    source: dict[str, Any]

    def where(self, row: int) -> str:
        """``BTCUSDT at ts 1736510400 (2026-01-10T12:00:00Z)`` for an error message."""
        symbol = self.symbols[int(np.searchsorted(self.bounds, row, side="right")) - 1]
        return _at(symbol, int(self.ts[row]))


def _at(symbol: str, ts: int) -> str:
    shown = iso_s(ts) if 0 <= ts < MAX_UNIX_SECONDS else "not unix seconds"
    return f"{symbol} at ts {ts} ({shown})"


def _file_sha256(path: str) -> str:
    """SHA-256 of the file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(_HASH_BLOCK):
            digest.update(block)
    return digest.hexdigest()


def _connect(db: str) -> sqlite3.Connection:
    """A read-only connection (a missing file is an error, never a new empty database)."""
    if not os.path.isfile(db):
        raise DatasetError(f"no database file at {db}")
    uri = "file:" + urllib.parse.quote(os.path.abspath(db)) + "?mode=ro"
    connection = sqlite3.connect(uri, uri=True, isolation_level=None)
    connection.execute("BEGIN")  # one read transaction: every query sees the same snapshot
    return connection


def _check_schema(connection: sqlite3.Connection) -> None:
    found = connection.execute(
        "SELECT name FROM sqlite_master WHERE type IN ('table', 'view') AND lower(name) = ?",
        (TABLE,),
    ).fetchone()
    if found is None:
        tables = [
            row[0]
            for row in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        ]
        raise DatasetError(
            f"no table {TABLE} in the database (it has: {', '.join(tables) or 'no tables'})"
        )
    columns = [row[1].lower() for row in connection.execute(f"PRAGMA table_info({TABLE})")]
    missing = [name for name in _COLUMNS if name not in columns]
    if missing:
        raise DatasetError(
            f"table {TABLE} lacks the column(s) {', '.join(missing)} "
            f"(it has: {', '.join(columns)}; needed: {', '.join(_COLUMNS)})"
        )


def _selection(options: BuildOptions) -> tuple[list[str], list[Any]]:
    clauses: list[str] = []
    params: list[Any] = []
    if options.symbols:
        clauses.append(f"symbol IN ({', '.join('?' * len(options.symbols))})")
        params += options.symbols
    if options.start is not None:
        clauses.append("ts >= ?")
        params.append(options.start)
    if options.end is not None:
        clauses.append("ts < ?")
        params.append(options.end)
    return clauses, params


def _type_error(row: Sequence[Any]) -> DatasetError:
    """The error for a row whose values are not all of their column's type (see _TYPED)."""
    sql_types = {str: "text", int: "integer", float: "real", bytes: "blob"}
    for column, value in zip(_COLUMNS, row, strict=False):
        if not isinstance(value, {"symbol": str, "ts": int}.get(column, (int, float))):
            what = (
                "NULL (NaN or missing)" if value is None else f"{sql_types[type(value)]} {value!r}"
            )
            need = {"symbol": "text", "ts": "INTEGER unix seconds"}.get(column, "a number")
            return DatasetError(
                f"{TABLE} row {row[0]!r} at ts {row[1]!r}: {column} is {what}, not {need}"
            )
    return DatasetError(f"{TABLE} row {row[0]!r} at ts {row[1]!r}: a value of the wrong type")


def _read_rows(
    connection: sqlite3.Connection,
    clauses: list[str],
    params: list[Any],
    progress: Progress | None,
) -> tuple[list[str], list[np.ndarray]]:
    """(symbol names by code, [code, ts, open, high, low, close, volume]) of the selected
    rows in stored (rowid) order; a WITHOUT ROWID table is read in its primary key order."""
    try:
        connection.execute(f"SELECT rowid FROM {TABLE} LIMIT 0")
        order = " ORDER BY rowid"
    except sqlite3.OperationalError:
        order = ""
    where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
    cursor = connection.execute(
        f"SELECT {', '.join(_COLUMNS)}, {_TYPED} FROM {TABLE}{where}{order}", params
    )
    codes: dict[str, int] = {}
    batches: list[list[np.ndarray]] = []
    read = 0
    while rows := cursor.fetchmany(_READ_BATCH):
        read += len(rows)
        block = np.array(rows, dtype=object)  # (rows, 8): converted column-wise in C below
        mistyped = np.flatnonzero(block[:, -1] == 0)
        if mistyped.size:
            raise _type_error(rows[int(mistyped[0])])
        symbols = block[:, 0]
        for name in sorted(set(symbols.tolist()) - codes.keys()):
            codes[name] = len(codes)
        batches.append(
            [
                np.fromiter(map(codes.__getitem__, symbols), np.int64, len(rows)),
                block[:, 1].astype(np.int64),
                *block[:, 2:-1].astype(np.float64).T,
            ]
        )
        if progress is not None:
            progress("read", read, 0)
    if not batches:
        return [], []
    return list(codes), [np.concatenate(parts) for parts in zip(*batches, strict=True)]


def _refuse(candles: Candles, bad: np.ndarray, message: str, values: np.ndarray) -> None:
    """DatasetError naming the first ``bad`` row; ``message`` has a {} for its value."""
    rows = np.flatnonzero(bad)
    if rows.size:
        row = int(rows[0])
        raise DatasetError(
            f"{candles.where(row)}: {message.format(values[row].item())} ({rows.size} rows like it)"
        )


def _check_values(candles: Candles) -> None:
    """Unix-seconds ts, positive finite prices, non-negative volume, consistent candles."""
    ts = candles.ts
    _refuse(candles, (ts < 0) | (ts >= MAX_UNIX_SECONDS), "ts {} is not unix seconds", ts)
    for column in _PRICES:
        prices = getattr(candles, column)
        bad = ~(np.isfinite(prices) & (prices > 0))
        _refuse(candles, bad, column + " {!r} is not a finite price > 0", prices)
    volume = candles.volume
    bad = ~(np.isfinite(volume) & (volume >= 0))
    _refuse(candles, bad, "volume {!r} is not a finite volume >= 0", volume)
    high, low = candles.high, candles.low
    body_top = np.maximum(candles.open, candles.close)
    body_bottom = np.minimum(candles.open, candles.close)
    bad = (high < low) | (high < body_top)
    _refuse(candles, bad, "high {!r} is below the candle's low, open or close", high)
    _refuse(candles, low > body_bottom, "low {!r} is above the candle's open or close", low)


def _check_order(symbols: tuple[str, ...], codes: np.ndarray, ts: np.ndarray) -> None:
    """No symbol has two candles at one ts (wherever they are stored), and per symbol the
    stored order is the time order (ts strictly increases)."""
    by_time = np.lexsort((ts, codes))
    sorted_codes, sorted_ts = codes[by_time], ts[by_time]
    repeated = np.flatnonzero((sorted_codes[1:] == sorted_codes[:-1]) & (np.diff(sorted_ts) == 0))
    if repeated.size:
        row = int(repeated[0])
        where = _at(symbols[int(sorted_codes[row])], int(sorted_ts[row]))
        raise DatasetError(
            f"duplicate timestamp: {where} appears more than once ({repeated.size} duplicates)"
        )
    back = np.flatnonzero((codes[1:] == codes[:-1]) & (np.diff(ts) < 0))
    if back.size:
        row = int(back[0]) + 1
        raise DatasetError(
            f"non-monotonic timestamps: {_at(symbols[int(codes[row])], int(ts[row]))} is stored "
            f"after ts {int(ts[row - 1])} (the rows of a symbol must be stored in time order; "
            f"{back.size} steps back)"
        )


def _rows_sha256(symbols: Sequence[str], bounds: np.ndarray, arrays: Sequence[np.ndarray]) -> str:
    digest = hashlib.sha256(json.dumps([list(symbols), bounds.tolist()]).encode())
    for array in arrays:
        digest.update(np.ascontiguousarray(array).tobytes())
    return digest.hexdigest()


def read_candles(options: BuildOptions, progress: Progress | None = None) -> Candles:
    """The checked candles of the selection (see the module docstring for the checks)."""
    try:
        connection = _connect(options.db)
    except sqlite3.Error as exc:
        raise DatasetError(f"cannot open the database {options.db}: {exc}") from None
    try:
        _check_schema(connection)
        clauses, params = _selection(options)
        names, columns = _read_rows(connection, clauses, params, progress)
    except sqlite3.Error as exc:
        raise DatasetError(f"cannot read {TABLE} from {options.db}: {exc}") from None
    finally:
        connection.close()
    if not names:
        raise DatasetError(f"too little history: no candles in {TABLE} for {_described(options)}")
    absent = [name for name in options.symbols if name not in names]
    if absent:
        raise DatasetError(
            f"too little history: no candles for {', '.join(absent)} in {_described(options)}"
        )
    symbols = tuple(sorted(names))
    position = {name: index for index, name in enumerate(symbols)}
    codes = np.array([position[name] for name in names], dtype=np.int64)[columns[0]]
    order = np.argsort(codes, kind="stable")  # keeps the stored order within a symbol
    codes, ts, *prices = (column[order] for column in columns)
    _check_order(symbols, codes, ts)
    bounds = np.searchsorted(codes, np.arange(len(symbols) + 1))
    try:
        db_sha256 = _file_sha256(options.db)
    except OSError as exc:
        raise DatasetError(f"cannot read the database file {options.db}: {exc}") from None
    source = {
        "db": os.path.abspath(options.db),
        "table": TABLE,
        "db_sha256": db_sha256,
        "rows": int(ts.size),
        "rows_sha256": _rows_sha256(symbols, bounds, [ts, *prices]),
    }
    candles = Candles(symbols, bounds, ts, *prices, source=source)
    _check_values(candles)
    return candles


def _described(options: BuildOptions) -> str:
    parts = [", ".join(options.symbols) if options.symbols else "any symbol"]
    if options.start is not None:
        parts.append(f"from {iso_s(options.start)}")
    if options.end is not None:
        parts.append(f"before {iso_s(options.end)}")
    return " ".join(parts)


# --------------------------------------------------------------------------- windows


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
            f"irregular candles: {_at(symbol, int(ts[row + 1]))} follows ts {int(ts[row])} "
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


# --------------------------------------------------------------------------- features


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


# --------------------------------------------------------------------------- metadata


def _balance(y: np.ndarray) -> dict[str, Any]:
    win = int(np.count_nonzero(y))
    total = int(y.size)
    return {
        "windows": total,
        "win": win,
        "loss": total - win,
        "win_share": win / total if total else None,
        "loss_share": (total - win) / total if total else None,
    }


def _split(plan: Plan) -> dict[str, Any]:
    fraction = plan.options.validation_fraction
    ordered = np.sort(plan.end_ts)
    split_ts = int(ordered[min(plan.windows - 1, int(plan.windows * (1.0 - fraction)))])
    train_max_end_ts = split_ts - (plan.horizon_candles + 1) * plan.interval_s
    validation = plan.end_ts >= split_ts
    train = plan.end_ts <= train_max_end_ts
    return {
        "rule": "validation: end_ts >= split_ts; train: end_ts <= train_max_end_ts (the label "
        "candle closed by split_ts); the windows between are purged; no shuffling",
        "validation_fraction": fraction,
        "split_ts": split_ts,
        "train_max_end_ts": train_max_end_ts,
        "train": _balance(plan.y[train]),
        "validation": _balance(plan.y[validation]),
        "purged": int(plan.windows - np.count_nonzero(train) - np.count_nonzero(validation)),
    }


def _per_symbol(plan: Plan) -> dict[str, dict[str, Any]]:
    candles = plan.candles
    count = len(candles.symbols)
    windows = np.bincount(plan.window_symbol, minlength=count)
    wins = np.bincount(plan.window_symbol, weights=plan.y, minlength=count)
    table = {}
    for index, symbol in enumerate(candles.symbols):
        gaps = [gap for gap in plan.gaps if gap.symbol == symbol]
        total, win = int(windows[index]), int(wins[index])
        table[symbol] = {
            "candles": int(candles.bounds[index + 1] - candles.bounds[index]),
            "runs": sum(1 for run in plan.runs if run.symbol == index),
            "gaps": len(gaps),
            "missing_candles": sum(gap.missing for gap in gaps),
            "windows": total,
            "win": win,
            "loss": total - win,
            "win_share": win / total,
        }
    return table


def _warnings(balance: dict[str, Any], split: dict[str, Any]) -> list[str]:
    warnings = []
    for name in ("win", "loss"):
        share = balance[f"{name}_share"]
        if share > BALANCE_WARN_SHARE:
            warnings.append(
                f"class balance: {name.upper()} is {100 * share:.1f}% of the "
                f"{balance['windows']} windows (> {100 * BALANCE_WARN_SHARE:.0f}%): a model "
                "trained on this learns to always say "
                f"{name.upper()}; check --threshold, --horizon and the time range"
            )
    for part in ("train", "validation"):
        if not split[part]["windows"]:
            warnings.append(f"split: no {part} windows (too few windows or a short time range)")
    return warnings


def build_metadata(
    plan: Plan, feature_stats: dict[str, dict[str, float]] | None, now: datetime
) -> dict[str, Any]:
    """Everything a consumer of the .npz needs to know, JSON-able (also the report's input)."""
    options, candles = plan.options, plan.candles
    balance = _balance(plan.y)
    split = _split(plan)
    return {
        "format": FORMAT,
        "created": iso_s(now),
        "arrays": {
            "X": f"(N, T, F) float32, N={plan.windows} windows, T={options.lookback}, "
            f"F={len(FEATURES)}",
            "y": "(N,) int8: 1 WIN, 0 LOSS",
            "end_ts": "(N,) int64: ts (candle open, unix seconds) of the window's last candle t",
            "symbol": "(N,) unicode: the window's symbol",
            "order": "sorted by (symbol, end_ts)",
        },
        "features": [{"name": name, "description": text} for name, text in FEATURES],
        "feature_stats": feature_stats,
        "lookback": options.lookback,
        "warmup_candles": WARMUP_CANDLES,
        "horizon": {
            "given": options.horizon,
            "seconds": options.horizon_s,
            "candles": plan.horizon_candles,
        },
        "interval_s": plan.interval_s,
        "label": {"rule": LABEL_RULE, "threshold": options.threshold},
        "leakage": LEAKAGE_RULE,
        "symbols": list(candles.symbols),
        "selection": {
            "symbols": list(options.symbols) or None,
            "start": options.start,
            "end": options.end,
        },
        "time_range": {
            "first_candle_ts": int(candles.ts.min()),
            "last_candle_ts": int(candles.ts.max()),
            "first_end_ts": int(plan.end_ts.min()),
            "last_end_ts": int(plan.end_ts.max()),
        },
        "class_balance": balance,
        "split": split,
        "per_symbol": _per_symbol(plan),
        "gaps": {
            "count": len(plan.gaps),
            "missing_candles": sum(gap.missing for gap in plan.gaps),
            "listed": [asdict(gap) for gap in plan.gaps[:LISTED_GAPS]],
        },
        "source": candles.source,
        "warnings": _warnings(balance, split),
    }


# --------------------------------------------------------------------------- files


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
