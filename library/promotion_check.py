#!/usr/bin/python
# SPDX-License-Identifier: MIT
"""Ansible module: the hard blockers of a promotion on the host's own telemetry, and its decision
log (read-only)."""

from __future__ import annotations

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.model_safety.activation.log import DEFAULT_LOG_PATH
from ansible.module_utils.model_safety.ansible_support import (
    COMMON_ARGUMENT_SPEC,
    prepare,
    window_args,
    with_reports,
)

DOCUMENTATION = r"""
---
module: promotion_check
short_description: Check the hard blockers before a model is promoted, and write the decision log
description:
  - Reads a window of events from the engine's Redis telemetry stream (every event after
    O(after), normally the service's current start, or the newest O(count)) and checks the hard
    blockers of promoting O(model) out of shadow or up the canary ladder (0.10, 0.25, 0.50, 1.0)
    before anything changes.
  - With O(current_role=shadow), the shadow report of the model must be V(READY) (at least 3 of
    its 4 gates pass, or 2 of 3 with calibration deferred) with no hard blocker, the model
    counted as a voter in any event, payload size p95 at least C(max_payload_p95) (1500 bytes),
    hard disagreement above C(shadow_max_hard_disagree) (30 %), nothing to judge or a malformed
    event.
  - With O(current_role=voting) (the model is the canary and votes, the shadow report does not
    apply), the canary-mode quality gate of the model must pass (200 events, any malformed
    event fails it), its hard disagreement must be at most C(shadow_max_hard_disagree), the
    payload size p95 below C(max_payload_p95), and it must vote in every event that reports it.
  - For both, the model must not be significantly worse than the ensemble without it, on the
    same window (no second read). The ensemble without it is, for a voting canary, each event's
    vote recomputed by the engine's rule over the other voting models with the baseline
    O(weights); for a shadow model, the published side. On the events where both made a BUY or
    SELL call and the price of the symbol moved over O(compare_horizon) seconds, they disagree
    when they called opposite directions; b counts those the model got right, c those it got
    wrong. It is a blocker when it is wrong in significantly more than
    C(compare_max_loss_share) (60 %) of them, one-sided exact binomial p < O(compare_alpha)
    (at 50 % that is the one-sided McNemar test). Too few disagreements, no prices or no
    outcomes yet is not decided and never a blocker; RV(comparison) says which.
  - For both, the service must have been up O(min_uptime) seconds on its current start; the
    caller measures O(uptime_s), this module does not read systemd.
  - With O(current_role=voting), the canary's current step must also have been watched to a
    safe end. The step began with the newest C(activation) or C(promotion) record of the model
    in the host's activation log O(activation_log); the newest C(monitoring_completed) record
    of the model after it (the log's order, not the clocks) must have C(result=safe). None
    (C(missing)), any other result, or a log that cannot be read (C(unreadable)) is a blocker
    naming what was found, unless O(monitor_override) gives a reason. Then it is waived and
    RV(monitor.override) (C(reason), C(found)) says so, for the decision log and the
    promotion's record. A promotion out of shadow is not subject to this.
  - The verdict is V(GO) only without any blocker, else V(BLOCKED); every blocker is a sentence
    with the measured value and the threshold. Fail-closed, Redis being unreachable, a bad
    cutover or an invalid O(uptime_s) is a blocker too.
  - "The task fails when the verdict is V(BLOCKED), unless O(report_only) is set, with the C(msg)
    C(promotion of <model> BLOCKED: <every blocker, joined by '; '>) and the whole check."
  - Read-only, never changes the engine or its data; runs the same in check mode, where it
    writes no decision log either.
  - A thin wrapper over C(model_safety.judgement.run.run_promotion_check).
options:
  model:
    description: The model to promote, a name matching C(^[a-z][a-z0-9_]{0,31}$).
    type: str
    required: true
  current_role:
    description:
      - The model's role now, V(shadow) (the promotion makes it the canary) or V(voting) (it is
        the canary and goes up the ladder).
    type: str
    required: true
    choices: [shadow, voting]
  uptime_s:
    description:
      - Seconds the service has been up on its current start, as the caller measured it; a
        negative or non-finite value blocks.
    type: float
    required: true
  min_uptime:
    description:
      - Seconds the service must have been up on its current start (stable) before a
        promotion; less is a blocker.
    type: float
    default: 86400
  after:
    description:
      - Only events after this cutover count, an ISO-8601 time (C(Z) or an offset) or a stream
        id C(<ms>-<seq>) (exclusive), normally the service's current start; then every later
        event is read and O(count) does not apply.
    type: str
  thresholds:
    description:
      - Overrides of the thresholds by name
        (fields of C(model_safety.judgement.thresholds.Thresholds)),
        for example C(max_payload_p95) (1500), C(shadow_max_hard_disagree) (0.30),
        C(shadow_min_agreement) (0.55), C(max_action_share) (0.70).
    type: dict
    default: {}
  strategy:
    description:
      - What the promotion is, written into the decision log (and returned as is), with the
        keys C(from) (V(shadow) or the current weight), C(to) (the step's weight), C(ladder),
        C(allow_jump), C(operator), C(host) and optionally C(time) (UTC; default the time the
        log is written).
    type: dict
    default: {}
  activation_log:
    description:
      - The host's activation log (JSON lines) the monitor's result is read from, with
        O(current_role=voting). A missing log has no records (then the result is C(missing)).
    type: path
    default: /var/log/quantum/qsc_canary.jsonl
  weights:
    description:
      - The baseline weights of the voting models (C(model_safety_baseline_weights)), the vote
        without the canary is recomputed with; model names mapped to weights > 0 that sum to 1,
        O(model) one of them. A bad mapping fails the task.
      - Default the site's baseline, xgb 0.25, lgbm 0.25, nhits 0.30, patchtst 0.20.
    type: dict
  compare_alpha:
    description:
      - The significance level of the comparison's loss, in (0, 0.5] (the threshold
        C(compare_alpha), default 0.05); anything else fails the task.
    type: float
  compare_horizon:
    description:
      - Seconds after an event the price of its symbol is judged (the first later event of the
        same symbol at or after it; the threshold C(compare_horizon_s), default 300), at least
        0.001; anything else fails the task.
    type: float
  monitor_override:
    description:
      - The reason to promote a canary step whose watch did not complete C(safe), given on
        purpose by the operator (C(promote.yml -e 'monitor_override="<reason>"')). It waives
        the monitor's blocker (and only that one), and is returned in RV(monitor.override)
        with what was found.
      - Made one line (whitespace and control characters become one space) of at most 200
        characters; a blank reason fails the task. Ignored (with a warning) from shadow, and
        unused (with a warning) when the watch completed safe.
    type: str
notes:
  - The reports written to O(report_dir) are the decision log, C(promotion_decision_<UTC
    timestamp>.md) (Markdown) and C(.json) (the whole check).
  - The playbook C(playbooks/promote.yml) runs this with O(report_only=true) and stops on
    anything but V(GO) itself, after fetching the decision log.
seealso:
  - module: ansible.legacy.shadow_report
  - module: ansible.legacy.quality_gate
extends_documentation_fragment:
  - action_common_attributes
  - model_safety_attributes
  - model_safety_redis
  - model_safety_redis.window
  - model_safety_redis.thresholds
"""

EXAMPLES = r"""
- name: May patchtst leave shadow mode (24 h up, events since the current start)?
  promotion_check:
    model: patchtst
    current_role: shadow
    after: "{{ engine_status.service.active_since }}"
    uptime_s: "{{ engine_status.service.uptime_s }}"

- name: Check the canary's next step, keep the decision log, decide in the next task
  promotion_check:
    model: patchtst
    current_role: voting
    after: "{{ engine_status.service.active_since }}"
    uptime_s: "{{ engine_status.service.uptime_s }}"
    min_uptime: 86400
    report_dir: /var/lib/model-safety/reports
    report_only: true
    strategy:
      from: 0.1
      to: 0.25
      ladder: [0.10, 0.25, 0.50, 1.0]
      allow_jump: false
      operator: "{{ lookup('env', 'USER') }}"
      host: "{{ inventory_hostname }}"
  register: promote_check

- name: Stop on any hard blocker
  ansible.builtin.assert:
    that: promote_check.verdict == 'GO'
    fail_msg: "{{ promote_check.blockers | join('; ') }}"

- name: Promote a canary step that the monitor did not find safe, on purpose (recorded)
  promotion_check:
    model: patchtst
    current_role: voting
    after: "{{ engine_status.service.active_since }}"
    uptime_s: "{{ engine_status.service.uptime_s }}"
    activation_log: /var/log/quantum/qsc_canary.jsonl
    monitor_override: "watched by hand for 6 h, the dashboards are clean (INC-4711)"
"""

RETURN = r"""
verdict:
  description: V(GO) without any blocker, else V(BLOCKED).
  returned: always
  type: str
  sample: GO
model:
  description: The model checked (null when O(model) was not a valid name).
  returned: always
  type: str
  sample: patchtst
current_role:
  description: The role it was checked in, V(shadow) or V(voting).
  returned: always
  type: str
  sample: shadow
blockers:
  description: Every reason not to promote, each with its measured value and threshold.
  returned: always
  type: list
  elements: str
  sample:
    - "payload p95 1612 bytes >= 1500"
    - "service up 3600 s < min_uptime 86400 s on its current start (not yet stable)"
uptime_s:
  description: The service's uptime the check used (null when it was not a valid number).
  returned: always
  type: float
  sample: 90000.0
min_uptime_s:
  description: The uptime required (O(min_uptime)).
  returned: always
  type: float
  sample: 86400.0
shadow_report:
  description:
    - The shadow report of the model (as returned by the C(shadow_report) module), its four
      C(gates), C(status), C(hard_blockers), C(metrics), C(ensemble).
  returned: when O(current_role=shadow) and a window was read
  type: dict
  sample: {status: READY, passed: 3, required: "2 of 3 (calibration deferred)", hard_blockers: []}
comparison:
  description:
    - The model against the ensemble without it (C(model_safety.judgement.compare_loss.loss_check)),
      C(decided) (false with a C(reason), which is not a blocker), C(significant_loss),
      C(b), C(c), C(disagreements), C(loss_share), C(p_loss), C(alpha), C(max_loss_share),
      C(min_disagreements), C(canary_accuracy), C(other_accuracy), C(horizon_s), C(against),
      and the whole comparison as C(result) (as the C(canary_compare) module returns it).
  returned: when a window was read
  type: dict
  sample:
    decided: true
    significant_loss: true
    against: the ensemble without patchtst
    b: 14
    c: 52
    loss_share: 0.788
    p_loss: 0.0021
    alpha: 0.05
    max_loss_share: 0.6
gate:
  description:
    - The canary-mode quality gate for the model (as returned by the C(quality_gate) module
      given C(model)), C(verdict), C(blockers), C(models), C(ensemble).
  returned: when O(current_role=voting) and a window was read
  type: dict
  sample: {verdict: PASS, mode: canary, model: patchtst, blockers: []}
ensemble:
  description: Ensemble metrics, C(payload_p95), C(payload_max), C(consensus), C(sides), counts.
  returned: always
  type: dict
  sample: {event_count: 500, payload_p95: 612.0, consensus: {"3/3": 0.41, "2/3": 0.47}}
event_count:
  description: Number of valid events in the window.
  returned: always
  type: int
  sample: 500
malformed:
  description: Number of malformed events in the window (any one blocks).
  returned: always
  type: int
  sample: 0
window:
  description: The stream ids bounding the window, C(first_id) and C(last_id).
  returned: always
  type: dict
  sample: {first_id: 1768046400123-0, last_id: 1768046450123-0}
source:
  description:
    - Where the window came from, C(redis) (the URL without its password), C(stream),
      C(count), C(after).
  returned: always
  type: dict
  sample:
    redis: redis://127.0.0.1:6379/0
    stream: quantum:stream:trade.intent
    count: null
    after: "2026-01-10T12:00:00Z"
thresholds:
  description: Every threshold the check used, with the overrides applied.
  returned: always
  type: dict
  sample: {max_payload_p95: 1500, shadow_max_hard_disagree: 0.3}
strategy:
  description: O(strategy), as written into the decision log.
  returned: always
  type: dict
  sample: {from: shadow, to: 0.1, operator: alice, host: engine1}
error:
  description:
    - Why no window could be checked (Redis unreachable, bad cutover, bad uptime, ...); it is
      also the first blocker.
  returned: when no window could be checked
  type: str
  sample: "Redis at redis://127.0.0.1:6379/0 unreachable: Connection refused"
exit_code:
  description: 0 for V(GO), 2 for V(BLOCKED).
  returned: always
  type: int
  sample: 0
summary:
  description: The verdict in one line.
  returned: always
  type: str
  sample: "promotion of patchtst (shadow): GO, 0 blockers; 500 events"
monitor:
  description:
    - The monitor's result for the canary's current step, read from O(activation_log).
  returned: when O(current_role=voting) and O(model) is a valid name
  type: dict
  contains:
    result:
      description:
        - What the newest C(monitoring_completed) record of the model after the step's record
          says (V(safe), V(inconclusive), V(rolled_back), V(ended), ...), V(missing) when
          there is none (or no step record), V(unreadable) when the log cannot be read.
      type: str
      sample: inconclusive
    step:
      description: The record that began the step, C(event), C(action), C(ts), C(weight).
      type: dict
      sample:
        event: activation
        action: canary_activated
        ts: "2026-01-10T12:00:00.123Z"
        weight: 0.1
    completed:
      description: That C(monitoring_completed) record, or null.
      type: dict
    refusals:
      description: Why the result does not let the step be promoted (empty for V(safe)).
      type: list
      elements: str
    blockers:
      description: The refusals that block (none when O(monitor_override) waived them).
      type: list
      elements: str
    override:
      description:
        - C(reason) and C(found) (the result waived) when O(monitor_override) waived a
          refusal, else null.
      type: dict
      sample: {reason: "watched by hand for 6 h, dashboard clean", found: missing}
    override_unused:
      description: O(monitor_override) was given but nothing needed waiving.
      type: bool
    record:
      description:
        - The keys the promotion's activation log record carries, C(monitor_result) and,
          when overridden, C(monitor_override).
      type: dict
      sample: {monitor_result: missing, monitor_override: {reason: "...", found: missing}}
    summary:
      description: The result and the decision in one line.
      type: str
      sample: "monitor result missing, OVERRIDDEN with monitor_override: watched by hand"
    log:
      description: The log that was read.
      type: str
    log_problems:
      description: Unreadable lines of the log (they count as no record).
      type: list
      elements: str
  sample:
    result: safe
    blockers: []
    override: null
reports:
  description: Paths of the decision log on the target, C(markdown) and C(json).
  returned: when O(report_dir) is set and not in check mode
  type: dict
  sample:
    markdown: /var/lib/model-safety/reports/promotion_decision_20260110T120000Z.md
    json: /var/lib/model-safety/reports/promotion_decision_20260110T120000Z.json
"""


def main() -> None:
    """Entry point."""
    module = AnsibleModule(
        argument_spec={
            **COMMON_ARGUMENT_SPEC,
            "model": {"type": "str", "required": True},
            "current_role": {"type": "str", "required": True, "choices": ["shadow", "voting"]},
            "uptime_s": {"type": "float", "required": True},
            "min_uptime": {"type": "float", "default": 86400.0},
            "strategy": {"type": "dict", "default": {}},
            "activation_log": {"type": "path", "default": DEFAULT_LOG_PATH},
            "monitor_override": {"type": "str"},
            "weights": {"type": "dict"},
            "compare_alpha": {"type": "float"},
            "compare_horizon": {"type": "float"},
        },
        supports_check_mode=True,
    )
    prepare(module)
    from ansible.module_utils.model_safety.judgement.promotion import (
        validate_baseline_weights,
        with_monitor,
    )
    from ansible.module_utils.model_safety.judgement.run import run_promotion_check
    from ansible.module_utils.model_safety.monitor.promotion_watch import (
        OVERRIDE_VAR,
        check_monitor,
    )
    from ansible.module_utils.model_safety.names import is_model_name

    params = module.params
    if params["weights"] is not None:
        try:
            validate_baseline_weights(params["weights"], params["model"])
        except ValueError as exc:
            module.fail_json(msg=str(exc))
    # The comparison's options are thresholds: validated with the others (window_args).
    chosen = {
        "compare_alpha": params["compare_alpha"],
        "compare_horizon_s": params["compare_horizon"],
    }
    params["thresholds"] = {
        **params["thresholds"],
        **{name: value for name, value in chosen.items() if value is not None},
    }
    override = params["monitor_override"]
    watched = params["current_role"] == "voting" and is_model_name(params["model"])
    monitor = None
    if watched:
        try:
            monitor = check_monitor(params["activation_log"], params["model"], override)
        except ValueError as exc:
            module.fail_json(msg=str(exc))
    elif override is not None:
        module.warn(f"{OVERRIDE_VAR} ignored: a promotion out of shadow has no watched canary step")
    check = run_promotion_check(
        params["redis_url"],
        params["stream"],
        model=params["model"],
        current_role=params["current_role"],
        uptime_s=params["uptime_s"],
        min_uptime_s=params["min_uptime"],
        weights=params["weights"],
        **window_args(module),
    )
    if monitor is not None:
        check = with_monitor(check, monitor)
        if monitor["override"]:
            module.warn(
                f"{OVERRIDE_VAR} waives the monitor's result {monitor['result']!r}: "
                + "; ".join(monitor["refusals"])
            )
        elif monitor["override_unused"]:
            module.warn(f"{OVERRIDE_VAR} unused: the monitor found the step safe")
    check["strategy"] = params["strategy"]
    result = with_reports(module, check, "promotion_decision")
    if result.get("verdict") != "GO" and not params["report_only"]:
        blockers = result.get("blockers") or ["no blocker reported, verdict unclear"]
        module.fail_json(
            msg=f"promotion of {params['model']} BLOCKED: " + "; ".join(blockers), **result
        )
    module.exit_json(changed=False, **result)


if __name__ == "__main__":
    main()
