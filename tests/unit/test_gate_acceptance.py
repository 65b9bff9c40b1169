"""The check an activation makes of the gate's (and the promotion check's) own result before
the backup: nothing given to the gate role (a mode, a model, thresholds) can let a model
through that a canary-mode gate at the agreed thresholds would stop."""

from __future__ import annotations

from dataclasses import asdict

import pytest

from model_safety.judgement.gate_acceptance import (
    gate_refusals,
    promotion_refusals,
    threshold_refusals,
)
from model_safety.judgement.thresholds import Thresholds
from tests import filter_plugin

DEFAULTS = asdict(Thresholds())


def passing(**changes):
    """A canary-mode PASS of patchtst at the default thresholds, with ``changes``."""
    return {
        "verdict": "PASS",
        "mode": "canary",
        "model": "patchtst",
        "models": {"patchtst": {"passed": True}, "xgb": {"passed": True}},
        "thresholds": dict(DEFAULTS),
        **changes,
    }


def test_a_canary_pass_of_the_model_at_default_thresholds_is_accepted():
    assert gate_refusals(passing(), "patchtst") == []
    assert gate_refusals(passing(), "patchtst", {}) == []


@pytest.mark.parametrize(
    ("result", "refusal"),
    [
        # -e model_gate_mode=collection
        (
            passing(verdict="COLLECTION", mode="collection"),
            "the gate ran in mode 'collection', not 'canary'",
        ),
        (passing(verdict="COLLECTION", mode="collection"), "verdict is 'COLLECTION', not 'PASS'"),
        (passing(verdict="FAIL"), "verdict is 'FAIL', not 'PASS'"),
        # -e model_gate_model=xgb
        (passing(model="xgb"), "the gate judged xgb, not patchtst"),
        (passing(model=None), "the gate judged every voting model, not patchtst"),
        (passing(models={"xgb": {"passed": True}}), "patchtst has no passing entry"),
        (passing(models={"patchtst": {"passed": False}}), "patchtst has no passing entry"),
        # -e model_gate_thresholds='{"max_action_share": 0.99}'
        (
            passing(thresholds={**DEFAULTS, "max_action_share": 0.99}),
            "threshold max_action_share was 0.99, not 0.7 (the default)",
        ),
        (passing(thresholds={}), "the result shows no thresholds"),
        (
            passing(thresholds={k: v for k, v in DEFAULTS.items() if k != "min_spread"}),
            "threshold min_spread missing from the result",
        ),
        ("not a result", "no gate result (got str)"),
    ],
)
def test_anything_but_that_is_refused(result, refusal):
    assert any(refusal in problem for problem in gate_refusals(result, "patchtst")), gate_refusals(
        result, "patchtst"
    )


def test_an_explicit_override_is_accepted_and_only_that_one():
    weaker = passing(thresholds={**DEFAULTS, "min_spread": 0.1})
    assert gate_refusals(weaker, "patchtst", {"min_spread": 0.1}) == []
    assert gate_refusals(weaker, "patchtst", {"min_spread": 0.11}) == [
        "threshold min_spread was 0.1, not 0.11 (the explicit override)"
    ]
    assert gate_refusals(passing(), "patchtst", {"min_spread": 0.1}) == [
        "threshold min_spread was 0.12, not 0.1 (the explicit override)"
    ]


@pytest.mark.parametrize(
    ("overrides", "refusal"),
    [
        ({"no_such": 1}, "invalid threshold overrides: unknown thresholds: no_such"),
        (
            "min_spread=0.1",
            "invalid threshold overrides: threshold overrides must be a mapping, not str",
        ),
    ],
)
def test_bad_overrides_are_refused(overrides, refusal):
    assert threshold_refusals(DEFAULTS, overrides) == [refusal]


def test_a_promotion_takes_only_the_comparison_thresholds_it_was_given():
    chosen = {"compare_alpha": 0.01, "compare_horizon_s": 0.03}
    check = {
        "verdict": "GO",
        "model": "patchtst",
        "current_role": "shadow",
        "thresholds": {**DEFAULTS, **chosen},
    }
    assert promotion_refusals(check, "patchtst", "shadow", chosen) == []
    assert promotion_refusals(check, "patchtst", "shadow") == [
        "threshold compare_alpha was 0.01, not 0.05 (the default)",
        "threshold compare_horizon_s was 0.03, not 300.0 (the default)",
    ]
    assert promotion_refusals(check, "patchtst", "shadow", {"compare_alpha": 0.01}) == [
        "threshold compare_horizon_s was 0.03, not 300.0 (the default)"
    ]
    # from a canary step the gate ran at the same thresholds
    watched = {"result": "safe", "refusals": [], "override": None}
    gate = {**passing(), "thresholds": {**DEFAULTS, **chosen}}
    voting = {**check, "current_role": "voting", "gate": gate, "monitor": watched}
    assert promotion_refusals(voting, "patchtst", "voting", chosen) == []
    assert "gate: threshold compare_alpha was 0.01, not 0.05 (the default)" in (
        promotion_refusals(voting, "patchtst", "voting", {"compare_horizon_s": 0.03})
    )


def test_a_promotion_needs_a_go_of_the_model_from_its_role_and_a_canary_gate():
    shadow = {
        "verdict": "GO",
        "model": "patchtst",
        "current_role": "shadow",
        "thresholds": dict(DEFAULTS),
    }
    assert promotion_refusals(shadow, "patchtst", "shadow") == []
    assert promotion_refusals({**shadow, "verdict": "BLOCKED"}, "patchtst", "shadow") == [
        "the promotion check's verdict is 'BLOCKED', not 'GO'"
    ]
    assert promotion_refusals(shadow, "patchtst", "voting")[0] == (
        "the promotion check judged the role 'shadow', not 'voting'"
    )
    watched = {"result": "safe", "refusals": [], "override": None}
    voting = {**shadow, "current_role": "voting", "gate": passing(), "monitor": watched}
    assert promotion_refusals(voting, "patchtst", "voting") == []
    # From a canary step the monitor's safe (or an override of it) must show too.
    unwatched = {**watched, "result": "missing", "refusals": ["monitor: no completed watch"]}
    assert promotion_refusals({**voting, "monitor": unwatched}, "patchtst", "voting") == [
        "the monitor's result for the canary's current step is 'missing', not 'safe', and no "
        "monitor_override waived it"
    ]
    overridden = {**unwatched, "override": {"reason": "watched by hand", "found": "missing"}}
    assert promotion_refusals({**voting, "monitor": overridden}, "patchtst", "voting") == []
    collection = {**voting, "gate": passing(mode="collection")}
    assert promotion_refusals(collection, "patchtst", "voting") == [
        "gate: the gate ran in mode 'collection', not 'canary'"
    ]
    assert promotion_refusals({**voting, "model": "xgb"}, "patchtst", "voting") == [
        "the promotion check judged 'xgb', not patchtst"
    ]
    assert promotion_refusals(None, "patchtst", "shadow") == [
        "no promotion check result (got NoneType)"
    ]


def test_the_filters_expose_the_same_checks():
    filters = filter_plugin.filters("activation_gate")
    assert filters["model_safety_gate_refusals"](passing(model="xgb"), "patchtst", {}) == [
        "the gate judged xgb, not patchtst"
    ]
    assert filters["model_safety_promotion_refusals"]({}, "patchtst", "shadow")[0].startswith(
        "the promotion check's verdict is None"
    )
