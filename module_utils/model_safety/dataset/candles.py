"""Reading the candles: the ``ohlcv`` table opened read-only in one snapshot, every
selected value checked (types, ranges, order, duplicates) before it becomes numpy columns."""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import urllib.parse
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..utctime import iso_s
from .options import BuildOptions, DatasetError, Progress

TABLE = "ohlcv"

MAX_UNIX_SECONDS = 10**11
"""ts at or above this (year 5138) is not unix seconds (milliseconds, most likely)."""

_COLUMNS = ("symbol", "ts", "open", "high", "low", "close", "volume")

_PRICES = ("open", "high", "low", "close")

_READ_BATCH = 65536

_TYPED = " AND ".join(  # 1 when the row's values have their column's SQLite type, else 0
    f"typeof({column}) IN ({types})"
    for column, types in zip(
        _COLUMNS, ("'text'", "'integer'", *["'integer', 'real'"] * 5), strict=True
    )
)

_HASH_BLOCK = 1 << 20


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
        return candle_at(symbol, int(self.ts[row]))


def candle_at(symbol: str, ts: int) -> str:
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
        where = candle_at(symbols[int(sorted_codes[row])], int(sorted_ts[row]))
        raise DatasetError(
            f"duplicate timestamp: {where} appears more than once ({repeated.size} duplicates)"
        )
    back = np.flatnonzero((codes[1:] == codes[:-1]) & (np.diff(ts) < 0))
    if back.size:
        row = int(back[0]) + 1
        where = candle_at(symbols[int(codes[row])], int(ts[row]))
        raise DatasetError(
            f"non-monotonic timestamps: {where} is stored "
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
