"""Unit tests of model_safety.telemetry.stream without a server: cutover, URLs, redaction,
arguments.

Reading from a real redis-server (pages, cutovers, --count, errors) is tested in
tests/integration/test_gate_cli.py.
"""

from __future__ import annotations

import pytest
import redis

from model_safety.cutover import parse_cutover
from model_safety.redis_client import (
    StreamError,
    connect,
    describe_client,
    redact_url,
    resolve_url,
    scrub,
    url_secrets,
)
from model_safety.site_defaults import DEFAULT_REDIS_URL
from model_safety.telemetry import stream
from model_safety.telemetry.stream import read_window

MAX_SEQ = 2**64 - 1
NOON_MS = 1768046400000  # 2026-01-10T12:00:00Z


# --------------------------------------------------------------------------- cutover


@pytest.mark.parametrize(
    ("text", "start"),
    [
        ("1700000000000-0", "(1700000000000-0"),
        ("1700000000000-17", "(1700000000000-17"),
        (" 1700000000000-5 ", "(1700000000000-5"),
        ("0-1", "(0-1"),
        ("2026-01-10T12:00:00Z", f"({NOON_MS}-{MAX_SEQ}"),
        ("2026-01-10T12:00:00.000Z", f"({NOON_MS}-{MAX_SEQ}"),
        ("2026-01-10T12:00:00.123Z", f"({NOON_MS + 123}-{MAX_SEQ}"),
        # Sub-millisecond: entries whose id millisecond is later than the instant.
        ("2026-01-10T12:00:00.0005Z", f"({NOON_MS}-{MAX_SEQ}"),
        ("2026-01-10T12:00:00.999999Z", f"({NOON_MS + 999}-{MAX_SEQ}"),
        ("2026-01-10T14:00:00+02:00", f"({NOON_MS}-{MAX_SEQ}"),
        ("2026-01-10T07:00:00-05:00", f"({NOON_MS}-{MAX_SEQ}"),
        ("2026-01-10 12:00:00+00:00", f"({NOON_MS}-{MAX_SEQ}"),
        ("1970-01-01T00:00:00Z", f"(0-{MAX_SEQ}"),
    ],
)
def test_parse_cutover(text: str, start: str) -> None:
    assert parse_cutover(text) == start


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty"),
        ("   ", "empty"),
        ("2026-01-10T12:00:00", "no zone"),
        ("2026-01-10", "no zone"),
        ("1700000000000", "ambiguous"),
        ("yesterday", "not an ISO-8601 time"),
        ("1700000000000-", "not an ISO-8601 time"),
        ("-1-0", "not an ISO-8601 time"),
        ("1700000000000-0-0", "not an ISO-8601 time"),
        ("1700000000000-x", "not an ISO-8601 time"),
        ("(1700000000000-0", "not an ISO-8601 time"),
        ("1969-12-31T23:59:59Z", "before 1970"),
        (f"{2**64}-0", "out of range"),
        (f"{MAX_SEQ}-{MAX_SEQ}", "out of range"),
        ("2026-13-10T12:00:00Z", "not an ISO-8601 time"),
        # Their UTC time is outside the years datetime knows (OverflowError before).
        ("9999-12-31T23:59:59-23:59", "out of range"),
        ("0001-01-01T00:00:00+23:59", "out of range"),
    ],
)
def test_parse_cutover_rejects(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_cutover(text)


def test_parse_cutover_rejects_non_strings() -> None:
    with pytest.raises(ValueError):
        parse_cutover(None)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        parse_cutover(1700000000000)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- URLs


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("redis://127.0.0.1:6379/0", "redis://127.0.0.1:6379/0"),
        ("redis://:s3cret@10.0.0.5:6380/2", "redis://:***@10.0.0.5:6380/2"),
        ("redis://qt:s3cret@h/0", "redis://qt:***@h/0"),
        ("redis://qt@h/0", "redis://qt@h/0"),
        ("rediss://:p%40ss@h:6380/0?ssl_cert_reqs=required", "rediss://:***@h:6380/0?ssl_cert_reqs=required"),
        ("redis://h/0?password=s3cret&db=1", "redis://h/0?password=***&db=1"),
        ("unix:///run/redis.sock?db=1&password=s3cret", "unix:///run/redis.sock?db=1&password=***"),
        ("redis://[::1]:6379/0", "redis://[::1]:6379/0"),
        ("redis://h:notaport/0", "<unparsable redis url>"),
    ],
)  # fmt: skip
def test_redact_url(url: str, shown: str) -> None:
    assert redact_url(url) == shown
    assert "s3cret" not in redact_url(url)


def test_url_secrets_and_scrub() -> None:
    url = "redis://qt:p%40ss@h/0?password=other"
    env = {"MODEL_SAFETY_REDIS_PASSWORD": "envpw", "REDISCLI_AUTH": "clipw", "HOME": "/root"}
    secrets = url_secrets(url, env)
    assert set(secrets) == {"p%40ss", "p@ss", "other", "envpw", "clipw"}
    assert scrub("a p@ss b p%40ss c envpw d clipw", secrets) == "a *** b *** c *** d ***"
    assert scrub("nothing here", []) == "nothing here"


def test_resolve_url_order() -> None:
    assert resolve_url(None, {}) == DEFAULT_REDIS_URL == "redis://127.0.0.1:6379/0"
    assert resolve_url(None, {"MODEL_SAFETY_REDIS_URL": "redis://e/1"}) == "redis://e/1"
    assert resolve_url("redis://a/2", {"MODEL_SAFETY_REDIS_URL": "redis://e/1"}) == "redis://a/2"


def _kwargs(client: redis.Redis) -> dict:
    return client.connection_pool.connection_kwargs


def test_connect_defaults_and_timeouts() -> None:
    client = connect(None, {}, timeout=2.5)
    kwargs = _kwargs(client)
    assert (kwargs["host"], kwargs["port"], kwargs["db"]) == ("127.0.0.1", 6379, 0)
    assert kwargs["socket_timeout"] == 2.5
    assert kwargs["socket_connect_timeout"] == 2.5
    assert kwargs.get("password") is None
    assert describe_client(client) == "redis://127.0.0.1:6379/0"


def test_connect_password_from_url_wins_over_env() -> None:
    env = {"MODEL_SAFETY_REDIS_PASSWORD": "envpw", "REDISCLI_AUTH": "clipw"}
    assert _kwargs(connect("redis://:urlpw@h:1/0", env))["password"] == "urlpw"
    assert _kwargs(connect("redis://h:1/0?password=qpw", env))["password"] == "qpw"


@pytest.mark.parametrize(
    ("env", "password"),
    [
        ({"MODEL_SAFETY_REDIS_PASSWORD": "envpw", "REDISCLI_AUTH": "clipw"}, "envpw"),
        ({"REDISCLI_AUTH": "clipw"}, "clipw"),
        ({"MODEL_SAFETY_REDIS_PASSWORD": "", "REDISCLI_AUTH": "clipw"}, "clipw"),
        ({}, None),
    ],
)
def test_connect_password_from_env(env: dict[str, str], password: str | None) -> None:
    assert _kwargs(connect("redis://h:1/0", env)).get("password") == password


def test_connect_url_from_env_and_tls() -> None:
    client = connect(None, {"MODEL_SAFETY_REDIS_URL": "rediss://h:6380/3?ssl_cert_reqs=none"})
    assert client.connection_pool.connection_class is redis.SSLConnection
    assert describe_client(client) == "rediss://h:6380/3"


def test_connect_unix_socket() -> None:
    client = connect("unix:///run/redis/redis.sock?db=2", {"REDISCLI_AUTH": "pw"})
    kwargs = _kwargs(client)
    assert (kwargs["path"], kwargs["db"], kwargs["password"]) == ("/run/redis/redis.sock", 2, "pw")
    assert "socket_connect_timeout" not in kwargs  # redis-py 4.3's unix connections lack it
    assert describe_client(client) == "unix:///run/redis/redis.sock?db=2"


@pytest.mark.parametrize(
    "url", ["http://h/0", "h:6379", "redis://:s3cret@h:notaport/0", "ftp://:s3cret@h/0"]
)
def test_connect_rejects_bad_urls_without_leaking(url: str) -> None:
    with pytest.raises(StreamError) as caught:
        connect(url, {})
    assert "s3cret" not in str(caught.value)


@pytest.mark.parametrize(
    "url", ["redis://:s3cret@h:1/abc", "rediss://h/1/2", "redis://h/0x1", "redis://h/-1"]
)
def test_connect_rejects_a_path_that_is_no_db_number(url: str) -> None:
    # redis-py would read /abc silently as db 0 and /1/2 as db 12.
    with pytest.raises(StreamError, match="the path must be a db number such as /0") as caught:
        connect(url, {})
    assert "s3cret" not in str(caught.value)


@pytest.mark.parametrize(("url", "db"), [("redis://h", 0), ("redis://h/", 0), ("redis://h/12", 12)])
def test_connect_reads_the_db_of_the_path(url: str, db: int) -> None:
    assert _kwargs(connect(url, {})).get("db", 0) == db


@pytest.mark.parametrize("timeout", [0, -1, float("nan"), float("inf"), "5"])
def test_connect_rejects_bad_timeouts(timeout: object) -> None:
    with pytest.raises(StreamError, match="timeout"):
        connect("redis://h/0", {}, timeout=timeout)  # type: ignore[arg-type]


def test_describe_client_of_anything() -> None:
    assert describe_client(object()) == "redis"


# --------------------------------------------------------------------------- entries


@pytest.mark.parametrize(
    ("fields", "payload"),
    [
        ([b"payload", b"{}"], b"{}"),
        (["payload", "{}"], "{}"),
        ([b"other", b"x", b"payload", b"{}"], b"{}"),
        ([b"other", b"x"], None),
        ([], None),
        ([b"payload"], None),
    ],
)
def test_payload_field(fields: list, payload: object) -> None:
    assert stream._payload(fields) == payload


def test_entries_keep_page_order() -> None:
    page = [[b"1-0", [b"payload", b"a"]], [b"2-0", [b"x", b"y"]], [b"3-0", [b"payload", b"c"]]]
    assert list(stream._entries(page)) == [(b"1-0", b"a"), (b"2-0", None), (b"3-0", b"c")]
    plain = [[b"1-0", [b"payload", b"a"]], [b"2-0", [b"payload", b"b"]]]
    assert list(stream._entries(plain)) == [(b"1-0", b"a"), (b"2-0", b"b")]
    decoded = [["1-0", ["payload", "a"]], ["2-0", ["payload", "b", "x", "y"]]]
    assert list(stream._entries(decoded)) == [("1-0", "a"), ("2-0", "b")]
    assert list(stream._entries([])) == []


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"count": 0}, "count"),
        ({"count": -5}, "count"),
        ({"count": True}, "count"),
        ({"count": 1.5}, "count"),
        ({"page_size": 0}, "page_size"),
        ({"page_size": 100_001}, "page_size"),
        ({"after": "1700000000000-0"}, "after"),
        ({"after": "(junk"}, "after"),
    ],
)
def test_read_window_rejects_bad_arguments(kwargs: dict, message: str) -> None:
    # Arguments are checked before anything is sent: the client is never used.
    with pytest.raises(ValueError, match=message):
        read_window(object(), "s", **kwargs)


@pytest.mark.parametrize("name", ["", "a b", "x" * 257, "tab\there", None])
def test_read_window_rejects_bad_stream_names(name: object) -> None:
    with pytest.raises(ValueError, match="stream name"):
        read_window(object(), name)  # type: ignore[arg-type]


def test_stream_id_key_orders_ids() -> None:
    assert stream.stream_id_key("(5-2") == (5, 2)
    assert stream.stream_id_key("10-0") > stream.stream_id_key("9-99")
