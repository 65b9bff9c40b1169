#!/usr/bin/python
# SPDX-License-Identifier: MIT
"""Ansible module: report what the AI engine on a host is really running (read-only)."""

from __future__ import annotations

import traceback

from ansible.module_utils.basic import AnsibleModule, missing_required_lib
from ansible.module_utils.model_safety.activation.log import DEFAULT_LOG_PATH
from ansible.module_utils.model_safety.ansible_support import (
    SITE_ARGUMENT_SPEC,
    mask_redis_password,
    module_runner,
)
from ansible.module_utils.model_safety.engine.commands import EngineStateError
from ansible.module_utils.model_safety.engine.status import (
    collect_engine_status,
    read_canary_dropin,
)
from ansible.module_utils.model_safety.engine.stop_conditions import (
    DEFAULT_LOG_WINDOW_S,
    check_host,
    validate_log_window,
    validate_stop_paths,
)
from ansible.module_utils.model_safety.engine.stream_stats import DEFAULT_SAMPLE
from ansible.module_utils.model_safety.judgement.thresholds import Thresholds
from ansible.module_utils.model_safety.redis_url import check_db_path

DOCUMENTATION = r"""
---
module: engine_status
short_description: Report the state, proven build and telemetry of the AI engine
description:
  - Reads the systemd state of the engine service, the start-up lines of its current
    invocation from the journal, the git HEAD of its checkout and the recent activity of its
    Redis telemetry stream, and returns them with a list of RV(problems).
  - Read-only, never changes anything; works the same in check mode.
  - Unhealthy findings (service down, build unproven or different from git HEAD, engine not
    ready, no recent events, Redis unreachable) are returned in RV(problems), they do not make
    the module fail; the playbook decides. The module fails only on invalid options, when
    C(systemctl show) itself fails or when the O(canary_dropin) that exists cannot be read.
  - The build is verified fail-closed, RV(build_verified) is true only if the journal of the
    running invocation names exactly one C(AI_ENGINE_BUILD) and it is a prefix of git HEAD.
options:
  checkout:
    description:
      - Absolute path of the engine's git checkout.
      - Trusted as a git C(safe.directory) for this one read only.
    type: path
    default: /home/qt/quantum_trader
  canary_dropin:
    description:
      - A canary drop-in to look for (for example
        C(/etc/systemd/system/quantum-ai-engine.service.d/qsc_canary.conf)); RV(canary_dropin)
        tells whether it exists and which model it installs (its first
        C(QSC_CANARY_MODEL=<name>)), whether or not the running engine has loaded it yet.
      - A normalised absolute path.
    type: path
  sample:
    description:
      - How many of the newest stream entries the event rate is computed from (2 to 10000).
      - With O(stop_paths), also the events whose payload p95 is judged.
    type: int
    default: 200
  stop_paths:
    description:
      - The engine's data and log paths (normalised absolute paths, at most 20). When given,
        the runbook's stop conditions 1-4 are measured and judged in RV(stop_conditions),
        C(restart_loop), C(log_spam), C(disk_growth) since the newest activation in
        O(activation_log), and C(payload_p95) over the newest O(sample) events.
      - A path that does not exist counts 0 bytes.
    type: list
    elements: path
  stop_thresholds:
    description:
      - Overrides of the stop conditions' thresholds, by name (C(max_restarts_24h) 2,
        C(max_log_lines_per_min) 1000, C(max_disk_growth_bytes) 5000000000,
        C(max_payload_p95) 1500, C(stop_min_events) 100); any gate threshold name is
        accepted, an unknown name or a bad value fails the task.
    type: dict
    default: {}
  stop_log_window:
    description: The seconds of the engine's journal over which C(log_spam) counts (1 to 3600).
    type: float
    default: 60
  activation_log:
    description: The activation log; its newest activation record holds the sizes of C(disk_growth).
    type: path
    default: /var/log/quantum/qsc_canary.jsonl
requirements:
  - python3-redis (redis-py 4.3 or later) on the target
notes:
  - Runs as root on the target; the checkout is read with
    C(git -C <checkout> rev-parse --verify HEAD^{commit}) (read-only).
extends_documentation_fragment:
  - action_common_attributes
  - model_safety_attributes
  - model_safety_redis
  - model_safety_unit.service
"""

EXAMPLES = r"""
- name: Read the engine status
  engine_status:
  register: engine_status

- name: Read the status of an engine with a non-default checkout and Redis
  engine_status:
    service: quantum-ai-engine.service
    checkout: /srv/quantum_trader
    redis_url: redis://127.0.0.1:6380/0
    stream: quantum:stream:trade.intent
    sample: 100
  register: engine_status

- name: Read the engine status and which canary the installed drop-in names
  engine_status:
    canary_dropin: /etc/systemd/system/quantum-ai-engine.service.d/qsc_canary.conf
  register: engine_status

- name: Fail closed when anything is not healthy
  ansible.builtin.assert:
    that: engine_status.problems | length == 0
    fail_msg: "{{ engine_status.problems }}"
"""

RETURN = r"""
canary_dropin:
  description: The canary drop-in of O(canary_dropin), as it is on disk.
  returned: when O(canary_dropin) is given
  type: dict
  contains:
    path:
      description: The drop-in's path.
      type: str
    exists:
      description: Whether the file exists.
      type: bool
    model:
      description:
        - The model the drop-in installs, V(unknown) when the file exists without a
          C(QSC_CANARY_MODEL=<name>), null when there is no file.
      type: str
  sample: {path: /etc/systemd/system/quantum-ai-engine.service.d/qsc_canary.conf, exists: true,
    model: patchtst}
service:
  description: The systemd view of the unit (C(systemctl show)).
  returned: always
  type: dict
  contains:
    unit:
      description: The unit name.
      type: str
    load_state:
      description: LoadState, for example C(loaded) or C(not-found).
      type: str
    active_state:
      description: ActiveState, for example C(active).
      type: str
    sub_state:
      description: SubState, for example C(running).
      type: str
    main_pid:
      description: MainPID, 0 when not running.
      type: int
    n_restarts:
      description: NRestarts, automatic restarts since the unit was last started by hand.
      type: int
    invocation_id:
      description: InvocationID of the current run, empty if there is none.
      type: str
    active_enter_timestamp:
      description: ActiveEnterTimestamp as systemd prints it.
      type: str
    active_enter_monotonic_us:
      description: ActiveEnterTimestampMonotonic, in microseconds.
      type: int
    result:
      description: Result, for example C(success).
      type: str
    uptime_s:
      description:
        - Seconds since the current start (from the target's monotonic clock), null when the
          unit is not active.
      type: float
    active_since:
      description:
        - When the current start became active, UTC ISO-8601 with C(Z); null when the unit
          is not active. Usable as the gate's cutover
          (O(ansible.legacy.quality_gate#module:after)).
      type: str
  sample:
    unit: quantum-ai-engine.service
    load_state: loaded
    active_state: active
    sub_state: running
    main_pid: 4242
    n_restarts: 0
    invocation_id: 0123456789abcdef0123456789abcdef
    active_enter_timestamp: Sat 2026-01-10 12:00:00 UTC
    active_enter_monotonic_us: 123456789
    result: success
    uptime_s: 3600.125
    active_since: "2026-01-10T12:00:00.000Z"
startup:
  description: What the current invocation said about itself in the journal.
  returned: always
  type: dict
  contains:
    build:
      description: The single AI_ENGINE_BUILD value, null if missing or contradicted.
      type: str
    builds:
      description: Every AI_ENGINE_BUILD value seen, in order.
      type: list
      elements: str
    voting:
      description: Voting model name to weight (a fraction).
      type: dict
    shadow:
      description: Shadow model name to weight (a fraction).
      type: dict
    canary:
      description: The [CANARY] line as C(model), C(weight) and C(weights); null without one.
      type: dict
    model_file:
      description: The model-file line, null if there is none.
      type: str
    ready:
      description: Whether the engine logged [READY].
      type: bool
    errors:
      description: The [ERROR] and [FATAL] lines.
      type: list
      elements: str
    anomalies:
      description: Unparseable, duplicated or contradicting start-up lines.
      type: list
      elements: str
    shadow_predictions:
      description: Model name to the number of shadow prediction lines.
      type: dict
    conf_caps:
      description: Model name to the confidence cap its [OK] line ends with (C(conf_cap=0.75)).
      type: dict
  sample:
    build: 1a2b3c4
    builds: [1a2b3c4]
    voting: {xgb: 0.28125, lgbm: 0.28125, nhits: 0.3375, patchtst: 0.1}
    shadow: {}
    canary:
      model: patchtst
      weight: 0.1
      weights: {xgb: 0.28125, lgbm: 0.28125, nhits: 0.3375, patchtst: 0.1}
    model_file: >-
      [PatchTST-INIT] Model file: /opt/quantum/models/patchtst.pth
      (present, sha256 0123456789ab)
    ready: true
    errors: []
    anomalies: []
    shadow_predictions: {}
    conf_caps: {}
git:
  description: HEAD of the checkout; both values are null if it could not be read.
  returned: always
  type: dict
  contains:
    sha:
      description: Full 40-hex SHA of HEAD.
      type: str
    short:
      description: Its first 7 characters.
      type: str
  sample:
    sha: 1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d
    short: 1a2b3c4
build_verified:
  description: True only if the journal's single AI_ENGINE_BUILD is a prefix of git HEAD.
  returned: always
  type: bool
  sample: true
stream:
  description: Activity of the telemetry stream; numbers are null when unknown.
  returned: always
  type: dict
  contains:
    stream:
      description: The stream name.
      type: str
    length:
      description: XLEN, 0 for a missing stream, null if Redis failed.
      type: int
    last_id:
      description: Id of the newest entry.
      type: str
    last_event_age_s:
      description: Age of the newest entry in seconds, by the Redis server's clock.
      type: float
    rate_per_s:
      description: Events per second over the newest O(sample) entries.
      type: float
    sampled:
      description: How many entries the rate was computed from.
      type: int
    error:
      description: The Redis error, null if none.
      type: str
  sample:
    stream: quantum:stream:trade.intent
    length: 12000
    last_id: 1768046400123-0
    last_event_age_s: 0.084
    rate_per_s: 10.02
    sampled: 200
    error: null
stop_conditions:
  description:
    - The runbook's stop conditions 1-4, judged (module_utils model_safety.judgement.stop_rules).
    - C(findings) (each C(rule), C(value), C(threshold), C(text), C(blocking)), C(blockers) (the
      sentences that refuse an activation), C(undecided) (too few events, no size recorded at
      an activation), C(errors) (a measure that failed; the preflight refuses on it),
      C(measures) (C(restarts), C(log_lines), C(disk), C(redis), what an activation records as
      its C(stop_baseline)), C(events) (payload p95 of the newest O(sample) events),
      C(baseline) (the newest activation's C(stop_baseline), null when none),
      C(disk_growth) (bytes, null when undecided) and C(trend) (Redis C(used_memory) and the
      stream's length, now and at the activation; reported, never blocking).
  returned: when O(stop_paths) is given
  type: dict
  sample:
    findings:
      - {rule: log_spam, value: 1534.0, threshold: 1000.0, blocking: true,
         text: "Log spam: 1534 journal lines/min (>1000; 1534 lines in 60 s)"}
    blockers: ["Log spam: 1534 journal lines/min (>1000; 1534 lines in 60 s)"]
    undecided: ["disk_growth: no size recorded at the activation"]
    errors: []
    disk_growth: null
problems:
  description: Human-readable findings that are not healthy; empty means healthy.
  returned: always
  type: list
  elements: str
  sample: ["running build 1a2b3c4 does not match git HEAD 9f8e7d6c5b4a"]
"""

try:
    from ansible.module_utils.model_safety.redis_client import StreamError, connect
except ImportError:
    REDIS_IMPORT_ERROR: str | None = traceback.format_exc()
else:
    REDIS_IMPORT_ERROR = None

REDIS_CONNECT_TIMEOUT_S = 3
REDIS_TIMEOUT_S = 5


def main() -> None:
    """Entry point."""
    module = AnsibleModule(
        argument_spec={
            "service": SITE_ARGUMENT_SPEC["unit"],
            **{key: SITE_ARGUMENT_SPEC[key] for key in ("checkout", "redis_url", "stream")},
            "sample": {"type": "int", "default": DEFAULT_SAMPLE},
            "canary_dropin": {"type": "path"},
            "stop_paths": {"type": "list", "elements": "path"},
            "stop_thresholds": {"type": "dict", "default": {}},
            "stop_log_window": {"type": "float", "default": DEFAULT_LOG_WINDOW_S},
            "activation_log": {"type": "path", "default": DEFAULT_LOG_PATH},
        },
        supports_check_mode=True,
    )
    params = module.params
    mask_redis_password(module, params["redis_url"])
    if REDIS_IMPORT_ERROR:
        module.fail_json(msg=missing_required_lib("redis"), exception=REDIS_IMPORT_ERROR)
    try:
        # Refused in the module's own words before the shared connector sees it.
        check_db_path(params["redis_url"])
    except ValueError as exc:
        module.fail_json(msg=f"invalid redis_url: {exc}")
    stop_paths = params["stop_paths"]
    try:
        thresholds = Thresholds().with_overrides(params["stop_thresholds"])
        if stop_paths is not None:
            validate_stop_paths(stop_paths)
            validate_log_window(params["stop_log_window"])
    except (ValueError, EngineStateError) as exc:
        module.fail_json(msg=f"invalid stop conditions: {exc}")
    dropin = {}
    if params["canary_dropin"] is not None:
        try:
            dropin["canary_dropin"] = read_canary_dropin(params["canary_dropin"])
        except EngineStateError as exc:
            module.fail_json(msg=f"cannot read the engine status: {exc}")
    try:
        # The shared connector: with no password in the URL, the environment's is used.
        client = connect(
            params["redis_url"],
            timeout=REDIS_TIMEOUT_S,
            connect_timeout=REDIS_CONNECT_TIMEOUT_S,
        )
    except StreamError as exc:
        module.fail_json(msg=f"invalid redis_url: {exc}")
    try:
        status = collect_engine_status(
            module_runner(module),
            client,
            params["service"],
            params["checkout"],
            params["stream"],
            sample=params["sample"],
        )
        if stop_paths is not None:
            status["stop_conditions"] = check_host(
                module_runner(module),
                client,
                unit=params["service"],
                stream=params["stream"],
                paths=stop_paths,
                n_restarts=status["service"]["n_restarts"],
                activation_log=params["activation_log"],
                thresholds=thresholds,
                sample=params["sample"],
                log_window_s=params["stop_log_window"],
            )
    except EngineStateError as exc:
        module.fail_json(msg=f"cannot read the engine status: {exc}")
    finally:
        client.connection_pool.disconnect()
    module.exit_json(changed=False, **status, **dropin)


if __name__ == "__main__":
    main()
