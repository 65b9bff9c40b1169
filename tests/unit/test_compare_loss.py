"""Unit tests for the promotion's comparison rule (judgement.compare_loss) and its blocker in
promotion_check and the decision log: a significant loss against the ensemble without the
canary blocks, not decided or better never does, at 1 event/min and at 100 events/s."""

from __future__ import annotations

import math
from typing import Any

import pytest

from model_safety.judgement.compare import mcnemar
from model_safety.judgement.compare_loss import (
    binomial_upper_tail,
    comparison_blocker,
    loss_check,
    min_disagreements,
)
from model_safety.judgement.promotion import promotion_check
from model_safety.judgement.promotion_report import decision_log_markdown
from model_safety.judgement.thresholds import Thresholds
from tests.unit.test_compare import event, window

WEIGHTS = {"xgb": 0.25, "lgbm": 0.25, "nhits": 0.30, "patchtst": 0.20}
VOTERS = ("xgb", "lgbm", "nhits")
OPPOSITE = {"BUY": "SELL", "SELL": "BUY"}
# (seconds between events, horizon): production's 1 event per minute judged over 300 s, and
# the lab's 100 events/s judged over its next event (the horizon and its lag hold one event).
RATES = {"1/min": (60.0, 300.0), "100/s": (0.01, 0.01)}


def price(i: int) -> float:
    """A zigzag of period 10: up for 5 events, down for 5, so that the move from any event
    over 1 or 5 later events is never flat."""
    return 100.0 + min(i % 10, 10 - i % 10)


def direction(i: int, step_s: float, horizon_s: float) -> str:
    """The right call of event i: where the price of the first event >= horizon later went."""
    later = i + math.ceil(horizon_s / step_s - 1e-9)
    return "BUY" if price(later) > price(i) else "SELL"


def series(
    n: int,
    rate: str,
    *,
    canary_wrong: int = 0,
    voters_wrong: int = 0,
    shadow: bool = False,
    priced: bool = True,
    period: int = 10,
) -> list[dict[str, Any]]:
    """n events of one symbol: the voters call the right direction except in the last
    ``voters_wrong`` of every ``period`` events, the canary except in the first
    ``canary_wrong``."""
    step_s, horizon_s = RATES[rate]
    events = []
    for i in range(n):
        right = direction(i, step_s, horizon_s)
        voters = OPPOSITE[right] if i % period >= period - voters_wrong else right
        canary = OPPOSITE[right] if i % period < canary_wrong else right
        breakdown: dict[str, Any] = {name: (voters, 0.6 + 0.03 * (i % 7)) for name in VOTERS}
        entry = {"action": canary, "confidence": 0.55 + 0.04 * (i % 9)}
        breakdown["patchtst"] = (
            {**entry, "shadow": True} if shadow else (canary, entry["confidence"])
        )
        events.append(event(i * step_s, price(i) if priced else None, breakdown, side=voters))
    return events


def check(events: list[dict[str, Any]], rate: str, role: str = "voting", **limits: Any) -> dict:
    thresholds = Thresholds(compare_horizon_s=RATES[rate][1], **limits)
    return promotion_check(window(events), "patchtst", role, thresholds, 100.0, 1.0, WEIGHTS)


def comparison_blockers(result: dict[str, Any]) -> list[str]:
    return [b for b in result["blockers"] if " significantly worse than " in b]


# -- the statistics --------------------------------------------------------------------------


@pytest.mark.parametrize(("k", "n", "p"), [(0, 5, 0.6), (3, 5, 0.6), (5, 5, 0.6), (7, 20, 0.3)])
def test_binomial_upper_tail_is_the_exact_sum(k: int, n: int, p: float) -> None:
    exact = sum(math.comb(n, i) * p**i * (1 - p) ** (n - i) for i in range(k, n + 1))
    assert binomial_upper_tail(k, n, p) == pytest.approx(exact, rel=1e-12)


def test_binomial_upper_tail_bounds_and_large_counts() -> None:
    assert binomial_upper_tail(0, 10, 0.6) == 1.0
    assert binomial_upper_tail(11, 10, 0.6) == 0.0
    # 100 000 disagreements, 60 % expected: 61 % is 6.5 standard deviations away.
    assert 0.0 < binomial_upper_tail(61_000, 100_000, 0.6) < 1e-9
    assert binomial_upper_tail(59_000, 100_000, 0.6) > 1 - 1e-9


@pytest.mark.parametrize(("b", "c"), [(0, 6), (3, 12), (20, 31), (40, 40)])
def test_at_an_even_share_it_is_the_one_sided_mcnemar_test(b: int, c: int) -> None:
    assert binomial_upper_tail(c, b + c, 0.5) == pytest.approx(
        mcnemar(b, c)["p_canary_worse"], rel=1e-9
    )


def test_min_disagreements_is_where_losing_them_all_can_be_significant() -> None:
    assert min_disagreements(0.6, 0.05) == 6  # 0.6 ** 5 = 0.078, 0.6 ** 6 = 0.047
    assert min_disagreements(0.5, 0.05) == 5
    assert min_disagreements(0.6, 0.01) == 10
    assert binomial_upper_tail(6, 6, 0.6) < 0.05 <= binomial_upper_tail(5, 5, 0.6)


# -- the blocker, at both rates --------------------------------------------------------------


@pytest.mark.parametrize("rate", list(RATES))
@pytest.mark.parametrize("role", ["voting", "shadow"])
def test_significantly_worse_blocks(rate: str, role: str) -> None:
    result = check(series(200, rate, canary_wrong=3, shadow=role == "shadow"), rate, role)
    comparison = result["comparison"]
    assert comparison["decided"] and comparison["significant_loss"]
    assert (comparison["b"], comparison["c"]) == (0, 60)
    assert comparison["p_loss"] == pytest.approx(0.6**60, rel=1e-9)
    against = "the ensemble without patchtst" + (
        " (the published side)" if role == "shadow" else ""
    )
    assert comparison["against"] == against
    assert result["verdict"] == "BLOCKED"
    horizon, accuracy = f"{RATES[rate][1]:g}", comparison["canary_accuracy"]
    assert 0.69 < accuracy < 0.71 and comparison["other_accuracy"] == 1.0
    assert comparison_blockers(result) == [
        f"patchtst significantly worse than {against}: wrong in 60 of the 60 calls where they "
        "disagree (b 0 canary right, c 60 canary wrong: 100.0% > 60.0%), one-sided p 4.89e-14 "
        f"< alpha 0.05; accuracy {accuracy:.1%} vs 100.0%, horizon {horizon} s"
    ]
    assert comparison["result"]["model"] == "patchtst"


@pytest.mark.parametrize("rate", list(RATES))
def test_better_is_not_blocked(rate: str) -> None:
    result = check(series(200, rate, voters_wrong=2), rate)
    comparison = result["comparison"]
    # 40 of every 200 less the last events, which have no later price
    assert comparison["c"] == 0 and 38 <= comparison["b"] <= 40
    assert comparison["decided"] and not comparison["significant_loss"]
    assert comparison["p_loss"] == 1.0
    assert comparison_blockers(result) == []


@pytest.mark.parametrize("rate", list(RATES))
def test_losing_a_little_over_half_is_not_a_loss(rate: str) -> None:
    """A healthy member of an ensemble loses a little over half of its disagreements: 55 % of
    2000 is not significantly more than 60 %, though plain McNemar (50 %) would block."""
    events = series(2000, rate, canary_wrong=11, voters_wrong=9, period=20)
    comparison = check(events, rate)["comparison"]
    assert comparison["c"] == 1100 and 890 <= comparison["b"] <= 900
    assert comparison["p_loss"] > 0.99
    assert not comparison["significant_loss"]
    assert mcnemar(comparison["b"], comparison["c"])["p_canary_worse"] < 1e-4


@pytest.mark.parametrize("rate", list(RATES))
def test_too_few_disagreements_is_not_decided_and_not_a_blocker(rate: str) -> None:
    result = check(series(50, rate, canary_wrong=1), rate)  # 5 disagreements, all lost
    comparison = result["comparison"]
    assert (comparison["c"], comparison["b"]) == (5, 0)
    assert not comparison["decided"] and not comparison["significant_loss"]
    assert comparison["reason"] == (
        "5 disagreements with the ensemble without patchtst, 6 needed before a loss can be "
        "significant at alpha 0.05"
    )
    assert comparison_blockers(result) == []
    decision = decision_log_markdown(result, {})
    assert "## Comparison with the ensemble without patchtst: not decided (5 disagreements" in (
        decision
    )
    assert "not a blocker" in decision


@pytest.mark.parametrize("rate", list(RATES))
def test_no_prices_or_no_later_price_is_not_decided(rate: str) -> None:
    unpriced = check(series(200, rate, canary_wrong=3, priced=False), rate)["comparison"]
    assert not unpriced["decided"] and not unpriced["significant_loss"]
    assert unpriced["reason"] == "patchtst made no directional call with an outcome"
    # A horizon longer than the window: no later price yet.
    step_s = RATES[rate][0]
    events = series(200, rate, canary_wrong=3)
    result = promotion_check(
        window(events),
        "patchtst",
        "voting",
        Thresholds(compare_horizon_s=step_s * 500),
        100.0,
        1.0,
        WEIGHTS,
    )
    assert not result["comparison"]["decided"]
    assert comparison_blockers(result) == []


def test_alpha_decides() -> None:
    events = series(200, "100/s", canary_wrong=1)  # 20 lost of 20: p 0.6**20 = 3.7e-5
    assert check(events, "100/s")["comparison"]["significant_loss"]
    assert not check(events, "100/s", compare_alpha=1e-5)["comparison"]["significant_loss"]


def test_the_loss_share_decides() -> None:
    events = series(200, "100/s", canary_wrong=3)  # 60 lost of 60
    assert check(events, "100/s")["comparison"]["significant_loss"]
    # 0.99 ** 60 = 0.55: losing them all is no surprise when 99 % may be lost, and 299
    # disagreements are needed before losing them all could be
    loose = check(events, "100/s", compare_max_loss_share=0.99)["comparison"]
    assert not loose["decided"] and not loose["significant_loss"]
    assert loose["p_loss"] == pytest.approx(0.99**60)
    assert loose["min_disagreements"] == 299
    result = loose["result"]
    assert loss_check(result, "voting", 0.5, 0.05)["p_loss"] == pytest.approx(0.5**60)


def test_the_decision_log_has_the_section_with_the_paired_comparison() -> None:
    result = check(series(200, "1/min", canary_wrong=3), "1/min")
    decision = decision_log_markdown(result, {"to": 0.25})
    assert (
        "## Comparison with the ensemble without patchtst: significantly worse: a hard blocker"
        in decision
    )
    assert (
        "- Disagreements (opposite calls, the price moved over 300 s): 60; the model right in "
        "b 0, wrong in c 60 (100.0% of them)" in decision
    )
    assert "## Paired comparison: `patchtst` against the baseline" in decision


def test_comparison_blocker_only_for_a_significant_loss() -> None:
    assert comparison_blocker({"significant_loss": False}) == []


# -- bad thresholds and weights are refused with a sentence -------------------------------------


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"compare_alpha": 0.0}, "threshold compare_alpha must be in (0, 0.5], got 0.0"),
        ({"compare_alpha": 0.7}, "threshold compare_alpha must be in (0, 0.5], got 0.7"),
        ({"compare_alpha": math.nan}, "threshold compare_alpha must be finite and >= 0, got nan"),
        ({"compare_horizon_s": 0.0}, "threshold compare_horizon_s must be >= 0.001 s"),
        ({"compare_horizon_s": math.inf}, "threshold compare_horizon_s must be finite"),
        ({"compare_horizon_s": -5.0}, "threshold compare_horizon_s must be finite and >= 0"),
        ({"compare_max_loss_share": 0.4}, "compare_max_loss_share must be in [0.5, 1), got 0.4"),
        ({"compare_max_loss_share": 1.0}, "compare_max_loss_share must be in [0.5, 1), got 1.0"),
    ],
)
def test_bad_comparison_thresholds_are_refused(overrides: dict, message: str) -> None:
    with pytest.raises(ValueError) as refused:
        Thresholds().with_overrides(overrides)
    assert message in str(refused.value)


@pytest.mark.parametrize(
    ("weights", "message"),
    [
        ({"xgb": 0.5, "lgbm": 0.5}, "unknown model 'patchtst'"),
        ({**WEIGHTS, "xgb": 0.5}, "baseline weights must sum to 1"),
        ({**WEIGHTS, "xgb": -0.25, "lgbm": 0.75}, "must be > 0"),
        ("xgb:1", "must be a mapping"),
    ],
)
def test_bad_baseline_weights_are_refused(weights: Any, message: str) -> None:
    with pytest.raises(ValueError, match="bad baseline weights: .*" + message):
        promotion_check(
            window(series(20, "100/s")), "patchtst", "voting", Thresholds(), 100.0, 1.0, weights
        )
