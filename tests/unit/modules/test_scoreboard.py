"""The scoreboard module through its main() on the reference engine's telemetry in the real
redis-server: GO / WAIT per model with the reports, no scoreboard (a missing stream, Redis
unreachable without its password) and report_only, every option refused, and check mode."""

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

MODULE = "scoreboard"


@pytest.fixture
def board(redis_server, redis_stream) -> dict:
    return {"redis_url": redis_server.url, "stream": redis_stream}


@pytest.mark.parametrize(
    ("args", "message"),
    [*COMMON_REFUSALS, ({"mode": "all"}, "value of mode must be one of: canary, collection")],
)
def test_bad_options_are_refused(board, args, message) -> None:
    assert_refused(MODULE, {**board, **args}, message)


def test_a_verdict_per_model_with_the_reports(board, redis_client, tmp_path) -> None:
    add_events(redis_client, board["stream"], engine_payloads(300))
    result = succeeds(MODULE, {**board, "report_dir": str(tmp_path)})
    assert (result["changed"], result["event_count"], result["exit_code"]) == (False, 300, 0)
    assert result["counts"] == {"GO": 3, "WAIT": 1, "NO-GO": 0}
    assert set(result["models"]) == {"xgb", "lgbm", "nhits", "patchtst"}
    assert json_report(result)["counts"] == result["counts"]


def test_check_mode_writes_no_report(board, redis_client, tmp_path) -> None:
    add_events(redis_client, board["stream"], engine_payloads(300))
    result = succeeds(MODULE, {**board, "report_dir": str(tmp_path / "r")}, check_mode=True)
    assert result["counts"]["GO"] == 3 and "reports" not in result
    assert not (tmp_path / "r").exists()


def test_a_missing_stream_is_no_scoreboard(board) -> None:
    result = fails(MODULE, {**board, "mode": "collection"})
    assert result["msg"] == f"no scoreboard: stream {board['stream']!r} does not exist"
    assert succeeds(MODULE, {**board, "report_only": True})["models"] == {}


def test_redis_unreachable_fails_without_the_password(board) -> None:
    result = fails(MODULE, {**board, "redis_url": unreachable_redis()})
    assert result["msg"].startswith("no scoreboard: Redis at redis://127.0.0.1:")
    assert REDIS_SECRET not in json.dumps(result)
