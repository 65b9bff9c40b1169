"""The paired comparison (model_safety.judgement.compare) against a plain per-event Python
baseline on the same synthetic window, in memory (no Redis, no lab). Prints figures; not a test.

The window has N events on 4 symbols (100 events/s), 4 voting models with the DESIGN.md
weights, and a canary (patchtst) that is right less often than the others. Both paths compute
the outcomes over the horizon, the accuracy per model, McNemar against each baseline and the
counterfactual vote without the canary; the bench checks they agree, then prints the times.

    python bench/compare_bench.py [--events 100000] [--horizon 5] [--repeat 3]
"""

from __future__ import annotations

import argparse
import bisect
import math
import platform
import time
from types import SimpleNamespace
from typing import Any

import numpy as np

from model_safety.judgement.compare import compare
from model_safety.judgement.shadow import future_prices
from model_safety.telemetry.events import EventWindow, ModelColumns

WEIGHTS = {"xgb": 0.25, "lgbm": 0.25, "nhits": 0.30, "patchtst": 0.20}
CANARY = "patchtst"
ACTIONS = ("BUY", "SELL", "HOLD")
SKILL = {"xgb": 0.6, "lgbm": 0.58, "nhits": 0.62, "patchtst": 0.45}
"""Probability that a model calls the direction of the next move right."""


def synthetic_window(n: int, horizon_s: float, seed: int = 16) -> EventWindow:
    rng = np.random.default_rng(seed)
    symbol = (np.arange(n) % 4).astype(np.int32)
    timestamp_ms = 1_768_046_400_000 + np.arange(n, dtype=np.int64) * 10
    steps = rng.choice([-1.0, 0.0, 1.0], size=n, p=[0.45, 0.1, 0.45])
    price = 1000.0 + np.zeros(n)
    for code in range(4):
        rows = symbol == code
        price[rows] += np.cumsum(steps[rows])
    # The true move over the horizon, so that each model's skill shows in its accuracy.
    columns = SimpleNamespace(n=n, timestamp_ms=timestamp_ms, symbol=symbol, price=price)
    up = future_prices(columns, round(horizon_s * 1000)) > price
    models = {}
    scores = np.zeros((n, 3))
    for name, skill in SKILL.items():
        right = rng.random(n) < skill
        action = np.where(right == up, 0, 1).astype(np.int8)
        action[rng.random(n) < 0.2] = 2
        confidence = rng.uniform(0.3, 1.0, n).round(4)
        scores[np.arange(n), action] += WEIGHTS[name] * confidence
        ones, zeros = np.ones(n, dtype=np.bool_), np.zeros(n, dtype=np.bool_)
        models[name] = ModelColumns(name, ones, zeros, zeros.copy(), action, confidence)
    side = np.where((scores.max(1, keepdims=True) == scores).sum(1) == 1, scores.argmax(1), 2)
    return EventWindow(
        side=side.astype(np.int8),
        confidence=np.full(n, 0.6),
        consensus_count=np.full(n, 4, dtype=np.int16),
        total_models=np.full(n, 4, dtype=np.int16),
        timestamp_ms=timestamp_ms,
        stream_ms=timestamp_ms.copy(),
        symbol=symbol,
        symbols=["BTCUSDT", "ETHUSDT", "SOLUSDT", "BNBUSDT"],
        price=price,
        payload_bytes=np.full(n, 600, dtype=np.int32),
        models=models,
        features={},
        malformed=[],
    )


def as_events(window: EventWindow) -> list[dict[str, Any]]:
    """The window as the plain baseline would hold it: one dict per event."""
    return [
        {
            "symbol": window.symbols[int(window.symbol[i])],
            "ts": int(window.timestamp_ms[i]),
            "price": float(window.price[i]),
            "side": ACTIONS[int(window.side[i])],
            "models": {
                name: (ACTIONS[int(cols.action[i])], float(cols.confidence[i]))
                for name, cols in window.models.items()
            },
        }
        for i in range(window.n)
    ]


def plain_compare(events: list[dict[str, Any]], horizon_s: float) -> dict[str, Any]:
    """Per event, in Python: the future price by bisect per symbol, right/wrong per model,
    McNemar counts against each baseline, the vote without the canary."""
    by_symbol: dict[str, tuple[list[int], list[float]]] = {}
    for e in events:
        times, prices = by_symbol.setdefault(e["symbol"], ([], []))
        times.append(e["ts"])
        prices.append(e["price"])
    horizon_ms = round(horizon_s * 1000)
    right: dict[str, list[bool | None]] = {name: [] for name in WEIGHTS}
    changed = 0
    for e in events:
        times, prices = by_symbol[e["symbol"]]
        later = bisect.bisect_left(times, e["ts"] + horizon_ms)
        move = prices[later] - e["price"] if later < len(times) else 0.0
        for name, (action, _) in e["models"].items():
            directional = action != "HOLD" and move != 0.0
            right[name].append((action == "BUY") == (move > 0) if directional else None)
        scores = dict.fromkeys(ACTIONS, 0.0)
        for name, (action, confidence) in e["models"].items():
            if name != CANARY:
                scores[action] += WEIGHTS[name] * confidence
        best = max(scores.values())
        leaders = [a for a in ACTIONS if best - scores[a] <= 1e-12]
        changed += (leaders[0] if len(leaders) == 1 else "HOLD") != e["side"]
    result: dict[str, Any] = {"changed": changed, "accuracy": {}, "mcnemar": {}}
    for name, calls in right.items():
        judged = [r for r in calls if r is not None]
        result["accuracy"][name] = sum(judged) / len(judged)
        if name != CANARY:
            pairs = [
                (a, b)
                for a, b in zip(right[CANARY], calls, strict=True)
                if a is not None and b is not None
            ]
            b = sum(1 for a, o in pairs if a and not o)
            c = sum(1 for a, o in pairs if o and not a)
            n = b + c
            log_tail = [
                math.lgamma(n + 1) - math.lgamma(i + 1) - math.lgamma(n - i + 1) - n * math.log(2)
                for i in range(b + 1)
            ]
            result["mcnemar"][name] = (b, c, math.fsum(math.exp(x) for x in log_tail))
    return result


def timed(function: Any, repeat: int) -> tuple[float, Any]:
    best, value = math.inf, None
    for _ in range(repeat):
        start = time.perf_counter()
        value = function()
        best = min(best, time.perf_counter() - start)
    return best, value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--horizon", type=float, default=5.0, help="seconds (default 5)")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    window = synthetic_window(args.events, args.horizon)
    events = as_events(window)
    numpy_s, result = timed(lambda: compare(window, CANARY, WEIGHTS, args.horizon), args.repeat)
    plain_s, plain = timed(lambda: plain_compare(events, args.horizon), args.repeat)
    for name, accuracy in plain["accuracy"].items():
        assert math.isclose(result["models"][name]["accuracy"], accuracy), name
    for entry in result["comparisons"]:
        if entry["kind"] == "model":
            b, c, p_worse = plain["mcnemar"][entry["other"]]
            assert (entry["b"], entry["c"]) == (b, c), entry["other"]
            assert math.isclose(entry["p_canary_worse"], p_worse, rel_tol=1e-6, abs_tol=1e-300)
    assert result["counterfactual"]["changed"] == plain["changed"]
    print(f"python {platform.python_version()}, numpy {np.__version__}, {platform.machine()}")
    print(f"{args.events} events, 4 symbols, horizon {args.horizon:g} s, best of {args.repeat}")
    print(f"numpy compare():      {numpy_s * 1000:8.1f} ms (full result: calibration included)")
    print(f"plain per-event loop: {plain_s * 1000:8.1f} ms (outcomes, accuracy, McNemar, vote)")
    print(f"ratio: {plain_s / numpy_s:.1f}x; results agree")
    canary = result["models"][CANARY]
    worst = min(result["comparisons"], key=lambda c: c["effect_size"] or 0.0)
    print(
        f"canary accuracy {canary['accuracy']:.3f} on {canary['calls']} calls; against "
        f"{worst['other']}: b={worst['b']} c={worst['c']} "
        f"p(canary worse)={worst['p_canary_worse']:.3g}; "
        f"decisions changed: {result['counterfactual']['changed']}"
    )


if __name__ == "__main__":
    main()
