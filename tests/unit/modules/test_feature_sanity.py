"""The feature_sanity module through its main() on the reference engine's telemetry in the real
redis-server: sane features (check mode the same), flatline features failing with each problem
and the duplicate warning passed on (report_only), no model option. The options it shares with
the other analytics modules: test_analytics_options.py."""

from __future__ import annotations

import pytest

from tests.module_harness import fails, succeeds

MODULE = "feature_sanity"
FEATURES = {"atr_value", "volatility_factor", "rsi_14", "return_1"}
DUPLICATES = "duplicate feature vectors: 98.0% of the last 50 events > 50.0%"


def test_model_is_not_an_option_here(telemetry) -> None:
    result = fails(MODULE, {**telemetry.args, "model": "xgb"})
    assert result["msg"].startswith("Unsupported parameters for (basic.py) module: model.")


@pytest.mark.parametrize("check_mode", [False, True])
def test_sane_features_pass(telemetry, check_mode) -> None:
    telemetry.add(300)
    result = succeeds(MODULE, telemetry.args, check_mode=check_mode)
    assert (result["changed"], result["problems"], result["warnings"]) == (False, [], [])
    assert set(result["features"]) == FEATURES


def test_flatline_features_fail_naming_each(telemetry) -> None:
    telemetry.add(300, ("SIM_FEATURES", "flatline"))
    result = fails(MODULE, telemetry.args)
    assert result["msg"].startswith("feature sanity failed (300 events): atr_value: flatline:")
    assert [problem.split(":")[0] for problem in result["problems"]] == sorted(
        FEATURES, key=["atr_value", "volatility_factor", "rsi_14", "return_1"].index
    )
    assert result["warnings"] == [DUPLICATES]
    reported = succeeds(MODULE, {**telemetry.args, "report_only": True})
    assert (reported["exit_code"], reported["warnings"]) == (2, [DUPLICATES])


def test_no_events_fail(telemetry) -> None:
    assert fails(MODULE, telemetry.args)["msg"].startswith("feature sanity failed (0 events): ")
