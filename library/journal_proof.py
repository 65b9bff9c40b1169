#!/usr/bin/python
# SPDX-License-Identifier: MIT
"""Ansible module: prove lines are (and others are not) in one invocation's journal."""

from __future__ import annotations

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.model_safety.ansible_support import SITE_ARGUMENT_SPEC, module_runner
from ansible.module_utils.model_safety.engine.commands import EngineStateError
from ansible.module_utils.model_safety.engine.journal_proof import (
    proof_failure_message,
    prove_journal,
)

DOCUMENTATION = r"""
---
module: journal_proof
short_description: Prove what one invocation of the engine logged, waiting up to a timeout
description:
  - Reads the journal of exactly one invocation of a systemd unit (C(_SYSTEMD_INVOCATION_ID)),
    so lines from an earlier start can never count as proof of the current one.
  - Every pattern in O(patterns) must match at least one line; the journal is read again every
    0.5 s until all of them are found or O(timeout) seconds have passed.
  - No line may match a pattern in O(forbidden); one that does fails the proof at once.
  - Fails, fail-closed, with a message naming the missing patterns and the forbidden lines (and
    with all the return values) when the proof does not hold, on an invalid regular expression,
    an invalid unit or invocation id, or when C(journalctl) fails.
  - Read-only, never changes anything; works the same in check mode.
options:
  invocation_id:
    description:
      - The InvocationID of the run to prove (C(systemctl show -p InvocationID <unit>)), 32
        lowercase hex digits.
    type: str
    required: true
  patterns:
    description:
      - Python regular expressions (C(re.search) on each line, so C(^) and C($) anchor at the
        start and end of a line), each of which must match at least one line.
      - At least one is required.
    type: list
    elements: str
    required: true
  literal:
    description:
      - Treat the entries of O(patterns) as fixed strings (found anywhere in a line) instead of
        regular expressions. O(forbidden) stays regular expressions.
    type: bool
    default: false
  forbidden:
    description:
      - Python regular expressions that no line of the invocation may match, for example
        C(^\[ERROR\]) for the engine's error lines.
    type: list
    elements: str
    default: []
  timeout:
    description:
      - How long to wait, in seconds, for every pattern to appear (0 to 3600). The journal is
        always read at least once.
    type: float
    default: 30
notes:
  - Runs C(journalctl --no-pager --quiet -o cat -u <unit> _SYSTEMD_INVOCATION_ID=<id>) as an argv
    list.
  - A well-formed invocation id that the journal does not know reads as an empty journal, so the
    proof fails when O(timeout) has passed.
extends_documentation_fragment:
  - action_common_attributes
  - model_safety_attributes
  - model_safety_unit
"""

EXAMPLES = r"""
- name: Record the invocation that was just started
  ansible.builtin.command:
    argv: [systemctl, show, --value, --property=InvocationID, quantum-ai-engine.service]
  register: invocation
  changed_when: false

- name: Read the deployed build
  git_build:
  register: deployed

- name: Prove the running build and the canary's weight, and that nothing failed
  journal_proof:
    invocation_id: "{{ invocation.stdout }}"
    patterns:
      - "^AI_ENGINE_BUILD: {{ deployed.short }}$"
      - '^\[OK\] patchtst agent loaded \(weight: 10%\)$'
    forbidden:
      - '^\[(ERROR|FATAL)\]'
    timeout: 60
  register: proof

- name: The same with fixed strings
  journal_proof:
    invocation_id: "{{ invocation.stdout }}"
    patterns:
      - "[OK] xgb agent loaded (weight: 25%)"
    literal: true
"""

RETURN = r"""
matched:
  description: Each pattern that was found, to the first line it matched.
  returned: always
  type: dict
  sample: {"^AI_ENGINE_BUILD: 18c7dbb$": "AI_ENGINE_BUILD: 18c7dbb"}
missing:
  description: The patterns no line matched (empty when the proof holds).
  returned: always
  type: list
  elements: str
  sample: []
found_forbidden:
  description: The lines (at most the first 100) that a pattern of O(forbidden) matched.
  returned: always
  type: list
  elements: str
  sample: []
lines_read:
  description: How many lines the last read of the invocation's journal returned.
  returned: always
  type: int
  sample: 12
reads:
  description: How many times the journal was read.
  returned: always
  type: int
  sample: 1
elapsed:
  description: Seconds spent waiting, from the first read to the last.
  returned: always
  type: float
  sample: 0.012
startup:
  description:
    - The start-up facts of the invocation, parsed from the lines read (as in
      RV(ansible.legacy.engine_status#module:startup)).
  returned: always
  type: dict
  sample:
    build: 18c7dbb
    builds: [18c7dbb]
    voting: {xgb: 0.25, lgbm: 0.25, nhits: 0.3}
    shadow: {patchtst: 0.2}
    canary: null
    model_file: null
    ready: true
    errors: []
    anomalies: []
    shadow_predictions: {patchtst: 3}
unit:
  description: The unit whose journal was read.
  returned: always
  type: str
  sample: quantum-ai-engine.service
invocation_id:
  description: The invocation that was read.
  returned: always
  type: str
  sample: 0123456789abcdef0123456789abcdef
"""


def main() -> None:
    """Entry point."""
    module = AnsibleModule(
        argument_spec={
            "unit": SITE_ARGUMENT_SPEC["unit"],
            "invocation_id": {"type": "str", "required": True},
            "patterns": {"type": "list", "elements": "str", "required": True},
            "literal": {"type": "bool", "default": False},
            "forbidden": {"type": "list", "elements": "str", "default": []},
            "timeout": {"type": "float", "default": 30.0},
        },
        supports_check_mode=True,
    )
    params = module.params
    where = {"unit": params["unit"], "invocation_id": params["invocation_id"]}
    try:
        proof = prove_journal(
            module_runner(module),
            params["unit"],
            params["invocation_id"],
            params["patterns"],
            forbidden=params["forbidden"],
            literal=params["literal"],
            timeout=params["timeout"],
        )
    except EngineStateError as exc:
        module.fail_json(msg=f"journal proof impossible: {exc}", **where)
    proven = proof.pop("proven")
    if not proven:
        module.fail_json(
            msg=proof_failure_message(params["unit"], params["invocation_id"], proof),
            **where,
            **proof,
        )
    module.exit_json(changed=False, **where, **proof)


if __name__ == "__main__":
    main()
