#!/usr/bin/python
# SPDX-License-Identifier: MIT
"""Ansible module: the activation gates of a shadow model on live telemetry (read-only)."""

from __future__ import annotations

from typing import Any

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.model_safety.ansible_support import (
    COMMON_ARGUMENT_SPEC,
    prepare,
    window_args,
    with_reports,
)

DOCUMENTATION = r"""
---
module: shadow_report
short_description: Judge whether a shadow model is ready to leave shadow mode
description:
  - Reads a window of events from the engine's Redis telemetry stream (the newest O(count),
    or every event after O(after)) and applies the four activation gates to the shadow model
    O(model), the same result as C(model-safety shadow-report --model M --json).
  - The gates, action diversity (no action above C(max_action_share), 70 %), confidence
    spread (standard deviation at least C(min_conf_std), 0.05), agreement with the ensemble's
    C(side) (at least C(shadow_min_agreement), 55 %), and calibration (higher confidence
    buckets have a higher directional accuracy against the later price of the same symbol
    after C(calibration_horizon_s), 60 s; V(DEFER) with fewer than C(calibration_min_events),
    100, judged events).
  - V(READY) when at least 3 of the 4 gates pass, or 2 of 3 with calibration deferred;
    V(BLOCKED) on a hard blocker (the model was counted as a voter in any event, payload size
    p95 at least C(max_payload_p95), 1500 bytes, hard disagreement above
    C(shadow_max_hard_disagree), 30 %); else V(NOT_READY).
  - The task fails unless the status is V(READY) (the CLI's exit code 2), unless
    O(report_only) is set; the failure's C(msg) names the failed gates and hard blockers and
    the full result is returned with it.
  - Read-only, never changes the engine or its data; runs the same in check mode, where it
    writes no report either.
  - A thin wrapper over C(model_safety.judgement.run.run_shadow_report) (the same code as the CLI).
options:
  model:
    description: The shadow model to judge, a name matching C(^[a-z][a-z0-9_]{0,31}$).
    type: str
    required: true
  thresholds:
    description:
      - Overrides of the thresholds by name (those above, all fields of
        C(model_safety.judgement.thresholds.Thresholds)).
    type: dict
    default: {}
seealso:
  - module: ansible.legacy.quality_gate
extends_documentation_fragment:
  - action_common_attributes
  - model_safety_attributes
  - model_safety_redis
  - model_safety_redis.window
  - model_safety_redis.thresholds
"""

EXAMPLES = r"""
- name: Fail unless patchtst is ready to leave shadow mode (newest 500 events)
  shadow_report:
    model: patchtst

- name: Judge patchtst on every event of the last hour, report only, keep the reports
  shadow_report:
    model: patchtst
    after: "{{ '%Y-%m-%dT%H:%M:%SZ' | strftime(now(utc=true).timestamp() - 3600, utc=true) }}"
    report_dir: /var/lib/model-safety/reports
    report_only: true
  register: shadow

- name: Show the four gates
  ansible.builtin.debug:
    var: shadow.gates
"""

RETURN = r"""
model:
  description: The shadow model judged.
  returned: always
  type: str
  sample: patchtst
status:
  description: V(READY), V(NOT_READY) or V(BLOCKED).
  returned: always
  type: str
  sample: READY
summary:
  description: The status in one line.
  returned: when a window was read
  type: str
  sample: "patchtst: READY (3 gates pass, 2 of 3 (calibration deferred) needed; 0 hard blockers)"
ready:
  description: Whether the status is V(READY).
  returned: when a window was read
  type: bool
  sample: true
passed:
  description: How many of the four gates pass.
  returned: when a window was read
  type: int
  sample: 3
required:
  description: What READY needed, given whether calibration was deferred.
  returned: when a window was read
  type: str
  sample: 2 of 3 (calibration deferred)
event_count:
  description: Number of valid events in the window.
  returned: always
  type: int
  sample: 500
malformed:
  description: Number of malformed events in the window.
  returned: when a window was read
  type: int
  sample: 0
payload_p95:
  description: 95th percentile of the payload size in bytes.
  returned: when a window was read
  type: float
  sample: 534.0
metrics:
  description: The model's metrics, as in the quality gate's C(models) entries.
  returned: when a window was read
  type: dict
  sample: {n: 500, conf_std: 0.13, agreement: 0.62, hard_disagree: 0.09}
error:
  description: Why no window could be read (Redis unreachable, bad cutover, ...).
  returned: when no window could be read
  type: str
  sample: "Redis at redis://127.0.0.1:6379/0 unreachable: Connection refused"
gates:
  description:
    - The four gates, C(action_diversity), C(confidence_spread), C(agreement) and
      C(calibration), each with C(status) (V(PASS), V(FAIL) or V(DEFER)), the measured
      C(value) and the C(threshold); calibration also with its C(buckets) (C(low), C(high),
      C(n), C(accuracy)) and the number of C(judged) events.
  returned: when a window was read
  type: dict
  sample:
    action_diversity: {status: PASS, value: 0.41, threshold: 0.7}
    confidence_spread: {status: PASS, value: 0.12, threshold: 0.05}
    agreement: {status: PASS, value: 0.63, threshold: 0.55}
    calibration: {status: DEFER, value: 12, threshold: 100}
hard_blockers:
  description: Reasons the model must not leave shadow mode, whatever the gates say.
  returned: always
  type: list
  elements: str
  sample: ["payload p95 1612 bytes >= 1500"]
blockers:
  description: Why the model is not ready, besides the gates and hard blockers.
  returned: always
  type: list
  elements: str
  sample: ["agreement 0.41 < 0.55"]
exit_code:
  description: The CLI's exit code, 0 when V(READY), 2 otherwise.
  returned: always
  type: int
  sample: 0
reports:
  description: Paths of the written reports on the target, C(markdown) and C(json).
  returned: when O(report_dir) is set and not in check mode
  type: dict
  sample:
    markdown: /var/lib/model-safety/reports/shadow_report_20260110T120000Z.md
    json: /var/lib/model-safety/reports/shadow_report_20260110T120000Z.json
"""


def reasons(result: dict[str, Any]) -> list[str]:
    """Why the model is not ready, each reason once (a blocker can also be a hard blocker):
    the error, hard blockers, blockers, then each gate that did not pass."""
    found = [result["error"]] if result.get("error") else []
    found += [*result.get("hard_blockers", []), *result.get("blockers", [])]
    for name, gate in (result.get("gates") or {}).items():
        if isinstance(gate, dict) and gate.get("status") != "PASS":
            found.append(
                f"{name} {gate.get('status')} (value {gate.get('value')}, "
                f"threshold {gate.get('threshold')})"
            )
    return list(dict.fromkeys(found)) or ["no reason reported, status unclear"]


def main() -> None:
    """Entry point."""
    module = AnsibleModule(
        argument_spec={**COMMON_ARGUMENT_SPEC, "model": {"type": "str", "required": True}},
        supports_check_mode=True,
    )
    prepare(module)
    from ansible.module_utils.model_safety.judgement.run import run_shadow_report

    params = module.params
    result = run_shadow_report(
        params["redis_url"], params["stream"], model=params["model"], **window_args(module)
    )
    result = with_reports(module, result, "shadow_report")
    ready = result.get("status") == "READY" and result.get("exit_code") == 0
    if not ready and not params["report_only"]:
        module.fail_json(
            msg=f"shadow model {params['model']} is {result.get('status')} "
            f"({result.get('event_count', 0)} events): " + "; ".join(reasons(result)),
            **result,
        )
    module.exit_json(changed=False, **result)


if __name__ == "__main__":
    main()
