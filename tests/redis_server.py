"""Pytest plugin: a real, throw-away ``redis-server`` for the whole test session.

Register it with ``pytest_plugins = ["tests.redis_server"]`` in the root conftest (or import
the ``redis_server`` fixture into a test module). The server listens on a free port of
127.0.0.1 only, keeps nothing on disk, and is stopped when the session ends. Without a
``redis-server`` binary the tests that need it are skipped, saying why. ``redis_client`` (a
client of it) and ``redis_stream`` (a stream name of the test's own) build on it.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import redis

START_TIMEOUT_S = 10.0
STOP_TIMEOUT_S = 10.0
LOG_FILE = "redis.log"


def free_port() -> int:
    """A TCP port of 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def server_argv(binary: str, port: int, workdir: Path, *options: str) -> list[str]:
    """The argv of a ``redis-server`` on ``port`` of 127.0.0.1 only that keeps nothing on disk
    and logs to ``workdir``/``LOG_FILE``; ``options`` come after."""
    return [
        binary,
        "--port", str(port),
        "--bind", "127.0.0.1",
        "--save", "",
        "--appendonly", "no",
        "--dir", str(workdir),
        "--logfile", str(workdir / LOG_FILE),
        *options,
    ]  # fmt: skip


@dataclass(frozen=True)
class RedisServer:
    """A running server: where it listens and how to talk to it."""

    port: int
    process: subprocess.Popen[bytes]

    @property
    def url(self) -> str:
        """``redis://127.0.0.1:<port>/0``."""
        return f"redis://127.0.0.1:{self.port}/0"

    def client(self, **kwargs: Any) -> redis.Redis:
        """A new client of this server; ``kwargs`` go to ``redis.Redis.from_url``."""
        return redis.Redis.from_url(self.url, **kwargs)


def _wait_until_ready(server: RedisServer, log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    client = server.client(socket_connect_timeout=1)
    try:
        while True:
            if server.process.poll() is not None:
                raise RuntimeError(f"redis-server exited early: {log.read_text(errors='replace')}")
            try:
                if client.ping():
                    return
            except redis.ConnectionError:
                if time.monotonic() > deadline:
                    raise RuntimeError(
                        f"redis-server not ready after {START_TIMEOUT_S} s"
                    ) from None
                time.sleep(0.05)
    finally:
        client.close()


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def start_server(workdir: Path, *options: str) -> RedisServer:
    """A ``redis-server`` just started on a free local port (see ``server_argv``), maybe not
    answering yet; without a redis-server binary the test that asks is skipped."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis-server is not installed (Debian package redis-server)")
    port = free_port()
    argv = server_argv(binary, port, workdir, *options)
    return RedisServer(port=port, process=subprocess.Popen(argv))


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """Start ``redis-server`` on a free local port for the session and stop it afterwards."""
    workdir = tmp_path_factory.mktemp("redis")
    server = start_server(workdir)
    try:
        _wait_until_ready(server, workdir / LOG_FILE)
        yield server
    finally:
        _stop(server.process)


@pytest.fixture
def redis_client(redis_server: RedisServer) -> Iterator[redis.Redis]:
    """A client of the session's server, closed after the test."""
    client = redis_server.client()
    yield client
    client.close()


@pytest.fixture
def redis_stream(redis_client: redis.Redis) -> Iterator[str]:
    """The name of a new stream of this test's own (a valid stream name for every reader),
    deleted after it."""
    name = f"test:{uuid.uuid4().hex}"
    yield name
    redis_client.delete(name)
