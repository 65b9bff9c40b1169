"""The shadow_report module through its main() on the reference engine's telemetry in the real
redis-server: a READY shadow model (check mode the same), a voting model BLOCKED with the
reasons in the message (report_only), the model required. The options it shares with the
other analytics modules: test_analytics_options.py."""

from __future__ import annotations

import pytest

from tests.module_harness import fails, succeeds

MODULE = "shadow_report"
VOTER = "counted as voter: not tagged shadow in 300 of 300 events that report it"


def test_model_is_required(telemetry) -> None:
    assert fails(MODULE, telemetry.args)["msg"] == "missing required arguments: model"


@pytest.mark.parametrize("check_mode", [False, True])
def test_a_shadow_model_is_ready(telemetry, check_mode) -> None:
    telemetry.add(300)
    result = succeeds(MODULE, {**telemetry.args, "model": "patchtst"}, check_mode=check_mode)
    assert (result["changed"], result["status"], result["exit_code"]) == (False, "READY", 0)
    assert result["hard_blockers"] == result["blockers"] == []


def test_a_voting_model_is_blocked_with_its_reasons(telemetry) -> None:
    telemetry.add(300)
    result = fails(MODULE, {**telemetry.args, "model": "xgb"})
    assert result["msg"].startswith(f"shadow model xgb is BLOCKED (300 events): {VOTER}")
    assert result["hard_blockers"] == [VOTER]
    reported = succeeds(MODULE, {**telemetry.args, "model": "xgb", "report_only": True})
    assert (reported["status"], reported["exit_code"]) == ("BLOCKED", 2)


def test_a_reason_is_named_once(telemetry) -> None:
    telemetry.add(300)
    assert fails(MODULE, {**telemetry.args, "model": "xgb"})["msg"].count(VOTER) == 1


def test_a_window_without_the_model_is_blocked(telemetry) -> None:
    telemetry.add(300)
    result = fails(MODULE, {**telemetry.args, "model": "tft"})
    assert result["msg"].startswith("shadow model tft is BLOCKED (300 events): ")
