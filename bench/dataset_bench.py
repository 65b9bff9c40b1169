"""The PatchTST dataset builder: vectorised windows against a plain per-window loop (figures).

A temporary SQLite database gets ``--candles`` candles (default 1M: 4 symbols of 5-minute
candles, random walks, a few gaps), and then:

1. In this process, from the candles in memory (read once): the vectorised build (windows,
   labels and X, as ``build-patchtst-dataset`` does it) over every window, against the plain
   baseline, a Python loop per window computing the same features with ``math``, on the
   first ``--baseline-windows`` windows (the full 1M would take many minutes) and
   extrapolated per window to all of them. The two outputs must agree (float32 tolerance)
   on those windows, else this exits 1.
2. The whole command as its own process (the subcommand's handler, database to .npz and
   report on disk): wall time, candles/s, and peak RSS from ``wait4``, less the peak RSS of
   an interpreter that only imported numpy and model_safety.dataset.build, against the size of X.

    make bench      (or: .venv/bin/python bench/dataset_bench.py [--candles 1000000])
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT / "module_utils"))

from model_safety.dataset import cli as dataset_cli  # noqa: E402
from model_safety.dataset.candles import read_candles  # noqa: E402
from model_safety.dataset.features import fill_features  # noqa: E402
from model_safety.dataset.options import (  # noqa: E402
    FEATURES,
    VOLATILITY_CANDLES,
    VOLUME_Z_MIN_STD,
    BuildOptions,
)
from model_safety.dataset.windows import Plan, plan_windows  # noqa: E402

SYMBOLS = ("AAAUSDT", "BBBUSDT", "CCCUSDT", "DDDUSDT")
INTERVAL_S = 300
FIRST_TS = 1_600_000_000 - 1_600_000_000 % INTERVAL_S
GAPS_PER_SYMBOL = 3

# Peak RSS comes from wait4 in a tiny runner process: a child forked from this (large)
# bench process would count this process's RSS at the fork in its own high-water mark.
RUNNER = """
import json, os, sys, time
began = time.perf_counter()
pid = os.posix_spawn(sys.argv[1], sys.argv[1:], os.environ)
_pid, status, usage = os.wait4(pid, 0)
wall = time.perf_counter() - began
print(json.dumps([wall, usage.ru_maxrss * 1024, os.waitstatus_to_exitcode(status)]))
"""
# The subcommand's own handler, registered as cli.build_parser registers it.
COMMAND = """
import argparse, sys
from model_safety.dataset import cli as dataset_cli
parser = argparse.ArgumentParser(prog="model-safety")
dataset_cli.register(parser.add_subparsers(dest="command", required=True))
args = parser.parse_args(sys.argv[1:])
sys.exit(args.handler(args))
"""
IMPORTS_ONLY = "import numpy, sqlite3, model_safety.dataset.build"


def make_db(path: str, candles: int) -> None:
    """``candles`` candles over SYMBOLS: random walks, each symbol with a few gaps."""
    rng = np.random.default_rng(7)
    per_symbol = candles // len(SYMBOLS)
    connection = sqlite3.connect(path)
    connection.execute("PRAGMA journal_mode = OFF")
    connection.execute("PRAGMA synchronous = OFF")
    connection.execute(
        "CREATE TABLE ohlcv (symbol TEXT, ts INTEGER, open REAL, high REAL, low REAL, "
        "close REAL, volume REAL)"
    )
    for index, symbol in enumerate(SYMBOLS):
        count = per_symbol + (candles - per_symbol * len(SYMBOLS) if index == 0 else 0)
        steps = np.ones(count, dtype=np.int64)
        steps[rng.integers(1, count, GAPS_PER_SYMBOL)] = 4  # 3 missing candles each
        ts = FIRST_TS + INTERVAL_S * (np.cumsum(steps) - 1)
        close = 100.0 * np.exp(np.cumsum(rng.normal(0.0, 0.002, count)))
        open_ = np.concatenate([[100.0], close[:-1]])
        high = np.maximum(open_, close) * (1.0 + rng.uniform(0.0, 0.002, count))
        low = np.minimum(open_, close) * (1.0 - rng.uniform(0.0, 0.002, count))
        volume = rng.lognormal(3.0, 1.0, count) * (rng.random(count) > 0.01)  # some zero
        rows = zip(
            [symbol] * count,
            ts.tolist(),
            open_.tolist(),
            high.tolist(),
            low.tolist(),
            close.tolist(),
            volume.tolist(),
            strict=True,
        )
        connection.executemany("INSERT INTO ohlcv VALUES (?, ?, ?, ?, ?, ?, ?)", rows)
    connection.commit()
    connection.close()


def plain_windows(plan: Plan, count: int) -> tuple[np.ndarray, np.ndarray]:
    """The baseline: (X, y) of the plan's first ``count`` windows, one Python loop per
    window, every feature from the window's raw candles with ``math``."""
    candles = plan.candles
    close, open_, high, low, volume = (
        getattr(candles, name)[: int(plan.ends[count - 1]) + plan.horizon_candles + 1].tolist()
        for name in ("close", "open", "high", "low", "volume")
    )
    lookback, horizon = plan.options.lookback, plan.horizon_candles
    window_x, window_y = [], []
    for t in plan.ends[:count].tolist():
        first = t - lookback + 1
        log_volumes = [math.log1p(volume[i]) for i in range(first, t + 1)]
        mean = sum(log_volumes) / lookback
        std = math.sqrt(sum((v - mean) ** 2 for v in log_volumes) / lookback)
        rows = []
        for j, i in enumerate(range(first, t + 1)):
            returns = [
                math.log(close[k] / close[k - 1]) for k in range(i - VOLATILITY_CANDLES + 1, i + 1)
            ]
            mean_return = sum(returns) / len(returns)
            rows.append(
                [
                    returns[-1],
                    math.log(high[i] / low[i]),
                    math.log(close[i] / open_[i]),
                    math.log1p(volume[i]) - math.log1p(volume[i - 1]),
                    math.sqrt(sum((r - mean_return) ** 2 for r in returns) / len(returns)),
                    math.log(close[i] / close[t]),
                    (log_volumes[j] - mean) / std if std >= VOLUME_Z_MIN_STD else 0.0,
                ]
            )
        window_x.append(rows)
        window_y.append(1 if close[t + horizon] / close[t] - 1.0 > plan.options.threshold else 0)
    return np.array(window_x, dtype=np.float32), np.array(window_y, dtype=np.int8)


def measured(argv: list[str]) -> tuple[float, int, int]:
    """(wall s, peak RSS bytes, exit code) of one process, measured with wait4."""
    done = subprocess.run(
        [sys.executable, "-S", "-c", RUNNER, *argv], capture_output=True, text=True, check=True
    )
    wall, peak, code = json.loads(done.stdout.strip().splitlines()[-1])
    return wall, peak, code


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--candles", type=int, default=1_000_000)
    parser.add_argument("--lookback", type=int, default=dataset_cli.DEFAULT_LOOKBACK)
    parser.add_argument("--baseline-windows", type=int, default=20_000)
    args = parser.parse_args()
    print(
        f"{os.cpu_count()} CPUs, Python {platform.python_version()}, numpy {np.__version__}; "
        f"{args.candles} candles ({len(SYMBOLS)} symbols, {INTERVAL_S} s, "
        f"{GAPS_PER_SYMBOL} gaps each), lookback {args.lookback}, horizon "
        f"{dataset_cli.DEFAULT_HORIZON}, {len(FEATURES)} features"
    )
    with tempfile.TemporaryDirectory(prefix="dataset-bench-") as workdir:
        db = os.path.join(workdir, "ohlcv.db")
        began = time.perf_counter()
        make_db(db, args.candles)
        print(f"database written in {time.perf_counter() - began:.1f} s")
        options = BuildOptions.parse(
            db=db,
            symbols=None,
            start=None,
            end=None,
            lookback=args.lookback,
            horizon=dataset_cli.DEFAULT_HORIZON,
            threshold=dataset_cli.DEFAULT_THRESHOLD,
            validation_fraction=dataset_cli.DEFAULT_VALIDATION_FRACTION,
        )

        began = time.perf_counter()
        candles = read_candles(options)
        read_s = time.perf_counter() - began
        began = time.perf_counter()
        plan = plan_windows(candles, options)
        x = np.empty(plan.x_shape, dtype=np.float32)
        fill_features(plan, x)
        vector_s = time.perf_counter() - began
        windows = plan.windows

        count = min(args.baseline_windows, windows)
        began = time.perf_counter()
        plain_x, plain_y = plain_windows(plan, count)
        plain_s = time.perf_counter() - began
        plain_all_s = plain_s * windows / count
        np.testing.assert_array_equal(plain_y, plan.y[:count])
        np.testing.assert_allclose(plain_x, x[:count], rtol=1e-5, atol=1e-6)
        del x, plain_x

        print(f"windows: {windows}; X {plan.x_shape} float32 = {4 * math.prod(plan.x_shape)} B")
        print(
            f"read + check (SQLite to arrays): {read_s:.2f} s, "
            f"{args.candles / read_s:,.0f} candles/s"
        )
        print(
            f"vectorised windows + labels + X, all {windows} windows: {vector_s:.2f} s, "
            f"{args.candles / vector_s:,.0f} candles/s"
        )
        print(
            f"plain per-window loop, first {count} windows: {plain_s:.2f} s; extrapolated to "
            f"all {windows}: {plain_all_s:.0f} s, {args.candles / plain_all_s:,.0f} candles/s"
        )
        print(
            f"speed-up: {plain_all_s / vector_s:.0f}x (target >= 20x); outputs equal on the "
            f"{count} baseline windows (y exactly, X within rtol 1e-5, atol 1e-6)"
        )

        out_dir = os.path.join(workdir, "out")
        command = [sys.executable, "-c", COMMAND, "build-patchtst-dataset", "--db", db]
        command += ["--lookback", str(args.lookback), "--out-dir", out_dir]
        command += ["--report-dir", out_dir]
        wall, peak, code = measured(command)
        if code != 0:
            raise SystemExit(f"build-patchtst-dataset exited {code}")
        _, floor, _ = measured([sys.executable, "-c", IMPORTS_ONLY])
        x_bytes = 4 * math.prod(plan.x_shape)
        print(
            f"whole command (database to .npz + report, a process): {wall:.2f} s, "
            f"{args.candles / wall:,.0f} candles/s"
        )
        print(
            f"peak RSS: {peak / 2**20:.0f} MiB; less {floor / 2**20:.0f} MiB of an interpreter "
            f"that imported numpy and model_safety.dataset.build: {(peak - floor) / 2**20:.0f} MiB "
            f"= {(peak - floor) / x_bytes:.3f}x X ({x_bytes / 2**20:.0f} MiB; target <= 1.3x); "
            f"whole process {peak / x_bytes:.3f}x X"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
