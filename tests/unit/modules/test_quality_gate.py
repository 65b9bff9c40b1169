"""The quality_gate module through its main() on the reference engine's telemetry in the real
redis-server: PASS (check mode the same), FAIL with the blockers in the message (and
report_only), too few events in canary and in collection mode, the wait and the cutover
refused. The options it shares with the other analytics modules: test_analytics_options.py."""

from __future__ import annotations

import pytest

from tests.module_harness import fails, succeeds

MODULE = "quality_gate"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({"mode": "prod"}, "value of mode must be one of: canary, collection, got: prod"),
        ({"wait": -1}, "wait must be in 0..3600 s, not -1.0"),
        ({"wait": 3601}, "wait must be in 0..3600 s, not 3601.0"),
        ({"wait": float("nan")}, "wait must be in 0..3600 s, not nan"),
    ],
)
def test_a_bad_mode_or_wait_is_refused(telemetry, args, message) -> None:
    assert fails(MODULE, {**telemetry.args, **args})["msg"] == message


@pytest.mark.parametrize("check_mode", [False, True])
def test_healthy_telemetry_passes(telemetry, check_mode) -> None:
    telemetry.add(300)
    result = succeeds(MODULE, telemetry.args, check_mode=check_mode)
    assert (result["changed"], result["verdict"], result["event_count"]) == (False, "PASS", 300)
    assert result["blockers"] == []


def test_a_constant_model_fails_naming_it(telemetry) -> None:
    telemetry.add(300, ("SIM_XGB", "constant"))
    result = fails(MODULE, {**telemetry.args, "model": "xgb"})
    assert result["msg"].startswith("quality gate FAIL (canary, model xgb, 300 events): xgb")
    assert result["verdict"] == "FAIL" and result["blockers"]
    assert succeeds(MODULE, {**telemetry.args, "report_only": True})["verdict"] == "FAIL"


def test_too_few_events_fail_in_canary_mode_only(telemetry) -> None:
    telemetry.add(150)
    assert "(canary, every voting model, 150 events)" in fails(MODULE, telemetry.args)["msg"]
    collected = succeeds(MODULE, {**telemetry.args, "mode": "collection"})
    assert collected["event_count"] == 150 and collected["verdict"] != "PASS"


@pytest.mark.parametrize("after", ["yesterday", "1-0\nXADD"])
def test_a_bad_cutover_fails(telemetry, after) -> None:
    result = fails(MODULE, {**telemetry.args, "after": after})
    assert result["msg"].startswith(
        "quality gate FAIL (canary, every voting model, 0 events): bad --after: "
    )


def test_a_cutover_judges_only_the_events_after_it(telemetry) -> None:
    telemetry.add(300, ("SIM_XGB", "constant"))
    telemetry.add(200, first=300)
    assert fails(MODULE, telemetry.args)["verdict"] == "FAIL"  # the newest 500: all
    after = succeeds(MODULE, {**telemetry.args, "after": "2026-01-10T12:00:29.950Z"})
    assert (after["verdict"], after["event_count"]) == ("PASS", 200)
