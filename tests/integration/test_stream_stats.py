"""stream_stats and collect_engine_status against a real redis-server (redis-py as installed).

The ``redis_server`` fixture comes from the ``tests.redis_server`` plugin (registered in
tests/conftest.py).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from model_safety.engine.status import collect_engine_status
from model_safety.engine.stream_stats import stream_stats
from tests.redis_server import RedisServer, free_port
from tests.systemd_fakes import show_output

T0 = 1_700_000_000_000
UNIT = "quantum-ai-engine.service"
INVOCATION = "0123456789abcdef0123456789abcdef"
SHA = "1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d"
SHOW = show_output(UNIT, INVOCATION)
JOURNAL = """\
AI_ENGINE_BUILD: 1a2b3c4
[OK] xgb agent loaded (weight: 31.25%)
[OK] lgbm agent loaded (weight: 31.25%)
[OK] nhits agent loaded (weight: 37.5%)
[READY] publishing to quantum:stream:trade.intent at 10/s, symbols=BTCUSDT
"""


def fake_run(argv: list[str]) -> tuple[int, str, str]:
    """A healthy host's systemctl, journalctl and git."""
    answers = {"systemctl": SHOW, "journalctl": JOURNAL, "git": SHA + "\n"}
    return 0, answers[argv[0]], ""


@pytest.fixture(params=[False, True], ids=["bytes", "decoded"])
def client(redis_server: RedisServer, request: pytest.FixtureRequest) -> Iterator[redis.Redis]:
    """A client of the session's server, with and without decode_responses."""
    connection = redis_server.client(decode_responses=request.param)
    yield connection
    connection.close()


@pytest.fixture
def stream() -> str:
    """A stream name no other test uses."""
    return f"test:stream:{uuid.uuid4().hex}"


def add(client: redis.Redis, stream: str, ms: int, seq: int = 0) -> None:
    client.xadd(stream, {"payload": json.dumps({"symbol": "BTCUSDT"})}, id=f"{ms}-{seq}")


def test_rate_and_age_from_explicit_ids(client: redis.Redis, stream: str) -> None:
    for i in range(21):
        add(client, stream, T0 + i * 100)
    stats = stream_stats(client, stream, sample=200, now_ms=T0 + 2500)
    assert stats == {
        "stream": stream,
        "length": 21,
        "last_id": f"{T0 + 2000}-0",
        "last_event_age_s": 0.5,
        "rate_per_s": 10.0,
        "sampled": 21,
    }


def test_rate_uses_only_the_newest_sample(client: redis.Redis, stream: str) -> None:
    for i in range(10):
        add(client, stream, T0 + i * 1000)
    for i in range(1, 11):
        add(client, stream, T0 + 9000 + i * 50)
    stats = stream_stats(client, stream, sample=11, now_ms=T0 + 9500)
    assert (stats["length"], stats["sampled"], stats["rate_per_s"]) == (20, 11, 20.0)


def test_entries_in_the_same_millisecond_have_no_rate(client: redis.Redis, stream: str) -> None:
    add(client, stream, T0, 0)
    add(client, stream, T0, 1)
    stats = stream_stats(client, stream, now_ms=T0)
    assert (stats["length"], stats["last_id"], stats["rate_per_s"]) == (2, f"{T0}-1", None)


def test_missing_stream(client: redis.Redis, stream: str) -> None:
    assert stream_stats(client, stream, now_ms=T0) == {
        "stream": stream,
        "length": 0,
        "last_id": None,
        "last_event_age_s": None,
        "rate_per_s": None,
        "sampled": 0,
    }


def test_age_defaults_to_the_server_clock(client: redis.Redis, stream: str) -> None:
    client.xadd(stream, {"payload": "{}"})
    stats = stream_stats(client, stream)
    assert 0.0 <= stats["last_event_age_s"] < 5.0


def test_collect_healthy_with_live_events(client: redis.Redis, stream: str) -> None:
    seconds, micros = client.time()
    now_ms = int(seconds) * 1000 + int(micros) // 1000
    for i in range(20):
        add(client, stream, now_ms - 1900 + i * 100)
    status = collect_engine_status(fake_run, client, UNIT, "/home/qt/quantum_trader", stream)
    assert status["problems"] == []
    assert status["build_verified"] is True
    assert status["stream"]["rate_per_s"] == 10.0
    assert status["stream"]["length"] == 20


def test_collect_reports_unreachable_redis_as_a_problem() -> None:
    port = free_port()
    client = redis.Redis(
        host="127.0.0.1", port=port, socket_connect_timeout=2, retry=Retry(NoBackoff(), 0)
    )
    status = collect_engine_status(
        fake_run, client, UNIT, "/home/qt/quantum_trader", "quantum:stream:trade.intent"
    )
    assert status["build_verified"] is True
    assert status["stream"]["length"] is None
    assert len(status["problems"]) == 1
    assert status["problems"][0].startswith("redis unreachable or failing: ConnectionError")
    assert str(port) in status["problems"][0]
    assert json.loads(json.dumps(status)) == status
