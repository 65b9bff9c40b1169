"""Unit tests for model_safety.judgement.shadow: the four gates, calibration, READY and hard
blockers."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pytest

from model_safety.judgement.shadow import calibration, future_prices, readiness, shadow_report
from model_safety.judgement.thresholds import Thresholds
from model_safety.telemetry.events import parse_window

T0 = datetime(2026, 1, 10, 12, 0, 0, tzinfo=UTC)
OPPOSITE = {"BUY": "SELL", "SELL": "BUY", "HOLD": "HOLD"}


def stamp(seconds: float) -> str:
    moment = T0 + timedelta(seconds=seconds)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def payload(
    side: str,
    mine: str | None,
    confidence: float,
    *,
    seconds: float = 0.0,
    price: float | None = 100.0,
    symbol: str = "BTCUSDT",
    shadow: bool = True,
    **extra: Any,
) -> dict[str, Any]:
    """Voter v decides ``side``; model s (shadow unless told) says ``mine`` (None: inactive)."""
    if mine is None:
        s: dict[str, Any] = {"inactive": True, "inactive_reason": "exception_in_predict"}
    else:
        s = {"action": mine, "confidence": confidence}
    s["model"] = "s_shadow" if shadow else "s"
    if shadow:
        s["shadow"] = True
    voting_s = not shadow and mine is not None
    event: dict[str, Any] = {
        "symbol": symbol,
        "side": side,
        "confidence": 0.6,
        "consensus_count": 1 + (voting_s and mine == side),
        "total_models": 1 + voting_s,
        "timestamp": stamp(seconds),
        "model_breakdown": {"v": {"action": side, "confidence": 0.6, "model": "v"}, "s": s},
        **extra,
    }
    if price is not None:
        event["price"] = price
    return event


def window_of(events: list[dict[str, Any]]):
    return parse_window(
        [(f"{1_700_000_000_000 + i}-0", json.dumps(e)) for i, e in enumerate(events)]
    )


def conf_of(i: int) -> float:
    return round(0.3 + 0.6 * ((i * 37) % 100) / 99, 4)


def healthy(n: int = 300, agree_every: int = 3, **kwargs: Any) -> list[dict[str, Any]]:
    """s agrees with the side in 2 of 3 events (66.7 %), else a soft disagreement."""
    events = []
    for i in range(n):
        side = ("BUY", "SELL", "HOLD")[i % 3]
        mine = side if i % agree_every else ("HOLD" if side != "HOLD" else "BUY")
        events.append(payload(side, mine, conf_of(i), seconds=i, **kwargs))
    return events


# -- calibration on constructed price paths -------------------------------------------------

LEVELS = (0.55, 0.70, 0.90)


def calibrated(accuracy: tuple[float, float, float], n: int = 400, step: float = 1.0):
    """Prices rise every event; s's confidence level cycles and it says BUY (right) with the
    given accuracy per level, SELL (wrong) otherwise."""
    events = []
    for i in range(n):
        level = i % 3
        j = i // 3
        right = (j % 20) < round(20 * accuracy[level])
        mine = "BUY" if right else "SELL"
        events.append(payload("BUY", mine, LEVELS[level], seconds=i * step, price=100.0 + 0.01 * i))
    return window_of(events)


def test_calibration_pass_when_accuracy_rises_with_confidence() -> None:
    gate = calibration(calibrated((0.5, 0.6, 0.8)), "s")
    assert gate["status"] == "PASS"
    assert gate["judged"] == 340  # events with a price >= 60 s later: t = 0 .. 339
    low, mid, high = gate["value"]
    assert low < mid < high
    assert [b["n"] for b in gate["buckets"]] == [114, 113, 113]
    assert low == pytest.approx(0.5, abs=0.05)
    assert high == pytest.approx(0.8, abs=0.05)


def test_calibration_fail_when_accuracy_falls() -> None:
    gate = calibration(calibrated((0.8, 0.6, 0.5)), "s")
    assert gate["status"] == "FAIL"


def test_calibration_fail_when_flat() -> None:
    gate = calibration(calibrated((0.6, 0.6, 0.6), n=399), "s")  # 113 judged per level
    assert gate["value"][0] == gate["value"][1] == gate["value"][2]
    assert gate["status"] == "FAIL"


def test_calibration_fail_when_not_monotonic() -> None:
    assert calibration(calibrated((0.5, 0.9, 0.7)), "s")["status"] == "FAIL"


def test_calibration_fail_with_an_empty_bucket() -> None:
    events = [
        payload("BUY", "BUY" if i % 2 else "SELL", 0.7, seconds=i, price=100.0 + i)
        for i in range(300)
    ]
    gate = calibration(window_of(events), "s")
    assert gate["status"] == "FAIL"
    assert None in gate["value"]


@pytest.mark.parametrize(("events", "status"), [(159, "DEFER"), (160, "PASS")])
def test_calibration_defers_below_100_judged_events(events: int, status: str) -> None:
    gate = calibration(calibrated((0.3, 0.6, 0.9), n=events), "s")
    assert gate["judged"] == events - 60
    assert gate["status"] == status
    if status == "DEFER":
        assert gate["value"] == "99 judged events < 100"


def test_calibration_judges_sell_against_a_falling_price_and_skips_hold_and_flat() -> None:
    events = []
    for i in range(200):
        level = i % 3
        right = (i // 3) % 10 < (3, 6, 9)[level]
        events.append(
            payload(
                "SELL",
                "SELL" if right else "BUY",
                LEVELS[level],
                seconds=i,
                price=1000.0 - i,
            )
        )
    events += [payload("HOLD", "HOLD", 0.99, seconds=200 + i, price=801.0) for i in range(100)]
    gate = calibration(window_of(events), "s")
    assert gate["status"] == "PASS"
    # HOLD is never judged; t=199 (price 801) sees 801 at t=259: no move, not judged
    assert gate["judged"] == 199
    assert gate["buckets"][0]["accuracy"] < gate["buckets"][2]["accuracy"]


def test_future_prices_by_symbol_and_horizon() -> None:
    events = [
        payload("BUY", "BUY", 0.5, seconds=0, price=10.0, symbol="A"),
        payload("BUY", "BUY", 0.5, seconds=0, price=500.0, symbol="B"),
        payload("BUY", "BUY", 0.5, seconds=30, price=11.0, symbol="A"),
        payload("BUY", "BUY", 0.5, seconds=59.999, price=12.0, symbol="A"),
        payload("BUY", "BUY", 0.5, seconds=61, price=400.0, symbol="B"),
        payload("BUY", "BUY", 0.5, seconds=60, price=13.0, symbol="A"),
        payload("BUY", "BUY", 0.5, seconds=70, price=None, symbol="A"),
        payload("BUY", "BUY", 0.5, seconds=95, price=14.0, symbol="A"),
    ]
    future = future_prices(window_of(events), 60_000)
    expected = [13.0, 400.0, 14.0, math.nan, math.nan, math.nan, math.nan, math.nan]
    assert np.array_equal(future, np.array(expected), equal_nan=True)


def test_future_prices_with_absurd_time_spans() -> None:
    events = [
        payload("BUY", "BUY", 0.5, price=10.0, symbol=f"S{i % 3}", timestamp=t)
        for i, t in enumerate(
            ["0001-01-01T00:00:00Z", "0001-01-01T00:00:00Z", "0001-01-01T00:00:00Z"]
            + ["9999-01-01T00:00:00Z"] * 3
        )
    ]
    future = future_prices(window_of(events), 60_000)
    assert future.tolist()[:3] == [10.0, 10.0, 10.0]
    assert np.isnan(future[3:]).all()


# -- the gates and READY -----------------------------------------------------------------------


def test_healthy_shadow_model_is_ready_with_calibration_deferred() -> None:
    report = shadow_report(window_of(healthy()), "s")
    gates = report["gates"]
    assert gates["action_diversity"]["status"] == "PASS"
    assert gates["confidence_spread"]["status"] == "PASS"
    assert gates["agreement"]["status"] == "PASS"
    assert gates["agreement"]["value"] == pytest.approx(2 / 3)
    assert gates["calibration"]["status"] == "DEFER"  # the price never moves
    assert (report["status"], report["exit_code"], report["hard_blockers"]) == ("READY", 0, [])
    assert report["required"] == "2 of 3 (calibration deferred)"
    assert json.dumps(report, allow_nan=False)


@pytest.mark.parametrize(
    ("agree_share", "status"),
    [(0.55, "PASS"), (0.5475, "FAIL")],
)
def test_agreement_gate_edge(agree_share: float, status: str) -> None:
    n = 400
    agree = round(agree_share * n)
    events = []
    for i in range(n):
        side = ("BUY", "SELL", "HOLD")[i % 3]
        mine = side if i < agree else ("HOLD" if side != "HOLD" else "BUY")
        events.append(payload(side, mine, conf_of(i), seconds=i))
    gate = shadow_report(window_of(events), "s")["gates"]["agreement"]
    assert gate == {"status": status, "value": agree / n, "threshold": 0.55}


def test_action_diversity_and_spread_gates() -> None:
    events = [payload("BUY", "BUY", 0.5, seconds=i) for i in range(300)]
    report = shadow_report(window_of(events), "s")
    assert report["gates"]["action_diversity"]["status"] == "FAIL"
    assert report["gates"]["action_diversity"]["value"] == 1.0
    assert report["gates"]["confidence_spread"]["status"] == "FAIL"
    assert report["gates"]["agreement"]["status"] == "PASS"
    assert report["status"] == "NOT_READY"
    assert "action_diversity FAIL: top action 100.0% > 70.0%" in report["blockers"]
    assert "confidence_spread FAIL: conf_std 0.000 < 0.050" in report["blockers"]


def gates_of(*statuses: str) -> dict[str, dict[str, Any]]:
    names = ("action_diversity", "confidence_spread", "agreement", "calibration")
    return {name: {"status": s} for name, s in zip(names, statuses, strict=True)}


@pytest.mark.parametrize(
    ("statuses", "expected"),
    [
        (("PASS", "PASS", "PASS", "PASS"), "READY"),
        (("PASS", "PASS", "FAIL", "PASS"), "READY"),
        (("FAIL", "PASS", "PASS", "PASS"), "READY"),
        (("PASS", "PASS", "PASS", "FAIL"), "READY"),
        (("PASS", "FAIL", "FAIL", "PASS"), "NOT_READY"),
        (("PASS", "PASS", "PASS", "DEFER"), "READY"),
        (("PASS", "FAIL", "PASS", "DEFER"), "READY"),
        (("FAIL", "FAIL", "PASS", "DEFER"), "NOT_READY"),
        (("FAIL", "FAIL", "FAIL", "PASS"), "NOT_READY"),
    ],
)
def test_readiness_rules(statuses: tuple[str, ...], expected: str) -> None:
    assert readiness(gates_of(*statuses), [])[0] == expected
    assert readiness(gates_of(*statuses), ["anything"])[0] == "BLOCKED"


def test_readiness_counts_a_missing_gate_as_failed() -> None:
    assert readiness({"agreement": {"status": "PASS"}}, []) == ("NOT_READY", 1, "3 of 4")


def test_ready_with_all_four_gates_on_a_calibrated_model() -> None:
    events = []
    for i in range(400):
        level = i % 3
        right = (i // 3) % 20 < (10, 12, 16)[level]
        side = ("BUY", "SELL", "HOLD")[i % 3] if i % 4 else "BUY"
        mine = "BUY" if right else "SELL"
        events.append(
            payload(side, mine, LEVELS[level] + 0.001 * (i % 7), seconds=i, price=100 + 0.1 * i)
        )
    report = shadow_report(window_of(events), "s")
    assert report["gates"]["calibration"]["status"] == "PASS"


# -- hard blockers -------------------------------------------------------------------------------


def test_shadow_model_counted_as_voter_blocks() -> None:
    events = healthy()
    events[10]["total_models"] = 2  # s counted in
    events[11]["consensus_count"] = 2
    events[11]["model_breakdown"]["s"]["action"] = events[11]["side"]
    report = shadow_report(window_of(events), "s")
    assert report["status"] == "BLOCKED"
    assert report["exit_code"] == 2
    assert report["hard_blockers"][0].startswith(
        "shadow model counted as voter in 2 events (first 1700000000010-0: "
        "shadow model counted as voter (s): total_models 2"
    )
    assert len(report["hard_blockers"]) == 1


def test_a_model_that_votes_is_blocked() -> None:
    report = shadow_report(window_of(healthy(shadow=False)), "s")
    assert report["status"] == "BLOCKED"
    assert report["hard_blockers"] == [
        "counted as voter: not tagged shadow in 300 of 300 events that report it"
    ]


def padded(events: list[dict[str, Any]], size: int) -> list[dict[str, Any]]:
    """Pad every payload to exactly ``size`` bytes (json.dumps default separators)."""
    out = []
    for event in events:
        event = dict(event, pad="")
        short = size - len(json.dumps(event).encode())
        assert short >= 0
        event["pad"] = "x" * short
        assert len(json.dumps(event).encode()) == size
        out.append(event)
    return out


@pytest.mark.parametrize(("size", "blocked"), [(1499, False), (1500, True)])
def test_payload_p95_edge(size: int, blocked: bool) -> None:
    report = shadow_report(window_of(padded(healthy(), size)), "s")
    assert report["payload_p95"] == size
    assert (report["status"] == "BLOCKED") is blocked
    if blocked:
        assert report["hard_blockers"] == ["payload p95 1500 bytes >= 1500"]


@pytest.mark.parametrize(("hard", "blocked"), [(120, False), (124, True)])
def test_hard_disagreement_edge(hard: int, blocked: bool) -> None:
    # 120 / 400 = 30.0 % is not > 30 %; 124 / 400 = 31 % is
    events = []
    for i in range(400):
        side = ("BUY", "SELL")[i % 2] if i < hard else ("BUY", "SELL", "HOLD")[i % 3]
        mine = OPPOSITE[side] if i < hard else side
        events.append(payload(side, mine, conf_of(i), seconds=i))
    report = shadow_report(window_of(events), "s")
    assert report["metrics"]["hard_disagree"] == hard / 400
    assert (report["status"] == "BLOCKED") is blocked
    if blocked:
        assert report["hard_blockers"] == ["hard disagreement 31.0% > 30.0%"]


def test_other_malformed_events_and_missing_models_block() -> None:
    entries = [(f"{i + 1}-0", json.dumps(e)) for i, e in enumerate(healthy())]
    entries.append(("999-0", "{"))
    report = shadow_report(parse_window(entries), "s")
    assert report["hard_blockers"] == ["window: 1 malformed events (first 999-0: unparsable JSON)"]
    absent = shadow_report(window_of(healthy()), "patchtst")
    assert absent["status"] == "BLOCKED"
    assert absent["hard_blockers"] == ["patchtst is not in the window (no event reports it)"]
    assert all(g["status"] in ("FAIL", "DEFER") for g in absent["gates"].values())
    empty = shadow_report(parse_window([]), "s")
    assert empty["hard_blockers"] == ["window: empty (no events)"]
    inactive = shadow_report(window_of([payload("BUY", None, 0.5) for _ in range(50)]), "s")
    assert inactive["hard_blockers"] == ["s has no active events in the window"]


def test_thresholds_are_parameters() -> None:
    t = Thresholds(shadow_min_agreement=0.7, max_payload_p95=100)
    report = shadow_report(window_of(healthy()), "s", thresholds=t)
    assert report["gates"]["agreement"]["status"] == "FAIL"
    assert report["hard_blockers"][0].startswith("payload p95 ")


def test_future_prices_fallback_search_matches_the_vectorised_one(monkeypatch) -> None:
    events = [
        payload("BUY", "BUY", 0.5, seconds=(i * 7) % 50 * 10, price=10.0 + i, symbol=f"S{i % 4}")
        for i in range(200)
    ]
    window = window_of(events)
    vectorised = future_prices(window, 60_000)
    assert np.isfinite(vectorised).sum() > 50
    monkeypatch.setattr("model_safety.judgement.shadow._INT64_SAFE", 0)
    assert np.array_equal(future_prices(window, 60_000), vectorised, equal_nan=True)
