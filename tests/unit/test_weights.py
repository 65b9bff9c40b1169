"""Canary weights (DESIGN "Canary weights"), their QSC_MODEL_WEIGHTS text and the filters."""

from __future__ import annotations

import math
import random

import pytest
from ansible.errors import AnsibleFilterError

from model_safety.engine.weights import (
    DEFAULT_CANARY_WEIGHT,
    WeightsError,
    canary_weights,
    format_weights,
    parse_weights,
    validate_model_name,
    validate_weight,
    weights_differences,
)
from tests import filter_plugin

BASELINE = {"xgb": 0.25, "lgbm": 0.25, "nhits": 0.30, "patchtst": 0.20}
MODELS = tuple(BASELINE)
EXPECTED = {"xgb": 0.28125, "lgbm": 0.28125, "nhits": 0.3375, "patchtst": 0.10}
EXPECTED_TEXT = "xgb:0.28125,lgbm:0.28125,nhits:0.3375,patchtst:0.1"

BAD_NAMES = ["../x", "a;b", "Upper", "", "a" * 33, "1abc", "a b", "x\n", None, 7]
BAD_WEIGHTS = [
    0,
    0.0,
    1,
    1.0,
    -0.1,
    "abc",
    "",
    "0",
    "1",
    "-0.1",
    "nan",
    "inf",
    True,
    False,
    math.nan,
    math.inf,
    -math.inf,
    1.5,
    None,
    [0.1],
]


# --- the DESIGN example -----------------------------------------------------------------


def test_design_example_exactly() -> None:
    result = canary_weights(BASELINE, "patchtst", 0.10)
    assert result == EXPECTED
    assert {m: round(w, 12) for m, w in result.items()} == EXPECTED
    assert list(result) == list(MODELS)


def test_default_weight_is_0_10() -> None:
    assert DEFAULT_CANARY_WEIGHT == 0.10
    assert canary_weights(BASELINE, "patchtst") == EXPECTED


def test_numeric_string_weight() -> None:
    assert canary_weights(BASELINE, "patchtst", "0.10") == EXPECTED
    assert canary_weights(BASELINE, "patchtst", " 0.1 ") == EXPECTED


def test_design_example_formatted() -> None:
    assert format_weights(canary_weights(BASELINE, "patchtst", 0.10)) == EXPECTED_TEXT


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("weight", [0.01, 0.05, 0.1, 1 / 3, 0.5, 0.123456789, 0.99])
def test_sum_is_one_and_order_kept(model: str, weight: float) -> None:
    result = canary_weights(BASELINE, model, weight)
    assert list(result) == list(MODELS)
    assert abs(math.fsum(result.values()) - 1.0) <= 1e-12
    assert abs(sum(result.values()) - 1.0) <= 1e-12
    assert result[model] == round(weight, 12)
    for name, value in result.items():
        assert value == round(value, 12)
        assert 0.0 < value < 1.0, name


def test_others_scaled_in_proportion() -> None:
    result = canary_weights(BASELINE, "nhits", 0.2)
    assert result["nhits"] == 0.2
    # the others keep their ratios: 0.25 : 0.25 : 0.20
    assert math.isclose(result["xgb"] / result["patchtst"], 1.25, rel_tol=1e-10)
    # equal baselines stay equal, up to one 1e-12 unit of rounding remainder
    assert abs(result["xgb"] - result["lgbm"]) <= 1.5e-12
    assert all(abs(result[m] - 0.8 * BASELINE[m] / 0.7) <= 1.5e-12 for m in MODELS if m != "nhits")


def test_rounding_remainder_absorbed() -> None:
    thirds = {"a": 1 / 3, "b": 1 / 3, "c": 1 / 3}
    for w in (0.1, 0.07, 1 / 7, 0.3):
        result = canary_weights(thirds, "a", w)
        assert abs(math.fsum(result.values()) - 1.0) <= 1e-12
        assert all(value == round(value, 12) for value in result.values())
    many = {f"m{i}": 1 / 7 for i in range(7)}
    result = canary_weights(many, "m3", 0.1)
    assert list(result) == list(many)
    assert abs(sum(result.values()) - 1.0) <= 1e-12
    assert all(abs(v - 0.15) <= 1.5e-12 for m, v in result.items() if m != "m3")


def test_shadow_model_may_be_in_baseline_at_any_weight() -> None:
    baseline = {"xgb": 0.5, "lgbm": 0.3, "patchtst": 0.2}
    assert canary_weights(baseline, "patchtst", 0.2) == baseline


def test_inputs_not_modified() -> None:
    baseline = dict(BASELINE)
    canary_weights(baseline, "patchtst", 0.1)
    assert baseline == BASELINE


# --- validation -------------------------------------------------------------------------


@pytest.mark.parametrize("name", BAD_NAMES)
def test_bad_model_name_refused(name: object) -> None:
    with pytest.raises(WeightsError, match="not a valid model name"):
        validate_model_name(name)
    with pytest.raises(WeightsError, match="not a valid model name"):
        canary_weights(BASELINE, name, 0.1)  # type: ignore[arg-type]


@pytest.mark.parametrize("name", ["x", "xgb", "patch_tst2", "a" * 32])
def test_good_model_name(name: str) -> None:
    assert validate_model_name(name) == name


def test_unknown_model_refused() -> None:
    with pytest.raises(WeightsError, match=r"unknown model 'tft'.*xgb, lgbm, nhits, patchtst"):
        canary_weights(BASELINE, "tft", 0.1)


@pytest.mark.parametrize("weight", BAD_WEIGHTS)
def test_bad_weight_refused(weight: object) -> None:
    with pytest.raises(WeightsError, match="canary weight must be") as info:
        validate_weight(weight)
    assert str(info.value)
    with pytest.raises(WeightsError, match="canary weight must be"):
        canary_weights(BASELINE, "patchtst", weight)


@pytest.mark.parametrize(
    ("weight", "message"),
    [
        (0, r"strictly between 0 and 1 \(0 < w < 1\), got 0"),
        (1, r"strictly between 0 and 1 \(0 < w < 1\), got 1"),
        (-0.1, r"strictly between 0 and 1 \(0 < w < 1\), got -0.1"),
        (1.5, r"strictly between 0 and 1 \(0 < w < 1\), got 1.5"),
        ("abc", r"must be a decimal number, got 'abc'"),
        (True, r"must be a number, got the boolean True"),
        (math.nan, r"must be finite, got nan"),
        (math.inf, r"must be finite, got inf"),
    ],
)
def test_bad_weight_messages(weight: object, message: str) -> None:
    with pytest.raises(WeightsError, match=message):
        validate_weight(weight)


@pytest.mark.parametrize("weight", [0.1, "0.10", "1e-1", ".5", 0.999, 1e-9])
def test_good_weight(weight: object) -> None:
    assert validate_weight(weight) == float(str(weight).strip())


@pytest.mark.parametrize(
    ("baseline", "message"),
    [
        ({}, "baseline weights are empty"),
        ([("xgb", 1.0)], "must be a mapping"),
        ({"patchtst": 1.0}, "only model in the baseline"),
        ({"xgb": 0.5, "patchtst": 0.4}, "must sum to 1"),
        ({"xgb": 0.7, "patchtst": 0.4}, "must sum to 1"),
        ({"xgb": 1.0, "patchtst": 0.0}, "baseline weight of patchtst must be > 0"),
        ({"xgb": 1.2, "patchtst": -0.2}, "baseline weight of patchtst must be > 0"),
        ({"xgb": math.nan, "patchtst": 0.5}, "baseline weight of xgb must be finite"),
        ({"xgb": math.inf, "patchtst": 0.5}, "baseline weight of xgb must be finite"),
        ({"xgb": True, "patchtst": 0.5}, "baseline weight of xgb must be a number"),
        ({"xgb": "abc", "patchtst": 0.5}, "baseline weight of xgb must be a decimal number"),
        ({"Xgb": 0.5, "patchtst": 0.5}, "not a valid model name: 'Xgb'"),
        ({"../x": 0.5, "patchtst": 0.5}, r"not a valid model name: '\.\./x'"),
        ({"xgb": 1e-13, "lgbm": 0.5 - 1e-13, "patchtst": 0.5}, "weight of xgb rounds to 0.0"),
    ],
)
def test_bad_baseline_refused(baseline: object, message: str) -> None:
    with pytest.raises(WeightsError, match=message):
        canary_weights(baseline, "patchtst", 0.1)  # type: ignore[arg-type]


def test_baseline_sum_tolerance() -> None:
    baseline = {"xgb": 0.25, "lgbm": 0.25, "nhits": 0.30, "patchtst": 0.20 + 5e-10}
    assert canary_weights(baseline, "patchtst", 0.1) == EXPECTED


def test_weights_error_is_value_error() -> None:
    assert issubclass(WeightsError, ValueError)


# --- QSC_MODEL_WEIGHTS text -------------------------------------------------------------


def test_parse_design_text() -> None:
    parsed = parse_weights(EXPECTED_TEXT, MODELS)
    assert parsed == EXPECTED
    assert list(parsed) == list(MODELS)


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("weight", [0.01, 0.1, 1 / 3, 0.123456789012345, 0.9])
def test_round_trip(model: str, weight: float) -> None:
    vector = canary_weights(BASELINE, model, weight)
    text = format_weights(vector)
    assert " " not in text
    assert parse_weights(text, MODELS) == vector
    assert format_weights(parse_weights(text, MODELS)) == text


def test_parse_result_follows_models_order() -> None:
    parsed = parse_weights("patchtst:0.1,nhits:0.3375,lgbm:0.28125,xgb:0.28125", MODELS)
    assert list(parsed) == list(MODELS)
    assert parsed == EXPECTED


def test_parse_allows_spaces_like_the_engine() -> None:
    text = " xgb : 0.28125 , lgbm:0.28125,nhits:0.3375,patchtst:0.1 "
    assert parse_weights(text, MODELS) == EXPECTED


def test_format_small_weight_parses() -> None:
    vector = canary_weights(BASELINE, "patchtst", 1e-5)
    assert "patchtst:1e-05" in format_weights(vector)
    assert parse_weights(format_weights(vector), MODELS) == vector


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "expected 'model:weight,...'"),
        ("xgb:0.28125,lgbm:0.28125,nhits:0.3375", "missing models patchtst"),
        (EXPECTED_TEXT + ",tft:0.1", "unknown model 'tft'"),
        (EXPECTED_TEXT + ",xgb:0.1", "model xgb named more than once"),
        ("xgb:0.28125,lgbm:0.28125,nhits:0.3375,patchtst", "expected 'model:weight,...'"),
        ("xgb:0.28125,lgbm:0.28125,nhits:0.3375,patchtst:", "expected 'model:weight,...'"),
        ("xgb:0.28125,lgbm:0.28125,nhits:0.3375,:0.1", "expected 'model:weight,...'"),
        ("xgb:0.28125,lgbm:0.28125,nhits:0.3375,patchtst:0.1,", "expected 'model:weight"),
        ("xgb:0.28125,lgbm:0.28125,nhits:0.3375,patchtst:abc", "must be a decimal number"),
        ("xgb:0.28125,lgbm:0.28125,nhits:0.3375,patchtst:nan", "must be a decimal number"),
        ("xgb:0.28125,lgbm:0.28125,nhits:0.3375,patchtst:0.2", "must sum to 1"),
        ("xgb:0.28125,lgbm:0.28125,nhits:0.5375,patchtst:-0.1", r"must be in \(0, 1\]"),
        ("xgb:0.28125,lgbm:0.28125,nhits:0.4375,patchtst:0", r"must be in \(0, 1\]"),
        ("xgb:0.28125,lgbm:0.28125,nhits:0.3375,Patchtst:0.1", "not a valid model name"),
        ("xgb:0.28125;lgbm:0.28125,nhits:0.3375,patchtst:0.1", "weight of xgb"),
    ],
)
def test_parse_refuses(text: str, message: str) -> None:
    with pytest.raises(WeightsError, match=message):
        parse_weights(text, MODELS)


def test_parse_sum_tolerance() -> None:
    text = "xgb:0.28125,lgbm:0.28125,nhits:0.3375,patchtst:0.1000005"
    assert parse_weights(text, MODELS)["patchtst"] == 0.1000005


@pytest.mark.parametrize(
    ("models", "message"),
    [
        ((), "no models configured"),
        ("xgb", "must be a list of names"),
        (("xgb", "xgb"), "named more than once"),
        (("xgb", "../x"), "not a valid model name"),
    ],
)
def test_parse_refuses_bad_models(models: object, message: str) -> None:
    with pytest.raises(WeightsError, match=message):
        parse_weights("xgb:1", models)  # type: ignore[arg-type]


def test_parse_refuses_non_string() -> None:
    with pytest.raises(WeightsError, match="expected a string"):
        parse_weights(None, MODELS)


@pytest.mark.parametrize(
    ("vector", "message"),
    [
        ({}, "no weights"),
        ({"xgb": 0.5, "lgbm": 0.4}, "must sum to 1"),
        ({"xgb": 1.5, "lgbm": -0.5}, r"must be in \(0, 1\]"),
        ({"xgb": math.nan, "lgbm": 0.5}, "must be finite"),
        ({"a;b": 1.0}, "not a valid model name"),
        ("xgb:1", "expected a mapping"),
    ],
)
def test_format_refuses(vector: object, message: str) -> None:
    with pytest.raises(WeightsError, match=message):
        format_weights(vector)  # type: ignore[arg-type]


# --- the filter plugin ------------------------------------------------------------------


def test_filter_names() -> None:
    filters = filter_plugin.filters("canary_weights")
    assert set(filters) == {
        "model_safety_canary_weights",
        "model_safety_configured_model",
        "model_safety_model_weights",
        "model_safety_weights_differences",
    }


def test_filters_compute_the_design_example() -> None:
    filters = filter_plugin.filters("canary_weights")
    vector = filters["model_safety_canary_weights"](BASELINE, "patchtst", "0.10")
    assert vector == EXPECTED
    assert filters["model_safety_canary_weights"](BASELINE, "patchtst") == EXPECTED
    assert filters["model_safety_model_weights"](vector) == EXPECTED_TEXT


@pytest.mark.parametrize(
    ("model", "weight", "message"),
    [
        ("../x", 0.1, "not a valid model name"),
        ("a;b", 0.1, "not a valid model name"),
        ("tft", 0.1, "unknown model 'tft'"),
        ("patchtst", 0, "canary weight must be"),
        ("patchtst", 1, "canary weight must be"),
        ("patchtst", -0.1, "canary weight must be"),
        ("patchtst", "abc", "canary weight must be"),
    ],
)
def test_filter_errors_are_ansible_filter_errors(model: str, weight: object, message: str) -> None:
    filters = filter_plugin.filters("canary_weights")
    with pytest.raises(AnsibleFilterError, match=message):
        filters["model_safety_canary_weights"](BASELINE, model, weight)


def test_qsc_model_weights_filter_error() -> None:
    filters = filter_plugin.filters("canary_weights")
    with pytest.raises(AnsibleFilterError, match="must sum to 1"):
        filters["model_safety_model_weights"]({"xgb": 0.5})


@pytest.mark.parametrize("seed", range(20))
def test_random_baselines_sum_and_proportions(seed: int) -> None:
    rng = random.Random(seed)
    raw = [rng.uniform(0.01, 1.0) for _ in range(rng.randint(2, 12))]
    baseline = {f"m{i}": value / math.fsum(raw) for i, value in enumerate(raw)}
    model = rng.choice(list(baseline))
    weight = round(rng.uniform(0.001, 0.999), rng.randint(1, 15))
    result = canary_weights(baseline, model, weight)
    assert list(result) == list(baseline)
    assert abs(math.fsum(result.values()) - 1.0) <= 1e-12
    assert result[model] == round(weight, 12)
    others = math.fsum(v for m, v in baseline.items() if m != model)
    for name, value in result.items():
        assert value == round(value, 12)
        if name != model:
            assert abs(value - baseline[name] * (1 - weight) / others) <= 1.5e-12


def test_weights_differences_accepts_the_deployed_vector_within_tolerance():
    deployed = canary_weights(BASELINE, "patchtst", 0.10)
    running = {"xgb": 0.28125, "lgbm": 0.28125, "nhits": 0.3375, "patchtst": 0.1000000001}
    assert weights_differences(running, deployed) == []


def test_weights_differences_names_every_difference():
    deployed = {"xgb": 0.25, "lgbm": 0.25, "nhits": 0.30, "patchtst": 0.20}
    running = {"xgb": 0.25, "lgbm": 0.26, "nhits": 0.30, "other": 0.19}
    assert weights_differences(running, deployed) == [
        "patchtst: missing",
        "other: unexpected",
        "lgbm: 0.26 != 0.25",
    ]
    assert weights_differences(None, deployed)[0].startswith("cannot compare")
    assert weights_differences({**deployed, "xgb": "x"}, deployed) == [
        "xgb must be a decimal number, got 'x'"
    ]


def test_configured_model_names_the_problem():
    assert (
        filter_plugin.filters("canary_weights")["model_safety_configured_model"](BASELINE, "xgb")
        == "xgb"
    )
    for model, message in [("../x", "not a valid model name"), ("foo", "unknown model 'foo'")]:
        with pytest.raises(AnsibleFilterError, match=message):
            filter_plugin.filters("canary_weights")["model_safety_configured_model"](
                BASELINE, model
            )
