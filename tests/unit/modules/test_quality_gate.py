"""The quality_gate module through its main() on the reference engine's telemetry in the real
redis-server: PASS (check mode the same), FAIL with the blockers in the message (and
report_only), too few events in canary and in collection mode, the wait and the cutover
refused, the events since the unit's current start (since_start) and the report directory
created. The options it shares with the other analytics modules: test_analytics_options.py."""

from __future__ import annotations

import os
import stat
import time
from datetime import datetime
from pathlib import Path

import pytest

from tests.module_harness import EVENT_STEP_MS, EVENTS_START_MS, UNIT, fails, succeeds

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
    assert after["cutover"] == "2026-01-10T12:00:29.950Z"


def started_a_minute_ago(fake_systemd) -> str:
    """Make the fake unit's current start a minute old; the first event index after it."""
    now = time.clock_gettime(time.CLOCK_MONOTONIC)
    fake_systemd.show(ActiveEnterTimestampMonotonic=str(int((now - 60) * 1e6)))
    return (int(time.time() * 1000) - EVENTS_START_MS) // EVENT_STEP_MS - 300


def test_since_start_judges_only_the_events_of_the_current_start(fake_systemd, telemetry) -> None:
    first = started_a_minute_ago(fake_systemd)
    telemetry.add(300, ("SIM_XGB", "constant"))
    telemetry.add(250, first=first)
    assert fails(MODULE, telemetry.args)["verdict"] == "FAIL"  # the newest 500
    result = succeeds(MODULE, {**telemetry.args, "since_start": UNIT})
    assert (result["verdict"], result["event_count"]) == ("PASS", 250)
    cutover = datetime.fromisoformat(result["cutover"])
    assert abs(cutover.timestamp() - (time.time() - 60)) < 5
    assert result["source"]["after"] == result["cutover"]
    shows = [call for call in fake_systemd.calls() if call[:3] == ["systemctl", "show", UNIT]]
    assert len(shows) == 1


def test_without_a_cutover_none_is_returned(telemetry) -> None:
    telemetry.add(300)
    assert succeeds(MODULE, telemetry.args)["cutover"] is None


def test_since_start_is_refused_with_after(fake_systemd, telemetry) -> None:
    result = fails(MODULE, {**telemetry.args, "since_start": UNIT, "after": "1-0"})
    assert result["msg"] == "parameters are mutually exclusive: after|since_start"
    assert fake_systemd.calls() == []


@pytest.mark.parametrize("state", [("inactive", "dead"), ("failed", "failed")])
def test_since_start_is_refused_when_the_unit_is_not_active(fake_systemd, telemetry, state) -> None:
    fake_systemd.show(ActiveState=state[0], SubState=state[1])
    telemetry.add(300)
    result = fails(MODULE, {**telemetry.args, "since_start": UNIT})
    assert result["msg"] == (
        f"cannot gate since the current start: {UNIT} is not active (ActiveState={state[0]}, "
        f"SubState={state[1]}): no start to gate after"
    )
    assert "verdict" not in result


def test_since_start_refuses_a_bad_unit_name(fake_systemd, telemetry) -> None:
    result = fails(MODULE, {**telemetry.args, "since_start": "engine;reboot"})
    assert result["msg"].startswith("cannot gate since the current start: ")
    assert fake_systemd.calls() == []


@pytest.mark.parametrize("check_mode", [False, True])
def test_a_missing_report_dir_is_created_0750(telemetry, tmp_path, check_mode) -> None:
    telemetry.add(300)
    report_dir = tmp_path / "var" / "reports"
    old_umask = os.umask(0o077)
    try:
        result = succeeds(
            MODULE, {**telemetry.args, "report_dir": str(report_dir)}, check_mode=check_mode
        )
    finally:
        os.umask(old_umask)
    if check_mode:
        assert "reports" not in result and not report_dir.parent.exists()
    else:
        assert stat.S_IMODE(report_dir.stat().st_mode) == 0o750
        assert Path(result["reports"]["json"]).parent == report_dir
