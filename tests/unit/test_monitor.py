"""Unit tests for model_safety.monitor: the canary monitor's judgement of one probe at a time.

Probes carry real quality-gate results (``model_safety.gate.evaluate`` over parsed event
windows in which ``patchtst`` is the canary next to a voting ``tft``), so the findings wiring
from the gate to the monitor's rules is exercised; hand-written gate dicts are used only where
a single number (agreement, a stream id) is the point.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import math
from collections.abc import Callable, Sequence
from typing import Any

import pytest

from model_safety import gate as gate_module
from model_safety.events import parse_window
from model_safety.gate import evaluate, failure
from model_safety.monitor import (
    ACTIVE,
    ENDED,
    INCONCLUSIVE_FINDINGS,
    PERSISTENT_RULES,
    ROLLBACK_REASON_MAX,
    MonitorError,
    MonitorSettings,
    assess,
    describe_check,
    format_duration,
    new_state,
    progress_line,
    prometheus_text,
    rollback_reason,
    stream_id_key,
)
from model_safety.thresholds import Thresholds

MODEL = "patchtst"
HOST = "engine-01"
UNIT = "quantum-ai-engine.service"
INVOCATION = "0123456789abcdef0123456789abcdef"
OTHER_INVOCATION = "fedcba9876543210fedcba9876543210"
STARTED = "2026-01-10T12:00:00.000Z"
BASE_MS = 1_767_000_000_000
DEFAULT = MonitorSettings(model=MODEL)
DEFAULT_THRESHOLDS = Thresholds()
LOOSE = Thresholds(max_action_share=0.99)  # isolates the HOLD rule from the action-share rule
SPREAD = [round(0.3 + 0.6 * ((i * 37) % 100) / 99, 4) for i in range(1000)]
DIVERSE = ("BUY", "SELL", "HOLD")
OPPOSITE = {"BUY": "SELL", "SELL": "BUY", "HOLD": "HOLD"}


# -- telemetry and real gate results -----------------------------------------------------------


def diverse(n: int) -> list[str]:
    return [DIVERSE[i % 3] for i in range(n)]


def shares(buy: int, sell: int, hold: int) -> list[str]:
    return ["BUY"] * buy + ["SELL"] * sell + ["HOLD"] * hold


def three_point(mu: float, d: float, n: int = 200) -> list[float]:
    """n/8 at mu - d, 3n/4 at mu, n/8 at mu + d: std = d / 2, p10 = mu - d, p90 = mu + d."""
    k = n // 8
    return [mu - d] * k + [mu] * (n - 2 * k) + [mu + d] * k


def tails(mu: float, s: float) -> list[float]:
    """200 values: wide tails beyond p10/p90 (std ~0.14) while p90 - p10 = 2 s."""
    return [0.1] * 10 + [mu - s] * 20 + [mu] * 140 + [mu + s] * 20 + [0.95] * 10


def usual_side(i: int, action: str | None) -> str:
    """The ensemble's side: agrees with the canary in 60 % of events, never BUY vs SELL."""
    if action is None:
        return DIVERSE[i % 3]
    if i % 5 < 3:
        return action
    return "HOLD" if action != "HOLD" else "BUY"


def telemetry_event(side: str, action: str | None, confidence: float | None, i: int) -> dict:
    canary: dict[str, Any] = (
        {"inactive": True, "inactive_reason": "exception_in_predict"}
        if action is None
        else {"action": action, "confidence": confidence}
    )
    canary["model"] = MODEL
    breakdown = {
        "tft": {"action": side, "confidence": SPREAD[(i * 7) % 1000], "model": "tft"},
        MODEL: canary,
    }
    voting = [e for e in breakdown.values() if not e.get("inactive")]
    return {
        "symbol": "BTCUSDT",
        "side": side,
        "confidence": 0.6,
        "price": 100.0,
        "consensus_count": sum(e["action"] == side for e in voting),
        "total_models": len(voting),
        "timestamp": "2026-01-10T12:00:00.000Z",
        "model_breakdown": breakdown,
    }


def stream_id(check: int, i: int = 0) -> str:
    return f"{BASE_MS + check * 100_000 + i}-0"


def real_gate(
    actions: Sequence[str | None],
    confidences: Sequence[float | None] | None = None,
    *,
    check: int,
    sides: Sequence[str] | None = None,
    malformed: int = 0,
    thresholds: Thresholds = DEFAULT_THRESHOLDS,
) -> dict[str, Any]:
    """The gate's result for the canary over one window; ``check`` keeps stream ids apart."""
    confidences = confidences if confidences is not None else SPREAD[: len(actions)]
    entries: list[tuple[str, str | None]] = []
    for i, (action, confidence) in enumerate(zip(actions, confidences, strict=True)):
        side = sides[i] if sides is not None else usual_side(i, action)
        entries.append(
            (stream_id(check, i), json.dumps(telemetry_event(side, action, confidence, i)))
        )
    entries += [(stream_id(check, len(actions) + j), "{broken") for j in range(malformed)]
    return evaluate(parse_window(entries), mode="canary", model=MODEL, thresholds=thresholds)


def healthy(check: int) -> dict[str, Any]:
    return real_gate(diverse(200), check=check)


def too_few(check: int) -> dict[str, Any]:
    return real_gate(diverse(150), check=check)


def empty_window() -> dict[str, Any]:
    return evaluate(parse_window([]), mode="canary", model=MODEL)


def collapsed(check: int) -> dict[str, Any]:
    return real_gate(shares(142, 29, 29), check=check)


def hand_gate(
    check: int,
    *,
    findings: Sequence[dict[str, Any]] = (),
    agreement: float | None = 0.6,
    hard: float | None = 0.0,
    events: int = 300,
    last_id: str | None = "",
) -> dict[str, Any]:
    return {
        "models": {
            MODEL: {"findings": list(findings), "agreement": agreement, "hard_disagree": hard}
        },
        "window": {
            "first_id": stream_id(check),
            "last_id": stream_id(check, 1) if last_id == "" else last_id,
        },
        "event_count": events,
        "malformed": 0,
    }


# -- probes ------------------------------------------------------------------------------------


def service(*, running: bool = True, invocation: str = INVOCATION, n_restarts: int = 0) -> dict:
    return {
        "unit": UNIT,
        "load_state": "loaded",
        "active_state": "active" if running else "failed",
        "sub_state": "running" if running else "failed",
        "main_pid": 4242 if running else 0,
        "n_restarts": n_restarts,
        "invocation_id": invocation if running else "",
        "active_enter_timestamp": "Sat 2026-01-10 12:00:00 UTC",
        "active_enter_monotonic_us": 5_000_000 if running else 0,
        "result": "success" if running else "exit-code",
        "running": running,
        "uptime_s": 60.0 if running else None,
        "active_since": STARTED if running else None,
    }


def activation(
    invocation: str = INVOCATION,
    *,
    event: str = "activation",
    started_at: str = STARTED,
    weight: float = 0.1,
    ts: str = "2026-01-10T12:00:01.000Z",
) -> dict:
    return {
        "event": event,
        "ts": ts,
        "model": MODEL,
        "host": HOST,
        "weight": weight,
        "invocation_id": invocation,
        "started_at": started_at,
    }


def probe(
    gate: dict[str, Any] | None,
    *,
    svc: dict | None = None,
    record: dict | str | None = "default",
    canary: str | None = MODEL,
    config_error: str | None = None,
) -> dict[str, Any]:
    result: dict[str, Any] = {
        "service": svc if svc is not None else service(),
        "activation": activation() if record == "default" else record,
        "after": STARTED,
        "gate": gate,
    }
    if config_error:
        result["config_error"] = config_error
    else:
        result["config"] = {
            "canary": canary,
            "canary_weight": 0.1 if canary else None,
            "voting": {"tft": 1.0},
            "shadow": [],
        }
    return result


def start(settings: MonitorSettings = DEFAULT) -> dict[str, Any]:
    return new_state(HOST, settings, STARTED, STARTED)


class Host:
    """One watched host: feeds probes to assess and keeps the state it returns."""

    def __init__(self, settings: MonitorSettings = DEFAULT) -> None:
        self.settings = settings
        self.state = start(settings)

    def check(self, item: dict[str, Any] | None, error: str | None = None) -> dict[str, Any]:
        self.state, result = assess(self.state, item, self.settings, error)
        return result

    def gate(self, gate: dict[str, Any], **probe_args: Any) -> dict[str, Any]:
        return self.check(probe(gate, **probe_args))


def rules(items: Sequence[dict[str, Any]]) -> list[str]:
    return [item["rule"] for item in items]


def only(items: Sequence[dict[str, Any]], rule: str) -> dict[str, Any]:
    (item,) = [item for item in items if item["rule"] == rule]
    return item


# -- the healthy check -------------------------------------------------------------------------


def test_a_healthy_check_is_ok_and_moves_the_cursor() -> None:
    host = Host()
    host.state.update(
        consecutive={"action_collapse": 1},
        redundant_streak=4,
        stalled=1,
        inconclusive=2,
    )
    gate = healthy(1)
    assert gate["verdict"] == "PASS"  # really a healthy window
    check = host.check(probe(gate))
    assert check == {"status": "ok", "findings": [], "triggered": [], "events": 200}
    state = host.state
    assert state["cursor"] == gate["window"]["last_id"] == stream_id(1, 199)
    assert state["newest_id"] == stream_id(1, 199)
    assert (state["consecutive"], state["redundant_streak"]) == ({}, 0)
    assert (state["stalled"], state["inconclusive"], state["unjudged"]) == (0, 0, 0)
    assert (state["checks"], state["status"], state["violations"]) == (1, ACTIVE, [])
    assert state["last_check"] == {"status": "ok", "events": 200, "rules": []}
    assert state["baseline"] == {
        "event": "activation",
        "ts": "2026-01-10T12:00:01.000Z",
        "invocation_id": INVOCATION,
        "started_at": STARTED,
        "weight": 0.1,
        "n_restarts": 0,
    }


def test_new_state() -> None:
    state = new_state(HOST, DEFAULT, STARTED, "1-0")
    assert state == {
        "host": HOST,
        "model": MODEL,
        "status": ACTIVE,
        "started_at": STARTED,
        "baseline": None,
        "cursor": "1-0",
        "newest_id": None,
        "checks": 0,
        "consecutive": {},
        "redundant_streak": 0,
        "stalled": 0,
        "unjudged": 0,
        "inconclusive": 0,
        "violations": [],
        "last_check": None,
    }


def test_every_judging_gate_rule_is_a_persistent_monitor_rule() -> None:
    broken = {
        "in_window": True,
        "n": 150,
        "actions": {"BUY": 0.0, "SELL": 0.0, "HOLD": 1.0},
        "conf_std": 0.0,
        "p10": 0.5,
        "p90": 0.5,
        "spread": 0.0,
        "median": 0.5,
        "inactive_share": 0.5,
        "inactive": 150,
        "absent": 0,
    }
    seen = set()
    for metrics in (broken, {**broken, "n": 0}, {**broken, "in_window": False}):
        seen |= set(rules(gate_module.model_findings(metrics)))
    assert seen >= INCONCLUSIVE_FINDINGS
    assert seen - INCONCLUSIVE_FINDINGS <= set(PERSISTENT_RULES)
    assert len(seen - INCONCLUSIVE_FINDINGS) == 6


# -- rules 1-5 and the gate's fail-closed rules: persist_checks consecutive conclusive checks ---

GateFactory = Callable[[int], dict[str, Any]]


def _hard(check: int) -> dict[str, Any]:
    actions = diverse(240)
    sides = [OPPOSITE[a] if i % 6 < 2 else a for i, a in enumerate(actions)]
    return real_gate(actions, check=check, sides=sides)


PERSIST_CASES: dict[str, tuple[GateFactory, float, float, str]] = {
    "action_collapse": (collapsed, 0.71, 0.70, "action collapse: BUY 71.0% > 70.0%"),
    "flat_predictions": (
        lambda c: real_gate(diverse(200), three_point(0.5, 0.098), check=c),
        0.049,
        0.05,
        "conf_std 0.049 < 0.050",
    ),
    "narrow_spread": (
        lambda c: real_gate(diverse(200), tails(0.55, 0.0595), check=c),
        0.119,
        0.12,
        "spread p90-p10 0.119 < 0.120",
    ),
    "constant_output": (
        lambda c: real_gate(diverse(200), three_point(0.5, 0.018), check=c),
        0.009,
        0.01,
        "constant output: conf_std 0.009 < 0.010",
    ),
    "hold_collapse": (
        lambda c: real_gate(
            ["HOLD"] * 172 + ["BUY", "SELL"] * 14,
            [0.1] * 40 + [0.5] * 120 + [0.95] * 40,
            check=c,
            thresholds=LOOSE,
        ),
        0.86,
        0.85,
        "HOLD collapse: HOLD 86.0% > 85.0% with median confidence 0.500",
    ),
    "hard_disagreement": (
        _hard,
        1 / 3,
        0.25,
        "hard disagreement with the ensemble 33.3% > 25.0%",
    ),
    "model_inactive": (
        lambda c: real_gate(diverse(379) + [None] * 21, check=c),
        21 / 400,
        0.05,
        "model inactive: no prediction in 5.2% of events > 5.0%",
    ),
    "malformed_events": (
        lambda c: real_gate(diverse(250), check=c, malformed=2),
        2,
        0,
        "2 malformed events",
    ),
}


def test_the_persist_cases_cover_every_persistent_rule() -> None:
    assert set(PERSIST_CASES) == set(PERSISTENT_RULES)


@pytest.mark.parametrize("persist", [2, 3])
@pytest.mark.parametrize("rule", list(PERSIST_CASES))
def test_a_persistent_rule_triggers_at_the_persist_checks_th_check(rule: str, persist: int) -> None:
    factory, value, threshold, text = PERSIST_CASES[rule]
    settings = MonitorSettings(model=MODEL, persist_checks=persist)
    host = Host(settings)
    for number in range(1, persist):
        check = host.gate(factory(number))
        assert check["status"] == "warning", check
        assert check["triggered"] == []
        assert only(check["findings"], rule)["count"] == number
        assert host.state["consecutive"][rule] == number
        assert host.state["violations"] == []
    check = host.gate(factory(persist))
    assert check["status"] == "violation"
    violation = only(check["triggered"], rule)
    assert violation["count"] == persist
    assert violation["value"] == pytest.approx(value, abs=5e-4)
    assert violation["threshold"] == threshold
    assert text in violation["text"]
    assert violation in host.state["violations"]
    assert rule in host.state["last_check"]["rules"]
    assert host.state["last_check"]["status"] == "violation"


def test_a_constant_canary_through_the_real_gate() -> None:
    host = Host()
    constant = [
        real_gate(["HOLD"] * 250, [0.5] * 250, check=1),
        real_gate(["HOLD"] * 250, [0.5] * 250, check=2),
    ]
    expected = {
        "action_collapse",
        "flat_predictions",
        "narrow_spread",
        "constant_output",
        "hold_collapse",
    }
    first = host.gate(constant[0])
    assert (first["status"], first["triggered"]) == ("warning", [])
    assert set(rules(first["findings"])) == expected
    second = host.gate(constant[1])
    assert second["status"] == "violation"
    assert set(rules(second["triggered"])) == expected
    collapse = only(second["triggered"], "action_collapse")
    assert (collapse["value"], collapse["threshold"], collapse["count"]) == (1.0, 0.70, 2)
    assert collapse["text"] == "action collapse: HOLD 100.0% > 70.0%"
    texts = {item["text"] for item in second["triggered"]}
    assert "constant output: p10 == p90 == 0.500" in texts
    assert "flat_predictions" in host.state["last_check"]["rules"]


def test_hard_disagreement_at_the_limit_is_not_a_violation() -> None:
    host = Host(MonitorSettings(model=MODEL, persist_checks=1))
    assert host.gate(hand_gate(1, hard=0.25))["status"] == "ok"
    check = host.gate(hand_gate(2, hard=0.2501))
    assert rules(check["triggered"]) == ["hard_disagreement"]
    custom = Host(MonitorSettings(model=MODEL, persist_checks=1, max_hard_disagree=0.4))
    assert custom.gate(_hard(1))["status"] == "ok"


def test_a_clean_conclusive_check_resets_the_count() -> None:
    host = Host()
    assert host.gate(collapsed(1))["status"] == "warning"
    clean = host.gate(healthy(2))
    assert clean["status"] == "ok"
    assert host.state["consecutive"] == {}
    again = host.gate(collapsed(3))
    assert (again["status"], only(again["findings"], "action_collapse")["count"]) == ("warning", 1)
    assert host.gate(collapsed(4))["status"] == "violation"


def test_a_different_rule_does_not_continue_another_rules_count() -> None:
    host = Host()
    host.gate(collapsed(1))
    flat = PERSIST_CASES["flat_predictions"][0]
    check = host.gate(flat(2))
    assert check["status"] == "warning"
    assert host.state["consecutive"] == {"flat_predictions": 1}


def test_an_inconclusive_check_keeps_counts_and_cursor() -> None:
    host = Host()
    host.gate(collapsed(1))
    cursor = host.state["cursor"]
    assert cursor == stream_id(1, 199)
    host.state["redundant_streak"] = 2
    gate = too_few(2)
    check = host.gate(gate)
    assert check["status"] == "inconclusive"
    assert rules(check["findings"]) == ["too_few_events"]
    assert check["findings"][0]["text"] == "150 events < 200 required (canary)"
    assert check["triggered"] == []
    assert check["events"] == 150
    assert host.state["consecutive"] == {"action_collapse": 1}
    assert host.state["redundant_streak"] == 2
    assert host.state["cursor"] == cursor
    assert host.state["inconclusive"] == 1
    assert host.state["newest_id"] == gate["window"]["last_id"]  # not a stall
    assert host.state["stalled"] == 0
    third = host.gate(collapsed(3))
    assert third["status"] == "violation"
    assert only(third["triggered"], "action_collapse")["count"] == 2
    assert host.state["inconclusive"] == 0
    assert host.state["cursor"] == stream_id(3, 199)


@pytest.mark.parametrize(
    "gate",
    [
        pytest.param(lambda c: real_gate(diverse(150), check=c), id="too_few_events"),
        pytest.param(lambda c: real_gate(["BUY"] * 150, check=c), id="too_few_and_collapsed"),
    ],
)
def test_too_few_events_make_the_check_inconclusive_whatever_else(gate: GateFactory) -> None:
    host = Host(MonitorSettings(model=MODEL, persist_checks=1))
    check = host.gate(gate(1))
    assert check["status"] == "inconclusive"
    assert set(rules(check["findings"])) <= INCONCLUSIVE_FINDINGS
    assert host.state["consecutive"] == {}


def test_a_canary_predicting_in_half_of_a_full_window_is_model_inactive() -> None:
    host = Host()
    for number in (1, 2):
        check = host.gate(real_gate(diverse(150) + [None] * 150, check=number))
    assert check["status"] == "violation"
    assert rules(check["triggered"]) == ["model_inactive"]
    assert check["triggered"][0]["value"] == 0.5


def test_a_canary_that_never_predicts_in_a_full_window_is_model_inactive() -> None:
    host = Host()
    for number in (1, 2):
        check = host.gate(real_gate([None] * 300, check=number))
    assert check["status"] == "violation"
    assert "model_inactive" in rules(check["triggered"])


# -- rule 6: redundant -------------------------------------------------------------------------


def test_redundant_needs_redundant_checks_in_a_row() -> None:
    settings = MonitorSettings(model=MODEL, redundant_checks=3)
    host = Host(settings)
    for number in (1, 2):
        check = host.gate(hand_gate(number, agreement=0.9))
        assert check["status"] == "warning"
        assert only(check["findings"], "redundant")["count"] == number
        assert check["triggered"] == []
    lower = host.gate(hand_gate(3, agreement=0.6))
    assert (lower["status"], host.state["redundant_streak"]) == ("ok", 0)
    for number in (4, 5):
        assert host.gate(hand_gate(number, agreement=0.9))["status"] == "warning"
    check = host.gate(hand_gate(6, agreement=0.9))
    assert check["status"] == "violation"
    violation = only(check["triggered"], "redundant")
    assert (violation["value"], violation["threshold"], violation["count"]) == (0.9, 0.85, 3)
    assert violation["text"] == (
        "agreement with the ensemble 90.0% > 85.0% in 3 checks in a row (limit 3): "
        "the canary adds nothing of its own"
    )


def test_redundant_is_strictly_above_the_limit() -> None:
    host = Host(MonitorSettings(model=MODEL, redundant_checks=1))
    assert host.gate(hand_gate(1, agreement=0.85))["status"] == "ok"
    assert host.gate(hand_gate(2, agreement=None))["status"] == "ok"
    assert host.gate(hand_gate(3, agreement=0.8501))["status"] == "violation"


def test_redundant_through_the_real_gate() -> None:
    # The canary always agrees with the ensemble's side: agreement 100 %.
    host = Host(MonitorSettings(model=MODEL, redundant_checks=2))
    actions = diverse(200)
    first = host.gate(real_gate(actions, check=1, sides=actions))
    assert first["status"] == "warning"
    second = host.gate(real_gate(actions, check=2, sides=actions))
    violation = only(second["triggered"], "redundant")
    assert (violation["value"], violation["count"]) == (1.0, 2)
    assert second["status"] == "violation"


# -- rule 7: the service -----------------------------------------------------------------------


def test_an_inactive_service_triggers_at_once() -> None:
    host = Host()
    check = host.check(probe(healthy(1), svc=service(running=False)))
    assert check["status"] == "violation"
    (violation,) = check["triggered"]
    assert violation == {
        "rule": "service_inactive",
        "value": "failed/failed",
        "threshold": "active/running",
        "text": f"service {UNIT} is failed/failed, not active/running",
        "count": 1,
    }
    assert host.state["violations"] == [violation]


def test_a_service_on_another_start_than_the_activation_triggers_at_once() -> None:
    host = Host()
    check = host.check(probe(healthy(1), svc=service(invocation=OTHER_INVOCATION, n_restarts=1)))
    assert check["status"] == "violation"
    (violation,) = check["triggered"]
    assert violation["rule"] == "service_restarted"
    assert (violation["value"], violation["threshold"]) == (OTHER_INVOCATION, INVOCATION)
    assert OTHER_INVOCATION in violation["text"] and INVOCATION in violation["text"]


def test_a_restart_after_a_good_check_triggers_at_once() -> None:
    host = Host()
    assert host.gate(healthy(1))["status"] == "ok"
    # A newer activation record does not exist; the engine simply runs another start now.
    check = host.check(probe(healthy(2), svc=service(invocation=OTHER_INVOCATION)))
    assert rules(check["triggered"]) == ["service_restarted"]


def test_n_restarts_growing_triggers_at_once() -> None:
    host = Host()
    assert host.check(probe(healthy(1), svc=service(n_restarts=1)))["status"] == "ok"
    assert host.state["baseline"]["n_restarts"] == 1
    assert host.check(probe(healthy(2), svc=service(n_restarts=1)))["status"] == "ok"
    check = host.check(probe(healthy(3), svc=service(n_restarts=2)))
    (violation,) = check["triggered"]
    assert (violation["rule"], violation["value"], violation["threshold"]) == (
        "service_restarted",
        2,
        1,
    )
    assert "NRestarts 2 > 1" in violation["text"]


def test_the_service_is_judged_before_the_telemetry() -> None:
    host = Host(MonitorSettings(model=MODEL, persist_checks=1))
    check = host.check(probe(collapsed(1), svc=service(running=False)))
    assert rules(check["triggered"]) == ["service_inactive"]
    assert host.state["cursor"] == STARTED  # the window of a dead engine proves nothing


# -- rule 8: telemetry -------------------------------------------------------------------------


def test_unreadable_telemetry_triggers_at_once() -> None:
    host = Host()
    gate = failure("canary", "redis: Error 111 connecting to 127.0.0.1:6379", model=MODEL)
    check = host.gate(gate)
    assert check["status"] == "violation"
    (violation,) = check["triggered"]
    assert violation["rule"] == "telemetry_unreadable"
    assert violation["value"] == "redis: Error 111 connecting to 127.0.0.1:6379"
    assert violation["threshold"] == "readable"
    assert (
        violation["text"] == "telemetry unreadable: redis: Error 111 connecting to 127.0.0.1:6379"
    )


def test_stalled_telemetry_triggers_after_stall_checks() -> None:
    host = Host()  # stall_checks 3
    assert host.gate(healthy(1))["status"] == "ok"
    newest = host.state["newest_id"]
    for stalled in (1, 2):
        check = host.gate(empty_window())
        assert check["status"] == "inconclusive", check
        assert host.state["stalled"] == stalled
    check = host.gate(empty_window())
    assert check["status"] == "violation"
    (violation,) = check["triggered"]
    assert violation["rule"] == "telemetry_stalled"
    assert (violation["value"], violation["threshold"], violation["count"]) == (3, 3, 3)
    assert f"newest {newest}" in violation["text"]
    assert "no new events in 3 checks (limit 3" in violation["text"]


def test_the_same_newest_id_is_a_stall_and_a_newer_one_resets_it() -> None:
    host = Host()
    same = stream_id(1, 1)
    host.gate(hand_gate(1, last_id=same))
    host.gate(hand_gate(2, last_id=same))
    host.gate(hand_gate(3, last_id=stream_id(0, 5)))  # an older id is no progress either
    assert host.state["stalled"] == 2
    assert host.gate(hand_gate(4, last_id=stream_id(4, 1)))["status"] == "ok"
    assert host.state["stalled"] == 0
    assert host.state["newest_id"] == stream_id(4, 1)
    host.gate(hand_gate(5, last_id=None))
    host.gate(hand_gate(6, last_id="not-an-id"))
    assert host.state["stalled"] == 2
    assert rules(host.gate(hand_gate(7, last_id=None))["triggered"]) == ["telemetry_stalled"]


def test_a_stall_is_not_reported_before_its_limit() -> None:
    host = Host(MonitorSettings(model=MODEL, stall_checks=5))
    host.gate(healthy(1))
    for _ in range(4):
        assert host.gate(empty_window())["triggered"] == []
    assert rules(host.gate(empty_window())["triggered"]) == ["telemetry_stalled"]


def test_stream_id_key() -> None:
    assert stream_id_key("1767000000000-12") == (1767000000000, 12)
    assert stream_id_key("2-0") > stream_id_key("1-99")
    for bad in (None, "", "1", "1-", "-1", "a-1", "1-b", 12, "1-2-3"):
        assert stream_id_key(bad) is None


# -- failed probes, inconclusive limit ---------------------------------------------------------


def test_failed_probes_become_cannot_judge_after_stall_checks() -> None:
    host = Host()
    for number in (1, 2):
        check = host.check(None, "UNREACHABLE! ssh: connect to host engine-01 port 22")
        assert check["status"] == "error"
        assert check["reason"] == "UNREACHABLE! ssh: connect to host engine-01 port 22"
        assert (check["triggered"], host.state["unjudged"]) == ([], number)
    check = host.check(None, "UNREACHABLE! ssh: connect to host engine-01 port 22")
    assert check["status"] == "violation"
    (violation,) = check["triggered"]
    assert (violation["rule"], violation["value"], violation["threshold"]) == ("cannot_judge", 3, 3)
    assert violation["count"] == 3
    assert "could not judge the host in 3 checks in a row (limit 3)" in violation["text"]
    assert "UNREACHABLE!" in violation["text"]


def test_a_good_probe_between_failed_ones_resets_the_count() -> None:
    host = Host()
    host.check(None, "timeout")
    host.check(None, "timeout")
    assert host.gate(healthy(1))["status"] == "ok"
    assert host.state["unjudged"] == 0
    host.check(None, "timeout")
    assert host.check(None, "timeout")["status"] == "error"
    assert host.check(None)["status"] == "violation"
    assert "the probe gave no result" in host.state["violations"][-1]["text"]


def test_a_failed_probe_keeps_every_other_count() -> None:
    host = Host()
    host.gate(collapsed(1))
    before = copy.deepcopy(host.state)
    host.check(None, "boom")
    after = host.state
    for key in ("consecutive", "cursor", "newest_id", "stalled", "inconclusive", "baseline"):
        assert after[key] == before[key]


def test_a_config_error_is_a_failed_probe() -> None:
    host = Host(MonitorSettings(model=MODEL, stall_checks=2))
    check = host.check(probe(healthy(1), config_error="unit file unreadable"))
    assert check["status"] == "error"
    assert check["reason"] == "cannot tell the engine's configuration: unit file unreadable"
    assert host.state["baseline"] is None
    check = host.check(probe(healthy(2), config_error="unit file unreadable"))
    assert rules(check["triggered"]) == ["cannot_judge"]


def test_inconclusive_limit_after_inconclusive_checks() -> None:
    host = Host(MonitorSettings(model=MODEL, inconclusive_checks=3))
    for number in (1, 2):
        check = host.gate(too_few(number))
        assert (check["status"], check["triggered"]) == ("inconclusive", [])
    check = host.gate(too_few(3))
    assert check["status"] == "violation"
    (violation,) = check["triggered"]
    assert (violation["rule"], violation["value"], violation["threshold"]) == (
        "inconclusive_limit",
        3,
        3,
    )
    assert violation["text"] == (
        "3 inconclusive checks in a row (limit 3): 150 events < 200 required (canary)"
    )


def test_a_conclusive_check_resets_the_inconclusive_count() -> None:
    host = Host(MonitorSettings(model=MODEL, inconclusive_checks=2))
    host.gate(too_few(1))
    host.gate(healthy(2))
    assert host.state["inconclusive"] == 0
    assert host.gate(too_few(3))["triggered"] == []


# -- ended -------------------------------------------------------------------------------------


@pytest.mark.parametrize(("canary", "shown"), [("nhits", "nhits"), (None, "none")])
def test_a_canary_no_longer_configured_has_ended(canary: str | None, shown: str) -> None:
    host = Host()
    host.gate(collapsed(1))
    check = host.check(probe(collapsed(2), canary=canary))
    assert check["status"] == "ended"
    assert check["triggered"] == []
    assert check["reason"] == (
        f"patchtst is no longer the canary on this host (configured canary: {shown})"
    )
    assert host.state["status"] == ENDED
    assert host.state["violations"] == []


def test_no_activation_record_has_ended() -> None:
    host = Host()
    check = host.check(probe(healthy(1), record=None))
    assert (check["status"], check["triggered"]) == ("ended", [])
    assert check["reason"] == "no activation or promotion of patchtst in the activation log"
    assert host.state["status"] == ENDED
    without_invocation = Host().check(probe(healthy(1), record=activation(invocation="")))
    assert without_invocation["status"] == "ended"


# -- re-baselining -----------------------------------------------------------------------------


def _promotion() -> dict:
    return activation(
        OTHER_INVOCATION,
        event="promotion",
        started_at="2026-01-10T14:00:00.000Z",
        weight=0.5,
        ts="2026-01-10T14:00:02.000Z",
    )


def test_a_newer_record_of_the_running_start_is_the_new_baseline() -> None:
    host = Host()
    host.gate(healthy(1))
    check = host.check(
        probe(
            too_few(2), svc=service(invocation=OTHER_INVOCATION, n_restarts=3), record=_promotion()
        )
    )
    # The new start's first check judges nothing: its window was read from the old cursor.
    assert check["status"] == "ok"
    assert check["reason"].startswith("new baseline: promotion of 2026-01-10T14:00:02.000Z")
    assert check["triggered"] == []
    assert host.state["baseline"] == {
        "event": "promotion",
        "ts": "2026-01-10T14:00:02.000Z",
        "invocation_id": OTHER_INVOCATION,
        "started_at": "2026-01-10T14:00:00.000Z",
        "weight": 0.5,
        "n_restarts": 3,
    }
    assert host.state["cursor"] == "2026-01-10T14:00:00.000Z"
    # The new start is watched from now on: the same start again is fine.
    again = host.check(
        probe(
            healthy(3), svc=service(invocation=OTHER_INVOCATION, n_restarts=3), record=_promotion()
        )
    )
    assert again["status"] == "ok"


def test_a_rebaseline_check_resets_the_cursor_even_when_conclusive() -> None:
    host = Host()
    host.gate(healthy(1))
    check = host.check(
        probe(healthy(2), svc=service(invocation=OTHER_INVOCATION), record=_promotion())
    )
    assert check["triggered"] == []
    assert host.state["baseline"]["invocation_id"] == OTHER_INVOCATION
    assert host.state["cursor"] == "2026-01-10T14:00:00.000Z"


def test_a_rebaseline_check_does_not_trigger_on_the_previous_starts_counts() -> None:
    host = Host()
    assert host.gate(collapsed(1))["status"] == "warning"
    check = host.check(
        probe(collapsed(2), svc=service(invocation=OTHER_INVOCATION), record=_promotion())
    )
    assert host.state["baseline"]["invocation_id"] == OTHER_INVOCATION
    assert check["triggered"] == []


def test_a_newer_record_of_a_start_that_does_not_run_is_a_restart() -> None:
    host = Host()
    host.gate(healthy(1))
    third = "00000000000000000000000000000003"
    check = host.check(probe(healthy(2), svc=service(invocation=third), record=_promotion()))
    assert rules(check["triggered"]) == ["service_restarted"]
    assert host.state["baseline"]["invocation_id"] == INVOCATION


def test_the_first_baseline_is_the_record_even_for_another_start() -> None:
    host = Host()
    host.check(probe(healthy(1), svc=service(invocation=OTHER_INVOCATION, n_restarts=5)))
    assert host.state["baseline"]["invocation_id"] == INVOCATION
    assert host.state["baseline"]["n_restarts"] == 0  # not the same start: its NRestarts unknown


# -- the state ---------------------------------------------------------------------------------


def test_assess_does_not_mutate_its_input() -> None:
    host = Host()
    host.gate(collapsed(1))
    for item, error in (
        (probe(collapsed(2)), None),
        (None, "boom"),
        (probe(healthy(3), canary=None), None),
        (probe(healthy(4), svc=service(running=False)), None),
        (probe(too_few(5)), None),
    ):
        state = host.state
        snapshot = copy.deepcopy(state)
        item_snapshot = copy.deepcopy(item)
        new, _ = assess(state, item, DEFAULT, error)
        assert state == snapshot
        assert item == item_snapshot
        assert new is not state
        assert new["checks"] == state["checks"] + 1


def test_the_state_is_json_and_a_reloaded_state_judges_the_same() -> None:
    gates = [collapsed(1), too_few(2), None, collapsed(3), healthy(4)]
    direct = Host()
    reloaded = Host()
    for gate in gates:
        item = probe(gate) if gate is not None else None
        expected = direct.check(item, "boom" if item is None else None)
        text = json.dumps(reloaded.state, allow_nan=False)
        reloaded.state = json.loads(text)
        assert reloaded.check(item, "boom" if item is None else None) == expected
        assert json.loads(json.dumps(reloaded.state, allow_nan=False)) == reloaded.state
    assert reloaded.state == direct.state
    assert len(direct.state["violations"]) == 1


# -- settings ----------------------------------------------------------------------------------


def test_settings_defaults_and_dict() -> None:
    settings = MonitorSettings(model=MODEL, thresholds={"max_action_share": 0.8})
    assert settings.as_dict() == {
        "model": MODEL,
        "duration_s": 21600.0,
        "interval_s": 30.0,
        "persist_checks": 2,
        "max_hard_disagree": 0.25,
        "redundant_agreement": 0.85,
        "redundant_checks": 10,
        "stall_checks": 3,
        "inconclusive_checks": 10,
        "thresholds": {"max_action_share": 0.8},
    }
    assert json.loads(json.dumps(settings.as_dict())) == settings.as_dict()
    assert {item.name for item in dataclasses.fields(MonitorSettings)} == set(settings.as_dict())
    for share in (0, 1, 0.0, 1.0):
        MonitorSettings(model=MODEL, max_hard_disagree=share, redundant_agreement=share)
    MonitorSettings(model="a", duration_s=1, interval_s=0.5, persist_checks=1)
    MonitorSettings(model="m" * 32)


@pytest.mark.parametrize(
    "changes",
    [
        {"model": ""},
        {"model": "PatchTST"},
        {"model": "9lives"},
        {"model": "patch-tst"},
        {"model": "m" * 33},
        {"model": "patchtst\n"},
        {"model": None},
        {"duration_s": 0},
        {"duration_s": -1.0},
        {"duration_s": math.nan},
        {"duration_s": math.inf},
        {"duration_s": True},
        {"duration_s": "6h"},
        {"interval_s": 0.0},
        {"interval_s": -30},
        {"interval_s": math.nan},
        {"persist_checks": 0},
        {"persist_checks": -1},
        {"persist_checks": True},
        {"persist_checks": 2.0},
        {"persist_checks": "2"},
        {"redundant_checks": 0},
        {"redundant_checks": False},
        {"stall_checks": 0},
        {"inconclusive_checks": 0},
        {"max_hard_disagree": -0.01},
        {"max_hard_disagree": 1.01},
        {"max_hard_disagree": math.nan},
        {"max_hard_disagree": True},
        {"max_hard_disagree": "0.2"},
        {"redundant_agreement": 1.5},
        {"redundant_agreement": math.nan},
        {"thresholds": {"max_actionshare": 0.7}},
        {"thresholds": {"max_action_share": 1.5}},
        {"thresholds": {"min_spread": "0.1"}},
        {"thresholds": {"min_spread": math.nan}},
    ],
    ids=repr,
)
def test_bad_settings_are_refused(changes: dict[str, Any]) -> None:
    values = {"model": MODEL, **changes}
    with pytest.raises(MonitorError):
        MonitorSettings(**values)


def test_an_unknown_threshold_is_named() -> None:
    with pytest.raises(
        MonitorError, match="bad gate thresholds: unknown thresholds: max_actionshare"
    ):
        MonitorSettings(model=MODEL, thresholds={"max_actionshare": 0.7})


# -- what people read --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "0:00:00"),
        (59.9, "0:00:59"),
        (60, "0:01:00"),
        (3723, "1:02:03"),
        (21600, "6:00:00"),
        (360_000, "100:00:00"),
        (-5, "0:00:00"),
    ],
)
def test_format_duration(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


def test_describe_check() -> None:
    host = Host()
    ok = host.gate(healthy(1))
    assert describe_check("e1", ok) == "e1 ok (200 events)"
    warning = host.gate(collapsed(2))
    assert (
        describe_check("e1", warning)
        == "e1 warning (200 events; action collapse: BUY 71.0% > 70.0%)"
    )
    violation = host.gate(collapsed(3))
    assert describe_check("e1", violation) == (
        "e1 violation (200 events; action collapse: BUY 71.0% > 70.0%)"
    )
    inconclusive = host.gate(too_few(4))
    assert describe_check("e1", inconclusive) == (
        "e1 inconclusive (150 events; 150 events < 200 required (canary))"
    )
    error = host.check(None, "host unreachable")
    assert describe_check("e1", error) == "e1 error (host unreachable)"
    ended = host.check(probe(healthy(5), canary=None))
    assert describe_check("e1", ended) == (
        "e1 ended (patchtst is no longer the canary on this host (configured canary: none))"
    )
    # A violation shows what triggered, not every finding.
    both = {
        "status": "violation",
        "events": 7,
        "findings": [{"text": "a"}, {"text": "b"}],
        "triggered": [{"text": "b"}],
    }
    assert describe_check("h", both) == "h violation (7 events; b)"


def test_progress_line() -> None:
    checks = {
        "e1": {"status": "ok", "events": 200, "findings": [], "triggered": []},
        "e2": {"status": "error", "reason": "host unreachable", "events": 0},
    }
    line = progress_line(MODEL, 3723.4, 21600, 7, "2026-01-10T13:02:03.400Z", checks, 1)
    assert line == (
        "monitor patchtst: 1:02:03 elapsed, 4:57:56 left | check 7 at 2026-01-10T13:02:03.400Z: "
        "e1 ok (200 events), e2 error (host unreachable) | violations 1"
    )
    late = progress_line(MODEL, 22000, 21600, 9, "T", {}, 0)
    assert (
        late == "monitor patchtst: 6:06:40 elapsed, 0:00:00 left | check 9 at T: - | violations 0"
    )


def test_prometheus_text_exact() -> None:
    rolled = {
        **start(),
        "baseline": {"invocation_id": INVOCATION, "weight": 0.1},
        "last_check_s": 1767700000.25,
        "checks": 4,
        "violations": [{"rule": "action_collapse"}, {"rule": "flat_predictions"}],
        "status": "rolled_back",
    }
    fresh = {**new_state('we"ird\\host', DEFAULT, STARTED, None)}
    text = prometheus_text(MODEL, {"e1": rolled, 'we"ird\\host': fresh}, 1767700001.5)
    e1 = 'host="e1",model="patchtst"'
    odd = 'host="we\\"ird\\\\host",model="patchtst"'
    # Each family once, HELP and TYPE before all of its samples, every host's sample in it.
    assert text == (
        """\
# HELP qsc_monitor_canary_weight_ratio Weight of the watched canary (activation).
# TYPE qsc_monitor_canary_weight_ratio gauge
qsc_monitor_canary_weight_ratio{E1} 0.1
# HELP qsc_monitor_last_check_timestamp_seconds When the host was last checked.
# TYPE qsc_monitor_last_check_timestamp_seconds gauge
qsc_monitor_last_check_timestamp_seconds{E1} 1767700000.250
# HELP qsc_monitor_checks_total Checks performed in this monitoring window.
# TYPE qsc_monitor_checks_total counter
qsc_monitor_checks_total{E1} 4
qsc_monitor_checks_total{ODD} 0
# HELP qsc_monitor_violations_total Violations that triggered in this window.
# TYPE qsc_monitor_violations_total counter
qsc_monitor_violations_total{E1} 2
qsc_monitor_violations_total{ODD} 0
# HELP qsc_monitor_status The monitoring status of the host (1 for the current one).
# TYPE qsc_monitor_status gauge
qsc_monitor_status{E1,status="monitoring"} 0
qsc_monitor_status{E1,status="rolling_back"} 0
qsc_monitor_status{E1,status="completed"} 0
qsc_monitor_status{E1,status="rolled_back"} 1
qsc_monitor_status{E1,status="rollback_failed"} 0
qsc_monitor_status{E1,status="ended"} 0
qsc_monitor_status{ODD,status="monitoring"} 1
qsc_monitor_status{ODD,status="rolling_back"} 0
qsc_monitor_status{ODD,status="completed"} 0
qsc_monitor_status{ODD,status="rolled_back"} 0
qsc_monitor_status{ODD,status="rollback_failed"} 0
qsc_monitor_status{ODD,status="ended"} 0
# HELP qsc_monitor_exported_timestamp_seconds When this file was written.
# TYPE qsc_monitor_exported_timestamp_seconds gauge
qsc_monitor_exported_timestamp_seconds{model="patchtst"} 1767700001.500
"""
    ).replace("E1", e1).replace("ODD", odd)


def test_prometheus_text_weight_follows_the_baseline_and_newlines_are_escaped() -> None:
    host = Host()
    host.gate(healthy(1))
    host.state["last_check_s"] = 10
    text = prometheus_text(MODEL, {"a\nb": host.state}, 0)
    assert 'qsc_monitor_canary_weight_ratio{host="a\\nb",model="patchtst"} 0.1\n' in text
    assert (
        'qsc_monitor_last_check_timestamp_seconds{host="a\\nb",model="patchtst"} 10.000\n' in text
    )
    assert text.endswith('qsc_monitor_exported_timestamp_seconds{model="patchtst"} 0.000\n')


def test_prometheus_text_without_hosts_keeps_every_family_and_the_model() -> None:
    text = prometheus_text('a"b', {}, 1.0)
    assert text.count("# HELP ") == text.count("# TYPE ") == 6
    assert text.endswith('qsc_monitor_exported_timestamp_seconds{model="a\\"b"} 1.000\n')


def test_the_rollback_reason_names_the_rules_and_fits_a_lease_purpose() -> None:
    violation = {"rule": "action_collapse", "text": "action collapse: BUY 96.6% > 70.0%"}
    two = {"e1": [violation, {"rule": "hard_disagreement"}], "e2": [{"rule": "hold_collapse"}]}
    assert rollback_reason(two, "ab12cd34") == (
        "monitor ab12cd34: e1 action_collapse,hard_disagreement; e2 hold_collapse"
    )
    many = {f"engine-host-{n:03d}.example.com": [violation] for n in range(20)}
    reason = rollback_reason(many, "ab12cd34")
    assert len(reason) == ROLLBACK_REASON_MAX and reason.endswith("...")
    assert len("rollback: " + reason) <= 200
