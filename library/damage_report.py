#!/usr/bin/python
# SPDX-License-Identifier: MIT
"""Ansible module: what a model did to the trade log while it voted (read-only)."""

from __future__ import annotations

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.model_safety.activation.log import DEFAULT_LOG_PATH
from ansible.module_utils.model_safety.ansible_support import (
    SITE_ARGUMENT_SPEC,
    mask_redis_password,
    returnable,
)

DOCUMENTATION = r"""
---
module: damage_report
short_description: Report what a model did to the trade log while it voted
description:
  - Reads the engine's SQLite trade log O(db_path) (table O(trade_table), opened read-only,
    rows read a page at a time) for the rows created after O(since) (or since the model's
    newest activation, O(since_activation)) and before O(until), and the telemetry stream's
    events after the same time as the price path, the same result as
    C(model-safety damage --model M --json).
  - Counts the rows O(model) took part in (its name is in the row's C(model_source)) and the
    rows it decided (the decision recomputed from the row's C(model_breakdown) with the
    O(baseline) weights and without the model differs), each by symbol and side.
  - Reports the forward return of those decisions in percent, the price of the same symbol at
    least O(horizon) seconds later against the row's price (BUY earns the move, SELL its
    opposite, HOLD nothing), per group and summed; for decided rows also the return without
    the model and the net effect. A later price more than O(max_lag) seconds past the horizon
    (a telemetry stall) counts as no price.
  - When the table has a C(size), C(quantity), C(qty) or C(notional) column, its sum per
    group; otherwise the C(sizes) of RV(participated) and RV(decisive) say C(not recorded).
  - A row whose payload is not a valid event is counted in RV(malformed_rows), never fatal.
    Too few rows is not an error either (RV(decided) is false, with a RV(reason)).
  - Fails only when no report can be made (a bad option, no trade log, Redis unreachable, no
    activation record with O(since_activation)); it never fails on what it found.
  - Read-only, it never changes the engine or its data; runs the same in check mode, where it
    writes no report either.
options:
  model:
    description: The model, a name matching C(^[a-z][a-z0-9_]{0,31}$).
    type: str
    required: true
  since:
    description:
      - Only rows (and events) after this time count, an ISO-8601 time with C(Z) or an offset
        or a stream id C(<ms>-<seq>). One of O(since) and O(since_activation) is required.
    type: str
  since_activation:
    description:
      - Start at the model's newest C(canary_activated), C(shadow_activated) or
        C(promotion_step) record in O(activation_log) (its C(started_at)).
    type: bool
    default: false
  activation_log:
    description: The host's activation log, read with O(since_activation).
    type: path
    default: /var/log/quantum/qsc_canary.jsonl
  until:
    description: Only rows before this ISO-8601 time count (default every row after the start).
    type: str
  db_path:
    description: The engine's SQLite trade log on the target, opened read-only.
    type: path
    default: /opt/quantum/data/quantum_trader.db
  trade_table:
    description:
      - The trade log's table of trade intents (columns C(id), C(created_at),
        C(model_source), C(payload)), a plain SQL identifier.
    type: str
    default: trade_intents
  baseline:
    description:
      - The baseline weights of the voting models (C(model_safety_baseline_weights)), for the
        decision without the model. A voting model without a weight fails the report.
    type: dict
    required: true
  horizon:
    description: Seconds between a decision and the price it is judged against (> 0).
    type: float
    default: 300
  max_lag:
    description: The latest a later price may come after the horizon, in seconds (default the
      horizon).
    type: float
  report_dir:
    description:
      - Directory on the target for the Markdown report and the JSON result
        (C(damage_<UTC time>.md) and C(.json), mode 0640); null writes none. Check mode never
        writes one.
    type: path
requirements:
  - python3-numpy (1.24 or later) and python3-redis (redis-py 4.3 or later) on the target
seealso:
  - module: ansible.legacy.engine_rollback
extends_documentation_fragment:
  - action_common_attributes
  - model_safety_attributes
  - model_safety_redis
"""

EXAMPLES = r"""
- name: What patchtst did since its activation
  damage_report:
    model: patchtst
    since_activation: true
    baseline: "{{ model_safety_baseline_weights }}"
    report_dir: /var/lib/model-safety/reports
  register: damage

- name: Show the summed forward return of the rows it decided
  ansible.builtin.debug:
    msg: "{{ damage.decisive.rows }} rows decided, {{ damage.decisive.return_pct_sum }} %"
"""

RETURN = r"""
model:
  description: The model reported on.
  returned: always
  type: str
  sample: patchtst
since:
  description: The start of the window (exclusive).
  returned: when reported
  type: str
  sample: "2026-01-10T12:00:00.123Z"
until:
  description: The end of the window (exclusive), null for none.
  returned: when reported
  type: str
rows:
  description: trade_intents rows in the window, malformed ones included.
  returned: when reported
  type: int
  sample: 342
malformed_rows:
  description: Rows whose C(created_at) is no time or whose payload is not a valid event.
  returned: when reported
  type: int
  sample: 0
malformed_examples:
  description: The first of them, C(id) and C(reason).
  returned: when reported
  type: list
  elements: dict
stream_events:
  description: Stream events read as price points.
  returned: when reported
  type: int
  sample: 360
size_columns:
  description: The size columns the table has (C(size), C(quantity), C(qty), C(notional)).
  returned: when reported
  type: list
  elements: str
  sample: []
participated:
  description:
    - The rows the model took part in, C(rows), C(buy), C(sell), C(hold), C(with_return),
      C(no_price), C(return_pct_sum), C(return_pct_mean) (null without a return), C(sizes)
      (per size column, or C(not recorded)) and the same per C(groups) entry with its
      C(symbol) and C(side).
  returned: when reported
  type: dict
  sample: {rows: 120, buy: 70, sell: 50, hold: 0, with_return: 115, no_price: 5,
    return_pct_sum: -1.84, return_pct_mean: -0.016, sizes: not recorded, groups: []}
decisive:
  description:
    - The rows the model decided, as RV(participated), with C(compared) (rows with a return
      with and without the model), C(with_model_pct_sum), C(without_model_pct_sum) and
      C(net_pct_sum) (with minus without; a HOLD earns 0).
  returned: when reported
  type: dict
decided:
  description: Whether any decision of the model has a forward return yet.
  returned: always
  type: bool
reason:
  description: Why nothing is decided yet, null when decided.
  returned: when reported
  type: str
activation:
  description: With O(since_activation), the C(start), the C(log) and the activation C(record).
  returned: with since_activation
  type: dict
error:
  description: Why no report could be made.
  returned: failure
  type: str
exit_code:
  description: The CLI's exit code, 0 reported, 2 not.
  returned: always
  type: int
reports:
  description: Paths of the written reports on the target, C(markdown) and C(json).
  returned: when O(report_dir) is set and not in check mode
  type: dict
  sample:
    markdown: /var/lib/model-safety/reports/damage_20260110T120000Z.md
    json: /var/lib/model-safety/reports/damage_20260110T120000Z.json
"""


def main() -> None:
    """Entry point."""
    module = AnsibleModule(
        argument_spec={
            "redis_url": SITE_ARGUMENT_SPEC["redis_url"],
            "stream": SITE_ARGUMENT_SPEC["stream"],
            "db_path": SITE_ARGUMENT_SPEC["db_path"],
            "trade_table": SITE_ARGUMENT_SPEC["trade_table"],
            "model": {"type": "str", "required": True},
            "since": {"type": "str"},
            "since_activation": {"type": "bool", "default": False},
            "activation_log": {"type": "path", "default": DEFAULT_LOG_PATH},
            "until": {"type": "str"},
            "baseline": {"type": "dict", "required": True},
            "horizon": {"type": "float", "default": 300.0},
            "max_lag": {"type": "float"},
            "report_dir": {"type": "path"},
        },
        mutually_exclusive=[("since", "since_activation")],
        supports_check_mode=True,
    )
    params = module.params
    mask_redis_password(module, params["redis_url"])
    try:
        from ansible.module_utils.model_safety.judgement.damage import report_damage
    except ImportError as exc:
        module.fail_json(msg=f"cannot import model_safety (python3-numpy, python3-redis): {exc}")
    result = report_damage(params, report_dir=None if module.check_mode else params["report_dir"])
    if result.get("error"):
        module.fail_json(msg=f"damage report of {params['model']}: {result['error']}",
                         **returnable(result))  # fmt: skip
    module.exit_json(changed=False, **returnable(result))


if __name__ == "__main__":
    main()
