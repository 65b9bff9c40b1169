#!/usr/bin/python
# SPDX-License-Identifier: MIT
"""Ansible module: stop + start the engine's unit (never restart) and record the new invocation."""

from __future__ import annotations

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.model_safety.ansible_support import SITE_ARGUMENT_SPEC, module_runner
from ansible.module_utils.model_safety.engine.commands import EngineStateError
from ansible.module_utils.model_safety.engine.cycle import (
    CycleError,
    cycle_failure_message,
    cycle_service,
    invocation_result,
    validate_cycle_options,
)
from ansible.module_utils.model_safety.engine.systemd import read_service_state

DOCUMENTATION = r"""
---
module: engine_cycle
short_description: Stop and start the engine's systemd unit, and prove a new stable invocation
description:
  - Runs C(systemctl stop <unit>) and then C(systemctl start <unit>), never C(systemctl restart),
    so that a changed environment file or drop-in takes effect in a fresh invocation.
  - The unit is C(Type=notify), so start returns once the engine reported READY=1 (or fails).
    The module then reads C(systemctl show) every 0.5 s until the unit is active/running with an
    InvocationID other than the one before, for at most O(timeout) seconds.
  - For O(settle) seconds after that, the InvocationID, MainPID and NRestarts must not change;
    with C(Restart=on-failure) a crash loop would otherwise look like an active service.
  - Returns the new invocation (whose journal is the proof of what runs, see the
    C(journal_proof) module) and when it became active.
  - Fails, with the unit's state and the last 50 lines of the new invocation's journal, when
    start fails, the unit does not become active and running in time, or does not stay up.
    Fails with a clear message on an invalid unit name or duration, or when C(systemctl stop)
    fails.
  - Always reports C(changed=true) when it ran.
options:
  timeout:
    description:
      - Seconds (0 to 3600) to wait, after C(systemctl start) returned, for a new invocation to
        be active and running. The unit is always read at least once.
      - C(systemctl stop) and C(systemctl start) themselves are bounded by the unit's own
        C(TimeoutStopSec) and C(TimeoutStartSec).
    type: float
    default: 60
  settle:
    description:
      - Seconds (0 to 3600) during which the new invocation must stay the same process (same
        InvocationID, MainPID and NRestarts, still active/running). 0 skips this watch.
    type: float
    default: 3
notes:
  - Commands run as argv lists, for example C(systemctl stop quantum-ai-engine.service),
    C(systemctl show quantum-ai-engine.service --property=...) and
    C(systemctl show --timestamp=us+utc --property=ActiveEnterTimestamp quantum-ai-engine.service).
  - In check mode nothing is stopped or started; the module reads the unit's current state and
    returns it with RV(would_cycle) and C(changed=true), because a real run always cycles.
extends_documentation_fragment:
  - action_common_attributes
  - model_safety_attributes
  - model_safety_unit
"""

EXAMPLES = r"""
- name: Stop and start the engine so the new environment takes effect
  engine_cycle:
  register: cycle

- name: Prove the build of exactly that invocation
  journal_proof:
    invocation_id: "{{ cycle.invocation_id }}"
    patterns:
      - "^AI_ENGINE_BUILD: {{ deployed.short }}$"
    timeout: 60

- name: Cycle another unit, with a longer watch for crash loops
  engine_cycle:
    unit: quantum-ai-engine-staging.service
    timeout: 120
    settle: 10
"""

RETURN = r"""
unit:
  description: The unit that was cycled (or would be, in check mode).
  returned: always
  type: str
  sample: quantum-ai-engine.service
would_cycle:
  description: True in check mode, where nothing was stopped or started.
  returned: check mode
  type: bool
  sample: true
previous_invocation_id:
  description: The InvocationID before the stop (empty when the unit had never run).
  returned: success, not in check mode
  type: str
  sample: 0123456789abcdef0123456789abcdef
invocation_id:
  description: The InvocationID of the new invocation (in check mode, of the current one).
  returned: success
  type: str
  sample: fedcba9876543210fedcba9876543210
main_pid:
  description: The main PID of the new invocation (in check mode, of the current one; 0 if none).
  returned: success
  type: int
  sample: 4242
n_restarts:
  description: NRestarts of the unit after the cycle (in check mode, now).
  returned: success
  type: int
  sample: 0
started_at:
  description: When the new invocation became active (ActiveEnterTimestamp), ISO-8601 UTC.
  returned: success, not in check mode
  type: str
  sample: "2026-11-23T18:01:02.123456Z"
started_at_epoch:
  description: RV(started_at) as seconds since the epoch.
  returned: success, not in check mode
  type: float
  sample: 1795456862.123456
stop_seconds:
  description: How long C(systemctl stop) took.
  returned: success, not in check mode
  type: float
  sample: 0.412
start_seconds:
  description: How long C(systemctl start) took (until the engine reported READY=1).
  returned: success, not in check mode
  type: float
  sample: 1.208
elapsed:
  description: Seconds from the first read of the unit to the end, settle period included.
  returned: success, not in check mode
  type: float
  sample: 4.73
state:
  description:
    - The unit's state (C(systemctl show)) after the cycle, in check mode now, on failure when
      the failure was found (null if it could not be read).
  returned: always, except on invalid options or a failed stop
  type: dict
  sample:
    unit: quantum-ai-engine.service
    load_state: loaded
    active_state: active
    sub_state: running
    main_pid: 4242
    n_restarts: 0
    invocation_id: fedcba9876543210fedcba9876543210
    active_enter_timestamp: Mon 2026-11-23 18:01:02 UTC
    active_enter_monotonic_us: 123456789
    result: success
journal:
  description:
    - The last 50 lines of the new invocation's journal (C(journalctl -o cat)); empty when no
      new invocation was started.
  returned: failure of the start or of the checks after it
  type: list
  elements: str
  sample: ["[ERROR] config: SIM_XGB: unknown behaviour 'constnt'"]
journal_invocation_id:
  description: The invocation whose journal RV(journal) is, null when there is none.
  returned: failure of the start or of the checks after it
  type: str
  sample: fedcba9876543210fedcba9876543210
"""


def main() -> None:
    """Entry point."""
    module = AnsibleModule(
        argument_spec={
            "unit": SITE_ARGUMENT_SPEC["unit"],
            "timeout": {"type": "float", "default": 60.0},
            "settle": {"type": "float", "default": 3.0},
        },
        supports_check_mode=True,
    )
    params = module.params
    unit = params["unit"]
    run = module_runner(module)
    try:
        validate_cycle_options(unit, params["timeout"], params["settle"])
        if module.check_mode:
            state = read_service_state(run, unit)
            module.exit_json(changed=True, unit=unit, would_cycle=True, **invocation_result(state))
        result = cycle_service(run, unit, timeout=params["timeout"], settle=params["settle"])
    except CycleError as exc:
        module.fail_json(
            msg=cycle_failure_message(unit, exc),
            unit=unit,
            state=None if exc.state is None else exc.state.as_dict(),
            journal=exc.journal,
            journal_invocation_id=exc.journal_invocation_id,
        )
    except EngineStateError as exc:
        module.fail_json(msg=f"cannot stop+start {unit}: {exc}", unit=unit)
    module.exit_json(changed=True, **result)


if __name__ == "__main__":
    main()
