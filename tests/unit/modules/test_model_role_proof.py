"""The model_role_proof module through its main() on the reference engine's telemetry in the
real redis-server and a real SQLite trade log: a shadow and a voting role proven, a wrong role
failing with its reasons, the plan of a proof, bad options refused, Redis unreachable without
its password, and check mode (read-only: the same proof)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from tests.module_harness import (
    HOSTILE_NAMES,
    fails,
    fails_without_the_password,
    stream_id,
    succeeds,
    unreachable_redis,
)

MODULE = "model_role_proof"
CUTOVER = stream_id(99)  # the role changed after event 99 (12:00:09.900)


@pytest.fixture
def proof(telemetry) -> dict:
    """300 engine events (patchtst in shadow, xgb voting); the arguments of proving patchtst
    shadow after CUTOVER without a trade log."""
    telemetry.add(300)
    return {
        **telemetry.args,
        "model": "patchtst",
        "role": "shadow",
        "after": CUTOVER,
        "db_path": None,
        "timeout": 1,
    }


def trade_log(path: Path, *rows: tuple[str, str]) -> str:
    """A trade log with ``(created_at, model_source)`` rows."""
    with sqlite3.connect(path) as connection:
        connection.execute(
            "CREATE TABLE trade_intents "
            "(id INTEGER PRIMARY KEY, created_at TEXT, model_source TEXT)"
        )
        connection.executemany(
            "INSERT INTO trade_intents (created_at, model_source) VALUES (?, ?)", rows
        )
    connection.close()
    return str(path)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        *[
            ({"model": name}, "role proof impossible: not a valid model name")
            for name in HOSTILE_NAMES
        ],
        ({"after": "yesterday"}, "role proof impossible: "),
        ({"min_events": 0}, "role proof impossible: min_events"),
        ({"timeout": -1}, "role proof impossible: timeout must be in 0.."),
        ({"stream": "a\nb"}, "role proof impossible: not a valid stream name"),
    ],
)
def test_bad_options_are_refused(proof, args, message) -> None:
    assert fails(MODULE, {**proof, **args})["msg"].startswith(message)


def test_the_spec_refuses_a_bad_role_and_a_missing_cutover(proof) -> None:
    result = fails(MODULE, {**proof, "role": "canary"})
    assert "value of role must be one of: voting, shadow, got: canary" in result["msg"]
    without_cutover = {key: value for key, value in proof.items() if key != "after"}
    assert "missing required arguments: after" in fails(MODULE, without_cutover)["msg"]


@pytest.mark.parametrize("check_mode", [False, True])
def test_a_shadow_role_is_proven(proof, check_mode) -> None:
    result = succeeds(MODULE, proof, check_mode=check_mode)
    assert (result["changed"], result["proven"], result["reasons"]) == (False, True, [])
    assert result["first_id"] == stream_id(100) and result["events"] >= 20  # min_events


def test_a_voting_role_is_proven_with_the_trade_log(proof, tmp_path) -> None:
    db = trade_log(
        tmp_path / "trades.db",
        ("2026-01-10T12:00:05.000Z", "xgb,lgbm"),  # before the cutover: not counted
        ("2026-01-10T12:00:20.000Z", "lgbm, xgb"),
    )
    result = succeeds(MODULE, {**proof, "model": "xgb", "role": "voting", "db_path": db})
    assert (result["proven"], result["rows"]) == (True, 1)


def test_a_wrong_role_fails_with_its_reasons(proof) -> None:
    result = fails(MODULE, {**proof, "role": "voting"})
    assert result["msg"].startswith(
        f"patchtst is not proven voting (stream {proof['stream']}; 0 events, 0 rows,"
    )
    assert result["msg"].endswith(
        f"first {stream_id(100)}: patchtst has the shadow flag, expected voting"
    )


def test_a_missing_trade_log_fails(proof, tmp_path) -> None:
    missing = tmp_path / "missing.db"
    result = fails(MODULE, {**proof, "model": "xgb", "role": "voting", "db_path": str(missing)})
    assert f"trade log {missing} does not exist" in result["msg"]


def test_the_plan_of_a_proof(proof) -> None:
    result = succeeds(MODULE, {**proof, "plan_only": True, "rate_since": stream_id(0)})
    assert result["plan"]["rate_per_s"] == pytest.approx(10, rel=0.05)
    assert result["msg"] == result["plan"]["message"]


def test_redis_unreachable_fails_without_the_password(proof) -> None:
    args = {**proof, "redis_url": unreachable_redis(), "timeout": 0}
    assert "patchtst is not proven shadow" in fails_without_the_password(MODULE, args)["msg"]
