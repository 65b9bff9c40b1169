"""The scoreboard module through its main() on the reference engine's telemetry in the real
redis-server: GO / WAIT per model (check mode the same), no scoreboard for a missing stream
(report_only), a bad mode refused. The options it shares with the other analytics modules:
test_analytics_options.py."""

from __future__ import annotations

import pytest

from tests.module_harness import fails, succeeds

MODULE = "scoreboard"


def test_a_bad_mode_is_refused(telemetry) -> None:
    result = fails(MODULE, {**telemetry.args, "mode": "all"})
    assert result["msg"] == "value of mode must be one of: canary, collection, got: all"


@pytest.mark.parametrize("check_mode", [False, True])
def test_a_verdict_per_model(telemetry, check_mode) -> None:
    telemetry.add(300)
    result = succeeds(MODULE, telemetry.args, check_mode=check_mode)
    assert (result["changed"], result["event_count"], result["exit_code"]) == (False, 300, 0)
    assert result["counts"] == {"GO": 3, "WAIT": 1, "NO-GO": 0}
    assert set(result["models"]) == {"xgb", "lgbm", "nhits", "patchtst"}


def test_a_missing_stream_is_no_scoreboard(telemetry) -> None:
    result = fails(MODULE, {**telemetry.args, "mode": "collection"})
    assert result["msg"] == f"no scoreboard: stream {telemetry.stream!r} does not exist"
    assert succeeds(MODULE, {**telemetry.args, "report_only": True})["models"] == {}


def test_a_window_without_models_is_no_scoreboard(telemetry) -> None:
    telemetry.add(10)
    result = fails(MODULE, {**telemetry.args, "after": "2026-01-10T13:00:00.000Z"})
    assert result["msg"].startswith("no scoreboard: ")
