"""The feature_sanity module through its main() on the reference engine's telemetry in the real
redis-server: sane features with the reports, flatline features failing with each problem
(warnings passed on, report_only), every option refused, and check mode."""

from __future__ import annotations

import json

import pytest

from tests.module_harness import (
    COMMON_REFUSALS,
    REDIS_SECRET,
    add_events,
    assert_refused,
    engine_payloads,
    fails,
    json_report,
    succeeds,
    unreachable_redis,
)

MODULE = "feature_sanity"
FLATLINE = (("SIM_FEATURES", "flatline"),)


@pytest.fixture
def sanity(redis_server, redis_stream) -> dict:
    return {"redis_url": redis_server.url, "stream": redis_stream}


@pytest.mark.parametrize(("args", "message"), COMMON_REFUSALS)
def test_bad_options_are_refused(sanity, args, message) -> None:
    assert_refused(MODULE, {**sanity, **args}, message)


def test_model_is_not_an_option_here(sanity) -> None:
    assert "Unsupported parameters" in fails(MODULE, {**sanity, "model": "xgb"})["msg"]


def test_sane_features_pass_with_the_reports(sanity, redis_client, tmp_path) -> None:
    add_events(redis_client, sanity["stream"], engine_payloads(300))
    result = succeeds(MODULE, {**sanity, "report_dir": str(tmp_path)})
    assert (result["changed"], result["problems"], result["warnings"]) == (False, [], [])
    assert set(result["features"]) == {"atr_value", "volatility_factor", "rsi_14", "return_1"}
    assert json_report(result)["exit_code"] == 0


def test_flatline_features_fail_naming_each(sanity, redis_client, tmp_path) -> None:
    add_events(redis_client, sanity["stream"], engine_payloads(300, FLATLINE))
    result = fails(MODULE, sanity)
    assert result["msg"].startswith("feature sanity failed (300 events): atr_value: flatline:")
    assert len(result["problems"]) == 4
    assert result["warnings"] == ["duplicate feature vectors: 98.0% of the last 50 events > 50.0%"]
    reports = tmp_path / "r"
    checked = succeeds(
        MODULE, {**sanity, "report_only": True, "report_dir": str(reports)}, check_mode=True
    )
    assert checked["exit_code"] == 2 and not reports.exists()


def test_redis_unreachable_fails_without_the_password(sanity) -> None:
    result = fails(MODULE, {**sanity, "redis_url": unreachable_redis()})
    assert result["msg"].startswith("feature sanity failed (0 events): ")
    assert REDIS_SECRET not in json.dumps(result)
