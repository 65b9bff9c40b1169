#!/usr/bin/python
# SPDX-License-Identifier: MIT
"""Ansible module: what the fleet status page shows of a host beyond engine_status (read-only)."""

from __future__ import annotations

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.model_safety.activation.log import DEFAULT_LOG_PATH
from ansible.module_utils.model_safety.ansible_support import SITE_ARGUMENT_SPEC, module_runner
from ansible.module_utils.model_safety.engine.commands import EngineStateError
from ansible.module_utils.model_safety.engine.config import EngineConfigError, validate_baseline
from ansible.module_utils.model_safety.engine.validation import validate_unit
from ansible.module_utils.model_safety.fileio import absolute_path_problem
from ansible.module_utils.model_safety.fleet.details import (
    DEFAULT_MAX_REPORT_BYTES,
    collect_status_details,
)

DOCUMENTATION = r"""
---
module: status_details
short_description: Read what the fleet status page shows of an engine host
description:
  - Reads, for the fleet status page (C(playbooks/status.yml) with C(status_html)), what
    M(ansible.legacy.engine_status) does not, namely the model configuration the unit's files set,
    the newest activation and rollback and the monitor's state from the activation log, the
    newest quality gate verdict and the newest reports of the report directory.
  - Read-only, never changes anything; works the same in check mode.
  - What cannot be read (an env file, the log, a line of it, the report directory, the gate's
    JSON) is a sentence in RV(problems) and its piece is null; the module fails only on
    invalid options. So does a running start that differs from its files (O(startup)).
  - Only roles and weights are returned of the environment, never its values.
options:
  baseline:
    description:
      - The models the engine is configured with and their baseline weights, summing to 1
        (C(model_safety_baseline_weights)); the page lists them in this order.
    type: dict
    required: true
  activation_log:
    description: The activation log, a normalised absolute path.
    type: path
    default: /var/log/quantum/qsc_canary.jsonl
  report_dir:
    description:
      - The host's report directory (C(model_safety_target_report_dir)), a normalised
        absolute path; a missing one has no reports.
    type: path
    required: true
  startup:
    description:
      - The start-up report of the running invocation
        (RV(ansible.legacy.engine_status#module:startup)). When it loaded a voting model,
        every way it differs from the files' configuration is a problem.
    type: dict
  include_text:
    description:
      - Return the text of each report in RV(reports) (the page's copies), up to
        O(max_report_bytes) each.
    type: bool
    default: false
  max_report_bytes:
    description: The largest report whose text is returned (1 to 67108864 bytes).
    type: int
    default: 2097152
notes:
  - Runs C(systemctl show <unit> --property=Environment,EnvironmentFiles) as an argv list and
    reads the env files, the activation log (under a shared C(flock)) and the report directory
    directly. Symbolic links in the report directory are never followed.
extends_documentation_fragment:
  - action_common_attributes
  - model_safety_attributes
  - model_safety_unit
"""

EXAMPLES = r"""
- name: Read what the status page shows of the host
  status_details:
    baseline: "{{ model_safety_baseline_weights }}"
    report_dir: /var/lib/model-safety/reports
    startup: "{{ engine_status.startup }}"
  register: status_details

- name: The same with the reports' texts, from a site's own report directory
  status_details:
    baseline: "{{ model_safety_baseline_weights }}"
    report_dir: /srv/model-safety/reports
    include_text: true
  register: status_details
"""

RETURN = r"""
models:
  description:
    - Each configured model's C(role) (V(canary), V(voting), V(shadow)) and C(weight) (its
      voting weight, null unless it votes) by the unit's files; null when they cannot be told.
  returned: always
  type: dict
  sample: {xgb: {role: voting, weight: 0.28125}, patchtst: {role: canary, weight: 0.1}}
activation:
  description:
    - C(last_activation) (the newest canary, shadow or promotion record, failed or not) and
      C(last_rollback) (the newest rollback, executed or failed), each with C(event),
      C(action), C(ts), C(model), C(weight), C(outcome) (V(done), V(failed), or a rollback's
      result) and C(reason), null when the log has none; the whole is null when the log
      cannot be read.
  returned: always
  type: dict
  sample:
    last_activation: {event: activation, action: canary_activated, ts: "2026-01-10T12:00:00.123Z",
      model: patchtst, weight: 0.1, outcome: done, reason: null}
    last_rollback: null
monitor:
  description:
    - The monitor's state from its newest record in the log, C(state) V(none) (no record),
      V(watching) (started, no end recorded), V(violation) (with C(violations)) or
      V(completed) (with C(result) and C(checks)), and the record's C(ts) and C(model);
      null when the log cannot be read.
  returned: always
  type: dict
  sample: {state: completed, ts: "2026-01-10T18:00:00.456Z", model: patchtst, result: safe,
    checks: 720}
gate:
  description:
    - The newest quality gate report's C(verdict), C(mode), C(model), C(event_count),
      C(blockers) (the first five), C(time) (its stamp) and C(report) (its name); null
      without one or when it cannot be read.
  returned: always
  type: dict
  sample: {verdict: PASS, mode: canary, model: patchtst, event_count: 342, blockers: [],
    time: "2026-01-10T11:58:00Z", report: quality_gate_20260110T115800Z.json}
reports:
  description:
    - The newest C(.md) and C(.html) report of each kind, then every C(<kind>_latest.md),
      each with C(kind), C(name), C(time) (its stamp; null for a latest file), C(size),
      C(modified), C(text) (with O(include_text), else null) and C(skipped) (why there is no
      text, for example too large, not UTF-8 or unreadable); null when the directory cannot
      be listed.
  returned: always
  type: list
  elements: dict
  sample:
    - {kind: quality_gate, name: quality_gate_20260110T115800Z.md, time: "2026-01-10T11:58:00Z",
       size: 2048, modified: "2026-01-10T11:58:00Z", text: null, skipped: null}
problems:
  description: What could not be read, and how the running start differs from its files.
  returned: always
  type: list
  elements: str
  sample: ["activation log /var/log/quantum/qsc_canary.jsonl: line 7: unreadable: ..."]
"""

MAX_REPORT_BYTES_LIMIT = 64 * 1024 * 1024


def main() -> None:
    """Entry point."""
    module = AnsibleModule(
        argument_spec={
            "unit": SITE_ARGUMENT_SPEC["unit"],
            "baseline": {"type": "dict", "required": True},
            "activation_log": {"type": "path", "default": DEFAULT_LOG_PATH},
            "report_dir": {"type": "path", "required": True},
            "startup": {"type": "dict"},
            "include_text": {"type": "bool", "default": False},
            "max_report_bytes": {"type": "int", "default": DEFAULT_MAX_REPORT_BYTES},
        },
        supports_check_mode=True,
    )
    params = module.params
    for name in ("activation_log", "report_dir"):
        problem = absolute_path_problem(params[name])
        if problem is not None:
            module.fail_json(msg=f"{name} {params[name]!r} {problem}")
    if not 1 <= params["max_report_bytes"] <= MAX_REPORT_BYTES_LIMIT:
        module.fail_json(
            msg=f"max_report_bytes must be 1 to {MAX_REPORT_BYTES_LIMIT}: "
            f"{params['max_report_bytes']}"
        )
    try:
        validate_unit(params["unit"])
        baseline = validate_baseline(params["baseline"])
    except (EngineConfigError, EngineStateError) as exc:
        module.fail_json(msg=f"invalid options: {exc}")
    details = collect_status_details(
        module_runner(module),
        unit=params["unit"],
        baseline=baseline,
        activation_log=params["activation_log"],
        report_dir=params["report_dir"],
        startup=params["startup"],
        include_text=params["include_text"],
        max_report_bytes=params["max_report_bytes"],
    )
    module.exit_json(changed=False, **details)


if __name__ == "__main__":
    main()
