"""One probe of a canary host for the monitor: everything one check needs, read in one go.

Composed of the project's own readers, nothing new: the service's state (``systemctl show``,
:func:`.engine_state.read_service_state`), the model configuration its files define
(:func:`.engine_config.unit_expected_config`: which model is the canary, at which weight), the
newest activation or promotion record of the model (:func:`.activation_log.last_record`) and
the quality gate of the canary model over the events after ``after`` (:func:`.run.run_gate`).
Operational failures become data (``config_error``, the gate's ``error``) for the monitor to
judge; only bad arguments raise.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .activation_log import ActivationLogError, last_record
from .engine_config import EngineConfigError, unit_expected_config
from .engine_state import Runner, read_service_state, service_uptime
from .run import run_gate

ACTIVATION_EVENTS = ("activation", "promotion")


def probe_canary(
    run: Runner,
    client_or_url: Any,
    *,
    unit: str,
    baseline: Mapping[str, float],
    model: str,
    stream: str,
    activation_log: str,
    after: str | None = None,
    thresholds: Any = None,
    timeout: float = 10.0,
) -> dict[str, Any]:
    """The probe result: ``service`` (state, ``running``, ``uptime_s``, ``active_since``),
    ``config`` (canary, canary_weight, voting, shadow) or ``config_error``, ``activation``
    (the newest activation/promotion record of ``model``, or None), ``after`` (the window's
    start used: ``after``, else the record's ``started_at``, else the start of the running
    service) and ``gate`` (the quality gate's result for ``model``, canary mode).

    Raises EngineStateError when ``systemctl show`` cannot be read at all."""
    state = read_service_state(run, unit)
    service = {**state.as_dict(), "running": state.running, **service_uptime(state)}
    result: dict[str, Any] = {"service": service}
    try:
        result["config"] = unit_expected_config(run, unit, baseline)["expected"]
    except EngineConfigError as exc:
        result["config_error"] = str(exc)
    try:
        record = last_record(activation_log, ACTIVATION_EVENTS, model)
    except ActivationLogError as exc:
        result["config_error"] = f"cannot read the activation log: {exc}"
        record = None
    result["activation"] = record
    start = after or (record or {}).get("started_at") or service["active_since"]
    result["after"] = start
    if start is None:
        result["gate"] = {"error": f"{unit} is not active: no window to read"}
        return result
    result["gate"] = run_gate(
        client_or_url,
        stream,
        mode="canary",
        model=model,
        after=start,
        thresholds=thresholds,
        timeout=timeout,
    )
    return result
