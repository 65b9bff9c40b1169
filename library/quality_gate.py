#!/usr/bin/python
# SPDX-License-Identifier: MIT
"""Ansible module: the model quality gate over the engine's live telemetry (read-only)."""

from __future__ import annotations

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.model_safety.ansible_support import (
    COMMON_ARGUMENT_SPEC,
    DRIFT_ARGUMENT_SPEC,
    drift_args,
    module_runner,
    prepare,
    window_args,
    with_reports,
)
from ansible.module_utils.model_safety.engine.commands import EngineStateError
from ansible.module_utils.model_safety.engine.status import current_start

DOCUMENTATION = r"""
---
module: quality_gate
short_description: Judge the engine's models on their live telemetry (the quality gate)
description:
  - Reads a window of events from the engine's Redis telemetry stream (the newest O(count),
    or every event after O(after)), computes the metrics of every model and applies the gate
    rules of DESIGN.md ("Gate rules"); returns the same result as C(model-safety gate --json).
  - The verdict is that of O(model), or, without one, of every voting model (all must pass).
    Fail-closed, any malformed event, too few events, an empty or unreadable window, Redis
    being unreachable or a model that is not in the window is a blocker.
  - In V(canary) mode the task fails unless the verdict is V(PASS) (the failure's C(msg) lists
    every blocker, the full result is returned with it), unless O(report_only) is set.
  - In V(collection) mode (data gathering, never promotes) the verdict is always
    V(COLLECTION) and the task never fails; the blockers are still reported.
  - Read-only, never changes the engine or its data; runs the same in check mode, where it
    writes no report either. Outside check mode, a missing O(report_dir) is created (mode
    0750, owned by the module's user).
  - With O(feature_reference) or O(feature_reference_events), the features of the window are
    judged against that reference too (RV(drift)), and drift blockers are gate blockers, so a
    canary never activates on features out of distribution.
  - A thin wrapper over C(model_safety.judgement.run.run_gate) (the same code as the CLI).
options:
  mode:
    description:
      - V(canary) needs 200 events per judged model and gives V(PASS) or V(FAIL).
      - V(collection) needs 100 and always gives V(COLLECTION).
    type: str
    choices: [canary, collection]
    default: canary
  model:
    description:
      - Judge only this model (it must be in the window), for example the canary candidate.
      - Without it, every voting model of the window must pass.
      - A name matching C(^[a-z][a-z0-9_]{0,31}$).
    type: str
  after:
    description:
      - Only events after this cutover count, an ISO-8601 time (C(Z) or an offset) or a stream
        id C(<ms>-<seq>) (exclusive), for example the last stream id before the engine's
        restart; then every later event is read and O(count) does not apply.
      - Not with O(since_start).
    type: str
  since_start:
    description:
      - Gate the events since the current start of this systemd unit (the engine's), the time
        systemd says it became active, read on the host (as C(engine_status) returns it in
        C(service.active_since)) and returned as RV(cutover); then every later event is read
        and O(count) does not apply.
      - Refused, before Redis is read, when the unit is not active (no start to gate after).
      - Not with O(after).
    type: str
  thresholds:
    description:
      - Overrides of the gate thresholds, by name, for example C(max_action_share) (0.70),
        C(min_conf_std) (0.05), C(min_spread) (0.12), C(constant_std) (0.01),
        C(hold_collapse_share) (0.85), C(max_inactive_share) (0.05). The names and defaults are
        the fields of C(model_safety.judgement.thresholds.Thresholds) (README, "Quality gate").
    type: dict
    default: {}
  wait:
    description:
      - Seconds (0 to 3600) to wait for the window to fill up, for a gate run right after the
        engine (re)started. While the verdict is V(FAIL) and every blocker is only too few
        events (or a still empty window), the window is read again every second until it
        passes, another blocker appears or O(wait) seconds have passed; then the last result
        is returned, with RV(waited) and RV(reads).
      - Any other blocker (a constant model, a malformed event, Redis unreachable, ...) ends
        the wait at once. V(0) reads once.
    type: float
    default: 0
notes:
  - The fraction values follow the DESIGN contract, percentiles are numpy's default linear
    interpolation and standard deviations population ones.
seealso:
  - module: ansible.legacy.scoreboard
  - module: ansible.legacy.feature_sanity
  - module: ansible.legacy.shadow_report
extends_documentation_fragment:
  - action_common_attributes
  - model_safety_attributes
  - model_safety_redis
  - model_safety_redis.window
  - model_safety_redis.thresholds
  - model_safety_drift
"""

EXAMPLES = r"""
- name: Gate every voting model on the newest 500 events (fails the task on FAIL)
  quality_gate:

- name: Gate the canary candidate on the events since the engine's restart, keep the reports
  quality_gate:
    mode: canary
    model: patchtst
    after: "1768046400123-0"
    report_dir: /var/lib/model-safety/reports
  register: gate

- name: Gate the canary right after its start, waiting up to 2 minutes for 200 events
  quality_gate:
    model: patchtst
    after: "{{ engine_started_at }}"
    wait: 120

- name: Gate the canary, its features judged against a reference written on a good day
  quality_gate:
    model: patchtst
    since_start: quantum-ai-engine.service
    feature_reference: /var/lib/model-safety/feature_reference.json

- name: Collect data only (never fails), with a stricter spread rule
  quality_gate:
    mode: collection
    count: 1000
    thresholds:
      min_spread: 0.15

- name: Report without failing, and decide later
  quality_gate:
    redis_url: "redis://:{{ vault_redis_password }}@127.0.0.1:6379/0"
    report_only: true
  register: gate

- name: Fail closed unless the gate passed
  ansible.builtin.assert:
    that: gate.verdict == 'PASS'
    fail_msg: "{{ gate.blockers }}"
"""

RETURN = r"""
cutover:
  description:
    - Only events after it were judged, O(after) as given or, with O(since_start), when the
      unit's current start became active (UTC); null when neither was given.
  returned: always
  type: str
  sample: "2026-11-23T18:01:02.123Z"
verdict:
  description: V(PASS), V(FAIL) or, in collection mode, V(COLLECTION).
  returned: always
  type: str
  sample: PASS
mode:
  description: The mode the window was judged in.
  returned: always
  type: str
  sample: canary
model:
  description: The model judged (O(model)), null when every voting model was.
  returned: always
  type: str
  sample: patchtst
judged:
  description: The models whose blockers decide the verdict.
  returned: always
  type: list
  elements: str
  sample: [xgb, lgbm, nhits]
summary:
  description: The verdict in one line.
  returned: always
  type: str
  sample: "PASS (canary): 0 blockers; judged xgb, lgbm, nhits over 500 events (0 malformed)"
exit_code:
  description: The CLI's exit code for this result, 0 PASS, 2 FAIL, 3 COLLECTION.
  returned: always
  type: int
  sample: 0
error:
  description:
    - Why no window could be judged (Redis unreachable, bad cutover, ...); it is also the only
      blocker.
  returned: when no window could be judged
  type: str
  sample: "Redis at redis://127.0.0.1:6379/0 unreachable: Connection refused"
source:
  description:
    - Where the window came from, C(redis) (the URL without its password), C(stream),
      C(count), C(after).
  returned: when a window was read
  type: dict
  sample:
    redis: redis://127.0.0.1:6379/0
    stream: quantum:stream:trade.intent
    count: 500
    after: null
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
malformed_samples:
  description: The first malformed events, C(stream_id) and C(reason).
  returned: always
  type: list
  elements: dict
  sample: [{stream_id: 1768046400123-0, reason: unparsable JSON}]
min_events:
  description: Events per judged model the mode needs.
  returned: when a window was read
  type: int
  sample: 200
blockers:
  description:
    - Every reason for a FAIL, each with its measured value and threshold; window blockers
      first, model blockers prefixed with the model name.
  returned: always
  type: list
  elements: str
  sample: ["xgb: action collapse: BUY 100.0% > 70.0%", "xgb: conf_std 0.000 < 0.050"]
models:
  description: Per model name, its metrics and its own verdict.
  returned: always
  type: dict
  contains:
    passed:
      description: Whether the model passes every rule.
      type: bool
    judged:
      description: Whether its blockers count for the verdict (O(model), or a voting model).
      type: bool
    shadow:
      description: Whether the model ran in shadow mode (reported, never voting).
      type: bool
    n:
      description: Events where the model was active.
      type: int
    inactive_share:
      description: Share of the window where the model reported itself inactive.
      type: float
    actions:
      description: Share of each action, C(BUY), C(SELL), C(HOLD).
      type: dict
    conf_std:
      description: Population standard deviation of its confidence.
      type: float
    p10:
      description: 10th percentile of its confidence.
      type: float
    p90:
      description: 90th percentile of its confidence.
      type: float
    spread:
      description: p90 - p10.
      type: float
    median:
      description: Median confidence.
      type: float
    agreement:
      description: Share of its events whose action equals the ensemble's C(side).
      type: float
    hard_disagree:
      description: Share of its events where one is BUY and the other SELL.
      type: float
    capped_events:
      description:
        - Its events published under a confidence cap (C(QSC_CANARY_CONF_CAP)); the rules judged
          their C(raw_confidence), the model's own.
      type: int
    confidence_histogram:
      description:
        - Its confidences (over its active events) counted in 20 equal bins over [0, 1], for
          the HTML report's histogram.
      type: dict
      contains:
        bin_width:
          description: The width of a bin, 0.05; bin k holds k/20 <= confidence < (k+1)/20, the
            last one 1.0 too.
          type: float
        counts:
          description: Events per bin, lowest confidences first; they sum to RV(models.n).
          type: list
          elements: int
    over_time:
      description:
        - Its agreement and hard disagreement over time, for the HTML report. The window's
          span (stream id times, first to last valid event) cut into at most 12 equal bins
          that start on a round step (1 ms to 12 h, then whole days); the same bins for every
          model. No bins for an empty window.
      type: dict
      contains:
        bin_seconds:
          description: The width of a bin in seconds (null for an empty window).
          type: float
        bins:
          description:
            - Oldest first, each with C(start) (ISO-8601 UTC), C(n) (its active events in the
              bin), C(agreement) and C(hard_disagree) as above over those events (null where
              C(n) is 0).
          type: list
          elements: dict
    blockers:
      description: This model's blockers.
      type: list
      elements: str
    findings:
      description:
        - The same blockers as data, one per broken rule, each with C(rule) (C(action_collapse),
          C(flat_predictions), C(narrow_spread), C(constant_output), C(hold_collapse),
          C(model_inactive), C(too_few_events), C(not_in_window), C(no_active_events)), the
          measured C(value), the C(threshold) and the C(text) of the blocker.
      type: list
      elements: dict
  sample:
    xgb:
      passed: true
      shadow: false
      n: 500
      inactive_share: 0.0
      actions: {BUY: 0.38, SELL: 0.31, HOLD: 0.31}
      conf_std: 0.118
      p10: 0.47
      p90: 0.78
      spread: 0.31
      median: 0.6
      agreement: 0.66
      hard_disagree: 0.05
      blockers: []
raw_confidences:
  description:
    - Per model with capped events, how many (RV(models) C(capped_events)); the rules judged
      their raw confidences, and the summary says so. Empty without a cap.
  returned: always
  type: dict
  sample: {patchtst: 412}
ensemble:
  description: Ensemble metrics, consensus distribution, side shares, payload size p95.
  returned: when a window was read
  type: dict
  sample: {event_count: 500, payload_p95: 612.0, consensus: {"3/3": 0.41, "2/3": 0.47}}
window:
  description: The stream ids bounding the window, C(first_id) and C(last_id).
  returned: when a window was read
  type: dict
  sample: {first_id: 1768046400123-0, last_id: 1768046450123-0}
thresholds:
  description: Every threshold the rules used, with the overrides applied.
  returned: when a window was read
  type: dict
  sample: {max_action_share: 0.7, min_conf_std: 0.05, min_spread: 0.12}
drift:
  description:
    - Feature drift, C(status) (V(not_judged) without a reference, V(ok), V(warn), V(block),
      V(undecided), V(error) when the reference cannot be had), per feature its C(psi),
      C(reference_n), C(current_n), C(bins) and C(status), the C(blockers) (also in
      RV(blockers)) and C(warnings), the C(reference) used (C(path), C(source), C(stream),
      C(event_count), C(first_ts), C(last_ts)) and the C(thresholds).
  returned: when a window was read
  type: dict
  sample:
    status: block
    features: {atr_value: {psi: 0.412, reference_n: 1000, current_n: 260, bins: 10, status: block}}
    blockers: ["feature drift: atr_value PSI 0.412 > 0.25 (reference 1000 values, current 260)"]
    warnings: []
    thresholds: {psi_warn: 0.1, psi_block: 0.25, psi_min_events: 200}
comparison:
  description:
    - With O(model), its paired comparison with the baseline on the same window (the result
      of M(ansible.legacy.canary_compare) with the default baseline weights, the horizon and
      alpha of the thresholds C(compare_horizon_s) (300 s) and C(compare_alpha) (0.05)). It
      informs and never changes the verdict; C(decided) is false, with a C(reason), when the
      window has no prices or no outcome yet, or it could not be compared.
  returned: when a window was read and O(model) is set
  type: dict
  sample:
    model: patchtst
    decided: true
    horizon_s: 300.0
    canary_worse_than: []
waited:
  description: Seconds from the first read of the window to the end of the last (see O(wait)).
  returned: always
  type: float
  sample: 4.012
reads:
  description: How many times the window was read and judged (1 without O(wait)).
  returned: always
  type: int
  sample: 5
reports:
  description: Paths of the written reports on the target, C(markdown) and C(json).
  returned: when O(report_dir) is set and not in check mode
  type: dict
  sample:
    markdown: /var/lib/model-safety/reports/quality_gate_20260110T120000Z.md
    json: /var/lib/model-safety/reports/quality_gate_20260110T120000Z.json
"""

MAX_WAIT_S = 3600.0


def main() -> None:
    """Entry point."""
    module = AnsibleModule(
        argument_spec={
            **COMMON_ARGUMENT_SPEC,
            "mode": {"type": "str", "choices": ["canary", "collection"], "default": "canary"},
            "model": {"type": "str"},
            "wait": {"type": "float", "default": 0.0},
            "since_start": {"type": "str"},
            **DRIFT_ARGUMENT_SPEC,
        },
        mutually_exclusive=[
            ("after", "since_start"),
            ("feature_reference", "feature_reference_events"),
        ],
        supports_check_mode=True,
    )
    prepare(module)
    from ansible.module_utils.model_safety.judgement.run import run_gate_waiting

    params = module.params
    if not 0 <= params["wait"] <= MAX_WAIT_S:  # also rejects NaN
        module.fail_json(msg=f"wait must be in 0..{MAX_WAIT_S:g} s, not {params['wait']!r}")
    window = window_args(module)
    if params["since_start"] is not None:
        try:
            window["after"] = current_start(module_runner(module), params["since_start"])
        except EngineStateError as exc:
            module.fail_json(msg=f"cannot gate since the current start: {exc}")
    result = run_gate_waiting(
        params["redis_url"],
        params["stream"],
        wait=params["wait"],
        mode=params["mode"],
        model=params["model"],
        **window,
        **drift_args(module),
    )
    result = {**with_reports(module, result, "quality_gate"), "cutover": window["after"]}
    verdict = result.get("verdict")
    if params["mode"] == "canary" and verdict != "PASS" and not params["report_only"]:
        blockers = result.get("blockers") or ["no blocker reported, verdict unclear"]
        who = f"model {params['model']}" if params["model"] else "every voting model"
        module.fail_json(
            msg=f"quality gate {verdict} ({params['mode']}, {who}, "
            f"{result.get('event_count', 0)} events): " + "; ".join(blockers),
            **result,
        )
    module.exit_json(changed=False, **result)


if __name__ == "__main__":
    main()
