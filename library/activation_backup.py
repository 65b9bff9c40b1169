#!/usr/bin/python
# SPDX-License-Identifier: MIT
"""Ansible module: back up, verify and restore the engine's env file and systemd drop-ins."""

from __future__ import annotations

import os

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.model_safety.activation.backup_catalog import (
    future_backups,
    prune,
    require_intact,
    select_backup,
)
from ansible.module_utils.model_safety.activation.backup_create import (
    checked_details,
    create_backup,
    plan_backup,
)
from ansible.module_utils.model_safety.activation.backup_format import (
    DEFAULT_DIRS,
    DEFAULT_FILES,
    DEFAULT_ROOT,
    BackupError,
    CorruptBackup,
    default_operator,
)
from ansible.module_utils.model_safety.activation.backup_restore import (
    checked_restoration_record,
    mark_restored,
    restore_backup,
    restore_diff,
)
from ansible.module_utils.model_safety.activation.backup_verify import read_manifest
from ansible.module_utils.model_safety.ansible_support import module_runner
from ansible.module_utils.model_safety.engine.commands import EngineStateError
from ansible.module_utils.model_safety.engine.git import read_git_build
from ansible.module_utils.model_safety.names import is_model_name

DOCUMENTATION = r"""
---
module: activation_backup
short_description: Back up, verify and restore the engine's configuration byte-identical
description:
  - With O(state=present), saves the files in O(files) and every regular file directly in each
    directory of O(dirs) into a new backup directory C(<root>/<UTC stamp>_<model>/) (mode 0700,
    copies mode 0600), reads every copy back, writes C(manifest.json) last and atomically (path,
    size, SHA-256, mode, uid and gid of every file; model, weight, operator, git SHA, host), then
    keeps only the newest O(keep) backups.
  - A path of O(files) that does not exist is recorded as absent (for example the canary
    drop-in that is about to be created); restoring the backup removes it.
  - With O(state=restored), verifies the backup first (any problem refuses the restore and
    changes nothing), writes back every file whose bytes, mode or owner differ (atomically, owner
    and mode set before the rename), removes absent files and files added to a saved directory
    since the backup, then checks every file against the manifest. A second restore reports
    C(changed=false). With O(mark_restored), a restore that changed something is recorded in
    the backup's manifest.
  - A restore trusts the manifest with no more than it needs. It is refused, nothing changed,
    when the manifest has a path other than the managed ones (O(files) and the files directly
    in O(dirs)), and when it would give a file to a non-root owner other than the file's
    current one. Set-id and sticky bits are never restored, nor write permission for others
    (or for the group, except on a root:root file); each file restored with a narrower mode
    than recorded is named in a warning.
  - The backup root must be owned by root and writable by no one else (O(state=present)
    creates it 0700); otherwise backing up and restoring are refused.
  - A backup dated more than 5 minutes in the future (by its name) is never taken as the
    latest, never pruned, never restored and refused by O(name); each one under O(root) is
    named in a warning.
  - With O(state=verified), checks the backup (manifest, every copy's size and SHA-256, no extra
    file) and fails listing the problems. Read-only.
  - A selected backup (the latest, or the one named) that fails verification is refused with
    O(state=restored) and O(state=verified), naming its problems and the newest intact backups
    (RV(candidates)) for the operator to choose from; another backup is never restored in its
    place.
  - Nothing is saved or restored through a symlink; relative paths, C(..) and special files are
    refused. File contents are never returned or logged (env files hold secrets), only paths and
    checksums.
options:
  state:
    description:
      - V(present) creates a backup, V(restored) restores one, V(verified) checks one.
    type: str
    choices: [present, restored, verified]
    default: present
  root:
    description: The directory holding the backups, created with mode 0700 when missing.
    type: path
    default: /opt/quantum/backups/model_activations
  model:
    description:
      - The model being activated, part of the backup's name (C(^[a-z][a-z0-9_]{0,31}$)).
      - Required with O(state=present). With O(state=restored) or O(state=verified) and no
        O(path), selects the latest backup of this model instead of the latest of any model.
    type: str
  weight:
    description: The weight the change gives the model (0 to 1), recorded in the manifest.
    type: float
  operator:
    description:
      - Who makes the change, recorded in the manifest.
      - Defaults to C(SUDO_USER), else C(USER), of the module's environment on the target, else
        C(unknown).
    type: str
  git_sha:
    description:
      - The engine build (7 to 40 hex digits), recorded in the manifest.
      - Not with O(checkout).
    type: str
  checkout:
    description:
      - The engine's git checkout whose HEAD (the deployed build) is recorded in the manifest
        as C(git_sha), read with the code of the C(git_build) module and returned as
        RV(build); with O(state=present) only, not with O(git_sha).
      - A path that is not a git checkout with a commit fails before anything is written.
    type: path
  files:
    description:
      - Absolute paths of the files to save (with O(state=present)).
      - With O(state=restored), the managed files a restore may write or remove.
    type: list
    elements: path
    default: [/etc/quantum/ai-engine.env]
  dirs:
    description:
      - Absolute paths of directories whose regular files are all saved (with
        O(state=present)); subdirectories are not descended into. A missing directory is
        recorded as missing.
      - With O(state=restored), the managed directories whose files a restore may write or
        remove.
    type: list
    elements: path
    default: [/etc/systemd/system/quantum-ai-engine.service.d]
  metadata:
    description: Free-form data recorded in the manifest (for example the gate summary).
    type: dict
    default: {}
  keep:
    description: How many complete backups (of any model) O(state=present) keeps, at least 1.
    type: int
    default: 20
  path:
    description:
      - The backup to restore or verify. Without it (and without O(name)), the latest complete
        backup under O(root) (of O(model) when given).
    type: path
  name:
    description:
      - The backup to restore or verify, by its directory name under O(root)
        (C(<UTC stamp>_<model>), for example C(20261123T180102.123456Z_patchtst)); a name that
        is not of that form (a C(/) or C(..) in it) is refused, an unknown one fails listing
        the newest 5 backups.
      - Not with O(path). With O(model), the backup must be of that model.
    type: str
  mark_restored:
    description:
      - With O(state=restored), a record (for example the operator and the reason) appended,
        with its UTC time C(ts), to the C(restorations) list of the backup's C(manifest.json)
        (rewritten atomically) when the restore changed something; a restore that changes
        nothing marks nothing. It must not have a C(ts) key.
    type: dict
notes:
  - Backup directory names sort by time (C(20261123T180102.123456Z_patchtst)); a directory
    without C(manifest.json) is an incomplete backup, never restored, and removed by a later
    O(state=present) once a newer complete backup exists. Other entries of O(root) are never
    touched.
  - In check mode, O(state=present) reports what would be saved (RV(plan)) and pruned and
    writes nothing; O(state=restored) reports exactly what a restore would write and remove,
    and marks nothing.
  - As for any result with a RV(path), Ansible adds the backup directory's owner, group, mode
    and state to the result.
  - With C(--diff), O(state=restored) shows per file its SHA-256, mode and owner before and
    after, never its contents.
extends_documentation_fragment:
  - action_common_attributes
  - model_safety_attributes
attributes:
  diff_mode:
    support: partial
    details: Only O(state=restored) returns a diff, of checksums, modes and owners.
"""

EXAMPLES = r"""
- name: Back up the env file and the drop-ins before the canary, with the deployed build
  activation_backup:
    model: patchtst
    weight: 0.10
    checkout: /opt/quantum/ai-engine
    files:
      - /etc/quantum/ai-engine.env
      - /etc/systemd/system/quantum-ai-engine.service.d/qsc_canary.conf
    dirs:
      - /etc/systemd/system/quantum-ai-engine.service.d
    metadata:
      gate_verdict: PASS
  register: backup

- name: Restore that backup when the activation fails
  activation_backup:
    state: restored
    path: "{{ backup.path }}"

- name: Roll back to the latest backup of patchtst
  activation_backup:
    state: restored
    model: patchtst

- name: Check the latest backup without touching anything
  activation_backup:
    state: verified

- name: Roll back to a backup chosen by name, and record it in its manifest
  activation_backup:
    state: restored
    name: 20261123T180102.123456Z_patchtst
    mark_restored:
      operator: alice
      reason: rollback
"""

RETURN = r"""
path:
  description: The backup directory created, restored or verified (null in check mode of
    O(state=present)).
  returned: always
  type: str
  sample: /opt/quantum/backups/model_activations/20261123T180102.123456Z_patchtst
manifest:
  description:
    - The backup's manifest (paths, checksums, modes, owners; never contents).
    - A backup restored with O(mark_restored) also has C(restorations), the records with
      their UTC time C(ts).
  returned: success, with O(state=present) (not in check mode) or O(state=verified)
  type: dict
  sample:
    format: 1
    created: "2026-11-23T18:01:02.123456Z"
    model: patchtst
    weight: 0.1
    operator: alice
    git_sha: 18c7dbb
    host: engine1
    metadata: {}
    dirs:
      - {path: /etc/systemd/system/quantum-ai-engine.service.d, present: true, files: [ai.conf]}
    files:
      - path: /etc/quantum/ai-engine.env
        saved_as: files/etc/quantum/ai-engine.env
        sha256: 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08
        size: 812
        mode: 384
        uid: 0
        gid: 0
      - {path: /etc/systemd/system/quantum-ai-engine.service.d/qsc_canary.conf, absent: true}
build:
  description: The deployed build read from O(checkout) (C(sha) is what the manifest records).
  returned: with O(state=present) and O(checkout), also in check mode
  type: dict
  sample: {sha: 18c7dbb5f0c3a1e0b6b9d2f4c8e7a6b5c4d3e2f1, short: 18c7dbb}
plan:
  description: What would be saved, as the manifest's C(files) and C(dirs).
  returned: check mode of O(state=present)
  type: dict
  sample: {files: [{path: /etc/quantum/ai-engine.env, saved_as: files/etc/quantum/ai-engine.env,
    sha256: 9f86..., size: 812, mode: 384, uid: 0, gid: 0}], dirs: []}
pruned:
  description: The old backups removed (in check mode, that would be removed).
  returned: with O(state=present)
  type: list
  elements: str
  sample: [/opt/quantum/backups/model_activations/20261001T080000.000000Z_nhits]
model:
  description: The model whose activation the restored backup preceded (from its manifest).
  returned: with O(state=restored)
  type: str
  sample: patchtst
restored:
  description: The files written back (in check mode, that would be).
  returned: with O(state=restored)
  type: list
  elements: str
  sample: [/etc/quantum/ai-engine.env]
removed:
  description: The files (and a directory missing at backup time) removed.
  returned: with O(state=restored)
  type: list
  elements: str
  sample: [/etc/systemd/system/quantum-ai-engine.service.d/qsc_canary.conf]
unchanged:
  description: The files of the backup that already matched it.
  returned: with O(state=restored)
  type: list
  elements: str
  sample: []
marked:
  description: Whether the restore was recorded in the backup's manifest (O(mark_restored)).
  returned: with O(state=restored)
  type: bool
  sample: true
problems:
  description: What is wrong with the backup.
  returned: failure of O(state=verified), or of O(state=restored) on a bad backup or restore
  type: list
  elements: str
  sample: ["/etc/quantum/ai-engine.env: saved copy's sha256 differs from the manifest"]
candidates:
  description: The names of the newest intact backups (at most 5, of O(model) when given),
    newest first, when the selected backup is corrupt.
  returned: failure of O(state=restored) or O(state=verified) on a corrupt backup
  type: list
  elements: str
  sample: [20261120T090000.000000Z_patchtst]
"""


def main() -> None:
    """Entry point."""
    module = AnsibleModule(
        argument_spec={
            "state": {
                "type": "str",
                "choices": ["present", "restored", "verified"],
                "default": "present",
            },
            "root": {"type": "path", "default": DEFAULT_ROOT},
            "model": {"type": "str"},
            "weight": {"type": "float"},
            "operator": {"type": "str"},
            "git_sha": {"type": "str"},
            "checkout": {"type": "path"},
            "files": {"type": "list", "elements": "path", "default": list(DEFAULT_FILES)},
            "dirs": {"type": "list", "elements": "path", "default": list(DEFAULT_DIRS)},
            "metadata": {"type": "dict", "default": {}},
            "keep": {"type": "int", "default": 20},
            "path": {"type": "path"},
            "name": {"type": "str"},
            "mark_restored": {"type": "dict"},
        },
        required_if=[("state", "present", ["model"])],
        mutually_exclusive=[("path", "name"), ("git_sha", "checkout")],
        supports_check_mode=True,
    )
    params = module.params
    model = params["model"]
    if model is not None and not is_model_name(model):
        module.fail_json(
            msg=f"model {model!r} is not a valid model name (^[a-z][a-z0-9_]{{0,31}}$)"
        )
    if params["mark_restored"] is not None:
        if params["state"] != "restored":
            module.fail_json(msg="mark_restored records a restore, only with state=restored")
        try:
            checked_restoration_record(params["mark_restored"])
        except BackupError as exc:
            module.fail_json(msg=f"invalid mark_restored: {exc}")
    if params["checkout"] is not None and params["state"] != "present":
        module.fail_json(
            msg="checkout records the deployed build in a new backup, only with state=present"
        )
    if params["state"] == "present":
        present(module)
    path = None
    try:
        if params["path"] is None:
            warn_future_backups(module, params["root"])
        path = select_backup(params["root"], params["path"], model, params["name"])
        require_intact(path, model)
        if params["state"] == "verified":
            module.exit_json(changed=False, path=path, manifest=read_manifest(path))
        restored(module, path)
    except CorruptBackup as exc:
        module.fail_json(msg=str(exc), path=path, problems=exc.problems, candidates=exc.candidates)
    except BackupError as exc:
        module.fail_json(msg=str(exc), path=path, problems=exc.problems)


def present(module: AnsibleModule) -> None:
    """Create, verify and prune; in check mode, report the plan and write nothing."""
    params = module.params
    if params["path"] is not None or params["name"] is not None:
        module.fail_json(
            msg="path and name select a backup to restore or verify, not with state=present"
        )
    if params["keep"] < 1:
        module.fail_json(msg=f"keep must be at least 1, not {params['keep']}")
    root = params["root"]
    build = deployed_build(module)
    details = {
        "weight": params["weight"],
        "operator": params["operator"] or default_operator(os.environ),
        "git_sha": params["git_sha"] if build is None else build["sha"],
        "metadata": params["metadata"],
    }
    built = {} if build is None else {"build": build}
    try:
        warn_future_backups(module, root)
        if module.check_mode:
            checked_details(params["model"], **details)
            plan = plan_backup(params["files"], params["dirs"])
            pruned = prune(root, params["keep"], check_mode=True, pending=True)
            module.exit_json(changed=True, path=None, plan=plan, pruned=pruned, **built)
        backup = create_backup(
            root,
            params["model"],
            params["files"],
            params["dirs"],
            **details,
        )
    except BackupError as exc:
        module.fail_json(
            msg=f"cannot back up for model {params['model']}: {exc}", problems=exc.problems
        )
    try:
        pruned = prune(root, params["keep"])
    except BackupError as exc:
        module.fail_json(msg=f"backup {backup['path']} was made, but {exc}", **backup, **built)
    module.exit_json(changed=True, pruned=pruned, **backup, **built)


def deployed_build(module: AnsibleModule) -> dict[str, str] | None:
    """The build deployed in the checkout option as {sha, short}, None without one; a checkout
    that cannot be read fails the task before anything is written."""
    checkout = module.params["checkout"]
    if checkout is None:
        return None
    try:
        build = read_git_build(module_runner(module), checkout)
    except EngineStateError as exc:
        module.fail_json(
            msg=f"cannot back up for model {module.params['model']}: cannot read the git "
            f"build of {checkout}: {exc}",
            checkout=checkout,
        )
    return {"sha": build["sha"], "short": build["short"]}


def warn_future_backups(module: AnsibleModule, root: str) -> None:
    """Name the backups dated in the future, which are never taken as the latest."""
    for warning in future_backups(root):
        module.warn(warning)


def restored(module: AnsibleModule, path: str) -> None:
    """Restore the backup (or, in check mode, tell exactly what a restore would do) and, when
    asked and something changed, record the restore in its manifest."""
    params = module.params
    result = restore_backup(path, params["files"], params["dirs"], check_mode=module.check_mode)
    for warning in result.pop("warnings"):
        module.warn(warning)
    changes = result.pop("changes")
    if module._diff:
        result["diff"] = restore_diff(changes)
    record = params["mark_restored"]
    marked = False
    if record is not None and result["changed"] and not module.check_mode:
        try:
            mark_restored(path, record)
        except BackupError as exc:
            module.fail_json(
                msg=f"backup {path} was restored, but not marked restored: {exc}",
                path=path,
                marked=False,
                **result,
            )
        marked = True
    module.exit_json(path=path, marked=marked, **result)


if __name__ == "__main__":
    main()
