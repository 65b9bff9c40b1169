"""Unit tests of the PatchTST sequence dataset builder (model_safety.dataset.build).

Every test makes its own small SQLite database under tmp_path: hand-computed window ends,
labels, gaps, symbol boundaries and horizons; every bad input (an error, and no file left
behind); no leakage; the .npz round-trip; determinism; the all-or-nothing output.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import sqlite3
import statistics
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from bench.dataset_bench import plain_windows
from model_safety.dataset import build as dataset_build
from model_safety.dataset import cli as dataset_cli
from model_safety.dataset import features as dataset_features
from model_safety.dataset.build import BuildResult, build_dataset, load_dataset
from model_safety.dataset.candles import read_candles
from model_safety.dataset.features import FEATURE_NAMES, fill_features
from model_safety.dataset.metadata import LABEL_RULE
from model_safety.dataset.options import (
    FEATURES,
    WARMUP_CANDLES,
    BuildOptions,
    DatasetError,
    parse_horizon,
    parse_time,
)
from model_safety.dataset.windows import Gap, Plan, plan_windows

T0 = 1_767_225_600  # 2026-01-01T00:00:00Z
HOUR = 3600
WARMUP = WARMUP_CANDLES
NOW = datetime(2026, 1, 10, 12, 0, 0, tzinfo=UTC)
SCHEMA = (
    "CREATE TABLE ohlcv (symbol TEXT, ts INTEGER, open REAL, high REAL, low REAL, close REAL, "
    "volume REAL)"
)
FEATURE = {name: index for index, name in enumerate(FEATURE_NAMES)}

Row = tuple[Any, ...]


def candle_rows(
    symbol: str,
    closes: Sequence[float],
    *,
    first_ts: int = T0,
    interval: int = HOUR,
    volumes: Sequence[float] | None = None,
) -> list[Row]:
    """One candle per close: open = the previous close, high/low 1 % outside the body."""
    rows = []
    for i, close in enumerate(closes):
        open_ = closes[i - 1] if i else close
        volume = volumes[i] if volumes is not None else 10.0 + i % 7
        high, low = max(open_, close) * 1.01, min(open_, close) * 0.99
        rows.append((symbol, first_ts + i * interval, open_, high, low, close, volume))
    return rows


def walk(count: int, seed: int = 0) -> list[float]:
    """A random walk of closes around 100."""
    steps = np.random.default_rng(seed).normal(0.0, 0.01, count)
    return (100.0 * np.exp(np.cumsum(steps))).tolist()


def make_db(path: Path, rows: Sequence[Row], schema: str = SCHEMA) -> str:
    connection = sqlite3.connect(path)
    connection.execute(schema)
    if rows:
        connection.executemany("INSERT INTO ohlcv VALUES (?, ?, ?, ?, ?, ?, ?)", rows)
    connection.commit()
    connection.close()
    return str(path)


def options(db: str, **overrides: Any) -> BuildOptions:
    """Small windows for hand computation: lookback 4, horizon 1h (1 candle of 1h); else the
    command line's defaults."""
    chosen: dict[str, Any] = {
        "symbols": None,
        "start": None,
        "end": None,
        "lookback": 4,
        "horizon": "1h",
        "threshold": dataset_cli.DEFAULT_THRESHOLD,
        "validation_fraction": dataset_cli.DEFAULT_VALIDATION_FRACTION,
    }
    return BuildOptions.parse(db=db, **{**chosen, **overrides})


def plan_of(db: str, **overrides: Any) -> Plan:
    chosen = options(db, **overrides)
    return plan_windows(read_candles(chosen), chosen)


def features_of(plan: Plan) -> np.ndarray:
    x = np.empty(plan.x_shape, dtype=np.float32)
    fill_features(plan, x)
    return x


def build(db: str, tmp_path: Path, **overrides: Any) -> BuildResult:
    return build_dataset(
        options(db, **overrides), str(tmp_path / "data"), str(tmp_path / "reports"), now=NOW
    )


# --------------------------------------------------------------------------- windows and labels


def test_window_ends_and_labels_hand_computed(tmp_path: Path) -> None:
    closes = [100.0] * 30
    closes[20] = 150.0  # t = 19: 150 / 100 - 1 = 0.5 > 0: WIN; t = 20: 100 / 150: LOSS
    db = make_db(tmp_path / "c.db", candle_rows("BTCUSDT", closes))
    plan = plan_of(db)
    # a window needs 16 warm-up + 4 lookback + 1 horizon = 21 candles: 30 - 21 + 1 = 10
    assert plan.ends.tolist() == list(range(19, 29))
    assert plan.end_ts.tolist() == [T0 + i * HOUR for i in range(19, 29)]
    assert plan.y.tolist() == [1] + [0] * 9
    assert plan.y.dtype == np.int8
    # the rule is strict: a return equal to the threshold is a LOSS
    assert plan_of(db, threshold=0.5).y.tolist() == [0] * 10
    assert plan_of(db, threshold=-0.5).y.tolist() == [1] * 10


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("4h", 14400), ("90m", 5400), ("1d", 86400), ("30s", 30), ("2w", 1209600), (" 4 h ", 14400)],
)
def test_parse_horizon(text: str, seconds: int) -> None:
    assert parse_horizon(text) == seconds


def test_horizon_is_converted_with_the_candle_interval(tmp_path: Path) -> None:
    closes = walk(40)
    db = make_db(tmp_path / "c.db", candle_rows("ETHUSDT", closes, interval=900))
    plan = plan_of(db, horizon="1h")
    assert (plan.interval_s, plan.horizon_candles) == (900, 4)
    # 16 warm-up + 4 lookback + 4 horizon = 24 candles a window: 40 - 24 + 1 = 17 windows
    assert plan.ends.tolist() == list(range(19, 36))
    expected = [int(closes[t + 4] / closes[t] - 1.0 > 0.0) for t in range(19, 36)]
    assert plan.y.tolist() == expected


@pytest.mark.parametrize("horizon", ["90m", "30m"])
def test_horizon_must_be_whole_candles(tmp_path: Path, horizon: str) -> None:
    db = make_db(tmp_path / "c.db", candle_rows("BTCUSDT", walk(40)))
    with pytest.raises(DatasetError, match=r"is not a whole number of the 3600 s candles"):
        plan_of(db, horizon=horizon)


def test_a_gap_splits_the_series(tmp_path: Path) -> None:
    rows = candle_rows("BTCUSDT", walk(60))
    del rows[30:32]  # candles 30 and 31 are missing
    plan = plan_of(make_db(tmp_path / "c.db", rows))
    # run 1: candles 0..29 (30): ends 19..28; run 2: candles 32..59 (28): ends 51..58
    expected = [*range(19, 29), *range(51, 59)]
    assert plan.end_ts.tolist() == [T0 + i * HOUR for i in expected]
    assert [(r.start, r.stop, r.windows) for r in plan.runs] == [(0, 30, 10), (30, 58, 8)]
    assert plan.gaps == (Gap("BTCUSDT", T0 + 29 * HOUR, T0 + 32 * HOUR, 2),)


def test_no_window_crosses_a_symbol(tmp_path: Path) -> None:
    eth, btc = candle_rows("ETHUSDT", walk(25, 1)), candle_rows("BTCUSDT", walk(26, 2))
    interleaved = [row for pair in zip(eth, btc, strict=False) for row in pair] + btc[25:]
    plan = plan_of(make_db(tmp_path / "c.db", interleaved))
    assert plan.candles.symbols == ("BTCUSDT", "ETHUSDT")  # sorted by name
    # BTCUSDT: 26 - 21 + 1 = 6 windows (candles 0..25); ETHUSDT: 5 (its candles 26..50)
    assert plan.ends.tolist() == [*range(19, 25), *range(26 + 19, 26 + 24)]
    assert plan.window_symbol.tolist() == [0] * 6 + [1] * 5
    assert plan.end_ts.tolist() == [T0 + i * HOUR for i in [*range(19, 25), *range(19, 24)]]


def test_chronological_split_purges_the_label_overlap(tmp_path: Path) -> None:
    db = make_db(tmp_path / "c.db", candle_rows("BTCUSDT", walk(120)))
    result = build_dataset(options(db), "unused", "unused", dry_run=True, now=NOW)
    split = result.metadata["split"]
    # 100 windows ending at candles 19..118; validation: the newest 20 (from candle 99)
    assert split["split_ts"] == T0 + 99 * HOUR
    assert split["train_max_end_ts"] == T0 + 97 * HOUR  # its label candle 98 closes at 99
    assert (split["train"]["windows"], split["validation"]["windows"], split["purged"]) == (
        79,
        20,
        1,
    )


def test_start_and_end_select_candles(tmp_path: Path) -> None:
    db = make_db(tmp_path / "c.db", candle_rows("BTCUSDT", walk(60)))
    plan = plan_of(db, start=str(T0 + 10 * HOUR), end="2026-01-03T02:00:00Z")  # candle 50
    assert plan.candles.ts.tolist() == [T0 + i * HOUR for i in range(10, 50)]
    assert plan.end_ts.tolist() == [T0 + i * HOUR for i in range(29, 49)]


@pytest.mark.parametrize(
    "text", ["1767225600", "2026-01-01", "2026-01-01T00:00:00Z", "2026-01-01T01:00:00+01:00"]
)
def test_parse_time(text: str) -> None:
    assert parse_time(text, "--start") == T0


def test_a_without_rowid_table_is_read(tmp_path: Path) -> None:
    schema = SCHEMA.replace("volume REAL)", "volume REAL, PRIMARY KEY (symbol, ts)) WITHOUT ROWID")
    plan = plan_of(make_db(tmp_path / "c.db", candle_rows("BTCUSDT", walk(30)), schema))
    assert plan.windows == 10


# --------------------------------------------------------------------------- features


def test_features_hand_computed(tmp_path: Path) -> None:
    closes = walk(30, 3)
    volumes = [5.0 + (i % 3) for i in range(25)] + [7.0] * 5  # the last window (25..28): constant
    rows = candle_rows("BTCUSDT", closes, volumes=volumes)
    plan = plan_of(make_db(tmp_path / "c.db", rows))
    x = features_of(plan)
    window, t = 0, 19  # the first window: candles 16..19
    returns = [math.log(closes[k] / closes[k - 1]) for k in range(4, 20)]
    _symbol, _ts, open_, high, low, close, volume = rows[19]
    expected = {
        "log_return": math.log(closes[19] / closes[18]),
        "log_range": math.log(high / low),
        "body": math.log(close / open_),
        "volume_change": math.log1p(volume) - math.log1p(volumes[18]),
        "volatility": statistics.pstdev(returns),
        "close_vs_last": 0.0,
    }
    for name, value in expected.items():
        assert x[window, -1, FEATURE[name]] == pytest.approx(value, rel=1e-6, abs=1e-9), name
    assert x[window, 0, FEATURE["close_vs_last"]] == pytest.approx(
        math.log(closes[t - 3] / closes[t]), rel=1e-6
    )
    log_volumes = [math.log1p(v) for v in volumes[16:20]]
    z = (log_volumes[0] - statistics.fmean(log_volumes)) / statistics.pstdev(log_volumes)
    assert x[window, 0, FEATURE["volume_z"]] == pytest.approx(z, rel=1e-6)
    assert x[-1, :, FEATURE["volume_z"]].tolist() == [0.0] * 4  # constant volume: z is 0
    assert x.dtype == np.float32
    assert np.isfinite(x).all()


def test_features_equal_the_plain_per_window_loop(tmp_path: Path) -> None:
    rows = candle_rows("BTCUSDT", walk(120, 4)) + candle_rows("ETHUSDT", walk(90, 5))
    del rows[60]  # a gap in BTCUSDT
    plan = plan_of(make_db(tmp_path / "c.db", rows), lookback=8, horizon="2h")
    x = features_of(plan)
    plain_x, plain_y = plain_windows(plan, plan.windows)
    np.testing.assert_allclose(x, plain_x, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(plan.y, plain_y)


def test_chunks_do_not_change_x(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    plan = plan_of(make_db(tmp_path / "c.db", candle_rows("BTCUSDT", walk(80))), lookback=6)
    whole = features_of(plan)
    monkeypatch.setattr(dataset_features, "CHUNK_WINDOWS", 7)
    assert features_of(plan).tobytes() == whole.tobytes()


def test_no_leakage_from_candles_after_the_window(tmp_path: Path) -> None:
    closes = walk(90, 6)
    later = 50  # every candle from here on is changed: price, range and volume
    factors = np.linspace(0.5, 2.0, 90 - later).tolist()
    changed = closes[:later] + [c * f for c, f in zip(closes[later:], factors, strict=True)]
    volumes = [10.0 + i % 7 for i in range(90)]
    original = candle_rows("BTCUSDT", closes, volumes=volumes)
    altered = candle_rows("BTCUSDT", changed, volumes=volumes[:later] + [99.0] * 40)
    first = plan_of(make_db(tmp_path / "a.db", original), lookback=8)
    second = plan_of(make_db(tmp_path / "b.db", altered), lookback=8)
    x_first, x_second = features_of(first), features_of(second)
    before = first.ends < later  # windows ending before the first changed candle
    assert before.sum() == later - (WARMUP + 8 - 1)
    assert x_first[before].tobytes() == x_second[before].tobytes()
    assert x_first[~before].tobytes() != x_second[~before].tobytes()


# --------------------------------------------------------------------------- output files


def test_npz_round_trip(tmp_path: Path) -> None:
    rows = candle_rows("BTCUSDT", walk(50, 7)) + candle_rows("ETHUSDT", walk(40, 8))
    db = make_db(tmp_path / "c.db", rows)
    result = build(db, tmp_path)
    assert result.dataset_path == str(tmp_path / "data/patchtst_sequences_20260110T120000Z.npz")
    assert result.report_path == str(
        tmp_path / "reports/patchtst_sequence_dataset_20260110T120000Z.md"
    )
    with np.load(result.dataset_path, allow_pickle=False) as npz:
        assert sorted(npz.files) == ["X", "end_ts", "metadata", "symbol", "y"]
        x, y, end_ts, symbol = npz["X"], npz["y"], npz["end_ts"], npz["symbol"]
        metadata = json.loads(str(npz["metadata"][()]))
    plan = plan_of(db)
    assert (x.dtype, y.dtype, end_ts.dtype, symbol.dtype.kind) == (
        np.float32,
        np.int8,
        np.int64,
        "U",
    )
    assert x.shape == (30 + 20, 4, len(FEATURES))
    assert x.tobytes() == features_of(plan).tobytes()
    assert y.tolist() == plan.y.tolist()
    assert end_ts.tolist() == plan.end_ts.tolist()
    assert symbol.tolist() == ["BTCUSDT"] * 30 + ["ETHUSDT"] * 20
    assert [f["name"] for f in metadata["features"]] == list(FEATURE_NAMES)
    assert metadata["lookback"] == 4
    assert metadata["horizon"] == {"given": "1h", "seconds": 3600, "candles": 1}
    assert metadata["label"] == {"rule": LABEL_RULE, "threshold": 0.0}
    assert metadata["symbols"] == ["BTCUSDT", "ETHUSDT"]
    assert metadata["class_balance"]["win"] == int(y.sum())
    assert metadata["class_balance"]["windows"] == 50
    assert metadata["time_range"]["first_end_ts"] == T0 + 19 * HOUR
    digest = hashlib.sha256(Path(db).read_bytes()).hexdigest()
    assert metadata["source"]["db_sha256"] == digest
    assert metadata["split"]["train"]["windows"] + metadata["split"]["validation"]["windows"] > 0
    stats = metadata["feature_stats"]["close_vs_last"]
    assert stats["max"] == pytest.approx(float(x[:, :, FEATURE["close_vs_last"]].max()))
    arrays, loaded = load_dataset(result.dataset_path)
    assert loaded == metadata
    assert arrays["X"].tobytes() == x.tobytes()
    assert oct(os.stat(result.dataset_path).st_mode & 0o777) == "0o640"


def test_same_db_same_bytes(tmp_path: Path) -> None:
    rows = candle_rows("BTCUSDT", walk(60, 9)) + candle_rows("ETHUSDT", walk(60, 10))
    first = build(make_db(tmp_path / "a.db", rows), tmp_path)
    second = build(make_db(tmp_path / "b.db", rows[::-1][::-1]), tmp_path)
    assert second.dataset_path.endswith("_1.npz")  # the same second: a new name
    assert second.report_path.endswith("_1.md")
    shuffled = sorted(rows, key=lambda row: (row[1], row[0]))  # symbols interleaved
    third = build(make_db(tmp_path / "c.db", shuffled), tmp_path)
    arrays = [load_dataset(r.dataset_path)[0] for r in (first, second, third)]
    for other in arrays[1:]:
        assert other["X"].tobytes() == arrays[0]["X"].tobytes()
        assert other["y"].tobytes() == arrays[0]["y"].tobytes()


def test_the_report(tmp_path: Path) -> None:
    rows = candle_rows("BTCUSDT", walk(60, 11))
    del rows[40]
    result = build(make_db(tmp_path / "c.db", rows), tmp_path)
    report = Path(result.report_path).read_text()
    assert report.startswith("# PatchTST sequence dataset\n")
    for heading in ("## Warnings", "## Class balance", "## Windows per symbol", "## Features"):
        assert heading in report
    assert "## Gaps: 1 (1 missing candles)" in report
    assert "| BTCUSDT | 2026-01-02T15:00:00Z | 2026-01-02T17:00:00Z | 1 |" in report
    assert "| volatility |" in report


def test_a_one_sided_class_balance_is_warned_about(tmp_path: Path) -> None:
    rising = [100.0 * 1.001**i for i in range(40)]
    result = build(make_db(tmp_path / "c.db", candle_rows("BTCUSDT", rising)), tmp_path)
    warning = "class balance: WIN is 100.0% of the 20 windows (> 70%)"
    assert any(w.startswith(warning) for w in result.metadata["warnings"])
    assert warning in Path(result.report_path).read_text()


def test_a_dry_run_writes_nothing(tmp_path: Path) -> None:
    db = make_db(tmp_path / "c.db", candle_rows("BTCUSDT", walk(30)))
    result = build_dataset(
        options(db), str(tmp_path / "data"), str(tmp_path / "reports"), dry_run=True
    )
    assert (result.dataset_path, result.report_path) == (None, None)
    assert result.metadata["class_balance"]["windows"] == 10
    assert result.metadata["feature_stats"] is None
    assert sorted(os.listdir(tmp_path)) == ["c.db"]


def test_progress_is_reported(tmp_path: Path) -> None:
    db = make_db(tmp_path / "c.db", candle_rows("BTCUSDT", walk(40)))
    calls: list[tuple[str, int, int]] = []
    build_dataset(
        options(db), str(tmp_path / "d"), str(tmp_path / "r"), progress=lambda *c: calls.append(c)
    )
    assert calls == [
        ("read", 40, 0),
        ("windows", 20, 20),
        ("write", 0, 20 * 4 * len(FEATURES) * 4),
    ]


def test_a_failed_write_leaves_no_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    db = make_db(tmp_path / "c.db", candle_rows("BTCUSDT", walk(30)))

    def half_written(handle: Any, **_arrays: Any) -> None:
        handle.write(b"PK partial")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(np, "savez", half_written)
    with pytest.raises(OSError, match="No space left"):
        build(db, tmp_path)
    assert os.listdir(tmp_path / "data") == []
    assert os.listdir(tmp_path / "reports") == []


def test_a_failed_report_removes_the_npz(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    db = make_db(tmp_path / "c.db", candle_rows("BTCUSDT", walk(30)))

    def refuse(*_args: Any, **_kwargs: Any) -> None:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(dataset_build, "write_atomic", refuse)
    with pytest.raises(PermissionError):
        build(db, tmp_path)
    assert os.listdir(tmp_path / "data") == []


# --------------------------------------------------------------------------- bad input


def _rows(count: int = 30, symbol: str = "BTCUSDT") -> list[Row]:
    return candle_rows(symbol, walk(count))


def _changed(row_index: int, column: int, value: Any) -> list[Row]:
    rows = _rows()
    row = list(rows[row_index])
    row[column] = value
    rows[row_index] = tuple(row)
    return rows


def _swapped() -> list[Row]:
    rows = _rows()
    rows[10], rows[11] = rows[11], rows[10]
    return rows


TS, OPEN, HIGH, LOW, CLOSE, VOLUME = 1, 2, 3, 4, 5, 6
BAD_INPUT = {
    "missing table": ([], SCHEMA.replace("ohlcv", "candles"), "no table ohlcv"),
    "wrong columns": (
        _rows(),
        SCHEMA.replace(", volume REAL", ", vol REAL"),
        r"lacks the column\(s\) volume",
    ),
    "duplicate timestamps": (_rows() + _rows()[5:6], SCHEMA, "duplicate timestamp: BTCUSDT"),
    "non-monotonic timestamps": (_swapped(), SCHEMA, "non-monotonic timestamps: BTCUSDT"),
    "NaN price": (_changed(3, CLOSE, math.nan), SCHEMA, r"close is NULL \(NaN or missing\)"),
    "NULL volume": (_changed(3, VOLUME, None), SCHEMA, r"volume is NULL \(NaN or missing\)"),
    "text price": (_changed(3, OPEN, "abc"), SCHEMA, "open is text 'abc', not a number"),
    "real ts": (_changed(3, TS, T0 + 0.5), SCHEMA, "ts is real .*, not INTEGER unix seconds"),
    "zero price": (_changed(3, OPEN, 0.0), SCHEMA, r"open 0\.0 is not a finite price > 0"),
    "negative price": (_changed(3, LOW, -1.0), SCHEMA, r"low -1\.0 is not a finite price > 0"),
    "infinite price": (_changed(3, HIGH, math.inf), SCHEMA, "high inf is not a finite price"),
    "negative volume": (_changed(3, VOLUME, -2.0), SCHEMA, r"volume -2\.0 is not a finite volume"),
    "high below low": (_changed(3, HIGH, 1.0), SCHEMA, r"high 1\.0 is below the candle's low"),
    "ts in milliseconds": (
        [(*r[:1], r[1] * 1000, *r[2:]) for r in _rows()],
        SCHEMA,
        "is not unix seconds",
    ),
    "irregular step": (_changed(12, TS, T0 + 12 * HOUR - 600), SCHEMA, "irregular candles"),
    "mixed intervals": (
        _rows() + candle_rows("ETHUSDT", walk(40), interval=900),
        SCHEMA,
        "different candle intervals",
    ),
    "too little history": (_rows(20), SCHEMA, r"too little history: BTCUSDT .*needs 21"),
    "one short symbol": (_rows() + _rows(20, "ETHUSDT"), SCHEMA, "too little history: ETHUSDT"),
    "one candle": (_rows(1), SCHEMA, "at least 2 candles are needed"),
    "empty table": ([], SCHEMA, "too little history: no candles in ohlcv"),
}


@pytest.mark.parametrize("case", BAD_INPUT)
def test_bad_input_is_refused_and_nothing_written(tmp_path: Path, case: str) -> None:
    rows, schema, message = BAD_INPUT[case]
    db = make_db(tmp_path / "c.db", rows, schema)
    with pytest.raises(DatasetError, match=message):
        build(db, tmp_path)
    assert sorted(os.listdir(tmp_path)) == ["c.db"]


def test_a_bad_horizon_for_the_data_is_refused(tmp_path: Path) -> None:
    db = make_db(tmp_path / "c.db", _rows())
    with pytest.raises(DatasetError, match="not a whole number"):
        build(db, tmp_path, horizon="90m")
    assert sorted(os.listdir(tmp_path)) == ["c.db"]


def test_an_unknown_symbol_is_refused(tmp_path: Path) -> None:
    db = make_db(tmp_path / "c.db", _rows())
    with pytest.raises(DatasetError, match="no candles for XRPUSDT"):
        build(db, tmp_path, symbols="BTCUSDT,XRPUSDT")


def test_a_missing_database_is_not_created(tmp_path: Path) -> None:
    missing = tmp_path / "none.db"
    with pytest.raises(DatasetError, match="no database file at"):
        build(str(missing), tmp_path)
    assert os.listdir(tmp_path) == []


def test_a_file_that_is_no_database_is_refused(tmp_path: Path) -> None:
    (tmp_path / "c.db").write_bytes(b"not a database, just text " * 100)
    with pytest.raises(DatasetError, match=r"cannot read ohlcv from .*not a database"):
        build(str(tmp_path / "c.db"), tmp_path)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"lookback": 1}, "--lookback must be at least 2"),
        ({"threshold": math.nan}, "--threshold must be a finite return"),
        ({"threshold": -1.0}, "--threshold must be a finite return above -1"),
        ({"validation_fraction": 1.0}, "--validation-fraction must be between 0 and 1"),
        ({"validation_fraction": 0.0}, "--validation-fraction must be between 0 and 1"),
        ({"horizon": "4"}, "bad --horizon '4'"),
        ({"horizon": "0h"}, "bad --horizon '0h'"),
        ({"horizon": "4x"}, "bad --horizon '4x'"),
        ({"start": "yesterday"}, "bad --start 'yesterday'"),
        ({"end": "2026-01-10T12:00:00"}, "bad --end '2026-01-10T12:00:00'"),
        ({"start": "2026-01-02", "end": "2026-01-01"}, "--start 2026-01-02 is not before"),
        ({"symbols": ","}, "bad --symbols ','"),
    ],
)
def test_bad_options_are_refused(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(DatasetError, match=message):
        options("unused.db", **overrides)
