"""prove_model_role against a real redis-server and real SQLite trade logs in tmp_path, and the
model_role_proof module run locally by Ansible (``ansible localhost -c local -M library``)."""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import redis

from model_safety.engine.role_proof import RoleProofError, iso_ms, prove_model_role
from tests import local_ansible
from tests.redis_server import RedisServer
from tests.unit.test_role_proof import SHADOW, VOTING, event

REPO = Path(__file__).resolve().parents[2]
T0 = 1_768_046_400_000  # 2026-01-10T12:00:00.000Z
CUTOVER_ID = f"{T0}-0"
CUTOVER_ISO = "2026-01-10T12:00:00Z"
SCHEMA = (
    "CREATE TABLE {table} (id INTEGER PRIMARY KEY, created_at TEXT NOT NULL, "
    "symbol TEXT NOT NULL, side TEXT NOT NULL, confidence REAL NOT NULL, "
    "model_source TEXT NOT NULL, payload TEXT NOT NULL)"
)


def add(redis_client: redis.Redis, stream: str, payloads: list[str | None], first: int = 1) -> None:
    """XADD the payloads at T0 + 100 ms * (first, first + 1, ...)."""
    for offset, payload in enumerate(payloads):
        fields = {"payload": payload} if payload is not None else {"other": "x"}
        redis_client.xadd(stream, fields, id=f"{T0 + 100 * (first + offset)}-0")


def trade_log(path: Path, rows: list[tuple[int, str]], table: str = "trade_intents") -> str:
    """A trade log with one row per (ms offset from T0, model_source) in ``table``."""
    with sqlite3.connect(path) as db:
        db.execute(SCHEMA.format(table=table))
        db.executemany(
            f"INSERT INTO {table} (created_at, symbol, side, confidence, model_source, "
            "payload) VALUES (?, 'BTCUSDT', 'BUY', 0.6, ?, '{}')",
            [(iso_ms(T0 + offset), source) for offset, source in rows],
        )
    db.close()
    return str(path)


def prove(
    redis_client: redis.Redis, redis_stream: str, role: str = "voting", **kwargs: Any
) -> dict[str, Any]:
    args = {"after": CUTOVER_ID, "min_events": 10, "timeout": 2.0, **kwargs}
    return prove_model_role(redis_client, redis_stream, "patchtst", role, **args)


# --------------------------------------------------------------------------- prove_model_role


@pytest.mark.parametrize("after", [CUTOVER_ID, CUTOVER_ISO, "2026-01-10T13:00:00.000+01:00"])
def test_voting_proven_with_trade_rows(redis_client, redis_stream, tmp_path, after) -> None:
    add(redis_client, redis_stream, [event(VOTING)] * 12)
    db = trade_log(tmp_path / "t.db", [(-5, "xgb,patchtst"), (150, "xgb,patchtst,lgbm")])
    before = Path(db).read_bytes()
    proof = prove(redis_client, redis_stream, after=after, db_path=db)
    assert proof["proven"] is True, proof
    assert (proof["events"], proof["rows"], proof["missing"]) == (10, 1, 0)
    assert (proof["first_id"], proof["last_id"]) == (f"{T0 + 100}-0", f"{T0 + 1000}-0")
    assert proof["elapsed"] < 1.0
    assert Path(db).read_bytes() == before  # read-only: not one byte written


def test_trade_table_names_the_table_read_and_reported(
    redis_client, redis_stream, tmp_path
) -> None:
    add(redis_client, redis_stream, [event(VOTING)] * 10)
    db = trade_log(tmp_path / "t.db", [(100, "xgb,patchtst")], table="engine_intents_v2")
    proof = prove(redis_client, redis_stream, db_path=db, trade_table="engine_intents_v2")
    assert proof["proven"] is True, proof
    assert proof["rows"] == 1
    # The default table is absent from this log; a shadow proof names the table it read.
    default = prove(redis_client, redis_stream, db_path=db, timeout=30)
    assert default["reasons"] == [f"trade log {db} unusable: no such table: trade_intents"]
    add(redis_client, redis_stream, [event(SHADOW)] * 10, first=11)
    shadow = prove(
        redis_client,
        redis_stream,
        "shadow",
        after=f"{T0 + 1000}-0",
        db_path=db,
        trade_table="engine_intents_v2",
    )
    assert shadow["reasons"] == []
    credited = trade_log(tmp_path / "c.db", [(1200, "patchtst")], table="engine_intents_v2")
    shadow = prove(
        redis_client,
        redis_stream,
        "shadow",
        after=f"{T0 + 1000}-0",
        db_path=credited,
        trade_table="engine_intents_v2",
    )
    assert shadow["violations"] == ["engine_intents_v2 row 1 credits the shadow model patchtst"]


@pytest.mark.parametrize(
    "table", ["trade_intents; DROP TABLE x", "1intents", "", "a" * 64, "intents-v2", None]
)
def test_trade_table_must_be_a_plain_identifier(
    redis_client, redis_stream, tmp_path, table
) -> None:
    with pytest.raises(RoleProofError, match="trade_table must be a plain SQL identifier"):
        prove(redis_client, redis_stream, db_path=str(tmp_path / "t.db"), trade_table=table)


def test_cutover_is_exclusive_and_earlier_events_are_ignored(redis_client, redis_stream) -> None:
    add(
        redis_client, redis_stream, [event(SHADOW)] * 5, first=-4
    )  # up to T0 itself: the old shadow role
    add(redis_client, redis_stream, [event(VOTING)] * 10)
    proof = prove(redis_client, redis_stream)
    assert proof["proven"] is True, proof
    assert proof["first_id"] == f"{T0 + 100}-0"
    # A cutover one event earlier lets the last shadow event (at T0) in: a violation.
    earlier = prove(redis_client, redis_stream, after=f"{T0 - 1}-0")
    assert earlier["violations"] == [f"{T0}-0: patchtst has the shadow flag, expected voting"]
    iso_earlier = prove(redis_client, redis_stream, after="2026-01-10T11:59:59.999Z")
    assert iso_earlier["violations"] == earlier["violations"]


def test_shadow_proven_with_a_trade_log_that_never_credits_it(
    redis_client, redis_stream, tmp_path
) -> None:
    add(redis_client, redis_stream, [event(SHADOW)] * 10)
    db = trade_log(tmp_path / "t.db", [(-50, "xgb,patchtst"), (200, "xgb,lgbm")])
    proof = prove(redis_client, redis_stream, "shadow", db_path=db)
    assert proof["proven"] is True, proof
    assert (proof["events"], proof["rows"], proof["violations"]) == (10, 0, [])


def test_rows_crediting_a_shadow_model_fail(redis_client, redis_stream, tmp_path) -> None:
    add(redis_client, redis_stream, [event(SHADOW)] * 10)
    db = trade_log(tmp_path / "t.db", [(100, "xgb"), (200, "lgbm,patchtst")])
    proof = prove(redis_client, redis_stream, "shadow", db_path=db)
    assert proof["proven"] is False
    assert proof["rows"] == 1
    assert proof["violations"] == ["trade_intents row 2 credits the shadow model patchtst"]
    assert proof["reasons"] == [
        "1 trade_intents rows after 2026-01-10T12:00:00.000Z credit the shadow model patchtst "
        "(first ids 2)"
    ]


def test_contradiction_fails_fast_naming_the_stream_id(redis_client, redis_stream) -> None:
    add(redis_client, redis_stream, [event(VOTING)] * 3 + [event(SHADOW)] + [event(VOTING)] * 10)
    started = time.monotonic()
    proof = prove(redis_client, redis_stream, timeout=30)
    assert time.monotonic() - started < 2
    assert proof["proven"] is False
    assert proof["violations"] == [f"{T0 + 400}-0: patchtst has the shadow flag, expected voting"]


def test_model_missing_in_too_many_events_fails(redis_client, redis_stream) -> None:
    add(
        redis_client,
        redis_stream,
        [event({"xgb": "voting", "lgbm": "voting"})] + [event(VOTING)] * 10,
    )
    proof = prove(redis_client, redis_stream)
    assert proof["proven"] is False
    assert (proof["events"], proof["missing"]) == (10, 1)
    assert proof["reasons"] == [
        "patchtst missing from 1 of 11 events (9.1% > 5%; absent 1, inactive 0)"
    ]


def test_not_enough_events_before_the_timeout_fails(redis_client, redis_stream) -> None:
    add(redis_client, redis_stream, [event(VOTING)] * 4)
    proof = prove(redis_client, redis_stream, timeout=1.0)
    assert proof["proven"] is False
    assert 1.0 <= proof["elapsed"] < 1.5 and proof["reads"] >= 3
    assert proof["reasons"] == [
        f"only 4 events show patchtst as voting after {CUTOVER_ID} within 1 s (10 required; 4 read)"
    ]


def test_missing_trade_rows_fail(redis_client, redis_stream, tmp_path) -> None:
    add(redis_client, redis_stream, [event(VOTING)] * 10)
    # Before the cutover, not crediting patchtst, or naming it only as a prefix: none counts.
    db = trade_log(tmp_path / "t.db", [(0, "patchtst"), (100, "xgb"), (200, "patchtst_v2")])
    proof = prove(redis_client, redis_stream, db_path=db, timeout=0.6)
    assert proof["proven"] is False
    assert (proof["events"], proof["rows"]) == (10, 0)
    assert proof["reasons"] == [
        "only 0 trade_intents rows after 2026-01-10T12:00:00.000Z credit patchtst within 0.6 s "
        "(1 required)"
    ]


def test_trade_rows_committed_while_waiting_count(redis_client, redis_stream, tmp_path) -> None:
    add(redis_client, redis_stream, [event(VOTING)] * 10)
    db = trade_log(tmp_path / "t.db", [])

    def engine_commits() -> None:
        time.sleep(0.7)
        with sqlite3.connect(db) as writer:
            writer.execute(
                "INSERT INTO trade_intents (created_at, symbol, side, confidence, model_source, "
                "payload) VALUES (?, 'BTCUSDT', 'BUY', 0.6, 'patchtst', '{}')",
                (iso_ms(T0 + 300),),
            )
        writer.close()

    writer = threading.Thread(target=engine_commits)
    writer.start()
    proof = prove(redis_client, redis_stream, db_path=db, timeout=5)
    writer.join()
    assert proof["proven"] is True, proof
    assert proof["rows"] == 1 and 0.5 <= proof["elapsed"] < 3


def file_with(path: Path, data: bytes) -> str:
    path.write_bytes(data)
    return str(path)


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (
            lambda p: str(p / "absent.db"),
            "trade log {p}/absent.db does not exist (or is not a file)",
        ),
        (lambda p: str(p), "trade log {p} does not exist (or is not a file)"),
        (
            lambda p: file_with(p / "empty.db", b""),
            "trade log {p}/empty.db unusable: no such table: trade_intents",
        ),
        (
            lambda p: file_with(p / "junk.db", b"x" * 4096),
            "trade log {p}/junk.db unusable: file is not a database",
        ),
    ],
)
def test_unusable_trade_log_is_a_clear_reason(
    redis_client, redis_stream, tmp_path, make, reason
) -> None:
    add(redis_client, redis_stream, [event(VOTING)] * 10)
    proof = prove(redis_client, redis_stream, db_path=make(tmp_path), timeout=30)
    assert proof["proven"] is False and proof["reads"] == 0
    assert proof["reasons"] == [reason.format(p=tmp_path)]
    assert not (tmp_path / "absent.db").exists()  # read-only: never created


def test_malformed_payload_fails(redis_client, redis_stream) -> None:
    add(
        redis_client, redis_stream, [event(VOTING)] * 2 + ['{"side": "BUY"}'] + [event(VOTING)] * 10
    )
    proof = prove(redis_client, redis_stream)
    assert proof["proven"] is False
    assert proof["violations"] == [
        f"{T0 + 300}-0: malformed event: total_models is not a non-negative integer: None"
    ]


def test_events_added_while_waiting_are_read_incrementally(
    redis_client, redis_stream, monkeypatch
) -> None:
    add(redis_client, redis_stream, [event(VOTING)] * 4)
    calls: list[str] = []
    xrange = redis_client.xrange

    def recording_xrange(stream: str, min: str, max: str, count: int) -> Any:
        calls.append(min)
        return xrange(stream, min=min, max=max, count=count)

    monkeypatch.setattr(redis_client, "xrange", recording_xrange)

    def engine_publishes() -> None:
        other = redis.Redis(connection_pool=redis_client.connection_pool)
        for index in range(5, 11):
            time.sleep(0.15)
            add(other, redis_stream, [event(VOTING)], first=index)

    publisher = threading.Thread(target=engine_publishes)
    publisher.start()
    proof = prove(redis_client, redis_stream, timeout=5)
    publisher.join()
    assert proof["proven"] is True, proof
    assert proof["events"] == 10 and proof["reads"] >= 2
    assert calls[0] == f"({CUTOVER_ID}"
    assert calls[1] == f"({T0 + 400}-0"  # from the last id seen, not from the cutover
    starts = [tuple(map(int, start[1:].split("-"))) for start in calls]
    assert starts == sorted(starts)  # never back to an id already read


# --------------------------------------------------------------------------- the module


def run_module(redis_server: RedisServer, *options: str, **args: Any) -> tuple[bool, dict]:
    """Run model_role_proof ad hoc on localhost: (succeeded, its result)."""
    module_args = {"redis_url": redis_server.url, **args}
    succeeded, result, _output = local_ansible.run_module("model_role_proof", module_args, *options)
    return succeeded, result


def test_module_proves_fails_and_runs_in_check_mode(
    redis_server, redis_client, redis_stream, tmp_path
) -> None:
    add(redis_client, redis_stream, [event(VOTING)] * 10)
    db = trade_log(tmp_path / "t.db", [(100, "xgb,patchtst")])
    common = {"stream": redis_stream, "model": "patchtst", "after": CUTOVER_ISO, "db_path": db}
    ok, result = run_module(redis_server, role="voting", min_events=10, timeout=5, **common)
    assert ok, result
    assert result["changed"] is False
    assert (result["proven"], result["events"], result["rows"], result["reasons"]) == (
        True,
        10,
        1,
        [],
    )
    # Check mode runs the same; a null db_path skips the trade log; the password is masked.
    secret = "pw-never-printed-7Q"
    url = redis_server.url.replace("redis://", f"redis://:{secret}@")
    failing = {**common, "db_path": None, "redis_url": url}
    ok, result = run_module(redis_server, "--check", role="shadow", timeout=0, **failing)
    assert not ok
    assert secret not in json.dumps(result)
    assert (
        result["proven"] is False and result["stream"] == redis_stream and result["db_path"] is None
    )
    assert result["violations"][0] == (
        f"{T0 + 100}-0: patchtst votes (no shadow flag), expected shadow"
    )
    assert result["msg"].startswith("patchtst is not proven shadow (stream " + redis_stream)
    ok, result = run_module(
        redis_server, role="voting", model="Bad", after="x", stream=redis_stream
    )
    assert not ok and result["msg"].startswith("role proof impossible: not a valid model name")


def test_module_reads_the_trade_table_given(
    redis_server, redis_client, redis_stream, tmp_path
) -> None:
    add(redis_client, redis_stream, [event(VOTING)] * 10)
    db = trade_log(tmp_path / "t.db", [(100, "patchtst")], table="intents_v2")
    common = {"stream": redis_stream, "model": "patchtst", "after": CUTOVER_ISO, "db_path": db}
    ok, result = run_module(
        redis_server, role="voting", min_events=10, timeout=5, trade_table="intents_v2", **common
    )
    assert ok, result
    assert result["rows"] == 1
    ok, result = run_module(
        redis_server, role="voting", min_events=10, timeout=5, trade_table="x;y", **common
    )
    assert not ok
    assert (
        result["msg"] == "role proof impossible: trade_table must be a plain SQL identifier: 'x;y'"
    )
