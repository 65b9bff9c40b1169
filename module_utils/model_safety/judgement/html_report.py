"""The HTML report of a gate, scoreboard or shadow result: one self-contained page to look at.

``render_html(result, kind, now)`` returns one HTML document with inline CSS and the charts as
inline SVG (matplotlib, text drawn as paths), so it opens offline, needs no JavaScript and
references nothing outside itself. It shows, per model:

- the action shares (BUY, SELL, HOLD) as bars with the ``max_action_share`` line (70 %);
- the confidence spread: p10 to p90 with the median, the hold-collapse median band and the
  ``min_spread`` the gate asks of p90 - p10 (the results carry the percentiles, not every
  confidence, so the percentiles are the markers);
- agreement and hard disagreement with the scoreboard's GO limits.

Controller only: matplotlib is imported here, and this module is imported only when an HTML
report is asked for, so the modules on the targets (bookworm, no matplotlib) never load it.
Every string from the result is escaped with ``html.escape``.
"""

from __future__ import annotations

import html
import io
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import matplotlib
from matplotlib.figure import Figure  # not pyplot: no global figures, no display backend

from . import markdown as md
from .reports import HTML_KINDS
from .thresholds import Thresholds

ACTIONS = ("BUY", "SELL", "HOLD")
_ACTION_COLOURS = {"BUY": "#2e7d32", "SELL": "#c62828", "HOLD": "#607d8b"}
_DEFAULTS = Thresholds()
_TITLES = {
    "quality_gate": "Quality gate",
    "scoreboard": "Scoreboard",
    "shadow_report": "Shadow report",
}
_CSS = """
body { font-family: sans-serif; margin: 1.5em; color: #222; max-width: 1100px; }
h1 { margin-bottom: 0.2em; }
.verdict { font-size: 1.4em; font-weight: bold; padding: 0.2em 0.6em; display: inline-block; }
.pass { background: #c8e6c9; } .fail { background: #ffcdd2; } .other { background: #fff3c4; }
.meta { color: #555; } ul.blockers li { color: #b71c1c; }
section.chart { margin: 1em 0; } section.chart svg { max-width: 100%; height: auto; }
table { border-collapse: collapse; } td, th { border: 1px solid #bbb; padding: 0.2em 0.6em; }
"""
_PASSING = {"PASS", "GO", "READY", "OK"}


def _thresholds(result: Mapping[str, Any]) -> dict[str, float]:
    """The result's thresholds over the defaults (an old or partial result still renders)."""
    merged = {
        name: getattr(_DEFAULTS, name)
        for name in (
            "max_action_share",
            "min_spread",
            "hold_median_low",
            "hold_median_high",
            "go_agreement_low",
            "go_agreement_high",
            "go_max_hard_disagree",
        )
    }
    merged.update(
        {k: v for k, v in (result.get("thresholds") or {}).items() if k in merged and v is not None}
    )
    return merged


def model_rows(result: Mapping[str, Any], kind: str) -> dict[str, Mapping[str, Any]]:
    """The per-model figures of ``result``: the gate's and scoreboard's ``models``, the shadow
    report's ``metrics`` of its one model."""
    if kind == "shadow_report":
        metrics = result.get("metrics")
        return {str(result.get("model")): metrics} if metrics else {}
    return dict(result.get("models") or {})


def _svg(figure: Figure, salt: str) -> str:
    """``figure`` as an inline ``<svg>`` element (no XML prolog); ``salt`` keeps the element
    ids of two charts on one page apart and the output reproducible."""
    buffer = io.StringIO()
    with matplotlib.rc_context({"svg.hashsalt": salt, "svg.fonttype": "path"}):
        figure.savefig(buffer, format="svg", metadata={"Date": None}, bbox_inches="tight")
    text = buffer.getvalue()
    return text[text.index("<svg") :]


def _figure(count: int) -> tuple[Figure, Any]:
    figure = Figure(figsize=(8, 0.9 + 0.55 * max(count, 1)))
    return figure, figure.add_subplot()


def _plain_text() -> Any:
    """Text as written: a model name from the stream with ``$`` in it is no mathtext (a
    malformed one would fail the page). Read when a text is made, so it wraps the charts."""
    return matplotlib.rc_context({"text.parse_math": False})


def action_chart(rows: Mapping[str, Mapping[str, Any]], limits: Mapping[str, float]) -> str:
    """Stacked action-share bars per model with the max_action_share line."""
    names = list(rows)
    figure, axes = _figure(len(names))
    left = [0.0] * len(names)
    for action in ACTIONS:
        shares = [float((rows[n].get("actions") or {}).get(action) or 0.0) for n in names]
        axes.barh(names, shares, left=left, color=_ACTION_COLOURS[action], label=action)
        left = [a + b for a, b in zip(left, shares, strict=True)]
    limit = limits["max_action_share"]
    axes.axvline(limit, color="black", linestyle="--", label=f"max share {limit:.0%}")
    axes.set_xlim(0, 1)
    axes.set_xlabel("share of the model's active events")
    axes.invert_yaxis()
    axes.legend(loc="upper left", bbox_to_anchor=(1.01, 1), fontsize="small")
    return _svg(figure, "actions")


def confidence_chart(rows: Mapping[str, Mapping[str, Any]], limits: Mapping[str, float]) -> str:
    """p10 to p90 of the confidences per model, the median, and the hold-collapse band."""
    names = list(rows)
    figure, axes = _figure(len(names))
    axes.axvspan(
        limits["hold_median_low"],
        limits["hold_median_high"],
        color="#fff3c4",
        label="hold-collapse median band",
    )
    for index, name in enumerate(names):
        row = rows[name]
        p10, p90, median = row.get("p10"), row.get("p90"), row.get("median")
        if p10 is None or p90 is None:
            continue
        narrow = (p90 - p10) < limits["min_spread"]
        colour = "#c62828" if narrow else "#1565c0"
        axes.plot([p10, p90], [index, index], color=colour, linewidth=6, solid_capstyle="butt")
        axes.plot([p10, p90], [index, index], "|", color="black", markersize=14)
        if median is not None:
            axes.plot([median], [index], "o", color="white", markeredgecolor="black")
        axes.annotate(
            f"p90-p10 {p90 - p10:.3f}" + (f" < {limits['min_spread']:.2f}" if narrow else ""),
            (p90, index),
            xytext=(8, -4),
            textcoords="offset points",
            fontsize="small",
        )
    axes.set_yticks(range(len(names)), names)
    axes.set_ylim(len(names) - 0.5, -0.5)
    axes.set_xlim(0, 1)
    axes.set_xlabel("confidence: p10 | median o | p90")
    axes.legend(loc="upper left", bbox_to_anchor=(1.01, 1), fontsize="small")
    return _svg(figure, "confidence")


def agreement_chart(rows: Mapping[str, Mapping[str, Any]], limits: Mapping[str, float]) -> str:
    """Agreement and hard disagreement per model with the scoreboard's GO limits."""
    names = list(rows)
    figure, axes = _figure(len(names))
    positions = range(len(names))
    agreement = [float(rows[n].get("agreement") or 0.0) for n in names]
    hard = [float(rows[n].get("hard_disagree") or 0.0) for n in names]
    axes.barh(
        [p - 0.2 for p in positions], agreement, height=0.4, color="#1565c0", label="agreement"
    )
    axes.barh(
        [p + 0.2 for p in positions], hard, height=0.4, color="#c62828", label="hard disagree"
    )
    axes.axvspan(
        limits["go_agreement_low"],
        limits["go_agreement_high"],
        color="#c8e6c9",
        zorder=0,
        label="GO agreement",
    )
    axes.axvline(
        limits["go_max_hard_disagree"], color="#c62828", linestyle="--", label="max hard disagree"
    )
    axes.set_yticks(list(positions), names)
    axes.set_ylim(len(names) - 0.5, -0.5)
    axes.set_xlim(0, 1)
    axes.set_xlabel("share of the events")
    axes.legend(loc="upper left", bbox_to_anchor=(1.01, 1), fontsize="small")
    return _svg(figure, "agreement")


def _verdict(result: Mapping[str, Any], kind: str) -> str:
    if kind == "quality_gate":
        return str(result.get("verdict") or "-")
    if kind == "shadow_report":
        return str(result.get("status") or "-")
    counts = result.get("counts") or {}
    return ", ".join(f"{status} {count}" for status, count in counts.items()) or "-"


def _table(rows: Mapping[str, Mapping[str, Any]]) -> str:
    head = "".join(
        f"<th>{h}</th>"
        for h in ("model", "n", *ACTIONS, "p10", "p90", "agreement", "hard disagree", "status")
    )
    body = []
    for name, row in rows.items():
        actions = row.get("actions") or {}
        status = row.get("status") or ("PASS" if row.get("passed") else "FAIL")
        cells = [
            name,
            md.num(row.get("n")),
            *(md.pct(actions.get(a)) for a in ACTIONS),
            md.num(row.get("p10")),
            md.num(row.get("p90")),
            md.pct(row.get("agreement")),
            md.pct(row.get("hard_disagree")),
            status,
        ]
        body.append("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in cells) + "</tr>")
    return f"<table><tr>{head}</tr>{''.join(body)}</table>"


def render_html(result: Mapping[str, Any], kind: str, now: datetime | None = None) -> str:
    """The self-contained HTML page of ``result`` for ``kind`` (one of :data:`HTML_KINDS`)."""
    if kind not in HTML_KINDS:
        raise ValueError(f"no HTML report for {kind!r} (one of {', '.join(HTML_KINDS)})")
    now = now or datetime.now(UTC)
    rows = model_rows(result, kind)
    limits = _thresholds(result)
    verdict = _verdict(result, kind)
    verdict_class = (
        "pass" if verdict in _PASSING else "fail" if verdict in {"FAIL", "NO-GO"} else "other"
    )
    title = f"{_TITLES[kind]}: {result.get('model') or 'all models'}"
    mode = result.get("mode")
    blockers = result.get("blockers") or []
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{html.escape(title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
        f'<p class="meta">{html.escape(md.iso(now))}'
        + (f" &middot; mode {html.escape(str(mode))}" if mode else "")
        + f" &middot; {html.escape(md.num(result.get('event_count')))} events</p>",
        f'<p id="verdict" class="verdict {verdict_class}">{html.escape(verdict)}</p>',
    ]
    if result.get("error"):
        parts.append(f'<p class="blockers">Error: {html.escape(str(result["error"]))}</p>')
    if blockers:
        items = "".join(f"<li>{html.escape(str(b))}</li>" for b in blockers)
        parts.append(f'<h2>Blockers</h2><ul class="blockers">{items}</ul>')
    if rows:
        with _plain_text():
            charts = [
                chart(rows, limits) for chart in (action_chart, confidence_chart, agreement_chart)
            ]
        parts += [
            '<section class="chart" id="actions"><h2>Action shares</h2>',
            charts[0],
            '</section><section class="chart" id="confidence"><h2>Confidence spread</h2>',
            charts[1],
            '</section><section class="chart" id="agreement"><h2>Agreement</h2>',
            charts[2],
            '</section><h2>Models</h2><div id="models">',
            _table(rows),
            "</div>",
        ]
    else:
        parts.append("<p>No model figures in this result.</p>")
    parts.append("</body></html>\n")
    return "\n".join(parts)
