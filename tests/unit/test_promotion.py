"""Unit tests for model_safety.judgement.promotion (the hard blockers of a promotion) and its
decision log (reports.decision_log_markdown), on windows built like the shadow report's tests."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from typing import Any

import pytest

from model_safety.judgement.promotion import blocked_check, promotion_check, uptime_blockers
from model_safety.judgement.promotion_report import decision_log_markdown
from model_safety.judgement.reports import write_reports
from model_safety.judgement.thresholds import Thresholds
from model_safety.telemetry.events import parse_window
from tests.unit.test_shadow import OPPOSITE, conf_of, healthy, padded, payload, window_of

DAY = 86400.0
NOW = datetime(2026, 1, 11, 9, 30, 0, tzinfo=UTC)
UPTIME_BLOCKER = "service up 3600 s < min_uptime 86400 s on its current start (not yet stable)"
# The baseline of the windows' voting models: voter v and model s.
WEIGHTS = {"v": 0.8, "s": 0.2}
WITH_PATCHTST = {"v": 0.6, "s": 0.2, "patchtst": 0.2}
STRATEGY = {
    "from": "shadow",
    "to": 0.1,
    "ladder": [0.1, 0.25, 0.5, 1.0],
    "allow_jump": False,
    "operator": "alice",
    "host": "engine1",
}


def check(
    events: list[dict[str, Any]] | Any,
    role: str = "shadow",
    *,
    model: str = "s",
    uptime: float = 2 * DAY,
    min_uptime: float = DAY,
    thresholds: Thresholds | None = None,
    weights: dict[str, float] | None = None,
) -> dict[str, Any]:
    window = window_of(events) if isinstance(events, list) else events
    limits = thresholds or Thresholds()
    baseline = WEIGHTS if weights is None else weights
    return promotion_check(window, model, role, limits, uptime, min_uptime, baseline)


def with_malformed(events: list[dict[str, Any]]):
    entries = [(f"{i + 1}-0", json.dumps(e)) for i, e in enumerate(events)]
    return parse_window([*entries, ("999-0", "{")])


def hard_disagreeing(hard: int, n: int = 400, shadow: bool = True) -> list[dict[str, Any]]:
    """The model says the opposite of a BUY/SELL side in the first ``hard`` events."""
    events = []
    for i in range(n):
        side = ("BUY", "SELL")[i % 2] if i < hard else ("BUY", "SELL", "HOLD")[i % 3]
        mine = OPPOSITE[side] if i < hard else side
        events.append(payload(side, mine, conf_of(i), seconds=i, shadow=shadow))
    return events


# -- GO ----------------------------------------------------------------------------------------


def test_healthy_shadow_model_is_go() -> None:
    result = check(healthy())
    assert (result["verdict"], result["blockers"], result["exit_code"]) == ("GO", [], 0)
    assert (result["model"], result["current_role"]) == ("s", "shadow")
    assert (result["uptime_s"], result["min_uptime_s"]) == (2 * DAY, DAY)
    assert result["shadow_report"]["status"] == "READY"
    assert "gate" not in result
    assert result["ensemble"]["payload_p95"] == result["shadow_report"]["payload_p95"]
    assert result["event_count"] == 300 and result["malformed"] == 0
    assert result["window"] == {"first_id": "1700000000000-0", "last_id": "1700000000299-0"}
    assert result["summary"] == "promotion of s (shadow): GO, 0 blockers; 300 events"
    assert json.loads(json.dumps(result, allow_nan=False)) == result


def test_healthy_voting_canary_is_go() -> None:
    result = check(healthy(shadow=False), "voting")
    assert (result["verdict"], result["blockers"], result["exit_code"]) == ("GO", [], 0)
    assert result["gate"]["verdict"] == "PASS"
    assert result["gate"]["model"] == "s" and result["gate"]["mode"] == "canary"
    assert "shadow_report" not in result
    assert result["ensemble"]["consensus"] == {"1/2": pytest.approx(1 / 3), "2/2": 2 / 3 * 1}
    assert json.loads(json.dumps(result, allow_nan=False)) == result


# -- shadow: each blocker alone -------------------------------------------------------------------


def test_shadow_model_counted_as_voter_blocks() -> None:
    events = healthy()
    events[10]["total_models"] = 2
    result = check(events)
    assert result["verdict"] == "BLOCKED" and result["exit_code"] == 2
    assert len(result["blockers"]) == 1
    assert result["blockers"][0].startswith(
        "shadow model counted as voter in 1 events (first 1700000000010-0: "
        "shadow model counted as voter (s): total_models 2"
    )


def test_shadow_model_that_votes_blocks() -> None:
    result = check(healthy(shadow=False), "shadow")
    assert result["blockers"] == [
        "counted as voter: not tagged shadow in 300 of 300 events that report it"
    ]


@pytest.mark.parametrize("role", ["shadow", "voting"])
@pytest.mark.parametrize(("size", "blocked"), [(1499, False), (1500, True)])
def test_payload_p95_edge(role: str, size: int, blocked: bool) -> None:
    result = check(padded(healthy(shadow=role == "shadow"), size), role)
    assert result["ensemble"]["payload_p95"] == size
    assert result["blockers"] == (["payload p95 1500 bytes >= 1500"] if blocked else [])


def test_shadow_hard_disagreement_blocks_above_30_percent() -> None:
    assert check(hard_disagreeing(120))["verdict"] == "GO"  # 30.0 % is not > 30 %
    assert check(hard_disagreeing(124))["blockers"] == ["hard disagreement 31.0% > 30.0%"]


def test_shadow_gates_not_ready_block_with_each_failed_gate() -> None:
    events = [payload(("BUY", "SELL", "HOLD")[i % 3], "HOLD", 0.5, seconds=i) for i in range(300)]
    result = check(events)
    assert result["shadow_report"]["status"] == "NOT_READY"
    assert result["blockers"] == [
        "shadow report NOT_READY: 0 of 4 gates pass, 2 of 3 (calibration deferred) required",
        "action_diversity FAIL: top action 100.0% > 70.0%",
        "confidence_spread FAIL: conf_std 0.000 < 0.050",
        "agreement FAIL: agreement 33.3% < 55.0%",
    ]


def test_shadow_ready_with_one_failed_gate_is_go() -> None:
    thresholds = Thresholds(shadow_min_agreement=0.9)  # agreement 66.7 % fails, 2 of 3 pass
    result = check(healthy(), thresholds=thresholds)
    assert result["shadow_report"]["gates"]["agreement"]["status"] == "FAIL"
    assert result["verdict"] == "GO"


def test_shadow_malformed_empty_and_absent_block() -> None:
    assert check(with_malformed(healthy()))["blockers"] == [
        "window: 1 malformed events (first 999-0: unparsable JSON)"
    ]
    assert check(parse_window([]))["blockers"][0] == "window: empty (no events)"
    absent = check(healthy(), model="patchtst", weights=WITH_PATCHTST)
    assert absent["blockers"][0] == "patchtst is not in the window (no event reports it)"
    assert absent["verdict"] == "BLOCKED"


# -- voting: each blocker alone -------------------------------------------------------------------


def test_voting_gate_fail_blocks_with_every_gate_blocker() -> None:
    events = [
        payload(side, side, 0.5, seconds=i, shadow=False)
        for i, side in enumerate(("BUY", "SELL", "HOLD") * 100)
    ]
    result = check(events, "voting")
    assert result["gate"]["verdict"] == "FAIL"
    assert result["blockers"] == [f"quality gate (canary): {b}" for b in result["gate"]["blockers"]]
    assert "quality gate (canary): s: conf_std 0.000 < 0.050" in result["blockers"]
    assert "quality gate (canary): s: spread p90-p10 0.000 < 0.120" in result["blockers"]


def test_voting_too_few_events_block() -> None:
    result = check(healthy(150, shadow=False), "voting")
    assert result["blockers"] == [
        "quality gate (canary): window: 150 events < 200 required (canary)",
        "quality gate (canary): s: 150 events < 200 required (canary)",
    ]


def test_voting_hard_disagreement_blocks_above_30_percent() -> None:
    assert check(hard_disagreeing(120, shadow=False), "voting")["verdict"] == "GO"
    result = check(hard_disagreeing(124, shadow=False), "voting")
    assert result["gate"]["verdict"] == "PASS"
    assert result["blockers"] == ["s: hard disagreement 31.0% > 30.0%"]


def test_voting_malformed_event_blocks() -> None:
    result = check(with_malformed(healthy(shadow=False)), "voting")
    assert result["malformed"] == 1
    assert result["blockers"] == [
        "quality gate (canary): window: 1 malformed event (first 999-0: unparsable JSON)"
    ]


def test_voting_model_tagged_shadow_blocks() -> None:
    result = check(healthy(), "voting")
    assert result["blockers"] == [
        "s: tagged shadow in 300 of 300 events that report it (a voting canary votes in every "
        "event)"
    ]


def test_voting_model_absent_blocks() -> None:
    result = check(healthy(shadow=False), "voting", model="patchtst", weights=WITH_PATCHTST)
    assert result["blockers"] == [
        "quality gate (canary): patchtst: not in the window (no event reports this model)"
    ]


# -- uptime and arguments -------------------------------------------------------------------------


@pytest.mark.parametrize("role", ["shadow", "voting"])
def test_uptime_below_min_uptime_blocks(role: str) -> None:
    events = healthy(shadow=role == "shadow")
    assert check(events, role, uptime=3600)["blockers"] == [UPTIME_BLOCKER]
    assert check(events, role, uptime=DAY)["verdict"] == "GO"  # exactly min_uptime is stable


def test_uptime_blocker_texts_tell_value_and_threshold_apart() -> None:
    assert uptime_blockers(DAY - 0.5, DAY) == [
        "service up 86399.5 s < min_uptime 86400.0 s on its current start (not yet stable)"
    ]
    assert uptime_blockers(0, 10) == [
        "service up 0 s < min_uptime 10 s on its current start (not yet stable)"
    ]
    assert uptime_blockers(10, 0) == []


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"role": "canary"}, "unknown current_role 'canary' (one of shadow, voting)"),
        ({"role": ""}, "unknown current_role ''"),
        ({"model": "Bad"}, "not a valid model name"),
        ({"uptime": float("nan")}, "uptime_s must be a finite number of seconds >= 0"),
        ({"uptime": -1.0}, "uptime_s must be a finite number of seconds >= 0"),
        ({"min_uptime": float("inf")}, "min_uptime_s must be a finite number of seconds >= 0"),
        ({"uptime": "3600"}, "uptime_s must be a number of seconds"),
        ({"uptime": True}, "uptime_s must be a number of seconds"),
    ],
)
def test_nonsensical_arguments_raise(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        check(healthy(), **kwargs)


def test_blocked_check_puts_the_reason_first_and_keeps_the_uptime_blocker() -> None:
    result = blocked_check("Redis down", "patchtst", "voting", 3600, DAY)
    assert (result["verdict"], result["exit_code"], result["error"]) == ("BLOCKED", 2, "Redis down")
    assert result["blockers"] == ["Redis down", UPTIME_BLOCKER]
    assert (result["model"], result["current_role"]) == ("patchtst", "voting")
    assert result["ensemble"] == {} and result["event_count"] == 0
    bad = blocked_check("bad", "Bad model", "canary", float("nan"), DAY)
    assert (bad["model"], bad["current_role"], bad["uptime_s"]) == (None, None, None)
    assert bad["blockers"] == ["bad"]
    assert json.dumps(bad, allow_nan=False)


# -- the decision log -----------------------------------------------------------------------------


def test_decision_log_of_a_go_from_shadow() -> None:
    result = check(healthy())
    text = decision_log_markdown(result, STRATEGY, NOW)
    lines = text.splitlines()
    assert lines[0] == "# Promotion decision: s shadow -> 0.1"
    for line in (
        "- From: shadow",
        "- To: 0.1",
        "- Ladder: 0.1 -> 0.25 -> 0.5 -> 1",
        "- Allow jump: False",
        "- Operator: alice",
        "- Host: engine1",
        "- Time (UTC): 2026-01-11T09:30:00Z",
        "- Service uptime: 172800 s (required 86400 s)",
        "## Verdict: GO",
        "## Shadow gates: READY (3 pass, 2 of 3 (calibration deferred) required)",
        "| agreement | PASS | 0.667 | 0.55 |",
        "- Consensus: 1/1: 100.0%",
    ):
        assert line in lines, line
    blockers = lines.index("## Blockers")
    assert lines[blockers + 2] == "- none"
    payload_line = next(line for line in lines if line.startswith("- Payload p95: "))
    assert payload_line.endswith("bytes (blocked at >= 1500); max 317 bytes")
    assert "get s at weight 0.1" in text
    assert text.endswith("rollback command.\n")


def test_decision_log_of_a_blocked_canary_step() -> None:
    result = check(hard_disagreeing(124, shadow=False), "voting", uptime=3600)
    strategy = {**STRATEGY, "from": 0.25, "to": 1.0, "allow_jump": True, "time": "2026-01-12"}
    text = decision_log_markdown(result, strategy, NOW)
    lines = text.splitlines()
    assert lines[0] == "# Promotion decision: s 0.25 -> 1"
    assert "- Time (UTC): 2026-01-12" in lines
    assert "## Verdict: BLOCKED" in lines
    assert "- s: hard disagreement 31.0% > 30.0%" in lines
    assert f"- {UPTIME_BLOCKER}" in lines
    assert "## Quality gate (canary): PASS" in lines
    row = next(line for line in lines if line.startswith("| s | voting | 400 |"))
    assert "| 31.0% |" in row and row.endswith("| PASS |")
    assert "Nothing was changed" in text
    assert "-e model=s" in text
    assert "baseline weight" not in text


def test_decision_log_of_the_last_step_and_of_an_error() -> None:
    last = decision_log_markdown(
        check(healthy(shadow=False), "voting"), {**STRATEGY, "from": 0.5, "to": 1.0}, NOW
    )
    assert "the canary drop-in is removed and s votes at its baseline weight" in last
    failed = decision_log_markdown(blocked_check("Redis down", "s", "shadow", 1, 0), {}, NOW)
    assert failed.splitlines()[0] == "# Promotion decision: s shadow -> -"
    assert "- Error: Redis down" in failed
    assert "- Redis down" in failed
    assert "## Shadow gates" not in failed and "## Quality gate" not in failed


def test_decision_log_is_written_atomically_with_the_check(tmp_path) -> None:
    result = {**check(healthy()), "strategy": STRATEGY}
    paths = write_reports(result, "promotion_decision", str(tmp_path), NOW)
    assert paths == {
        "markdown": f"{tmp_path}/promotion_decision_20260111T093000Z.md",
        "json": f"{tmp_path}/promotion_decision_20260111T093000Z.json",
    }
    with open(paths["markdown"], encoding="utf-8") as handle:
        assert handle.read() == decision_log_markdown(result, STRATEGY, NOW)
    with open(paths["json"], encoding="utf-8") as handle:
        assert json.load(handle) == result
    assert os.stat(paths["markdown"]).st_mode & 0o777 == 0o640
    again = write_reports(result, "promotion_decision", str(tmp_path), NOW)
    assert again["markdown"].endswith("promotion_decision_20260111T093000Z_1.md")
