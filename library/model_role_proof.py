#!/usr/bin/python
# SPDX-License-Identifier: MIT
"""Ansible module: prove a model's role (voting or shadow) from telemetry and the trade log."""

from __future__ import annotations

import traceback

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.model_safety.ansible_support import (
    SITE_ARGUMENT_SPEC,
    mask_redis_password,
)

DOCUMENTATION = r"""
---
module: model_role_proof
short_description: Prove that a model really votes, or really stays shadow, after an engine start
description:
  - Reads the engine's telemetry events after a cutover (typically the engine's start) and
    proves that O(model) has its new role in them, then, with a trade log, in the
    O(trade_table) rows written after the cutover.
  - For O(role=voting), every event that reports the model must show it active (an action and a
    confidence, no C(shadow) flag) and counted, C(total_models) equal to the number of active,
    non-shadow models and C(consensus_count) to those of them agreeing with C(side); and at
    least O(min_rows) rows of O(trade_table) must name the model in C(model_source).
  - For O(role=shadow), every event that reports the model active must carry the C(shadow)
    flag set to true and C(total_models) must not count it; no row of O(trade_table) may
    credit it.
  - An event that contradicts the role or breaks the event contract (malformed, fail-closed)
    fails the proof at once, naming its stream id. Events without the model, or with the model
    inactive, prove nothing; more than 5% of them fails the proof.
  - The stream is read incrementally (from the last id seen, 1000 entries at a time) every
    0.5 s until O(min_events) events show the role (and, for a voting model with a trade log,
    O(min_rows) rows credit it) or O(timeout) seconds have passed.
  - With O(plan_only=true), nothing after the cutover is read. The module measures the rate of
    the events before the cutover (after O(rate_since) when given) and returns RV(plan), how
    many events to wait for (at most O(min_events)) and how long (at most O(timeout)), so that
    a healthy start shows them with probability 99.9% at that rate. The proof is then run with
    those figures (role C(ai_engine_verify) does this).
  - Fails with a message listing every reason, and with all the return values, when the proof
    does not hold, Redis fails, or the trade log is missing, lacks its table or is unreadable.
  - Read-only (the trade log is opened with SQLite's C(mode=ro)), never changes anything; works
    the same in check mode.
options:
  model:
    description: The model whose role is proven, a name matching C(^[a-z][a-z0-9_]{0,31}$).
    type: str
    required: true
  role:
    description:
      - V(voting) for a model that must vote (a canary or a promoted model), V(shadow) for one
        that must predict without voting.
    type: str
    choices: [voting, shadow]
    required: true
  after:
    description:
      - The cutover, only later events and rows count. A stream id C(<ms>-<seq>) (exclusive) or
        an ISO-8601 time with C(Z) or an offset (events whose stream id time is later, rows whose
        C(created_at) is later), typically the engine's start time.
    type: str
    required: true
  db_path:
    description:
      - The engine's SQLite trade log on the target (table O(trade_table)), opened read-only.
      - Null (or an empty string) skips the trade log check.
    type: path
    default: /opt/quantum/data/quantum_trader.db
  trade_table:
    description:
      - The trade log's table of trade intents (columns C(id), C(created_at), C(model_source)).
      - A plain SQL identifier (letters, digits and C(_), not starting with a digit, at most 63
        characters); anything else fails the module.
    type: str
    default: trade_intents
  min_events:
    description: How many events after the cutover must show the model in its role (at least 1).
    type: int
    default: 20
  min_rows:
    description:
      - For O(role=voting) with a trade log, how many rows after the cutover must credit the
        model (at least 1).
    type: int
    default: 1
  timeout:
    description:
      - How long to wait, in seconds, for the events and rows (0 to 3600). The stream is always
        read at least once.
      - With O(plan_only=true), the longest wait the plan may choose.
    type: float
    default: 60
  plan_only:
    description:
      - Only plan the proof from the rate before the cutover (RV(plan)); O(min_events) is then
        the most events the plan may require and O(timeout) the longest wait.
      - The rate is the newest 50 events' count less one over their span; with O(rate_since)
        and fewer events since it, their count over the time from O(rate_since) to the
        cutover. An unknown rate (no event) plans the minimum, 1 event within O(timeout).
    type: bool
    default: false
  rate_since:
    description:
      - With O(plan_only=true), only events after this (a stream id or an ISO-8601 time with a
        zone, typically the start before the activation) measure the rate; empty, any.
    type: str
    default: ""
notes:
  - The trade log's C(created_at) is the event's time (C(2026-01-10T12:00:00.123Z)); a row
    counts when it is later than the cutover. A row crediting a shadow model whose
    C(created_at) cannot be read fails the proof, as it may be after the cutover.
  - For a shadow model the trade log is checked once the events are proven; rows the engine
    has not committed yet (it commits at most once a second) are not seen.
requirements:
  - python3-redis (redis-py 4.3 or later) and python3-numpy on the target
extends_documentation_fragment:
  - action_common_attributes
  - model_safety_attributes
  - model_safety_redis
seealso:
  - module: ansible.legacy.journal_proof
  - module: ansible.legacy.quality_gate
"""

EXAMPLES = r"""
- name: Plan the proof from the rate before the start (at most 20 events, at most 900 s)
  model_role_proof:
    model: patchtst
    role: voting
    after: "{{ engine_started_at }}"
    rate_since: "{{ previous_start }}"
    min_events: 20
    timeout: 900
    plan_only: true
  register: proof_plan

- name: Prove the canary votes and trades, from the engine's start on
  model_role_proof:
    model: patchtst
    role: voting
    after: "{{ engine_started_at }}"
    min_events: 50
    timeout: 90
  register: role

- name: Prove the model stays in shadow mode (no trade log check)
  model_role_proof:
    model: patchtst
    role: shadow
    after: "1768046400123-0"
    db_path: null

- name: Against a password-protected Redis
  model_role_proof:
    model: nhits
    role: voting
    after: "2026-01-10T12:00:00Z"
    redis_url: "redis://:{{ vault_redis_password }}@127.0.0.1:6379/0"
"""

RETURN = r"""
proven:
  description: Whether the role is proven (always true when the task succeeds).
  returned: always
  type: bool
  sample: true
role:
  description: The role that was proven, V(voting) or V(shadow).
  returned: always
  type: str
  sample: voting
model:
  description: The model whose role was proven.
  returned: always
  type: str
  sample: patchtst
events:
  description: Events after the cutover that show the model in its role.
  returned: always
  type: int
  sample: 20
missing:
  description: Events after the cutover that do not report the model.
  returned: always
  type: int
  sample: 0
inactive:
  description: Events after the cutover that report the model as inactive (no prediction).
  returned: always
  type: int
  sample: 0
violations:
  description:
    - The first 10 contradictions of the role, each naming its stream id (or trade log row).
  returned: always
  type: list
  elements: str
  sample: ["1768046400123-0: patchtst has the shadow flag, expected voting"]
rows:
  description: Rows of O(trade_table) after the cutover whose C(model_source) names the model.
  returned: always
  type: int
  sample: 12
first_id:
  description: Stream id of the first event read after the cutover (null when none).
  returned: always
  type: str
  sample: 1768046400223-0
last_id:
  description: Stream id of the last event read (null when none).
  returned: always
  type: str
  sample: 1768046402223-0
elapsed:
  description: Seconds spent, from the first read to the last.
  returned: always
  type: float
  sample: 2.004
reads:
  description: How many times the stream was read.
  returned: always
  type: int
  sample: 5
reasons:
  description: Why the role is not proven; empty when it is.
  returned: always
  type: list
  elements: str
  sample: []
plan:
  description:
    - With O(plan_only=true), the plan. C(rate_per_s) (null when unknown), C(rate_events) (the
      events that measured it), C(rate_since), C(events) to wait for, C(wait) (seconds),
      C(expected_s), C(probability) (that a healthy start shows the events within the wait),
      C(poll_s) and C(async_s) (for an async task), C(message) (one line for the operator).
  returned: plan_only
  type: dict
  sample:
    rate_per_s: 0.0167
    rate_events: 50
    rate_since: "2026-01-10T06:00:00.000000Z"
    events: 5
    wait: 900.0
    expected_s: 300.0
    probability: 0.9991
    poll_s: 15
    async_s: 960
    message: "waiting for 5 events showing patchtst voting after ..., up to 900 s (...)"
stream:
  description: The stream that was read.
  returned: always
  type: str
  sample: quantum:stream:trade.intent
db_path:
  description: The trade log that was read, null when skipped.
  returned: always
  type: str
  sample: /opt/quantum/data/quantum_trader.db
"""


def main() -> None:
    """Entry point."""
    module = AnsibleModule(
        argument_spec={
            "model": {"type": "str", "required": True},
            "role": {"type": "str", "choices": ["voting", "shadow"], "required": True},
            "after": {"type": "str", "required": True},
            **{
                key: SITE_ARGUMENT_SPEC[key]
                for key in ("redis_url", "stream", "db_path", "trade_table")
            },
            "min_events": {"type": "int", "default": 20},
            "min_rows": {"type": "int", "default": 1},
            "timeout": {"type": "float", "default": 60.0},
            "plan_only": {"type": "bool", "default": False},
            "rate_since": {"type": "str", "default": ""},
        },
        supports_check_mode=True,
    )
    params = module.params
    params["db_path"] = params["db_path"] or None  # Ansible turns a null path into ""
    mask_redis_password(module, params["redis_url"])
    try:
        from ansible.module_utils.model_safety.engine.commands import EngineStateError
        from ansible.module_utils.model_safety.engine.role_proof import (
            plan_message,
            pre_activation_rate,
            proof_plan,
            prove_model_role,
            role_failure_message,
        )
        from ansible.module_utils.model_safety.redis_client import StreamError, connect
        from redis import RedisError
    except ImportError:
        module.fail_json(
            msg="cannot import model_safety (python3-redis and python3-numpy are required)",
            exception=traceback.format_exc(),
        )
    where = {"stream": params["stream"], "db_path": params["db_path"]}
    try:
        client = connect(params["redis_url"])
    except StreamError as exc:
        module.fail_json(msg=str(exc), **where)
    if params["plan_only"]:
        try:
            rate = pre_activation_rate(
                client, params["stream"], params["after"], params["rate_since"]
            )
            plan = {
                **rate,
                **proof_plan(rate["rate_per_s"], params["timeout"], params["min_events"]),
            }
        except EngineStateError as exc:
            module.fail_json(msg=f"role proof plan impossible: {exc}", **where)
        except (RedisError, OSError) as exc:
            module.fail_json(
                msg=f"redis unreachable or failing: {type(exc).__name__}: {exc}", **where
            )
        finally:
            client.close()
        plan["message"] = plan_message(plan, params["model"], params["role"], params["after"])
        module.exit_json(changed=False, msg=plan["message"], plan=plan, **where)
    try:
        proof = prove_model_role(
            client,
            params["stream"],
            params["model"],
            params["role"],
            params["after"],
            min_events=params["min_events"],
            timeout=params["timeout"],
            db_path=params["db_path"],
            min_rows=params["min_rows"],
            trade_table=params["trade_table"],
        )
    except EngineStateError as exc:
        module.fail_json(msg=f"role proof impossible: {exc}", **where)
    finally:
        client.close()
    if not proof["proven"]:
        module.fail_json(
            msg=role_failure_message(proof, params["stream"], params["db_path"]),
            **where,
            **proof,
        )
    module.exit_json(changed=False, **where, **proof)


if __name__ == "__main__":
    main()
