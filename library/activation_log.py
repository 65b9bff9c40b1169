#!/usr/bin/python
# SPDX-License-Identifier: MIT
"""Ansible module: append one record to the activation log (JSON lines)."""

from __future__ import annotations

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.model_safety.activation.log import (
    DEFAULT_LOG_PATH,
    ActivationLogError,
    append_record,
    check_path,
    format_line,
    parse_mode,
    resolve_group,
)

DOCUMENTATION = r"""
---
module: activation_log
short_description: Append one record to the activation log of an engine host
description:
  - Appends O(record) as one JSON line (compact, ASCII only) to the activation log, the
    history of every activation, rollback, shadow run, promotion and monitor violation.
  - The record must have an C(event), one of V(activation), V(activation_failed),
    V(rollback_executed), V(rollback_failed), V(shadow), V(shadow_failed), V(promotion),
    V(promotion_failed), V(monitoring_started), V(violation), V(monitoring_completed) (the
    last three from C(model-safety monitor)). C(ts) (UTC, C(2026-01-10T12:00:00.123Z)) is added
    first when missing; a given one must have that form.
  - The seed's keys, which runbooks filter on with jq, are added after the record's own when
    it has the data and does not set them itself, for example C(timestamp) (= C(ts)),
    C(action) (V(activation) is logged as V(canary_activated), V(shadow) as
    V(shadow_activated), V(promotion) as V(promotion_step), V(activation_failed) as
    V(canary_failed), every other event as it is), C(canary_model) (= C(model)),
    C(canary_weight) (= C(weight)), C(quality_gate_events) (= C(gate.event_count)),
    C(rollback_cmd) (= C(rollback_command)) and C(trigger) (= C(reason) of a failure or a
    rollback). A value that cannot be read leaves its key out. See README, "Activation log
    records".
  - Values must be JSON (no NaN or infinity). A bad record fails the task and writes nothing.
  - The line is written with one C(write) on an append-only descriptor, under an exclusive
    C(flock), then fsynced, so concurrent writers never interleave. A torn last line left by a
    crash is ended with a newline first, so the new record stands on its own line.
  - A write that fails part-way (disk full, quota, I/O error) is truncated back before the task
    fails, so a failed task has appended nothing and leaves no torn line; the message names the
    error (for example C(ENOSPC)).
  - Every run appends (C(changed=true)); the log is a history, two identical records are two
    events.
options:
  path:
    description:
      - The log file, a normalised absolute path (a relative one or one with C(..) is
        refused). Its directory is created with mode 0750 when missing.
    type: path
    default: /var/log/quantum/qsc_canary.jsonl
  record:
    description: The record to log; C(event) is required.
    type: dict
    required: true
  mode:
    description:
      - Permissions of the log when this task creates it, as an octal string such as
        V('0640'). An existing log keeps its mode. A mode that lets others write is refused.
    type: raw
    default: "0640"
  group:
    description: Group (name or gid) given to the log when this task creates it.
    type: str
notes:
  - Check mode writes nothing and returns the line that would be appended (the record is
    validated, and O(group) resolved, the same way).
  - Ansible adds the log file's owner, group, mode and size to the result when it exists.
extends_documentation_fragment:
  - action_common_attributes
  - model_safety_attributes
"""

EXAMPLES = r"""
- name: Record the activation
  activation_log:
    record:
      event: activation
      model: "{{ model }}"
      weight: "{{ canary_weight | float }}"
      sha: "{{ deployed.sha }}"
      rollback: ansible-playbook playbooks/rollback.yml -l {{ inventory_hostname }}
    group: adm

- name: Record a failed activation in a log of its own
  activation_log:
    path: /var/log/quantum/lab_activations.jsonl
    record:
      event: activation_failed
      model: "{{ model }}"
      reason: "{{ ansible_failed_result.msg | default('unknown') }}"
"""

RETURN = r"""
line:
  description: The JSON line appended (or that would be, in check mode), without its newline.
  returned: success
  type: str
  sample: "{\"ts\":\"2026-01-10T12:00:00.123Z\",\"event\":\"activation\",\"model\":\"patchtst\",\
    \"timestamp\":\"2026-01-10T12:00:00.123Z\",\"action\":\"canary_activated\",\
    \"canary_model\":\"patchtst\"}"
record:
  description: The record logged, with C(ts) and the seed's keys.
  returned: success
  type: dict
  sample:
    ts: "2026-01-10T12:00:00.123Z"
    event: activation
    model: patchtst
    timestamp: "2026-01-10T12:00:00.123Z"
    action: canary_activated
    canary_model: patchtst
created:
  description: True when this task created the log file (false in check mode).
  returned: success
  type: bool
  sample: false
repaired:
  description: True when a torn last line was ended with a newline before the record.
  returned: success
  type: bool
  sample: false
path:
  description: The log file.
  returned: always
  type: str
  sample: /var/log/quantum/qsc_canary.jsonl
"""


def main() -> None:
    """Entry point."""
    module = AnsibleModule(
        argument_spec={
            "path": {"type": "path", "default": DEFAULT_LOG_PATH},
            "record": {"type": "dict", "required": True},
            "mode": {"type": "raw", "default": "0640"},
            "group": {"type": "str"},
        },
        supports_check_mode=True,
    )
    params = module.params
    path = params["path"]
    try:
        if module.check_mode:
            check_path(path)
            parse_mode(params["mode"])
            resolve_group(params["group"])
            record, line = format_line(params["record"])
            written = {"record": record, "line": line.rstrip("\n")}
            module.exit_json(changed=True, path=path, created=False, repaired=False, **written)
        written = append_record(path, params["record"], mode=params["mode"], group=params["group"])
    except ActivationLogError as exc:
        module.fail_json(msg=f"activation log {path}: {exc}", path=path)
    module.exit_json(changed=True, path=path, **written)


if __name__ == "__main__":
    main()
