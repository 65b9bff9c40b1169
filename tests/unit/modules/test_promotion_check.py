"""The promotion_check module through its main() on the reference engine's telemetry in the
real redis-server and a real activation log: GO out of shadow with its decision log, a voting
step blocked until the monitor completed it safe (or an override waives it, with a warning),
uptime blocking, every option refused, and check mode."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.module_harness import fails, json_report, succeeds

MODULE = "promotion_check"
DAY = 86400.0
STEP = {"event": "activation", "model": "xgb", "weight": 0.25, "ts": "2026-01-10T11:00:00.000Z"}


def completed(result: str) -> dict:
    return {"event": "monitoring_completed", "model": "xgb", "result": result, "checks": 12}


@pytest.fixture
def promotion(telemetry, tmp_path) -> dict:
    """300 healthy engine events; the arguments of promoting patchtst out of shadow."""
    telemetry.add(300)
    return {
        **telemetry.args,
        "model": "patchtst",
        "current_role": "shadow",
        "uptime_s": 2 * DAY,
        "activation_log": str(tmp_path / "qsc_canary.jsonl"),
    }


def write_log(promotion: dict, *records: dict) -> None:
    lines = "".join(json.dumps(record) + "\n" for record in records)
    Path(promotion["activation_log"]).write_text(lines)


def test_a_role_other_than_shadow_or_voting_is_refused(promotion) -> None:
    result = fails(MODULE, {**promotion, "current_role": "canary"})
    assert result["msg"] == "value of current_role must be one of: shadow, voting, got: canary"


@pytest.mark.parametrize("option", ["uptime_s", "min_uptime", "strategy"])
def test_an_option_of_the_wrong_type_is_refused(promotion, option) -> None:
    result = fails(MODULE, {**promotion, option: "[a day"})
    assert result["msg"].startswith(f"argument '{option}' is of type str")


def test_model_role_and_uptime_are_required() -> None:
    result = fails(MODULE, {})
    assert "missing required arguments: current_role, model, uptime_s" in result["msg"]


@pytest.mark.parametrize("check_mode", [False, True])
def test_go_out_of_shadow_with_the_decision_log(promotion, tmp_path, check_mode) -> None:
    args = {**promotion, "report_dir": str(tmp_path / "reports"), "strategy": {"to": 0.1}}
    result = succeeds(MODULE, args, check_mode=check_mode)
    assert (result["changed"], result["verdict"], result["blockers"]) == (False, "GO", [])
    assert result["shadow_report"]["status"] == "READY"
    if not check_mode:
        assert json_report(result)["strategy"] == {"to": 0.1}


def test_a_short_uptime_blocks(promotion) -> None:
    result = fails(MODULE, {**promotion, "uptime_s": 3600})
    assert result["msg"] == (
        "promotion of patchtst BLOCKED: service up 3600 s < min_uptime 86400 s on its current "
        "start (not yet stable)"
    )
    assert succeeds(MODULE, {**promotion, "uptime_s": 3600, "min_uptime": 60})["verdict"] == "GO"


def test_an_override_out_of_shadow_is_ignored_with_a_warning(promotion) -> None:
    result = succeeds(MODULE, {**promotion, "monitor_override": "ops said so"})
    assert result["warnings"] == [
        "monitor_override ignored: a promotion out of shadow has no watched canary step"
    ]


def test_a_voting_step_without_a_monitor_result_is_blocked(promotion) -> None:
    voting = {**promotion, "model": "xgb", "current_role": "voting"}
    result = fails(MODULE, voting)
    assert result["msg"].startswith(
        "promotion of xgb BLOCKED: monitor: the activation log has no canary activation or "
        "promotion record of xgb"
    )
    write_log(promotion, STEP)
    assert (
        "monitor: no completed watch of xgb since its canary activation to 0.25"
        in (fails(MODULE, voting)["msg"])
    )


def test_a_voting_step_completed_safe_goes(promotion) -> None:
    write_log(promotion, STEP, completed("safe"))
    voting = {**promotion, "model": "xgb", "current_role": "voting"}
    result = succeeds(MODULE, {**voting, "monitor_override": "not needed"})
    assert result["verdict"] == "GO"
    assert result["warnings"] == ["monitor_override unused: the monitor found the step safe"]


def test_an_override_waives_an_unsafe_result_with_a_warning(promotion) -> None:
    write_log(promotion, STEP, completed("rollback"))
    voting = {**promotion, "model": "xgb", "current_role": "voting"}
    assert "ended 'rollback'" in fails(MODULE, voting)["msg"]
    result = succeeds(MODULE, {**voting, "monitor_override": "incident\n4711 reviewed"})
    assert result["verdict"] == "GO"
    assert result["warnings"][0].startswith("monitor_override waives the monitor's result")


@pytest.mark.parametrize("override", ["", "  \n "])
def test_a_blank_override_is_refused(promotion, override) -> None:
    args = {**promotion, "model": "xgb", "current_role": "voting", "monitor_override": override}
    assert "give the reason the monitor's result is overridden" in fails(MODULE, args)["msg"]


def test_a_misleading_model_is_blocked_on_its_loss_alone(telemetry, tmp_path) -> None:
    """1500 events 100 ms apart (a symbol every 400 ms), judged over 0.3 s: the symbol's next
    tick. Reported (report_only) with the comparison and the decision log's section."""
    telemetry.add(1500, ("SIM_PATCHTST", "misleading"))
    args = {
        **telemetry.args,
        "model": "patchtst",
        "current_role": "shadow",
        "uptime_s": 2 * DAY,
        "compare_horizon": 0.3,
        "compare_alpha": 0.01,
    }
    against = "the ensemble without patchtst (the published side)"
    refused = fails(MODULE, args)
    assert refused["msg"].startswith(
        f"promotion of patchtst BLOCKED: patchtst significantly worse than {against}: wrong in "
    )
    assert refused["msg"].endswith(
        "< alpha 0.01; accuracy {:.1%} vs {:.1%}, horizon 0.3 s".format(
            refused["comparison"]["canary_accuracy"], refused["comparison"]["other_accuracy"]
        )
    )
    report_dir = tmp_path / "reports"
    result = succeeds(MODULE, {**args, "report_only": True, "report_dir": str(report_dir)})
    comparison = result["comparison"]
    assert result["verdict"] == "BLOCKED" and len(result["blockers"]) == 1
    assert comparison["significant_loss"] and comparison["p_loss"] < 0.001
    assert (comparison["alpha"], comparison["horizon_s"]) == (0.01, 0.3)
    assert result["thresholds"]["compare_horizon_s"] == 0.3
    assert comparison["result"]["comparisons"][-1]["kind"] == "counterfactual"
    decision = Path(result["reports"]["markdown"]).read_text()
    assert f"## Comparison with {against}: significantly worse: a hard blocker" in decision


def test_the_default_horizon_has_no_later_price_in_30_s_of_events(promotion) -> None:
    comparison = succeeds(MODULE, promotion)["comparison"]
    assert (comparison["decided"], comparison["significant_loss"]) == (False, False)
    assert comparison["reason"] == "patchtst made no directional call with an outcome"
    assert comparison["horizon_s"] == 300.0


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("compare_alpha", 0.7, "threshold compare_alpha must be in (0, 0.5], got 0.7"),
        ("compare_alpha", 0.0, "threshold compare_alpha must be in (0, 0.5], got 0.0"),
        ("compare_horizon", 0.0, "threshold compare_horizon_s must be >= 0.001 s"),
        ("compare_horizon", float("inf"), "threshold compare_horizon_s must be finite and >= 0"),
        ("weights", {"xgb": 1.0}, "bad baseline weights: unknown model 'patchtst'"),
        ("weights", {"patchtst": 0.5, "xgb": "lots"}, "baseline weight of xgb must be a decimal"),
        ("weights", {"patchtst": 0.5, "xgb": 0.6}, "baseline weights must sum to 1"),
    ],
)
def test_bad_comparison_options_are_refused(promotion, option, value, message) -> None:
    assert message in fails(MODULE, {**promotion, option: value})["msg"]
