#!/usr/bin/python
# SPDX-License-Identifier: MIT
"""Ansible module: the emergency rollback of one engine host, in one call."""

from __future__ import annotations

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.model_safety.activation.backup_format import (
    DEFAULT_DIRS,
    DEFAULT_FILES,
    DEFAULT_ROOT,
)
from ansible.module_utils.model_safety.activation.backup_restore import restore_diff
from ansible.module_utils.model_safety.activation.lock import DEFAULT_LEASE_PATH, DEFAULT_TTL
from ansible.module_utils.model_safety.activation.log import DEFAULT_LOG_PATH
from ansible.module_utils.model_safety.activation.rollback import (
    CYCLE_CHOICES,
    RollbackFailed,
    RollbackRequest,
    roll_back,
)
from ansible.module_utils.model_safety.ansible_support import (
    RESTART_ARGUMENT_SPEC,
    SITE_ARGUMENT_SPEC,
    module_runner,
)

DOCUMENTATION = r"""
---
module: engine_rollback
short_description: Roll an engine host back to a backup, restart it and prove what runs, in one call
description:
  - The emergency path of one host in one module call (one round trip), in this order.
  - Takes the host's activation lease for O(lease_ttl) seconds (as
    M(ansible.legacy.activation_lock)); a lease held by another activation fails the rollback,
    unless O(break_lock) breaks it. A lease taken over (stale) or broken is named in a warning.
  - Selects the newest backup under O(root), or the one named O(name), and verifies it (as
    M(ansible.legacy.activation_backup) restores one). A corrupt backup is refused, nothing
    changed, naming the newest intact ones (RV(candidates)); it is never skipped for an older
    one. With no backup nothing changes either.
  - Restores it byte-identical (contents, mode, owner) to the managed O(files) and O(dirs) and
    records the restore in the backup's manifest (C(by), C(reason), C(operator)) when it
    changed something.
  - When a file changed (or with O(cycle=always)), runs C(systemctl daemon-reload), stops and
    starts the engine (never C(systemctl restart)) and watches the new invocation for
    O(settle) seconds (as M(ansible.legacy.engine_cycle)). Otherwise the running start is
    proven as it is.
  - Proves from that invocation's journal (as M(ansible.legacy.journal_proof),
    M(ansible.legacy.git_build) and M(ansible.legacy.engine_config)) that C(AI_ENGINE_BUILD) is
    the deployed git SHA of O(checkout), the engine logged C([READY]) and no C([ERROR]) or
    C([FATAL]) line, and runs the model
    configuration the restored env file and drop-ins define. The proof runs within the settle
    period, never before the journal shows READY of that invocation.
  - Appends C(rollback_executed) to the activation log O(log_path) (as
    M(ansible.legacy.activation_log)) and releases the lease.
  - 'Any failure is appended as C(rollback_failed) (its C(failure) names the step) and the lease
    is released; the task then fails with C(rollback of <host> failed at <step>: <why>).'
options:
  host:
    description: The host's name in the records and messages (C(inventory_hostname)).
    type: str
    required: true
  operator:
    description: Who rolls back, recorded in the lease, the backup's manifest and the log.
    type: str
    required: true
  reason:
    description:
      - Why, free text, never refused for its content. The lease keeps it as one line of at
        most 200 characters, after C(rollback:); the records keep it whole.
    type: str
    default: manual rollback
  name:
    description:
      - The backup to restore, by its directory name under O(root) (C(<UTC stamp>_<model>));
        without it, the newest complete backup.
    type: str
  break_lock:
    description: Take the lease even from an activation that holds a valid one (reported).
    type: bool
    default: false
  cycle:
    description:
      - V(changed) stops and starts the engine only when the restore changed a file; V(always)
        also when nothing changed (after an interrupted rollback that restored but did not
        restart).
    type: str
    choices: [changed, always]
    default: changed
  root:
    description: The directory holding the backups.
    type: path
    default: /opt/quantum/backups/model_activations
  files:
    description: The managed files a restore may write or remove.
    type: list
    elements: path
    default: [/etc/quantum/ai-engine.env]
  dirs:
    description: The managed directories whose files a restore may write or remove.
    type: list
    elements: path
    default: [/etc/systemd/system/quantum-ai-engine.service.d]
  baseline:
    description:
      - The configured models in the engine's order with their baseline weights (they sum to
        1), as in C(model_safety_baseline_weights); the proven start must run the model
        configuration the unit's files define with them.
    type: dict
    required: true
  lock_path:
    description: The activation lease file.
    type: path
    default: /var/lib/model-safety/activation.lease
  lease_ttl:
    description: How long the lease lasts (1 to 86400 seconds) if the rollback dies holding it.
    type: int
    default: 1800
  log_path:
    description: The activation log (JSON lines).
    type: path
    default: /var/log/quantum/qsc_canary.jsonl
  log_group:
    description: Group (name or gid) given to the activation log when this rollback creates it.
    type: str
  damage:
    description:
      - Attach the damage report of the model rolled back (the model of the backup's
        manifest) to the rollback, as M(ansible.legacy.damage_report) makes it, from the
        O(damage.trade_table) rows of O(damage.db_path) from the model's newest activation in
        O(log_path) until the new start, with the stream's prices, the decision without the
        model by O(baseline).
      - It is made after the new start is proven (the restore is never delayed) and before the
        C(rollback_executed) record, which carries its summary (C(damage)) and the paths of
        its Markdown and JSON reports (C(damage_reports)), written into
        O(damage.report_dir) (mode 0640). One record per rollback.
      - A damage report that fails never fails or undoes the rollback, it is said in the
        record and a warning (C(damage report failed) and why). Null makes none; check mode
        makes none.
    type: dict
    suboptions:
      db_path:
        description: The engine's SQLite trade log, opened read-only.
        type: path
        default: /opt/quantum/data/quantum_trader.db
      trade_table:
        description: Its table of trade intents, a plain SQL identifier.
        type: str
        default: trade_intents
      redis_url:
        description: The Redis server of the telemetry stream (its password is masked).
        type: str
        default: redis://127.0.0.1:6379/0
      stream:
        description: The telemetry stream (the price path).
        type: str
        default: quantum:stream:trade.intent
      horizon:
        description: Seconds between a decision and the price it is judged against.
        type: float
        default: 300
      max_lag:
        description: The latest a later price may come after the horizon (default the horizon).
        type: float
      report_dir:
        description: The directory on the host for the reports.
        type: path
        required: true
  settle:
    description:
      - Seconds (0 to 3600) the new invocation must then stay the same process (same
        InvocationID, MainPID and NRestarts); a crash loop fails the rollback. The proof runs
        within this period.
    type: float
    default: 2
notes:
  - Commands run as argv lists (C(systemctl daemon-reload), C(systemctl stop <unit>),
    C(systemctl start <unit>), C(systemctl show ...), C(journalctl ... _SYSTEMD_INVOCATION_ID=<id>),
    C(git --no-optional-locks ...)). Standard library only on the target.
  - In check mode nothing changes. The lease is only checked (a held one fails as it would),
    the restore only planned (RV(restored), RV(removed)), the running invocation read
    (RV(start) with C(would_cycle) when it would be stopped and started) and the record
    validated (RV(record)); nothing is proven.
  - A run always appends a record, so it reports C(changed=true), as does check mode.
  - Env file contents are never returned or logged, only paths, checksums and the model
    configuration.
extends_documentation_fragment:
  - model_safety_restart
  - model_safety_restart.proof
  - action_common_attributes
  - model_safety_attributes
  - model_safety_unit
attributes:
  diff_mode:
    support: full
    details: Per file restored or removed, its SHA-256, mode and owner before and after, never
      its contents.
"""

EXAMPLES = r"""
- name: Roll back to the newest backup
  engine_rollback:
    host: "{{ inventory_hostname }}"
    operator: "{{ lookup('ansible.builtin.env', 'USER') }}"
    reason: canary lost money
    baseline: "{{ model_safety_baseline_weights }}"
    files:
      - /etc/quantum/ai-engine.env
      - /etc/systemd/system/quantum-ai-engine.service.d/qsc_canary.conf
  register: rolled_back

- name: Roll back to a backup chosen by name, breaking the lease of a stuck activation
  engine_rollback:
    host: "{{ inventory_hostname }}"
    operator: alice
    name: 20261123T180604.174499Z_patchtst
    break_lock: true
    baseline: "{{ model_safety_baseline_weights }}"
"""

RETURN = r"""
backup:
  description: The backup selected (restored, or refused as corrupt).
  returned: once a backup was selected
  type: str
  sample: /opt/quantum/backups/model_activations/20261123T180604.174499Z_patchtst
model:
  description: The model whose activation the backup preceded (from its manifest).
  returned: once the backup was restored
  type: str
  sample: patchtst
restored:
  description: The files written back (in check mode, that would be).
  returned: once the backup was restored
  type: list
  elements: str
  sample: [/etc/quantum/ai-engine.env]
removed:
  description: The files (and a directory missing at backup time) removed.
  returned: once the backup was restored
  type: list
  elements: str
  sample: [/etc/systemd/system/quantum-ai-engine.service.d/qsc_canary.conf]
unchanged:
  description: The files of the backup that already matched it.
  returned: once the backup was restored
  type: list
  elements: str
  sample: []
files_changed:
  description: Whether the restore wrote or removed a file (in check mode, would).
  returned: once the backup was restored
  type: bool
  sample: true
marked:
  description: Whether the restore was recorded in the backup's manifest.
  returned: once the backup was restored
  type: bool
  sample: true
cycled:
  description: Whether the engine was stopped and started (false in check mode).
  returned: once the backup was restored
  type: bool
  sample: true
start:
  description:
    - The start proven, C(invocation_id), C(previous_invocation_id) (null when nothing was
      restarted), C(main_pid) and C(started_at) (UTC ISO-8601).
    - In check mode, the running invocation (C(invocation_id), C(main_pid), C(n_restarts),
      C(state)) and, when a run would stop and start it, C(would_cycle).
  returned: success
  type: dict
  sample:
    invocation_id: fedcba9876543210fedcba9876543210
    previous_invocation_id: 0123456789abcdef0123456789abcdef
    main_pid: 4242
    started_at: "2026-11-23T18:01:02.123456Z"
proof:
  description:
    - What the start was proven to run, C(invocation_id), C(build) (its C(AI_ENGINE_BUILD)),
      C(git) (as M(ansible.legacy.git_build) returns it), C(startup) (as
      RV(ansible.legacy.journal_proof#module:startup)) and C(config) (the expected model
      configuration, as RV(ansible.legacy.engine_config#module:expected)).
  returned: success, not in check mode
  type: dict
  sample:
    invocation_id: fedcba9876543210fedcba9876543210
    build: 18c7dbb
    git: {sha: 18c7dbb0c1d2e3f405162738495a6b7c8d9e0f1a, short: 18c7dbb, dirty: false, branch: main}
    startup: {build: 18c7dbb, voting: {xgb: 0.3125, lgbm: 0.3125, nhits: 0.375},
      shadow: {patchtst: 0.2}}
    config: {voting: {xgb: 0.3125, lgbm: 0.3125, nhits: 0.375}, shadow: {patchtst: 0.2},
      canary: null}
record:
  description: The record logged, C(rollback_executed), or C(rollback_failed) on failure (in
    check mode, the record that would be).
  returned: when it could be logged
  type: dict
  sample: {event: rollback_executed, host: engine1, model: patchtst, reason: canary lost money}
damage:
  description:
    - With O(damage), the damage report's C(summary) (C(model), C(since), C(until),
      C(rows), C(malformed_rows), C(participated), C(participated_return_pct_sum),
      C(decisive), C(decisive_return_pct_sum), C(decisive_net_pct_sum), C(decided)) and its
      C(reports) (C(markdown), C(json)); or its C(error).
  returned: success, with O(damage), not in check mode
  type: dict
  sample:
    summary: {model: patchtst, rows: 342, participated: 120, decisive: 31,
      participated_return_pct_sum: -1.84, decisive_return_pct_sum: -0.62}
    reports: {markdown: /var/lib/model-safety/reports/damage_20261123T180104Z.md,
      json: /var/lib/model-safety/reports/damage_20261123T180104Z.json}
record_error:
  description: Why the failure could not be logged.
  returned: failure, when the log could not be written
  type: str
lease:
  description: The lease taken over, C(stale) (expired) or C(broken) (O(break_lock)), each null
    when none.
  returned: once the lease was taken
  type: dict
  sample: {stale: null, broken: null}
seconds:
  description: Seconds from the start of the rollback to the end of each phase that ran
    (C(restored), C(proven), C(total)), and how long C(stop), C(start) and the damage report
    (C(damage), with O(damage)) took.
  returned: always
  type: dict
  sample: {restored: 0.05, stop: 0.21, start: 0.31, proven: 2.62, total: 2.64}
step:
  description: The step that failed.
  returned: failure
  type: str
  sample: Restore the backup byte-identical and verify it
problems:
  description: What is wrong with the backup.
  returned: failure on a bad backup
  type: list
  elements: str
candidates:
  description: The newest intact backups (at most 5), newest first, when the selected one is
    corrupt.
  returned: failure on a corrupt backup
  type: list
  elements: str
holder:
  description: The lease of the activation that holds it.
  returned: failure on a held lease
  type: dict
state:
  description: The unit's state when a stop + start failed.
  returned: failure of the stop + start
  type: dict
journal:
  description: The last 50 lines of the new invocation's journal when a stop + start failed.
  returned: failure of the stop + start
  type: list
  elements: str
journal_invocation_id:
  description: The invocation whose journal RV(journal) is, null when there is none.
  returned: failure of the stop + start
  type: str
journal_proof:
  description: What the journal proof found (C(matched), C(missing), C(found_forbidden),
    C(lines_read), C(startup), ...) when it failed.
  returned: failure of the journal proof
  type: dict
differences:
  description: Every way the start differs from the model configuration of its files.
  returned: failure of the configuration proof
  type: list
  elements: str
"""


DAMAGE_OPTIONS = {
    "db_path": SITE_ARGUMENT_SPEC["db_path"],
    "trade_table": SITE_ARGUMENT_SPEC["trade_table"],
    "redis_url": SITE_ARGUMENT_SPEC["redis_url"],
    "stream": SITE_ARGUMENT_SPEC["stream"],
    "horizon": {"type": "float", "default": 300.0},
    "max_lag": {"type": "float"},
    "report_dir": {"type": "path", "required": True},
}


def main() -> None:
    """Entry point."""
    module = AnsibleModule(
        supports_check_mode=True,
        argument_spec={
            "unit": SITE_ARGUMENT_SPEC["unit"],
            **RESTART_ARGUMENT_SPEC,
            "host": {"type": "str", "required": True},
            "operator": {"type": "str", "required": True},
            "reason": {"type": "str", "default": "manual rollback"},
            "name": {"type": "str"},
            "break_lock": {"type": "bool", "default": False},
            "cycle": {"type": "str", "choices": list(CYCLE_CHOICES), "default": "changed"},
            "root": {"type": "path", "default": DEFAULT_ROOT},
            "files": {"type": "list", "elements": "path", "default": list(DEFAULT_FILES)},
            "dirs": {"type": "list", "elements": "path", "default": list(DEFAULT_DIRS)},
            "baseline": {"type": "dict", "required": True},
            "lock_path": {"type": "path", "default": DEFAULT_LEASE_PATH},
            "lease_ttl": {"type": "int", "default": DEFAULT_TTL},
            "log_path": {"type": "path", "default": DEFAULT_LOG_PATH},
            "log_group": {"type": "str"},
            "settle": {"type": "float", "default": 2.0},
            "damage": {"type": "dict", "options": DAMAGE_OPTIONS},
        },
    )
    request = RollbackRequest(**module.params)
    try:
        result = roll_back(module_runner(module), request, check_mode=module.check_mode)
    except RollbackFailed as failure:
        result = failure.result
        warn_all(module, result)
        changes = result.pop("changes", [])
        message = f"rollback of {request.host} failed at {failure.step}: {failure.message}"
        for note in ("record_error", "release_error"):
            if note in result:
                message += f"; {result[note]}"
        module.fail_json(
            msg=message,
            step=failure.step,
            **failure.details,
            **result,
            **diff_of(module, changes),
        )
    warn_all(module, result)
    changes = result.pop("changes")
    module.exit_json(changed=True, **result, **diff_of(module, changes))


def warn_all(module: AnsibleModule, result: dict) -> None:
    """Turn the rollback's warnings into the task's."""
    for warning in result.pop("warnings", []):
        module.warn(warning)


def diff_of(module: AnsibleModule, changes: list) -> dict:
    """``{"diff": ...}`` of the restore's changes with --diff, else nothing."""
    return {"diff": restore_diff(changes)} if module._diff else {}


if __name__ == "__main__":
    main()
