#!/usr/bin/python
# SPDX-License-Identifier: MIT
"""Ansible module: an activation's change of one engine host, in one call."""

from __future__ import annotations

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.model_safety.activation.change import (
    DEFAULT_ENV_MODE,
    DEFAULT_ENV_OWNER,
    STEP_OPTIONS,
    ChangeFailed,
    ChangeRequest,
    apply_change,
)
from ansible.module_utils.model_safety.activation.lock import DEFAULT_LEASE_PATH, DEFAULT_TTL
from ansible.module_utils.model_safety.ansible_support import (
    EXPECTATION_ARGUMENT_SPEC,
    RESTART_ARGUMENT_SPEC,
    SITE_ARGUMENT_SPEC,
    module_runner,
)
from ansible.module_utils.model_safety.engine.commands import EngineStateError
from ansible.module_utils.model_safety.engine.envfile import change_secret_values
from ansible.module_utils.model_safety.engine.startup_proof import expectation_of
from ansible.module_utils.model_safety.site_defaults import (
    DEFAULT_CANARY_DROPIN,
    DEFAULT_DROPIN_DIR,
    DEFAULT_ENV_FILE,
)

DOCUMENTATION = r"""
---
module: engine_change
short_description: Change the engine's env file and canary drop-in, stop + start, and prove it
description:
  - The part of an activation (canary, shadow, promotion step) that changes the host, in one
    call on the host instead of a task per step. In this order, failing at the first step that
    fails (the message starts with its name).
  - C(Make sure this activation still holds the lease, and renew it for the change). O(token)
    must still hold the unexpired lease at O(lock_path) (M(ansible.legacy.activation_lock)
    O(ansible.legacy.activation_lock#module:state=renewed)).
  - Both file changes are planned first. Every refusal (an invalid key or value, an unsafe
    mode, an unknown group, a drop-in value systemd would expand or split) comes before
    anything is written.
  - Then the step "Change the env file (every other line kept)". O(env_changes) as
    M(ansible.legacy.env_file) sets them, written atomically, owned O(env_owner):O(env_group)
    with O(env_mode).
  - C(Install or remove the canary drop-in). O(dropin_dir)/O(dropin_name) as
    M(ansible.legacy.engine_dropin) writes it (root, 0644, one C(Environment=) line per entry
    of O(dropin_environment)) or removes it.
  - Then "Make systemd read the unit's files" (C(systemctl daemon-reload)) and "Stop, then start
    the engine (never restart) and record the new invocation" (as
    M(ansible.legacy.engine_cycle), with O(settle)).
  - Within the settle period, the new start is proven as M(ansible.legacy.engine_proof) proves
    it. The deployed build of O(checkout), C([READY]) and no C([ERROR])/C([FATAL]) line, the
    model config of the unit's files (O(baseline)) and the role of O(model) from its start-up
    lines.
  - It never restores. On failure the result says whether anything was changed (RV(touched))
    and what was written (RV(env), RV(dropin)); the caller restores the backup it took before
    when something was (the model_activation role does).
  - The env file can hold secrets. The diff shows only the changed keys, and the values of
    secret-looking keys are masked in all of the module's output.
options:
  env_changes:
    description:
      - The env file's keys to set (string values) or remove (V(null)), as
        M(ansible.legacy.env_file) O(ansible.legacy.env_file#module:changes).
    type: dict
    required: true
  env_file:
    description: The engine's EnvironmentFile. It must exist.
    type: path
    default: /etc/quantum/ai-engine.env
  env_owner:
    description: Owner of the env file (name or uid).
    type: str
    default: root
  env_group:
    description: Group of the env file (name or gid), the service's; left as it is when not given.
    type: str
  env_mode:
    description: Mode of the env file; one that lets others read or group write is refused.
    type: str
    default: "0640"
  dropin_state:
    description: Whether the canary drop-in must exist.
    type: str
    choices: [present, absent]
    required: true
  dropin_environment:
    description: The drop-in's environment, in order (names C([A-Z_][A-Z0-9_]*), values
      C([A-Za-z0-9_.,:/+-]*)).
    type: dict
    default: {}
  dropin_purpose:
    description: One line saying why the drop-in exists, written into its header.
    type: str
    default: ""
  dropin_dir:
    description: The unit's drop-in directory (created 0755 when missing).
    type: path
    default: /etc/systemd/system/quantum-ai-engine.service.d
  dropin_name:
    description: The drop-in's file name.
    type: str
    default: qsc_canary.conf
  baseline:
    description:
      - The configured models with their baseline weights, as in
        C(model_safety_baseline_weights), for the proof of the files' model config.
    type: dict
    required: true
  token:
    description:
      - The token of the lease this activation took. Not needed in check mode, where none is
        taken.
    type: str
  lock_path:
    description: The host's activation lease.
    type: path
    default: /var/lib/model-safety/activation.lease
  lease_ttl:
    description: Seconds the renewed lease lasts.
    type: int
    default: 1800
  settle:
    description:
      - Seconds the new start must then keep its invocation, main PID and restart count (a
        crash right after READY fails it). The proof runs within this period.
    type: float
    default: 3
notes:
  - Check mode plans both files (same diff) and reads the running start; it writes nothing,
    restarts nothing and proves nothing.
  - Always stops and starts the engine (an activation counts only through a new start), so
    the task is always changed.
extends_documentation_fragment:
  - model_safety_restart
  - model_safety_restart.proof
  - action_common_attributes
  - model_safety_attributes
  - model_safety_unit
  - model_safety_expectation
attributes:
  diff_mode:
    support: full
"""

EXAMPLES = r"""
- name: Make patchtst the canary at 0.1, stop + start, prove it
  engine_change:
    env_changes:
      PATCHTST_SHADOW_ONLY: "false"
    env_group: qt
    dropin_state: present
    dropin_purpose: canary patchtst
    dropin_environment:
      QSC_CANARY_MODEL: patchtst
      QSC_CANARY_WEIGHT: "0.1"
      QSC_MODEL_WEIGHTS: xgb:0.28125,lgbm:0.28125,nhits:0.3375,patchtst:0.1
    baseline: "{{ model_safety_baseline_weights }}"
    token: "{{ lease.token }}"
    model: patchtst
    role: voting
    weight: 0.1
    weights: {xgb: 0.28125, lgbm: 0.28125, nhits: 0.3375, patchtst: 0.1}
    canary: true
"""

RETURN = r"""
touched:
  description:
    - Whether the host may have been changed (a file written or the engine stopped). False
      after a refusal, which changed nothing; the caller restores its backup only when true.
  returned: always
  type: bool
  sample: true
env:
  description:
    - The env file's change. C(path), C(changed), C(changed_keys) (each with C(before) and
      C(after), secrets masked), C(diff) and C(written) (whether it was written).
  returned: always, once planned
  type: dict
  sample:
    path: /etc/quantum/ai-engine.env
    changed: true
    changed_keys: {PATCHTST_SHADOW_ONLY: {before: "true", after: "false"}}
    written: true
dropin:
  description: The drop-in's change. C(path), C(state), C(changed), C(diff) and C(written).
  returned: always, once planned
  type: dict
  sample:
    path: /etc/systemd/system/quantum-ai-engine.service.d/qsc_canary.conf
    state: present
    changed: true
    written: true
start:
  description:
    - The new start. C(invocation_id), C(previous_invocation_id), C(main_pid) and
      C(started_at) (ISO-8601 UTC); in check mode the running start, with C(would_cycle).
  returned: success, and failure after the start
  type: dict
  sample:
    invocation_id: 62dc8e3085ef459a844e682b8abee375
    previous_invocation_id: 1f0e2d3c4b5a69788796a5b4c3d2e1f0
    main_pid: 4242
    started_at: "2026-12-04T18:42:46.825658Z"
proof:
  description:
    - What the new start was proven to run (C(invocation_id), C(build), C(git), C(startup),
      C(config), C(statements)), as M(ansible.legacy.engine_proof) returns it.
  returned: success (not in check mode)
  type: dict
  sample:
    build: 5b6966a
    statements: ["build 5b6966a == git HEAD 5b6966a", "patchtst loaded as a voter at 0.1"]
seconds:
  description: When each phase ended, in seconds from the start (C(written), C(stop), C(start),
    C(proven)).
  returned: success
  type: dict
  sample: {written: 0.02, stop: 0.21, start: 0.35, proven: 3.61}
step:
  description: The step that failed.
  returned: failure
  type: str
  sample: Prove the model's role from the start-up lines
differences:
  description: Every way the new start differs from what it must run.
  returned: failure of the config or role proof
  type: list
  elements: str
  sample: ["patchtst is not voting at 0.1: voting {'xgb': 0.25}, shadow {'patchtst': 0.2}"]
"""


def main() -> None:
    """Entry point."""
    module = AnsibleModule(
        supports_check_mode=True,
        argument_spec={
            "unit": SITE_ARGUMENT_SPEC["unit"],
            **RESTART_ARGUMENT_SPEC,
            "env_changes": {"type": "dict", "required": True},
            "env_file": {"type": "path", "default": DEFAULT_ENV_FILE},
            "env_owner": {"type": "str", "default": DEFAULT_ENV_OWNER},
            "env_group": {"type": "str"},
            "env_mode": {"type": "str", "default": DEFAULT_ENV_MODE},
            "dropin_state": {"type": "str", "choices": ["present", "absent"], "required": True},
            "dropin_environment": {"type": "dict", "default": {}},
            "dropin_purpose": {"type": "str", "default": ""},
            "dropin_dir": {"type": "path", "default": DEFAULT_DROPIN_DIR},
            "dropin_name": {"type": "str", "default": DEFAULT_CANARY_DROPIN},
            "baseline": {"type": "dict", "required": True},
            # Not a secret: it names this activation's lease, which the lease file shows anyway.
            "token": {"type": "str", "no_log": False},
            "lock_path": {"type": "path", "default": DEFAULT_LEASE_PATH},
            "lease_ttl": {"type": "int", "default": DEFAULT_TTL},
            "settle": {"type": "float", "default": 3.0},
            **EXPECTATION_ARGUMENT_SPEC,
        },
    )
    params = module.params
    # Before anything can fail with a message or result that shows them.
    module.no_log_values.update(change_secret_values(params["env_changes"]))
    try:
        expected = expectation_of(params)
    except EngineStateError as exc:
        module.fail_json(msg=f"{STEP_OPTIONS}: {exc}", step=STEP_OPTIONS)
    request = ChangeRequest(
        expected=expected,
        **{key: value for key, value in params.items() if key not in EXPECTATION_ARGUMENT_SPEC},
    )
    try:
        result = apply_change(module_runner(module), request, check_mode=module.check_mode)
    except ChangeFailed as failure:
        module.no_log_values.update(failure.details.pop("secrets", []))
        module.no_log_values.update(failure.result.pop("secrets", []))
        module.fail_json(msg=str(failure), step=failure.step, **failure.details, **failure.result)
    module.no_log_values.update(result.pop("secrets"))
    diff = [result["env"]["diff"], result["dropin"]["diff"]]
    module.exit_json(changed=True, diff=diff, **result)


if __name__ == "__main__":
    main()
