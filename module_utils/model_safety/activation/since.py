"""Where a model's current activation began, from the host's activation log: the start of a
``--since-activation`` window (``model-safety compare``, ``model-safety damage``).

The window starts at the model's newest activation record: ``canary_activated``
(``activation``), ``shadow_activated`` (``shadow``) or ``promotion_step`` (``promotion``), each
of which restarted the engine with the model in its new role. Newest is the log's order (the
last such line of the model), never the clocks, as the monitor's promotion watch reads it.
Records are matched on the project's keys (``event``, ``model``) or, for a log written before
them, on the seed's (``action``, ``canary_model``).

The start is the record's ``started_at`` (when the engine started with the model in that role:
its events from then on are the model's), else its ``ts`` / ``timestamp`` (when the record
was written, a few seconds after the start was proven). It is returned as text that
``--after`` accepts.

Fail closed, each failure one sentence (:class:`ActivationStartError`): a path that is not
absolute and normalised, no log, a log that cannot be read or whose last line is torn or
unreadable (it may be the newest record), no activation record of the model, a record
without a usable time. Standard library only (runs on the target through AnsiballZ).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from ..cutover import parse_cutover
from .log import ACTIONS, ActivationLogError, check_path, last_record, read_records

START_EVENTS = ("activation", "shadow", "promotion")
"""The events whose record begins a model's current role (canary, shadow, promotion step)."""
START_ACTIONS = tuple(ACTIONS[event] for event in START_EVENTS)
"""The same records by the seed's ``action`` key."""
_TIME_KEYS = ("started_at", "ts", "timestamp")
"""Where the start is read from, first usable wins."""


class ActivationStartError(Exception):
    """No usable start: the sentence says why and names the log."""


def is_start_of(record: Any, model: str) -> bool:
    """Whether ``record`` is an activation, shadow or promotion record of ``model``."""
    if not isinstance(record, Mapping):
        return False
    if "event" in record:
        return record["event"] in START_EVENTS and record.get("model") == model
    return record.get("action") in START_ACTIONS and record.get("canary_model") == model


def start_time(record: Mapping[str, Any]) -> str | None:
    """The record's start (``started_at``, else ``ts``, else ``timestamp``) as a valid
    ``--after`` time, None when it has none."""
    for key in _TIME_KEYS:
        value = record.get(key)
        if isinstance(value, str):
            try:
                parse_cutover(value)
            except ValueError:
                continue
            return value
    return None


def activation_start(path: str, model: str) -> tuple[str, dict[str, Any]]:
    """``(start time, record)`` of ``model``'s newest activation, shadow or promotion record
    in the activation log at ``path``; ActivationStartError when there is none to use."""
    try:
        check_path(path)
    except ActivationLogError as exc:
        raise ActivationStartError(str(exc)) from None
    if not os.path.exists(path):
        raise ActivationStartError(
            f"no activation log at {path}: the model's activation cannot be found "
            "(give --activation-log, or --after with the time yourself)"
        )
    try:
        last_record(path)  # refuses a log whose last line is not a whole record
        records, _problems = read_records(path)
    except ActivationLogError as exc:
        raise ActivationStartError(f"cannot read the activation log: {exc}") from None
    record = next((r for r in reversed(records) if is_start_of(r, model)), None)
    if record is None:
        kinds = ", ".join(START_ACTIONS)
        raise ActivationStartError(
            f"{path} has no {kinds} record of {model}: it was never activated on this host "
            "(give --after with the time yourself)"
        )
    start = start_time(record)
    if start is None:
        raise ActivationStartError(
            f"the newest activation record of {model} in {path} "
            f"({record.get('action') or record.get('event')}) has no usable time in "
            f"{', '.join(_TIME_KEYS)}"
        )
    return start, dict(record)
