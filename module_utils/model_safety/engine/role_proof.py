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

import math
import re
import time
from collections.abc import Callable
from typing import Any

from ..checks import full_match, int_in_range
from ..cutover import parse_cutover, stream_id_key
from ..site_defaults import DEFAULT_TRADE_TABLE
from .commands import EngineStateError
from .role_events import MAX_VIOLATIONS, RoleTally, read_new_events
from .stream_stats import span_rate, stream_id_ms
from .trade_log import (
    TradeLogError,
    TradeRows,
    iso_ms,
    open_trade_log,
)
from .validation import validate_model_name, validate_stream_name, validate_timeout

ROLES = ("voting", "shadow")
POLL_INTERVAL_S = 0.5
# Share of the events after the cutover that may lack the model (absent or inactive), as the
# gate allows for an inactive candidate (DESIGN "Telemetry event").
MAX_MISSING_SHARE = 0.05
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


class RoleProofError(EngineStateError):
    """Input that cannot be right: an unknown role, a bad cutover, a bad count."""


# --------------------------------------------------------------------------- validation


def validate_role(role: str) -> str:
    """Return ``role`` if it is ``voting`` or ``shadow``, else raise."""
    if role not in ROLES:
        raise RoleProofError(f"role must be one of {', '.join(ROLES)}: {role!r}")
    return role


def validate_trade_table(table: str) -> str:
    """Return ``table`` if it is a plain SQL identifier (letters, digits, ``_``), else raise."""
    what = "trade_table must be a plain SQL identifier"
    return full_match(table, _SQL_IDENTIFIER_RE, RoleProofError, what)


def _positive_int(value: int, name: str) -> int:
    return int_in_range(value, RoleProofError, f"{name} must be a positive integer")


def cutover_bound(after: str) -> tuple[str, int]:
    """``(exclusive XRANGE start, cutover millisecond)`` for ``after``, a stream id
    ``<ms>-<seq>`` or an ISO-8601 time with a zone (see :func:`.cutover.parse_cutover`)."""
    try:
        start = parse_cutover(after)
    except ValueError as exc:
        raise RoleProofError(f"bad cutover: {exc}") from None
    return start, stream_id_key(start)[0]


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
    tally = RoleTally(model, role)
    rows = TradeRows(model, cutover_ms, trade_table)
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
    tally: RoleTally,
    rows: TradeRows,
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
