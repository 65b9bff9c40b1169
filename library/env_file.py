#!/usr/bin/python
"""Ansible module: change keys of the engine's EnvironmentFile in place, every other byte kept,
with a diff that shows only the changed keys and never a secret."""

from __future__ import annotations

import grp
import os
import pwd
import tempfile

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.model_safety.engine.envfile import (
    EnvFileError,
    changed_keys,
    diff_texts,
    render_env,
    secret_values,
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
  - The new content is written to a temporary file in the same directory and moved over the
    file atomically, so a reader sees the old or the new file, never half of one. Then
    O(owner), O(group) and O(mode) are applied.
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

# Others must not read the file (secrets) and only its owner may write it.
_FORBIDDEN_MODE_BITS = 0o027


def _checked_mode(module: AnsibleModule) -> int | None:
    text = module.params["mode"]
    if text is None:
        return None
    try:
        mode = int(text, 8)
    except ValueError:
        module.fail_json(msg=f"mode must be an octal string such as '0640', not {text!r}")
    if not 0 <= mode <= 0o777 or mode & _FORBIDDEN_MODE_BITS:
        module.fail_json(
            msg=f"mode {text} refused: the env file holds secrets; others must not read it and "
            "only its owner may write it (for example '0640' or '0600')"
        )
    return mode


# Ansible's own lookups of owner and group (set_owner/group_if_different), with its messages.
_ID_LOOKUPS = (
    ("owner", pwd.getpwnam, "chown failed: failed to look up user"),
    ("group", grp.getgrnam, "chgrp failed: failed to look up group"),
)


def _check_owner_and_group(module: AnsibleModule) -> None:
    """Fail on an unknown owner or group before anything is written (the file is then left
    as it was), not after the rewrite as Ansible's chown/chgrp would."""
    for option, lookup, failure in _ID_LOOKUPS:
        name = module.params[option]
        if name is None:
            continue
        try:
            int(name)
        except ValueError:
            try:
                lookup(name)
            except KeyError:
                module.fail_json(path=module.params["path"], msg=f"{failure} {name}")


def _read(module: AnsibleModule, path: str) -> str:
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read()
    except FileNotFoundError:
        module.fail_json(msg=f"{path} does not exist (the env file is changed, never created)")
    except (OSError, UnicodeDecodeError) as exc:
        module.fail_json(msg=f"cannot read {path}: {exc}")


def _write(module: AnsibleModule, path: str, text: str) -> None:
    """The new content into a temporary file beside ``path``, fsynced, then moved over it."""
    directory = os.path.dirname(path) or "."
    fd, temporary = tempfile.mkstemp(prefix=".env_file.", dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
    except OSError as exc:
        os.unlink(temporary)
        module.fail_json(msg=f"cannot write {path}: {exc}")
    module.atomic_move(temporary, path)


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
    mode = _checked_mode(module)
    _check_owner_and_group(module)
    current = _read(module, path)
    try:
        # Before anything can fail or be returned: these values are masked in all output.
        module.no_log_values.update(secret_values(current, params["changes"]))
        rendered = render_env(current, params["changes"])
        changes = changed_keys(current, params["changes"])
        before, after = diff_texts(current, params["changes"])
    except EnvFileError as exc:
        module.fail_json(msg=f"{path}: {exc}")

    changed = rendered != current
    if changed and not module.check_mode:
        _write(module, path, rendered)
    header = f"{path} (changed keys only; secrets hidden)"
    diff = {"before_header": header, "after_header": header, "before": before, "after": after}
    changed = module.set_owner_if_different(path, params["owner"], changed)
    changed = module.set_group_if_different(path, params["group"], changed)
    if mode is not None:
        changed = module.set_mode_if_different(path, mode, changed)
    module.exit_json(changed=changed, path=path, changed_keys=changes, diff=diff)


if __name__ == "__main__":
    main()
