#!/usr/bin/python
# SPDX-License-Identifier: MIT
"""Ansible module: change keys of the engine's EnvironmentFile in place, every other byte kept,
with a diff that shows only the changed keys and never a secret."""

from __future__ import annotations

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.model_safety.engine.envfile import EnvFileError
from ansible.module_utils.model_safety.engine.envfile_write import (
    apply_env_change,
    plan_env_change,
)

DOCUMENTATION = r"""
---
module: env_file
short_description: Change keys of a systemd EnvironmentFile, keeping every other line
description:
  - Sets the keys in O(changes) to their new values in place (a key not in the file is appended
    at its end, V(null) removes a key's line); every other line, comment and blank line stays
    byte-identical and in order.
  - The file and the result are validated (C(KEY=VALUE) lines, no duplicate key, values without
    newline, backslash, leading quote or surrounding whitespace); a file that is not valid is
    refused with the line number, never its value.
  - The new content is written to a temporary file in the same directory, given O(owner),
    O(group) and O(mode) (the file's own where not given), fsynced and moved over the file
    atomically, so a reader sees the old or the new file, never half of one. When only O(owner),
    O(group) or O(mode) differ, they are set on the file. A bad mode or an unknown owner or
    group is refused before anything is written.
  - An env file holds secrets (passwords, tokens, URLs with a password). The diff shows only the
    keys whose value changes, with the values of secret-looking keys (names containing C(PASS),
    C(SECRET), C(TOKEN), C(KEY) or C(AUTH)) as C(<hidden>) and the userinfo of any URL as
    C(***); those values are also masked in all of the module's output, at every verbosity.
options:
  path:
    description: The environment file. It must exist.
    type: path
    required: true
  changes:
    description:
      - The keys to set (string values; write booleans and numbers as strings such as
        V("false")) or to remove (V(null)).
    type: dict
    required: true
  owner:
    description: Owner of the file (name or uid); left as it is when not given.
    type: str
  group:
    description: Group of the file (name or gid); left as it is when not given.
    type: str
  mode:
    description:
      - Permissions of the file, an octal string such as V('0640'); left as they are when not
        given. A mode that lets others read or anyone but the owner write is refused (the file
        holds secrets).
    type: str
notes:
  - A rerun with the same O(changes) changes nothing (C(changed) is false).
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
- name: Make patchtst vote (every other line of the file kept)
  env_file:
    path: /etc/quantum/ai-engine.env
    changes:
      PATCHTST_SHADOW_ONLY: "false"
    owner: root
    group: qt
    mode: "0640"

- name: Point the shadow model at a new file and drop an old key
  env_file:
    path: /etc/quantum/ai-engine.env
    changes:
      PATCHTST_MODEL_PATH: /opt/quantum/models/patchtst-v2.pth
      PATCHTST_OLD_SETTING: null
"""

RETURN = r"""
path:
  description: The environment file.
  returned: always
  type: str
  sample: /etc/quantum/ai-engine.env
changed_keys:
  description:
    - The keys whose value changed (or would, in check mode), each with C(before) and C(after)
      (V(null) for absent), masked as in the diff.
  returned: always
  type: dict
  sample: {PATCHTST_SHADOW_ONLY: {before: "true", after: "false"}}
"""


def main() -> None:
    """Entry point."""
    module = AnsibleModule(
        argument_spec={
            "path": {"type": "path", "required": True},
            "changes": {"type": "dict", "required": True},
            "owner": {"type": "str"},
            "group": {"type": "str"},
            "mode": {"type": "str"},
        },
        supports_check_mode=True,
    )
    params = module.params
    path = params["path"]
    try:
        change = plan_env_change(
            path, params["changes"], params["owner"], params["group"], params["mode"]
        )
        # Before anything can fail or be returned: these values are masked in all output.
        module.no_log_values.update(change.secrets)
        if not module.check_mode:
            apply_env_change(change)
    except EnvFileError as exc:
        module.no_log_values.update(exc.secrets)
        module.fail_json(path=path, msg=str(exc))
    module.exit_json(
        changed=change.changed, path=path, changed_keys=change.changed_keys, diff=change.diff
    )


if __name__ == "__main__":
    main()
