"""Whether the canary's current step was watched to a safe end: a promotion from a canary
weight needs the monitor's ``safe`` for that step (issue 13, item 5).

``model-safety monitor`` ends each host's watch with a ``monitoring_completed`` record in
that host's activation log (``result``: ``safe``, ``inconclusive``, ``rolled_back`` or
``ended``, and ``missing``: why it is not safe). The current step of a canary began with the
model's newest ``activation`` (``canary.yml``) or ``promotion`` (``promote.yml``) record, the
start the monitor watches too (:mod:`.canary_probe`). Only a ``monitoring_completed`` record
of the model AFTER that record in the file (the log's order, never the clocks) speaks for
the step, and the newest one decides: ``safe`` lets the promotion go on; none at all
(``missing``) or any other result is a hard blocker, each one sentence naming what was found
and how to override it.

The override is explicit (``-e 'monitor_override="<reason>"'``): a reason, made one line of
at most 200 characters like a lease's purpose (a blank one is refused). With it the blocker
is waived and the promotion's records carry ``monitor_override: {reason, found}`` (``found``:
the result, ``missing``, or ``unreadable`` for a log that could not be read). A promotion out
of shadow has no watched step and is not subject to any of this (the caller does not ask).

:func:`monitor_result` and :func:`monitor_result_refusals` are pure (records in, sentences
out); :func:`check_monitor` reads the log on the host with :mod:`.activation_log`'s helpers.
Standard library only (runs on the target through AnsiballZ).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ..activation.lock import LeaseError, normalise_text
from ..activation.log import ActivationLogError, last_record, read_records

__all__ = [
    "MISSING",
    "OVERRIDE_VAR",
    "RESULTS",
    "STEP_EVENTS",
    "UNREADABLE",
    "check_monitor",
    "decide",
    "monitor_result",
    "monitor_result_refusals",
    "normalise_override",
    "read_monitor_result",
]

STEP_EVENTS = ("activation", "promotion")
"""The records that begin a canary step (the same as the monitor's window start)."""
COMPLETED = "monitoring_completed"
SAFE = "safe"
RESULTS = (SAFE, "inconclusive", "rolled_back", "ended")
"""The results a monitor writes; only ``safe`` lets a promotion go on."""
MISSING = "missing"
UNREADABLE = "unreadable"
OVERRIDE_VAR = "monitor_override"
_HOW = (
    f"watch the step with `model-safety monitor --model {{model}}` until it completes safe, or "
    f"override with -e '{OVERRIDE_VAR}=\"<reason>\"'"
)
_TEXT = 120
"""How much of a value found in the log a sentence quotes."""


def _model_of(record: Mapping[str, Any]) -> Any:
    return record.get("model")


def _clean(value: Any) -> str:
    """``value`` (its repr unless a string) as one printable line of at most _TEXT chars."""
    text = value if isinstance(value, str) else repr(value)
    text = " ".join("".join(c if c.isprintable() else " " for c in text).split())
    return text if len(text) <= _TEXT else text[: _TEXT - 3] + "..."


def _step_summary(record: Mapping[str, Any]) -> dict[str, Any]:
    weight = record.get("to") if record.get("event") == "promotion" else record.get("weight")
    return {
        "event": record.get("event"),
        "action": record.get("action"),
        "ts": record.get("ts"),
        "weight": weight,
    }


def _describe_step(step: Mapping[str, Any]) -> str:
    kind = "canary activation" if step["event"] == "activation" else "promotion"
    weight = f" to {step['weight']}" if step.get("weight") not in (None, "") else ""
    return f"its {kind}{weight} at {step.get('ts') or '(no time)'}"


def _readable_reasons(completed: Mapping[str, Any]) -> list[str]:
    """The record's ``missing`` (why it is not safe), else its violations or reason."""
    for key in ("missing", "violations"):
        value = completed.get(key)
        if isinstance(value, list) and value:
            return [_clean(item) for item in value]
    reason = completed.get("reason")
    return [_clean(reason)] if isinstance(reason, str) and reason.strip() else []


def monitor_result(records: Sequence[Any], model: str) -> dict[str, Any]:
    """What the monitor found for ``model``'s current step in ``records`` (the log's records,
    oldest first; anything that is not a mapping is skipped).

    Keys: ``result`` (the newest ``monitoring_completed`` result after the step's record, as
    found (a string), or ``missing``), ``step`` (``event``, ``action``, ``ts``, ``weight`` of
    the step's record; None when the log has none), ``completed`` (that record, or None) and
    ``refusals`` (empty only for ``safe``: one sentence naming what was found and how to
    override it).
    """
    step_index, step = None, None
    for index in range(len(records) - 1, -1, -1):
        record = records[index]
        if (
            isinstance(record, Mapping)
            and record.get("event") in STEP_EVENTS
            and _model_of(record) == model
        ):
            step_index, step = index, _step_summary(record)
            break
    how = _HOW.format(model=model)
    if step_index is None:
        refusal = (
            f"monitor: the activation log has no canary activation or promotion record of "
            f"{model}, so its current step's start is unknown and no monitor result can count "
            f"for it; {how}"
        )
        return {"result": MISSING, "step": None, "completed": None, "refusals": [refusal]}
    completed = None
    for record in records[step_index + 1 :]:
        if (
            isinstance(record, Mapping)
            and record.get("event") == COMPLETED
            and _model_of(record) == model
        ):
            completed = record
    since = _describe_step(step)
    if completed is None:
        refusal = f"monitor: no completed watch of {model} since {since}; {how}"
        return {"result": MISSING, "step": step, "completed": None, "refusals": [refusal]}
    result = completed.get("result")
    found = (
        _clean(result)
        if isinstance(result, str) and result.strip()
        else f"no result ({_clean(result)})"
    )
    if result == SAFE:
        return {"result": SAFE, "step": step, "completed": dict(completed), "refusals": []}
    checks = completed.get("checks", completed.get("checks_performed"))
    detail = f" after {checks} checks" if isinstance(checks, int) and checks >= 0 else ""
    reasons = _readable_reasons(completed)
    why = f" ({'; '.join(reasons)})" if reasons else ""
    refusal = (
        f"monitor: the watch of {model} since {since} ended {found!r} at "
        f"{completed.get('ts') or '(no time)'}{detail}{why}, not 'safe'; {how}"
    )
    return {"result": found, "step": step, "completed": dict(completed), "refusals": [refusal]}


def monitor_result_refusals(records: Sequence[Any], model: str) -> list[str]:
    """Why the monitor's result does not let ``model``'s current canary step be promoted
    (empty: it completed ``safe`` after the step began)."""
    return monitor_result(records, model)["refusals"]


def normalise_override(value: Any) -> str | None:
    """The override's reason as one printable line of at most 200 characters (None: no
    override). ValueError for a blank reason or one that is not a string."""
    if value is None:
        return None
    try:
        return normalise_text(OVERRIDE_VAR, value)
    except LeaseError as exc:
        raise ValueError(f"{exc} (give the reason the monitor's result is overridden)") from None


def decide(monitor: Mapping[str, Any], override: str | None) -> dict[str, Any]:
    """``monitor`` (a :func:`monitor_result`) with the decision: ``blockers`` (its refusals,
    unless ``override``, a normalised reason, waives them), ``override`` (``{reason, found}``
    when it waived something, else None), ``override_unused`` (given, nothing to waive),
    ``record`` (the keys for the promotion's records: ``monitor_result`` and, when overridden,
    ``monitor_override``) and ``summary`` (one line)."""
    refusals = list(monitor["refusals"])
    waived = bool(refusals) and override is not None
    decision = {"reason": override, "found": monitor["result"]} if waived else None
    record: dict[str, Any] = {"monitor_result": monitor["result"]}
    if decision is not None:
        record["monitor_override"] = decision
    completed = monitor.get("completed") or {}
    summary = f"monitor result {monitor['result']}" + (
        f" (completed {completed['ts']})" if completed.get("ts") else ""
    )
    if waived:
        summary += f", OVERRIDDEN with {OVERRIDE_VAR}: {override}"
    elif refusals:
        summary += ", not safe: blocked"
    return {
        **monitor,
        "blockers": [] if waived else refusals,
        "override": decision,
        "override_unused": override is not None and not waived,
        "record": record,
        "summary": summary,
    }


def read_monitor_result(path: str, model: str) -> dict[str, Any]:
    """:func:`monitor_result` of the log at ``path`` (a missing log has no records), with
    ``log`` (the path) and ``log_problems`` (unreadable lines, which count as no record; a
    torn line is a record whose append failed). A log that cannot be read, or whose LAST line
    is torn or unreadable (it may be the newest record), gives ``result: unreadable``."""
    try:
        last_record(path)  # refuses a log whose last line is not a whole record
        records, problems = read_records(path)
    except ActivationLogError as exc:
        refusal = f"monitor: cannot tell the monitor's result of {model}: {exc}; " + _HOW.format(
            model=model
        )
        return {
            "result": UNREADABLE,
            "step": None,
            "completed": None,
            "refusals": [refusal],
            "log": path,
            "log_problems": [str(exc)],
        }
    return {**monitor_result(records, model), "log": path, "log_problems": problems}


def check_monitor(path: str, model: str, override: Any = None) -> dict[str, Any]:
    """Read the log and decide (:func:`read_monitor_result`, :func:`decide`); ValueError for
    a blank override, before the log is read."""
    reason = normalise_override(override)
    return decide(read_monitor_result(path, model), reason)
