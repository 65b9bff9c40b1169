"""Stop + start of the engine's unit (never ``systemctl restart``), proven to have taken.

A canary or rollback takes effect only through a fresh invocation of the unit, so the cycle is
``systemctl stop`` then ``systemctl start`` (the unit is ``Type=notify``: start returns once
the engine said READY=1, or fails), then proof that a NEW invocation is active and running,
then a settle period in which it must stay the same process (``Restart=on-failure`` would
otherwise hide a crash loop behind an "active" state). The result records the new InvocationID,
whose journal is the only valid proof of what runs now.

``run(argv) -> (rc, stdout, stderr)`` is the Runner of :mod:`engine_state`; ``sleep`` and
``clock`` are injectable so tests need no real time. Bad input and a failed ``systemctl stop``
raise :class:`EngineStateError`; a start that fails, never becomes active or does not stay up
raises :class:`CycleError`, which carries the unit's state and the new invocation's journal.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from ..utctime import iso_us
from .commands import EngineStateError, Runner, StepFailed, run_checked
from .systemd import ServiceState, parse_systemctl_show, read_journal, read_service_state
from .validation import validate_unit

__all__ = [
    "CycleError",
    "cycle_failure_message",
    "cycle_service",
    "format_utc",
    "invocation_result",
    "parse_active_enter_timestamp",
    "read_started_at",
    "reload_and_cycle",
    "validate_cycle_options",
]

# The steps of reload_and_cycle, named as the tasks that once did them one by one.
STEP_RELOAD = "Make systemd read the unit's files"
STEP_CYCLE = "Stop, then start the engine (never restart) and record the new invocation"

POLL_INTERVAL_S = 0.5
MAX_SECONDS = 3600.0
JOURNAL_TAIL = 50

# ``systemctl show --timestamp=us+utc``: "Mon 2026-11-23 18:01:02.123456 UTC".
_TIMESTAMP_RE = re.compile(
    r"(Mon|Tue|Wed|Thu|Fri|Sat|Sun) ([0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}"
    r"\.[0-9]{6}) UTC"
)
_WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


class CycleError(EngineStateError):
    """The unit did not come back as one new, stable invocation.

    ``state`` is the unit's state when this was found out (None if it could not be read),
    ``journal`` the last lines of the newest invocation's journal (empty when there is no new
    invocation or its journal could not be read) and ``journal_invocation_id`` that invocation.
    """

    def __init__(
        self,
        reason: str,
        state: ServiceState | None,
        journal: list[str],
        journal_invocation_id: str | None,
    ) -> None:
        self.reason = reason
        self.state = state
        self.journal = journal
        self.journal_invocation_id = journal_invocation_id
        super().__init__(reason)


def _validate_seconds(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise EngineStateError(f"{name} must be a number of seconds: {value!r}")
    if not (math.isfinite(value) and 0 <= value <= MAX_SECONDS):
        raise EngineStateError(f"{name} must be in 0..{MAX_SECONDS:g} s: {value!r}")
    return float(value)


def validate_cycle_options(unit: str, timeout: float, settle: float) -> tuple[str, float, float]:
    """``(unit, timeout, settle)`` if the unit name is valid and both durations are in
    0..3600 s, else raise :class:`EngineStateError`."""
    return (
        validate_unit(unit),
        _validate_seconds("timeout", timeout),
        _validate_seconds("settle", settle),
    )


# --------------------------------------------------------------------------- start time


def parse_active_enter_timestamp(text: str) -> datetime:
    """Parse the output of ``systemctl show --timestamp=us+utc -p ActiveEnterTimestamp``
    (``ActiveEnterTimestamp=Mon 2026-11-23 18:01:02.123456 UTC``) into an aware UTC datetime.

    Strict: exactly that one property, microseconds, UTC and a weekday that fits the date.
    An empty value (the unit was never active) raises :class:`EngineStateError` too.
    """
    properties = parse_systemctl_show(text)
    if list(properties) != ["ActiveEnterTimestamp"]:
        raise EngineStateError(
            f"expected only ActiveEnterTimestamp from systemctl show, got {sorted(properties)}"
        )
    value = properties["ActiveEnterTimestamp"]
    if not value:
        raise EngineStateError("ActiveEnterTimestamp is empty: the unit has not been active")
    match = _TIMESTAMP_RE.fullmatch(value)
    if not match:
        raise EngineStateError(
            f"ActiveEnterTimestamp is not 'Day YYYY-MM-DD HH:MM:SS.ffffff UTC': {value!r}"
        )
    try:
        moment = datetime.strptime(match.group(2), "%Y-%m-%d %H:%M:%S.%f")
    except ValueError:
        raise EngineStateError(f"ActiveEnterTimestamp is not a valid date: {value!r}") from None
    if _WEEKDAYS[moment.weekday()] != match.group(1):
        raise EngineStateError(f"ActiveEnterTimestamp has the wrong weekday: {value!r}")
    return moment.replace(tzinfo=UTC)


# ``2026-11-23T18:01:02.123456Z``: ISO-8601 in UTC, always with microseconds.
format_utc = iso_us


def read_started_at(run: Runner, unit: str) -> datetime:
    """When ``unit`` last entered the active state (its current start), in UTC."""
    argv = [
        "systemctl",
        "show",
        "--timestamp=us+utc",
        "--property=ActiveEnterTimestamp",
        validate_unit(unit),
    ]
    return parse_active_enter_timestamp(run_checked(run, argv))


# --------------------------------------------------------------------------- cycle


@dataclass(frozen=True)
class _NewStart:
    """The start of ``unit`` after ``previous`` (the InvocationID before the cycle; the new
    invocation must differ), polled with the injectable ``sleep`` and ``clock``."""

    run: Runner
    unit: str
    previous: str
    sleep: Callable[[float], None]
    clock: Callable[[], float]

    def journal_tail(self, state: ServiceState | None) -> tuple[list[str], str | None]:
        """The last lines of the invocation in ``state`` if it is a new one, and its id."""
        if state is None or not state.invocation_id or state.invocation_id == self.previous:
            return [], None
        try:
            lines = read_journal(self.run, state.unit, state.invocation_id)
        except EngineStateError as exc:
            return [f"(journal unreadable: {exc})"], state.invocation_id
        return lines[-JOURNAL_TAIL:], state.invocation_id

    def failure(self, reason: str, state: ServiceState | None = None) -> CycleError:
        """A :class:`CycleError` with the unit's state (read now unless given) and journal
        tail."""
        if state is None:
            try:
                state = read_service_state(self.run, self.unit)
            except EngineStateError as exc:
                reason = f"{reason} (and its state is unreadable: {exc})"
        journal, journal_invocation_id = self.journal_tail(state)
        return CycleError(reason, state, journal, journal_invocation_id)

    def wait_until_running(self, timeout: float) -> ServiceState:
        """Poll until a new invocation is active/running; the state at that moment."""
        start = self.clock()
        while True:
            state = read_service_state(self.run, self.unit)
            if state.running and state.invocation_id and state.invocation_id != self.previous:
                return state
            if state.active_state == "failed":
                raise self.failure(f"the unit failed (Result={state.result})", state)
            elapsed = self.clock() - start
            if elapsed >= timeout:
                raise self.failure(
                    f"no new invocation active and running after {timeout:g} s "
                    f"(ActiveState={state.active_state}, SubState={state.sub_state}, "
                    f"InvocationID={state.invocation_id or '-'})",
                    state,
                )
            self.sleep(max(0.0, min(POLL_INTERVAL_S, timeout - elapsed)))

    def watch_settle(self, started: ServiceState, settle: float, since: float) -> ServiceState:
        """Check every 0.5 s until ``settle`` seconds after ``since`` (the clock when
        ``started`` was read) that the same process still runs; with a settle period, at
        least once, however late this watch begins."""
        state, reads = started, 0
        while (elapsed := self.clock() - since) < settle or (settle and not reads):
            self.sleep(max(0.0, min(POLL_INTERVAL_S, settle - elapsed)))
            state = read_service_state(self.run, started.unit)
            reads += 1
            changes = [
                f"{name} {before} -> {after or '-'}"
                for name, before, after in (
                    ("InvocationID", started.invocation_id, state.invocation_id),
                    ("MainPID", started.main_pid, state.main_pid),
                    ("NRestarts", started.n_restarts, state.n_restarts),
                )
                if before != after
            ]
            if changes or not state.running:
                what = ", ".join(changes) or f"{state.active_state}/{state.sub_state}"
                raise self.failure(
                    f"the new invocation did not stay up for {settle:g} s (crash loop?): {what}",
                    state,
                )
        return state


def invocation_result(state: ServiceState) -> dict[str, Any]:
    """What a result says of the invocation ``state`` shows: its InvocationID, MainPID and
    NRestarts, and the whole state as a dict."""
    return {
        "invocation_id": state.invocation_id,
        "main_pid": state.main_pid,
        "n_restarts": state.n_restarts,
        "state": state.as_dict(),
    }


def cycle_service(
    run: Runner,
    unit: str,
    timeout: float = 60,
    settle: float = 3.0,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
    *,
    while_settling: Callable[[ServiceState], None] | None = None,
) -> dict[str, Any]:
    """``systemctl stop`` then ``systemctl start`` ``unit`` and prove a new, stable invocation.

    After start returned, ``systemctl show`` is polled every 0.5 s (at most ``timeout``
    seconds) until the unit is active/running with an InvocationID other than the one before;
    then for ``settle`` seconds from that moment its InvocationID, MainPID and NRestarts must
    not change. ``while_settling`` (given the running state) runs first within that period, so
    work that only reads the new invocation (its journal proof) costs no time of its own; what
    it raises ends the cycle at once.
    Returns ``unit``, ``previous_invocation_id``, ``invocation_id``, ``main_pid``,
    ``n_restarts``, ``started_at`` (ActiveEnterTimestamp, ISO-8601 UTC with microseconds and
    ``Z``), ``started_at_epoch``, ``stop_seconds``, ``start_seconds``, ``elapsed`` and
    ``state`` (the final :class:`ServiceState` as a dict).
    """
    unit, timeout, settle = validate_cycle_options(unit, timeout, settle)
    began = clock()
    before = read_service_state(run, unit)
    previous = before.invocation_id
    stopping = clock()
    run_checked(run, ["systemctl", "stop", unit])
    stopped = clock()
    new_start = _NewStart(run, unit, previous, sleep, clock)
    start = ["systemctl", "start", unit]
    rc, stdout, stderr = run(start)
    if rc != 0:
        said = (stderr.strip() or stdout.strip() or "no output")[:400]
        raise new_start.failure(f"`systemctl start {unit}` failed (rc {rc}): {said}")
    started = clock()
    running = new_start.wait_until_running(timeout)
    running_since = clock()
    if while_settling is not None:
        while_settling(running)
    final = new_start.watch_settle(running, settle, running_since)
    started_at = read_started_at(run, unit)
    return {
        "unit": unit,
        "previous_invocation_id": previous,
        **invocation_result(final),
        "started_at": format_utc(started_at),
        "started_at_epoch": started_at.timestamp(),
        "stop_seconds": round(stopped - stopping, 3),
        "start_seconds": round(started - stopped, 3),
        "elapsed": round(clock() - began, 3),
    }


def cycle_failure_message(unit: str, error: CycleError) -> str:
    """``stop+start of <unit> failed: <reason>; the unit is now <ActiveState>/<SubState>``."""
    if error.state is None:
        now = "in an unknown state"
    else:
        now = f"now {error.state.active_state}/{error.state.sub_state}"
    return f"stop+start of {unit} failed: {error.reason}; the unit is {now}"


def reload_and_cycle(
    run: Runner,
    unit: str,
    *,
    timeout: float,
    settle: float,
    while_settling: Callable[[ServiceState], None],
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> dict[str, Any]:
    """``systemctl daemon-reload``, then :func:`cycle_service` with ``while_settling`` (the
    proof of the new start): what an activation, its restore and a rollback do once the files
    are in place. Returns the cycle's result; raises :class:`StepFailed` at STEP_RELOAD or
    STEP_CYCLE (with the unit's ``state`` and the new start's ``journal``), and lets the
    StepFailed of ``while_settling`` through as it is."""
    try:
        # Always: a drop-in may have changed even where nothing else did.
        run_checked(run, ["systemctl", "daemon-reload"])
    except EngineStateError as exc:
        raise StepFailed(STEP_RELOAD, str(exc)) from None
    try:
        return cycle_service(
            run,
            unit,
            timeout=timeout,
            settle=settle,
            sleep=sleep,
            clock=clock,
            while_settling=while_settling,
        )
    except StepFailed:
        raise
    except CycleError as exc:
        raise StepFailed(
            STEP_CYCLE,
            cycle_failure_message(unit, exc),
            state=None if exc.state is None else exc.state.as_dict(),
            journal=exc.journal,
            journal_invocation_id=exc.journal_invocation_id,
        ) from None
    except EngineStateError as exc:
        raise StepFailed(STEP_CYCLE, f"cannot stop+start {unit}: {exc}") from None
