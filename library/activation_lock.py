#!/usr/bin/python
# SPDX-License-Identifier: MIT
"""Ansible module: the one-at-a-time activation lease of an engine host."""

from __future__ import annotations

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.model_safety.activation.lock import (
    DEFAULT_LEASE_PATH,
    DEFAULT_TTL,
    LeaseError,
    LeaseHeld,
    acquire,
    check_acquire,
    check_release,
    check_renew,
    read_lease,
    release,
    renew,
)

DOCUMENTATION = r"""
---
module: activation_lock
short_description: Take, release or read the one-at-a-time activation lease of an engine host
description:
  - Only one activation (canary, shadow, promotion, rollback) may run on an engine host at a
    time. This module manages the file lease that says which one does.
  - The lease is a JSON file (owner, purpose, host, pid, token, acquired, expires, ttl, times
    in UTC) that appears whole or not at all (written aside, fsynced, hard-linked into place).
  - With O(state=acquired) the lease is taken for O(ttl) seconds and its RV(token) returned;
    the task fails, naming the holder, when another activation holds a valid, unexpired lease.
    An expired lease is STALE (its holder died or forgot it) and is taken over; it is returned
    as RV(stale).
  - With O(force), a valid lease is BROKEN on purpose and taken over the same way (for an
    emergency rollback the operator asked for); it is returned as RV(broken).
  - A lease that cannot be parsed is judged by its age; younger than O(ttl) it counts as held
    (fail closed), older it is stale.
  - With O(state=released) the lease is removed, only if O(token) holds it.
  - With O(state=query) the lease is read, never changed.
  - With O(state=renewed) the task fails unless O(token) still holds a valid, unexpired lease
    (it may have expired during a long wait and been taken over); the lease then lasts O(ttl)
    seconds from now. For the moment right before an activation changes anything.
options:
  path:
    description:
      - The lease file. Its directory is created with mode 0700 when missing; the lease has
        mode 0600.
      - A side file C(<path>.lock) serialises the take-over and release steps with C(flock).
    type: path
    default: /var/lib/model-safety/activation.lease
  state:
    description:
      - V(acquired) takes the lease, V(released) gives it back, V(query) reads it, V(renewed)
        proves it is still held by O(token) and extends it.
    type: str
    choices: [acquired, released, query, renewed]
    default: acquired
  owner:
    description:
      - Who takes the lease, for the messages other activations get, for example
        C(alice@ops1). Printable, at most 200 characters.
      - Required when O(state=acquired).
    type: str
  purpose:
    description:
      - What the lease is taken for, for example C(canary patchtst).
      - Free text (an operator's reason) is never refused for its content. Whitespace and
        control characters become single spaces, and a text longer than 200 characters is cut
        to 200, ending in C(...). Only a blank one is refused.
    type: str
    default: activation
  ttl:
    description:
      - How long the lease lasts, in seconds (1 to 86400); after that it is stale and the next
        activation takes it over.
      - With O(state=query), the age after which an unreadable lease counts as expired.
    type: int
    default: 1800
  token:
    description:
      - The RV(token) returned when the lease was acquired (32 lowercase hex digits).
      - Required when O(state=released) or O(state=renewed).
    type: str
  force:
    description:
      - With O(state=acquired), take the lease even when another activation holds a valid one
        (an unreadable one too), returning it as RV(broken). Only when the operator says so.
    type: bool
    default: false
notes:
  - Check mode changes nothing. O(state=acquired) then reports whether the lease could be
    taken (and fails the same way when it is held), with C(changed=true) and RV(token) null;
    O(state=released) reports whether it would be released.
  - Releasing a lease that does not exist succeeds with C(changed=false) (a second release is
    harmless); a lease held with another token fails the task and is left alone.
  - Ansible adds the lease file's owner, group, mode and size to the result when it exists.
extends_documentation_fragment:
  - action_common_attributes
  - model_safety_attributes
"""

EXAMPLES = r"""
- name: Take the activation lease (fails if another activation runs)
  activation_lock:
    owner: "{{ lookup('env', 'USER') }}@{{ lookup('pipe', 'hostname') }}"
    purpose: "canary {{ model }}"
    ttl: 3600
  register: activation_lease

- name: Give it back when the activation is over
  activation_lock:
    state: released
    token: "{{ activation_lease.token }}"

- name: Emergency rollback the operator asked for, breaking whatever lease is held
  activation_lock:
    owner: "{{ lookup('env', 'USER') }}"
    purpose: rollback
    force: true
  register: rollback_lease

- name: Right before the change, prove the lease is still ours and extend it
  activation_lock:
    state: renewed
    token: "{{ activation_lease.token }}"
    ttl: 1800

- name: Who holds it?
  activation_lock:
    state: query
  register: current_lease
"""

RETURN = r"""
token:
  description: The token of the lease taken, needed to release it; null in check mode.
  returned: state=acquired
  type: str
  sample: 3f0c8e2a9b1d4c6e8f0a2b4c6d8e0f1a
lease:
  description:
    - The lease taken (O(state=acquired)), found (O(state=query)) or renewed
      (O(state=renewed); in check mode the lease as it is), null when there is none or in
      check mode with O(state=acquired).
    - A lease found but unreadable is C({corrupt, problem, content, modified}).
    - With O(state=query) it also has C(expired).
  returned: state=acquired, state=query or state=renewed
  type: dict
  sample:
    owner: alice@ops1
    purpose: canary patchtst
    host: engine1
    pid: 4242
    token: 3f0c8e2a9b1d4c6e8f0a2b4c6d8e0f1a
    acquired: "2026-01-10T12:00:00Z"
    expires: "2026-01-10T12:30:00Z"
    ttl: 1800
stale:
  description: The expired (or old unreadable) lease that was, or would be, taken over; null.
  returned: state=acquired
  type: dict
  sample: null
broken:
  description: The valid lease that was, or would be, broken with O(force); null.
  returned: state=acquired
  type: dict
  sample: null
held:
  description: True when a lease is held (not expired; an unreadable lease younger than O(ttl)).
  returned: state=query
  type: bool
  sample: false
status:
  description: V(released), or V(not_held) when there was no lease to release.
  returned: state=released
  type: str
  sample: released
holder:
  description: The lease of the activation that holds it, when the task fails because of it.
  returned: failure
  type: dict
path:
  description: The lease file.
  returned: always
  type: str
  sample: /var/lib/model-safety/activation.lease
"""


def main() -> None:
    """Entry point."""
    module = AnsibleModule(
        argument_spec={
            "path": {"type": "path", "default": DEFAULT_LEASE_PATH},
            "state": {
                "type": "str",
                "choices": ["acquired", "released", "query", "renewed"],
                "default": "acquired",
            },
            "owner": {"type": "str"},
            "purpose": {"type": "str", "default": "activation"},
            "ttl": {"type": "int", "default": DEFAULT_TTL},
            # An ownership id, returned and passed back to release the lease: not a secret.
            "token": {"type": "str", "no_log": False},
            "force": {"type": "bool", "default": False},
        },
        required_if=[
            ("state", "acquired", ["owner"]),
            ("state", "released", ["token"]),
            ("state", "renewed", ["token"]),
        ],
        supports_check_mode=True,
    )
    params = module.params
    path, state = params["path"], params["state"]
    if params["force"] and state != "acquired":
        module.fail_json(msg="force breaks a held lease, only with state=acquired", path=path)
    try:
        if state == "query":
            lease = read_lease(path, ttl=params["ttl"])
            module.exit_json(
                changed=False, path=path, lease=lease, held=bool(lease and not lease["expired"])
            )
        if state == "acquired":
            take = check_acquire if module.check_mode else acquire
            taken = take(
                path, params["owner"], params["purpose"], params["ttl"], force=params["force"]
            )
            module.exit_json(changed=True, path=path, **taken)
        if state == "renewed":
            extend = check_renew if module.check_mode else renew
            lease = extend(path, params["token"], params["ttl"])
            module.exit_json(changed=True, path=path, lease=lease)
        give_back = check_release if module.check_mode else release
        status = give_back(path, params["token"])
        module.exit_json(changed=status == "released", path=path, status=status)
    except LeaseHeld as exc:
        module.fail_json(msg=f"another activation holds {path}: {exc}", path=path, holder=exc.lease)
    except LeaseError as exc:
        module.fail_json(msg=f"activation lease {path}: {exc}", path=path, holder=exc.lease)


if __name__ == "__main__":
    main()
