"""The telemetry side of the role proof: each event after the cutover checked against the
event contract and the model's expected role (voting or shadow), read incrementally from the
stream and tallied.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

import redis

from ..telemetry.stream import PAYLOAD_FIELD

ACTIONS = frozenset({"BUY", "SELL", "HOLD"})
PAGE_SIZE = 1000
MAX_VIOLATIONS = 10


class MalformedEvent(Exception):
    """A payload that breaks the DESIGN event contract."""


def _reject_constant(name: str) -> float:
    raise MalformedEvent(f"non-finite number {name} in JSON")


def _text(value: bytes | str) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value


def _count(event: dict[str, Any], key: str) -> int:
    value = event.get(key)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise MalformedEvent(f"{key} is not a non-negative integer: {value!r}"[:200])
    return value


def _entry_state(name: str, entry: object) -> tuple[str, str | None]:
    """``("voting" | "shadow" | "inactive", action)`` of one model_breakdown entry."""
    if not isinstance(entry, dict):
        raise MalformedEvent(f"model_breakdown.{name} is not an object")
    shadow, inactive = entry.get("shadow", False), entry.get("inactive", False)
    if not isinstance(shadow, bool) or not isinstance(inactive, bool):
        raise MalformedEvent(f"model_breakdown.{name}: shadow/inactive flags must be booleans")
    if inactive:
        if "action" in entry or "confidence" in entry:
            raise MalformedEvent(
                f"model_breakdown.{name} is inactive but has an action or confidence"
            )
        if not isinstance(entry.get("inactive_reason"), str) or not entry["inactive_reason"]:
            raise MalformedEvent(f"model_breakdown.{name} is inactive without an inactive_reason")
        return "inactive", None
    action, confidence = entry.get("action"), entry.get("confidence")
    if action not in ACTIONS:
        raise MalformedEvent(
            f"model_breakdown.{name}.action is not BUY/SELL/HOLD: {action!r}"[:200]
        )
    if (
        isinstance(confidence, bool)
        or not isinstance(confidence, int | float)
        or not (math.isfinite(confidence) and 0.0 <= confidence <= 1.0)
    ):
        raise MalformedEvent(
            f"model_breakdown.{name}.confidence not in [0, 1]: {confidence!r}"[:200]
        )
    return ("shadow" if shadow else "voting"), action


def parse_event(payload: bytes | str | None) -> tuple[dict[str, tuple[str, str | None]], Any]:
    """``({model: (state, action)}, event)`` of one payload; :class:`MalformedEvent` when it breaks
    the parts of the contract a role proof relies on (strict JSON, side, counts, breakdown)."""
    if payload is None:
        raise MalformedEvent(f"no {PAYLOAD_FIELD!r} field")
    try:
        event = json.loads(_text(payload), parse_constant=_reject_constant)
    except ValueError as exc:
        raise MalformedEvent(f"unparsable JSON: {exc}"[:200]) from None
    if not isinstance(event, dict):
        raise MalformedEvent("payload is not a JSON object")
    if event.get("side") not in ACTIONS:
        raise MalformedEvent(f"side is not BUY/SELL/HOLD: {event.get('side')!r}"[:200])
    _count(event, "total_models")
    _count(event, "consensus_count")
    breakdown = event.get("model_breakdown")
    if not isinstance(breakdown, dict) or not breakdown:
        raise MalformedEvent("model_breakdown is not a non-empty object")
    return {name: _entry_state(name, entry) for name, entry in breakdown.items()}, event


def role_violation(
    model: str, role: str, states: dict[str, tuple[str, str | None]], event: dict[str, Any]
) -> str | None:
    """Why an event in which ``model`` is active contradicts ``role``, or None."""
    state = states[model][0]
    if role == "voting" and state == "shadow":
        return f"{model} has the shadow flag, expected voting"
    if role == "shadow" and state == "voting":
        return f"{model} votes (no shadow flag), expected shadow"
    voters = [action for state, action in states.values() if state == "voting"]
    agreeing = sum(action == event["side"] for action in voters)
    total, consensus = event["total_models"], event["consensus_count"]
    if role == "shadow" and total == len(voters) + 1:
        return f"total_models {total} counts the shadow model {model} ({len(voters)} voting)"
    if total != len(voters):
        return f"total_models {total} != {len(voters)} voting models (active, not shadow)"
    if consensus != agreeing:
        return (
            f"consensus_count {consensus} != {agreeing} voting models agreeing with side "
            f"{event['side']}"
        )
    return None


@dataclass
class RoleTally:
    """What the events read so far say about the model's role."""

    model: str
    role: str
    events: int = 0
    missing: int = 0
    inactive: int = 0
    violations: list[str] = field(default_factory=list)
    violation_count: int = 0
    first_id: str | None = None
    last_id: str | None = None

    @property
    def seen(self) -> int:
        return self.events + self.missing + self.inactive

    def violate(self, stream_id: str, reason: str) -> None:
        self.violation_count += 1
        if len(self.violations) < MAX_VIOLATIONS:
            self.violations.append(f"{stream_id}: {reason}")

    def add(self, stream_id: str, payload: bytes | str | None) -> None:
        self.first_id = self.first_id or stream_id
        self.last_id = stream_id
        try:
            states, event = parse_event(payload)
        except MalformedEvent as exc:
            self.violate(stream_id, f"malformed event: {exc}")
            return
        if self.model not in states:
            self.missing += 1
            return
        if states[self.model][0] == "inactive":
            # An inactive model neither votes nor counts: no proof either way, like an absence.
            self.inactive += 1
            return
        reason = role_violation(self.model, self.role, states, event)
        if reason:
            self.violate(stream_id, reason)
        else:
            self.events += 1


def _payload_of(fields: dict[Any, Any]) -> bytes | str | None:
    for key, value in fields.items():
        if _text(key) == PAYLOAD_FIELD:
            return value
    return None


def read_new_events(
    client: Any, stream: str, start: str, tally: RoleTally, enough: int
) -> tuple[str, str | None]:
    """Feed ``tally`` the entries after ``start`` (exclusive), page by page, until the stream
    is drained, a violation is found or ``enough`` events prove the role. Returns the new
    exclusive start and a reason when Redis failed."""
    while tally.events < enough and not tally.violations:
        try:
            page = client.xrange(stream, min=start, max="+", count=PAGE_SIZE)
        except (redis.RedisError, OSError) as exc:
            return start, f"redis unreachable or failing: {type(exc).__name__}: {exc}"
        for entry_id, fields in page:
            stream_id = _text(entry_id)
            tally.add(stream_id, _payload_of(fields))
            start = "(" + stream_id
            if tally.violations or tally.events >= enough:
                break
        if len(page) < PAGE_SIZE:
            break
    return start, None
