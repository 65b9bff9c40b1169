#!/usr/bin/python
# SPDX-License-Identifier: MIT
"""Ansible module: write the fleet status page and the reports it links (on the controller)."""

from __future__ import annotations

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.model_safety.fleet.page import (
    StatusPageError,
    fleet_of,
    write_status_page,
)

DOCUMENTATION = r"""
---
module: status_page
short_description: Write the fleet status page and the reports it links
description:
  - Renders the fleet status page, one self-contained HTML file (inline CSS, no script,
    nothing from the network), from the M(ansible.legacy.engine_status) and
    M(ansible.legacy.status_details) results of every host, and writes it to O(path).
  - Per host it shows the service, the build and whether it is proven, every model's running
    and configured role and weight, the last gate verdict, the monitor's state, the last
    activation and rollback, links to the host's reports and its problems. A host without a
    status (unreachable, a failed task) is shown as such, never left out.
  - The reports whose texts status_details returned
    (O(ansible.legacy.status_details#module:include_text)) are written to
    C(<page stem>_reports/<host>/<name>) beside the page and linked relatively, so the page
    and its reports can be copied together. A host or report name that is not
    plain is not written (the page says so).
  - Every file is written atomically with mode 0640, the report directories with 0750; the
    page's directory must exist.
  - Meant for the controller (C(delegate_to) V(localhost), C(run_once)); standard library
    only.
options:
  path:
    description: The page, a normalised absolute path whose directory exists.
    type: path
    required: true
  hosts:
    description: The hosts, in the order the page lists them.
    type: list
    elements: str
    required: true
  engine:
    description:
      - The engine_status result of each host by name (a failed or unreachable one included);
        a host missing here has no status.
    type: dict
    default: {}
  details:
    description: The status_details result of each host by name.
    type: dict
    default: {}
attributes:
  check_mode:
    support: full
    details: Check mode writes nothing and returns what would be written.
notes:
  - Every run writes the page (C(changed=true)), which carries the time it was made.
extends_documentation_fragment:
  - action_common_attributes
  - model_safety_attributes
"""

EXAMPLES = r"""
- name: Write the status page
  status_page:
    path: /srv/www/fleet.html
    hosts: "{{ ansible_play_hosts_all }}"
    engine: "{{ dict(ansible_play_hosts_all | zip(ansible_play_hosts_all | map('extract', hostvars)
      | map(attribute='engine_status', default={}))) }}"
    details: "{{ dict(ansible_play_hosts_all | zip(ansible_play_hosts_all | map('extract', hostvars)
      | map(attribute='status_details', default={}))) }}"
  run_once: true
  delegate_to: localhost
"""

RETURN = r"""
page:
  description: The page written.
  returned: success
  type: str
  sample: /srv/www/fleet.html
reports:
  description: The report copies written beside it.
  returned: success
  type: list
  elements: str
  sample: [/srv/www/fleet_reports/qlab1/quality_gate_20260110T115800Z.md]
problem_hosts:
  description: The hosts the page shows as not healthy (a problem, or no status), in order.
  returned: success
  type: list
  elements: str
  sample: [qlab2]
"""


def main() -> None:
    """Entry point."""
    module = AnsibleModule(
        argument_spec={
            "path": {"type": "path", "required": True},
            "hosts": {"type": "list", "elements": "str", "required": True},
            "engine": {"type": "dict", "default": {}},
            "details": {"type": "dict", "default": {}},
        },
        supports_check_mode=True,
    )
    params = module.params
    fleet = fleet_of(params["hosts"], params["engine"], params["details"])
    try:
        written = write_status_page(params["path"], fleet, write=not module.check_mode)
    except (StatusPageError, OSError) as exc:
        module.fail_json(msg=f"cannot write the status page: {exc}")
    module.exit_json(
        changed=True,
        page=written["page"],
        reports=written["reports"],
        problem_hosts=written["problem_hosts"],
    )


if __name__ == "__main__":
    main()
