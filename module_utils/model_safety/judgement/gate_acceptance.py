"""Whether a gate result lets an activation change a host: checked once more before the backup.

The gate's role (``model_gate``) takes its mode, model and thresholds as variables, and any
variable can be overridden from the command line (``-e model_gate_mode=collection``). So the
activation does not trust that the gate ran as intended: before anything is backed up or
changed, the result itself must show a canary-mode PASS of the very model being activated, at
the default thresholds or at the overrides the operator gave explicitly for this activation
(which then go into the activation record). Each problem is one sentence; an empty list means
the activation may go on. The same holds for a promotion's check (``promotion_check``), which
from a canary step must also show the monitor's ``safe`` for the step, or the operator's
explicit override of it (``monitor_override``).

Pure standard library plus :mod:`.thresholds`; used by the ``model_safety_gate_refusals`` and
``model_safety_promotion_refusals`` filters.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict
from typing import Any

from .thresholds import Thresholds

__all__ = ["gate_refusals", "monitor_refusals", "promotion_refusals", "threshold_refusals"]


def _expected_thresholds(overrides: Any) -> dict[str, Any]:
    if overrides is not None and not isinstance(overrides, Mapping):
        raise ValueError(f"threshold overrides must be a mapping, not {type(overrides).__name__}")
    return asdict(Thresholds().with_overrides(overrides or {}))


def _same(used: Any, expected: Any) -> bool:
    if isinstance(used, bool) or isinstance(expected, bool):
        return used is expected
    if isinstance(used, int | float) and isinstance(expected, int | float):
        return math.isclose(used, expected, rel_tol=1e-12, abs_tol=0.0)
    return used == expected


def threshold_refusals(used: Any, overrides: Any = None) -> list[str]:
    """One sentence per threshold the check ran with that is not the default (or the given
    override of it); also when the result shows no thresholds at all."""
    try:
        expected = _expected_thresholds(overrides)
    except (TypeError, ValueError) as exc:
        return [f"invalid threshold overrides: {exc}"]
    if not isinstance(used, Mapping) or not used:
        return ["the result shows no thresholds: cannot tell what it was judged against"]
    problems = []
    for name, value in expected.items():
        if name not in used:
            problems.append(f"threshold {name} missing from the result (expected {value})")
        elif not _same(used[name], value):
            problems.append(
                f"threshold {name} was {used[name]!r}, not {value!r} "
                + ("(the explicit override)" if name in (overrides or {}) else "(the default)")
            )
    return problems


def gate_refusals(
    result: Any, model: str, overrides: Any = None, feature_reference: Any = None
) -> list[str]:
    """Why the gate ``result`` must not let ``model`` be activated (empty: it may).

    ``overrides`` are the thresholds the operator explicitly asked for this activation;
    ``feature_reference`` the site's feature reference file (empty: none), which the gate
    must have judged the features against (:mod:`.drift`) without a blocker.
    """
    if not isinstance(result, Mapping):
        return [f"no gate result (got {type(result).__name__})"]
    problems = []
    if result.get("mode") != "canary":
        problems.append(f"the gate ran in mode {result.get('mode')!r}, not 'canary'")
    if result.get("verdict") != "PASS":
        problems.append(f"the gate's verdict is {result.get('verdict')!r}, not 'PASS'")
    judged = result.get("model")
    if judged != model:
        problems.append(f"the gate judged {judged or 'every voting model'}, not {model}")
    entry = (result.get("models") or {}).get(model)
    if not isinstance(entry, Mapping) or entry.get("passed") is not True:
        problems.append(f"{model} has no passing entry in the gate result")
    if feature_reference:
        drift = result.get("drift") if isinstance(result.get("drift"), Mapping) else {}
        used = (drift.get("reference") or {}).get("path")
        if used != feature_reference:
            problems.append(
                f"the gate judged the features against {used or 'no reference'}, not "
                f"{feature_reference}"
            )
        elif drift.get("status") not in ("ok", "warn"):
            problems.append(f"the gate's feature drift is {drift.get('status')!r}, not ok")
    return problems + threshold_refusals(result.get("thresholds"), overrides)


def monitor_refusals(check: Mapping[str, Any]) -> list[str]:
    """Why the promotion check ``check`` of a canary step does not show the monitor's ``safe``
    for the step, or an override of it with a reason (empty: it does)."""
    monitor = check.get("monitor")
    if not isinstance(monitor, Mapping):
        return ["the promotion check shows no monitor result for the canary's current step"]
    if monitor.get("result") == "safe" and not monitor.get("refusals"):
        return []
    override = monitor.get("override")
    reason = override.get("reason") if isinstance(override, Mapping) else None
    if isinstance(reason, str) and reason.strip():
        return []
    return [
        f"the monitor's result for the canary's current step is {monitor.get('result')!r}, "
        "not 'safe', and no monitor_override waived it"
    ]


def promotion_refusals(
    check: Any, model: str, current_role: str, overrides: Any = None
) -> list[str]:
    """Why the promotion check ``check`` must not let ``model`` be promoted from
    ``current_role`` (``shadow`` or ``voting``); empty: it may. A promotion takes no
    threshold overrides but ``overrides``, the comparison's (``compare_alpha``,
    ``compare_horizon_s``) that the promotion passed on purpose; from a canary step its gate
    must be a canary-mode PASS of the model and the monitor must have found the step safe (or
    been overridden on purpose)."""
    if not isinstance(check, Mapping):
        return [f"no promotion check result (got {type(check).__name__})"]
    problems = []
    if check.get("verdict") != "GO":
        problems.append(f"the promotion check's verdict is {check.get('verdict')!r}, not 'GO'")
    if check.get("model") != model:
        problems.append(f"the promotion check judged {check.get('model')!r}, not {model}")
    if check.get("current_role") != current_role:
        problems.append(
            f"the promotion check judged the role {check.get('current_role')!r}, "
            f"not {current_role!r}"
        )
    problems += threshold_refusals(check.get("thresholds"), overrides)
    if current_role == "voting":
        gate = check.get("gate")
        problems += [f"gate: {problem}" for problem in gate_refusals(gate, model, overrides)]
        problems += monitor_refusals(check)
    return problems
