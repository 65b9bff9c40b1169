"""Unit tests for model_safety.judgement.gate.model_findings: the structured findings the
monitor counts.

Each finding is ``{rule, value, threshold, text}``; the monitor tells the rules apart by
``rule`` and reports ``value`` / ``threshold``, so every rule's name, measured value,
threshold and sentence are pinned here, at and around its threshold.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from model_safety.judgement.gate import evaluate, model_blockers, model_findings
from model_safety.judgement.thresholds import MODES, Thresholds
from model_safety.telemetry.events import parse_window
from tests.unit.gate_metrics import HEALTHY

LOOSE = Thresholds(max_action_share=0.99)  # isolates the HOLD rule from the action-share rule
DOCUMENTED_RULES = {
    "too_few_events",
    "not_in_window",
    "no_active_events",
    "action_collapse",
    "flat_predictions",
    "narrow_spread",
    "constant_output",
    "hold_collapse",
    "model_inactive",
}


def finding(rule: str, value: Any, threshold: Any, text: str) -> dict[str, Any]:
    return {"rule": rule, "value": value, "threshold": threshold, "text": text}


def metrics(**changes: Any) -> dict[str, Any]:
    return {**HEALTHY, **changes}


def test_a_healthy_model_has_no_findings() -> None:
    assert model_findings(HEALTHY) == []
    assert model_blockers(HEALTHY) == []


def test_not_in_window_is_the_only_finding() -> None:
    # Everything else is bad too, but a model the window does not report is only "not there".
    absent = metrics(in_window=False, n=0, conf_std=0.0, inactive_share=1.0)
    assert model_findings(absent) == [
        finding("not_in_window", 0, 1, "not in the window (no event reports this model)")
    ]


def test_too_few_events_per_mode() -> None:
    assert model_findings(metrics(n=150)) == [
        finding("too_few_events", 150, 200, "150 events < 200 required (canary)")
    ]
    assert model_findings(metrics(n=199), "canary")[0]["value"] == 199
    assert model_findings(metrics(n=200), "canary") == []
    assert model_findings(metrics(n=99), MODES["collection"]) == [
        finding("too_few_events", 99, 100, "99 events < 100 required (collection)")
    ]
    assert model_findings(metrics(n=100), "collection") == []


def test_no_active_events() -> None:
    never = metrics(
        n=0,
        actions={"BUY": 0.0, "SELL": 0.0, "HOLD": 0.0},
        conf_std=None,
        p10=None,
        p90=None,
        spread=None,
        median=None,
        inactive_share=1.0,
        inactive=300,
    )
    assert model_findings(never) == [
        finding("too_few_events", 0, 200, "0 events < 200 required (canary)"),
        finding("no_active_events", 0, 1, "no active events: nothing to judge"),
        finding(
            "model_inactive",
            1.0,
            0.05,
            "model inactive: no prediction in 100.0% of events > 5.0% "
            "(inactive 300, absent 0 of 300)",
        ),
    ]


@pytest.mark.parametrize("action", ["BUY", "SELL", "HOLD"])
def test_action_collapse_of_each_class(action: str) -> None:
    others = [a for a in ("BUY", "SELL", "HOLD") if a != action]
    shares = {action: 0.71, others[0]: 0.145, others[1]: 0.145}
    found = model_findings(metrics(actions=shares, median=0.3))
    assert found == [
        finding("action_collapse", 0.71, 0.70, f"action collapse: {action} 71.0% > 70.0%")
    ]


def test_action_collapse_boundary_and_custom_threshold() -> None:
    at = {"BUY": 0.70, "SELL": 0.15, "HOLD": 0.15}
    assert model_findings(metrics(actions=at)) == []
    above = {"BUY": 0.93, "SELL": 0.05, "HOLD": 0.02}
    assert model_findings(metrics(actions=above), thresholds=Thresholds(max_action_share=0.9)) == [
        finding("action_collapse", 0.93, 0.9, "action collapse: BUY 93.0% > 90.0%")
    ]
    assert (
        model_findings(metrics(actions=above), thresholds=Thresholds(max_action_share=0.95)) == []
    )


def test_action_collapse_shows_enough_digits() -> None:
    share = 0.7005
    (only,) = model_findings(metrics(actions={"BUY": share, "SELL": 0.2995, "HOLD": 0.0}))
    assert only == finding("action_collapse", share, 0.70, "action collapse: BUY 70.05% > 70.00%")


def test_flat_predictions() -> None:
    assert model_findings(metrics(conf_std=0.049)) == [
        finding("flat_predictions", 0.049, 0.05, "conf_std 0.049 < 0.050")
    ]
    assert model_findings(metrics(conf_std=0.05)) == []
    custom = model_findings(metrics(conf_std=0.08), thresholds=Thresholds(min_conf_std=0.1))
    assert custom == [finding("flat_predictions", 0.08, 0.1, "conf_std 0.080 < 0.100")]


def test_narrow_spread() -> None:
    narrow = metrics(p10=0.5, p90=0.619, spread=0.119)
    assert model_findings(narrow) == [
        finding("narrow_spread", 0.119, 0.12, "spread p90-p10 0.119 < 0.120")
    ]
    assert model_findings(metrics(p10=0.5, p90=0.62, spread=0.12)) == []


def test_constant_output_by_std() -> None:
    # conf_std 0.009 is also flat (< 0.05); the spread is kept wide to isolate the two.
    assert model_findings(metrics(conf_std=0.009)) == [
        finding("flat_predictions", 0.009, 0.05, "conf_std 0.009 < 0.050"),
        finding("constant_output", 0.009, 0.01, "constant output: conf_std 0.009 < 0.010"),
    ]
    at = model_findings(metrics(conf_std=0.01))
    assert [f["rule"] for f in at] == ["flat_predictions"]


def test_constant_output_by_equal_percentiles() -> None:
    equal = metrics(p10=0.5, p90=0.5, spread=0.0)
    assert model_findings(equal) == [
        finding("narrow_spread", 0.0, 0.12, "spread p90-p10 0.000 < 0.120"),
        finding("constant_output", 0.0, 0.0, "constant output: p10 == p90 == 0.500"),
    ]


def test_hold_collapse() -> None:
    hold = {"BUY": 0.07, "SELL": 0.07, "HOLD": 0.86}
    assert model_findings(metrics(actions=hold, median=0.5), thresholds=LOOSE) == [
        finding(
            "hold_collapse",
            0.86,
            0.85,
            "HOLD collapse: HOLD 86.0% > 85.0% with median confidence 0.500 in [0.40, 0.60]",
        )
    ]
    # At the share, or with the median outside [0.40, 0.60]: no collapse.
    at = {"BUY": 0.075, "SELL": 0.075, "HOLD": 0.85}
    assert model_findings(metrics(actions=at, median=0.5), thresholds=LOOSE) == []
    assert model_findings(metrics(actions=hold, median=0.61), thresholds=LOOSE) == []
    assert model_findings(metrics(actions=hold, median=0.39), thresholds=LOOSE) == []
    # With the default thresholds a HOLD collapse is an action collapse as well.
    rules = [f["rule"] for f in model_findings(metrics(actions=hold, median=0.5))]
    assert rules == ["action_collapse", "hold_collapse"]


def test_model_inactive() -> None:
    inactive = metrics(n=379, inactive_share=21 / 400, inactive=21)
    assert model_findings(inactive) == [
        finding(
            "model_inactive",
            21 / 400,
            0.05,
            "model inactive: no prediction in 5.2% of events > 5.0% (inactive 21, absent 0 of 400)",
        )
    ]
    assert model_findings(metrics(n=380, inactive_share=0.05, inactive=20)) == []
    assert model_findings(metrics(inactive_share=None)) == []


def test_findings_are_plain_json_with_exactly_four_keys_and_known_rules() -> None:
    bad = metrics(
        n=150,
        actions={"BUY": 0.0, "SELL": 0.0, "HOLD": 1.0},
        conf_std=0.0,
        p10=0.5,
        p90=0.5,
        spread=0.0,
        median=0.5,
        inactive_share=0.5,
        inactive=150,
    )
    found = model_findings(bad)
    assert {f["rule"] for f in found} == DOCUMENTED_RULES - {"not_in_window", "no_active_events"}
    for item in found:
        assert set(item) == {"rule", "value", "threshold", "text"}
        assert isinstance(item["text"], str) and item["text"]
    assert json.loads(json.dumps(found, allow_nan=False)) == found


@pytest.mark.parametrize(
    "changes",
    [
        {},
        {"in_window": False},
        {"n": 150},
        {"conf_std": 0.009, "p10": 0.5, "p90": 0.5, "spread": 0.0},
        {"actions": {"BUY": 0.05, "SELL": 0.05, "HOLD": 0.9}, "median": 0.45},
        {"inactive_share": 0.3, "inactive": 150, "n": 350},
    ],
)
@pytest.mark.parametrize("mode", ["canary", "collection"])
def test_model_blockers_are_the_texts_of_the_findings(changes: dict[str, Any], mode: str) -> None:
    values = metrics(**changes)
    for thresholds in (Thresholds(), LOOSE):
        texts = [f["text"] for f in model_findings(values, mode, thresholds)]
        assert model_blockers(values, mode, thresholds) == texts


# -- through evaluate: models[M]["findings"] ---------------------------------------------------


def _constant_window(n: int = 250):
    events = []
    for i in range(n):
        side = ("BUY", "SELL", "HOLD")[i % 3]
        breakdown = {
            "tft": {"action": side, "confidence": round(0.3 + 0.006 * (i * 37 % 100), 4)},
            "patchtst": {"action": "HOLD", "confidence": 0.5, "model": "patchtst"},
        }
        breakdown["tft"]["model"] = "tft"
        events.append(
            {
                "symbol": "BTCUSDT",
                "side": side,
                "confidence": 0.6,
                "consensus_count": 1 + (side == "HOLD"),
                "total_models": 2,
                "timestamp": "2026-01-10T12:00:00.000Z",
                "model_breakdown": breakdown,
            }
        )
    entries = [(f"{1_700_000_000_000 + i}-0", json.dumps(e)) for i, e in enumerate(events)]
    return parse_window(entries)


def test_evaluate_reports_findings_per_model() -> None:
    result = evaluate(_constant_window(), model="patchtst")
    entry = result["models"]["patchtst"]
    rules = [f["rule"] for f in entry["findings"]]
    assert rules == [
        "action_collapse",
        "flat_predictions",
        "narrow_spread",
        "constant_output",
        "constant_output",
        "hold_collapse",
    ]
    collapse = entry["findings"][0]
    assert (collapse["value"], collapse["threshold"]) == (1.0, 0.70)
    assert entry["blockers"] == [f["text"] for f in entry["findings"]]
    assert result["blockers"] == [f"patchtst: {f['text']}" for f in entry["findings"]]
    assert result["verdict"] == "FAIL"
    # Every model in the window has its findings, judged or not.
    assert result["models"]["tft"]["findings"] == []
    assert result["models"]["tft"]["judged"] is False


def test_evaluate_findings_for_a_missing_model() -> None:
    result = evaluate(_constant_window(), model="nhits")
    assert result["models"]["nhits"]["findings"] == [
        finding("not_in_window", 0, 1, "not in the window (no event reports this model)")
    ]


def test_evaluate_findings_follow_the_thresholds() -> None:
    result = evaluate(_constant_window(), model="patchtst", thresholds=LOOSE)
    collapse = [
        f for f in result["models"]["patchtst"]["findings"] if f["rule"] == "action_collapse"
    ]
    assert collapse == [
        finding("action_collapse", 1.0, 0.99, "action collapse: HOLD 100.0% > 99.0%")
    ]
