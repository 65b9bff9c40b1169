"""The quality_gate module through its main() on the reference engine's telemetry in the real
redis-server: PASS with its reports, FAIL with the blockers in the message (and report_only),
too few events, Redis unreachable without its password, every option refused with its
message, and check mode (no report written)."""

from __future__ import annotations

import json

import pytest

from tests.module_harness import (
    COMMON_REFUSALS,
    HOSTILE_NAMES,
    REDIS_SECRET,
    add_events,
    assert_refused,
    engine_payloads,
    fails,
    json_report,
    succeeds,
    unreachable_redis,
)

MODULE = "quality_gate"


@pytest.fixture
def gate(redis_server, redis_stream) -> dict:
    return {"redis_url": redis_server.url, "stream": redis_stream}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        *COMMON_REFUSALS,
        ({"mode": "prod"}, "value of mode must be one of: canary, collection, got: prod"),
        ({"wait": -1}, "wait must be in 0..3600 s, not -1.0"),
        ({"wait": 3601}, "wait must be in 0..3600 s, not 3601.0"),
        ({"wait": float("nan")}, "wait must be in 0..3600 s, not nan"),
    ],
)
def test_bad_options_are_refused(gate, args, message) -> None:
    assert_refused(MODULE, {**gate, **args}, message)


@pytest.mark.parametrize("model", [name for name in HOSTILE_NAMES if name])
def test_a_bad_model_name_is_refused(gate, model) -> None:
    assert_refused(MODULE, {**gate, "model": model}, "not a valid model name (^[a-z][a-z0-9_]")


def test_pass_writes_the_reports(gate, redis_client, tmp_path) -> None:
    add_events(redis_client, gate["stream"], engine_payloads(300))
    result = succeeds(MODULE, {**gate, "report_dir": str(tmp_path / "reports")})
    assert (result["changed"], result["verdict"], result["event_count"]) == (False, "PASS", 300)
    assert json_report(result)["verdict"] == "PASS"


def test_check_mode_judges_and_writes_no_report(gate, redis_client, tmp_path) -> None:
    add_events(redis_client, gate["stream"], engine_payloads(300))
    reports = tmp_path / "reports"
    result = succeeds(MODULE, {**gate, "report_dir": str(reports)}, check_mode=True)
    assert result["verdict"] == "PASS" and "reports" not in result
    assert not reports.exists()


def test_a_collapsed_model_fails_naming_it(gate, redis_client) -> None:
    add_events(redis_client, gate["stream"], engine_payloads(300, (("SIM_XGB", "constant"),)))
    result = fails(MODULE, {**gate, "model": "xgb"})
    assert result["msg"].startswith("quality gate FAIL (canary, model xgb, 300 events): ")
    assert "xgb" in result["msg"] and result["verdict"] == "FAIL"
    reported = succeeds(MODULE, {**gate, "report_only": True})
    assert reported["verdict"] == "FAIL"


def test_too_few_events_fail_in_canary_mode_not_in_collection(gate, redis_client) -> None:
    add_events(redis_client, gate["stream"], engine_payloads(150))
    assert "150 events" in fails(MODULE, gate)["msg"]
    collected = succeeds(MODULE, {**gate, "mode": "collection"})
    assert collected["event_count"] == 150


@pytest.mark.parametrize("after", ["yesterday", "1-0\nXADD"])
def test_a_bad_cutover_fails(gate, after) -> None:
    result = fails(MODULE, {**gate, "after": after})
    assert result["msg"].startswith("quality gate FAIL (canary, every voting model, 0 events): ")
    assert "bad --after" in result["msg"]


def test_redis_unreachable_fails_without_the_password(gate) -> None:
    result = fails(MODULE, {**gate, "redis_url": unreachable_redis()})
    assert "unreachable" in result["msg"] and REDIS_SECRET not in json.dumps(result)
