"""The ``--after`` cutover: a stream id ``<ms>-<seq>`` or an ISO-8601 time with a zone, turned
into the exclusive XRANGE start after which events count.

Standard library only, so that the command line can refuse a bad cutover while it parses its
arguments (a usage error), before numpy or redis are imported.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

STREAM_ID_RE = re.compile(r"([0-9]{1,20})-([0-9]{1,20})")
_MAX_U64 = 2**64 - 1


def parse_cutover(text: str) -> str:
    """The exclusive XRANGE start for ``--after``: only entries later than it count.

    ``text`` is a stream id ``<ms>-<seq>`` (entries after that id) or an ISO-8601 time with
    ``Z`` or a UTC offset (entries whose id time is later than it, to the millisecond). A time
    without a zone, a bare number, a time outside 1970..9999 UTC and anything else raise
    ValueError (fail-closed: an ambiguous cutover is no cutover).
    """
    if not isinstance(text, str) or not text.strip():
        raise ValueError("cutover is empty: give an ISO-8601 time or a stream id <ms>-<seq>")
    text = text.strip()
    if match := STREAM_ID_RE.fullmatch(text):
        ms, seq = int(match.group(1)), int(match.group(2))
        if ms > _MAX_U64 or seq > _MAX_U64 or (ms, seq) == (_MAX_U64, _MAX_U64):
            raise ValueError(f"stream id out of range: {text!r}")
        return f"({ms}-{seq}"
    if re.fullmatch(r"[0-9]+", text):
        raise ValueError(f"ambiguous cutover {text!r}: give a stream id <ms>-<seq> or ISO time")
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"not an ISO-8601 time or a stream id <ms>-<seq>: {text[:80]!r}") from None
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"cutover time {text!r} has no zone: add Z or an offset such as +00:00")
    try:
        utc = moment.astimezone(UTC)
    except OverflowError:  # its UTC time is outside the years 1..9999 (9999-12-31T23:59-23:59)
        raise ValueError(f"cutover time {text!r} is out of range") from None
    delta = utc - datetime(1970, 1, 1, tzinfo=UTC)
    micros = (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds
    if micros < 0:
        raise ValueError(f"cutover time {text!r} is before 1970")
    # Entries whose id millisecond is later than the instant: start after <floor ms>-<max seq>.
    return f"({micros // 1000}-{_MAX_U64}"


def stream_id_key(stream_id: str) -> tuple[int, int]:
    """``(ms, seq)`` of a stream id, for comparisons."""
    ms, _sep, seq = stream_id.lstrip("(").partition("-")
    return int(ms), int(seq or 0)
