#!/usr/bin/python
# SPDX-License-Identifier: MIT
"""Ansible module: prove from its journal what one start of the engine runs."""

from __future__ import annotations

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.model_safety.ansible_support import (
    EXPECTATION_ARGUMENT_SPEC,
    PROOF_ARGUMENT_SPEC,
    SITE_ARGUMENT_SPEC,
    module_runner,
)
from ansible.module_utils.model_safety.engine.commands import EngineStateError, StepFailed
from ansible.module_utils.model_safety.engine.startup_proof import expectation_of, prove_start

DOCUMENTATION = r"""
---
module: engine_proof
short_description: Prove from its journal what one start of the engine runs
description:
  - Proves one invocation of the engine's unit, in one call on the host, with the checks an
    activation, its restore and a rollback rely on, in this order, failing at the first that
    does not hold (the message starts with its name).
  - C(Read the deployed git build) of O(checkout).
  - C(Read this invocation's start-up lines from its journal) (that invocation's lines only,
    read again every 0.5 s for up to O(journal_timeout) seconds). One C(AI_ENGINE_BUILD) line,
    then C([READY]); an C([ERROR]) or C([FATAL]) line fails at once.
  - C(Prove that AI_ENGINE_BUILD is the deployed git SHA) (a prefix of the checkout's HEAD, no
    contradicting or unparseable start-up line).
  - C(Prove the start runs what the env file and drop-ins say), with O(baseline). The voting
    and shadow models, weights and canary that the unit's env files and drop-ins define, by the
    engine's rules (the M(ansible.legacy.engine_config) module's check).
  - C(Prove the model's role from the start-up lines), with O(model). Voting at O(weight),
    the C([CANARY]) line naming it with O(weights) (O(canary)), shadow-only, the deployed
    O(model_file).
  - Read-only; works the same in check mode.
options:
  invocation_id:
    description: The InvocationID of the start to prove (32 hexadecimal digits).
    type: str
    required: true
  baseline:
    description:
      - The configured models with their baseline weights, as in C(model_safety_baseline_weights).
        Empty (the default) skips the proof of the model config of the unit's files.
    type: dict
    default: {}
extends_documentation_fragment:
  - model_safety_restart.proof
  - action_common_attributes
  - model_safety_attributes
  - model_safety_unit
  - model_safety_expectation
"""

EXAMPLES = r"""
- name: Prove the new start runs the deployed build, the files' config and the canary
  engine_proof:
    invocation_id: "{{ cycled.invocation_id }}"
    baseline: "{{ model_safety_baseline_weights }}"
    model: patchtst
    role: voting
    weight: 0.1
    weights: {xgb: 0.28125, lgbm: 0.28125, nhits: 0.3375, patchtst: 0.1}
    canary: true

- name: Prove only the build of the running start
  engine_proof:
    invocation_id: "{{ status.service.invocation_id }}"
"""

RETURN = r"""
invocation_id:
  description: The start proven.
  returned: success
  type: str
  sample: 62dc8e3085ef459a844e682b8abee375
build:
  description: The build the start logged (C(AI_ENGINE_BUILD)).
  returned: success
  type: str
  sample: 5b6966a
git:
  description: The checkout's build (C(sha), C(short), C(branch), C(dirty)).
  returned: success
  type: dict
  sample:
    sha: 5b6966a0c1d2e3f405162738495a6b7c8d9e0f1a
    short: 5b6966a
    branch: main
    dirty: false
startup:
  description:
    - The start-up lines of the invocation, parsed (C(build), C(voting), C(shadow), C(canary),
      C(model_file), C(ready), C(errors), C(anomalies), ...), as
      M(ansible.legacy.journal_proof) returns them.
  returned: success
  type: dict
  sample:
    build: 5b6966a
    voting: {xgb: 0.25, lgbm: 0.25, nhits: 0.3}
    shadow: {patchtst: 0.2}
    ready: true
config:
  description:
    - The model config the unit's files define (the C(expected) of
      M(ansible.legacy.engine_config)); null without O(baseline).
  returned: success
  type: dict
  sample: {voting: {xgb: 0.25, lgbm: 0.25, nhits: 0.3}, shadow: {patchtst: 0.2}, canary: null}
statements:
  description: What was proven, one line each.
  returned: success
  type: list
  elements: str
  sample: ["build 5b6966a == git HEAD 5b6966a", "patchtst loaded as a voter at 0.1"]
journal_proof:
  description:
    - What the journal check found when it failed (C(matched), C(missing),
      C(found_forbidden), C(lines_read), C(elapsed), C(startup)), as
      M(ansible.legacy.journal_proof) returns it.
  returned: failure of the journal check
  type: dict
  sample: {missing: ["^\\[READY\\]"], found_forbidden: [], lines_read: 3, elapsed: 30.0}
step:
  description: The check that failed.
  returned: failure
  type: str
  sample: Prove the model's role from the start-up lines
differences:
  description: Every way the start differs from what it must run.
  returned: failure of the config or the role check
  type: list
  elements: str
  sample: ["xgb is not voting at 0.3: voting {'xgb': 0.25}, shadow {'patchtst': 0.2}"]
"""


def main() -> None:
    """Entry point."""
    module = AnsibleModule(
        argument_spec={
            "unit": SITE_ARGUMENT_SPEC["unit"],
            **PROOF_ARGUMENT_SPEC,
            "invocation_id": {"type": "str", "required": True},
            "baseline": {"type": "dict", "default": {}},
            **EXPECTATION_ARGUMENT_SPEC,
        },
        supports_check_mode=True,
    )
    params = module.params
    try:
        proof = prove_start(
            module_runner(module),
            params["unit"],
            params["invocation_id"],
            checkout=params["checkout"],
            baseline=params["baseline"],
            expected=expectation_of(params),
            journal_timeout=params["journal_timeout"],
        )
    except StepFailed as exc:
        module.fail_json(msg=str(exc), step=exc.step, **exc.details)
    except EngineStateError as exc:
        module.fail_json(msg=str(exc))
    module.exit_json(changed=False, **proof)


if __name__ == "__main__":
    main()
