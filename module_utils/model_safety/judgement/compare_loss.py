"""Is the canary significantly worse than the ensemble without it? The promotion's rule over a
paired comparison (:func:`.compare.compare`), issue 16 item 1.

In an operator's words: on the events where the canary and "the ensemble without the canary"
both made a directional call with an outcome, the two either called the same direction (both
right or both wrong) or opposite directions: then exactly one of them was right. Only those
disagreements tell them apart: ``b`` the canary was right, ``c`` the ensemble without it was.

* The ensemble without the canary is, for a voting canary, each event's vote recomputed by the
  engine's rule over the other voting models with the baseline weights (the counterfactual);
  for a shadow model, which never votes, it is the published side.
* loss share = c / (b + c), the share of the disagreements the canary got wrong. Any single
  model loses a little over half of them against an ensemble of several (the ensemble averages
  its members' noise away), so a loss only counts beyond ``compare_max_loss_share`` (60 %).
* p = P(X >= c) for X ~ Binomial(b + c, compare_max_loss_share): how likely this many losses
  are if the canary really lost no more than that share. The canary is significantly worse
  when p < ``compare_alpha`` (0.05). With a share of 0.5 this is the one-sided exact McNemar
  test (:func:`.compare.mcnemar`'s ``p_canary_worse``).
* Not decided (never a blocker, whatever the event rate): no price or no outcome yet, or so
  few disagreements that even losing every one of them could not be significant
  (``share ** n >= alpha``: 6 at 60 % and 0.05).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from .compare import compare
from .gate import pct_pair
from .markdown import pct
from .thresholds import Thresholds

__all__ = [
    "binomial_upper_tail",
    "compare_for_promotion",
    "comparison_blocker",
    "loss_check",
    "min_disagreements",
]

AGAINST = {"voting": "counterfactual", "shadow": "ensemble"}
"""The comparison of :func:`.compare.compare` that is "the ensemble without the canary", by the
canary's current role."""


def binomial_upper_tail(k: int, n: int, p: float) -> float:
    """P(X >= k) for X ~ Binomial(n, p), 0 < p < 1, summed in log space (lgamma) so that it
    stays exact to about 1e-12 for any n."""
    if k <= 0:
        return 1.0
    if k > n:
        return 0.0
    log_p, log_q = math.log(p), math.log1p(-p)
    logs = [
        math.lgamma(n + 1)
        - math.lgamma(i + 1)
        - math.lgamma(n - i + 1)
        + i * log_p
        + (n - i) * log_q
        for i in range(k, n + 1)
    ]
    top = max(logs)
    return min(1.0, math.exp(top) * math.fsum(math.exp(x - top) for x in logs))


def min_disagreements(share: float, alpha: float) -> int:
    """The fewest disagreements at which losing all of them is significant: the least n with
    share ** n < alpha."""
    return math.floor(math.log(alpha) / math.log(share)) + 1


def loss_check(
    result: Mapping[str, Any], current_role: str, max_loss_share: float, alpha: float
) -> dict[str, Any]:
    """The verdict on ``result`` (a :func:`.compare.compare` result) for a canary in
    ``current_role`` (``voting`` or ``shadow``): ``decided``, ``reason`` (why not),
    ``significant_loss`` and the numbers behind it (``b``, ``c``, ``disagreements``,
    ``loss_share``, ``p_loss``, the accuracies of both, ``paired_calls``)."""
    model = result["model"]
    against = next(
        (c for c in result.get("comparisons") or [] if c["kind"] == AGAINST[current_role]),
        None,
    )
    other = result.get("ensemble_without_canary" if current_role == "voting" else "ensemble", {})
    check: dict[str, Any] = {
        "model": model,
        "against": f"the ensemble without {model}"
        + (" (the published side)" if current_role == "shadow" else ""),
        "horizon_s": result["horizon_s"],
        "alpha": alpha,
        "max_loss_share": max_loss_share,
        "min_disagreements": min_disagreements(max_loss_share, alpha),
        "decided": False,
        "significant_loss": False,
        "events": result["events"],
        "events_with_outcome": result["events_with_outcome"],
    }
    if not result["decided"] or against is None:
        return {**check, "reason": result.get("reason") or f"{model} was not compared"}
    b, c = against["b"], against["c"]
    n = b + c
    check.update(
        b=b,
        c=c,
        disagreements=n,
        paired_calls=against["paired_calls"],
        loss_share=c / n if n else None,
        p_loss=binomial_upper_tail(c, n, max_loss_share) if n else 1.0,
        canary_accuracy=result["models"][model]["accuracy"],
        other_accuracy=other.get("accuracy"),
    )
    if n < check["min_disagreements"]:
        reason = (
            f"{n} disagreements with {check['against']}, {check['min_disagreements']} needed "
            f"before a loss can be significant at alpha {alpha:g}"
        )
        return {**check, "reason": reason}
    check.update(decided=True, reason=None, significant_loss=check["p_loss"] < alpha)
    return check


def comparison_blocker(check: Mapping[str, Any]) -> list[str]:
    """The blocker sentence of a significant loss (none otherwise): p, alpha, b/c, the loss
    share against the allowed one, the accuracies."""
    if not check["significant_loss"]:
        return []
    share, limit = pct_pair(check["loss_share"], check["max_loss_share"])
    canary, other = pct(check["canary_accuracy"]), pct(check["other_accuracy"])
    return [
        f"{check['model']} significantly worse than {check['against']}: wrong in {check['c']} "
        f"of the {check['disagreements']} calls where they disagree (b {check['b']} canary "
        f"right, c {check['c']} canary wrong: {share} > {limit}), one-sided p "
        f"{check['p_loss']:.3g} < alpha {check['alpha']:g}; accuracy {canary} vs {other}, "
        f"horizon {check['horizon_s']:g} s"
    ]


def compare_for_promotion(
    window: Any,
    model: str,
    current_role: str,
    weights: Mapping[str, float],
    thresholds: Thresholds,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """(the comparison of ``model`` on ``window`` at the thresholds' horizon and alpha, its
    :func:`loss_check`)."""
    t = thresholds
    result = compare(window, model, weights, horizon_s=t.compare_horizon_s, alpha=t.compare_alpha)
    return result, loss_check(result, current_role, t.compare_max_loss_share, t.compare_alpha)
