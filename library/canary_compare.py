#!/usr/bin/python
# SPDX-License-Identifier: MIT
"""Ansible module: the paired comparison of a canary with the models it joins (read-only)."""

from __future__ import annotations

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.model_safety.activation.log import DEFAULT_LOG_PATH
from ansible.module_utils.model_safety.ansible_support import (
    COMMON_ARGUMENT_SPEC,
    prepare,
    with_reports,
)

DOCUMENTATION = r"""
---
module: canary_compare
short_description: Compare a canary with each baseline model and the ensemble without it
description:
  - Reads a window of events from the engine's Redis telemetry stream (the newest O(count),
    every event after O(after), or every event since the model's activation with
    O(since_activation)) and compares O(model) on the same events with each baseline voting
    model, the published ensemble and the ensemble without it, the same result as
    C(model-safety compare --model M --json).
  - "On each event a BUY or SELL is right when the price of the same symbol at the first event
    at least O(horizon) seconds later moved that way. That later price must come within
    O(max_lag) seconds after the horizon: after a telemetry stall it says nothing about the
    move (a late outcome, never judged)."
  - Returned per model, directional accuracy with its Wilson 95 % interval and a calibration
    table (accuracy by confidence bucket); for the canary against each other, the exact
    McNemar test on the events where exactly one of the two was right (p-values, effect size);
    the decisions the canary changed (the engine's vote recomputed without it with O(weights))
    and how often they were right with and without it.
  - The module reports; it does not fail on what it found. It fails on an error (bad options,
    Redis unreachable, no usable activation record, a voting model without a weight) and,
    with O(fail_on_worse), when the canary is significantly worse than the ensemble without it
    by the promotion's rule (RV(loss_check)).
  - "That rule: on the calls where the canary and the ensemble without it disagree, the canary
    is wrong in significantly more than O(max_loss_share) of them (one-sided exact binomial
    p < O(alpha)). A healthy member of an ensemble loses a little over half of them (the
    ensemble averages its members' noise away), so plain McNemar (RV(canary_worse_than))
    finds any single model worse once there are thousands of events. The ensemble without
    the canary is the vote recomputed without it for a canary that voted in the window, the
    published side for a shadow model."
  - Too few events, no prices or no outcome yet is RV(decided) false, never a failure.
  - Read-only, never changes the engine or its data; runs the same in check mode, where it
    writes no report either.
  - A thin wrapper over C(model_safety.judgement.run.run_compare) (the same code as the CLI).
options:
  model:
    description: The canary model, a name matching C(^[a-z][a-z0-9_]{0,31}$) and one of O(weights).
    type: str
    required: true
  weights:
    description:
      - The baseline weights of the voting models, a mapping of model to weight, each in
        (0, 1], summing to 1. The ensemble without the canary is the engine's vote over the
        other voting models with these weights.
      - Null, the default, is the design's baseline (xgb 0.25, lgbm 0.25, nhits 0.30,
        patchtst 0.20); a play passes C(model_safety_baseline_weights).
    type: dict
  horizon:
    description: Seconds between an event and the price it is judged against (> 0).
    type: float
    default: 300
  max_lag:
    description:
      - The latest, in seconds (>= 0), the later price may come after the horizon; an event
        whose first later price of its symbol came later has a late outcome and is not judged.
      - Null, the default, is the horizon itself (the later price within [t + horizon,
        t + 2 horizon]).
    type: float
  alpha:
    description:
      - The one-sided significance level of "the canary is worse", in (0, 1), of the paired
        tests and of RV(loss_check) (the promotion's C(compare_alpha), 0.05).
    type: float
    default: 0.05
  max_loss_share:
    description:
      - The share of the disagreements with the ensemble without it the canary may lose before
        a loss counts, in [0.5, 1) (the promotion's threshold C(compare_max_loss_share)).
    type: float
    default: 0.6
  fail_on_worse:
    description:
      - Fail the task when the canary is significantly worse than the ensemble without it
        (RV(worse_than_ensemble_without)), unless O(report_only) is set.
    type: bool
    default: false
  since_activation:
    description:
      - Compare on the events since the model's newest C(canary_activated),
        C(shadow_activated) or C(promotion_step) record in O(activation_log) (its
        C(started_at)); then every later event is read and O(count) does not apply.
      - No log, a log that cannot be read or no such record of the model fails the task.
      - Not with O(after).
    type: bool
    default: false
  activation_log:
    description: The host's activation log read with O(since_activation), an absolute path.
    type: path
    default: /var/log/quantum/qsc_canary.jsonl
  after:
    description:
      - Only events after this cutover count, an ISO-8601 time (C(Z) or an offset) or a stream
        id C(<ms>-<seq>) (exclusive), for example the start of the canary's engine; then every
        later event is read and O(count) does not apply.
      - Not with O(since_activation) true.
    type: str
  report_only:
    description: Never fail the task because of what was found (O(fail_on_worse) is ignored).
    type: bool
    default: false
seealso:
  - module: ansible.legacy.quality_gate
  - module: ansible.legacy.promotion_check
extends_documentation_fragment:
  - action_common_attributes
  - model_safety_attributes
  - model_safety_redis
  - model_safety_redis.window
"""

EXAMPLES = r"""
- name: Compare the canary with the baseline since its activation, keep the reports
  canary_compare:
    model: patchtst
    weights: "{{ model_safety_baseline_weights }}"
    since_activation: true
    report_dir: /var/lib/model-safety/reports
  register: comparison

- name: Fail when the canary is significantly worse than the ensemble without it
  canary_compare:
    model: patchtst
    after: "{{ canary_started_at }}"
    horizon: 600
    fail_on_worse: true

- name: Show what the canary changed
  ansible.builtin.debug:
    var: comparison.counterfactual
"""

RETURN = r"""
model:
  description: The canary compared.
  returned: always
  type: str
  sample: patchtst
decided:
  description:
    - Whether anything was judged, false (with RV(reason)) when the canary made no
      directional call with an outcome in the window, or on an error.
  returned: always
  type: bool
  sample: true
reason:
  description: Why nothing was judged, null when RV(decided).
  returned: when a window was read
  type: str
  sample: patchtst made no directional call with an outcome
summary:
  description: The comparison in one line.
  returned: always
  type: str
  sample: "patchtst: 61.4% right of 464 calls (56.9% - 65.7%), horizon 1 s; against the
    ensemble without patchtst: wrong in 51 of 104 disagreements (49.0%, allowed 60.0%),
    p 0.998: not significantly worse"
worse_than_ensemble_without:
  description: Whether the canary is significantly worse than the ensemble without it
    (RV(loss_check) C(significant_loss)).
  returned: always
  type: bool
  sample: false
loss_check:
  description:
    - The promotion's rule over the comparison, C(against), C(decided) (false with a
      C(reason) below C(min_disagreements)), C(significant_loss), C(b) (disagreements the
      canary was right in), C(c) (wrong in), C(disagreements), C(loss_share) (c / (b + c)),
      C(max_loss_share), C(p_loss), C(alpha), C(canary_accuracy), C(other_accuracy).
  returned: when a window was read
  type: dict
  sample:
    against: the ensemble without patchtst
    decided: true
    significant_loss: false
    b: 160
    c: 175
    disagreements: 335
    loss_share: 0.522
    max_loss_share: 0.6
    p_loss: 0.998
canary_role:
  description: V(voting) when the canary voted in the window, else V(shadow).
  returned: when the canary is in the window
  type: str
  sample: voting
canary_worse_than:
  description: The others (models, C(ensemble), C(ensemble without <model>)) the canary is
    significantly worse than (one-sided p < O(alpha)).
  returned: when decided
  type: list
  elements: str
  sample: []
horizon_s:
  description: The horizon used, in seconds.
  returned: when a window was read
  type: float
  sample: 300.0
max_lag_s:
  description: The later-price lag limit used, in seconds.
  returned: when a window was read
  type: float
  sample: 300.0
alpha:
  description: The significance level used.
  returned: when a window was read
  type: float
  sample: 0.05
events:
  description: Valid events in the window.
  returned: when a window was read
  type: int
  sample: 342
events_with_price:
  description: Events with a valid price.
  returned: when a window was read
  type: int
  sample: 342
events_with_outcome:
  description: Events with a later price of their symbol within the horizon and lag.
  returned: when a window was read
  type: int
  sample: 337
late_outcomes:
  description: Events whose later price came more than RV(max_lag_s) after the horizon.
  returned: when a window was read
  type: int
  sample: 0
moves:
  description: The outcomes, C(up), C(down), C(flat).
  returned: when a window was read
  type: dict
  sample: {up: 170, down: 160, flat: 7}
symbols:
  description: Number of symbols in the window.
  returned: when a window was read
  type: int
  sample: 4
models:
  description:
    - Per model, C(active), C(calls), C(right), C(accuracy), C(wilson95), C(hold), C(flat),
      C(no_outcome), C(late_outcome) and its C(calibration) buckets (C(bucket), C(calls),
      C(right), C(accuracy), C(mean_confidence)).
  returned: when decided
  type: dict
window_models:
  description:
    - Per model in the window, the quality gate's figures of the same events, as in
      RV(ansible.legacy.quality_gate#module:models) (action shares, confidence percentiles,
      agreement, C(confidence_histogram) and C(over_time)), which the comparison's HTML page
      draws.
  returned: when the window was read
  type: dict
ensemble:
  description: The published side's accuracy, as a RV(models) entry.
  returned: when decided
  type: dict
ensemble_without_canary:
  description: The accuracy of the vote without the canary, as a RV(models) entry.
  returned: when decided
  type: dict
counterfactual:
  description:
    - The decisions the canary changed, C(changed), C(changed_share), C(changed_with_outcome),
      and how they fared C(with_canary) and C(without_canary) (C(calls), C(right),
      C(accuracy)).
  returned: when decided
  type: dict
comparisons:
  description:
    - The paired tests, one per other, C(other), C(kind) (V(model), V(ensemble),
      V(counterfactual)), C(paired_calls), C(b) (the canary only right), C(c) (the other only
      right), C(p_two_sided), C(p_canary_worse), C(effect_size), C(accuracy_difference),
      C(canary_worse).
  returned: when decided
  type: list
  elements: dict
activation:
  description: With O(since_activation), C(start), C(log) and the C(record) it started at.
  returned: when O(since_activation) is set and a record was found
  type: dict
source:
  description: Where the window came from, C(redis) (without password), C(stream), C(count),
    C(after).
  returned: when a window was read
  type: dict
error:
  description: Why nothing could be compared (the task fails with it).
  returned: on an error
  type: str
  sample: "Redis at redis://127.0.0.1:6379/0 unreachable: Connection refused"
exit_code:
  description: The CLI's exit code, 0 compared (decided or not), 2 on an error.
  returned: always
  type: int
  sample: 0
reports:
  description: Paths of the written reports on the target, C(markdown) and C(json).
  returned: when O(report_dir) is set and not in check mode
  type: dict
  sample:
    markdown: /var/lib/model-safety/reports/compare_20260110T120000Z.md
    json: /var/lib/model-safety/reports/compare_20260110T120000Z.json
"""

SPEC = {
    **{name: spec for name, spec in COMMON_ARGUMENT_SPEC.items() if name != "thresholds"},
    "model": {"type": "str", "required": True},
    "weights": {"type": "dict"},
    "horizon": {"type": "float", "default": 300.0},
    "max_lag": {"type": "float"},
    "alpha": {"type": "float", "default": 0.05},
    "max_loss_share": {"type": "float", "default": 0.6},
    "fail_on_worse": {"type": "bool", "default": False},
    "since_activation": {"type": "bool", "default": False},
    "activation_log": {"type": "path", "default": DEFAULT_LOG_PATH},
}


def main() -> None:
    """Entry point."""
    module = AnsibleModule(argument_spec=SPEC, supports_check_mode=True)
    params = module.params
    prepare(module)
    if params["since_activation"] and params["after"]:
        module.fail_json(msg="since_activation and after are mutually exclusive")
    from ansible.module_utils.model_safety.activation.since import (
        ActivationStartError,
        activation_start,
    )
    from ansible.module_utils.model_safety.judgement.compare import (
        baseline_weights,
        checked_options,
    )
    from ansible.module_utils.model_safety.judgement.compare_loss import (
        comparison_blocker,
        loss_check,
    )
    from ansible.module_utils.model_safety.judgement.compare_report import compare_summary
    from ansible.module_utils.model_safety.judgement.run import run_compare
    from ansible.module_utils.model_safety.judgement.thresholds import Thresholds

    model = params["model"]
    after, activation = params["after"] or None, None
    try:
        weights = baseline_weights(model, params["weights"])
        horizon, alpha, max_lag = checked_options(
            params["horizon"], params["alpha"], params["max_lag"]
        )
        limits = Thresholds(compare_max_loss_share=params["max_loss_share"])
        if params["since_activation"]:
            after, record = activation_start(params["activation_log"], model)
            activation = {"start": after, "log": params["activation_log"], "record": record}
    except (ValueError, ActivationStartError) as exc:
        module.fail_json(msg=f"cannot compare {model}: {exc}", model=model, decided=False)
    result = run_compare(
        params["redis_url"],
        params["stream"],
        model=model,
        weights=weights,
        horizon_s=horizon,
        alpha=alpha,
        max_lag_s=max_lag,
        count=params["count"],
        after=after,
    )
    if activation is not None:
        result["activation"] = activation
    loss = None
    if not result.get("error"):
        role = result.get("canary_role", "voting")
        loss = loss_check(result, role, limits.compare_max_loss_share, alpha)
        result["loss_check"] = loss
    result["summary"] = compare_summary(result, loss)
    result["worse_than_ensemble_without"] = bool(loss and loss["significant_loss"])
    returned = with_reports(module, result, "compare")
    if result.get("error"):
        module.fail_json(msg=f"cannot compare {model}: {result['error']}", **returned)
    worse = result["worse_than_ensemble_without"]
    if worse and params["fail_on_worse"] and not params["report_only"]:
        module.fail_json(msg=comparison_blocker(loss)[0], **returned)
    module.exit_json(changed=False, **returned)


if __name__ == "__main__":
    main()
