"""Unit tests for the engine simulator's sinks: Redis stream (fake client) and SQLite log."""

import json
import sqlite3
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import redis

from ai_engine.config import load_config
from ai_engine.engine import Engine, EngineEvent
from ai_engine.publisher import (
    RedisSink,
    SqliteSink,
    StartupError,
    connect_redis,
    redact_url,
)
from tests.fake_clock import FakeClock

MOMENT = datetime(2026, 1, 10, 12, 0, 0, 500000, tzinfo=UTC)


class FakePipeline:
    def __init__(self, client: "FakeRedis") -> None:
        self._client = client
        self._queued: list[tuple[str, dict[str, str], int, bool]] = []

    def xadd(self, name: str, fields: dict[str, str], maxlen: int, approximate: bool) -> None:
        self._queued.append((name, fields, maxlen, approximate))

    def execute(self) -> None:
        if self._client.down:
            raise redis.ConnectionError("Error 111 connecting to 127.0.0.1:6379.")
        self._client.entries.extend(self._queued)
        self._client.batches += 1


class FakeRedis:
    def __init__(self, failing_pings: int = 0) -> None:
        self.down = False
        self.entries: list[tuple[str, dict[str, str], int, bool]] = []
        self.batches = 0
        self.failing_pings = failing_pings
        self.pings = 0
        self.closed = False

    def pipeline(self, transaction: bool = True) -> FakePipeline:
        assert transaction is False
        return FakePipeline(self)

    def ping(self) -> bool:
        self.pings += 1
        if self.pings <= self.failing_pings:
            raise redis.ConnectionError("Connection refused")
        return True

    def close(self) -> None:
        self.closed = True


def make_events(count: int, **env: str) -> list[EngineEvent]:
    engine = Engine(load_config({"ENGINE_SEED": "21", **env}))
    return [engine.step(0.0, MOMENT) for _ in range(count)]


# --- Redis -----------------------------------------------------------------------------------


def test_redis_sink_publishes_one_pipeline_per_batch() -> None:
    client = FakeRedis()
    sink = RedisSink(client, "s:trade", 5000, log_error=pytest.fail, log_info=pytest.fail)
    events = make_events(7)
    sink.write(events[:3])
    sink.write(events[3:])
    sink.write([])
    assert client.batches == 2
    assert [e[0] for e in client.entries] == ["s:trade"] * 7
    assert [e[1] for e in client.entries] == [{"payload": ev.json} for ev in events]
    assert {(e[2], e[3]) for e in client.entries} == {(5000, True)}
    assert sink.dropped == 0
    sink.close()
    assert client.closed


def test_redis_outage_drops_with_backoff_and_recovers() -> None:
    client = FakeRedis()
    clock = FakeClock()
    errors: list[str] = []
    infos: list[str] = []
    sink = RedisSink(client, "s", 100, errors.append, infos.append, clock=clock)
    events = make_events(4)
    client.down = True
    sink.write(events[:2])  # fails: backoff 0.5 s
    assert sink.dropped == 2
    assert errors == ["redis: Error 111 connecting to 127.0.0.1:6379. (retrying in 0.5 s)"]
    clock.sleep(0.2)
    sink.write(events[2:3])  # inside the backoff: dropped without trying
    assert (sink.dropped, len(errors)) == (3, 1)
    clock.sleep(0.4)
    sink.write(events[3:])  # retried, still down: backoff doubles
    assert (sink.dropped, len(errors)) == (4, 2)
    assert errors[-1].endswith("(retrying in 1 s)")
    for _ in range(6):
        clock.sleep(10)
        sink.write(events[:1])
    assert errors[-1].endswith("(retrying in 5 s)")
    client.down = False
    clock.sleep(10)
    sink.write(events)
    assert infos == ["[OK] redis: publishing again (10 events dropped)"]
    assert len(client.entries) == 4
    assert sink.dropped == 10
    clock.sleep(10)
    client.down = True
    sink.write(events[:1])
    assert errors[-1].endswith("(retrying in 0.5 s)")


def test_connect_redis_retries_until_ping_succeeds() -> None:
    client = FakeRedis(failing_pings=3)
    clock = FakeClock()
    seen: dict[str, Any] = {}

    def factory(url: str, **kwargs: Any) -> FakeRedis:
        seen.update(kwargs, url=url)
        return client

    assert connect_redis("redis://h:1/0", clock=clock, sleep=clock.sleep, factory=factory) is client
    assert client.pings == 4
    assert seen == {"url": "redis://h:1/0", "socket_connect_timeout": 2.0, "socket_timeout": 2.0}


def test_connect_redis_gives_up_after_the_timeout() -> None:
    client = FakeRedis(failing_pings=10**6)
    clock = FakeClock()
    with pytest.raises(StartupError) as excinfo:
        connect_redis(
            "redis://user:secret@h:6379/0",
            clock=clock,
            sleep=clock.sleep,
            factory=lambda url, **kwargs: client,
        )
    message = str(excinfo.value)
    assert message.startswith("redis: cannot reach redis://h:6379/0 within 10 s")
    assert "secret" not in message
    assert 20 <= client.pings <= 22


@pytest.mark.parametrize(
    ("url", "text"),
    [
        ("redis://:pw@127.0.0.1:6379/0", "redis://127.0.0.1:6379/0"),
        ("rediss://u:pw@example.org", "rediss://example.org"),
        ("unix:///run/redis.sock", "unix:///run/redis.sock"),
    ],
)
def test_redact_url(url: str, text: str) -> None:
    assert redact_url(url) == text


# --- SQLite ----------------------------------------------------------------------------------


def rows(path: Path) -> list[tuple[Any, ...]]:
    with sqlite3.connect(path) as db:
        return db.execute(
            "SELECT id, created_at, symbol, side, confidence, model_source, payload "
            "FROM trade_intents ORDER BY id"
        ).fetchall()


def test_sqlite_schema_and_wal(tmp_path: Path) -> None:
    path = tmp_path / "q.db"
    SqliteSink(path, pytest.fail).close()
    with sqlite3.connect(path) as db:
        columns = [(r[1], r[2], r[3], r[5]) for r in db.execute("PRAGMA table_info(trade_intents)")]
        indexes = [r[1] for r in db.execute("PRAGMA index_list(trade_intents)")]
        (mode,) = db.execute("PRAGMA journal_mode").fetchone()
    assert columns == [
        ("id", "INTEGER", 0, 1),
        ("created_at", "TEXT", 1, 0),
        ("symbol", "TEXT", 1, 0),
        ("side", "TEXT", 1, 0),
        ("confidence", "REAL", 1, 0),
        ("model_source", "TEXT", 1, 0),
        ("payload", "TEXT", 1, 0),
    ]
    assert indexes == ["idx_trade_intents_created_at"]
    assert mode == "wal"


def test_sqlite_rows_one_per_decision_committed_at_most_once_a_second(tmp_path: Path) -> None:
    path = tmp_path / "q.db"
    clock = FakeClock()
    sink = SqliteSink(path, pytest.fail, clock=clock)
    events = make_events(30, PATCHTST_SHADOW_ONLY="true")
    sink.write(events[:10])
    clock.sleep(0.5)
    sink.write(events[10:20])
    sink.tick()
    assert rows(path) == []
    clock.sleep(0.5)
    sink.tick()
    assert len(rows(path)) == 20
    sink.write(events[20:])
    assert len(rows(path)) == 20
    sink.close()
    written = rows(path)
    assert [r[0] for r in written] == list(range(1, 31))
    for row, event in zip(written, events, strict=True):
        payload = json.loads(row[6])
        assert row[1:5] == (
            payload["timestamp"],
            payload["symbol"],
            payload["side"],
            payload["confidence"],
        )
        assert row[6] == event.json
        expected = [
            m
            for m in ("xgb", "lgbm", "nhits")
            if payload["model_breakdown"][m].get("action") == payload["side"]
        ]
        assert row[5] == ",".join(expected)
        assert "patchtst" not in row[5]
    assert any(r[5] == "xgb,lgbm,nhits" for r in written)


def test_model_source_is_empty_without_agreeing_voters(tmp_path: Path) -> None:
    path = tmp_path / "q.db"
    env = {f"SIM_{m}": "inactive" for m in ("XGB", "LGBM", "NHITS", "PATCHTST")}
    sink = SqliteSink(path, pytest.fail)
    sink.write(make_events(3, **env))
    sink.close()
    assert [(r[3], r[4], r[5]) for r in rows(path)] == [("HOLD", 0.0, "")] * 3


def test_shadow_leak_and_pad_reach_the_payload_but_not_model_source(tmp_path: Path) -> None:
    path = tmp_path / "q.db"
    env = {"PATCHTST_SHADOW_ONLY": "true", "SIM_SHADOW_LEAK": "true", "SIM_PAYLOAD_PAD": "64"}
    events = make_events(40, **env)
    sink = SqliteSink(path, pytest.fail)
    sink.write(events)
    sink.close()
    for row, event in zip(rows(path), events, strict=True):
        payload = json.loads(row[6])
        assert row[6] == event.json
        assert payload["pad"] == "x" * 64
        assert payload["total_models"] == event.decision.total_models + 1
        assert row[3:6] == (
            event.decision.side,
            event.decision.confidence,
            ",".join(event.decision.agreeing),
        )
        assert "patchtst" not in row[5]


def test_sqlite_appends_to_an_existing_table(tmp_path: Path) -> None:
    path = tmp_path / "q.db"
    for _ in range(2):
        sink = SqliteSink(path, pytest.fail)
        sink.write(make_events(2))
        sink.close()
    assert len(rows(path)) == 4


def test_sqlite_open_failure_is_a_startup_error(tmp_path: Path) -> None:
    with pytest.raises(StartupError, match="sqlite: cannot open"):
        SqliteSink(tmp_path / "missing-dir" / "q.db", pytest.fail)


def test_sqlite_write_failure_is_logged_and_counted(tmp_path: Path) -> None:
    path = tmp_path / "q.db"
    errors: list[str] = []
    sink = SqliteSink(path, errors.append)
    with sqlite3.connect(path) as db:
        db.execute("DROP TABLE trade_intents")
    sink.write(make_events(3))
    sink.flush()
    assert sink.dropped == 3
    assert errors == ["sqlite: no such table: trade_intents (3 rows dropped)"]
    sink.close()
