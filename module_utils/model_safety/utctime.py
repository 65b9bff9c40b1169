"""UTC instants as ISO-8601 text ending in ``Z``, at the three precisions this project writes.

``iso_s`` gives ``2026-01-10T12:00:00Z`` (the lease), ``iso_ms`` ``2026-01-10T12:00:00.123Z``
(the activation log, telemetry and trade-log times) and ``iso_us``
``2026-01-10T12:00:00.123456Z`` (systemd start times, backup manifests). Finer digits are cut
off, never rounded, so the text never names a later instant than the one given.

Each takes an aware datetime or epoch seconds (int or float). A naive datetime raises
ValueError: its zone, and so its UTC time, is unknown. Standard library only.
"""

from __future__ import annotations

from datetime import UTC, datetime

_TO_SECONDS = "%Y-%m-%dT%H:%M:%S"


def as_utc(moment: datetime | float) -> datetime:
    """``moment`` (an aware datetime, or epoch seconds) as an aware datetime in UTC."""
    if isinstance(moment, datetime):
        if moment.tzinfo is None or moment.utcoffset() is None:
            raise ValueError(f"a naive datetime has no known UTC time: {moment!r}")
        return moment.astimezone(UTC)
    if isinstance(moment, bool) or not isinstance(moment, int | float):
        raise TypeError(f"not a datetime or epoch seconds: {moment!r}")
    return datetime.fromtimestamp(moment, UTC)


def iso_s(moment: datetime | float) -> str:
    """``2026-01-10T12:00:00Z``: whole seconds."""
    return as_utc(moment).strftime(_TO_SECONDS + "Z")


def iso_ms(moment: datetime | float) -> str:
    """``2026-01-10T12:00:00.123Z``: milliseconds."""
    utc = as_utc(moment)
    return utc.strftime(_TO_SECONDS) + f".{utc.microsecond // 1000:03d}Z"


def iso_us(moment: datetime | float) -> str:
    """``2026-01-10T12:00:00.123456Z``: microseconds."""
    utc = as_utc(moment)
    return utc.strftime(_TO_SECONDS) + f".{utc.microsecond:06d}Z"
