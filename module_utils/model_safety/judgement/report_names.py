"""The names of the report files, defined once: judgement.reports writes them, the fleet status
page (fleet.details, fleet.page) finds and checks them. Standard library only.

``<kind>_<UTC %Y%m%dT%H%M%SZ>[_<n>].<ext>`` (``_1``, ``_2``, ... when that second is taken),
and ``<kind>_latest.md`` for the kinds that keep one.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

STAMP_FORMAT = "%Y%m%dT%H%M%SZ"
REPORT_NAME_RE = re.compile(
    r"(?P<kind>[a-z][a-z0-9_]*?)_(?P<stamp>\d{8}T\d{6}Z)(?:_(?P<suffix>\d{1,4}))?"
    r"\.(?P<ext>md|html|json)"
)
LATEST_NAME_RE = re.compile(r"[a-z][a-z0-9_]*_latest\.md")


def stamp(now: datetime) -> str:
    """The stamp of a report written at ``now`` (timezone-aware), in UTC."""
    if now.tzinfo is None:
        raise ValueError("report time must be timezone-aware")
    return now.astimezone(UTC).strftime(STAMP_FORMAT)


def stamp_time(text: str) -> datetime:
    """A report name's stamp (``20261204T193406Z``) as the UTC time it names."""
    return datetime.strptime(text, STAMP_FORMAT).replace(tzinfo=UTC)
