#!/usr/bin/python
# SPDX-License-Identifier: MIT
"""Ansible module: one read-only probe of a canary host for the canary monitor."""

from __future__ import annotations

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.model_safety.activation.log import DEFAULT_LOG_PATH
from ansible.module_utils.model_safety.ansible_support import (
    SITE_ARGUMENT_SPEC,
    feature_reference_path,
    mask_redis_password,
    module_runner,
)
from ansible.module_utils.model_safety.engine.commands import EngineStateError
from ansible.module_utils.model_safety.engine.stop_conditions import (
    validate_log_window,
    validate_stop_paths,
)
from ansible.module_utils.model_safety.names import is_model_name

DOCUMENTATION = r"""
---
module: canary_probe
short_description: Probe a canary host for the canary monitor (service, config, gate)
description:
  - "Reads, in one task, what one check of C(model-safety monitor) needs about the canary
    O(model) on this host, and judges nothing itself (the monitor does, on the controller):"
  - the engine service's state (active, sub-state, C(NRestarts), C(InvocationID), uptime);
  - the model configuration its unit files define (which model is the canary, its weight),
    as the C(engine_config) module computes it;
  - the newest C(activation) or C(promotion) record of O(model) in the activation log (its
    C(invocation_id) and C(started_at) are the start the canary must still run);
  - "the canary model's view of the telemetry events after O(after) (the newest
    O(window_events)): per event its action, confidence and the ensemble's side, as compact
    rows for the monitor's sequential tests; how long the stream has been silent; and the
    stream's rate before the activation."
  - With O(stop_paths), the runbook's stop-condition measures of the host (RV(stop_conditions))
    and of the events read (RV(stop_events)), judged by the monitor like the preflight judges
    them (restart loop, log spam, disk growth since the activation, payload p95, consensus).
  - With O(feature_reference), that feature reference file read (RV(drift_reference)) and the
    features of the events read counted in its bins (RV(drift)), which the monitor adds up since
    the activation and judges (feature drift, a rollback above PSI 0.25); a file that cannot be
    used is RV(drift_error).
  - A Redis failure is retried O(retries) times, 1 s apart, and a service that is not running is
    read again after 1 s, so that one blip is not a violation.
  - Operational failures are returned as data for the monitor to judge (RV(config_error),
    RV(telemetry_error), for example Redis unreachable); the task fails only on bad options or
    when the service's state cannot be read at all.
  - Read-only, never changes anything; works the same in check mode.
options:
  model:
    description: The canary model, C(^[a-z][a-z0-9_]{0,31}$).
    type: str
    required: true
  after:
    description:
      - Only events after this stream id C(<ms>-<seq>) or ISO-8601 time are read (the monitor
        passes the last event it has read).
      - Empty means the canary's start (the activation record's C(started_at)).
    type: str
  baseline:
    description: The configured models in the engine's order with their baseline weights.
    type: dict
    required: true
  activation_log:
    description: The activation log (JSON lines) on the host.
    type: path
    default: /var/log/quantum/qsc_canary.jsonl
  window_events:
    description: At most this many of the newest events after O(after) are read (1 to 100000).
    type: int
    default: 1000
  retries:
    description: How many times a failed Redis read is tried again, 1 s apart (0 to 10).
    type: int
    default: 2
  timeout:
    description: Redis connect and reply timeout in seconds.
    type: float
    default: 10
  feature_reference:
    description:
      - The site's feature reference file on the host (C(model-safety feature-reference)), the
        one the canary's gate used, a normalised absolute path; without it no feature drift is
        measured.
    type: path
  stop_paths:
    description:
      - The engine's data and log paths (normalised absolute paths, at most 20) whose disk usage
        is measured; given, the runbook's stop conditions are measured (RV(stop_conditions)).
    type: list
    elements: path
  stop_log_window:
    description: The seconds of the engine's journal whose lines per minute are counted (1 to 3600).
    type: float
    default: 60
requirements:
  - python3-numpy and python3-redis on the target (as for C(quality_gate))
extends_documentation_fragment:
  - action_common_attributes
  - model_safety_attributes
  - model_safety_redis
  - model_safety_unit.service
seealso:
  - module: ansible.legacy.quality_gate
  - module: ansible.legacy.engine_config
"""

EXAMPLES = r"""
- name: Probe the patchtst canary over the events since the last check
  canary_probe:
    model: patchtst
    after: "1768046400123-0"
    window_events: 1000
    baseline: "{{ model_safety_baseline_weights }}"
  register: probe
"""

RETURN = r"""
service:
  description: The engine service's state.
  returned: always
  type: dict
  sample: {active_state: active, sub_state: running, running: true, n_restarts: 0,
           invocation_id: 0123456789abcdef0123456789abcdef, uptime_s: 63.2,
           active_since: "2026-01-10T12:00:00.123Z"}
config:
  description:
    - The model configuration of the unit's files (as
      RV(ansible.legacy.engine_config#module:expected)).
  returned: when it could be computed
  type: dict
  sample: {canary: patchtst, canary_weight: 0.1, voting: {xgb: 0.28125}, shadow: {}}
config_error:
  description: Why the configuration or the activation log could not be read.
  returned: on such a failure
  type: str
activation:
  description: The newest activation or promotion record of O(model) (null when none).
  returned: always
  type: dict
after:
  description: The start of the gate's window that was used.
  returned: always
  type: str
  sample: "1768046400123-0"
observations:
  description:
    - The model's view of the events read, oldest first. C(rows) are
      C([stream ms, action, confidence, side]) with action and side codes 0 BUY, 1 SELL,
      2 HOLD (-1 and a null confidence when the model gave no prediction); C(malformed) counts
      the entries that are no valid event; C(first_id), C(last_id) the stream ids read.
    - The confidence is the model's own C(raw_confidence) where the engine capped it
      (C(QSC_CANARY_CONF_CAP)); C(capped) counts those rows.
  returned: unless telemetry_error
  type: dict
  sample: {rows: [[1768046400123, 0, 0.64, 0]], malformed: 0, capped: 0,
           first_id: "1768046400123-0", last_id: "1768046400123-0"}
newest_id:
  description: The newest entry of the stream (null when it is empty).
  returned: unless telemetry_error
  type: str
silence_s:
  description: Seconds since the newest entry, by the Redis server's clock.
  returned: unless telemetry_error
  type: float
rate:
  description: The stream's rate before the activation (C(rate_per_s), null when unknown).
  returned: unless telemetry_error
  type: dict
stop_conditions:
  description:
    - The host's stop-condition measures, C(restarts) (C(count), C(journal_24h), C(n_restarts)),
      C(log_lines) (C(lines), C(per_min), C(window_s)), C(disk) (C(paths), C(bytes)) and
      C(redis) (C(used_memory), C(stream_length); null when the telemetry was not read),
      each with its C(error) (null when measured).
  returned: when O(stop_paths) is given
  type: dict
  sample: {restarts: {count: 0, journal_24h: 0, n_restarts: 0, error: null},
           log_lines: {lines: 130, per_min: 130.0, window_s: 60.0, error: null, capped: false},
           disk: {paths: {/opt/quantum/data: 4096}, bytes: 4096, error: null},
           redis: {used_memory: 1048576, stream_length: 2000, error: null}}
stop_events:
  description:
    - The events read, for the stop conditions, C(events), C(payload_bytes) (each payload's
      size), C(payload_p95), C(low) (consensus 0-1) and C(full) (full consensus with O(model)
      voting).
  returned: when O(stop_paths) is given, unless telemetry_error
  type: dict
  sample: {events: 2, payload_bytes: [612, 640], payload_p95: 638.6, low: 0, full: 1}
drift_reference:
  description:
    - The feature reference read from O(feature_reference), as in the file (per feature
      C(edges), C(proportions), C(n)) with its C(path).
  returned: when O(feature_reference) is given and usable
  type: dict
drift:
  description:
    - The events read, per reference feature their finite values counted in its bins
      (C(counts)), and how many events were read (C(events)).
  returned: when O(feature_reference) is given and usable, unless telemetry_error
  type: dict
  sample: {counts: {atr_value: [3, 2, 4, 3, 3, 2, 3, 4, 3, 3]}, events: 30}
drift_error:
  description: Why O(feature_reference) cannot be used (missing, unreadable, corrupt, version).
  returned: on such a failure
  type: str
telemetry_error:
  description: Why the telemetry could not be read (after the retries).
  returned: on such a failure
  type: str
"""


def main() -> None:
    """Entry point."""
    module = AnsibleModule(
        argument_spec={
            "model": {"type": "str", "required": True},
            "after": {"type": "str"},
            "service": SITE_ARGUMENT_SPEC["unit"],
            "baseline": {"type": "dict", "required": True},
            "activation_log": {"type": "path", "default": DEFAULT_LOG_PATH},
            **{key: SITE_ARGUMENT_SPEC[key] for key in ("redis_url", "stream")},
            "window_events": {"type": "int", "default": 1000},
            "retries": {"type": "int", "default": 2},
            "timeout": {"type": "float", "default": 10.0},
            "feature_reference": {"type": "path"},
            "stop_paths": {"type": "list", "elements": "path"},
            "stop_log_window": {"type": "float", "default": 60.0},
        },
        supports_check_mode=True,
    )
    params = module.params
    mask_redis_password(module, params["redis_url"])
    if not is_model_name(params["model"]):
        module.fail_json(msg=f"not a valid model name: {params['model']!r}")
    if not 0 < params["timeout"] <= 300:  # also rejects NaN
        module.fail_json(msg=f"timeout must be in (0, 300] s, not {params['timeout']!r}")
    if not 1 <= params["window_events"] <= 100_000:
        module.fail_json(msg=f"window_events must be in [1, 100000], not {params['window_events']}")
    if not 0 <= params["retries"] <= 10:
        module.fail_json(msg=f"retries must be in [0, 10], not {params['retries']}")
    feature_reference = feature_reference_path(module)
    if params["stop_paths"] is not None:
        try:
            validate_stop_paths(params["stop_paths"])
            validate_log_window(params["stop_log_window"])
        except EngineStateError as exc:
            module.fail_json(msg=f"invalid stop conditions: {exc}")
    try:
        from ansible.module_utils.model_safety.monitor.probe import probe_canary
    except ImportError as exc:
        module.fail_json(msg=f"cannot import model_safety (python3-numpy, python3-redis): {exc}")
    try:
        result = probe_canary(
            module_runner(module),
            params["redis_url"],
            unit=params["service"],
            baseline=params["baseline"],
            model=params["model"],
            stream=params["stream"],
            activation_log=params["activation_log"],
            after=params["after"] or None,
            window_events=params["window_events"],
            timeout=params["timeout"],
            retries=params["retries"],
            feature_reference=feature_reference,
            stop_paths=params["stop_paths"],
            log_window_s=params["stop_log_window"],
        )
    except EngineStateError as exc:
        module.fail_json(msg=f"cannot read the state of {params['service']}: {exc}")
    module.exit_json(changed=False, **result)


if __name__ == "__main__":
    main()
