#!/usr/bin/python
"""Ansible module: one read-only probe of a canary host for the canary monitor."""

from __future__ import annotations

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.model_safety.activation_log import DEFAULT_LOG_PATH
from ansible.module_utils.model_safety.ansible_support import (
    COMMON_ARGUMENT_SPEC,
    mask_redis_password,
    module_runner,
    returnable,
    thresholds_from,
)
from ansible.module_utils.model_safety.engine_state import DEFAULT_UNIT, EngineStateError
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
  - the quality gate (canary mode, as the C(quality_gate) module) of O(model) over the events
    after O(after), else after the record's C(started_at), else after the service's start.
  - Operational failures are returned as data for the monitor to judge (RV(config_error), the
    gate's C(error), for example Redis unreachable); the task fails only on bad options or when
    the service's state cannot be read at all.
  - Read-only, never changes anything; works the same in check mode.
options:
  model:
    description: The canary model, C(^[a-z][a-z0-9_]{0,31}$).
    type: str
    required: true
  after:
    description:
      - Only events after this stream id C(<ms>-<seq>) or ISO-8601 time count (the monitor
        passes the last event of its previous conclusive check).
      - Empty means the canary's start (the activation record's C(started_at)).
    type: str
  service:
    description: The systemd unit of the engine.
    type: str
    default: quantum-ai-engine.service
  baseline:
    description: The configured models in the engine's order with their baseline weights.
    type: dict
    required: true
  activation_log:
    description: The activation log (JSON lines) on the host.
    type: path
    default: /var/log/quantum/qsc_canary.jsonl
  redis_url:
    description: URL of the Redis server with the telemetry stream; a password is masked.
    type: str
    default: redis://127.0.0.1:6379/0
  stream:
    description: The telemetry stream.
    type: str
    default: quantum:stream:trade.intent
  thresholds:
    description: Overrides of the gate thresholds by name, as for the C(quality_gate) module.
    type: dict
    default: {}
  timeout:
    description: Redis connect and reply timeout in seconds.
    type: float
    default: 10
requirements:
  - python3-numpy and python3-redis on the target (as for C(quality_gate))
extends_documentation_fragment:
  - action_common_attributes
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
  platform:
    platforms: posix
seealso:
  - module: ansible.legacy.quality_gate
  - module: ansible.legacy.engine_config
author:
  - Model Safety Ops
"""

EXAMPLES = r"""
- name: Probe the patchtst canary over the events since the last check
  canary_probe:
    model: patchtst
    after: "1768046400123-0"
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
gate:
  description:
    - The quality gate's result for O(model) (the C(quality_gate) module's return values),
      with per-model C(findings) (C(rule), C(value), C(threshold), C(text)).
  returned: always
  type: dict
"""


def main() -> None:
    """Entry point."""
    module = AnsibleModule(
        argument_spec={
            "model": {"type": "str", "required": True},
            "after": {"type": "str"},
            "service": {"type": "str", "default": DEFAULT_UNIT},
            "baseline": {"type": "dict", "required": True},
            "activation_log": {"type": "path", "default": DEFAULT_LOG_PATH},
            **{key: COMMON_ARGUMENT_SPEC[key] for key in ("redis_url", "stream", "thresholds")},
            "timeout": {"type": "float", "default": 10.0},
        },
        supports_check_mode=True,
    )
    params = module.params
    mask_redis_password(module, params["redis_url"])
    if not is_model_name(params["model"]):
        module.fail_json(msg=f"not a valid model name: {params['model']!r}")
    if not 0 < params["timeout"] <= 300:  # also rejects NaN
        module.fail_json(msg=f"timeout must be in (0, 300] s, not {params['timeout']!r}")
    try:
        from ansible.module_utils.model_safety.canary_probe import probe_canary
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
            thresholds=thresholds_from(module),
            timeout=params["timeout"],
        )
    except EngineStateError as exc:
        module.fail_json(msg=f"cannot read the state of {params['service']}: {exc}")
    result["gate"] = returnable(result["gate"])
    module.exit_json(changed=False, **result)


if __name__ == "__main__":
    main()
