#!/usr/bin/python
# SPDX-License-Identifier: MIT
"""Ansible module: the model configuration the engine must run, given its unit's files."""

from __future__ import annotations

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.model_safety.ansible_support import SITE_ARGUMENT_SPEC, module_runner
from ansible.module_utils.model_safety.engine.config import (
    EngineConfigError,
    config_differences,
    unit_expected_config,
)

DOCUMENTATION = r"""
---
module: engine_config
short_description: Tell which model configuration the engine must run, and prove it does
description:
  - Reads the unit's C(Environment=) values (unit file and drop-ins) and its
    C(EnvironmentFile=) files, merged as systemd does (file values override C(Environment=),
    later files override earlier ones), and computes the model configuration the engine must
    run with them, by the engine's own rules (C(<MODEL>_SHADOW_ONLY), C(QSC_MODEL_WEIGHTS),
    C(QSC_CANARY_MODEL), C(QSC_CANARY_WEIGHT)).
  - Fails, fail-closed, when the engine would refuse that configuration (a C(*_SHADOW_ONLY)
    naming no configured model, every model shadow-only, bad weights, a canary that is
    shadow-only or whose C(QSC_CANARY_WEIGHT) does not match its weight, ...), when an env file
    that is not optional is missing, or when the files cannot be read for certain.
  - With O(startup) (the RV(ansible.legacy.journal_proof#module:startup) or
    RV(ansible.legacy.engine_status#module:startup) of the invocation to prove), compares what
    that start logged with the expectation and fails, naming every mismatch, when they differ.
  - Read-only, never changes anything; works the same in check mode.
options:
  baseline:
    description:
      - The configured models in the engine's order, each with its baseline weight (they sum
        to 1), as in C(model_safety_baseline_weights).
    type: dict
    required: true
  startup:
    description:
      - The start-up report of one invocation (C(voting), C(shadow), C(canary) with C(model),
        C(weight) and C(weights); weights as fractions). When given, RV(differences) is
        returned and the task fails unless it is empty.
    type: dict
notes:
  - Runs C(systemctl show <unit> --property=Environment,EnvironmentFiles) as an argv list and
    reads the env files directly.
  - Only the model-configuration keys of the environment are returned (C(*_SHADOW_ONLY),
    C(QSC_*), C(*_MODEL_PATH)), never the rest (it may hold secrets).
  - Weights logged by the engine are compared within 1e-6 (the journal shows percentages with
    four decimals).
extends_documentation_fragment:
  - action_common_attributes
  - model_safety_attributes
  - model_safety_unit
"""

EXAMPLES = r"""
- name: Prove the restored start runs the restored files' model configuration
  engine_config:
    baseline: "{{ model_safety_baseline_weights }}"
    startup: "{{ proof.startup }}"

- name: What must the engine run?
  engine_config:
    baseline: "{{ model_safety_baseline_weights }}"
  register: engine_expected
"""

RETURN = r"""
expected:
  description:
    - What the engine must run. C(voting) and C(shadow) map each model to its weight,
      C(weights) is every model's effective weight (C(QSC_MODEL_WEIGHTS), else the baseline),
      C(canary) the canary model (null when none), C(canary_weight) its weight (null) and
      C(canary_conf_cap) its confidence cap (C(QSC_CANARY_CONF_CAP); null when none).
  returned: success, and failure on RV(differences)
  type: dict
  sample:
    voting: {xgb: 0.28125, lgbm: 0.28125, nhits: 0.3375, patchtst: 0.1}
    shadow: {}
    weights: {xgb: 0.28125, lgbm: 0.28125, nhits: 0.3375, patchtst: 0.1}
    canary: patchtst
    canary_weight: 0.1
    canary_conf_cap: null
env_files:
  description: The unit's env files in systemd's order, with whether each exists and its
    SHA-256.
  returned: success, and failure on RV(differences)
  type: list
  elements: dict
  sample:
    - path: /etc/quantum/ai-engine.env
      ignore_errors: false
      present: true
      sha256: 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08
model_environment:
  description:
    - The model-configuration keys of the merged environment; a key whose name says it is
      secret shows C(<hidden>).
  returned: success, and failure on RV(differences)
  type: dict
  sample: {PATCHTST_SHADOW_ONLY: "false", QSC_CANARY_MODEL: patchtst}
differences:
  description: Every way O(startup) differs from RV(expected) (empty when it runs it).
  returned: when O(startup) is given
  type: list
  elements: str
  sample: ["voting patchtst: 0.2 != 0.1", "canary: the files set patchtst, no [CANARY] line"]
unit:
  description: The unit read.
  returned: always
  type: str
  sample: quantum-ai-engine.service
"""


def main() -> None:
    """Entry point."""
    module = AnsibleModule(
        argument_spec={
            "unit": SITE_ARGUMENT_SPEC["unit"],
            "baseline": {"type": "dict", "required": True},
            "startup": {"type": "dict"},
        },
        supports_check_mode=True,
    )
    params = module.params
    unit = params["unit"]
    try:
        found = unit_expected_config(module_runner(module), unit, params["baseline"])
    except EngineConfigError as exc:
        module.fail_json(msg=f"cannot tell what {unit} must run: {exc}", unit=unit)
    if params["startup"] is None:
        module.exit_json(changed=False, unit=unit, **found)
    differences = config_differences(params["startup"], found["expected"])
    if differences:
        module.fail_json(
            msg=f"{unit} does not run the model configuration of its files: "
            + "; ".join(differences),
            unit=unit,
            differences=differences,
            **found,
        )
    module.exit_json(changed=False, unit=unit, differences=[], **found)


if __name__ == "__main__":
    main()
