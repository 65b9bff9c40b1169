"""The Markdown pieces every report shares: numbers and shares as people read them, table cells,
tables, bullet lists, and the header with the report's source and events.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any


def pct(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return "-"
    return f"{100.0 * value:.1f}%"


def num(value: Any, digits: int = 3) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(num(item, digits) for item in value) + "]"
    if not isinstance(value, float):
        return "-" if value is None else str(value)
    return f"{value:.{digits}f}" if math.isfinite(value) else str(value)


def plain(value: Any) -> str:
    """A threshold as written in code: 0.7, 1500, 1e-06."""
    if isinstance(value, float) and math.isfinite(value):
        return f"{value:g}"
    return num(value)


def cell(value: Any) -> str:
    """Text safe inside a Markdown table cell."""
    return str(value).replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def code(value: Any) -> str:
    return "`" + str(value).replace("`", "'") + "`"


def table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell(c) for c in row) + " |" for row in rows]
    return lines


def bullets(items: Sequence[Any], empty: str = "none") -> list[str]:
    return [f"- {item}" for item in items] if items else [f"- {empty}"]


def iso(now: datetime) -> str:
    return now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def source_lines(result: Mapping[str, Any]) -> list[str]:
    source = result.get("source") or {}
    window = result.get("window") or {}
    lines = []
    if source:
        selection = []
        if source.get("count") is not None:
            selection.append(f"newest {source['count']} events")
        if source.get("after") is not None:
            selection.append(f"after {code(source['after'])}")
        redis_url, stream = code(source.get("redis", "-")), code(source.get("stream", "-"))
        lines.append(
            f"- Source: {redis_url}, stream {stream}, "
            + (" ".join(selection) if selection else "every event")
        )
    if window.get("first_id") or window.get("last_id"):
        first, last = code(window.get("first_id")), code(window.get("last_id"))
        lines.append(f"- Window: stream ids {first} .. {last}")
    return lines


def header(result: Mapping[str, Any], title: str, now: datetime) -> list[str]:
    """The MODE header first (when the result has a mode), then what and when."""
    lines = [f"# MODE: {str(result['mode']).upper()}", ""] if result.get("mode") else []
    return [*lines, f"{'#' if not lines else '##'} {title}", "", f"Generated {iso(now)}", ""]


def events_line(result: Mapping[str, Any]) -> str:
    line = f"- Events: {result.get('event_count', 0)} valid, {result.get('malformed', 0)} malformed"
    if result.get("min_events") is not None:
        line += f" (minimum {result['min_events']} for {result.get('mode')})"
    return line
