"""Unit tests for model_safety.judgement.gate: every rule at and around its threshold, verdicts,
exits."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import pytest

from model_safety.judgement.gate import evaluate, exit_code, failure, model_blockers
from model_safety.judgement.thresholds import MODES, Thresholds
from model_safety.telemetry.events import parse_window
from model_safety.telemetry.metrics import ensemble_metrics, model_metrics
from tests.unit.gate_metrics import HEALTHY

# Confidences with a healthy spread (std ~0.17, p90 - p10 ~0.47) in a fixed order.
SPREAD = [round(0.3 + 0.6 * ((i * 37) % 100) / 99, 4) for i in range(1000)]
DIVERSE = ["BUY", "SELL", "HOLD"]


def entry(action: str | None, confidence: float | None, name: str, shadow: bool = False):
    if action is None:
        item: dict[str, Any] = {"inactive": True, "inactive_reason": "exception_in_predict"}
    else:
        item = {"action": action, "confidence": confidence}
    item["model"] = f"{name}_shadow" if shadow else name
    if shadow:
        item["shadow"] = True
    return item


def event(side: str, breakdown: dict[str, dict[str, Any]], **top: Any) -> dict[str, Any]:
    """A valid event: consensus_count and total_models follow from the breakdown."""
    voting = [e for e in breakdown.values() if not e.get("inactive") and not e.get("shadow")]
    payload = {
        "symbol": "BTCUSDT",
        "side": side,
        "confidence": 0.6,
        "price": 100.0,
        "consensus_count": sum(e["action"] == side for e in voting),
        "total_models": len(voting),
        "timestamp": "2026-01-10T12:00:00.000Z",
        "model_breakdown": breakdown,
        "features": {"f": 1.0},
    }
    payload.update(top)
    return payload


def to_entries(events: Sequence[dict[str, Any]]) -> list[tuple[bytes, bytes]]:
    return [
        (f"{1_700_000_000_000 + i}-0".encode(), json.dumps(e).encode())
        for i, e in enumerate(events)
    ]


def candidate_window(
    actions: Sequence[str | None],
    confidences: Sequence[float | None] | None = None,
    name: str = "cand",
    extra: Sequence[str | None] | None = None,
):
    """Events where ``name`` is the only voter (side = its action; None = inactive)."""
    confidences = confidences if confidences is not None else SPREAD[: len(actions)]
    events = []
    for action, confidence in zip(actions, confidences, strict=True):
        breakdown = {name: entry(action, confidence, name)}
        events.append(event(action or "HOLD", breakdown))
    for action in extra or ():
        events.append(event(action or "HOLD", {name: entry(action, 0.5, name)}))
    return parse_window(to_entries(events))


def diverse(n: int) -> list[str]:
    return [DIVERSE[i % 3] for i in range(n)]


def blockers_of(window, **kwargs: Any) -> list[str]:
    return evaluate(window, **kwargs)["blockers"]


def test_a_healthy_candidate_passes() -> None:
    result = evaluate(candidate_window(diverse(200)))
    assert (result["verdict"], result["blockers"], exit_code(result)) == ("PASS", [], 0)
    model = result["models"]["cand"]
    assert model["passed"] and model["judged"] and not model["shadow"]
    assert model["n"] == 200
    assert result["exit_code"] == 0


# -- action share (> 70 %) -------------------------------------------------------------------


def shares(buy: int, sell: int, hold: int) -> list[str]:
    return ["BUY"] * buy + ["SELL"] * sell + ["HOLD"] * hold


def test_action_share_69_percent_passes() -> None:
    assert blockers_of(candidate_window(shares(138, 31, 31))) == []


def test_action_share_exactly_70_percent_passes() -> None:
    assert blockers_of(candidate_window(shares(31, 140, 29))) == []


def test_action_share_71_percent_fails() -> None:
    assert blockers_of(candidate_window(shares(142, 29, 29))) == [
        "cand: action collapse: BUY 71.0% > 70.0%"
    ]


def test_action_share_just_above_70_percent_shows_enough_digits() -> None:
    actions = shares(1401, 300, 299)  # 70.05 %
    (blocker,) = blockers_of(candidate_window(actions, SPREAD * 2))
    assert blocker == "cand: action collapse: BUY 70.05% > 70.00%"


def test_every_class_can_collapse() -> None:
    assert blockers_of(candidate_window(shares(29, 142, 29))) == [
        "cand: action collapse: SELL 71.0% > 70.0%"
    ]
    assert blockers_of(candidate_window(shares(29, 29, 142))) == [
        "cand: action collapse: HOLD 71.0% > 70.0%"
    ]


# -- confidence std (< 0.05) and spread (p90 - p10 < 0.12) -----------------------------------


def three_point(mu: float, d: float, n: int = 200) -> list[float]:
    """n/8 at mu - d, 3n/4 at mu, n/8 at mu + d: std = d / 2, p10 = mu - d, p90 = mu + d."""
    k = n // 8
    return [mu - d] * k + [mu] * (n - 2 * k) + [mu + d] * k


def test_conf_std_0_049_fails() -> None:
    window = candidate_window(diverse(200), three_point(0.5, 0.098))
    metrics = model_metrics(window, "cand")
    assert metrics["conf_std"] == pytest.approx(0.049)
    assert metrics["spread"] == pytest.approx(0.196)
    assert blockers_of(window) == ["cand: conf_std 0.049 < 0.050"]


def test_conf_std_0_051_passes() -> None:
    window = candidate_window(diverse(200), three_point(0.5, 0.102))
    assert model_metrics(window, "cand")["conf_std"] == pytest.approx(0.051)
    assert blockers_of(window) == []


def test_conf_std_just_below_shows_enough_digits() -> None:
    window = candidate_window(diverse(200), three_point(0.5, 0.0999))
    assert blockers_of(window) == ["cand: conf_std 0.0499 < 0.0500"]


def tails(mu: float, s: float) -> list[float]:
    """200 values: wide tails beyond p10/p90 (std ~0.14) while p90 - p10 = 2 s."""
    return [0.1] * 10 + [mu - s] * 20 + [mu] * 140 + [mu + s] * 20 + [0.95] * 10


def test_spread_0_119_fails() -> None:
    window = candidate_window(diverse(200), tails(0.55, 0.0595))
    metrics = model_metrics(window, "cand")
    assert metrics["spread"] == pytest.approx(0.119)
    assert metrics["conf_std"] > 0.05
    assert blockers_of(window) == ["cand: spread p90-p10 0.119 < 0.120"]


def test_spread_0_121_passes() -> None:
    window = candidate_window(diverse(200), tails(0.55, 0.0605))
    assert model_metrics(window, "cand")["spread"] == pytest.approx(0.121)
    assert blockers_of(window) == []


# -- constant output (std < 0.01 or p10 == p90) ----------------------------------------------


def test_constant_std_0_009_fails_and_0_011_does_not() -> None:
    low = blockers_of(candidate_window(diverse(200), three_point(0.5, 0.018)))
    assert "cand: constant output: conf_std 0.009 < 0.010" in low
    high = blockers_of(candidate_window(diverse(200), three_point(0.5, 0.022)))
    assert not any("constant output" in b for b in high)
    assert "cand: conf_std 0.011 < 0.050" in high


def test_p10_equal_to_p90_is_constant_output_even_with_a_large_std() -> None:
    confidences = [0.0] * 10 + [0.5] * 180 + [1.0] * 10
    window = candidate_window(diverse(200), confidences)
    metrics = model_metrics(window, "cand")
    assert metrics["p10"] == metrics["p90"] == 0.5
    assert metrics["conf_std"] > 0.15
    assert blockers_of(window) == [
        "cand: spread p90-p10 0.000 < 0.120",
        "cand: constant output: p10 == p90 == 0.500",
    ]


def test_p10_just_below_p90_is_not_constant() -> None:
    confidences = [0.0] * 10 + [0.5] * 100 + [0.5001] * 80 + [1.0] * 10
    blockers = blockers_of(candidate_window(diverse(200), confidences))
    assert not any("p10 == p90" in b for b in blockers)


# -- HOLD collapse (HOLD > 85 % and median in [0.40, 0.60]) ----------------------------------

LOOSE = Thresholds(max_action_share=0.99)  # isolates the HOLD rule from the action-share rule


def hold_window(hold: int, median: float):
    actions = ["HOLD"] * hold + [("BUY", "SELL")[i % 2] for i in range(200 - hold)]
    confidences = [0.1] * 40 + [median] * 120 + [0.95] * 40
    return candidate_window(actions, confidences)


def test_hold_85_percent_is_not_a_collapse() -> None:
    assert blockers_of(hold_window(170, 0.5), thresholds=LOOSE) == []


def test_hold_86_percent_with_median_0_5_is_a_collapse() -> None:
    window = hold_window(172, 0.5)
    assert model_metrics(window, "cand")["median"] == 0.5
    assert blockers_of(window, thresholds=LOOSE) == [
        "cand: HOLD collapse: HOLD 86.0% > 85.0% with median confidence 0.500 in [0.40, 0.60]"
    ]


@pytest.mark.parametrize(
    ("median", "collapsed"),
    [(0.399, False), (0.40, True), (0.5, True), (0.60, True), (0.601, False)],
)
def test_hold_collapse_median_edges(median: float, collapsed: bool) -> None:
    blockers = blockers_of(hold_window(180, median), thresholds=LOOSE)
    assert any("HOLD collapse" in b for b in blockers) is collapsed


def test_hold_collapse_also_breaks_the_action_share_rule_by_default() -> None:
    blockers = blockers_of(hold_window(180, 0.5))
    assert "cand: action collapse: HOLD 90.0% > 70.0%" in blockers
    assert any("HOLD collapse" in b for b in blockers)


# -- inactive share (> 5 % of the window) ----------------------------------------------------


def test_inactive_in_exactly_5_percent_passes() -> None:
    window = candidate_window(diverse(380) + [None] * 20)
    assert model_metrics(window, "cand")["inactive_share"] == 0.05
    assert blockers_of(window) == []


def test_inactive_in_5_25_percent_fails() -> None:
    window = candidate_window(diverse(379) + [None] * 21)
    assert blockers_of(window) == [
        "cand: model inactive: no prediction in 5.2% of events > 5.0% "
        "(inactive 21, absent 0 of 400)"
    ]


def test_absent_events_count_as_no_prediction() -> None:
    healthy = [
        event(a, {"cand": entry(a, c, "cand")}) for a, c in zip(diverse(380), SPREAD, strict=False)
    ]
    others = [event("BUY", {"other": entry("BUY", 0.5, "other")}) for _ in range(21)]
    result = evaluate(parse_window(to_entries(healthy + others)), model="cand")
    assert result["blockers"] == [
        "cand: model inactive: no prediction in 5.2% of events > 5.0% "
        "(inactive 0, absent 21 of 401)"
    ]


def test_an_always_inactive_model_fails() -> None:
    window = candidate_window([None] * 300, extra=None)
    result = evaluate(window, model="cand")
    assert result["verdict"] == "FAIL"
    assert result["blockers"] == [
        "cand: 0 events < 200 required (canary)",
        "cand: no active events: nothing to judge",
        "cand: model inactive: no prediction in 100.0% of events > 5.0% "
        "(inactive 300, absent 0 of 300)",
    ]
    assert result["models"]["cand"]["conf_std"] is None


# -- minimum events --------------------------------------------------------------------------


def test_canary_199_events_fail_and_200_pass() -> None:
    assert blockers_of(candidate_window(diverse(199))) == [
        "window: 199 events < 200 required (canary)",
        "cand: 199 events < 200 required (canary)",
    ]
    assert evaluate(candidate_window(diverse(200)))["verdict"] == "PASS"


def test_collection_99_events_are_blocked_and_100_are_not() -> None:
    short = evaluate(candidate_window(diverse(99)), mode="collection")
    assert short["verdict"] == "COLLECTION"
    assert short["blockers"] == [
        "window: 99 events < 100 required (collection)",
        "cand: 99 events < 100 required (collection)",
    ]
    enough = evaluate(candidate_window(diverse(100)), mode="collection")
    assert (enough["verdict"], enough["blockers"], enough["min_events"]) == ("COLLECTION", [], 100)


def test_model_needs_its_own_active_events() -> None:
    # 230 events in the window but only 190 with a prediction from cand (17 % inactive)
    window = candidate_window(diverse(190) + [None] * 40)
    blockers = blockers_of(window)
    assert "cand: 190 events < 200 required (canary)" in blockers
    assert not any(b.startswith("window: ") for b in blockers)


# -- window blockers -------------------------------------------------------------------------


def test_any_malformed_event_fails_the_window() -> None:
    entries = to_entries(
        [
            event(a, {"cand": entry(a, c, "cand")})
            for a, c in zip(diverse(300), SPREAD, strict=False)
        ]
    )
    entries[7] = (b"1700000000007-0", b"{broken")
    entries[9] = (b"1700000000009-0", None)
    result = evaluate(parse_window(entries))
    assert result["verdict"] == "FAIL"
    assert result["blockers"] == [
        "window: 2 malformed events (first 1700000000007-0: unparsable JSON)"
    ]
    assert result["malformed"] == 2
    assert result["malformed_samples"] == [
        {"stream_id": "1700000000007-0", "reason": "unparsable JSON"},
        {"stream_id": "1700000000009-0", "reason": "missing field payload"},
    ]
    assert result["event_count"] == 298


def test_one_malformed_event_is_singular_and_samples_stop_at_ten() -> None:
    entries = to_entries(
        [
            event(a, {"cand": entry(a, c, "cand")})
            for a, c in zip(diverse(250), SPREAD, strict=False)
        ]
    )
    one = evaluate(parse_window([*entries, (b"1800000000000-0", b"[]")]))
    assert one["blockers"] == [
        "window: 1 malformed event (first 1800000000000-0: payload is not a JSON object)"
    ]
    many = evaluate(parse_window(entries + [(f"9-{i}".encode(), b"x") for i in range(25)]))
    assert many["malformed"] == 25
    assert len(many["malformed_samples"]) == 10


def test_empty_window_fails() -> None:
    result = evaluate(parse_window([]))
    assert result["verdict"] == "FAIL"
    assert result["blockers"] == ["window: empty (no events)"]
    assert (result["event_count"], result["models"], exit_code(result)) == (0, {}, 2)


def test_window_of_only_malformed_entries_fails() -> None:
    result = evaluate(parse_window([(b"1-0", b"x"), (b"2-0", b"y")]))
    assert result["blockers"] == [
        "window: 2 malformed events (first 1-0: unparsable JSON)",
        "window: 0 events < 200 required (canary)",
    ]


# -- model selection -------------------------------------------------------------------------


def mixed_window(bad_action: str = "BUY"):
    """good votes with diverse actions; bad (voting) always says bad_action; shadow is shadow."""
    events = []
    for i, (a, c) in enumerate(zip(diverse(240), SPREAD, strict=False)):
        breakdown = {
            "good": entry(a, c, "good"),
            "bad": entry(bad_action, SPREAD[i + 1], "bad"),
            "shade": entry("HOLD", 0.5, "shade", shadow=True),
        }
        events.append(event(a, breakdown))
    return parse_window(to_entries(events))


def test_without_model_every_voting_model_is_judged() -> None:
    result = evaluate(mixed_window())
    assert result["verdict"] == "FAIL"
    assert result["judged"] == ["good", "bad"]
    assert result["blockers"] == ["bad: action collapse: BUY 100.0% > 70.0%"]
    assert result["models"]["good"]["passed"] is True
    shade = result["models"]["shade"]
    assert (shade["shadow"], shade["judged"], shade["passed"]) == (True, False, False)
    assert "action collapse: HOLD 100.0% > 70.0%" in shade["blockers"]


def test_with_model_only_that_model_is_judged() -> None:
    good = evaluate(mixed_window(), model="good")
    assert (good["verdict"], good["blockers"], good["model"]) == ("PASS", [], "good")
    assert good["judged"] == ["good"]
    bad = evaluate(mixed_window(), model="bad")
    assert bad["verdict"] == "FAIL"


def test_a_shadow_model_can_be_judged_with_model() -> None:
    result = evaluate(mixed_window(), model="shade")
    assert result["verdict"] == "FAIL"
    assert result["judged"] == ["shade"]
    assert all(b.startswith("shade: ") for b in result["blockers"])


def test_model_not_in_the_window_fails() -> None:
    result = evaluate(mixed_window(), model="patchtst")
    assert result["verdict"] == "FAIL"
    assert result["blockers"] == ["patchtst: not in the window (no event reports this model)"]
    assert result["models"]["patchtst"]["passed"] is False
    assert result["models"]["patchtst"]["n"] == 0


def test_no_voting_model_fails() -> None:
    events = [
        event("HOLD", {"s": entry(a, c, "s", shadow=True)})
        for a, c in zip(diverse(250), SPREAD, strict=False)
    ]
    result = evaluate(parse_window(to_entries(events)))
    assert result["verdict"] == "FAIL"
    assert result["blockers"] == ["window: no voting model in the window"]
    assert result["judged"] == []


def test_model_voting_in_some_events_is_a_voting_model() -> None:
    events = []
    for i, (a, c) in enumerate(zip(diverse(240), SPREAD, strict=False)):
        shadow = i % 2 == 0
        events.append(event(a if not shadow else "HOLD", {"m": entry(a, c, "m", shadow=shadow)}))
    result = evaluate(parse_window(to_entries(events)))
    assert result["judged"] == ["m"]
    assert result["models"]["m"]["shadow"] is False
    assert result["models"]["m"]["shadow_events"] == 120


# -- collection mode, exit codes, failures ---------------------------------------------------


def test_collection_is_always_collection() -> None:
    for window in (candidate_window(diverse(300)), mixed_window(), parse_window([])):
        result = evaluate(window, mode="collection")
        assert result["verdict"] == "COLLECTION"
        assert exit_code(result) == 3 == result["exit_code"]
    blocked = evaluate(mixed_window(), mode="collection")
    assert blocked["blockers"] == ["bad: action collapse: BUY 100.0% > 70.0%"]


def test_unknown_mode_is_an_error() -> None:
    with pytest.raises(ValueError, match="unknown mode 'yolo'"):
        evaluate(parse_window([]), mode="yolo")


@pytest.mark.parametrize(
    ("result", "code"),
    [
        ({"verdict": "PASS"}, 0),
        ({"verdict": "FAIL"}, 2),
        ({"verdict": "COLLECTION"}, 3),
        ({"verdict": "pass"}, 2),
        ({"verdict": None}, 2),
        ({}, 2),
        (None, 2),
    ],
)
def test_exit_codes(result: Any, code: int) -> None:
    assert exit_code(result) == code


def test_failure_results() -> None:
    down = failure("canary", "redis: connection refused", model="patchtst")
    assert down["verdict"] == "FAIL"
    assert down["blockers"] == ["redis: connection refused"]
    assert (down["mode"], down["model"], down["event_count"], down["malformed"]) == (
        "canary",
        "patchtst",
        0,
        0,
    )
    assert exit_code(down) == 2 == down["exit_code"]
    assert down["min_events"] == 200
    collection = failure("collection", "timeout")
    assert (collection["verdict"], exit_code(collection)) == ("COLLECTION", 3)
    weird = failure("yolo", "bad mode")
    assert (weird["verdict"], weird["mode"], weird["min_events"]) == ("FAIL", "yolo", None)
    assert set(evaluate(parse_window([]))) <= set(down) | {"error"}


def test_result_keys_and_json() -> None:
    result = evaluate(mixed_window())
    for key in ("verdict", "mode", "event_count", "malformed", "blockers", "models"):
        assert key in result
    for key in ("model", "thresholds", "malformed_samples", "ensemble", "window", "min_events"):
        assert key in result
    model = result["models"]["good"]
    for key in (
        "passed",
        "shadow",
        "n",
        "actions",
        "conf_std",
        "p10",
        "p90",
        "agreement",
        "hard_disagree",
        "blockers",
    ):
        assert key in model
    assert result["thresholds"]["max_action_share"] == 0.70
    assert result["window"] == {"first_id": "1700000000000-0", "last_id": "1700000000239-0"}
    text = json.dumps(result, allow_nan=False)  # strict JSON: no NaN anywhere
    assert json.loads(text) == result
    assert json.dumps(evaluate(parse_window([])), allow_nan=False)


# -- metrics by hand -------------------------------------------------------------------------


def test_agreement_and_hard_disagreement_by_hand() -> None:
    # side from voter v; shadow s:  agree, agree, hard (BUY/SELL), hard (SELL/BUY),
    # soft (HOLD vs BUY), soft (BUY vs HOLD), inactive (not counted), agree
    pairs = [
        ("BUY", "BUY"),
        ("HOLD", "HOLD"),
        ("BUY", "SELL"),
        ("SELL", "BUY"),
        ("HOLD", "BUY"),
        ("BUY", "HOLD"),
        ("SELL", None),
        ("SELL", "SELL"),
    ]
    events = [
        event(side, {"v": entry(side, 0.6, "v"), "s": entry(mine, 0.7, "s", shadow=True)})
        for side, mine in pairs
    ]
    metrics = model_metrics(parse_window(to_entries(events)), "s")
    assert metrics["n"] == 7
    assert metrics["agreement"] == 3 / 7
    assert metrics["hard_disagree"] == 2 / 7
    assert metrics["actions"] == {"BUY": 3 / 7, "SELL": 2 / 7, "HOLD": 2 / 7}
    assert metrics["inactive_share"] == 1 / 8
    assert metrics["shadow"] is True


def test_percentiles_and_std_are_numpy_defaults() -> None:
    confidences = [0.1, 0.2, 0.4, 0.8, 0.9]
    window = candidate_window(["BUY", "SELL", "HOLD", "BUY", "SELL"], confidences)
    metrics = model_metrics(window, "cand")
    # linear interpolation: p10 at rank 0.4 -> 0.1 + 0.4 * 0.1, p90 at rank 3.6
    assert metrics["p10"] == pytest.approx(0.14)
    assert metrics["p90"] == pytest.approx(0.86)
    assert metrics["median"] == pytest.approx(0.4)
    mean = sum(confidences) / 5
    assert metrics["conf_std"] == pytest.approx(
        (sum((c - mean) ** 2 for c in confidences) / 5) ** 0.5
    )


def test_ensemble_metrics() -> None:
    events = [
        event("BUY", {"a": entry("BUY", 0.6, "a"), "b": entry("BUY", 0.6, "b")}),
        event("BUY", {"a": entry("BUY", 0.6, "a"), "b": entry("SELL", 0.6, "b")}),
        event("HOLD", {"a": entry("BUY", 0.6, "a"), "b": entry("SELL", 0.6, "b")}),
        event("SELL", {"a": entry(None, None, "a"), "b": entry("SELL", 0.6, "b")}),
    ]
    entries = to_entries(events)
    metrics = ensemble_metrics(parse_window(entries))
    assert metrics["consensus"] == {"1/1": 0.25, "0/2": 0.25, "1/2": 0.25, "2/2": 0.25}
    assert metrics["sides"] == {"BUY": 0.5, "SELL": 0.25, "HOLD": 0.25}
    sizes = sorted(len(p) for _, p in entries)
    # numpy linear p95 over 4 sizes: rank 2.85
    assert metrics["payload_p95"] == pytest.approx(sizes[2] + 0.85 * (sizes[3] - sizes[2]))
    assert metrics["event_count"] == 4


def test_model_blockers_from_metrics_directly() -> None:
    metrics = HEALTHY
    assert model_blockers(metrics) == []
    assert model_blockers({**metrics, "n": 150}, MODES["collection"]) == []
    assert model_blockers({**metrics, "n": 150}, "canary") == ["150 events < 200 required (canary)"]


def test_thresholds_overrides_and_validation() -> None:
    t = Thresholds().with_overrides({"max_action_share": 0.8, "max_payload_p95": 2000.0})
    assert (t.max_action_share, t.max_payload_p95) == (0.8, 2000)
    assert isinstance(t.max_payload_p95, int)
    assert Thresholds().with_overrides(None) == Thresholds()
    with pytest.raises(ValueError, match="unknown thresholds: nope"):
        Thresholds().with_overrides({"nope": 1})
    for bad in ({"min_conf_std": -1}, {"max_action_share": 1.5}, {"min_spread": float("nan")}):
        with pytest.raises(ValueError):
            Thresholds().with_overrides(bad)
    with pytest.raises(ValueError, match="must be a number"):
        Thresholds().with_overrides({"min_spread": "0.1"})
    with pytest.raises(ValueError, match="must be an integer"):
        Thresholds().with_overrides({"max_payload_p95": 1500.5})
    with pytest.raises(ValueError, match="calibration_buckets"):
        Thresholds(calibration_buckets=1)
    assert MODES["canary"].min_events == 200
    assert MODES["collection"].min_events == 100
    assert blockers_of(candidate_window(shares(142, 29, 29)), thresholds=t) == []
