"""The monitor timeline's page (``model-safety monitor-timeline``): one self-contained HTML file.

Per host, time on x in five charts sharing that axis: each check as a mark in its status's
lane (ok, warning, error, violation, ended), the events read so far (summed: at production
rates most checks read none or one), the window's agreement and hard disagreement with the monitor's
limits, its action shares with the 70 % line, and its confidence p10..p90 with the median and
the spread against ``min_spread``. Every chart marks the violations (red), the rollback
(purple; black when it failed), the end of the watch (green completed, amber inconclusive)
and the start of each watch. Below: the outcome per host and the table of violations with the
violated rule's value and threshold.

Built with judgement.html_report's page skeleton and chart helpers (matplotlib to inline SVG,
text as plain text, every string from the log escaped). Controller only: loads matplotlib.
"""

from __future__ import annotations

import html
import math
from collections.abc import Mapping
from datetime import UTC, datetime
from itertools import accumulate
from typing import Any

import matplotlib.dates as mdates
from matplotlib.figure import Figure

from ..judgement import markdown as md
from ..judgement.html_report import (
    ACTION_COLOURS,
    ACTIONS,
    cells_table,
    chart_section,
    figure_svg,
    page,
    plain_text,
)
from ..judgement.thresholds import Thresholds
from .settings import MonitorSettings, is_number
from .timeline import HostTimeline, Timeline, record_outcome

FEW_CHECKS = 60
MAX_POINTS = 1500  # per line: 12.5 h of checks every 30 s
STATUS_LANES = ("ok", "warning", "error", "violation", "ended")
_STATUS_COLOURS = {
    "ok": "#2e7d32",
    "warning": "#f9a825",
    "error": "#757575",
    "violation": "#c62828",
    "ended": "#000000",
}
# How each outcome of a watch is drawn: the line's colour and the page's verdict class.
_OUTCOME_STYLE = {
    "completed": ("#2e7d32", "pass"),
    "inconclusive": ("#f9a825", "other"),
    "ended": ("#757575", "other"),
    "rolled back": ("#6a1b9a", "fail"),
    "rollback failed": ("#000000", "fail"),
    "violation, no rollback recorded": ("#c62828", "fail"),
    "monitoring": ("#1565c0", "other"),
}
# The page's verdict: the worst outcome of its hosts.
_WORST_FIRST = (
    "rollback failed",
    "violation, no rollback recorded",
    "rolled back",
    "inconclusive",
    "ended",
    "monitoring",
    "completed",
)


def _when(ts: float | None) -> str:
    return "-" if ts is None else md.iso(datetime.fromtimestamp(ts, UTC))


def _moment(check: Mapping[str, Any]) -> datetime:
    return datetime.fromtimestamp(check["ts"], UTC)


def _series(checks: list[dict[str, Any]], name: str) -> list[float]:
    return [math.nan if c.get(name) is None else c[name] for c in checks]


def limits(settings: Mapping[str, Any]) -> dict[str, float]:
    """The limits the run was judged at: its monitoring_started record's settings over the
    monitor's defaults (a log without that record: the defaults)."""
    try:
        gate = Thresholds().with_overrides(dict(settings.get("thresholds") or {}))
    except (TypeError, ValueError):
        gate = Thresholds()
    return {
        "max_action_share": gate.max_action_share,
        "min_spread": gate.min_spread,
        "max_hard_disagree": _share(settings, "max_hard_disagree"),
        "redundant_agreement": _share(settings, "redundant_agreement"),
    }


def _share(settings: Mapping[str, Any], name: str) -> float:
    """The run's share ``name`` when the log has a usable one, else the monitor's default."""
    value = settings.get(name)
    return float(value) if is_number(value) and 0 < value < 1 else getattr(MonitorSettings, name)


def _marks(host: HostTimeline) -> list[tuple[float, str, str, str]]:
    """(ts, colour, line style, label) of the lines every chart of ``host`` carries."""
    marks = [(v["ts"], "#c62828", ":", "violation") for v in host.violations]
    for record in host.records:
        if record["event"] == "monitoring_started" and not record.get("resumed"):
            marks.append((record["ts"], "#9e9e9e", "--", "watch started"))
        elif outcome := record_outcome(record):
            marks.append((record["ts"], _OUTCOME_STYLE[outcome][0], "-", outcome))
    return marks


def _share_chart(axes: Any, title: str, limit_lines: list[tuple[float, str, str]]) -> None:
    """A chart of shares (0 to 1): its limits as (value, colour, line style), title, legend."""
    for value, colour, style in limit_lines:
        axes.axhline(value, color=colour, linestyle=style, lw=0.8)
    axes.set_ylim(0, 1)
    axes.set_title(title, fontsize="small", loc="left")
    axes.legend(loc="upper left", bbox_to_anchor=(1.01, 1), fontsize="small")


def host_chart(host: HostTimeline, salt: str) -> str:
    """The five charts of one host over time, as one SVG."""
    # A long --since span: the lines take every step-th check (the window's figures move
    # slowly), so the page stays small; the status lanes keep every check that was not ok.
    step = max(1, math.ceil(len(host.checks) / MAX_POINTS))
    checks = host.checks[::step]
    times = [_moment(c) for c in checks]
    bounds = limits(host.settings)
    # A line needs two checks: with few, each check's value is a dot as well.
    dots: dict[str, Any] = {"marker": "o", "markersize": 3} if len(checks) <= FEW_CHECKS else {}
    figure = Figure(figsize=(10, 9.5))
    axes = figure.subplots(5, 1, sharex=True, height_ratios=[1.1, 0.9, 1.3, 1.3, 1.3])
    lanes, events, agreement, actions, confidence = axes

    for index, status in enumerate(STATUS_LANES):
        at = [
            _moment(c) for c in (checks if status == "ok" else host.checks) if c["status"] == status
        ]
        if at:
            lanes.scatter(
                at,
                [index] * len(at),
                s=36 if status == "violation" else 10,
                marker="X" if status == "violation" else "o",
                color=_STATUS_COLOURS[status],
                zorder=3,
            )
    lanes.set_yticks(range(len(STATUS_LANES)), STATUS_LANES)
    lanes.set_ylim(-0.6, len(STATUS_LANES) - 0.4)
    lanes.set_title("checks by status", fontsize="small", loc="left")

    silent = sum(1 for c in host.checks if not c["events"])
    # Summed, not per check: at one event a minute most checks read 0 or 1, and the slope of
    # the sum is the rate at any rate (flat: nothing read).
    read = list(accumulate(c["events"] for c in host.checks))[::step]
    events.step(times, read, where="post", **dots)
    events.set_ylim(bottom=0)
    events.set_title(
        f"events read since the first check shown ({silent} of {len(host.checks)} checks "
        "read none)",
        fontsize="small",
        loc="left",
    )

    agreement.plot(times, _series(checks, "agreement"), color="#1565c0", label="agreement", **dots)
    agreement.plot(
        times, _series(checks, "hard_disagree"), color="#c62828", label="hard disagree", **dots
    )
    _share_chart(
        agreement,
        f"window agreement (redundant > {bounds['redundant_agreement']:.0%}) and hard "
        f"disagreement (limit {bounds['max_hard_disagree']:.0%})",
        [
            (bounds["redundant_agreement"], "#1565c0", "--"),
            (bounds["max_hard_disagree"], "#c62828", "--"),
        ],
    )

    for action in ACTIONS:
        shares = [
            math.nan if c["actions"].get(action) is None else c["actions"][action] for c in checks
        ]
        actions.plot(times, shares, color=ACTION_COLOURS[action], label=action, **dots)
    _share_chart(
        actions,
        f"window action shares (max share {bounds['max_action_share']:.0%})",
        [(bounds["max_action_share"], "black", "--")],
    )

    p10, median, p90 = (_series(checks, name) for name in ("p10", "median", "p90"))
    confidence.fill_between(times, p10, p90, color="#90caf9", label="p10..p90", step="mid")
    confidence.plot(times, median, color="#0d47a1", label="median", **dots)
    confidence.plot(
        times,
        [high - low for low, high in zip(p10, p90, strict=True)],
        color="#c62828",
        linestyle="--",
        label="p90 - p10",
    )
    _share_chart(
        confidence,
        f"window confidence (spread p90 - p10 at least {bounds['min_spread']:.2f})",
        [(bounds["min_spread"], "#c62828", ":")],
    )

    seen: set[str] = set()
    for ts, colour, style, label in _marks(host):
        moment = datetime.fromtimestamp(ts, UTC)
        for chart in axes:
            chart.axvline(moment, color=colour, linestyle=style, lw=1.2, zorder=1)
        if label not in seen:  # one legend entry per kind of mark
            seen.add(label)
            lanes.plot([], [], color=colour, linestyle=style, label=label)
    if seen:
        lanes.legend(loc="upper left", bbox_to_anchor=(1.01, 1), fontsize="small")
    locator = mdates.AutoDateLocator(tz=UTC)
    confidence.xaxis.set_major_locator(locator)
    confidence.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator, tz=UTC))
    confidence.set_xlabel("time (UTC)")
    return figure_svg(figure, salt)


def _value(value: Any) -> str:
    return md.num(value, 4) if isinstance(value, int | float) else str(value)


def _outcome_rows(timeline: Timeline) -> list[list[Any]]:
    rows = []
    for name, host in timeline.hosts.items():
        decision = host.decision()
        checks = host.checks
        rows.append(
            [
                name,
                decision["outcome"],
                _when(decision["ts"]),
                decision["detail"],
                len(checks),
                sum(c["events"] for c in checks),
                sum(1 for c in checks if not c["events"]),
                sum(1 for c in checks if c["status"] == "error"),
                f"{_when(checks[0]['ts'])} .. {_when(checks[-1]['ts'])}",
                host.earlier_runs,
            ]
        )
    return rows


def worst_outcome(timeline: Timeline) -> str:
    """The page's verdict: the worst outcome over its hosts."""
    outcomes = {host.decision()["outcome"] for host in timeline.hosts.values()}
    return next(outcome for outcome in _WORST_FIRST if outcome in outcomes)


def render_timeline(timeline: Timeline, now: datetime | None = None) -> str:
    """The self-contained HTML page of ``timeline``."""
    now = now or datetime.now(UTC)
    worst = worst_outcome(timeline)
    body = [
        f'<p id="malformed">{timeline.lines} lines read from {len(timeline.files)} file(s); '
        f"{timeline.malformed} malformed lines skipped.</p>",
        '<h2>Outcome</h2><div id="outcome">',
        cells_table(
            [
                "host",
                "decision",
                "at",
                "detail",
                "checks",
                "new events",
                "checks without events",
                "errors",
                "checks from .. to",
                "earlier watches not shown",
            ],
            _outcome_rows(timeline),
        ),
        "</div>",
    ]
    with plain_text():
        for index, (name, host) in enumerate(timeline.hosts.items()):
            body += chart_section(
                f"host-{index}", html.escape(f"Host {name}"), host_chart(host, f"host-{index}")
            )
    violations = [
        [_when(v["ts"]), name, v["check"], v["rule"], _value(v["value"]), _value(v["threshold"]),
         v["scope"], v["text"]]
        for name, host in timeline.hosts.items()
        for v in host.violations
    ]  # fmt: skip
    body += [
        '<h2>Violations</h2><div id="violations">',
        cells_table(
            ["at", "host", "check", "rule", "value", "threshold", "scope", "text"], violations
        )
        if violations
        else "<p>No violation.</p>",
        "</div>",
    ]
    runs = (
        "each host's latest watch" if timeline.since is None else f"since {_when(timeline.since)}"
    )
    meta = [md.iso(now), f"check log {timeline.path}", runs]
    if timeline.other_models:
        meta.append(f"other models in the log: {', '.join(timeline.other_models)}")
    return page(
        f"Monitor timeline: {timeline.model}",
        meta,
        worst.upper(),
        _OUTCOME_STYLE[worst][1],
        body,
    )
