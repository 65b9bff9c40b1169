"""What the fleet status page shows of one host beyond engine_status, read on the host.

* ``models``: the model configuration the unit's files set (:func:`..engine.config.
  unit_expected_config`), each configured model's role (``canary``, ``voting``, ``shadow``)
  and voting weight; with the running start's report (engine_status's ``startup``) every way
  the engine differs from its files is a problem (:func:`..engine.config.config_differences`).
* ``activation``: the newest activation (canary, shadow or promotion step, failed or not) and
  the newest rollback (executed or failed) of the activation log: time, model, outcome.
* ``monitor``: the monitor's state as the host's log tells it, from the newest of its
  ``monitoring_started``, ``violation`` and ``monitoring_completed`` records (the monitor runs
  on the controller; its state directory and check log are there, not on the host).
* ``gate``: the newest quality gate report (``quality_gate_<stamp>.json``) of the report dir.
* ``reports``: the newest report of each kind (``<kind>_<stamp>[_<n>].md`` and ``.html``, as
  judgement.reports names them) and every ``<kind>_latest.md``, with their text when asked
  (the copies the page links). Symbolic links are never followed: this runs as root.

Nothing here fails for an unhealthy host: what cannot be read is a ``problems`` sentence and
its piece is None (the page shows "unknown"). Environment values are never returned, only
roles and weights. Standard library only (runs on the target through AnsiballZ).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from ..activation.log import ACTIONS, ActivationLogError, read_records
from ..activation.plan import RECORD_EVENTS
from ..engine.commands import Runner
from ..engine.config import EngineConfigError, config_differences, unit_expected_config
from ..judgement.report_names import LATEST_NAME_RE, REPORT_NAME_RE, stamp_time
from ..utctime import iso_s

ACTIVATION_EVENTS = (
    *RECORD_EVENTS.values(),
    *(f"{event}_failed" for event in RECORD_EVENTS.values()),
)
"""The records of a change of a model's role (the activation plan's), failed or not."""
ROLLBACK_EVENTS = ("rollback_executed", "rollback_failed")
MONITOR_EVENTS = ("monitoring_started", "violation", "monitoring_completed")
MONITOR_STATES = {
    "monitoring_started": "watching",
    "violation": "violation",
    "monitoring_completed": "completed",
}
"""The monitor's state after each of its records: ``watching`` (started, no end recorded yet:
running, or stopped without its record), ``violation`` (a rule violated, the rollback
follows), ``completed`` (with its ``result``); ``none`` without any record."""
ROLES = ("canary", "voting", "shadow", "off")
DEFAULT_MAX_REPORT_BYTES = 2 * 1024 * 1024
MAX_GATE_JSON_BYTES = 8 * 1024 * 1024
_TEXT = 200
"""How much of a text from the log (a reason, a violation) is kept."""
_LISTED = 5
"""How many of the gate's blockers and the monitor's violations are kept."""

LINKED_EXTENSIONS = ("md", "html")
"""The reports people read; the JSON beside them is for programs (the gate's is read here)."""
_EVENT_OF_ACTION = {action: event for event, action in ACTIONS.items()}


# --------------------------------------------------------------------------- models


def model_roles(
    voting: Mapping[str, Any] | None,
    shadow: Mapping[str, Any] | None,
    canary: str | None,
    models: Iterable[str] = (),
) -> dict[str, dict[str, Any]]:
    """Each model's ``role`` (``canary``, ``voting``, ``shadow`` or ``off``: configured but
    neither voting nor shadow) and ``weight`` (its voting weight, None unless it votes): the
    configured ``models`` first, in their order, then any other that votes or runs shadow."""
    voting, shadow = dict(voting or {}), dict(shadow or {})
    names = list(dict.fromkeys([*models, *voting, *shadow]))
    roles = {}
    for name in names:
        if name in voting:
            role = "canary" if name == canary else "voting"
        else:
            role = "shadow" if name in shadow else "off"
        roles[str(name)] = {"role": role, "weight": voting.get(name)}
    return roles


def configured_models(
    run: Runner, unit: str, baseline: Mapping[str, float], startup: Mapping[str, Any] | None
) -> tuple[dict[str, dict[str, Any]] | None, list[str]]:
    """The roles and weights the unit's files set (None when they cannot be told) and the
    problems: the files unreadable or refused, or the running ``startup`` differing from them
    (compared only when it loaded a voting model: engine_status reports a start without one)."""
    try:
        expected = unit_expected_config(run, unit, baseline)["expected"]
    except EngineConfigError as exc:
        return None, [f"model configuration of {unit} cannot be told: {exc}"]
    roles = model_roles(expected["voting"], expected["shadow"], expected["canary"], baseline)
    if not startup or not startup.get("voting"):
        return roles, []
    return roles, [
        f"the running engine differs from its files: {difference}"
        for difference in config_differences(startup, expected)
    ]


# --------------------------------------------------------------------------- the activation log


def _line(value: Any) -> str | None:
    """``value`` as one printable line of at most _TEXT characters, None when empty."""
    if value is None:
        return None
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    text = " ".join("".join(c if c.isprintable() else " " for c in text).split())
    if not text:
        return None
    return text if len(text) <= _TEXT else text[: _TEXT - 3] + "..."


def event_of(record: Mapping[str, Any]) -> str | None:
    """The record's event: its ``event``, or for a log written before it the seed's
    ``action`` (``canary_activated`` -> ``activation``, ...); None when neither is known."""
    event = record.get("event")
    if event in ACTIONS:
        return event
    return _EVENT_OF_ACTION.get(record.get("action"))


def _weight(record: Mapping[str, Any], event: str) -> Any:
    value = record.get("to") if event == "promotion" else record.get("weight")
    if value is None:
        value = record.get("canary_weight")
    return value if isinstance(value, int | float) and not isinstance(value, bool) else None


def _outcome(record: Mapping[str, Any], event: str) -> str:
    if event in ROLLBACK_EVENTS:
        result = _line(record.get("result"))
        return result or ("rolled_back" if event == "rollback_executed" else "rollback_failed")
    return "failed" if event.endswith("_failed") else "done"


def _summary(record: Mapping[str, Any], event: str) -> dict[str, Any]:
    """Time, model, action, outcome (and weight, reason) of one record, as the page shows it."""
    return {
        "event": event,
        "action": ACTIONS[event],
        "ts": _line(record.get("ts") or record.get("timestamp")),
        "model": _line(record.get("model") or record.get("canary_model")),
        "weight": _weight(record, event),
        "outcome": _outcome(record, event),
        "reason": _line(record.get("reason") or record.get("trigger")),
    }


def _newest(
    records: Sequence[tuple[str, Mapping[str, Any]]], events: Iterable[str]
) -> tuple[str, Mapping[str, Any]] | None:
    """The newest (the log's order, never the clocks) record of ``events``."""
    wanted = set(events)
    return next(((e, r) for e, r in reversed(records) if e in wanted), None)


def _violations(record: Mapping[str, Any]) -> list[str]:
    found = record.get("violations")
    texts = found if isinstance(found, list) else [record.get("text")]
    return [text for text in (_line(item) for item in texts[:_LISTED]) if text]


def monitor_state(records: Sequence[tuple[str, Mapping[str, Any]]]) -> dict[str, Any]:
    """The monitor's ``state`` (MONITOR_STATES, ``none`` without a record) with the record's
    ``ts`` and ``model``; ``result`` and ``checks`` of a completed watch, ``violations`` of a
    violation."""
    newest = _newest(records, MONITOR_EVENTS)
    if newest is None:
        return {"state": "none"}
    event, record = newest
    state: dict[str, Any] = {
        "state": MONITOR_STATES[event],
        "ts": _line(record.get("ts") or record.get("timestamp")),
        "model": _line(record.get("model") or record.get("canary_model")),
    }
    if event == "monitoring_completed":
        state["result"] = _line(record.get("result")) or "unknown"
        checks = record.get("checks", record.get("checks_performed"))
        state["checks"] = (
            checks if isinstance(checks, int) and not isinstance(checks, bool) else None
        )
    elif event == "violation":
        state["violations"] = _violations(record)
    return state


def activation_history(records: Iterable[Any]) -> dict[str, Any]:
    """``last_activation``, ``last_rollback`` (each :func:`_summary`, None when the log has
    none) and ``monitor`` (:func:`monitor_state`) of the log's records, oldest first."""
    known = []
    for record in records:
        if isinstance(record, Mapping):
            event = event_of(record)
            if event is not None:
                known.append((event, record))
    activation = _newest(known, ACTIVATION_EVENTS)
    rollback = _newest(known, ROLLBACK_EVENTS)
    return {
        "last_activation": None if activation is None else _summary(activation[1], activation[0]),
        "last_rollback": None if rollback is None else _summary(rollback[1], rollback[0]),
        "monitor": monitor_state(known),
    }


def read_history(activation_log: str) -> tuple[dict[str, Any] | None, list[str]]:
    """:func:`activation_history` of the log (no records for a missing log), None when it
    cannot be read; its unreadable lines are problems (the newest record may be one)."""
    try:
        records, unreadable = read_records(activation_log)
    except ActivationLogError as exc:
        return None, [f"activation log unreadable: {exc}"]
    return activation_history(records), [
        f"activation log {activation_log}: {problem}" for problem in unreadable
    ]


# --------------------------------------------------------------------------- reports


def _report_files(report_dir: str) -> list[os.DirEntry]:
    """The regular files of ``report_dir`` (never a symbolic link); none when it is missing."""
    try:
        with os.scandir(report_dir) as entries:
            return [entry for entry in entries if entry.is_file(follow_symlinks=False)]
    except FileNotFoundError:
        return []


def _newest_per_kind(entries: Iterable[os.DirEntry]) -> dict[tuple[str, str], os.DirEntry]:
    """``{(kind, ext): entry}``: the newest stamped report of each kind and extension."""
    newest: dict[tuple[str, str], tuple[tuple[str, int], os.DirEntry]] = {}
    for entry in entries:
        found = REPORT_NAME_RE.fullmatch(entry.name)
        if found is None:
            continue
        key = (found["kind"], found["ext"])
        order = (found["stamp"], int(found["suffix"] or 0))
        if key not in newest or order > newest[key][0]:
            newest[key] = (order, entry)
    return {key: entry for key, (_order, entry) in newest.items()}


def _read_text(path: str, limit: int) -> tuple[str | None, str | None]:
    """``(text, None)`` of the file at ``path`` (not through a symbolic link), or ``(None,
    why not)`` when it is larger than ``limit`` bytes, not UTF-8 or unreadable."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        with os.fdopen(fd, "rb") as handle:
            data = handle.read(limit + 1)
    except OSError as exc:
        return None, f"unreadable: {exc.strerror}"
    if len(data) > limit:
        return None, f"larger than {limit} bytes"
    try:
        return data.decode("utf-8"), None
    except UnicodeDecodeError:
        return None, "not UTF-8"


def _report(entry: os.DirEntry, kind: str, stamp: str | None, include_text: bool, limit: int):
    status = entry.stat(follow_symlinks=False)
    report = {
        "kind": kind,
        "name": entry.name,
        "time": None if stamp is None else iso_s(stamp_time(stamp)),
        "size": status.st_size,
        "modified": iso_s(status.st_mtime),
        "text": None,
        "skipped": None,
    }
    if include_text:
        report["text"], report["skipped"] = _read_text(entry.path, limit)
    return report


def latest_reports(
    report_dir: str, *, include_text: bool = False, max_bytes: int = DEFAULT_MAX_REPORT_BYTES
) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    """The reports the page links (the newest ``.md`` and ``.html`` of each kind, then every
    ``<kind>_latest.md``; by kind and name) and the newest gate report's JSON entry (None).

    Each report: ``kind``, ``name``, ``time`` (its stamp, None for a latest file), ``size``,
    ``modified``, and with ``include_text`` its ``text`` or why it was ``skipped``. Raises
    OSError when the directory exists but cannot be listed."""
    entries = _report_files(report_dir)
    newest = _newest_per_kind(entries)
    reports = []
    for (kind, ext), entry in sorted(newest.items()):
        if ext in LINKED_EXTENSIONS:
            stamp = REPORT_NAME_RE.fullmatch(entry.name)["stamp"]
            reports.append(_report(entry, kind, stamp, include_text, max_bytes))
    for entry in sorted(entries, key=lambda item: item.name):
        if LATEST_NAME_RE.fullmatch(entry.name):
            kind = entry.name.removesuffix("_latest.md")
            reports.append(_report(entry, kind, None, include_text, max_bytes))
    return reports, newest.get(("quality_gate", "json"))


def last_gate(entry: os.DirEntry | None) -> tuple[dict[str, Any] | None, list[str]]:
    """The verdict of the newest gate report: ``verdict``, ``mode``, ``model``,
    ``event_count``, ``blockers`` (the first five), ``time`` and ``report`` (its name); None
    without one. A report that cannot be read is a problem, its verdict ``unknown``."""
    if entry is None:
        return None, []
    text, skipped = _read_text(entry.path, MAX_GATE_JSON_BYTES)
    try:
        if text is None:
            raise ValueError(skipped)
        result = json.loads(text)
        if not isinstance(result, dict):
            raise ValueError("not a JSON object")
    except ValueError as exc:
        result, problems = {}, [f"gate report {entry.name} unreadable: {exc}"]
    else:
        problems = []
    blockers = result.get("blockers")
    blockers = blockers if isinstance(blockers, list) else []
    count = result.get("event_count")
    return {
        "verdict": _line(result.get("verdict")) or "unknown",
        "mode": _line(result.get("mode")),
        "model": _line(result.get("model")),
        "event_count": count if isinstance(count, int) and not isinstance(count, bool) else None,
        "blockers": [text for text in (_line(item) for item in blockers[:_LISTED]) if text],
        "time": iso_s(stamp_time(REPORT_NAME_RE.fullmatch(entry.name)["stamp"])),
        "report": entry.name,
    }, problems


# --------------------------------------------------------------------------- composition


def collect_status_details(
    run: Runner,
    *,
    unit: str,
    baseline: Mapping[str, float],
    activation_log: str,
    report_dir: str,
    startup: Mapping[str, Any] | None = None,
    include_text: bool = False,
    max_report_bytes: int = DEFAULT_MAX_REPORT_BYTES,
) -> dict[str, Any]:
    """Everything the status page shows of this host beyond engine_status (the module's
    result): ``models``, ``activation`` (``last_activation``, ``last_rollback``), ``monitor``,
    ``gate``, ``reports`` and ``problems``; a piece that cannot be read is None."""
    models, problems = configured_models(run, unit, baseline, startup)
    history, history_problems = read_history(activation_log)
    problems += history_problems
    try:
        reports, gate_entry = latest_reports(
            report_dir, include_text=include_text, max_bytes=max_report_bytes
        )
    except OSError as exc:
        reports, gate_entry = None, None
        problems.append(f"report directory {report_dir} unreadable: {exc.strerror}")
    gate, gate_problems = last_gate(gate_entry)
    problems += gate_problems
    return {
        "models": models,
        "activation": None
        if history is None
        else {key: history[key] for key in ("last_activation", "last_rollback")},
        "monitor": None if history is None else history["monitor"],
        "gate": gate,
        "reports": reports,
        "problems": problems,
    }
