#!/usr/bin/python
# SPDX-License-Identifier: MIT
"""Ansible module: the git build deployed in the engine's checkout (read-only)."""

from __future__ import annotations

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.model_safety.ansible_support import SITE_ARGUMENT_SPEC, module_runner
from ansible.module_utils.model_safety.engine.commands import EngineStateError
from ansible.module_utils.model_safety.engine.git import read_git_build

DOCUMENTATION = r"""
---
module: git_build
short_description: Read the git build (HEAD SHA, dirty flag, branch) of the engine's checkout
description:
  - Reads HEAD of the engine's git checkout on the target and returns its full and short SHA,
    whether tracked files differ from HEAD, and the branch HEAD is on.
  - The short SHA is abbreviated by git itself (C(git rev-parse --short)), so it is the value
    the engine logs as C(AI_ENGINE_BUILD) at start-up.
  - Read-only, never changes anything (C(git --no-optional-locks), so not even the index is
    refreshed); works the same in check mode and always reports C(changed=false).
  - Fails with a clear message when git is missing on the target, or when O(path) is not a git
    checkout or has no commit yet.
options:
  path:
    description:
      - Absolute path of the engine's git checkout.
      - Trusted as a git C(safe.directory) for these reads only (the checkout belongs to the
        service user, the module runs as root).
    type: path
    default: /home/qt/quantum_trader
    aliases: [checkout]
requirements:
  - git on the target
notes:
  - Commands run as argv lists, for example
    C(git --no-optional-locks -C <path> -c safe.directory=<path> rev-parse --verify HEAD^{commit}).
  - RV(dirty) looks at tracked files only (C(git status --porcelain --untracked-files=no)).
extends_documentation_fragment:
  - action_common_attributes
  - model_safety_attributes
"""

EXAMPLES = r"""
- name: Read the deployed build
  git_build:
  register: deployed

- name: Read the build of a checkout somewhere else
  git_build:
    path: /srv/quantum_trader
  register: deployed

- name: Refuse to activate anything on a modified checkout
  ansible.builtin.assert:
    that: not deployed.dirty
    fail_msg: "{{ deployed.checkout }} has local changes on top of {{ deployed.short }}"
"""

RETURN = r"""
sha:
  description: Full SHA of HEAD, 40 lowercase hex digits.
  returned: success
  type: str
  sample: 18c7dbb0c1d2e3f405162738495a6b7c8d9e0f1a
short:
  description: HEAD abbreviated by C(git rev-parse --short), at least 7 digits by default.
  returned: success
  type: str
  sample: 18c7dbb
dirty:
  description: True when tracked files are modified (staged or not); untracked files do not count.
  returned: success
  type: bool
  sample: false
branch:
  description: The branch HEAD is on, null when HEAD is detached.
  returned: success
  type: str
  sample: main
checkout:
  description: The checkout that was read (O(path)).
  returned: always
  type: str
  sample: /home/qt/quantum_trader
"""


def main() -> None:
    """Entry point."""
    module = AnsibleModule(
        argument_spec={
            "path": {**SITE_ARGUMENT_SPEC["checkout"], "aliases": ["checkout"]},
        },
        supports_check_mode=True,
    )
    path = module.params["path"]
    try:
        build = read_git_build(module_runner(module), path)
    except EngineStateError as exc:
        module.fail_json(msg=f"cannot read the git build of {path}: {exc}", checkout=path)
    module.exit_json(changed=False, checkout=path, **build)


if __name__ == "__main__":
    main()
