"""Length, newest event, its age and the recent rate of the engine's Redis stream, from the
ids of its newest entries (an id is the time the server added the entry).
"""

from __future__ import annotations

import re
from typing import Any

from .commands import EngineStateError
from .validation import validate_sample, validate_stream_name

DEFAULT_SAMPLE = 200
_STREAM_ID_RE = re.compile(r"([0-9]+)-[0-9]+")


def _text(value: bytes | str) -> str:
    return value.decode("ascii") if isinstance(value, bytes) else str(value)


def stream_id_ms(stream_id: bytes | str) -> int:
    """The millisecond part of a Redis stream id such as ``1700000000000-0``."""
    match = _STREAM_ID_RE.fullmatch(_text(stream_id))
    if not match:
        raise EngineStateError(f"not a stream id: {stream_id!r}")
    return int(match.group(1))


def span_rate(ids_ms: list[int]) -> float | None:
    """Events per second of the stream-id times ``ids_ms`` (newest first): ``(n - 1) / span``;
    None with fewer than two ids or a zero span."""
    span_ms = ids_ms[0] - ids_ms[-1] if ids_ms else 0
    return (len(ids_ms) - 1) * 1000.0 / span_ms if len(ids_ms) >= 2 and span_ms > 0 else None


def _server_now_ms(client: Any) -> int:
    seconds, microseconds = client.time()
    return int(seconds) * 1000 + int(microseconds) // 1000


def stream_stats(
    client: Any, stream: str, sample: int = DEFAULT_SAMPLE, now_ms: int | None = None
) -> dict[str, Any]:
    """Length, newest id, age of the newest event and recent rate of a Redis stream.

    The rate is ``(n - 1) / span`` over the ids of the newest ``sample`` entries (None with
    fewer than two entries or a zero span). ``now_ms`` defaults to the Redis server's clock,
    the one that stamps auto-generated ids. A missing stream has length 0 and no rates.
    """
    validate_stream_name(stream)
    validate_sample(sample)
    length = int(client.xlen(stream))
    entries = client.xrevrange(stream, max="+", min="-", count=sample) if length else []
    ids_ms = [stream_id_ms(entry_id) for entry_id, _fields in entries]
    stats: dict[str, Any] = {
        "stream": stream,
        "length": length,
        "last_id": _text(entries[0][0]) if entries else None,
        "last_event_age_s": None,
        "rate_per_s": None,
        "sampled": len(ids_ms),
    }
    if ids_ms:
        now = _server_now_ms(client) if now_ms is None else now_ms
        stats["last_event_age_s"] = round((now - ids_ms[0]) / 1000.0, 3)
        rate = span_rate(ids_ms)
        stats["rate_per_s"] = None if rate is None else round(rate, 3)
    return stats
