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
from collections.abc import Mapping, Sequence
from dataclasses import asdict, is_dataclass
from datetime import UTC, datetime
from typing import Any

from .thresholds import Thresholds

KINDS = ("quality_gate", "scoreboard", "feature_sanity", "shadow_report", "promotion_decision")
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


# --------------------------------------------------------------------------- formatting


def _pct(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return "-"
    return f"{100.0 * value:.1f}%"


def _num(value: Any, digits: int = 3) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_num(item, digits) for item in value) + "]"
    if not isinstance(value, float):
        return "-" if value is None else str(value)
    return f"{value:.{digits}f}" if math.isfinite(value) else str(value)


def _plain(value: Any) -> str:
    """A threshold as written in code: 0.7, 1500, 1e-06."""
    if isinstance(value, float) and math.isfinite(value):
        return f"{value:g}"
    return _num(value)


def _cell(value: Any) -> str:
    """Text safe inside a Markdown table cell."""
    return str(value).replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def _code(value: Any) -> str:
    return "`" + str(value).replace("`", "'") + "`"


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    return lines


def _bullets(items: Sequence[Any], empty: str = "none") -> list[str]:
    return [f"- {item}" for item in items] if items else [f"- {empty}"]


def _stamp(now: datetime) -> str:
    if now.tzinfo is None:
        raise ValueError("report time must be timezone-aware")
    return now.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def _iso(now: datetime) -> str:
    return now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _source_lines(result: Mapping[str, Any]) -> list[str]:
    source = result.get("source") or {}
    window = result.get("window") or {}
    lines = []
    if source:
        selection = []
        if source.get("count") is not None:
            selection.append(f"newest {source['count']} events")
        if source.get("after") is not None:
            selection.append(f"after {_code(source['after'])}")
        redis_url, stream = _code(source.get("redis", "-")), _code(source.get("stream", "-"))
        lines.append(
            f"- Source: {redis_url}, stream {stream}, "
            + (" ".join(selection) if selection else "every event")
        )
    if window.get("first_id") or window.get("last_id"):
        first, last = _code(window.get("first_id")), _code(window.get("last_id"))
        lines.append(f"- Window: stream ids {first} .. {last}")
    return lines


def _header(result: Mapping[str, Any], title: str, now: datetime) -> list[str]:
    """The MODE header first (when the result has a mode), then what and when."""
    lines = [f"# MODE: {str(result['mode']).upper()}", ""] if result.get("mode") else []
    return [*lines, f"{'#' if not lines else '##'} {title}", "", f"Generated {_iso(now)}", ""]


def _events_line(result: Mapping[str, Any]) -> str:
    line = f"- Events: {result.get('event_count', 0)} valid, {result.get('malformed', 0)} malformed"
    if result.get("min_events") is not None:
        line += f" (minimum {result['min_events']} for {result.get('mode')})"
    return line


# --------------------------------------------------------------------------- quality gate


_MODEL_COLUMNS = (
    "model",
    "role",
    "n",
    "BUY",
    "SELL",
    "HOLD",
    "conf_std",
    "p10",
    "p90",
    "spread",
    "median",
    "agreement",
    "hard disagree",
    "inactive",
    "gate",
)


def _model_row(name: str, model: Mapping[str, Any]) -> list[str]:
    actions = model.get("actions") or {}
    p10, p90 = model.get("p10"), model.get("p90")
    spread = model.get("spread")
    if spread is None and isinstance(p10, int | float) and isinstance(p90, int | float):
        spread = p90 - p10
    return [
        name,
        "shadow" if model.get("shadow") else "voting",
        _num(model.get("n")),
        _pct(actions.get("BUY")),
        _pct(actions.get("SELL")),
        _pct(actions.get("HOLD")),
        _num(model.get("conf_std")),
        _num(p10),
        _num(p90),
        _num(spread),
        _num(model.get("median")),
        _pct(model.get("agreement")),
        _pct(model.get("hard_disagree")),
        _pct(model.get("inactive_share")),
        "PASS" if model.get("passed") else "FAIL",
    ]


def _malformed_lines(result: Mapping[str, Any]) -> list[str]:
    samples = result.get("malformed_samples") or []
    count = result.get("malformed") or 0
    if not count and not samples:
        return ["## Malformed events", "", "none", ""]
    lines = [f"## Malformed events: {count} (first {len(samples)} listed)", ""]
    rows = [[s.get("stream_id", "-"), s.get("reason", "-")] for s in samples]
    return [*lines, *_table(("stream id", "reason"), rows), ""]


def _thresholds_lines(result: Mapping[str, Any]) -> list[str]:
    thresholds = result.get("thresholds") or {}
    if not thresholds:
        return []
    defaults = asdict(Thresholds())
    overridden = [name for name, value in thresholds.items() if defaults.get(name) != value]
    rows = [
        [name, _plain(value), _plain(defaults.get(name)), "OVERRIDDEN" * (name in overridden)]
        for name, value in thresholds.items()
    ]
    said = (
        f"**{len(overridden)} threshold(s) differ from the defaults: {', '.join(overridden)}**"
        if overridden
        else "Every threshold is the default."
    )
    table = _table(("threshold", "value", "default", ""), rows)
    return ["## Thresholds", "", said, "", *table, ""]


def _ensemble_lines(result: Mapping[str, Any]) -> list[str]:
    ensemble = result.get("ensemble") or {}
    if not ensemble:
        return []
    lines = ["## Ensemble", ""]
    for key, value in ensemble.items():
        if isinstance(value, Mapping):
            parts = ", ".join(
                f"{k}: {_pct(v) if isinstance(v, float) else v}" for k, v in value.items()
            )
            lines.append(f"- {key}: {parts or '-'}")
        elif isinstance(value, list | tuple):
            lines.append(f"- {key}: {', '.join(map(str, value)) or '-'}")
        else:
            lines.append(f"- {key}: {_num(value)}")
    return [*lines, ""]


def render_quality_gate(result: Mapping[str, Any], now: datetime) -> str:
    """The gate report (see the module docstring)."""
    verdict = result.get("verdict", "FAIL")
    models = result.get("models") or {}
    judged = result.get("model")
    lines = _header(result, "Quality gate", now)
    lines += [
        f"## Verdict: {verdict}",
        "",
        f"- Judged: {_code(judged) if judged else 'every voting model'}",
        _events_line(result),
        *_source_lines(result),
    ]
    if result.get("error"):
        lines.append(f"- Error: {result['error']}")
    lines += ["", "## Blockers", "", *_bullets(result.get("blockers") or []), ""]
    if models:
        rows = [_model_row(name, model) for name, model in models.items()]
        lines += ["## Models", "", *_table(_MODEL_COLUMNS, rows), ""]
        for name, model in models.items():
            if model.get("blockers"):
                lines += [f"### {name}: blockers", "", *_bullets(model["blockers"]), ""]
    lines += _malformed_lines(result)
    lines += _ensemble_lines(result)
    lines += _thresholds_lines(result)
    return "\n".join(lines).rstrip() + "\n"


# --------------------------------------------------------------------------- the others


_BOARD_COLUMNS = (
    "model",
    "role",
    "status",
    "n",
    "agreement",
    "hard disagree",
    "BUY",
    "SELL",
    "HOLD",
    "conf_std",
    "spread",
    "why",
)


def render_scoreboard(result: Mapping[str, Any], now: datetime) -> str:
    """GO / WAIT / NO-GO per model, with the reasons and every gate blocker."""
    lines = _header(result, "Scoreboard", now)
    if result.get("error"):
        lines += [f"## Unavailable: {result['error']}", ""]
    models = result.get("models") or {}
    thresholds = result.get("thresholds") or {}
    lines += [_events_line(result), *_source_lines(result), ""]
    if thresholds:
        lines += [
            f"GO = gate passes, agreement with the ensemble in "
            f"[{_pct(thresholds.get('go_agreement_low'))}, "
            f"{_pct(thresholds.get('go_agreement_high'))}] and hard disagreement < "
            f"{_pct(thresholds.get('go_max_hard_disagree'))}; WAIT = gate passes, outside that; "
            "NO-GO = gate fails.",
            "",
        ]
    if result.get("blockers"):
        lines += ["## Window blockers", "", *_bullets(result["blockers"]), ""]
    shared = set(result.get("blockers") or [])
    rows = []
    for name, row in models.items():
        actions = row.get("actions") or {}
        reasons = [r for r in row.get("reasons") or [] if r != "gate failed"]
        if row.get("status") == "NO-GO":
            own = [b for b in row.get("blockers") or [] if b not in shared]
            reasons = own + (["window blockers"] if shared else []) + reasons
        rows.append(
            [
                name,
                "shadow" if row.get("shadow") else "voting",
                row.get("status", "NO-GO"),
                _num(row.get("n")),
                _pct(row.get("agreement")),
                _pct(row.get("hard_disagree")),
                _pct(actions.get("BUY")),
                _pct(actions.get("SELL")),
                _pct(actions.get("HOLD")),
                _num(row.get("conf_std")),
                _num(row.get("spread")),
                "; ".join(map(str, reasons)) or "-",
            ]
        )
    lines += ["## Models", "", *_table(_BOARD_COLUMNS, rows), ""] if rows else []
    for name, row in models.items():
        own = [b for b in row.get("blockers") or [] if b not in (result.get("blockers") or [])]
        if own:
            lines += [f"### {name}: gate blockers", "", *_bullets(own), ""]
    return "\n".join(lines).rstrip() + "\n"


_FEATURE_COLUMNS = ("feature", "values", "NaN", "Inf", "missing", "mean", "std", "min", "max")


def render_feature_sanity(result: Mapping[str, Any], now: datetime) -> str:
    """Per-feature statistics, problems (exit 2) and warnings."""
    status = "OK" if result.get("exit_code") == 0 else "FAIL"
    lines = _header(result, f"Feature sanity: {status}", now)
    lines += [_events_line(result), *_source_lines(result)]
    if result.get("error"):
        lines.append(f"- Error: {result['error']}")
    lines += ["", "## Problems", "", *_bullets(result.get("problems") or [])]
    lines += ["", "## Warnings", "", *_bullets(result.get("warnings") or []), ""]
    rows = [
        [
            name,
            _num(entry.get("count")),
            _num(entry.get("nan")),
            _num(entry.get("inf")),
            _num(entry.get("missing")),
            _num(entry.get("mean"), 6),
            _num(entry.get("std"), 6) + (" (flatline)" if entry.get("flatline") else ""),
            _num(entry.get("min"), 6),
            _num(entry.get("max"), 6),
        ]
        for name, entry in (result.get("features") or {}).items()
    ]
    if rows:
        lines += ["## Features", "", *_table(_FEATURE_COLUMNS, rows), ""]
    duplicates = result.get("duplicates") or {}
    if duplicates:
        lines += [
            f"Duplicate feature vectors among the last {duplicates.get('compared')} events: "
            f"{_pct(duplicates.get('share'))} (warning above {_pct(duplicates.get('threshold'))})",
            "",
        ]
    return "\n".join(lines).rstrip() + "\n"


def render_shadow_report(result: Mapping[str, Any], now: datetime) -> str:
    """The four activation gates of a shadow model and its hard blockers."""
    title = f"Shadow report: {result.get('model')}: {result.get('status')}"
    lines = _header(result, title, now)
    lines += [_events_line(result), *_source_lines(result)]
    if result.get("error"):
        lines.append(f"- Error: {result['error']}")
    lines.append("")
    rows = [
        [name, gate.get("status", "-"), _num(gate.get("value")), _num(gate.get("threshold"))]
        for name, gate in (result.get("gates") or {}).items()
        if isinstance(gate, Mapping)
    ]
    if rows:
        lines += ["## Gates", "", *_table(("gate", "status", "value", "threshold"), rows), ""]
    lines += ["## Hard blockers", "", *_bullets(result.get("hard_blockers") or []), ""]
    hard = set(result.get("hard_blockers") or [])
    others = [b for b in result.get("blockers") or [] if b not in hard]
    if others:
        lines += ["## Other blockers", "", *_bullets(others), ""]
    return "\n".join(lines).rstrip() + "\n"


# --------------------------------------------------------------------------- promotion decision


_STRATEGY_KEYS = ("from", "to", "ladder", "allow_jump", "operator", "host")


def _step(value: Any) -> str:
    if isinstance(value, list | tuple):
        return " -> ".join(_step(item) for item in value) or "-"
    if isinstance(value, float):
        return f"{value:g}"
    return "-" if value is None or value == "" else str(value)


def _is_full_weight(value: Any) -> bool:
    try:
        return float(value) >= 1.0
    except (TypeError, ValueError):
        return False


def _next_steps(check: Mapping[str, Any], model: str, target: str, to: Any) -> list[str]:
    if check.get("verdict") != "GO":
        return [
            "Nothing was changed: the promotion stops here, the engine keeps its current "
            "configuration and start.",
            f"Resolve every blocker above, then run the promotion again (`ansible-playbook "
            f"playbooks/promote.yml -e model={model}`); the check runs again first.",
        ]
    change = (
        f"the canary drop-in is removed and {model} votes at its baseline weight (promoted)"
        if _is_full_weight(to)
        else f"the env file and the canary drop-in get {model} at weight {target}, every other "
        "model scaled so the weights sum to 1"
    )
    return [
        "No hard blocker: the promotion goes ahead on this host, nothing is changed yet.",
        f"Backup of the env file and the drop-ins (with the git sha and checksums), then {change}.",
        "The service is stopped and started (never restarted); the journal of that start must "
        f"show the build and {model} voting, and new telemetry and trade intents must show "
        f"{model} in its new role.",
        "Any failure after the backup restores it byte-identical and proves the old start; "
        "success is recorded in the activation log with the rollback command.",
    ]


def _shadow_evidence_lines(report: Mapping[str, Any]) -> list[str]:
    lines = [
        f"## Shadow gates: {report.get('status', '-')} ({report.get('passed', '-')} pass, "
        f"{report.get('required', '-')} required)",
        "",
    ]
    rows = [
        [name, gate.get("status", "-"), _num(gate.get("value")), _plain(gate.get("threshold"))]
        for name, gate in (report.get("gates") or {}).items()
        if isinstance(gate, Mapping)
    ]
    lines += _table(("gate", "status", "value", "threshold"), rows) if rows else ["none judged"]
    metrics = report.get("metrics") or {}
    if metrics:
        lines += [
            "",
            f"- Active events: {_num(metrics.get('n'))}; agreement {_pct(metrics.get('agreement'))}"
            f"; hard disagreement {_pct(metrics.get('hard_disagree'))}; conf_std "
            f"{_num(metrics.get('conf_std'))}",
        ]
    return [*lines, ""]


def _gate_evidence_lines(gate: Mapping[str, Any], model: str) -> list[str]:
    lines = [f"## Quality gate ({gate.get('mode', '-')}): {gate.get('verdict', '-')}", ""]
    entry = (gate.get("models") or {}).get(model)
    if isinstance(entry, Mapping):
        lines += _table(_MODEL_COLUMNS, [_model_row(model, entry)])
    else:
        lines.append("no metrics")
    lines += ["", f"- Events: {gate.get('event_count', 0)} (minimum {gate.get('min_events')})"]
    return [*lines, ""]


def _monitor_lines(monitor: Mapping[str, Any]) -> list[str]:
    """The monitor's result for the canary's current step (:mod:`.promotion_watch`)."""
    step = monitor.get("step") or {}
    completed = monitor.get("completed") or {}
    lines = [f"## Monitor: {monitor.get('result', '-')}", ""]
    if step:
        lines.append(
            f"- Current step: {step.get('action') or step.get('event') or '-'} at "
            f"{_step(step.get('weight'))}, {step.get('ts') or '-'}"
        )
    else:
        lines.append("- Current step: no activation or promotion record of the model")
    if completed:
        lines.append(
            f"- Watch completed: {completed.get('ts') or '-'}, "
            f"{_num(completed.get('checks', completed.get('checks_performed')))} checks, "
            f"window start {completed.get('window_start') or '-'}"
        )
    else:
        lines.append("- Watch completed: none since the current step began")
    lines.append(f"- Activation log: {monitor.get('log') or '-'}")
    lines += [f"- Not safe: {refusal}" for refusal in monitor.get("refusals") or []]
    override = monitor.get("override")
    if isinstance(override, Mapping):
        lines.append(
            f"- OVERRIDDEN (monitor_override): {override.get('reason')} "
            f"(found: {override.get('found')})"
        )
    return [*lines, ""]


def _ensemble_summary_lines(check: Mapping[str, Any]) -> list[str]:
    ensemble = check.get("ensemble") or {}
    limit = (check.get("thresholds") or {}).get("max_payload_p95")
    consensus = ensemble.get("consensus") or {}
    sides = ensemble.get("sides") or {}
    return [
        "## Ensemble",
        "",
        f"- Payload p95: {_num(ensemble.get('payload_p95'), 0)} bytes (blocked at >= "
        f"{_plain(limit)}); max {_num(ensemble.get('payload_max'))} bytes",
        "- Consensus: "
        + (", ".join(f"{key}: {_pct(share)}" for key, share in consensus.items()) or "-"),
        "- Sides: " + (", ".join(f"{key}: {_pct(share)}" for key, share in sides.items()) or "-"),
        f"- Events: {_num(ensemble.get('event_count'))} valid, "
        f"{_num(ensemble.get('malformed'))} malformed",
        "",
    ]


def decision_log_markdown(
    check: Mapping[str, Any], strategy: Mapping[str, Any], now: datetime | None = None
) -> str:
    """The decision log of a promotion check (:mod:`.promotion`): who, when and the strategy
    (``from``, ``to``, ``ladder``, ``allow_jump``, ``operator``, ``host`` and ``time`` of
    ``strategy``; the time defaults to ``now``), the verdict, every blocker, the evidence
    (shadow gates or the gate's metrics, the monitor's result and any override of it), the
    ensemble and what happens next."""
    now = now or datetime.now(UTC)
    model = str(check.get("model") or "-")
    source, target = (
        _step(strategy.get("from", check.get("current_role"))),
        _step(strategy.get("to")),
    )
    uptime, min_uptime = check.get("uptime_s"), check.get("min_uptime_s")
    lines = [f"# Promotion decision: {model} {source} -> {target}", ""]
    lines += [
        f"- {key.replace('_', ' ').capitalize()}: {_step(strategy.get(key))}"
        for key in _STRATEGY_KEYS
    ]
    lines += [
        f"- Time (UTC): {strategy.get('time') or _iso(now)}",
        f"- Current role: {check.get('current_role') or '-'}",
        f"- Service uptime: {_num(uptime, 0)} s (required {_num(min_uptime, 0)} s)",
        _events_line(check),
        *_source_lines(check),
        "",
        f"## Verdict: {check.get('verdict', 'BLOCKED')}",
        "",
    ]
    if check.get("error"):
        lines += [f"- Error: {check['error']}", ""]
    lines += ["## Blockers", "", *_bullets(check.get("blockers") or []), ""]
    if isinstance(check.get("shadow_report"), Mapping):
        lines += _shadow_evidence_lines(check["shadow_report"])
    if isinstance(check.get("gate"), Mapping):
        lines += _gate_evidence_lines(check["gate"], model)
    if isinstance(check.get("monitor"), Mapping):
        lines += _monitor_lines(check["monitor"])
    lines += _ensemble_summary_lines(check)
    lines += [
        "## What happens next",
        "",
        *_bullets(_next_steps(check, model, target, strategy.get("to"))),
    ]
    return "\n".join(lines).rstrip() + "\n"


def render_promotion_decision(result: Mapping[str, Any], now: datetime) -> str:
    """The decision log of a promotion check carrying its ``strategy``."""
    return decision_log_markdown(result, result.get("strategy") or {}, now)


RENDERERS = {
    "quality_gate": render_quality_gate,
    "scoreboard": render_scoreboard,
    "feature_sanity": render_feature_sanity,
    "shadow_report": render_shadow_report,
    "promotion_decision": render_promotion_decision,
}


def render_markdown(result: Mapping[str, Any], kind: str, now: datetime | None = None) -> str:
    """The Markdown report of ``result`` for ``kind`` (one of :data:`KINDS`)."""
    if kind not in RENDERERS:
        raise ValueError(f"unknown report kind {kind!r} (one of {', '.join(KINDS)})")
    return RENDERERS[kind](result, now or datetime.now(UTC))


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


def write_reports(
    result: Mapping[str, Any],
    kind: str,
    report_dir: str = DEFAULT_REPORT_DIR,
    now: datetime | None = None,
) -> dict[str, str]:
    """Write the Markdown and JSON reports of ``result``; return their paths.

    Returns ``{"markdown": path, "json": path}``, plus ``"latest"`` for the scoreboard.
    Raises OSError when the directory or a file cannot be written.
    """
    now = now or datetime.now(UTC)
    markdown = render_markdown(result, kind, now)
    document = dumps(result, indent=2) + "\n"
    os.makedirs(report_dir, mode=DIR_MODE, exist_ok=True)
    base = os.path.join(report_dir, f"{kind}_{_stamp(now)}")
    for attempt in range(_MAX_SUFFIX):
        stem = base if attempt == 0 else f"{base}_{attempt}"
        try:
            atomic_write(stem + ".md", markdown, exclusive=True)
        except FileExistsError:
            continue
        atomic_write(stem + ".json", document)
        paths = {"markdown": stem + ".md", "json": stem + ".json"}
        break
    else:
        raise FileExistsError(f"no free report name for {base}")
    if kind in LATEST:
        latest = os.path.join(report_dir, LATEST[kind])
        atomic_write(latest, markdown)
        paths["latest"] = latest
    return paths
