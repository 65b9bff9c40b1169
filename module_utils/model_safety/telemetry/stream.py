"""Read a window of telemetry events from the Redis stream, page by page, fail-closed.

* The client comes from :func:`..redis_client.connect` (URL, password, TLS, timeouts); only
  the redacted URL is ever shown.
* :func:`.cutover.parse_cutover` turns ``--after`` (an ISO-8601 time with ``Z`` or an offset,
  or a stream id ``<ms>-<seq>``) into an exclusive XRANGE start.
* :func:`read_window` reads the newest ``count`` entries, or every entry after the cutover,
  and feeds :class:`~.events.WindowBuilder` one page at a time: a raw page is dropped as soon
  as it is parsed, so memory holds the columnar window plus about two pages. Pages are
  pipelined (the next XRANGE is on the wire while the current page is parsed) and read as
  raw RESP replies, without redis-py's per-entry response callbacks.

Works with redis-py 4.3 (Debian bookworm, no hiredis) and 8.x, with or without
``decode_responses``. Every Redis or socket failure, a timeout, a missing stream or a key of
another type raises :class:`StreamError` with a message that names the redacted URL and the
stream; an empty window is not an error here (the gate fails it, saying so).
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Iterator
from typing import Any

import redis

from ..cutover import STREAM_ID_RE, stream_id_key
from ..redis_client import StreamError, describe_client
from ..site_defaults import DEFAULT_STREAM
from .events import EventWindow, WindowBuilder

DEFAULT_COUNT = 500
DEFAULT_PAGE_SIZE = 2000
MAX_PAGE_SIZE = 100_000
PAYLOAD_FIELD = "payload"
# Every this many entries the builder merges its pages into one set of columns (its build()
# keeps building on): the many small page arrays are freed and their memory reused, instead
# of piling up beside the final window (1M events: peak RSS about 210 MB instead of 315 MB).
CONSOLIDATE_ENTRIES = 100_000

_STREAM_NAME_RE = re.compile(r"[!-~]{1,256}")


# --------------------------------------------------------------------------- reading


def _text(value: bytes | str) -> str:
    return value.decode("ascii", "replace") if isinstance(value, bytes) else value


def _payload(fields: list[Any]) -> bytes | str | None:
    """The ``payload`` field of one entry's flat [field, value, ...] list; None when absent."""
    if len(fields) == 2:
        name = fields[0]
        if name == b"payload" or name == PAYLOAD_FIELD:
            return fields[1]
    for index in range(0, len(fields) - 1, 2):
        if fields[index] in (b"payload", PAYLOAD_FIELD):
            return fields[index + 1]
    return None


def _entries(page: list[Any]) -> list[tuple[Any, Any]]:
    """(id, payload) pairs of a raw XRANGE page, in page order."""
    return [(entry[0], _payload(entry[1])) for entry in page]


def _get_connection(pool: Any) -> Any:
    """A pooled connection; redis-py < 5.3 requires a command name, later ones warn on it."""
    try:
        parameter = inspect.signature(pool.get_connection).parameters.get("command_name")
    except (TypeError, ValueError):
        parameter = None
    if parameter is not None and parameter.default is inspect.Parameter.empty:
        return pool.get_connection("XRANGE")
    return pool.get_connection()


class _Pager:
    """Raw XRANGE/XREVRANGE pages over one pooled connection, one request ahead."""

    def __init__(self, client: Any) -> None:
        self._pool = client.connection_pool
        self._conn = _get_connection(self._pool)
        self._pending = False

    def _send(self, *args: Any) -> None:
        self._conn.send_command(*args)
        self._pending = True

    def _read(self) -> list[Any]:
        reply = self._conn.read_response()
        self._pending = False
        if isinstance(reply, Exception):
            raise reply
        return reply or []

    def close(self) -> None:
        if self._pending:  # an unread reply would poison the next user of the connection
            self._conn.disconnect()
        self._pool.release(self._conn)

    def walk(
        self,
        stream: str,
        lo: str,
        hi: str,
        page_size: int,
        *,
        reverse: bool = False,
        limit: int | None = None,
    ) -> Iterator[list[Any]]:
        """Pages of the entries in [lo, hi] (``(`` makes a bound exclusive), oldest first, or
        newest first with ``reverse``; at most ``limit`` entries in all."""
        remaining = limit

        def request(lo: str, hi: str) -> int:
            size = page_size if remaining is None else min(page_size, remaining)
            if reverse:
                self._send("XREVRANGE", stream, hi, lo, "COUNT", size)
            else:
                self._send("XRANGE", stream, lo, hi, "COUNT", size)
            return size

        asked = request(lo, hi)
        while True:
            page = self._read()
            if remaining is not None:
                remaining -= len(page)
            more = len(page) == asked and remaining != 0
            if more and not reverse and _text(page[-1][0]) == hi:
                more = False  # the inclusive end reached: no empty page to ask for
            if more:  # ask for the next page before the caller parses this one
                following = "(" + _text(page[-1][0])
                asked = request(lo, following) if reverse else request(following, hi)
            if page:
                yield page
            if not more:
                return


def _check_args(stream: str, count: int | None, page_size: int) -> None:
    if not isinstance(stream, str) or not _STREAM_NAME_RE.fullmatch(stream):
        raise ValueError(f"not a valid stream name: {stream!r}")
    if count is not None and (isinstance(count, bool) or not isinstance(count, int) or count < 1):
        raise ValueError(f"count must be a positive integer, not {count!r}")
    if (
        isinstance(page_size, bool)
        or not isinstance(page_size, int)
        or not 1 <= page_size <= MAX_PAGE_SIZE
    ):
        raise ValueError(f"page_size must be an integer in [1, {MAX_PAGE_SIZE}]: {page_size!r}")


def _stream_head(client: Any, stream: str) -> tuple[str | None, int]:
    """``(newest id, length)``; StreamError for a missing key or a key of another type."""
    kind = _text(client.type(stream))
    if kind == "none":
        raise StreamError(f"stream {stream!r} does not exist")
    if kind != "stream":
        raise StreamError(f"key {stream!r} is a {kind}, not a stream")
    length = int(client.xlen(stream))
    newest = client.xrevrange(stream, max="+", min="-", count=1)
    return (_text(newest[0][0]) if newest else None), length


def _read_pages(
    client: Any, stream: str, count: int | None, start: str, page_size: int
) -> EventWindow:
    end, length = _stream_head(client, stream)
    if end is None or (start != "-" and stream_id_key(start) >= stream_id_key(end)):
        return WindowBuilder().build()
    # Everything in (start, end] when there is no limit or the whole stream fits in it;
    # else the newest `count` entries, read backwards (the builder restores the order).
    backwards = count is not None and length > count
    builder = WindowBuilder(newest_first=backwards)
    pager = _Pager(client)
    try:
        limit = count if backwards else None
        pending = 0
        for page in pager.walk(stream, start, end, page_size, reverse=backwards, limit=limit):
            builder.add(_entries(page))
            pending += len(page)
            if pending >= CONSOLIDATE_ENTRIES:
                builder.build()
                pending = 0
        return builder.build()
    finally:
        pager.close()


def read_window_before(
    client: Any,
    stream: str,
    *,
    before: str,
    count: int,
    page_size: int = DEFAULT_PAGE_SIZE,
) -> EventWindow:
    """The newest ``count`` entries of ``stream`` up to and including the stream id ``before``
    (``<ms>-<seq>``), parsed, oldest first: the window that precedes a cutover. Raises like
    :func:`read_window`."""
    _check_args(stream, count, page_size)
    if not isinstance(before, str) or not STREAM_ID_RE.fullmatch(before):
        raise ValueError(f"before must be a stream id <ms>-<seq>: {before!r}")
    where = f"Redis at {describe_client(client)}"
    builder = WindowBuilder(newest_first=True)
    try:
        _stream_head(client, stream)
        pager = _Pager(client)
        try:
            for page in pager.walk(stream, "-", before, page_size, reverse=True, limit=count):
                builder.add(_entries(page))
        finally:
            pager.close()
    except StreamError:
        raise
    except (redis.RedisError, OSError) as exc:
        raise StreamError(
            f"{where} failed reading stream {stream!r}: {type(exc).__name__}: {exc}"
        ) from None
    return builder.build()


def read_window(
    client: Any,
    stream: str = DEFAULT_STREAM,
    *,
    count: int | None = DEFAULT_COUNT,
    after: str | None = None,
    page_size: int = DEFAULT_PAGE_SIZE,
) -> EventWindow:
    """The window of ``stream``, parsed: the newest ``count`` entries (None: no limit) that
    are later than ``after`` (an exclusive start from :func:`.cutover.parse_cutover`; None: no
    cutover).

    The window is fixed when reading starts (entries added meanwhile are not read). Raises
    ValueError for bad arguments and :class:`StreamError` when Redis cannot give the window.
    """
    _check_args(stream, count, page_size)
    if after is not None and not (
        isinstance(after, str) and after.startswith("(") and STREAM_ID_RE.fullmatch(after[1:])
    ):
        raise ValueError(f"after must be an exclusive stream id from parse_cutover: {after!r}")
    start = after if after is not None else "-"
    where = f"Redis at {describe_client(client)}"
    try:
        return _read_pages(client, stream, count, start, page_size)
    except StreamError:
        raise
    except redis.TimeoutError as exc:
        raise StreamError(f"{where} timed out reading stream {stream!r}: {exc}") from None
    except redis.AuthenticationError as exc:
        raise StreamError(f"{where} refused the credentials: {exc}") from None
    except (redis.ConnectionError, OSError) as exc:
        raise StreamError(f"{where} unreachable: {exc}") from None
    except redis.RedisError as exc:
        raise StreamError(
            f"{where} failed reading stream {stream!r}: {type(exc).__name__}: {exc}"
        ) from None
