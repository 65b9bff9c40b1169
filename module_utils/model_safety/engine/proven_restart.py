"""A proven restart of the engine: ``systemctl daemon-reload``, stop + start (never restart),
and the proof of the new start within its settle period, as an activation's change
(:mod:`..activation.change`) and a rollback (:mod:`..activation.rollback`) do it once their
files are in place; and what check mode reports instead. Standard library only.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from typing import Any

from .commands import EngineStateError, Runner, StepFailed
from .config import validate_baseline
from .cycle import STEP_CYCLE, invocation_result, reload_and_cycle, validate_cycle_options
from .startup_proof import ModelExpectation, prove_start
from .systemd import ServiceState, read_service_state
from .validation import validate_checkout, validate_timeout

# What a result says of a new start.
START_KEYS = ("invocation_id", "previous_invocation_id", "main_pid", "started_at")


@dataclass(frozen=True)
class RestartOptions:
    """The engine's unit and checkout, the baseline its files' config is proven against, and
    how long to wait: for the new start to run (``cycle_timeout``), to keep running
    (``settle``) and to log its start-up lines (``journal_timeout``)."""

    unit: str
    checkout: str
    baseline: Mapping[str, float]
    cycle_timeout: float
    settle: float
    journal_timeout: float

    @classmethod
    def of(cls, request: Any) -> RestartOptions:
        """The options of ``request``: anything with these fields (an activation's change, a
        rollback)."""
        return cls(**{option.name: getattr(request, option.name) for option in fields(cls)})

    def check(self) -> None:
        """Raise EngineStateError or EngineConfigError for a value no step accepts."""
        validate_cycle_options(self.unit, self.cycle_timeout, self.settle)
        validate_timeout(self.journal_timeout)
        validate_checkout(self.checkout)
        validate_baseline(self.baseline)


def prove_running(
    run: Runner,
    options: RestartOptions,
    state: ServiceState,
    expected: ModelExpectation | None,
    result: dict[str, Any],
    *,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> None:
    """Prove the start ``state`` shows (:func:`.startup_proof.prove_start`) into
    ``result["proof"]``; ``result["start"]`` names it first, so a failed proof still says
    which start it was."""
    result["start"] = {
        **result.get("start", {}),
        "invocation_id": state.invocation_id,
        "main_pid": state.main_pid,
    }
    result["proof"] = prove_start(
        run,
        options.unit,
        state.invocation_id,
        checkout=options.checkout,
        baseline=options.baseline,
        expected=expected,
        journal_timeout=options.journal_timeout,
        clock=clock,
        sleep=sleep,
    )


def restart_proven(
    run: Runner,
    options: RestartOptions,
    expected: ModelExpectation | None,
    result: dict[str, Any],
    *,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> None:
    """daemon-reload, stop + start, and the proof of the new start within its settle period
    (:func:`.cycle.reload_and_cycle`), filling ``result`` as it goes: ``start`` (the
    START_KEYS), ``proof`` and ``seconds`` (``stop``, ``start``). Raises StepFailed."""

    def prove(state: ServiceState) -> None:
        prove_running(run, options, state, expected, result, sleep=sleep, clock=clock)

    cycled = reload_and_cycle(
        run,
        options.unit,
        timeout=options.cycle_timeout,
        settle=options.settle,
        while_settling=prove,
        sleep=sleep,
        clock=clock,
    )
    result["start"] = {key: cycled[key] for key in START_KEYS}
    result.setdefault("seconds", {}).update(
        stop=cycled["stop_seconds"], start=cycled["start_seconds"]
    )


def would_restart(run: Runner, unit: str) -> dict[str, Any]:
    """Check mode: the running start, which a run would stop and start again (START_KEYS, with
    ``previous_invocation_id`` and ``started_at`` None, ``n_restarts``, ``state`` and
    ``would_cycle``). Raises StepFailed when the unit cannot be read."""
    try:
        state = read_service_state(run, unit)
    except EngineStateError as exc:
        raise StepFailed(STEP_CYCLE, f"cannot read {unit}: {exc}") from None
    return {
        **invocation_result(state),
        "previous_invocation_id": None,
        "started_at": None,
        "would_cycle": True,
    }
