"""The HTML report of a gate, scoreboard, shadow, compare or damage result: one page to look at.

``render_html(result, kind, now)`` returns one HTML document with inline CSS and the charts as
inline SVG (matplotlib, text drawn as paths), so it opens offline, needs no JavaScript and
references nothing outside itself. It shows, per model:

- the action shares (BUY, SELL, HOLD) as bars with the ``max_action_share`` line (70 %);
- the confidence histogram (the metrics' ``confidence_histogram``) with p10 and p90 as lines,
  the ``min_spread`` the gate asks of p90 - p10 as a bracket from p10 and the hold-collapse
  median band; a result without histograms (an older JSON file) gets the percentiles as
  markers instead: p10 to p90 with the median;
- agreement and hard disagreement over time (the metrics' ``over_time`` bins: a point per
  bin with events, a gap where there were none) with the scoreboard's GO band and its hard
  disagreement limit (20 %); without ``over_time``, one bar each per model;
- for ``compare``: accuracy per model with its Wilson 95 % interval as error bars, the paired
  (McNemar) tests as a table and the calibration per confidence bucket as a chart;
- for ``damage``: the rows the model took part in and decided by symbol and side as bars,
  with their summed forward returns.

Controller only: matplotlib is imported here, and this module is imported only when an HTML
report is asked for, so the modules on the targets (bookworm, no matplotlib) never load it.
Every string from the result is escaped with ``html.escape``.
"""

from __future__ import annotations

import html
import io
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import matplotlib
from matplotlib.dates import AutoDateLocator, ConciseDateFormatter
from matplotlib.figure import Figure  # not pyplot: no global figures, no display backend
from matplotlib.ticker import MaxNLocator

from . import compare_report as cr
from . import markdown as md
from .reports import HTML_KINDS
from .thresholds import Thresholds

ACTIONS = ("BUY", "SELL", "HOLD")
ACTION_COLOURS = {"BUY": "#2e7d32", "SELL": "#c62828", "HOLD": "#607d8b"}
_DEFAULTS = Thresholds()
_TITLES = {
    "quality_gate": "Quality gate",
    "scoreboard": "Scoreboard",
    "shadow_report": "Shadow report",
    "compare": "Comparison",
    "damage": "Damage report",
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


def figure_svg(figure: Figure, salt: str) -> str:
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


def plain_text() -> Any:
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
        axes.barh(names, shares, left=left, color=ACTION_COLOURS[action], label=action)
        left = [a + b for a, b in zip(left, shares, strict=True)]
    limit = limits["max_action_share"]
    axes.axvline(limit, color="black", linestyle="--", label=f"max share {limit:.0%}")
    axes.set_xlim(0, 1)
    axes.set_xlabel("share of the model's active events")
    axes.invert_yaxis()
    axes.legend(loc="upper left", bbox_to_anchor=(1.01, 1), fontsize="small")
    return figure_svg(figure, "actions")


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
    return figure_svg(figure, "confidence")


def _go_limits(axes: Any, limits: Mapping[str, float], vertical: bool) -> None:
    """The scoreboard's GO agreement band and hard disagreement limit, across the x axis
    (``vertical``: shares along x) or the y axis (shares along y)."""
    span, line = (axes.axvspan, axes.axvline) if vertical else (axes.axhspan, axes.axhline)
    span(
        limits["go_agreement_low"],
        limits["go_agreement_high"],
        color="#c8e6c9",
        zorder=0,
        label="GO agreement",
    )
    limit = limits["go_max_hard_disagree"]
    line(limit, color="#c62828", linestyle="--", label=f"max hard disagree {limit:.0%}")


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
    _go_limits(axes, limits, vertical=True)
    axes.set_yticks(list(positions), names)
    axes.set_ylim(len(names) - 0.5, -0.5)
    axes.set_xlim(0, 1)
    axes.set_xlabel("share of the events")
    axes.legend(loc="upper left", bbox_to_anchor=(1.01, 1), fontsize="small")
    return figure_svg(figure, "agreement")


def _panels(count: int, height: float) -> tuple[Figure, list[Any]]:
    """A figure of ``count`` panels stacked over one shared x axis, ``height`` inches each."""
    figure = Figure(figsize=(8, 0.4 + height * max(count, 1)))
    figure.subplots_adjust(hspace=0.45)
    return figure, list(figure.subplots(max(count, 1), 1, sharex=True, squeeze=False)[:, 0])


def _histogram(row: Mapping[str, Any]) -> list[int] | None:
    """The row's confidence histogram counts (bins equal over [0, 1]), None without one."""
    counts = (row.get("confidence_histogram") or {}).get("counts")
    if isinstance(counts, list) and counts and all(isinstance(c, int) for c in counts):
        return counts
    return None


def confidence_histogram_chart(
    rows: Mapping[str, Mapping[str, Any]], limits: Mapping[str, float]
) -> str:
    """A panel per model: its confidences per bin, p10 and p90 as lines (red when p90 - p10
    is under ``min_spread``), ``min_spread`` as a bracket from p10 (p90 inside it: too narrow)
    and the hold-collapse median band."""
    names = list(rows)
    figure, panels = _panels(len(names), 1.4)
    min_spread = limits["min_spread"]
    for axes, name in zip(panels, names, strict=True):
        row = rows[name]
        counts = _histogram(row) or []
        axes.axvspan(
            limits["hold_median_low"],
            limits["hold_median_high"],
            color="#fff3c4",
            label="hold-collapse median band",
        )
        axes.stairs(  # one outline for the bins: lighter to draw and to ship than 20 bars
            counts,
            [i / len(counts) for i in range(len(counts) + 1)],
            fill=True,
            facecolor="#90caf9",
            edgecolor="#1565c0",
            linewidth=0.8,
            label="events per bin",
        )
        top = max(counts, default=0) or 1
        p10, p90 = row.get("p10"), row.get("p90")
        title = f"{name}: {md.num(row.get('n'))} events"
        if p10 is not None and p90 is not None:
            narrow = (p90 - p10) < min_spread
            colour = "#c62828" if narrow else "#0d47a1"
            axes.axvline(p10, color=colour, linestyle="--", label="p10, p90")
            axes.axvline(p90, color=colour, linestyle="--")
            axes.plot(
                [p10, p10 + min_spread],
                [top * 1.1, top * 1.1],
                color="black",
                marker="|",
                markersize=10,
                label=f"min spread {min_spread:.2f} from p10",
            )
            title += f", p90-p10 {p90 - p10:.3f}" + (f" < {min_spread:.2f}" if narrow else "")
        axes.set_title(title, loc="left", fontsize="small")
        axes.set_ylim(0, top * 1.25)
        axes.yaxis.set_major_locator(MaxNLocator(nbins=3, integer=True))
        axes.set_ylabel("events", fontsize="small")
    panels[-1].set_xlim(0, 1)
    panels[-1].set_xlabel("confidence")
    panels[0].legend(loc="upper left", bbox_to_anchor=(1.01, 1), fontsize="small")
    return figure_svg(figure, "confidence-histogram")


def _bin_points(row: Mapping[str, Any]) -> list[tuple[datetime, float, float]] | None:
    """The row's ``over_time`` bins as (middle, agreement, hard disagreement), NaN fractions
    where a bin had no event (a gap in the lines); None when it has no usable bins."""
    over_time = row.get("over_time") or {}
    bins, seconds = over_time.get("bins"), over_time.get("bin_seconds")
    if not bins or not isinstance(seconds, (int, float)):
        return None
    half = timedelta(seconds=seconds / 2)
    points = []
    for item in bins:
        try:
            start = datetime.fromisoformat(str(item["start"]))
        except (KeyError, TypeError, ValueError):
            return None
        agreement, hard = item.get("agreement"), item.get("hard_disagree")
        points.append(
            (
                start + half,
                float("nan") if agreement is None else float(agreement),
                float("nan") if hard is None else float(hard),
            )
        )
    return points


def _duration(seconds: float) -> str:
    """A time bin's width in its largest whole unit: ``5 min``, ``2 h``, ``500 ms``."""
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60), ("s", 1)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds // size:g} {unit}"
    return f"{seconds * 1000:g} ms"


def over_time_chart(rows: Mapping[str, Mapping[str, Any]], limits: Mapping[str, float]) -> str:
    """A panel per model: agreement and hard disagreement per time bin (at its middle), with
    the GO agreement band and the hard disagreement limit."""
    names = list(rows)
    figure, panels = _panels(len(names), 1.3)
    for axes, name in zip(panels, names, strict=True):
        points = _bin_points(rows[name]) or []
        times = [p[0] for p in points]
        _go_limits(axes, limits, vertical=False)
        axes.plot(times, [p[1] for p in points], "o-", color="#1565c0", label="agreement")
        axes.plot(times, [p[2] for p in points], "s-", color="#c62828", label="hard disagree")
        seconds = float(rows[name]["over_time"]["bin_seconds"]) if points else 0.0
        axes.set_title(
            f"{name}: {len(points)} bins of {_duration(seconds)}", loc="left", fontsize="small"
        )
        axes.set_ylim(-0.02, 1.02)
        axes.set_yticks([0, 0.5, 1])
        axes.set_ylabel("share", fontsize="small")
    locator = AutoDateLocator()
    panels[-1].xaxis.set_major_locator(locator)
    panels[-1].xaxis.set_major_formatter(ConciseDateFormatter(locator))
    panels[-1].set_xlabel("time (UTC), a point per bin with events")
    panels[0].legend(loc="upper left", bbox_to_anchor=(1.01, 1), fontsize="small")
    return figure_svg(figure, "agreement-over-time")


def _table(rows: Mapping[str, Mapping[str, Any]]) -> str:
    body = []
    for name, row in rows.items():
        actions = row.get("actions") or {}
        status = row.get("status") or ("PASS" if row.get("passed") else "FAIL")
        body.append(
            [
                name,
                md.num(row.get("n")),
                *(md.pct(actions.get(a)) for a in ACTIONS),
                md.num(row.get("p10")),
                md.num(row.get("p90")),
                md.pct(row.get("agreement")),
                md.pct(row.get("hard_disagree")),
                status,
            ]
        )
    header = ["model", "n", *ACTIONS, "p10", "p90", "agreement", "hard disagree", "status"]
    return cells_table(header, body)


def compare_accuracy_chart(rows: Mapping[str, Mapping[str, Any]]) -> str:
    """Directional accuracy per model with its Wilson 95 % interval as error bars."""
    names = [n for n in rows if rows[n].get("accuracy") is not None]
    figure, axes = _figure(len(names))
    for index, name in enumerate(names):
        accuracy = float(rows[name]["accuracy"])
        low, high = rows[name].get("wilson95") or (accuracy, accuracy)
        axes.errorbar(
            [accuracy],
            [index],
            xerr=[[accuracy - low], [high - accuracy]],
            fmt="o",
            color="#1565c0",
            capsize=6,
        )
    axes.axvline(0.5, color="black", linestyle="--", label="coin toss 50%")
    axes.set_yticks(range(len(names)), names)
    axes.set_ylim(len(names) - 0.5, -0.5)
    axes.set_xlim(-0.02, 1.02)  # a model always right or wrong: its marker is not cut in half
    axes.set_xlabel("directional accuracy with the Wilson 95% interval")
    axes.legend(loc="upper left", bbox_to_anchor=(1.01, 1), fontsize="small")
    return figure_svg(figure, "accuracy")


def calibration_chart(rows: Mapping[str, Mapping[str, Any]]) -> str:
    """Accuracy per confidence bucket per model (buckets with calls) against the diagonal."""
    figure = Figure(figsize=(8, 4))
    axes = figure.add_subplot()
    axes.plot([0, 1], [0, 1], color="#999", linestyle=":", label="calibrated")
    for name, stats in rows.items():
        buckets = [b for b in stats.get("calibration") or [] if b.get("calls")]
        if buckets:
            axes.plot(
                [(b["bucket"][0] + b["bucket"][1]) / 2 for b in buckets],
                [b["accuracy"] for b in buckets],
                "o-",
                label=name,
            )
    axes.set_xlim(-0.02, 1.02)
    axes.set_ylim(-0.02, 1.02)
    axes.set_xlabel("confidence bucket (middle)")
    axes.set_ylabel("accuracy")
    axes.legend(loc="upper left", bbox_to_anchor=(1.01, 1), fontsize="small")
    return figure_svg(figure, "calibration")


def damage_chart(view: Mapping[str, Any], salt: str, value: str, label: str) -> str:
    """One bar per symbol and side of a damage view: ``value`` of each group."""
    groups = view.get("groups") or []
    names = [f"{g['symbol']} {g['side']}" for g in groups]
    figure, axes = _figure(len(names))
    values = [float(g.get(value) or 0.0) for g in groups]
    colours = [ACTION_COLOURS.get(str(g["side"]), "#607d8b") for g in groups]
    axes.barh(range(len(names)), values, color=colours)
    axes.axvline(0, color="black", linewidth=0.8)
    axes.set_yticks(range(len(names)), names)
    axes.set_ylim(len(names) - 0.5, -0.5)
    axes.set_xlabel(label)
    return figure_svg(figure, salt)


def cells_table(header: list[str], rows: list[list[Any]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>" for row in rows
    )
    return f"<table><tr>{head}</tr>{body}</table>"


def chart_section(section_id: str, heading: str, content: str) -> list[str]:
    return [f'<section class="chart" id="{section_id}"><h2>{heading}</h2>', content, "</section>"]


def model_charts(rows: Mapping[str, Mapping[str, Any]], limits: Mapping[str, float]) -> list[str]:
    """The sections every page of per-model figures has: action shares, confidences and
    agreement (the gate's, scoreboard's, shadow report's and comparison's)."""
    # The histogram and the over-time chart need the metrics' bins; a result written before
    # they existed (or one without them for any model) keeps the percentile markers and bars.
    histograms = all(_histogram(row) is not None for row in rows.values())
    over_time = all(_bin_points(row) is not None for row in rows.values())
    with plain_text():
        actions = action_chart(rows, limits)
        confidence = (confidence_histogram_chart if histograms else confidence_chart)(rows, limits)
        agreement = (over_time_chart if over_time else agreement_chart)(rows, limits)
    return [
        *chart_section("actions", "Action shares", actions),
        *chart_section(
            "confidence", "Confidence histogram" if histograms else "Confidence spread", confidence
        ),
        *chart_section("agreement", "Agreement over time" if over_time else "Agreement", agreement),
    ]


def _judgement_body(result: Mapping[str, Any], kind: str) -> list[str]:
    rows = model_rows(result, kind)
    if not rows:
        return ["<p>No model figures in this result.</p>"]
    return [
        *model_charts(rows, _thresholds(result)),
        '<h2>Models</h2><div id="models">',
        _table(rows),
        "</div>",
    ]


def _compare_body(result: Mapping[str, Any], kind: str) -> list[str]:
    if not result.get("decided"):
        why = result.get("reason") or result.get("error") or "nothing compared"
        return [f"<p>Not decided: {html.escape(str(why))}.</p>"]
    model = result.get("model")
    rows = dict(result.get("models") or {})
    rows["ensemble (published)"] = result.get("ensemble") or {}
    rows[f"ensemble without {model}"] = result.get("ensemble_without_canary") or {}
    with plain_text():
        accuracy = compare_accuracy_chart(rows)
        calibration = calibration_chart(
            {n: s for n, s in rows.items() if n != f"ensemble without {model}"}
        )
    tests = cr.paired_test_rows(result.get("comparisons"))
    # The same events' per-model figures (results written before they were added have none).
    window_models = dict(result.get("window_models") or {})
    return [
        *chart_section("accuracy", "Directional accuracy", accuracy),
        f"<h2>Paired tests (McNemar, canary worse when one-sided p &lt; "
        f"{html.escape(md.plain(result.get('alpha')))})</h2>",
        '<div id="paired">',
        cells_table(list(cr.PAIRED_TEST_HEADERS), tests),
        "</div>",
        *chart_section("calibration", "Calibration (accuracy by confidence)", calibration),
        *(model_charts(window_models, _thresholds(result)) if window_models else []),
    ]


def _damage_body(result: Mapping[str, Any], kind: str) -> list[str]:
    if "participated" not in result:
        return [f"<p>Error: {html.escape(str(result.get('error') or 'no damage reported'))}</p>"]
    parts = (
        []
        if result.get("decided")
        else [f"<p>Not decided yet: {html.escape(str(result.get('reason')))}.</p>"]
    )
    header = ["symbol", "side", "rows", "with return", "no price", "return sum %"]
    for view_name, heading in (("participated", "took part in"), ("decisive", "decided")):
        view = result[view_name]
        title = f"Rows {result.get('model')} {heading} ({view.get('rows')})"
        if not view.get("groups"):
            parts.append(f"<h2>{html.escape(title)}</h2><p>No rows.</p>")
            continue
        with plain_text():
            counts = damage_chart(view, f"{view_name}-rows", "rows", "rows")
            returns = damage_chart(
                view, f"{view_name}-returns", "return_pct_sum", "summed forward return (%)"
            )
        rows = [
            [
                g["symbol"],
                g["side"],
                g["rows"],
                g["with_return"],
                g["no_price"],
                md.num(g.get("return_pct_sum"), 3),
                # with the model against without it: a decided row's own question
                *([md.num(g.get("net_pct_sum"), 3)] if view_name == "decisive" else []),
            ]
            for g in view.get("groups") or []
        ]
        parts += [
            *chart_section(f"{view_name}-rows", html.escape(title), counts),
            *chart_section(f"{view_name}-returns", "Summed forward return", returns),
            f'<div id="{view_name}">',
            cells_table(header + (["net sum %"] if view_name == "decisive" else []), rows),
            "</div>",
        ]
    return parts


_BODIES = {
    "quality_gate": _judgement_body,
    "scoreboard": _judgement_body,
    "shadow_report": _judgement_body,
    "compare": _compare_body,
    "damage": _damage_body,
}


def _verdict(result: Mapping[str, Any], kind: str) -> str:
    if kind == "quality_gate":
        return str(result.get("verdict") or "-")
    if kind == "shadow_report":
        return str(result.get("status") or "-")
    if kind in ("compare", "damage"):
        return (
            "ERROR"
            if result.get("error")
            else "DECIDED"
            if result.get("decided")
            else "NOT DECIDED"
        )
    counts = result.get("counts") or {}
    return ", ".join(f"{status} {count}" for status, count in counts.items()) or "-"


def _count(result: Mapping[str, Any], kind: str) -> str:
    """The meta line's size of what was judged: events, or a damage report's rows."""
    if kind == "damage":
        return f"{md.num(result.get('rows'))} rows"
    return (
        f"{md.num(result.get('events') if kind == 'compare' else result.get('event_count'))} events"
    )


def render_html(result: Mapping[str, Any], kind: str, now: datetime | None = None) -> str:
    """The self-contained HTML page of ``result`` for ``kind`` (one of :data:`HTML_KINDS`)."""
    if kind not in HTML_KINDS:
        raise ValueError(f"no HTML report for {kind!r} (one of {', '.join(HTML_KINDS)})")
    now = now or datetime.now(UTC)
    verdict = _verdict(result, kind)
    verdict_class = (
        "pass"
        if verdict in _PASSING
        else "fail"
        if verdict in {"FAIL", "NO-GO", "ERROR"}
        else "other"
    )
    title = f"{_TITLES[kind]}: {result.get('model') or 'all models'}"
    mode = result.get("mode")
    blockers = result.get("blockers") or []
    parts = []
    if result.get("error"):
        parts.append(f'<p class="blockers">Error: {html.escape(str(result["error"]))}</p>')
    if blockers:
        items = "".join(f"<li>{html.escape(str(b))}</li>" for b in blockers)
        parts.append(f'<h2>Blockers</h2><ul class="blockers">{items}</ul>')
    parts += _BODIES[kind](result, kind)
    meta = [md.iso(now), *([f"mode {mode}"] if mode else []), _count(result, kind)]
    return page(title, meta, verdict, verdict_class, parts)


def page(title: str, meta: list[str], verdict: str, verdict_class: str, body: list[str]) -> str:
    """The page skeleton every HTML report shares: ``title``, the ``meta`` line's items and
    the ``verdict`` (plain text, escaped here) in its ``verdict_class`` (pass, fail or other)
    over ``body`` (HTML whose maker escaped what it took from a result)."""
    return "\n".join(
        [
            "<!DOCTYPE html>",
            '<html lang="en"><head><meta charset="utf-8">',
            f"<title>{html.escape(title)}</title><style>{_CSS}</style></head><body>",
            f"<h1>{html.escape(title)}</h1>",
            f'<p class="meta">{" &middot; ".join(html.escape(str(item)) for item in meta)}</p>',
            f'<p id="verdict" class="verdict {verdict_class}">{html.escape(verdict)}</p>',
            *body,
            "</body></html>\n",
        ]
    )
