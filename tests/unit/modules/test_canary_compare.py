"""The canary_compare module through its main() on the reference engine's telemetry in the real
redis-server (10 events a second, ENGINE_SEED 11, so every figure is fixed): a healthy canary
(check mode the same), a contrarian one significantly worse (reported; a failure only with
fail_on_worse, never with report_only), a window without outcomes (not decided, no failure),
since_activation and its refusals, the reports, and every option refused before Redis is
read."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from model_safety.activation import log as al
from tests.module_harness import (
    EVENTS_START,
    HOSTILE_NAMES,
    engine_payloads,
    fails,
    fails_without_the_password,
    json_report,
    stream_id,
    succeeds,
    unreachable_redis,
)

MODULE = "canary_compare"
CONTRARIAN = ("SIM_PATCHTST", "contrarian")


def started_at(seconds: float) -> str:
    """The UTC time ``seconds`` after the first event, as the activation log writes it."""
    return (EVENTS_START + timedelta(seconds=seconds)).isoformat().replace("+00:00", "Z")


def compare_args(telemetry, **more: Any) -> dict[str, Any]:
    return {**telemetry.args, "model": "patchtst", "horizon": 1.0, "count": 1000, **more}


@pytest.mark.parametrize("check_mode", [False, True])
def test_a_healthy_canary_is_compared_and_not_worse(telemetry, tmp_path, check_mode) -> None:
    telemetry.add(600)
    args = compare_args(telemetry, report_dir=str(tmp_path / "reports"), fail_on_worse=True)
    result = succeeds(MODULE, args, check_mode=check_mode)
    assert (result["changed"], result["decided"], result["exit_code"]) == (False, True, 0)
    assert (result["events"], result["events_with_outcome"], result["late_outcomes"]) == (
        600,
        588,
        0,
    )
    assert result["worse_than_ensemble_without"] is False
    assert result["canary_worse_than"] == []
    assert result["summary"] == (
        "patchtst: 61.4% right of 464 calls (56.9% - 65.7%), horizon 1 s; against the "
        "ensemble without patchtst (the published side): wrong in 41 of 69 disagreements "
        "(59.4%, allowed 60.0%), p 0.59: not significantly worse"
    )
    assert result["canary_role"] == "shadow"  # the lab default: patchtst in shadow
    assert result["loss_check"]["significant_loss"] is False
    assert [c["other"] for c in result["comparisons"]] == [
        "xgb",
        "lgbm",
        "nhits",
        "ensemble",
        "ensemble without patchtst",
    ]
    if check_mode:
        assert "reports" not in result and not (tmp_path / "reports").exists()
    else:
        assert json_report(result)["summary"] == result["summary"]
        markdown = Path(result["reports"]["markdown"])
        assert markdown.name.startswith("compare_") and markdown.suffix == ".md"
        assert "## Paired comparison: `patchtst` against the baseline" in markdown.read_text()


def test_a_worse_canary_is_reported_and_fails_only_with_fail_on_worse(telemetry) -> None:
    telemetry.add(600, CONTRARIAN)
    reported = succeeds(MODULE, compare_args(telemetry))
    assert reported["worse_than_ensemble_without"] is True
    assert reported["canary_worse_than"] == [
        "xgb",
        "lgbm",
        "nhits",
        "ensemble",
        "ensemble without patchtst",
    ]
    failed = fails(MODULE, compare_args(telemetry, fail_on_worse=True))
    assert failed["msg"] == (
        "patchtst significantly worse than the ensemble without patchtst (the published side): "
        "wrong in 282 of the 411 calls where they disagree (b 129 canary right, c 282 canary "
        "wrong: 68.6% > 60.0%), one-sided p 0.000184 < alpha 0.05; accuracy 33.3% vs 66.3%, "
        "horizon 1 s"
    )
    assert failed["comparisons"] == reported["comparisons"]
    only = succeeds(MODULE, compare_args(telemetry, fail_on_worse=True, report_only=True))
    assert only["worse_than_ensemble_without"] is True


def test_no_outcome_yet_is_not_decided_and_never_a_failure(telemetry) -> None:
    telemetry.add(300, CONTRARIAN)  # 30 s of events, a 300 s horizon
    result = succeeds(MODULE, compare_args(telemetry, horizon=300.0, fail_on_worse=True))
    assert (result["decided"], result["events_with_outcome"]) == (False, 0)
    assert result["reason"] == "patchtst made no directional call with an outcome"
    assert result["summary"] == (
        "patchtst: not decided: patchtst made no directional call with an outcome"
    )


def test_a_stall_gives_late_outcomes(telemetry) -> None:
    # 600 events; the engine stalls 270 s after the first 300 (their times and ids move on).
    payloads = [json.loads(text) for text in engine_payloads(600)]
    for index, payload in enumerate(payloads):
        stalled = 270 if index >= 300 else 0
        payload["timestamp"] = started_at(index / 10 + stalled)
        entry = {"payload": json.dumps(payload)}
        telemetry.client.xadd(telemetry.stream, entry, id=stream_id(index + stalled * 10))
    result = succeeds(MODULE, compare_args(telemetry, max_lag=2.0))
    assert result["max_lag_s"] == 2.0
    # Four symbols in turn: a symbol's later price is 1.2 s on (0.2 s past the horizon), so
    # the last 1.2 s before the stall (12 events) only see prices after it: late. The last 12
    # events of all have no later price yet.
    assert (result["events"], result["late_outcomes"], result["events_with_outcome"]) == (
        600,
        12,
        576,
    )


def test_since_activation_reads_from_the_activation(telemetry, tmp_path) -> None:
    telemetry.add(600)
    log = str(tmp_path / "qsc_canary.jsonl")
    al.append_record(log, {"event": "shadow", "model": "patchtst", "started_at": started_at(0)})
    al.append_record(
        log, {"event": "activation", "model": "patchtst", "started_at": started_at(29.95)}
    )
    result = succeeds(MODULE, compare_args(telemetry, since_activation=True, activation_log=log))
    assert result["events"] == 300  # 30.0 s .. 59.9 s
    assert result["activation"]["start"] == started_at(29.95)
    assert result["activation"]["record"]["action"] == "canary_activated"
    assert result["source"]["after"] == started_at(29.95)


def test_since_activation_refusals(telemetry, tmp_path) -> None:
    telemetry.add(10)
    log = str(tmp_path / "qsc_canary.jsonl")
    args = compare_args(telemetry, since_activation=True, activation_log=log)
    assert fails(MODULE, args)["msg"].startswith(
        f"cannot compare patchtst: no activation log at {log}"
    )
    al.append_record(log, {"event": "activation", "model": "nhits", "started_at": started_at(0)})
    assert fails(MODULE, args)["msg"] == (
        f"cannot compare patchtst: {log} has no canary_activated, shadow_activated, "
        "promotion_step record of patchtst: it was never activated on this host "
        "(give --after with the time yourself)"
    )
    both = {**args, "after": started_at(0)}
    assert fails(MODULE, both)["msg"] == "since_activation and after are mutually exclusive"
    relative = {**args, "activation_log": "qsc_canary.jsonl"}
    assert fails(MODULE, relative)["msg"].startswith(
        "cannot compare patchtst: the log path 'qsc_canary.jsonl' "
    )


def test_after_with_since_activation_false_is_fine(telemetry) -> None:
    telemetry.add(600)
    result = succeeds(
        MODULE, compare_args(telemetry, after=started_at(29.95), since_activation=False)
    )
    assert result["events"] == 300


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({"horizon": 0.0}, "horizon must be a finite number of seconds > 0, got 0.0"),
        ({"horizon": float("inf")}, "horizon must be a finite number of seconds > 0"),
        ({"max_lag": -1.0}, "max_lag must be a finite number of seconds >= 0, got -1.0"),
        ({"max_lag": float("nan")}, "max_lag must be a finite number of seconds >= 0"),
        ({"alpha": 1.0}, "alpha must be in (0, 1), got 1.0"),
        ({"alpha": 0.0}, "alpha must be in (0, 1), got 0.0"),
        ({"weights": {"xgb": 0.5, "lgbm": 0.6, "patchtst": 0.1}}, "baseline weights must sum"),
        ({"weights": {"xgb": 0.5, "lgbm": 0.5}}, "unknown model 'patchtst': not in the baseline"),
        ({"weights": {"xgb": "half", "patchtst": 0.5}}, "baseline weight of xgb"),
        ({"weights": {"../x": 0.5, "patchtst": 0.5}}, "not a valid model name: '../x'"),
        ({"count": 0}, "count must be at least 1, not 0"),
    ],
)
def test_bad_options_fail_before_redis_is_read(args, message) -> None:
    result = fails_without_the_password(
        MODULE, {"model": "patchtst", "redis_url": unreachable_redis(), **args}
    )
    assert message in result["msg"], result["msg"]
    assert "unreachable" not in result["msg"]


@pytest.mark.parametrize("model", [name for name in HOSTILE_NAMES if name])
def test_a_bad_model_name_is_refused(model) -> None:
    result = fails_without_the_password(MODULE, {"model": model, "redis_url": unreachable_redis()})
    assert result["msg"] == f"not a valid model name (^[a-z][a-z0-9_]{{0,31}}$): {model!r}"


def test_the_model_is_required(telemetry) -> None:
    assert fails(MODULE, telemetry.args)["msg"] == "missing required arguments: model"


def test_unreachable_redis_fails_without_the_password() -> None:
    args = {"model": "patchtst", "redis_url": unreachable_redis()}
    result = fails_without_the_password(MODULE, args)
    assert result["msg"].startswith("cannot compare patchtst: ")
    assert (result["exit_code"], result["decided"], result["worse_than_ensemble_without"]) == (
        2,
        False,
        False,
    )


def test_a_voting_model_without_a_weight_fails(telemetry) -> None:
    telemetry.add(100)
    args = compare_args(telemetry, weights={"xgb": 0.5, "patchtst": 0.5})
    assert fails(MODULE, args)["msg"] == (
        "cannot compare patchtst: no baseline weight for voting model 'lgbm'"
    )


def test_a_report_that_cannot_be_written_fails(telemetry, tmp_path) -> None:
    telemetry.add(100)
    blocker = tmp_path / "file"
    blocker.write_text("")
    result = fails(MODULE, compare_args(telemetry, report_dir=str(blocker / "reports")))
    assert result["msg"].startswith(f"cannot write the reports to {blocker / 'reports'}")
    assert json.dumps(result["summary"])


def test_a_voting_canary_is_judged_against_the_vote_without_it(telemetry) -> None:
    telemetry.add(600, ("PATCHTST_SHADOW_ONLY", "false"), CONTRARIAN)
    result = succeeds(MODULE, compare_args(telemetry))
    assert result["canary_role"] == "voting"
    loss = result["loss_check"]
    assert loss["against"] == "the ensemble without patchtst"
    counterfactual = result["comparisons"][-1]
    assert (loss["b"], loss["c"]) == (counterfactual["b"], counterfactual["c"])
    assert loss["significant_loss"] is True and result["worse_than_ensemble_without"] is True


def test_max_loss_share_is_the_loss_allowed(telemetry) -> None:
    telemetry.add(600, CONTRARIAN)  # loses 68.6 % of its disagreements
    result = succeeds(MODULE, compare_args(telemetry, max_loss_share=0.7, fail_on_worse=True))
    assert result["loss_check"]["max_loss_share"] == 0.7
    assert result["worse_than_ensemble_without"] is False


@pytest.mark.parametrize("share", [0.4, 1.0, float("nan")])
def test_a_bad_max_loss_share_is_refused(share) -> None:
    args = {"model": "patchtst", "redis_url": unreachable_redis(), "max_loss_share": share}
    result = fails_without_the_password(MODULE, args)
    assert "threshold compare_max_loss_share must be" in result["msg"], result["msg"]
