"""One probe of a canary host for the monitor: everything one check needs, read in one go.

Composed of the project's own readers: the service's state (``systemctl show``,
:func:`.engine_state.read_service_state`), the model configuration its files define
(:func:`.engine_config.unit_expected_config`: which model is the canary, at which weight), the
newest activation or promotion record of the model (:func:`.activation_log.last_record`), and
from the telemetry stream (:func:`.stream.read_window`):

* ``observations``: the canary model's view of the events after ``after`` (the monitor's read
  cursor; empty: the activation's start), the newest ``window_events`` of them, as compact rows
  ``[stream ms, action code, confidence, side code]`` (:class:`.evidence.Observations`);
* ``rate``: the stream's rate before the activation (:func:`.role_proof.pre_activation_rate`),
  from which the monitor plans its evidence and judges a stall;
* ``silence_s``: how long the stream has been silent, by the Redis server's clock (the one that
  stamps the ids);
* ``stop_conditions`` (with ``stop_paths``): the runbook's stop-condition measures of the host
  (:func:`.stop_conditions.measure_host`: restarts, journal lines per minute, disk usage, Redis
  memory and the stream's length) and ``stop_events``, those of the events read (payload
  sizes, consensus counts: :func:`.stop_conditions.window_measures`).

With ``feature_reference`` (the site's reference file, :mod:`..judgement.drift`), also
``drift_reference`` (the reference read, its ``path`` added) and ``drift`` (the read's
feature values counted in its bins, ``counts`` and ``events``: the monitor adds them up since
the activation, :mod:`.drift_watch`), or ``drift_error`` when the file cannot be used.

A Redis failure is retried within the probe (``retries``, RETRY_PAUSE_S apart), and a service
that is not running is read again once, so a blip is not a rollback. Operational failures
become data (``config_error``, ``telemetry_error``) for the monitor to judge; only bad
arguments raise.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from ..activation.log import ActivationLogError, last_record
from ..cutover import parse_cutover
from ..engine.commands import Runner
from ..engine.config import EngineConfigError, unit_expected_config
from ..engine.role_proof import RoleProofError, pre_activation_rate
from ..engine.stop_conditions import (
    DEFAULT_LOG_WINDOW_S,
    measure_host,
    redis_measures,
    window_measures,
)
from ..engine.stream_stats import stream_id_ms
from ..engine.systemd import read_service_state, service_uptime
from ..judgement.drift import FeatureReferenceError, load_reference, window_counts
from ..judgement.run import RunError, _open
from ..redis_client import StreamError, scrub
from ..telemetry.events import NO_ACTION
from ..telemetry.stream import read_window

ACTIVATION_EVENTS = ("activation", "promotion")
DEFAULT_WINDOW_EVENTS = 1000
DEFAULT_RETRIES = 2
RETRY_PAUSE_S = 1.0


def _service(run: Runner, unit: str, pause: Callable[[float], None]) -> dict[str, Any]:
    state = read_service_state(run, unit)
    if not state.running:
        # One more look: a unit caught between two states is not yet a stopped service.
        pause(RETRY_PAUSE_S)
        state = read_service_state(run, unit)
    return {**state.as_dict(), "running": state.running, **service_uptime(state)}


def observation_rows(window: Any, model: str) -> list[list[Any]]:
    """The model's rows of an EventWindow: ``[stream ms, action (-1 none), confidence or
    None, side]`` per valid event, oldest first."""
    columns = window.models.get(model)
    rows = []
    for index in range(window.n):
        action, confidence = NO_ACTION, None
        if columns is not None and columns.active[index]:
            action = int(columns.action[index])
            confidence = round(float(columns.confidence[index]), 6)
        rows.append([int(window.stream_ms[index]), action, confidence, int(window.side[index])])
    return rows


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _telemetry(
    client: Any,
    stream: str,
    model: str,
    after: str,
    started_at: str | None,
    window_events: int,
    stop: bool,
    reference: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    window = read_window(client, stream, count=window_events, after=parse_cutover(after))
    newest = client.xrevrange(stream, max="+", min="-", count=1)
    seconds, microseconds = client.time()
    now_ms = int(seconds) * 1000 + int(microseconds) // 1000
    result: dict[str, Any] = {
        "observations": {
            "rows": observation_rows(window, model),
            "malformed": len(window.malformed),
            # Rows whose confidence is the raw one of a capped prediction (QSC_CANARY_CONF_CAP).
            "capped": window.models[model].capped_events if model in window.models else 0,
            "first_id": window.first_id,
            "last_id": window.last_id,
        },
        "newest_id": _text(newest[0][0]) if newest else None,
        "silence_s": round((now_ms - stream_id_ms(newest[0][0])) / 1000, 3) if newest else None,
        "rate": None,
    }
    if reference is not None:
        result["drift"] = {"counts": window_counts(reference, window), "events": window.n}
    if stop:
        result["stop_events"] = window_measures(window, model)
        result["stop_redis"] = redis_measures(client, stream)
    if started_at:
        try:
            result["rate"] = pre_activation_rate(client, stream, started_at)
        except RoleProofError as exc:
            result["rate"] = {"rate_per_s": None, "error": str(exc)}
    return result


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
    window_events: int = DEFAULT_WINDOW_EVENTS,
    timeout: float = 10.0,
    retries: int = DEFAULT_RETRIES,
    pause: Callable[[float], None] = time.sleep,
    feature_reference: str | None = None,
    stop_paths: Sequence[str] | None = None,
    log_window_s: float = DEFAULT_LOG_WINDOW_S,
) -> dict[str, Any]:
    """The probe result: ``service`` (state, ``running``, ``uptime_s``, ``active_since``),
    ``config`` (canary, canary_weight, voting, shadow) or ``config_error``, ``activation``
    (the newest activation/promotion record of ``model``, or None), ``after`` (the start of
    the read used), and the telemetry (``observations``, ``newest_id``, ``silence_s``,
    ``rate``) or ``telemetry_error`` after ``retries`` retries; with ``stop_paths`` (the
    engine's data and log paths) also ``stop_conditions`` (its ``redis`` part and
    ``stop_events`` from the telemetry's read, when it succeeded).

    Raises EngineStateError when ``systemctl show`` cannot be read at all, or for bad
    ``stop_paths`` or ``log_window_s``."""
    service = _service(run, unit, pause)
    result: dict[str, Any] = {"service": service}
    if stop_paths is not None:
        result["stop_conditions"] = measure_host(
            run,
            None,
            unit=unit,
            stream=stream,
            paths=stop_paths,
            n_restarts=service["n_restarts"],
            now_s=time.time(),
            log_window_s=log_window_s,
        )
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
    started_at = (record or {}).get("started_at")
    start = after or started_at or service["active_since"]
    result["after"] = start
    reference = None
    if feature_reference:
        try:
            reference = {**load_reference(feature_reference), "path": feature_reference}
            result["drift_reference"] = reference
        except FeatureReferenceError as exc:
            result["drift_error"] = str(exc)
    if start is None:
        result["telemetry_error"] = f"{unit} is not active: no window to read"
        return result
    error = ""
    for attempt in range(retries + 1):
        if attempt:
            pause(RETRY_PAUSE_S)
        try:
            source = _open(client_or_url, None, timeout)
        except RunError as exc:
            error = str(exc)
            continue
        try:
            telemetry = _telemetry(
                source.client,
                stream,
                model,
                start,
                started_at,
                window_events,
                stop_paths is not None,
                reference=reference,
            )
            if "stop_redis" in telemetry:
                result["stop_conditions"]["redis"] = telemetry.pop("stop_redis")
            result.update(telemetry)
            result["attempts"] = attempt + 1
            return result
        except ValueError as exc:  # a bad cursor: no retry helps
            result["telemetry_error"] = f"bad read position {start!r}: {exc}"
            return result
        except StreamError as exc:
            error = scrub(str(exc), source.secrets)
        except Exception as exc:  # fail closed: the monitor judges an unreadable stream
            error = scrub(f"{type(exc).__name__}: {exc}", source.secrets)
        finally:
            if source.owned:
                source.client.close()
    result["telemetry_error"] = f"{error} (tried {retries + 1} times)"
    return result
