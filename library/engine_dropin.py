#!/usr/bin/python
# SPDX-License-Identifier: MIT
"""Ansible module: install or remove one systemd drop-in of the engine's unit, its names and
values validated, in one round trip (no daemon-reload)."""

from __future__ import annotations

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.model_safety.engine.dropin import (
    DropinError,
    apply_dropin,
    plan_dropin,
)

DOCUMENTATION = r"""
---
module: engine_dropin
short_description: Install or remove a systemd drop-in of the engine's unit
description:
  - Writes C(<directory>/<name>), root:root 0644, with a header comment (managed, O(purpose),
    how to undo it), C([Service]) and one C(Environment="NAME=VALUE") line per entry of
    O(environment), in order; or removes it. A file with the right text but another mode or
    owner is rewritten.
  - The file is written to a temporary file beside it and renamed over it (fsynced), so systemd
    reads the old or the new drop-in, never half of one. O(directory) is created (0755) when
    missing.
  - Names must match C([A-Z_][A-Z0-9_]*) and values C([A-Za-z0-9_.,:/+-]*) (strings or numbers,
    never booleans or null), so that systemd can neither expand, unquote nor split them. A bad
    name, value, O(name) or O(purpose) is refused before anything is written.
  - It does not run daemon-reload (the C(ai_engine_dropin) role does, when this changed) nor
    stop or start the service.
options:
  directory:
    description: The unit's drop-in directory, an absolute normalised path.
    type: path
    required: true
  name:
    description: The drop-in's file name, matching C([A-Za-z0-9_.-]+\.conf).
    type: str
    default: qsc_canary.conf
  state:
    description: Whether the drop-in should exist.
    type: str
    choices: [present, absent]
    default: present
  environment:
    description:
      - The C(Environment=) lines, NAME to value, in order; numbers are written as Python
        writes them (V(0.1)). Not used when O(state=absent).
    type: dict
    default: {}
  purpose:
    description:
      - What the drop-in is for, one printable line of at most 200 characters, in its header
        comment. Not used when O(state=absent).
    type: str
    default: ""
notes:
  - A rerun with the same options changes nothing (C(changed) is false).
  - Check mode reads the file and reports what would change, with the same diff; it writes
    nothing.
extends_documentation_fragment:
  - action_common_attributes
  - model_safety_attributes
attributes:
  diff_mode:
    support: full
"""

EXAMPLES = r"""
- name: Install the canary drop-in of patchtst at 0.1
  engine_dropin:
    directory: /etc/systemd/system/quantum-ai-engine.service.d
    purpose: canary patchtst
    environment:
      QSC_CANARY_MODEL: patchtst
      QSC_CANARY_WEIGHT: "0.1"
      QSC_MODEL_WEIGHTS: xgb:0.28125,lgbm:0.28125,nhits:0.3375,patchtst:0.1
  register: canary_dropin

- name: Make systemd read it
  ansible.builtin.systemd_service:
    daemon_reload: true
  when: canary_dropin is changed

- name: Remove the canary drop-in
  engine_dropin:
    directory: /etc/systemd/system/quantum-ai-engine.service.d
    state: absent
"""

RETURN = r"""
path:
  description: The drop-in file.
  returned: always
  type: str
  sample: /etc/systemd/system/quantum-ai-engine.service.d/qsc_canary.conf
state:
  description: O(state), what the file now is (or would be, in check mode).
  returned: always
  type: str
  sample: present
content:
  description: The drop-in's new text; V(null) when O(state=absent).
  returned: always
  type: str
  sample: |
    # Managed by Model Safety Ops (Ansible): canary patchtst.
    # Removing this file, then daemon-reload, stop and start, undoes it (playbooks/rollback.yml).
    [Service]
    Environment="QSC_CANARY_MODEL=patchtst"
"""


def main() -> None:
    """Entry point."""
    module = AnsibleModule(
        argument_spec={
            "directory": {"type": "path", "required": True},
            "name": {"type": "str", "default": "qsc_canary.conf"},
            "state": {"type": "str", "choices": ["present", "absent"], "default": "present"},
            "environment": {"type": "dict", "default": {}},
            "purpose": {"type": "str", "default": ""},
        },
        supports_check_mode=True,
    )
    params = module.params
    try:
        change = plan_dropin(
            params["directory"],
            params["name"],
            params["state"],
            params["environment"],
            params["purpose"],
        )
    except DropinError as exc:
        module.fail_json(msg=str(exc))
    except OSError as exc:
        module.fail_json(msg=f"cannot read the drop-in {params['name']}: {exc}")
    if not module.check_mode:
        try:
            apply_dropin(change)
        except OSError as exc:
            action = "write" if change.after is not None else "remove"
            module.fail_json(msg=f"cannot {action} {change.path}: {exc}")
    module.exit_json(
        changed=change.changed,
        path=change.path,
        state=change.state,
        content=change.after,
        diff=change.diff,
    )


if __name__ == "__main__":
    main()
