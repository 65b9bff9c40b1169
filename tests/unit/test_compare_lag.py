"""The later-price lag limit of the paired comparison (compare max_lag_s): the later price must
come within [t + horizon, t + horizon + max_lag], else the event has a late outcome (no
judgement), at 1 event per minute, at 100 events per second and across a telemetry stall."""

from __future__ import annotations

import math

import numpy as np
import pytest

from model_safety.judgement.compare import (
    DOWN,
    LATE_OUTCOME,
    NO_OUTCOME,
    UP,
    compare,
    outcomes,
)
from model_safety.judgement.compare_report import compare_section
from tests.unit.test_compare import WEIGHTS, event, window

SYMBOLS = ("BTCUSDT", "ETHUSDT", "SOLUSDT", "BNBUSDT")
RIGHT_CANARY = {"xgb": ("BUY", 0.7), "lgbm": ("SELL", 0.6), "patchtst": ("BUY", 0.8)}


def rising_at(seconds: list[float], symbols: tuple[str, ...] = ("BTCUSDT",)) -> list[dict]:
    """Events at the given times, round-robin over ``symbols``, each symbol's price rising."""
    return [
        event(t, 100.0 + i, RIGHT_CANARY, symbol=symbols[i % len(symbols)])
        for i, t in enumerate(seconds)
    ]


def test_one_event_a_minute_over_four_symbols_has_no_late_outcome() -> None:
    # Each symbol every 4 minutes: the later price is 480 s on, 180 s past a 300 s horizon.
    w = window(rising_at([60.0 * i for i in range(120)], SYMBOLS))
    code = outcomes(w, 300)
    assert (code == LATE_OUTCOME).sum() == 0
    # The last 8 minutes (8 events) have no later price of their symbol yet.
    assert (code == NO_OUTCOME).sum() == 8 and (code == UP).sum() == 112
    result = compare(w, "patchtst", WEIGHTS)  # default horizon 300 s, max lag = horizon
    assert (result["max_lag_s"], result["late_outcomes"], result["decided"]) == (300.0, 0, True)
    assert result["models"]["patchtst"]["calls"] == 112


def test_a_lag_beyond_the_limit_is_late_at_one_event_a_minute() -> None:
    # The same events with a 60 s lag limit: 480 s is 180 s past the horizon, too late.
    w = window(rising_at([60.0 * i for i in range(120)], SYMBOLS))
    result = compare(w, "patchtst", WEIGHTS, horizon_s=300, max_lag_s=60)
    assert (result["events_with_outcome"], result["late_outcomes"]) == (0, 112)
    assert not result["decided"]
    assert result["reason"] == "patchtst made no directional call with an outcome"
    assert result["models"]["patchtst"]["late_outcome"] == 112


def test_one_hundred_events_a_second() -> None:
    w = window(rising_at([0.01 * i for i in range(3000)]))
    code = outcomes(w, 5)
    # The later price is at exactly t + 5 s; the last 5 s (500 events) have none.
    assert ((code == UP).sum(), (code == NO_OUTCOME).sum(), (code == LATE_OUTCOME).sum()) == (
        2500,
        500,
        0,
    )
    result = compare(w, "patchtst", WEIGHTS, horizon_s=5, max_lag_s=0)
    assert (result["events_with_outcome"], result["late_outcomes"]) == (2500, 0)
    assert result["models"]["patchtst"]["accuracy"] == 1.0


def test_a_stall_makes_the_outcomes_across_it_late() -> None:
    # 20 events a minute apart, a 3-hour stall, 20 more; the price falls across the stall.
    before = [60.0 * i for i in range(20)]
    after = [19 * 60.0 + 3 * 3600.0 + 60.0 * i for i in range(20)]
    events = rising_at(before + after)
    for i in range(20, 40):
        events[i]["price"] = 50.0 + i  # after the stall: far lower, still rising
    w = window(events)
    code = outcomes(w, 300)
    # Before: 0..14 min judged within the minute; 15..19 min only see the price after the stall.
    np.testing.assert_array_equal(code[:15], UP)
    np.testing.assert_array_equal(code[15:20], LATE_OUTCOME)
    np.testing.assert_array_equal(code[20:35], UP)
    np.testing.assert_array_equal(code[35:], NO_OUTCOME)
    result = compare(w, "patchtst", WEIGHTS)
    assert (result["events_with_outcome"], result["late_outcomes"]) == (30, 5)
    assert result["models"]["patchtst"]["accuracy"] == 1.0  # the fall is never judged
    # Without the limit (a lag of 4 hours allowed) the stall's fall counts as 5 wrong calls.
    unlimited = compare(w, "patchtst", WEIGHTS, max_lag_s=4 * 3600.0)
    assert (unlimited["late_outcomes"], unlimited["moves"]["down"]) == (0, 5)
    assert outcomes(w, 300, 4 * 3600.0)[15] == DOWN
    assert unlimited["models"]["patchtst"]["right"] == 30
    assert unlimited["models"]["patchtst"]["calls"] == 35


def test_the_section_names_the_lag_and_the_late_outcomes() -> None:
    before = [60.0 * i for i in range(20)]
    after = [19 * 60.0 + 3 * 3600.0 + 60.0 * i for i in range(20)]
    text = "\n".join(
        compare_section(compare(window(rising_at(before + after)), "patchtst", WEIGHTS))
    )
    assert "later price at most 300 s past it" in text
    assert "5 with a late outcome (no judgement: a stall)" in text
    assert "| model | calls | right | accuracy | 95% interval | HOLD | flat move | no outcome | " \
        "late outcome |" in text  # fmt: skip
    assert "| patchtst | 30 | 30 | 100.0% |" in text


@pytest.mark.parametrize("max_lag", [-1.0, math.nan, math.inf, True, "60"])
def test_a_bad_max_lag_is_refused(max_lag) -> None:
    with pytest.raises(ValueError, match="max_lag must be a finite number of seconds >= 0"):
        compare(window(rising_at([0.0, 60.0])), "patchtst", WEIGHTS, max_lag_s=max_lag)
