"""engine_status reaches a Redis that wants a password its URL does not carry: the shared
connector (model_safety.redis_client.connect) takes it from $MODEL_SAFETY_REDIS_PASSWORD or
$REDISCLI_AUTH, as every other module's Redis client does. The server is the session's
redis-server with an ACL user of this test's own (redis://<user>@host: a user, no password)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator

import pytest
import redis

from model_safety.redaction import PASSWORD_ENVS
from tests.module_harness import UNIT, fake_systemd, git_checkout, succeeds, telemetry
from tests.redis_server import RedisServer

__all__ = ["fake_systemd", "git_checkout", "telemetry"]

PASSWORD = "pw-from-the-environment-4K"


@pytest.fixture
def password_user(redis_client: redis.Redis) -> Iterator[str]:
    """An ACL user that can do everything but only with PASSWORD."""
    name = f"status-{uuid.uuid4().hex[:12]}"
    redis_client.acl_setuser(
        name, enabled=True, passwords=[f"+{PASSWORD}"], keys=["*"], commands=["+@all"]
    )
    yield name
    redis_client.acl_deluser(name)


@pytest.fixture
def engine(fake_systemd, git_checkout, telemetry, password_user, redis_server: RedisServer):
    """engine_status arguments for a running engine with 3 events, its URL without password."""
    checkout, sha = git_checkout
    fake_systemd.set(
        journal=[f"AI_ENGINE_BUILD: {sha[:7]}", "[OK] xgb agent loaded (weight: 100%)"]
    )
    for index in range(3):
        telemetry.client.xadd(telemetry.stream, {"payload": json.dumps({"n": index})})
    url = f"redis://{password_user}@127.0.0.1:{redis_server.port}/0"
    return {
        "redis_url": url,
        "stream": telemetry.stream,
        "service": UNIT,
        "checkout": str(checkout),
    }


@pytest.mark.parametrize("variable", PASSWORD_ENVS)
def test_the_password_comes_from_the_environment(engine, monkeypatch, variable) -> None:
    for name in PASSWORD_ENVS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv(variable, PASSWORD)
    result = succeeds("engine_status", engine)
    assert (result["stream"]["length"], result["stream"]["error"]) == (3, None)
    assert PASSWORD not in json.dumps(result)


def test_without_it_the_stream_is_a_problem(engine, monkeypatch) -> None:
    for name in PASSWORD_ENVS:
        monkeypatch.delenv(name, raising=False)
    result = succeeds("engine_status", engine)
    assert result["stream"]["length"] is None
    assert result["problems"][-1].startswith("redis unreachable or failing: ")
