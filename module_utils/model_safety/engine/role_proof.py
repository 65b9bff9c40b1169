"""Prove, after an engine start, that a model really has its new role in the live telemetry
and in the trade log: it votes (canary) or it stays in shadow mode.

:func:`prove_model_role` reads the telemetry stream incrementally from the cutover (XRANGE from
the last id seen, pages of :data:`PAGE_SIZE`, again every :data:`POLL_INTERVAL_S`) until
``min_events`` events show the model in its role, then, with a trade log, waits within the same
timeout for ``trade_intents`` rows that credit it (voting) or checks that none does (shadow).

Fail-closed: an event that contradicts the role, a malformed payload, a shadow model credited
in the trade log, Redis failing, a missing or unreadable trade log are all reasons, and the
proof holds only when there is none. The SQLite file is opened read-only, never written.
``client`` is a redis-py client (4.3 or later, with or without ``decode_responses``).

How many events to wait for, and how long, follows the rate observed before the cutover
(:func:`pre_activation_rate`, :func:`proof_plan`): production emits about 1 event per minute
(DESIGN "Event rates"), where 20 events in 60 s never come.
"""

from __future__ import annotations

import json
import math
import os
import re
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import redis

from .. import utctime
from ..cutover import parse_cutover, stream_id_key
from ..site_defaults import DEFAULT_TRADE_TABLE
from ..telemetry.stream import PAYLOAD_FIELD
from .commands import EngineStateError
from .stream_stats import span_rate, stream_id_ms
from .validation import validate_model_name, validate_stream_name, validate_timeout

ROLES = ("voting", "shadow")
ACTIONS = frozenset({"BUY", "SELL", "HOLD"})
PAGE_SIZE = 1000
POLL_INTERVAL_S = 0.5
# Share of the events after the cutover that may lack the model (absent or inactive), as the
# gate allows for an inactive candidate (DESIGN "Telemetry event").
MAX_MISSING_SHARE = 0.05
MAX_VIOLATIONS = 10
# The table name is put into the SQL text (SQLite cannot bind it): only a plain identifier.
_SQL_IDENTIFIER_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")
# The plan (proof_plan): a healthy start fails to show the planned events within the wait
# with at most this probability at the observed rate (1 healthy activation in 1000).
MISS_PROBABILITY = 0.001
# The newest events before the cutover that measure the rate: about 50 minutes at 1/min.
RATE_SAMPLE = 50
# The shortest wait: the engine's warm-up, and the old fixed 60 s at the lab's rates.
MIN_WAIT_S = 60.0
# The operator's bound on the wait (activation_verify_timeout) when nothing else is given.
DEFAULT_MAX_WAIT_S = 900.0
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class RoleProofError(EngineStateError):
    """Input that cannot be right: an unknown role, a bad cutover, a bad count."""


class _Malformed(Exception):
    """A payload that breaks the DESIGN event contract."""


# --------------------------------------------------------------------------- validation


def validate_role(role: str) -> str:
    """Return ``role`` if it is ``voting`` or ``shadow``, else raise."""
    if role not in ROLES:
        raise RoleProofError(f"role must be one of {', '.join(ROLES)}: {role!r}")
    return role


def validate_trade_table(table: str) -> str:
    """Return ``table`` if it is a plain SQL identifier (letters, digits, ``_``), else raise."""
    if not isinstance(table, str) or not _SQL_IDENTIFIER_RE.fullmatch(table):
        raise RoleProofError(f"trade_table must be a plain SQL identifier: {table!r}")
    return table


def _positive_int(value: int, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise RoleProofError(f"{name} must be a positive integer: {value!r}")
    return value


def cutover_bound(after: str) -> tuple[str, int]:
    """``(exclusive XRANGE start, cutover millisecond)`` for ``after``, a stream id
    ``<ms>-<seq>`` or an ISO-8601 time with a zone (see :func:`.cutover.parse_cutover`)."""
    try:
        start = parse_cutover(after)
    except ValueError as exc:
        raise RoleProofError(f"bad cutover: {exc}") from None
    return start, stream_id_key(start)[0]


def iso_ms(ms: int) -> str:
    """``2026-01-10T12:00:00.123Z``, the trade log's ``created_at`` format, of epoch ``ms``."""
    second = datetime.fromtimestamp(ms // 1000, UTC)
    return utctime.iso_ms(second.replace(microsecond=ms % 1000 * 1000))


def created_at_ms(text: object) -> int | None:
    """Epoch milliseconds of a ``created_at`` value (ISO-8601; without a zone, UTC as SQLite
    writes it), or None when it is not a time."""
    if not isinstance(text, str):
        return None
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    delta = moment - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1000 + delta.microseconds // 1000


# --------------------------------------------------------------------------- plan


def poisson_cdf(k: int, mean: float) -> float:
    """P(X <= k) for X ~ Poisson(``mean``) (0 for k < 0)."""
    term = math.exp(-mean)
    total = 0.0
    for i in range(k + 1):
        total += term
        term *= mean / (i + 1)
    return min(total, 1.0)


def _mean_for_events(events: int) -> float:
    """The smallest Poisson mean at which ``events`` or more come with probability
    1 - MISS_PROBABILITY (bisection; P(X < events) falls as the mean grows)."""
    low, high = 0.0, events + 10.0 * math.sqrt(events) + 20.0
    for _ in range(60):
        middle = (low + high) / 2
        if poisson_cdf(events - 1, middle) <= MISS_PROBABILITY:
            high = middle
        else:
            low = middle
    return high


def observed_rate(
    ids_ms: list[int], until_ms: int, since_ms: int | None, sample: int
) -> float | None:
    """Events per second before the cutover ``until_ms``, from the stream-id times ``ids_ms``
    of the newest (at most ``sample``) events before it, newest first; None when unknown.

    With ``since_ms`` (the start before the activation) and fewer than ``sample`` events, they
    are all of that start's events: their count over the time from ``since_ms`` to the cutover
    (a start that emitted nothing yet has no rate). Otherwise ``(n - 1) / span`` of the ids, as
    ``engine_status`` reports it (:func:`.engine_state.span_rate`).
    """
    if since_ms is None or len(ids_ms) >= sample:
        return span_rate(ids_ms)
    span_ms = until_ms - since_ms
    return len(ids_ms) * 1000.0 / span_ms if ids_ms and span_ms > 0 else None


def proof_plan(
    rate: float | None, max_wait: float = DEFAULT_MAX_WAIT_S, max_events: int = 20
) -> dict[str, Any]:
    """How many events to wait for, and how long, at the observed ``rate`` (events/s).

    ``events``: the largest n <= ``max_events`` such that a Poisson stream at ``rate`` shows n
    events within ``max_wait`` with probability >= 1 - MISS_PROBABILITY, at least 1.
    ``wait``: ``max_wait``, shortened when the events come fast so that a start that shows
    nothing fails soon: twice the time in which ``events`` come with that probability, at
    least MIN_WAIT_S. An unknown or zero rate: 1 event within ``max_wait`` (the documented
    minimum, never a failure by itself). ``poll_s`` (how often Ansible reports progress) and
    ``async_s`` (the job's limit) follow.
    """
    max_wait = validate_timeout(max_wait)
    _positive_int(max_events, "max_events")
    if rate is None or not math.isfinite(rate) or rate <= 0:
        rate, events, wait, expected = None, 1, max_wait, max_wait
    else:
        mean = rate * max_wait
        events = next(
            (n for n in range(max_events, 1, -1) if poisson_cdf(n - 1, mean) <= MISS_PROBABILITY),
            1,
        )
        wait = min(max_wait, max(MIN_WAIT_S, 2 * _mean_for_events(events) / rate))
        expected = events / rate
    return {
        "rate_per_s": rate,
        "events": events,
        # The chance that a healthy start shows the events within the wait (low when the
        # bound is too short for the rate: the message says to raise it); unknown without one.
        "probability": rate and round(1 - poisson_cdf(events - 1, rate * wait), 4),
        "wait": round(wait, 1),
        "expected_s": round(min(expected, wait), 1),
        "poll_s": int(min(15, max(1, expected // 5))),
        "async_s": math.ceil(wait) + 60,
    }


def plan_message(plan: dict[str, Any], model: str, role: str, after: str) -> str:
    """What the proof waits for, in one line for the operator."""
    rate = plan["rate_per_s"]
    measured = (
        f"pre-activation rate {rate:.3g}/s from {plan['rate_events']} events"
        if rate
        else f"pre-activation rate unknown ({plan['rate_events']} events), so the minimum"
    )
    text = (
        f"waiting for {plan['events']} events showing {model} {role} after {after}, up to "
        f"{plan['wait']:g} s (about {plan['expected_s']:g} s expected; {measured})"
    )
    if rate and plan["probability"] < 1 - MISS_PROBABILITY:
        text += (
            f"; only {100 * plan['probability']:.0f}% likely within the wait at this rate: "
            "raise activation_verify_timeout"
        )
    return text


def pre_activation_rate(
    client: Any, stream: str, after: str, since: str = "", sample: int = RATE_SAMPLE
) -> dict[str, Any]:
    """The rate of the events up to the cutover ``after``: ``rate_per_s`` (None when unknown,
    see :func:`observed_rate`), ``rate_events`` (how many were read) and ``rate_since``.
    ``since`` (empty: any) keeps to the events after it, the start before the activation.
    Raises :class:`RoleProofError` for a bad cutover, redis errors as they come."""
    validate_stream_name(stream)
    until, until_ms = cutover_bound(after)
    since_start, since_ms = cutover_bound(since) if since else ("-", None)
    entries = client.xrevrange(stream, max=until.lstrip("("), min=since_start, count=sample)
    ids_ms = [stream_id_ms(entry_id) for entry_id, _fields in entries]
    return {
        "rate_per_s": observed_rate(ids_ms, until_ms, since_ms, sample),
        "rate_events": len(ids_ms),
        "rate_since": since or None,
    }


# --------------------------------------------------------------------------- events


def _reject_constant(name: str) -> float:
    raise _Malformed(f"non-finite number {name} in JSON")


def _text(value: bytes | str) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value


def _count(event: dict[str, Any], key: str) -> int:
    value = event.get(key)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise _Malformed(f"{key} is not a non-negative integer: {value!r}"[:200])
    return value


def _entry_state(name: str, entry: object) -> tuple[str, str | None]:
    """``("voting" | "shadow" | "inactive", action)`` of one model_breakdown entry."""
    if not isinstance(entry, dict):
        raise _Malformed(f"model_breakdown.{name} is not an object")
    shadow, inactive = entry.get("shadow", False), entry.get("inactive", False)
    if not isinstance(shadow, bool) or not isinstance(inactive, bool):
        raise _Malformed(f"model_breakdown.{name}: shadow/inactive flags must be booleans")
    if inactive:
        if "action" in entry or "confidence" in entry:
            raise _Malformed(f"model_breakdown.{name} is inactive but has an action or confidence")
        if not isinstance(entry.get("inactive_reason"), str) or not entry["inactive_reason"]:
            raise _Malformed(f"model_breakdown.{name} is inactive without an inactive_reason")
        return "inactive", None
    action, confidence = entry.get("action"), entry.get("confidence")
    if action not in ACTIONS:
        raise _Malformed(f"model_breakdown.{name}.action is not BUY/SELL/HOLD: {action!r}"[:200])
    if (
        isinstance(confidence, bool)
        or not isinstance(confidence, int | float)
        or not (math.isfinite(confidence) and 0.0 <= confidence <= 1.0)
    ):
        raise _Malformed(f"model_breakdown.{name}.confidence not in [0, 1]: {confidence!r}"[:200])
    return ("shadow" if shadow else "voting"), action


def parse_event(payload: bytes | str | None) -> tuple[dict[str, tuple[str, str | None]], Any]:
    """``({model: (state, action)}, event)`` of one payload; :class:`_Malformed` when it breaks
    the parts of the contract a role proof relies on (strict JSON, side, counts, breakdown)."""
    if payload is None:
        raise _Malformed(f"no {PAYLOAD_FIELD!r} field")
    try:
        event = json.loads(_text(payload), parse_constant=_reject_constant)
    except ValueError as exc:
        raise _Malformed(f"unparsable JSON: {exc}"[:200]) from None
    if not isinstance(event, dict):
        raise _Malformed("payload is not a JSON object")
    if event.get("side") not in ACTIONS:
        raise _Malformed(f"side is not BUY/SELL/HOLD: {event.get('side')!r}"[:200])
    _count(event, "total_models")
    _count(event, "consensus_count")
    breakdown = event.get("model_breakdown")
    if not isinstance(breakdown, dict) or not breakdown:
        raise _Malformed("model_breakdown is not a non-empty object")
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
class _Tally:
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
        except _Malformed as exc:
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
    client: Any, stream: str, start: str, tally: _Tally, enough: int
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


# --------------------------------------------------------------------------- trade log


class TradeLogError(Exception):
    """The trade log is missing, not a database, lacks its table or cannot be read."""


def open_trade_log(db_path: str, table: str = DEFAULT_TRADE_TABLE) -> sqlite3.Connection:
    """A read-only connection (``mode=ro``: nothing can be written) with ``table`` checked."""
    if not os.path.isfile(db_path):
        raise TradeLogError(f"trade log {db_path} does not exist (or is not a file)")
    uri = "file:" + quote(os.path.abspath(db_path)) + "?mode=ro"
    try:
        connection = sqlite3.connect(uri, uri=True, timeout=5.0)
    except sqlite3.Error as exc:
        raise TradeLogError(f"trade log {db_path} cannot be opened read-only: {exc}") from None
    try:
        connection.execute(f"SELECT id, created_at, model_source FROM {table} LIMIT 0")
    except sqlite3.Error as exc:
        connection.close()
        raise TradeLogError(f"trade log {db_path} unusable: {exc}") from None
    return connection


def credits_model(model_source: object, model: str) -> bool:
    """True when the comma-separated ``model_source`` names ``model``."""
    return isinstance(model_source, str) and model in (
        name.strip() for name in model_source.split(",")
    )


@dataclass
class _Rows:
    """Trade log rows after the cutover that credit the model (read incrementally by id)."""

    model: str
    cutover_ms: int
    table: str = DEFAULT_TRADE_TABLE
    last_row_id: int = -1
    count: int = 0
    row_ids: list[int] = field(default_factory=list)
    unparsable: list[int] = field(default_factory=list)

    def read(self, connection: sqlite3.Connection, db_path: str) -> None:
        # The indexed created_at prefilter is only a lower bound (to the second); the exact
        # comparison is made on the parsed time below.
        lower = iso_ms(self.cutover_ms - self.cutover_ms % 1000)[:19]
        query = (
            f"SELECT id, created_at, model_source FROM {self.table} "
            "WHERE id > ? AND created_at >= ? AND instr(model_source, ?) > 0 ORDER BY id"
        )
        try:
            cursor = connection.execute(query, (self.last_row_id, lower, self.model))
            for row_id, created_at, model_source in cursor:
                self.last_row_id = row_id
                if not credits_model(model_source, self.model):
                    continue
                ms = created_at_ms(created_at)
                if ms is None:
                    if len(self.unparsable) < MAX_VIOLATIONS:
                        self.unparsable.append(row_id)
                elif ms > self.cutover_ms:
                    self.count += 1
                    if len(self.row_ids) < MAX_VIOLATIONS:
                        self.row_ids.append(row_id)
        except sqlite3.Error as exc:
            raise TradeLogError(f"trade log {db_path} unreadable: {exc}") from None


# --------------------------------------------------------------------------- the proof


def prove_model_role(
    client: Any,
    stream: str,
    model: str,
    role: str,
    after: str,
    min_events: int = 20,
    timeout: float = 60,
    db_path: str | None = None,
    min_rows: int = 1,
    trade_table: str = DEFAULT_TRADE_TABLE,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> dict[str, Any]:
    """Prove that ``model`` has ``role`` (``voting`` or ``shadow``) in the events after
    ``after`` and, with ``db_path``, in the ``trade_table`` rows after it; see the module
    docstring.

    Waits (reading again every 0.5 s, at least once) until ``min_events`` events show the model
    in its role and, for ``voting`` with ``db_path``, ``min_rows`` rows credit it, or until
    ``timeout`` seconds have passed; a violation or an error ends the wait at once. Returns
    ``proven``, ``role``, ``model``, ``events``, ``missing`` (events without the model),
    ``inactive`` (events where it was inactive), ``violations`` (the first 10, each naming its
    stream id or trade log row), ``rows``, ``first_id``, ``last_id`` (events read), ``elapsed``,
    ``reads``, ``reasons`` (empty when proven). Raises :class:`RoleProofError` (an
    :class:`.engine_state.EngineStateError`) for bad arguments only.
    """
    validate_stream_name(stream)
    validate_model_name(model)
    validate_role(role)
    timeout = validate_timeout(timeout)
    _positive_int(min_events, "min_events")
    _positive_int(min_rows, "min_rows")
    validate_trade_table(trade_table)
    start_id, cutover_ms = cutover_bound(after)
    tally = _Tally(model, role)
    rows = _Rows(model, cutover_ms, trade_table)
    errors: list[str] = []
    began = clock()
    reads = 0
    connection = None
    try:
        if db_path is not None:
            connection = open_trade_log(db_path, trade_table)
        while True:
            reads += 1
            start_id, error = read_new_events(client, stream, start_id, tally, min_events)
            if error:
                errors.append(error)
                break
            if tally.violations:
                break
            if tally.events >= min_events:
                if connection is None:
                    break
                rows.read(connection, db_path)
                if role == "shadow" or rows.count >= min_rows:
                    break
            elapsed = clock() - began
            if elapsed >= timeout:
                break
            sleep(max(0.0, min(POLL_INTERVAL_S, timeout - elapsed)))
    except TradeLogError as exc:
        errors.append(str(exc))
    finally:
        if connection is not None:
            connection.close()
    elapsed = clock() - began
    violations = list(tally.violations)
    if role == "shadow" and rows.count:
        violations += [
            f"{trade_table} row {row_id} credits the shadow model {model}"
            for row_id in rows.row_ids
        ][: MAX_VIOLATIONS - len(violations)]
    reasons = _reasons(tally, rows, errors, after, timeout, min_events, min_rows, db_path)
    return {
        "proven": not reasons,
        "role": role,
        "model": model,
        "events": tally.events,
        "missing": tally.missing,
        "inactive": tally.inactive,
        "violations": violations,
        "rows": rows.count,
        "first_id": tally.first_id,
        "last_id": tally.last_id,
        "elapsed": round(elapsed, 3),
        "reads": reads,
        "reasons": reasons,
    }


def _reasons(
    tally: _Tally,
    rows: _Rows,
    errors: list[str],
    after: str,
    timeout: float,
    min_events: int,
    min_rows: int,
    db_path: str | None,
) -> list[str]:
    model, role = tally.model, tally.role
    reasons = list(errors)
    if tally.violations:
        noun = "event contradicts" if tally.violation_count == 1 else "events contradict"
        reasons.append(
            f"{tally.violation_count} {noun} the {role} role of {model}, first "
            f"{tally.violations[0]}"
        )
    if errors or tally.violations:
        return reasons
    if tally.events < min_events:
        reasons.append(
            f"only {tally.events} events show {model} as {role} after {after} within "
            f"{timeout:g} s ({min_events} required; {tally.seen} read)"
        )
    absent = tally.missing + tally.inactive
    if tally.seen and absent / tally.seen > MAX_MISSING_SHARE:
        reasons.append(
            f"{model} missing from {absent} of {tally.seen} events "
            f"({100 * absent / tally.seen:.1f}% > {100 * MAX_MISSING_SHARE:.0f}%; "
            f"absent {tally.missing}, inactive {tally.inactive})"
        )
    if role == "shadow" and rows.unparsable:
        # Rows whose time is unknown may be after the cutover: a shadow model credited there
        # cannot be ruled out.
        reasons.append(
            f"{rows.table} rows crediting {model} have an unreadable created_at "
            f"(ids {', '.join(map(str, rows.unparsable[:MAX_VIOLATIONS]))})"
        )
    if db_path is not None and role == "shadow" and rows.count:
        reasons.append(
            f"{rows.count} {rows.table} rows after {iso_ms(rows.cutover_ms)} credit the "
            f"shadow model {model} (first ids {', '.join(map(str, rows.row_ids))})"
        )
    voting_checked = db_path is not None and role == "voting" and tally.events >= min_events
    if voting_checked and rows.count < min_rows:
        reasons.append(
            f"only {rows.count} {rows.table} rows after {iso_ms(rows.cutover_ms)} credit "
            f"{model} within {timeout:g} s ({min_rows} required)"
        )
    return reasons


def role_failure_message(proof: dict[str, Any], stream: str, db_path: str | None) -> str:
    """One line saying why ``proof`` (a :func:`prove_model_role` result) failed."""
    where = f"stream {stream}" + (f" and trade log {db_path}" if db_path else "")
    return (
        f"{proof['model']} is not proven {proof['role']} ({where}; {proof['events']} events, "
        f"{proof['rows']} rows, {proof['elapsed']:g} s): " + "; ".join(proof["reasons"])
    )
