"""The feature-drift section of the gate's and feature sanity's Markdown reports (:mod:`.drift`):
the status, the reference (where from, how many events, when), the thresholds and, per feature,
its PSI, both windows' value counts, its bins and its status."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from . import markdown as md

COLUMNS = ("feature", "PSI", "reference values", "current values", "bins", "status")


def _reference_line(reference: Mapping[str, Any]) -> str:
    where = md.code(reference["path"]) if reference.get("path") else reference.get("source")
    return (
        f"- Reference: {where}, {reference.get('event_count')} events "
        f"{reference.get('first_ts') or '-'} .. {reference.get('last_ts') or '-'} "
        f"of {md.code(reference.get('stream') or '-')}"
    )


def drift_section(drift: Any) -> list[str]:
    """The section's lines; none when the result has no drift part."""
    if not isinstance(drift, Mapping):
        return []
    status = str(drift.get("status", "-"))
    lines = [f"## Feature drift: {status.upper()}", ""]
    if status == "not_judged":
        return [*lines, f"Not judged: {drift.get('reason') or 'no feature reference'}.", ""]
    limits = drift.get("thresholds") or {}
    lines.append(
        f"- PSI per feature: a warning above {limits.get('psi_warn')}, a blocker above "
        f"{limits.get('psi_block')}; not decided below {limits.get('psi_min_events')} values "
        "in either window"
    )
    if isinstance(drift.get("reference"), Mapping):
        lines.append(_reference_line(drift["reference"]))
    if drift.get("reason"):
        lines.append(f"- Error: {drift['reason']}")
    lines.append("")
    rows = [
        [
            name,
            md.num(row.get("psi")),
            md.num(row.get("reference_n")),
            md.num(row.get("current_n")),
            md.num(row.get("bins")),
            str(row.get("status")),
        ]
        for name, row in (drift.get("features") or {}).items()
    ]
    if rows:
        lines += [*md.table(COLUMNS, rows), ""]
    findings = [*(drift.get("blockers") or []), *(drift.get("warnings") or [])]
    if findings:
        lines += [*md.bullets(findings), ""]
    return lines
