"""The damage report (model_safety.judgement.damage) against a plain per-row Python baseline on
the same synthetic SQLite trade log (no Redis, no lab). Prints figures; not a test.

The trade log has N rows at 100 rows/s on 4 symbols, each the engine's vote of 4 voting models
with patchtst as a 10 % canary (the canary weights of DESIGN.md), its payload the event JSON.
Both paths read every row, find the rows patchtst took part in (model_source) and decided (the
vote without it, with the baseline weights, differs), their forward return over the horizon
from the rows' own prices, and sum it; the bench checks they agree, then prints the times and
the peak memory of the report (rows are read a page at a time).

    python bench/damage_bench.py [--rows 200000] [--horizon 5] [--repeat 3]
"""

from __future__ import annotations

import argparse
import bisect
import json
import math
import platform
import random
import sqlite3
import tempfile
import time
import tracemalloc
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
from compare_bench import timed  # bench/ is the script's directory

from model_safety.judgement.damage import damage_from_log

BASELINE = {"xgb": 0.25, "lgbm": 0.25, "nhits": 0.30, "patchtst": 0.20}
CANARY_WEIGHTS = {"xgb": 0.28125, "lgbm": 0.28125, "nhits": 0.3375, "patchtst": 0.10}
CANARY = "patchtst"
ACTIONS = ("BUY", "SELL", "HOLD")
SYMBOLS = ("BTCUSDT", "ETHUSDT", "SOLUSDT", "BNBUSDT")
START_MS = 1_768_046_400_000
SINCE = "2026-01-10T11:59:00Z"


def vote(breakdown: dict[str, tuple[str, float]], weights: dict[str, float]) -> str:
    """The engine's vote (lab/engine/ai_engine/ensemble.py): unique best score, else HOLD."""
    scores = dict.fromkeys(ACTIONS, 0.0)
    for name, (action, confidence) in breakdown.items():
        scores[action] += weights[name] * confidence
    best = max(scores.values())
    leaders = [a for a in ACTIONS if best - scores[a] <= 1e-12]
    return leaders[0] if len(leaders) == 1 else "HOLD"


def compact(payload: dict[str, Any]) -> str:
    """The payload as the engine writes it (lab/engine/ai_engine/events.py)."""
    return json.dumps(payload, separators=(",", ":"))


def iso(ms: int) -> str:
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ms // 1000))
    return f"{stamp}.{ms % 1000:03d}Z"


def build_log(path: Path, rows: int, seed: int = 16) -> None:
    rng = random.Random(seed)
    price = dict.fromkeys(SYMBOLS, 1000.0)
    db = sqlite3.connect(path)
    db.execute(
        "CREATE TABLE trade_intents (id INTEGER PRIMARY KEY, created_at TEXT NOT NULL, "
        "symbol TEXT NOT NULL, side TEXT NOT NULL, confidence REAL NOT NULL, "
        "model_source TEXT NOT NULL, payload TEXT NOT NULL, quantity REAL)"
    )
    db.execute("CREATE INDEX idx_created ON trade_intents(created_at)")
    batch = []
    for i in range(rows):
        symbol = SYMBOLS[i % 4]
        price[symbol] = max(1.0, price[symbol] + rng.choice((-1.0, 0.0, 1.0)))
        breakdown = {
            name: (rng.choice(ACTIONS), round(rng.uniform(0.3, 1.0), 4)) for name in BASELINE
        }
        side = vote(breakdown, CANARY_WEIGHTS)
        agreeing = [name for name, (action, _c) in breakdown.items() if action == side]
        stamp = iso(START_MS + i * 10)
        payload = {
            "symbol": symbol,
            "side": side,
            "confidence": 0.6,
            "price": price[symbol],
            "consensus_count": len(agreeing),
            "total_models": 4,
            "timestamp": stamp,
            "model_breakdown": {
                name: {"action": action, "confidence": confidence, "model": name}
                for name, (action, confidence) in breakdown.items()
            },
        }
        batch.append((stamp, symbol, side, 0.6, ",".join(agreeing), compact(payload), rng.random()))
        if len(batch) == 10_000:
            db.executemany("INSERT INTO trade_intents VALUES (NULL, ?, ?, ?, ?, ?, ?, ?)", batch)
            batch = []
    db.executemany("INSERT INTO trade_intents VALUES (NULL, ?, ?, ?, ?, ?, ?, ?)", batch)
    db.commit()
    db.close()


def plain_damage(path: Path, horizon_s: float) -> dict[str, Any]:
    """Per row, in Python: json.loads, took part / decided, then the later price by bisect per
    symbol over the kept rows' prices, the signed return, summed."""
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    kept = []
    for _id, created_at, source, payload in db.execute(
        "SELECT id, created_at, model_source, payload FROM trade_intents WHERE created_at >= ?",
        (SINCE[:19],),
    ):
        event = json.loads(payload)
        breakdown = {
            name: (entry["action"], entry["confidence"])
            for name, entry in event["model_breakdown"].items()
            if name != CANARY
        }
        took_part = CANARY in source.split(",")
        decided = vote(breakdown, BASELINE) != event["side"]
        if took_part or decided:
            moment = datetime.fromisoformat(created_at)
            ms = round(moment.timestamp() * 1000)
            kept.append((event["symbol"], ms, event["price"], event["side"], took_part, decided))
    db.close()
    by_symbol: dict[str, tuple[list[int], list[float]]] = {}
    for symbol, ms, price, *_rest in sorted(kept, key=lambda k: (k[0], k[1])):
        times, prices = by_symbol.setdefault(symbol, ([], []))
        times.append(ms)
        prices.append(price)
    horizon_ms = round(horizon_s * 1000)
    totals = {"participated": [0, 0.0], "decisive": [0, 0.0]}
    for symbol, ms, price, side, took_part, decided in kept:
        times, prices = by_symbol[symbol]
        later = bisect.bisect_left(times, ms + horizon_ms)
        if side == "HOLD" or later >= len(times) or times[later] - ms - horizon_ms > horizon_ms:
            continue
        move = (prices[later] / price - 1.0) * 100.0
        signed = move if side == "BUY" else -move
        for name, flag in (("participated", took_part), ("decisive", decided)):
            if flag:
                totals[name][0] += 1
                totals[name][1] += signed
    return totals


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--horizon", type=float, default=5.0, help="seconds (default 5)")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "trade.db"
        build_log(path, args.rows)

        def report() -> dict[str, Any]:
            return damage_from_log(str(path), CANARY, BASELINE, SINCE, horizon_s=args.horizon)

        numpy_s, result = timed(report, args.repeat)
        plain_s, plain = timed(lambda: plain_damage(path, args.horizon), args.repeat)
        tracemalloc.start()
        report()
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    for name in ("participated", "decisive"):
        count, total = plain[name]
        assert result[name]["with_return"] == count, (name, result[name]["with_return"], count)
        assert math.isclose(result[name]["return_pct_sum"], total, rel_tol=1e-6, abs_tol=1e-6)
    print(f"python {platform.python_version()}, numpy {np.__version__}, {platform.machine()}")
    print(f"{args.rows} rows (100/s, 4 symbols), horizon {args.horizon:g} s, best of {args.repeat}")
    print(
        f"damage_from_log():  {numpy_s * 1000:8.1f} ms ({args.rows / numpy_s:,.0f} rows/s; "
        f"parse by the telemetry parser, judgement numpy per page)"
    )
    print(f"plain per-row loop: {plain_s * 1000:8.1f} ms (json.loads, vote, bisect per row)")
    print(f"ratio: {plain_s / numpy_s:.2f}x; results agree")
    print(f"peak traced memory of one report: {peak / 1e6:.1f} MB")
    participated, decisive = result["participated"], result["decisive"]
    print(
        f"participated {participated['rows']} rows ({participated['return_pct_sum']:+.3f} %), "
        f"decisive {decisive['rows']} ({decisive['return_pct_sum']:+.3f} %, net "
        f"{decisive['net_pct_sum']:+.3f} %), sizes {decisive['sizes']}"
    )


if __name__ == "__main__":
    main()
