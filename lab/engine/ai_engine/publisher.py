"""Event sinks: the Redis telemetry stream and the SQLite trade log."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

import redis

from .engine import EngineEvent
from .ensemble import model_source

Log = Callable[[str], None]

REDIS_CONNECT_TIMEOUT = 10.0
REDIS_SOCKET_TIMEOUT = 2.0
BACKOFF_FIRST = 0.5
BACKOFF_MAX = 5.0
COMMIT_INTERVAL = 1.0

SCHEMA = (
    "CREATE TABLE IF NOT EXISTS trade_intents ("
    "id INTEGER PRIMARY KEY, created_at TEXT NOT NULL, symbol TEXT NOT NULL, "
    "side TEXT NOT NULL, confidence REAL NOT NULL, model_source TEXT NOT NULL, "
    "payload TEXT NOT NULL)",
    "CREATE INDEX IF NOT EXISTS idx_trade_intents_created_at ON trade_intents(created_at)",
)
INSERT = (
    "INSERT INTO trade_intents (created_at, symbol, side, confidence, model_source, payload) "
    "VALUES (?, ?, ?, ?, ?, ?)"
)


class StartupError(RuntimeError):
    """A sink could not be opened at start (the service exits 1)."""


class Sink(Protocol):
    """Where events go. ``dropped`` counts events that could not be delivered."""

    dropped: int

    def write(self, events: Sequence[EngineEvent]) -> None:
        """Deliver a batch (never raises for delivery failures: count them as dropped)."""

    def tick(self) -> None:
        """Periodic housekeeping (e.g. a due commit); called every loop iteration."""

    def close(self) -> None:
        """Flush and release resources."""


def redact_url(url: str) -> str:
    """The URL without credentials, for logs."""
    parts = urlsplit(url)
    if parts.scheme == "unix":
        return f"unix://{parts.path}"
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}{parts.path}"


def connect_redis(
    url: str,
    timeout: float = REDIS_CONNECT_TIMEOUT,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    factory: Callable[..., Any] = redis.Redis.from_url,
) -> Any:
    """A connected Redis client; retries PING for up to ``timeout`` s, then StartupError."""
    client = factory(
        url, socket_connect_timeout=REDIS_SOCKET_TIMEOUT, socket_timeout=REDIS_SOCKET_TIMEOUT
    )
    deadline = clock() + timeout
    while True:
        try:
            client.ping()
            return client
        except (redis.RedisError, OSError) as exc:
            if clock() >= deadline:
                raise StartupError(
                    f"redis: cannot reach {redact_url(url)} within {timeout:g} s: {exc}"
                ) from exc
            sleep(BACKOFF_FIRST)


class RedisSink:
    """XADD each event's JSON as field ``payload``, one pipeline per batch, MAXLEN ~."""

    def __init__(
        self,
        client: Any,
        stream: str,
        maxlen: int,
        log_error: Log,
        log_info: Log,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._client = client
        self._stream = stream
        self._maxlen = maxlen
        self._log_error = log_error
        self._log_info = log_info
        self._clock = clock
        self._backoff = 0.0
        self._retry_at = 0.0
        self._dropped_while_down = 0
        self.dropped = 0

    def write(self, events: Sequence[EngineEvent]) -> None:
        """Publish the batch; while Redis is down, drop it and retry with backoff."""
        if not events:
            return
        if self._backoff and self._clock() < self._retry_at:
            self._drop(len(events))
            return
        try:
            pipe = self._client.pipeline(transaction=False)
            for event in events:
                pipe.xadd(
                    self._stream, {"payload": event.json}, maxlen=self._maxlen, approximate=True
                )
            pipe.execute()
        except (redis.RedisError, OSError) as exc:
            self._backoff = min(BACKOFF_MAX, self._backoff * 2 or BACKOFF_FIRST)
            self._retry_at = self._clock() + self._backoff
            self._drop(len(events))
            self._log_error(f"redis: {exc} (retrying in {self._backoff:g} s)")
            return
        if self._backoff:
            self._log_info(
                f"[OK] redis: publishing again ({self._dropped_while_down} events dropped)"
            )
            self._backoff = 0.0
            self._dropped_while_down = 0

    def _drop(self, count: int) -> None:
        self.dropped += count
        self._dropped_while_down += count

    def tick(self) -> None:
        """Nothing periodic: every batch is sent at once."""

    def close(self) -> None:
        """Close the connection pool."""
        self._client.close()


class SqliteSink:
    """One trade_intents row per decision; WAL; at most one commit per second."""

    def __init__(
        self, path: Path, log_error: Log, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._log_error = log_error
        self._clock = clock
        self._rows: list[tuple[str, str, str, float, str, str]] = []
        self._last_commit = clock()
        self.dropped = 0
        try:
            self._db = sqlite3.connect(str(path), timeout=5.0, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            for statement in SCHEMA:
                self._db.execute(statement)
        except sqlite3.Error as exc:
            raise StartupError(f"sqlite: cannot open {path}: {exc}") from exc

    def write(self, events: Sequence[EngineEvent]) -> None:
        """Queue the rows; they are committed by tick() or close()."""
        for event in events:
            decision = event.decision
            self._rows.append(
                (
                    event.payload["timestamp"],
                    event.tick.symbol,
                    decision.side,
                    decision.confidence,
                    model_source(decision),
                    event.json,
                )
            )
        self.tick()

    def tick(self) -> None:
        """Commit the queued rows if the last commit is at least a second old."""
        if self._rows and self._clock() - self._last_commit >= COMMIT_INTERVAL:
            self.flush()

    def flush(self) -> None:
        """Insert and commit every queued row in one transaction (dropped on error)."""
        rows, self._rows = self._rows, []
        self._last_commit = self._clock()
        if not rows:
            return
        try:
            with self._db:
                self._db.execute("BEGIN")
                self._db.executemany(INSERT, rows)
        except sqlite3.Error as exc:
            self.dropped += len(rows)
            self._log_error(f"sqlite: {exc} ({len(rows)} rows dropped)")

    def close(self) -> None:
        """Commit what is queued and close the database."""
        self.flush()
        self._db.close()
