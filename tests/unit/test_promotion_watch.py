"""A promotion from a canary step needs the monitor's ``safe`` for that step
(model_safety.monitor.promotion_watch): every case of the pure function over records, the override,
reading a real log in tmp_path, and how the decision reaches the promotion check, its decision
log and the acceptance check of the play (gate_acceptance.promotion_refusals)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from model_safety.activation import log as al
from model_safety.judgement.gate_acceptance import monitor_refusals, promotion_refusals
from model_safety.judgement.promotion import blocked_check, with_monitor
from model_safety.judgement.promotion_report import decision_log_markdown
from model_safety.monitor import promotion_watch as pw

HOW = "override with -e 'monitor_override=\"<reason>\"'"
NOW = datetime(2026, 1, 11, 9, 30, 0, tzinfo=UTC)


def activation(model: str = "patchtst", ts: str = "2026-01-10T12:00:00.000Z") -> dict[str, Any]:
    return {"event": "activation", "ts": ts, "model": model, "weight": 0.1}


def promotion(to: float = 0.25, ts: str = "2026-01-10T20:00:00.000Z") -> dict[str, Any]:
    return {"event": "promotion", "ts": ts, "model": "patchtst", "from": 0.1, "to": to}


def completed(
    result: Any = "safe",
    model: str = "patchtst",
    ts: str = "2026-01-10T18:00:00.000Z",
    **more: Any,
) -> dict[str, Any]:
    record = {"event": "monitoring_completed", "ts": ts, "model": model, "checks": 720}
    if result is not None:
        record["result"] = result
    return {**record, **more}


def started(model: str = "patchtst") -> dict[str, Any]:
    return {"event": "monitoring_started", "ts": "2026-01-10T12:00:05.000Z", "model": model}


# --------------------------------------------------------------------------- monitor_result


def test_safe_after_the_step_lets_it_go_on():
    records = [activation(), started(), completed("safe")]
    result = pw.monitor_result(records, "patchtst")
    assert result["result"] == "safe" and result["refusals"] == []
    assert result["step"] == {
        "event": "activation",
        "action": None,
        "ts": "2026-01-10T12:00:00.000Z",
        "weight": 0.1,
    }
    assert result["completed"] == records[-1]
    assert pw.monitor_result_refusals(records, "patchtst") == []


def test_missing_when_no_watch_completed_since_the_step():
    records = [activation(), started()]
    assert pw.monitor_result_refusals(records, "patchtst") == [
        "monitor: no completed watch of patchtst since its canary activation to 0.1 at "
        "2026-01-10T12:00:00.000Z; watch the step with `model-safety monitor --model patchtst` "
        f"until it completes safe, or {HOW}"
    ]
    assert pw.monitor_result(records, "patchtst")["result"] == "missing"


def test_missing_when_the_log_has_no_step_of_the_model():
    for records in ([], [completed("safe")], [activation("xgb"), completed("safe")]):
        result = pw.monitor_result(records, "patchtst")
        assert (result["result"], result["step"], result["completed"]) == ("missing", None, None)
        (refusal,) = result["refusals"]
        assert refusal.startswith(
            "monitor: the activation log has no canary activation or promotion record of "
            "patchtst, so its current step's start is unknown"
        )
        assert refusal.endswith(HOW)


@pytest.mark.parametrize("found", ["inconclusive", "rolled_back", "ended"])
def test_every_other_result_is_refused_naming_it_and_why(found):
    records = [
        activation(),
        completed(found, missing=["only 120 of 200 events", "agreement not yet decided"]),
    ]
    result = pw.monitor_result(records, "patchtst")
    assert result["result"] == found
    assert result["refusals"] == [
        f"monitor: the watch of patchtst since its canary activation to 0.1 at "
        f"2026-01-10T12:00:00.000Z ended '{found}' at 2026-01-10T18:00:00.000Z after 720 "
        "checks (only 120 of 200 events; agreement not yet decided), not 'safe'; watch the "
        "step with `model-safety monitor --model patchtst` until it completes safe, or "
        f"{HOW}"
    ]


def test_a_rollback_names_its_violations_and_an_end_its_reason():
    rolled = completed("rolled_back", violations=["Action collapse: HOLD=78.3% (>70%)"])
    (refusal,) = pw.monitor_result_refusals([activation(), rolled], "patchtst")
    assert "ended 'rolled_back'" in refusal and "(Action collapse: HOLD=78.3% (>70%))" in refusal
    ended = completed("ended", reason="the canary is gone (promoted by someone else)")
    (refusal,) = pw.monitor_result_refusals([activation(), ended], "patchtst")
    assert "(the canary is gone (promoted by someone else))" in refusal


def test_a_safe_watch_of_an_older_step_does_not_count():
    records = [activation(), completed("safe"), promotion(0.25)]
    (refusal,) = pw.monitor_result_refusals(records, "patchtst")
    assert refusal.startswith(
        "monitor: no completed watch of patchtst since its promotion to 0.25 at "
        "2026-01-10T20:00:00.000Z;"
    )
    # The file's order decides, not the clocks: a safe record after the step counts even
    # when its time is earlier, and a record before the step does not even when it is later.
    late_clock = completed("safe", ts="2027-01-01T00:00:00.000Z")
    assert pw.monitor_result([late_clock, promotion()], "patchtst")["result"] == "missing"
    early_clock = completed("safe", ts="2020-01-01T00:00:00.000Z")
    assert pw.monitor_result([promotion(), early_clock], "patchtst")["result"] == "safe"


def test_other_models_records_are_ignored():
    other_step = [activation(), completed("safe"), activation("xgb")]
    assert pw.monitor_result_refusals(other_step, "patchtst") == []
    other_watch = [activation(), completed("safe", model="xgb")]
    assert pw.monitor_result(other_watch, "patchtst")["result"] == "missing"
    other_unsafe = [activation(), completed("safe"), completed("inconclusive", model="xgb")]
    assert pw.monitor_result_refusals(other_unsafe, "patchtst") == []


def test_the_newest_watch_since_the_step_decides():
    assert pw.monitor_result(
        [activation(), completed("safe"), completed("inconclusive")], "patchtst"
    )["result"] == ("inconclusive")
    assert (
        pw.monitor_result([activation(), completed("inconclusive"), completed("safe")], "patchtst")[
            "result"
        ]
        == "safe"
    )


def test_a_record_without_a_usable_result_is_refused_and_junk_is_skipped():
    result = pw.monitor_result([activation(), completed(None)], "patchtst")
    assert result["result"] == "no result (None)"
    assert "ended 'no result (None)'" in result["refusals"][0]
    odd = pw.monitor_result([activation(), completed("SAFE\n" + "x" * 300)], "patchtst")
    assert odd["result"].startswith("SAFE xxx") and len(odd["result"]) == 120
    assert odd["refusals"]
    records = [activation(), "not a record", None, completed("safe")]
    assert pw.monitor_result_refusals(records, "patchtst") == []


# --------------------------------------------------------------------------- the override


def test_the_override_is_one_line_of_at_most_200_characters_and_not_blank():
    assert pw.normalise_override(None) is None
    assert pw.normalise_override("  watched\n by hand\t(INC-1)  ") == "watched by hand (INC-1)"
    long = pw.normalise_override("x" * 500)
    assert long is not None and len(long) == 200 and long.endswith("...")
    for blank in ("", "  \n\t", "\x00"):
        with pytest.raises(ValueError, match="monitor_override must not be blank"):
            pw.normalise_override(blank)
    with pytest.raises(ValueError, match="monitor_override must be a string"):
        pw.normalise_override(5)


def test_decide_waives_only_with_an_override_and_says_so():
    missing = pw.monitor_result([activation()], "patchtst")
    blocked = pw.decide(missing, None)
    assert blocked["blockers"] == missing["refusals"] and blocked["override"] is None
    assert blocked["record"] == {"monitor_result": "missing"}
    assert blocked["summary"] == "monitor result missing, not safe: blocked"

    waived = pw.decide(missing, "watched by hand")
    assert waived["blockers"] == [] and waived["refusals"] == missing["refusals"]
    assert waived["override"] == {"reason": "watched by hand", "found": "missing"}
    assert waived["record"] == {
        "monitor_result": "missing",
        "monitor_override": {"reason": "watched by hand", "found": "missing"},
    }
    assert waived["summary"] == "monitor result missing, OVERRIDDEN with monitor_override: " + (
        "watched by hand"
    )
    assert waived["override_unused"] is False

    safe = pw.monitor_result([activation(), completed("safe")], "patchtst")
    unused = pw.decide(safe, "just in case")
    assert unused["blockers"] == [] and unused["override"] is None
    assert unused["override_unused"] is True
    assert unused["record"] == {"monitor_result": "safe"}
    assert unused["summary"] == "monitor result safe (completed 2026-01-10T18:00:00.000Z)"


# --------------------------------------------------------------------------- the log


@pytest.fixture
def log(tmp_path) -> str:
    return str(tmp_path / "quantum" / "qsc_canary.jsonl")


def test_read_from_a_real_log(log):
    assert pw.read_monitor_result(log, "patchtst")["result"] == "missing"  # no log yet
    for record in (activation(), started(), completed("inconclusive")):
        al.append_record(log, record)
    result = pw.check_monitor(log, "patchtst")
    assert result["result"] == "inconclusive" and len(result["blockers"]) == 1
    assert result["log"] == log and result["log_problems"] == []
    al.append_record(log, completed("safe"))
    assert pw.check_monitor(log, "patchtst")["blockers"] == []


def test_a_torn_last_line_is_unreadable_and_an_old_one_counts_as_no_record(log):
    al.append_record(log, activation())
    with open(log, "a", encoding="ascii") as handle:
        handle.write('{"event":"monitoring_completed","model":"patchtst","res')
    result = pw.check_monitor(log, "patchtst")
    assert result["result"] == "unreadable"
    (refusal,) = result["blockers"]
    assert refusal.startswith("monitor: cannot tell the monitor's result of patchtst: ")
    assert "ends in a torn line" in refusal and refusal.endswith(HOW)
    waived = pw.check_monitor(log, "patchtst", "log repaired by hand")
    assert waived["override"] == {"reason": "log repaired by hand", "found": "unreadable"}

    al.append_record(log, completed("safe"))  # ends the torn line first
    result = pw.check_monitor(log, "patchtst")
    assert result["result"] == "safe" and result["blockers"] == []
    assert len(result["log_problems"]) == 1 and "line 2" in result["log_problems"][0]


def test_a_blank_override_fails_before_the_log_is_read(tmp_path):
    with pytest.raises(ValueError, match="must not be blank"):
        pw.check_monitor(str(tmp_path / "none" / "log.jsonl"), "patchtst", " ")


# --------------------------------------------------------------------------- the check


def test_the_monitor_blockers_block_the_check_and_the_summary_counts_them():
    check = blocked_check("placeholder", "patchtst", "voting", 100.0, 10.0)
    check = {**check, "blockers": []}
    monitor = pw.decide(pw.monitor_result([activation()], "patchtst"), None)
    blocked = with_monitor(check, monitor)
    assert blocked["verdict"] == "BLOCKED" and blocked["exit_code"] == 2
    assert blocked["blockers"] == monitor["refusals"] and blocked["monitor"] is monitor
    assert blocked["summary"].startswith("promotion of patchtst (voting): BLOCKED, 1 blocker;")
    waived = with_monitor(check, pw.decide(monitor, "watched by hand"))
    assert (waived["verdict"], waived["blockers"], waived["exit_code"]) == ("GO", [], 0)


def test_the_play_accepts_only_a_safe_or_overridden_watch():
    voting = {"verdict": "GO", "current_role": "voting"}
    assert monitor_refusals(voting) == [
        "the promotion check shows no monitor result for the canary's current step"
    ]
    safe = pw.decide(pw.monitor_result([activation(), completed()], "patchtst"), None)
    assert monitor_refusals({**voting, "monitor": safe}) == []
    missing = pw.decide(pw.monitor_result([activation()], "patchtst"), None)
    assert monitor_refusals({**voting, "monitor": missing}) == [
        "the monitor's result for the canary's current step is 'missing', not 'safe', and no "
        "monitor_override waived it"
    ]
    waived = pw.decide(pw.monitor_result([activation()], "patchtst"), "watched by hand")
    assert monitor_refusals({**voting, "monitor": waived}) == []
    blank = {**waived, "override": {"reason": " ", "found": "missing"}}
    assert monitor_refusals({**voting, "monitor": blank}) != []
    forged = {**missing, "result": "safe"}  # refusals left: not the safe it claims
    assert monitor_refusals({**voting, "monitor": forged}) != []


def test_promotion_refusals_ask_for_the_monitor_from_a_canary_step_only():
    check = {"verdict": "GO", "model": "patchtst", "thresholds": None}
    shadow = promotion_refusals({**check, "current_role": "shadow"}, "patchtst", "shadow")
    assert not any("monitor" in refusal for refusal in shadow)
    voting = promotion_refusals({**check, "current_role": "voting"}, "patchtst", "voting")
    assert voting[-1] == "the promotion check shows no monitor result for the canary's current step"


def test_the_decision_log_shows_the_watch_and_the_override():
    check = {**blocked_check("placeholder", "patchtst", "voting", 100.0, 10.0), "blockers": []}
    check.pop("error")
    records = [
        {**activation(), "action": "canary_activated"},
        completed("inconclusive", missing=["too few events"], window_start="2026-01-10T12:00Z"),
    ]
    monitor = pw.decide(pw.monitor_result(records, "patchtst"), "watched by hand")
    text = decision_log_markdown(with_monitor(check, monitor), {"from": 0.1, "to": 0.25}, NOW)
    lines = text.splitlines()
    assert "## Verdict: GO" in lines
    assert "## Monitor: inconclusive" in lines
    assert "- Current step: canary_activated at 0.1, 2026-01-10T12:00:00.000Z" in lines
    assert (
        "- Watch completed: 2026-01-10T18:00:00.000Z, 720 checks, window start 2026-01-10T12:00Z"
        in lines
    )
    assert "- OVERRIDDEN (monitor_override): watched by hand (found: inconclusive)" in lines
    assert any(line.startswith("- Not safe: monitor: the watch of patchtst") for line in lines)
    blocked = decision_log_markdown(
        with_monitor(check, pw.decide(pw.monitor_result([], "patchtst"), None)), {}, NOW
    )
    assert "## Verdict: BLOCKED" in blocked and "## Monitor: missing" in blocked
    assert "- Current step: no activation or promotion record of the model" in blocked
    assert "- Watch completed: none since the current step began" in blocked
    assert "OVERRIDDEN" not in blocked
