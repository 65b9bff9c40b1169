"""Unit tests for model_safety.judgement.compare: outcomes over the horizon, accuracy, Wilson,
the exact McNemar test, calibration, the counterfactual vote and the Markdown section."""

from __future__ import annotations

import json
import math
import random
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from ai_engine.ensemble import vote
from ai_engine.models import Prediction
from model_safety.judgement.compare import (
    BUY,
    HOLD,
    NO_OUTCOME,
    SELL,
    binomial_cdf_half,
    compare,
    mcnemar,
    outcomes,
    vote_without,
    wilson,
)
from model_safety.judgement.compare_report import compare_section
from model_safety.judgement.shadow import future_prices as shadow_future_prices
from model_safety.telemetry.events import parse_window

T0 = datetime(2026, 1, 10, 12, tzinfo=UTC)
WEIGHTS = {"xgb": 0.25, "lgbm": 0.25, "nhits": 0.30, "patchtst": 0.20}


def event(
    seconds: float,
    price: float | None,
    breakdown: Mapping[str, Any],
    side: str = "BUY",
    symbol: str = "BTCUSDT",
) -> dict[str, Any]:
    """A valid event; breakdown values are (action, confidence), None (inactive) or a full entry."""
    entries = {}
    for name, value in breakdown.items():
        if value is None:
            entries[name] = {
                "inactive": True,
                "inactive_reason": "exception_in_predict",
                "model": name,
            }
        elif isinstance(value, dict):
            entries[name] = {**value, "model": name}
        else:
            entries[name] = {"action": value[0], "confidence": value[1], "model": name}
    voting = [e for e in entries.values() if not e.get("inactive") and not e.get("shadow")]
    stamp = (T0 + timedelta(seconds=seconds)).isoformat(timespec="milliseconds")
    payload: dict[str, Any] = {
        "symbol": symbol,
        "side": side,
        "confidence": 0.6,
        "consensus_count": sum(e["action"] == side for e in voting),
        "total_models": len(voting),
        "timestamp": stamp.replace("+00:00", "Z"),
        "model_breakdown": entries,
    }
    if price is not None:
        payload["price"] = price
    return payload


def window(events: Sequence[Mapping[str, Any]]):
    return parse_window(
        [
            (f"{1_700_000_000_000 + i}-0".encode(), json.dumps(e).encode())
            for i, e in enumerate(events)
        ]
    )


def rising(n: int, step_s: float, breakdown: Mapping[str, Any], side: str = "BUY") -> list[dict]:
    """n events every step_s seconds on a price that rises by 1 each event."""
    return [event(i * step_s, 100.0 + i, breakdown, side) for i in range(n)]


# Outcomes over the horizon


def future_prices(timestamp_ms, symbol, price, horizon_s: float) -> np.ndarray:
    """The later prices that outcomes() uses, for columns given as arrays."""
    columns = SimpleNamespace(
        n=len(price), timestamp_ms=timestamp_ms, symbol=symbol, price=np.asarray(price)
    )
    return shadow_future_prices(columns, round(horizon_s * 1000))


def test_future_price_is_the_first_event_at_or_after_the_horizon() -> None:
    ts = np.array([0, 100, 300, 301, 700], dtype=np.int64) * 1000
    price = np.array([10.0, 11.0, 12.0, 13.0, 14.0])
    future = future_prices(ts, np.zeros(5, dtype=np.int32), price, 300)
    np.testing.assert_array_equal(future, [12.0, 14.0, 14.0, 14.0, np.nan])


def test_future_price_comes_from_the_same_symbol() -> None:
    ts = np.array([0, 10, 20, 30, 40, 50], dtype=np.int64) * 1000
    symbol = np.array([0, 1, 0, 1, 0, 1], dtype=np.int32)
    price = np.array([1.0, 100.0, 2.0, 200.0, 3.0, 300.0])
    future = future_prices(ts, symbol, price, 15)
    np.testing.assert_array_equal(future, [2.0, 200.0, 3.0, 300.0, np.nan, np.nan])


def test_events_without_a_valid_price_are_neither_sources_nor_targets() -> None:
    ts = np.array([0, 10, 20, 30], dtype=np.int64) * 1000
    price = np.array([5.0, np.nan, 0.0, 7.0])
    future = future_prices(ts, np.zeros(4, dtype=np.int32), price, 5)
    np.testing.assert_array_equal(future, [7.0, np.nan, np.nan, np.nan])


def test_unsorted_timestamps_are_looked_up_in_time_order() -> None:
    ts = np.array([20, 0, 10], dtype=np.int64) * 1000
    price = np.array([3.0, 1.0, 2.0])
    future = future_prices(ts, np.zeros(3, dtype=np.int32), price, 10)
    np.testing.assert_array_equal(future, [np.nan, 2.0, 3.0])


@pytest.mark.parametrize("horizon", [0, -5, math.inf, math.nan])
def test_horizon_must_be_positive_and_finite(horizon: float) -> None:
    with pytest.raises(ValueError, match="horizon"):
        outcomes(window(rising(2, 60, {"xgb": ("BUY", 0.7)})), horizon)


def test_one_event_per_minute_with_a_300_s_horizon() -> None:
    w = window(rising(30, 60, {"xgb": ("BUY", 0.7)}))
    outcome = outcomes(w, 300)
    np.testing.assert_array_equal(outcome[:25], 1)
    np.testing.assert_array_equal(outcome[25:], NO_OUTCOME)
    np.testing.assert_array_equal(
        future_prices(w.timestamp_ms, w.symbol, w.price, 300)[:25], 100.0 + np.arange(5, 30)
    )


def test_one_hundred_events_per_second_with_a_5_s_horizon() -> None:
    n = 100 * 60
    ts = T0.timestamp() * 1000 + np.arange(n, dtype=np.int64) * 10
    symbol = (np.arange(n) % 3).astype(np.int32)
    price = 1000.0 + np.arange(n, dtype=np.float64)
    future = future_prices(ts.astype(np.int64), symbol, price, 5)
    # Each symbol has an event every 30 ms: the first one at or after +5000 ms is 167 of its
    # own events later (5010 ms), i.e. 501 events of the window later.
    has = ~np.isnan(future)
    assert has.sum() == n - 3 * 167
    np.testing.assert_array_equal(future[has], price[: n - 501] + 501)


# Accuracy, Wilson, binomial tail, McNemar


def test_accuracy_counts_only_directional_calls_with_a_move() -> None:
    # Prices: up, down, down, up, up, flat, then the end of the window.
    prices = [100, 101, 100, 99, 100, 101, 101, 101]
    actions = ["BUY", "BUY", "SELL", "SELL", "HOLD", "BUY", "BUY", "BUY"]
    events = [
        event(i * 60, p, {"m": (a, 0.7)})
        for i, (p, a) in enumerate(zip(prices, actions, strict=True))
    ]
    result = compare(window(events), "m", {"m": 1.0}, horizon_s=60)
    stats = result["models"]["m"]
    # BUY up right, BUY down wrong, SELL down right, SELL up wrong, HOLD, BUY on flat, BUY on
    # flat, BUY without an outcome.
    assert (stats["calls"], stats["right"], stats["accuracy"]) == (4, 2, 0.5)
    assert (stats["hold"], stats["flat"], stats["no_outcome"]) == (1, 2, 1)
    assert result["moves"] == {"up": 3, "down": 2, "flat": 2}


def test_wilson_interval_matches_the_textbook_values() -> None:
    low, high = wilson(8, 10)
    assert low == pytest.approx(0.4902, abs=1e-4)
    assert high == pytest.approx(0.9433, abs=1e-4)
    assert wilson(0, 10)[0] == pytest.approx(0.0)
    assert wilson(10, 10)[1] == pytest.approx(1.0)
    assert wilson(0, 0) is None


@pytest.mark.parametrize(("k", "n"), [(0, 5), (1, 10), (3, 7), (499, 1000)])
def test_binomial_tail_is_exact_for_small_counts(k: int, n: int) -> None:
    exact = sum(math.comb(n, i) for i in range(k + 1)) / 2**n
    assert binomial_cdf_half(k, n) == exact


@pytest.mark.parametrize(("k", "n"), [(700, 1500), (1001, 2002), (2400, 5000), (0, 3000)])
def test_binomial_tail_in_log_space_agrees_with_exact_integers(k: int, n: int) -> None:
    exact = sum(math.comb(n, i) for i in range(k + 1)) / 2**n
    assert binomial_cdf_half(k, n) == pytest.approx(exact, rel=1e-9, abs=1e-300)


def test_binomial_tail_bounds() -> None:
    assert binomial_cdf_half(-1, 10) == 0.0
    assert binomial_cdf_half(10, 10) == 1.0


def test_mcnemar_by_hand() -> None:
    result = mcnemar(0, 5)
    assert result["p_canary_worse"] == 1 / 32
    assert result["p_two_sided"] == 2 / 32
    assert result["effect_size"] == -1.0
    result = mcnemar(1, 9)
    assert result["p_canary_worse"] == 11 / 1024
    assert result["p_two_sided"] == 22 / 1024
    assert result["effect_size"] == -0.8
    assert mcnemar(9, 1)["p_canary_worse"] == pytest.approx(1 - 1 / 1024)


def test_mcnemar_without_discordant_pairs_is_p_one_and_no_effect() -> None:
    assert mcnemar(0, 0) == {
        "b": 0,
        "c": 0,
        "discordant": 0,
        "p_two_sided": 1.0,
        "p_canary_worse": 1.0,
        "effect_size": None,
    }
    assert mcnemar(7, 7)["p_two_sided"] == 1.0


# The whole comparison


def test_canary_always_wrong_is_significantly_worse() -> None:
    events = rising(40, 60, {"xgb": ("BUY", 0.7), "patchtst": ("SELL", 0.6)})
    result = compare(window(events), "patchtst", WEIGHTS, horizon_s=60)
    assert result["decided"]
    against = {c["other"]: c for c in result["comparisons"]}
    xgb = against["xgb"]
    assert (xgb["paired_calls"], xgb["b"], xgb["c"]) == (39, 0, 39)
    assert xgb["p_canary_worse"] == 2.0**-39
    assert xgb["canary_worse"]
    assert xgb["effect_size"] == -1.0
    assert xgb["accuracy_difference"] == -1.0
    assert against["ensemble"]["canary_worse"]
    assert against["ensemble without patchtst"]["canary_worse"]
    assert result["canary_worse_than"] == ["xgb", "ensemble", "ensemble without patchtst"]
    assert result["models"]["patchtst"]["accuracy"] == 0.0


def test_a_few_wrong_calls_are_not_significant() -> None:
    # The canary is wrong on 2 of 40 events where xgb is right: p = 0.25 one-sided.
    events = [
        event(
            i * 60, 100.0 + i, {"xgb": ("BUY", 0.7), "patchtst": ("SELL" if i < 2 else "BUY", 0.6)}
        )
        for i in range(40)
    ]
    result = compare(window(events), "patchtst", WEIGHTS, horizon_s=60)
    xgb = result["comparisons"][0]
    assert (xgb["b"], xgb["c"]) == (0, 2)
    assert xgb["p_canary_worse"] == 0.25
    assert not xgb["canary_worse"]
    assert result["canary_worse_than"] == []


def test_equal_models_give_p_one() -> None:
    breakdown = {"xgb": ("BUY", 0.7), "patchtst": ("BUY", 0.7)}
    events = [event(i * 60, 100.0 + (-1) ** i * (i % 5), breakdown) for i in range(60)]
    result = compare(window(events), "patchtst", WEIGHTS, horizon_s=60)
    xgb = result["comparisons"][0]
    assert xgb["paired_calls"] > 0 and xgb["discordant"] == 0
    assert xgb["p_two_sided"] == 1.0 and xgb["p_canary_worse"] == 1.0
    assert not xgb["canary_worse"]


def test_alpha_decides_significance() -> None:
    events = rising(6, 60, {"xgb": ("BUY", 0.7), "patchtst": ("SELL", 0.6)})
    # 5 discordant pairs: p = 1/32 = 0.03125.
    assert compare(window(events), "patchtst", WEIGHTS, 60, alpha=0.05)["comparisons"][0][
        "canary_worse"
    ]
    assert not compare(window(events), "patchtst", WEIGHTS, 60, alpha=0.03)["comparisons"][0][
        "canary_worse"
    ]
    with pytest.raises(ValueError, match="alpha"):
        compare(window(events), "patchtst", WEIGHTS, 60, alpha=1.0)


def test_no_outcome_is_not_decided_and_never_an_error() -> None:
    events = rising(10, 60, {"xgb": ("BUY", 0.7), "patchtst": ("SELL", 0.6)})
    result = compare(window(events), "patchtst", WEIGHTS, horizon_s=3600)
    assert result["events_with_outcome"] == 0
    assert not result["decided"]
    assert result["reason"] == "patchtst made no directional call with an outcome"
    assert result["canary_worse_than"] == []
    assert all(not c["decided"] and c["p_canary_worse"] == 1.0 for c in result["comparisons"])
    section = "\n".join(compare_section(result))
    assert "**Not decided**: patchtst made no directional call with an outcome." in section


def test_window_without_prices_is_not_decided() -> None:
    events = [
        event(i * 60, None, {"xgb": ("BUY", 0.7), "patchtst": ("SELL", 0.6)}) for i in range(10)
    ]
    result = compare(window(events), "patchtst", WEIGHTS, horizon_s=60)
    assert (result["events"], result["events_with_price"], result["decided"]) == (10, 0, False)


def test_absent_model_is_not_decided() -> None:
    result = compare(window(rising(10, 60, {"xgb": ("BUY", 0.7)})), "patchtst", WEIGHTS, 60)
    assert not result["decided"]
    assert result["reason"] == "model patchtst is in no event"
    assert "**Not decided**" in "\n".join(compare_section(result))


def test_empty_window_is_not_decided() -> None:
    result = compare(window([]), "patchtst", WEIGHTS, 60)
    assert (result["events"], result["decided"]) == (0, False)


def test_malformed_and_absent_prices_are_skipped() -> None:
    breakdown = {"xgb": ("BUY", 0.7), "patchtst": ("SELL", 0.6)}
    events = rising(6, 60, breakdown)
    events[1]["price"] = -3.0  # malformed: the whole entry is not a valid event
    del events[2]["price"]  # absent: the event is valid but has no outcome and is no target
    w = window(events)
    assert (w.n, len(w.malformed)) == (5, 1)
    result = compare(w, "patchtst", WEIGHTS, horizon_s=60, max_lag_s=120)
    # Events at 0, 180, 240, 300 s with prices; 0 -> 180 s, 180 -> 240, 240 -> 300.
    assert (result["events_with_price"], result["events_with_outcome"]) == (4, 3)
    assert result["models"]["patchtst"]["no_outcome"] == 2
    # With the default lag (the horizon, 60 s) 0 -> 180 s is 120 s late: no outcome either.
    result = compare(w, "patchtst", WEIGHTS, horizon_s=60)
    assert (result["events_with_outcome"], result["late_outcomes"]) == (2, 1)
    assert result["models"]["patchtst"]["late_outcome"] == 1


def test_inactive_and_absent_canary_events_are_not_calls() -> None:
    events = rising(6, 60, {"xgb": ("BUY", 0.7), "patchtst": None})
    events[0] = event(0, 100.0, {"xgb": ("BUY", 0.7), "patchtst": ("BUY", 0.9)})
    events[1] = event(60, 101.0, {"xgb": ("BUY", 0.7)})
    w = window(events)
    assert (w.n, w.malformed) == (6, [])
    result = compare(w, "patchtst", WEIGHTS, horizon_s=60)
    stats = result["models"]["patchtst"]
    assert (stats["active"], stats["calls"], stats["right"]) == (1, 1, 1)
    assert result["comparisons"][0]["paired_calls"] == 1


def test_shadow_models_are_compared_but_never_baselines() -> None:
    breakdown = {
        "xgb": ("BUY", 0.7),
        "patchtst": {"action": "SELL", "confidence": 0.6, "shadow": True},
        "other": {"action": "BUY", "confidence": 0.6, "shadow": True},
    }
    result = compare(window(rising(10, 60, breakdown)), "patchtst", WEIGHTS, horizon_s=60)
    assert [c["other"] for c in result["comparisons"]] == [
        "xgb",
        "ensemble",
        "ensemble without patchtst",
    ]
    assert result["comparisons"][0]["canary_worse"]


def test_calibration_buckets() -> None:
    confidences = [0.3, 0.55, 0.59, 0.6, 0.95, 1.0, 1.0]
    events = [
        event(i * 60, 100.0 + i, {"m": ("BUY" if i != 3 else "SELL", c)})
        for i, c in enumerate(confidences)
    ]
    events.append(event(7 * 60, 107.0, {"m": ("BUY", 0.5)}))
    table = compare(window(events), "m", {"m": 1.0}, horizon_s=60)["models"]["m"]["calibration"]
    by_bucket = {tuple(b["bucket"]): (b["calls"], b["right"]) for b in table}
    assert by_bucket == {
        (0.0, 0.5): (1, 1),
        (0.5, 0.6): (2, 2),
        (0.6, 0.7): (1, 0),
        (0.7, 0.8): (0, 0),
        (0.8, 0.9): (0, 0),
        (0.9, 1.0): (3, 3),
    }
    assert table[1]["mean_confidence"] == pytest.approx(0.57)
    assert table[3]["accuracy"] is None


# The counterfactual vote without the canary


def test_vote_without_the_canary_follows_the_engine_rule() -> None:
    events = [
        # With patchtst SELL wins (0.51 vs 0.18); without it xgb's BUY 0.18 beats lgbm's 0.15.
        event(
            0, 100, {"xgb": ("BUY", 0.6), "lgbm": ("SELL", 0.5), "patchtst": ("SELL", 0.9)}, "SELL"
        ),
        # Without patchtst: BUY 0.3 * 0.5 ties SELL 0.3 * 0.5 -> HOLD.
        event(60, 100, {"xgb": ("BUY", 0.5), "lgbm": ("SELL", 0.5), "patchtst": ("BUY", 0.9)}),
        # No other active voter -> HOLD; the shadow model never votes.
        event(
            120,
            100,
            {
                "xgb": None,
                "patchtst": ("BUY", 0.9),
                "nhits": {"action": "SELL", "confidence": 0.9, "shadow": True},
            },
        ),
        # HOLD can win.
        event(180, 100, {"xgb": ("HOLD", 0.9), "lgbm": ("BUY", 0.5), "patchtst": ("BUY", 0.9)}),
    ]
    weights = {"xgb": 0.3, "lgbm": 0.3, "nhits": 0.2, "patchtst": 0.4}
    np.testing.assert_array_equal(
        vote_without(window(events), "patchtst", weights), [BUY, HOLD, HOLD, HOLD]
    )
    assert SELL == 1


def test_vote_without_the_canary_agrees_with_the_lab_engine_vote() -> None:
    rng = random.Random(16)
    names = ["xgb", "lgbm", "nhits", "patchtst"]
    events, expected = [], []
    for i in range(400):
        predictions = {}
        for name in rng.sample(names, rng.randint(1, 4)):
            if rng.random() < 0.15:
                predictions[name] = Prediction(inactive_reason="exception_in_predict")
            else:
                # Coarse confidences make exact ties frequent.
                predictions[name] = Prediction(
                    rng.choice(["BUY", "SELL", "HOLD"]), rng.choice([0.2, 0.4, 0.5, 0.8])
                )
        breakdown = {
            n: (p.action, p.confidence) if p.active else None for n, p in predictions.items()
        }
        events.append(event(i, 100.0, breakdown, side="HOLD"))
        expected.append(vote(predictions, WEIGHTS, [n for n in names if n != "patchtst"]).side)
    got = vote_without(window(events), "patchtst", WEIGHTS)
    assert [["BUY", "SELL", "HOLD"][code] for code in got] == expected
    assert len(set(expected)) == 3


def test_vote_needs_a_weight_for_every_voting_model() -> None:
    events = [
        event(0, 100, {"xgb": ("BUY", 0.6), "mystery": ("SELL", 0.5), "patchtst": ("SELL", 0.9)})
    ]
    with pytest.raises(ValueError, match="no baseline weight for voting model 'mystery'"):
        vote_without(window(events), "patchtst", WEIGHTS)


def test_changed_decisions_with_and_without_the_canary() -> None:
    # The price rises; patchtst turns 3 of the 10 decisions into a wrong SELL.
    events = [
        event(
            i * 60,
            100.0 + i,
            {
                "xgb": ("BUY", 0.6),
                "lgbm": ("SELL", 0.5),
                "patchtst": ("SELL", 0.9 if i < 3 else 0.1),
            },
            "SELL" if i < 3 else "BUY",
        )
        for i in range(10)
    ]
    weights = {"xgb": 0.3, "lgbm": 0.3, "patchtst": 0.4}
    result = compare(window(events), "patchtst", weights, horizon_s=60)
    changes = result["counterfactual"]
    assert (changes["changed"], changes["changed_with_outcome"]) == (3, 3)
    assert changes["changed_share"] == 0.3
    assert changes["with_canary"] == {"calls": 3, "right": 0, "accuracy": 0.0}
    assert changes["without_canary"] == {"calls": 3, "right": 3, "accuracy": 1.0}
    assert result["ensemble"]["right"] == 6
    assert result["ensemble_without_canary"]["right"] == 9


def test_result_is_json_and_renders_every_section() -> None:
    breakdown = {
        "xgb": ("BUY", 0.7),
        "lgbm": ("SELL", 0.55),
        "nhits": ("BUY", 0.6),
        "patchtst": ("SELL", 0.8),
    }
    result = compare(window(rising(20, 60, breakdown)), "patchtst", WEIGHTS, horizon_s=60)
    assert json.loads(json.dumps(result, allow_nan=False)) == result
    section = "\n".join(compare_section(result))
    for heading in (
        "## Paired comparison: `patchtst` against the baseline",
        "### Directional accuracy",
        "### Paired tests (McNemar, canary worse when one-sided p < 0.05)",
        "### Decisions `patchtst` changed",
        "### Calibration (accuracy by confidence)",
    ):
        assert heading in section
    assert "| nhits | 19 | 0 | 19 | 3.81e-06 | 1.91e-06 | -1.000 | -100.0% | yes |" in section
