#!/usr/bin/python
# SPDX-License-Identifier: MIT
"""Ansible module: GO / WAIT / NO-GO per model over the engine's live telemetry (read-only)."""

from __future__ import annotations

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.model_safety.ansible_support import (
    COMMON_ARGUMENT_SPEC,
    prepare,
    window_args,
    with_reports,
)

DOCUMENTATION = r"""
---
module: scoreboard
short_description: Score every model of the engine GO, WAIT or NO-GO on its live telemetry
description:
  - Reads a window of events from the engine's Redis telemetry stream (the newest O(count),
    or every event after O(after)) and scores every model in it (DESIGN.md "Gate rules"),
    the same result as C(model-safety scoreboard --json).
  - V(GO) when the model passes the quality gate, agrees with the ensemble's C(side) in
    55 % to 80 % of its events and hard-disagrees (BUY against SELL) in fewer than 20 %;
    V(WAIT) when it passes the gate outside that range; V(NO-GO) when it fails the gate.
  - A scoreboard reports, it never fails the task because of a V(NO-GO). The task fails only
    when no scoreboard could be made at all (Redis unreachable, no readable window, invalid
    options), unless O(report_only) is set.
  - Read-only, never changes the engine or its data; runs the same in check mode, where it
    writes no report either.
  - A thin wrapper over C(model_safety.judgement.run.run_scoreboard) (the same code as the CLI).
options:
  mode:
    description: The gate mode the models are judged in (V(canary) 200 events, V(collection) 100).
    type: str
    choices: [canary, collection]
    default: canary
  thresholds:
    description:
      - Overrides of the thresholds by name, for example C(go_agreement_low) (0.55),
        C(go_agreement_high) (0.80), C(go_max_hard_disagree) (0.20) or any gate threshold;
        the fields of C(model_safety.judgement.thresholds.Thresholds).
    type: dict
    default: {}
notes:
  - With O(report_dir), C(scoreboard_latest.md) there is replaced by the newest report too.
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
- name: Score every model on the newest 500 events and keep the reports
  scoreboard:
    report_dir: /var/lib/model-safety/reports
  register: board

- name: Show each model's status
  ansible.builtin.debug:
    msg: "{{ item.key }}: {{ item.value.status }}"
  loop: "{{ board.models | dict2items }}"

- name: Score the events since a restart, with a wider agreement band
  scoreboard:
    after: "2026-01-10T12:00:00Z"
    thresholds:
      go_agreement_high: 0.85
"""

RETURN = r"""
mode:
  description: The gate mode the models were judged in.
  returned: always
  type: str
  sample: canary
event_count:
  description: Number of valid events in the window.
  returned: always
  type: int
  sample: 500
malformed:
  description: Number of malformed events in the window (any one makes every model NO-GO).
  returned: always
  type: int
  sample: 0
blockers:
  description: Window blockers (they make every model NO-GO), each with its measured value.
  returned: always
  type: list
  elements: str
  sample: ["window: 150 events < 200 required (canary)"]
models:
  description:
    - Per model name, its status and the metrics it was scored on (the same metrics as the
      quality gate's RV(ansible.legacy.quality_gate#module:models)).
  returned: always
  type: dict
  contains:
    status:
      description: V(GO), V(WAIT) or V(NO-GO).
      type: str
    passed:
      description: Whether the model passes the quality gate.
      type: bool
    shadow:
      description: Whether the model ran in shadow mode.
      type: bool
    agreement:
      description: Share of its events whose action equals the ensemble's C(side).
      type: float
    hard_disagree:
      description: Share of its events where one is BUY and the other SELL.
      type: float
    blockers:
      description: Its gate blockers (why NO-GO), window blockers included.
      type: list
      elements: str
    reasons:
      description: Why it is not GO, for example where its agreement is outside the GO range.
      type: list
      elements: str
  sample:
    xgb: {status: GO, passed: true, shadow: false, agreement: 0.66, hard_disagree: 0.05,
          blockers: [], reasons: []}
    patchtst: {status: NO-GO, passed: false, shadow: true, agreement: 0.41, hard_disagree: 0.12,
               blockers: ["conf_std 0.031 < 0.050"], reasons: [gate failed]}
counts:
  description: How many models have each status.
  returned: when a window was read
  type: dict
  sample: {GO: 2, WAIT: 1, NO-GO: 1}
exit_code:
  description: The CLI's exit code, 0, or 2 when no scoreboard could be made.
  returned: always
  type: int
  sample: 0
error:
  description: Why no scoreboard could be made (Redis unreachable, bad cutover, ...).
  returned: when no window could be read
  type: str
  sample: "Redis at redis://127.0.0.1:6379/0 unreachable: Connection refused"
reports:
  description:
    - Paths of the written reports on the target, C(markdown) and C(json), and C(latest),
      the path of C(scoreboard_latest.md).
  returned: when O(report_dir) is set and not in check mode
  type: dict
  sample:
    markdown: /var/lib/model-safety/reports/scoreboard_20260110T120000Z.md
    json: /var/lib/model-safety/reports/scoreboard_20260110T120000Z.json
    latest: /var/lib/model-safety/reports/scoreboard_latest.md
"""


def main() -> None:
    """Entry point."""
    module = AnsibleModule(
        argument_spec={
            **COMMON_ARGUMENT_SPEC,
            "mode": {"type": "str", "choices": ["canary", "collection"], "default": "canary"},
        },
        supports_check_mode=True,
    )
    prepare(module)
    from ansible.module_utils.model_safety.judgement.run import run_scoreboard

    params = module.params
    result = run_scoreboard(
        params["redis_url"], params["stream"], mode=params["mode"], **window_args(module)
    )
    result = with_reports(module, result, "scoreboard")
    if (result.get("error") or not result.get("models")) and not params["report_only"]:
        reasons = [result["error"]] if result.get("error") else result.get("blockers") or []
        module.fail_json(
            msg="no scoreboard: " + "; ".join(reasons or ["no model in the window"]), **result
        )
    module.exit_json(changed=False, **result)


if __name__ == "__main__":
    main()
