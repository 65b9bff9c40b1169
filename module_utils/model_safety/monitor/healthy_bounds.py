"""The end of a watch: whether a window's events bound every rule on the healthy side (one-sided
Chernoff upper bounds of each indicator rate, Bonferroni over the rules), and the texts of
violations and missing bounds.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from .evidence import SAFE_CONFIDENCE, DetectorSpec, indicators
from .observations import Observations


def _kl(p: float, q: float) -> float:
    def term(a: float, b: float) -> float:
        return 0.0 if a == 0 else a * math.log(a / b)

    return term(p, q) + term(1 - p, 1 - q)


def upper_bound(ones: int, n: int, confidence: float) -> float:
    """One-sided upper confidence bound of a rate from ``ones`` in ``n`` (Chernoff: the largest
    q with n KL(ones/n || q) <= log(1 / (1 - confidence))); 1.0 without observations."""
    if n <= 0:
        return 1.0
    mean = ones / n
    if mean >= 1:
        return 1.0
    budget = math.log(1 / (1 - confidence)) / n
    low, high = mean, 1.0
    for _ in range(60):
        middle = (low + high) / 2
        if _kl(mean, middle) > budget:
            high = middle
        else:
            low = middle
    return high


def healthy_bounds(
    specs: Sequence[DetectorSpec],
    window: Observations,
    *,
    constant_std: float,
    min_spread: float,
    confidence: float = SAFE_CONFIDENCE,
) -> list[dict[str, Any]]:
    """Per detector over ``window`` (one look, at the end of the watch): ``rate``, ``upper``
    (the bound at ``confidence``, Bonferroni over the detectors), ``bound`` (the rule's) and
    ``safe`` (upper < bound)."""
    columns, _ = indicators(specs, window, [], constant_std=constant_std, min_spread=min_spread)
    each = 1 - (1 - confidence) / len(specs)
    found = []
    for spec in specs:
        column = columns[spec.name]
        column = column[~np.isnan(column)]
        n, ones = int(column.shape[0]), int(np.count_nonzero(column == 1))
        upper = upper_bound(ones, n, each)
        found.append(
            {
                "rule": spec.rule,
                "detector": spec.name,
                "label": spec.label,
                "n": n,
                "rate": ones / n if n else None,
                "upper": round(upper, 4),
                "bound": spec.bound,
                "safe": upper < spec.bound,
            }
        )
    return found


def _pct(value: float | None) -> str:
    return "?" if value is None else f"{100 * value:.1f}%"


_RULE_TEXT = {
    "action_collapse": "Action collapse: {label}={value} (>{bound})",
    "constant_output": "Constant output: {value} of confidences repeat the previous one "
    "within the constant threshold (>{bound})",
    "narrow_spread": "Narrow spread: {value} of confidences {label} (>{bound})",
    "hard_disagreement": "Hard disagreement: {value} BUY vs SELL against the ensemble (>{bound})",
    "redundant": "Redundant: agreement with the ensemble {value} (>{bound})",
    "model_inactive": "Model inactive: no prediction in {value} of events (>{bound})",
}


def violation_text(found: Mapping[str, Any]) -> str:
    """The readable violation, as runbooks read them: "Action collapse: HOLD=78.3% (>70%)",
    with the evidence it was decided on."""
    head = _RULE_TEXT[found["rule"]].format(
        label=found["label"], value=_pct(found["value"]), bound=f"{100 * found['threshold']:g}%"
    )
    return (
        f"{head} over the last {found['events']} events; decided on evidence "
        f"(e-value {math.exp(min(found['log_e'], 700)):.3g}x past its threshold, "
        f"{found['n']} events judged)"
    )


def missing_text(bound: Mapping[str, Any]) -> str:
    """Why one rule is not bounded on the healthy side (an inconclusive end)."""
    if not bound["n"]:
        return f"{bound['detector']}: no events to bound it"
    return (
        f"{bound['detector']}: {bound['label']} rate {_pct(bound['rate'])} over {bound['n']} "
        f"events, upper bound {_pct(bound['upper'])} not below {100 * bound['bound']:g}%"
    )
