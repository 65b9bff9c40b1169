"""Unit tests for the engine simulator's ensemble vote (hand-computed cases)."""

from ai_engine.ensemble import Decision, counts_with_shadow, model_source, vote
from ai_engine.models import Prediction

WEIGHTS = {"xgb": 0.25, "lgbm": 0.25, "nhits": 0.30, "patchtst": 0.20}
VOTERS = ("xgb", "lgbm", "nhits")
FAILED = Prediction(inactive_reason="exception_in_predict")


def p(action: str, confidence: float) -> Prediction:
    return Prediction(action=action, confidence=confidence)


# DESIGN.md's example: three voters, patchtst in shadow agreeing with the winning side.
DESIGN_EXAMPLE = {
    "xgb": p("BUY", 0.71),
    "lgbm": p("SELL", 0.55),
    "nhits": p("BUY", 0.60),
    "patchtst": p("BUY", 0.62),
}


def test_design_example_shadow_never_counts() -> None:
    predictions = DESIGN_EXAMPLE
    # BUY = .25*.71 + .30*.60 = .3575, SELL = .25*.55 = .1375; / (.25+.25+.30) = .446875
    decision = vote(predictions, WEIGHTS, VOTERS)
    assert decision == Decision("BUY", 0.4469, 2, 3, ("xgb", "nhits"))
    assert model_source(decision) == "xgb,nhits"


def test_a_confident_shadow_model_cannot_move_the_side() -> None:
    predictions = {"xgb": p("BUY", 0.51), "patchtst": p("SELL", 1.0)}
    assert vote(predictions, WEIGHTS, ("xgb",)) == Decision("BUY", 0.51, 1, 1, ("xgb",))


def test_inactive_models_neither_vote_nor_count() -> None:
    predictions = {
        "xgb": p("BUY", 0.71),
        "lgbm": FAILED,
        "nhits": p("BUY", 0.60),
        "patchtst": p("SELL", 0.9),
    }
    # BUY = .3575, SELL = .2 * .9 = .18; active weight .25 + .30 + .20 = .75 -> .47667
    assert vote(predictions, WEIGHTS, ("xgb", "lgbm", "nhits", "patchtst")) == Decision(
        "BUY", 0.4767, 2, 3, ("xgb", "nhits")
    )
    # without the SELL voter: .3575 / .55 = .65
    assert vote(predictions, WEIGHTS, VOTERS) == Decision("BUY", 0.65, 2, 2, ("xgb", "nhits"))


def test_weighted_minority_can_win() -> None:
    predictions = {"xgb": p("SELL", 0.5), "lgbm": p("SELL", 0.5), "nhits": p("BUY", 0.9)}
    # SELL = .25 ; BUY = .27 -> BUY with .27 / .8 = .3375
    assert vote(predictions, WEIGHTS, VOTERS) == Decision("BUY", 0.3375, 1, 3, ("nhits",))


def test_buy_sell_tie_is_hold() -> None:
    predictions = {"xgb": p("BUY", 0.6), "lgbm": p("SELL", 0.6)}
    assert vote(predictions, WEIGHTS, ("xgb", "lgbm")) == Decision("HOLD", 0.0, 0, 2, ())


def test_buy_hold_tie_is_hold() -> None:
    predictions = {"xgb": p("BUY", 0.6), "lgbm": p("HOLD", 0.6), "nhits": p("SELL", 0.1)}
    # BUY = HOLD = .15, SELL = .03 -> HOLD with .15 / .8 = .1875
    assert vote(predictions, WEIGHTS, VOTERS) == Decision("HOLD", 0.1875, 1, 3, ("lgbm",))


def test_tie_with_float_rounding_noise_is_hold() -> None:
    weights = {"a": 0.1, "b": 0.2, "c": 0.3}
    predictions = {"a": p("BUY", 1.0), "b": p("BUY", 1.0), "c": p("SELL", 1.0)}
    # 0.1 + 0.2 != 0.3 in binary floating point, but it is a tie
    assert vote(predictions, weights, ("a", "b", "c")).side == "HOLD"


def test_all_zero_confidence_is_hold() -> None:
    predictions = {"xgb": p("BUY", 0.0), "lgbm": p("HOLD", 0.0)}
    assert vote(predictions, WEIGHTS, ("xgb", "lgbm")) == Decision("HOLD", 0.0, 1, 2, ("lgbm",))


def test_unanimous_full_confidence_is_clipped_to_one() -> None:
    predictions = {m: p("SELL", 1.0) for m in VOTERS}
    assert vote(predictions, WEIGHTS, VOTERS) == Decision("SELL", 1.0, 3, 3, VOTERS)


def test_no_voting_prediction_at_all() -> None:
    empty = Decision("HOLD", 0.0, 0, 0, ())
    assert vote({}, WEIGHTS, VOTERS) == empty
    assert vote({m: FAILED for m in VOTERS}, WEIGHTS, VOTERS) == empty
    assert vote({"patchtst": p("BUY", 0.9)}, WEIGHTS, ()) == empty
    assert model_source(empty) == ""


def test_agreeing_models_keep_model_order() -> None:
    predictions = {"nhits": p("BUY", 0.7), "xgb": p("BUY", 0.6), "lgbm": p("BUY", 0.5)}
    assert model_source(vote(predictions, WEIGHTS, VOTERS)) == "xgb,lgbm,nhits"


def test_counts_with_shadow_add_active_shadow_models_only() -> None:
    predictions = DESIGN_EXAMPLE
    decision = vote(predictions, WEIGHTS, VOTERS)
    assert counts_with_shadow(decision, predictions, frozenset({"patchtst"})) == (3, 4)
    disagreeing = {**predictions, "patchtst": p("SELL", 0.9)}
    assert counts_with_shadow(decision, disagreeing, frozenset({"patchtst"})) == (2, 4)
    inactive = {**predictions, "patchtst": FAILED}
    assert counts_with_shadow(decision, inactive, frozenset({"patchtst"})) == (2, 3)
    assert counts_with_shadow(decision, predictions, frozenset()) == (2, 3)


def test_counts_with_shadow_without_any_voting_prediction() -> None:
    predictions = {"xgb": FAILED, "patchtst": p("HOLD", 0.4)}
    decision = vote(predictions, WEIGHTS, ("xgb",))
    assert decision == Decision("HOLD", 0.0, 0, 0, ())
    assert counts_with_shadow(decision, predictions, frozenset({"patchtst"})) == (1, 1)
