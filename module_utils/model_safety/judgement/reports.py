"""Reports of the gate and its sibling checks: Markdown for people, the same result as JSON.

``write_reports(result, kind)`` writes ``<report_dir>/<kind>_<UTC %Y%m%dT%H%M%SZ>.md`` and
``.json`` beside it (a ``_1``, ``_2``, ... suffix when that second is taken), and for the
scoreboard also ``scoreboard_latest.md``. Every file appears atomically (written to a temporary
file in the same directory, flushed, then linked or renamed into place) with mode 0640, so a
reader sees the old file or the new one, never half of one.

The Markdown answers "why did it fail" on the page: the MODE header first, the verdict, every
blocker with its measured value and threshold, per-model tables and the first malformed
events. ``to_jsonable`` is the one conversion to JSON (numpy values to Python, NaN and
infinities to null), shared with the CLI's ``--json``.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections.abc import Mapping
from dataclasses import asdict, is_dataclass
from datetime import UTC, datetime
from typing import Any

from .analytics_report import render_feature_sanity, render_scoreboard, render_shadow_report
from .compare_report import render_compare
from .damage_report import render_damage
from .gate_report import render_quality_gate
from .promotion_report import render_promotion_decision
from .report_names import stamp

KINDS = (
    "quality_gate",
    "scoreboard",
    "feature_sanity",
    "shadow_report",
    "promotion_decision",
    "compare",
    "damage",
)
HTML_KINDS = ("quality_gate", "scoreboard", "shadow_report", "compare", "damage")
"""The kinds judgement.html_report renders as a page (the others: Markdown and JSON only)."""
DEFAULT_REPORT_DIR = "reports/safety"
FILE_MODE = 0o640
DIR_MODE = 0o750
LATEST = {"scoreboard": "scoreboard_latest.md"}
_MAX_SUFFIX = 1000


# --------------------------------------------------------------------------- JSON


def to_jsonable(value: Any) -> Any:
    """``value`` as plain JSON data: numpy scalars and arrays become Python numbers and lists,
    non-finite floats become None, tuples and sets lists, dataclasses dicts, keys strings."""
    if value is None or isinstance(value, bool | str | int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {str(key): to_jsonable(item) for key, item in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [to_jsonable(item) for item in value]
    if is_dataclass(value) and not isinstance(value, type):
        return to_jsonable(asdict(value))
    if hasattr(value, "tolist"):  # numpy scalars and arrays, without importing numpy here
        return to_jsonable(value.tolist())
    return str(value)


def dumps(result: Mapping[str, Any], *, indent: int | None = None) -> str:
    """The result as one strict JSON document (no NaN tokens)."""
    return json.dumps(to_jsonable(result), indent=indent, allow_nan=False)


RENDERERS = {
    "quality_gate": render_quality_gate,
    "scoreboard": render_scoreboard,
    "feature_sanity": render_feature_sanity,
    "shadow_report": render_shadow_report,
    "promotion_decision": render_promotion_decision,
    "compare": render_compare,
    "damage": render_damage,
}


def render_markdown(result: Mapping[str, Any], kind: str, now: datetime | None = None) -> str:
    """The Markdown report of ``result`` for ``kind`` (one of :data:`KINDS`)."""
    if kind not in RENDERERS:
        raise ValueError(f"unknown report kind {kind!r} (one of {', '.join(KINDS)})")
    return RENDERERS[kind](result, now or datetime.now(UTC))


def _render_html(result: Mapping[str, Any], kind: str, now: datetime) -> str:
    # Imported here, not above: it loads matplotlib, which only the controller has (the
    # modules on the targets write Markdown and JSON through this file too).
    from .html_report import render_html

    return render_html(result, kind, now)


# --------------------------------------------------------------------------- files


def _fsync_dir(directory: str) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _temp_file(directory: str, name: str, text: str) -> str:
    fd, temp = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temp, FILE_MODE)
    except BaseException:
        os.unlink(temp)
        raise
    return temp


def atomic_write(path: str, text: str, *, exclusive: bool = False) -> None:
    """Write ``text`` to ``path`` atomically, mode 0640; with ``exclusive`` never replace an
    existing file (FileExistsError)."""
    directory, name = os.path.split(os.path.abspath(path))
    temp = _temp_file(directory, name, text)
    try:
        if exclusive:
            os.link(temp, path)  # atomic, and fails if the name is taken
            os.unlink(temp)
        else:
            os.replace(temp, path)
    except BaseException:
        if os.path.exists(temp):
            os.unlink(temp)
        raise
    _fsync_dir(directory)


def _make_report_dir(report_dir: str) -> None:
    """Create ``report_dir`` (and its parents) when missing, 0750 whatever the umask; an
    existing directory is left as it is."""
    try:
        os.makedirs(report_dir, mode=DIR_MODE)
    except FileExistsError:
        return
    os.chmod(report_dir, DIR_MODE)


def write_reports(
    result: Mapping[str, Any],
    kind: str,
    report_dir: str = DEFAULT_REPORT_DIR,
    now: datetime | None = None,
    *,
    html: bool = False,
) -> dict[str, str]:
    """Write the Markdown and JSON reports of ``result``; return their paths.

    Returns ``{"markdown": path, "json": path}``, plus ``"latest"`` for the scoreboard and
    ``"html"`` with ``html`` (the page of judgement.html_report, beside the other two; only
    for its HTML_KINDS, ValueError for another kind). Raises OSError when the directory or a
    file cannot be written.
    """
    now = now or datetime.now(UTC)
    markdown = render_markdown(result, kind, now)
    page = _render_html(result, kind, now) if html else None
    document = dumps(result, indent=2) + "\n"
    _make_report_dir(report_dir)
    base = os.path.join(report_dir, f"{kind}_{stamp(now)}")
    for attempt in range(_MAX_SUFFIX):
        stem = base if attempt == 0 else f"{base}_{attempt}"
        try:
            atomic_write(stem + ".md", markdown, exclusive=True)
        except FileExistsError:
            continue
        atomic_write(stem + ".json", document)
        paths = {"markdown": stem + ".md", "json": stem + ".json"}
        if page is not None:
            atomic_write(stem + ".html", page)
            paths["html"] = stem + ".html"
        break
    else:
        raise FileExistsError(f"no free report name for {base}")
    if kind in LATEST:
        latest = os.path.join(report_dir, LATEST[kind])
        atomic_write(latest, markdown)
        paths["latest"] = latest
    return paths
