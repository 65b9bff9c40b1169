#!/usr/bin/python
# SPDX-License-Identifier: MIT
"""Ansible module: sanity of the features in the engine's live telemetry (read-only)."""

from __future__ import annotations

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.model_safety.ansible_support import (
    COMMON_ARGUMENT_SPEC,
    DRIFT_ARGUMENT_SPEC,
    drift_args,
    prepare,
    window_args,
    with_reports,
)

DOCUMENTATION = r"""
---
module: feature_sanity
short_description: Check the features the engine's models see for NaN, Inf, flatlines and repeats
description:
  - Reads a window of events from the engine's Redis telemetry stream (the newest O(count),
    or every event after O(after)) and checks the C(features) of the events, the same result
    as C(model-safety feature-sanity --json).
  - Per feature, the number of NaN and Inf values, and the mean, standard deviation, minimum
    and maximum of the finite ones. A feature with any NaN or Inf, or a flatline (standard
    deviation below C(flatline_std), 1e-6) is a problem; so are a window without features, an
    empty or unreadable window (fail-closed).
  - Duplicate feature vectors among the last C(duplicate_window) (50) events, rounded to 4
    decimals, above C(duplicate_warn_share) (50 %) are a warning, not a problem.
  - With O(feature_reference) or O(feature_reference_events), each feature's drift (PSI) from
    that reference too (RV(drift)); its blockers are problems, its warnings warnings.
  - The task fails when there is a problem (the CLI's exit code 2), unless O(report_only) is
    set; the failure's C(msg) lists every problem and the full result is returned with it.
  - Read-only, never changes the engine or its data; runs the same in check mode, where it
    writes no report either.
  - A thin wrapper over C(model_safety.judgement.run.run_feature_sanity) (the same code as the CLI).
options:
  thresholds:
    description:
      - Overrides of the thresholds by name, here C(flatline_std) (1e-6),
        C(duplicate_window) (50), C(duplicate_warn_share) (0.50), C(psi_warn) (0.1),
        C(psi_block) (0.25) and C(psi_min_events) (200) matter; the fields of
        C(model_safety.judgement.thresholds.Thresholds).
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
  - model_safety_drift
"""

EXAMPLES = r"""
- name: Fail unless the newest 500 events carry sane features
  feature_sanity:

- name: Check the features since the engine's restart, report only
  feature_sanity:
    after: "1768046400123-0"
    report_only: true
  register: features

- name: Show the problems
  ansible.builtin.debug:
    var: features.problems
"""

RETURN = r"""
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
events_without_features:
  description: Valid events that carry no C(features).
  returned: when a window was read
  type: int
  sample: 0
features:
  description:
    - Per feature name, C(count), C(finite), C(missing), C(nan) and C(inf) counts, C(mean),
      C(std), C(min), C(max) over its finite values (null when there is none) and
      C(flatline).
  returned: always
  type: dict
  sample:
    atr_value: {count: 500, finite: 500, missing: 0, nan: 0, inf: 0, mean: 0.0123, std: 0.0021,
                min: 0.008, max: 0.017, flatline: false}
duplicates:
  description:
    - Duplicate feature vectors among the last C(window) events, C(compared), C(share) and
      the warning C(threshold).
  returned: when a window was read
  type: dict
  sample: {window: 50, compared: 50, share: 0.0, threshold: 0.5}
window:
  description: The stream ids bounding the window, C(first_id) and C(last_id).
  returned: when a window was read
  type: dict
  sample: {first_id: 1768046400123-0, last_id: 1768046450123-0}
source:
  description:
    - Where the window came from, C(redis) (the URL without its password), C(stream),
      C(count), C(after).
  returned: when a window was read
  type: dict
  sample: {redis: "redis://127.0.0.1:6379/0", stream: "quantum:stream:trade.intent"}
error:
  description: Why no window could be read (Redis unreachable, bad cutover, ...).
  returned: when no window could be read
  type: str
  sample: "Redis at redis://127.0.0.1:6379/0 unreachable: Connection refused"
problems:
  description: Every problem found, each with its measured value (any one fails the task).
  returned: always
  type: list
  elements: str
  sample: ["atr_value: 500 NaN values"]
result_warnings:
  description:
    - The result's C(warnings), findings that do not fail, for example a share of duplicate
      feature vectors above the limit (renamed, C(warnings) is Ansible's own key). Each is
      also shown as a warning of the task.
  returned: always
  type: list
  elements: str
  sample: ["duplicate feature vectors: 72.0% of the last 50 events > 50.0%"]
drift:
  description:
    - Feature drift, as the C(quality_gate) module returns it, C(status) (V(not_judged)
      without a reference), per feature C(psi) and C(status), C(blockers), C(warnings), the
      C(reference) and C(thresholds).
  returned: when a window was read
  type: dict
  sample: {status: ok, features: {atr_value: {psi: 0.02, status: ok}}, blockers: [], warnings: []}
exit_code:
  description: The CLI's exit code, 0 when sane, 2 on any problem.
  returned: always
  type: int
  sample: 0
reports:
  description: Paths of the written reports on the target, C(markdown) and C(json).
  returned: when O(report_dir) is set and not in check mode
  type: dict
  sample:
    markdown: /var/lib/model-safety/reports/feature_sanity_20260110T120000Z.md
    json: /var/lib/model-safety/reports/feature_sanity_20260110T120000Z.json
"""


def main() -> None:
    """Entry point."""
    module = AnsibleModule(
        argument_spec={**COMMON_ARGUMENT_SPEC, **DRIFT_ARGUMENT_SPEC},
        mutually_exclusive=[("feature_reference", "feature_reference_events")],
        supports_check_mode=True,
    )
    prepare(module)
    from ansible.module_utils.model_safety.judgement.run import run_feature_sanity

    params = module.params
    result = run_feature_sanity(
        params["redis_url"], params["stream"], **window_args(module), **drift_args(module)
    )
    result = with_reports(module, result, "feature_sanity")
    for warning in result.get("result_warnings") or []:
        module.warn(str(warning))
    if result.get("exit_code") != 0 and not params["report_only"]:
        problems = result.get("problems") or ["no problem reported, result unclear"]
        module.fail_json(
            msg=f"feature sanity failed ({result.get('event_count', 0)} events): "
            + "; ".join(problems),
            **result,
        )
    module.exit_json(changed=False, **result)


if __name__ == "__main__":
    main()
