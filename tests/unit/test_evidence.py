"""The statistics of the canary monitor (model_safety.monitor.evidence): observations, per-event
indicators, the e-detectors (mixture likelihood ratio M and Shiryaev-Roberts R, confirmed by new
events), the end-of-watch bounds and the texts runbooks read.

Synthetic events come from seeded numpy generators (``healthy_rows`` and friends, also used by
test_monitor_assess and test_monitor_loop). Besides exact values, the tests check the properties the
monitor's guarantees rest on: an indicator depends only on earlier events (so each detector is a
supermartingale while the model is healthy), a healthy model exactly at a rule's bound is rarely
decided (Monte Carlo), a collapse is decided within the events the issue asks for, and feeding
the same events in one batch or in many gives the same decision and state.
"""

from __future__ import annotations

import copy
import dataclasses
import itertools
import json
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bench.monitor_detection import binomial_upper
from model_safety.monitor import evidence
from model_safety.monitor.evidence import (
    MEDIAN_MEMORY,
    decisions,
    detector_specs,
    evidence_levels,
    indicators,
    new_detectors,
    pending,
    planned_events,
    thresholds,
    update_detectors,
)
from model_safety.monitor.healthy_bounds import (
    healthy_bounds,
    missing_text,
    upper_bound,
    violation_text,
)
from model_safety.monitor.observations import INACTIVE, EvidenceError, Observations
from model_safety.telemetry.events import BUY, HOLD, SELL
from tests.monitor_events import T0_MS, Rows, class_rows, constant_rows, healthy_rows, inactive_rows

SPECS = detector_specs()
BY_NAME = {spec.name: spec for spec in SPECS}
KW = {"constant_std": 0.01, "min_spread": 0.12}
# The default watch: 1 % over 6 h, planned from 1 event/min before the activation.
ALPHA = evidence.DEFAULT_FALSE_ROLLBACK_RATE
PLANNED = planned_events(1 / 60, 6 * 3600, 100.0)


def feed(
    rows: Rows,
    *,
    cuts: Sequence[int] = (),
    alpha: float = ALPHA,
    planned: int = PLANNED,
    specs: Sequence[evidence.DetectorSpec] = SPECS,
    confirm: int = evidence.DEFAULT_CONFIRM_EVENTS,
    state: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The detectors after ``rows``, fed in batches split at ``cuts``."""
    state = state if state is not None else new_detectors(specs, alpha, planned)
    edges = [0, *cuts, len(rows)]
    for low, high in itertools.pairwise(edges):
        obs = Observations.from_rows(rows[low:high])
        state = update_detectors(state, specs, obs, confirm_events=confirm, **KW)
    return state


def first_decision(
    rows: Rows, **options: Any
) -> tuple[int | None, list[dict[str, Any]], dict[str, Any]]:
    """Feed ``rows`` one event at a time: (events fed when the first rule was decided, or
    None; the decisions; the state)."""
    specs = options.get("specs", SPECS)
    state = options.pop("state", None) or feed([], **options)
    for index in range(len(rows)):
        state = feed(rows[index : index + 1], state=state, **options)
        found = decisions(state, specs)
        if found:
            return index + 1, found, state
    return None, [], state


def detectors_of(found: Sequence[dict[str, Any]]) -> list[str]:
    return [item["detector"] for item in found]


def assert_close(left: Any, right: Any, path: str = "state") -> None:
    """Equal, floats up to rounding (infinities exactly)."""
    if isinstance(left, dict):
        assert isinstance(right, dict) and left.keys() == right.keys(), path
        for key in left:
            assert_close(left[key], right[key], f"{path}.{key}")
    elif isinstance(left, list):
        assert isinstance(right, list) and len(left) == len(right), path
        for index, (a, b) in enumerate(zip(left, right, strict=True)):
            assert_close(a, b, f"{path}[{index}]")
    elif isinstance(left, float) and not isinstance(right, int | type(None)):
        assert left == pytest.approx(right, rel=1e-9, abs=1e-9), path
    else:
        assert left == right, path


# -- observations ----------------------------------------------------------------------------------


def test_rows_round_trip() -> None:
    rows = [
        [T0_MS, BUY, 0.5, SELL],
        [T0_MS + 5, INACTIVE, None, HOLD],
        [T0_MS + 9, HOLD, 0.123457, HOLD],
        [T0_MS + 9, SELL, 1.0, BUY],
        [T0_MS + 20, BUY, 0.0, BUY],
    ]
    obs = Observations.from_rows(rows)
    assert obs.n == 5
    assert obs.action.dtype == np.int8 and obs.side.dtype == np.int8
    assert obs.time_ms.dtype == np.int64 and obs.confidence.dtype == np.float64
    assert obs.action.tolist() == [BUY, INACTIVE, HOLD, SELL, BUY]
    assert math.isnan(obs.confidence[1])
    assert obs.rows() == rows
    assert Observations.from_rows(obs.rows()).rows() == rows
    assert json.loads(json.dumps(obs.rows(), allow_nan=False)) == rows
    assert obs.tail(2).rows() == rows[3:]
    assert obs.tail(10).rows() == rows
    assert obs.tail(0).n == 0


def test_rows_round_the_confidence_to_six_digits_and_forget_it_without_a_prediction() -> None:
    obs = Observations.from_rows([[1, BUY, 0.1234567891, BUY], [2, INACTIVE, 0.7, BUY]])
    assert obs.rows() == [[1, BUY, 0.123457, BUY], [2, INACTIVE, None, BUY]]


def test_numpy_integers_and_an_inactive_nan_are_accepted() -> None:
    obs = Observations.from_rows([[np.int64(1), np.int8(BUY), np.float32(0.5), np.int64(0)]])
    assert obs.rows() == [[1, BUY, 0.5, BUY]]
    assert Observations.from_rows([[1, INACTIVE, math.nan, HOLD]]).n == 1


def test_no_rows_are_empty_observations() -> None:
    for empty in ([], (), iter([])):
        obs = Observations.from_rows(empty)
        assert obs.n == 0 and obs.rows() == []
    assert Observations.empty().n == 0


@pytest.mark.parametrize(
    "row",
    [
        [0, 3, 0.5, BUY],
        [0, -2, None, BUY],
        [0, 300, 0.5, BUY],
        [0, BUY, 0.5, 3],
        [0, BUY, 0.5, -1],
        [0, BUY, 1.5, BUY],
        [0, BUY, -0.01, BUY],
        [0, BUY, math.nan, BUY],
        [0, BUY, math.inf, BUY],
        [0, BUY, None, BUY],  # a prediction without a confidence
        [0, 1.5, 0.5, BUY],  # numpy alone would truncate this to SELL
        [0, "1", 0.5, BUY],
        [0, True, 0.5, BUY],
        [0, BUY, 0.5, 2.0],
        [0, BUY, "0.5", BUY],
        [0, BUY, True, BUY],
        [0.5, BUY, 0.5, BUY],
        [None, BUY, 0.5, BUY],
        [0, BUY, 0.5],
        [0, BUY, 0.5, BUY, 7],
        "0123",
        5,
        None,
    ],
    ids=repr,
)
def test_bad_rows_are_refused(row: Any) -> None:
    good = [1, BUY, 0.5, HOLD]
    with pytest.raises(EvidenceError, match="bad observation rows"):
        Observations.from_rows([good, row])


def test_merge_orders_by_time_and_keeps_the_order_of_the_parts_for_equal_times() -> None:
    first = Observations.from_rows([[1, BUY, 0.1, BUY], [3, BUY, 0.3, BUY], [5, BUY, 0.5, BUY]])
    second = Observations.from_rows(
        [[2, SELL, 0.2, SELL], [3, SELL, 0.35, SELL], [4, SELL, 0.4, SELL]]
    )
    merged = Observations.merge([first, Observations.empty(), second])
    assert merged.time_ms.tolist() == [1, 2, 3, 3, 4, 5]
    assert merged.action.tolist() == [BUY, SELL, BUY, SELL, SELL, BUY]
    assert merged.confidence.tolist() == [0.1, 0.2, 0.3, 0.35, 0.4, 0.5]
    assert Observations.merge([second, first]).confidence.tolist() == [
        0.1,
        0.2,
        0.35,
        0.3,
        0.4,
        0.5,
    ]
    assert Observations.merge([]).n == 0
    assert Observations.merge([Observations.empty()]).n == 0


# -- indicators ------------------------------------------------------------------------------------


def indicator_columns(rows: Rows, memory: Sequence[float] = (), **kw: float) -> dict:
    columns, _ = indicators(SPECS, Observations.from_rows(rows), list(memory), **{**KW, **kw})
    return {name: [None if math.isnan(v) else int(v) for v in col] for name, col in columns.items()}


def confidences(values: Sequence[float | None]) -> Rows:
    return [[i, INACTIVE if v is None else HOLD, v, BUY] for i, v in enumerate(values)]


def test_repeat_compares_with_the_previous_prediction() -> None:
    columns = indicator_columns(confidences([0.5, 0.5, 0.505, None, 0.52, 0.52, 0.5301, 0.53]))
    # A repeat stays within 0.01 of the previous, which stayed within 0.01 of the one before:
    # 0.505 (0.005 from 0.5, which repeated 0.5); the inactive event says nothing and is
    # skipped over; 0.52 is 0.015 from 0.505; the second 0.52 follows that jump; 0.5301 is
    # 0.0101 from 0.52; 0.53 is close to 0.5301, which jumped.
    assert columns["constant_output"] == [None, None, 1, None, 0, 0, 0, 0]
    assert columns["model_inactive"] == [0, 0, 0, 1, 0, 0, 0, 0]
    # the memory of an earlier batch holds the previous two predictions
    assert indicator_columns(confidences([0.505]), memory=[0.5, 0.5])["constant_output"] == [1]
    assert indicator_columns(confidences([0.505]), memory=[0.3, 0.5])["constant_output"] == [0]
    assert indicator_columns(confidences([0.505]), memory=[0.5])["constant_output"] == [None]
    # A model alternating between two values never repeats.
    alternating = indicator_columns(confidences([0.3, 0.8] * 10))["constant_output"]
    assert set(alternating[2:]) == {0}


def test_the_band_centre_is_the_median_of_earlier_confidences_only() -> None:
    # Earlier 0.3 and 0.7: their median is 0.5, and 0.7 is 0.2 away from it. With the value
    # itself counted, the median would be 0.7 and the value inside the band.
    columns = indicator_columns(confidences([0.3, 0.7, 0.7]))
    assert columns["narrow_spread"] == [None, 0, 0]
    columns = indicator_columns(confidences([0.5, 0.55, 0.58, 0.5, 0.64]))
    # centres: 0.5 | median(0.5, 0.55) = 0.525 | 0.55 | median(0.5, 0.5, 0.55, 0.58) = 0.525
    assert columns["narrow_spread"] == [None, 1, 1, 1, 0]
    assert indicator_columns(confidences([0.62]), memory=[0.5, 0.55, 0.6])["narrow_spread"] == [0]


def test_the_band_centre_remembers_the_newest_earlier_confidences() -> None:
    # 150 low values then MEDIAN_MEMORY high ones: the median of all earlier values is low,
    # the median of the newest MEDIAN_MEMORY is high.
    history = [0.1] * 150 + [0.9] * MEDIAN_MEMORY
    columns, memory = indicators(
        SPECS, Observations.from_rows(confidences([*history, 0.9])), [], **KW
    )
    assert columns["narrow_spread"][-1] == 1
    assert memory == [0.9] * MEDIAN_MEMORY
    # the same from a memory passed on by an earlier batch
    later, _ = indicators(SPECS, Observations.from_rows(confidences([0.9])), memory, **KW)
    assert later["narrow_spread"].tolist() == [1.0]


def test_a_full_band_memory_leaves_the_value_itself_out() -> None:
    # 51 x 0.3 then 50 x 0.7: the median of these MEDIAN_MEMORY earlier values is 0.3, and the
    # next 0.7 is far from it. Counted in (dropping the oldest), the median would be 0.7.
    history = [0.3] * 51 + [0.7] * 50
    assert len(history) == MEDIAN_MEMORY
    columns = indicator_columns(confidences([*history, 0.7]))
    assert columns["narrow_spread"][-1] == 0
    assert indicator_columns(confidences([0.7]), memory=history)["narrow_spread"] == [0]


def test_indicators_are_predictable_a_later_event_changes_no_earlier_indicator() -> None:
    rng = np.random.default_rng(5)
    rows = healthy_rows(rng, 400) + constant_rows(rng, 60, start_ms=T0_MS + 400_000)
    full = indicator_columns(rows)
    for cut in (1, 7, 100, 101, 102, 250, 433):
        prefix = indicator_columns(rows[:cut])
        assert {name: column[:cut] for name, column in full.items()} == prefix
        # and from the memory of the prefix: the same as in one batch
        _, memory = indicators(SPECS, Observations.from_rows(rows[:cut]), [], **KW)
        rest = indicator_columns(rows[cut:], memory=memory)
        assert {name: column[cut:] for name, column in full.items()} == rest


def test_class_agreement_and_hard_disagreement_indicators() -> None:
    rows = [
        [0, BUY, 0.5, SELL],
        [1, SELL, 0.6, BUY],
        [2, BUY, 0.7, BUY],
        [3, HOLD, 0.8, BUY],
        [4, SELL, 0.4, HOLD],
        [5, INACTIVE, None, SELL],
    ]
    columns = indicator_columns(rows)
    assert columns["action_collapse:BUY"] == [1, 0, 1, 0, 0, None]
    assert columns["action_collapse:SELL"] == [0, 1, 0, 0, 1, None]
    assert columns["action_collapse:HOLD"] == [0, 0, 0, 1, 0, None]
    assert columns["hard_disagreement"] == [1, 1, 0, 0, 0, None]
    assert columns["redundant"] == [0, 0, 1, 0, 0, None]
    assert columns["model_inactive"] == [0, 0, 0, 0, 0, 1]


# -- specs, thresholds, plans ----------------------------------------------------------------------


def test_detector_specs_and_the_budget() -> None:
    assert [spec.name for spec in SPECS] == [
        "action_collapse:BUY",
        "action_collapse:SELL",
        "action_collapse:HOLD",
        "constant_output",
        "narrow_spread",
        "hard_disagreement",
        "redundant",
        "model_inactive",
    ]
    assert [spec.bound for spec in SPECS] == [
        0.7,
        0.7,
        0.7,
        evidence.REPEAT_BOUND,
        evidence.BAND_BOUND,
        0.25,
        0.85,
        0.05,
    ]
    # The rules and the stall share the whole false-rollback rate.
    assert sum(spec.budget for spec in SPECS) + evidence.STALL_BUDGET == pytest.approx(1.0)
    assert sum(spec.budget for spec in SPECS if spec.rule == "action_collapse") == (
        pytest.approx(evidence.RULE_BUDGET["action_collapse"])
    )
    custom = {s.name: s for s in detector_specs(max_action_share=0.8, max_inactive_share=0.1)}
    assert custom["action_collapse:SELL"].bound == 0.8
    assert custom["model_inactive"].bound == 0.1
    assert detector_specs(min_spread=0.2)[4].label == "within +-0.1 of the median"


@pytest.mark.parametrize(
    "changes",
    [{"max_action_share": 1.0}, {"max_inactive_share": 0.0}, {"redundant_agreement": 1.2}],
)
def test_a_bound_outside_0_1_is_refused(changes: dict[str, float]) -> None:
    with pytest.raises(EvidenceError, match="the bound must be in"):
        detector_specs(**changes)


def test_thresholds() -> None:
    assert thresholds(0.01, 720) == (math.log(200), math.log(144_000))
    assert thresholds(0.5, 0) == (math.log(4), math.log(4))
    m, r = thresholds(0.001, 10_000)
    assert r - m == pytest.approx(math.log(10_000))


@pytest.mark.parametrize(
    ("rate", "duration", "fallback", "planned"),
    [
        (1 / 60, 6 * 3600, 100.0, 720),  # 1/min for 6 h: 360 expected, twice that planned
        (10.0, 6 * 3600, 100.0, 432_000),
        (1 / 3600, 3600, 100.0, 100),  # at least MIN_PLANNED_EVENTS
        (None, 3600, 2.0, 14_400),
        (0.0, 3600, 2.0, 14_400),
        (-1.0, 3600, 2.0, 14_400),
        (math.nan, 3600, 2.0, 14_400),
        (math.inf, 3600, 2.0, 14_400),
    ],
)
def test_planned_events(rate: float | None, duration: float, fallback: float, planned: int) -> None:
    assert planned_events(rate, duration, fallback) == planned


@pytest.mark.parametrize("alpha", [0, 1, -0.1, 1.5, "0.1", None, math.nan])
def test_new_detectors_refuse_a_bad_rate(alpha: Any) -> None:
    with pytest.raises(EvidenceError, match="false-rollback rate"):
        new_detectors(SPECS, alpha, 100)


@pytest.mark.parametrize("confirm", [-1, True, 1.5, "3"])
def test_update_refuses_a_bad_confirm_events(confirm: Any) -> None:
    with pytest.raises(EvidenceError, match="confirm_events"):
        update_detectors(
            new_detectors(SPECS, 0.01, 100),
            SPECS,
            Observations.empty(),
            confirm_events=confirm,
            **KW,
        )


def test_fresh_detectors_are_far_from_deciding() -> None:
    state = new_detectors(SPECS, ALPHA, PLANNED)
    levels = evidence_levels(state, SPECS)
    for spec in SPECS:
        assert levels[spec.name] == pytest.approx(-math.log(2 / (ALPHA * spec.budget)), abs=1e-3)
    assert pending(state) == [] and decisions(state, SPECS) == []
    assert json.loads(json.dumps(state)) == state


# -- deciding a collapse ---------------------------------------------------------------------------


def test_a_total_collapse_from_the_start_is_decided_within_30_events() -> None:
    rng = np.random.default_rng(1)
    fed, found, state = first_decision(class_rows(rng, 100, BUY))
    assert fed is not None and fed <= 30
    (decided,) = found
    # M crosses at the 24th BUY (the 0.97 alternative: 24 x log(0.991/0.7) - log(1/0.4) is
    # past log(2 / (0.01 x 0.15))), confirmed by 3 new events.
    assert (fed, decided["detector"], decided["rule"]) == (
        27,
        "action_collapse:BUY",
        "action_collapse",
    )
    assert (decided["crossed_n"], decided["n"], decided["onset_n"]) == (24, 27, 0)
    assert (decided["events"], decided["value"], decided["threshold"]) == (27, 1.0, 0.7)
    assert decided["statistic"] == "M" and decided["log_e"] > 0
    assert state["detectors"]["action_collapse:BUY"]["n"] == 27


@pytest.mark.parametrize("action", [BUY, SELL, HOLD])
def test_each_class_has_its_own_detector(action: int) -> None:
    fed, found, _ = first_decision(class_rows(np.random.default_rng(action), 60, action))
    label = ("BUY", "SELL", "HOLD")[action]
    assert fed == 27
    assert detectors_of(found) == [f"action_collapse:{label}"]
    assert found[0]["label"] == label


def test_constant_output_is_decided_within_30_events_from_the_start() -> None:
    fed, found, _ = first_decision(constant_rows(np.random.default_rng(2), 60))
    assert fed is not None and fed <= 30
    assert detectors_of(found) == ["constant_output"]
    assert found[0]["value"] == 1.0


def test_constant_output_after_a_healthy_start_is_decided_within_30_events() -> None:
    rng = np.random.default_rng(3)
    rows = healthy_rows(rng, 400) + constant_rows(rng, 100, start_ms=T0_MS + 400_000)
    fed, found, _ = first_decision(rows)
    assert fed is not None and 400 < fed <= 430
    (decided,) = found
    assert decided["detector"] == "constant_output"
    # Decided by the change statistic R (M has long fallen with the healthy start), with the
    # onset estimated where the change happened.
    assert decided["statistic"] == "R"
    assert 395 <= decided["onset_n"] <= 401
    assert decided["value"] >= 0.9


def test_a_collapse_after_a_healthy_start_is_decided_by_R_and_dated() -> None:
    rng = np.random.default_rng(4)
    rows = healthy_rows(rng, 300) + class_rows(rng, 200, HOLD, start_ms=T0_MS + 300_000)
    fed, found, _ = first_decision(rows)
    assert fed is not None and 300 < fed <= 360
    (decided,) = found
    assert (decided["detector"], decided["statistic"]) == ("action_collapse:HOLD", "R")
    assert 290 <= decided["onset_n"] <= 301
    assert decided["value"] > 0.9


@pytest.mark.parametrize(
    ("name", "rows", "within"),
    [
        # a band of +-0.03 around 0.6 that rarely repeats within 0.01
        (
            "narrow_spread",
            lambda rng: [
                [T0_MS + i, int(rng.integers(0, 3)), float(rng.uniform(0.57, 0.63)), HOLD]
                for i in range(300)
            ],
            120,
        ),
        (
            "hard_disagreement",
            lambda rng: [
                [T0_MS + i, a, float(rng.uniform(0.3, 0.9)), SELL if a == BUY else BUY]
                for i, a in enumerate(rng.integers(0, 2, 300).tolist())
            ],
            60,
        ),
        (
            "redundant",
            lambda rng: [
                [T0_MS + i, a, float(rng.uniform(0.3, 0.9)), a]
                for i, a in enumerate(rng.integers(0, 3, 300).tolist())
            ],
            80,
        ),
        (
            "model_inactive",
            lambda rng: [
                [T0_MS + i, INACTIVE, None, HOLD]
                if i % 2
                else [T0_MS + i, int(rng.integers(0, 3)), float(rng.uniform(0.3, 0.9)), HOLD]
                for i in range(300)
            ],
            40,
        ),
    ],
)
def test_every_rule_is_decided_on_its_own_evidence(name: str, rows: Any, within: int) -> None:
    fed, found, _ = first_decision(rows(np.random.default_rng(9)))
    assert fed is not None and fed <= within, (fed, found)
    assert detectors_of(found) == [name]


def test_too_few_events_decide_nothing() -> None:
    # 20 events of a total collapse are evidence, not yet a decision: nothing is decided and
    # nothing waits for confirmation.
    state = feed(class_rows(np.random.default_rng(6), 20, SELL))
    assert decisions(state, SPECS) == [] and pending(state) == []
    assert all(level < 0 for level in evidence_levels(state, SPECS).values())


def test_a_healthy_model_is_never_decided() -> None:
    rng = np.random.default_rng(8)
    state = feed(healthy_rows(rng, 3000), cuts=range(100, 3000, 100))
    assert decisions(state, SPECS) == [] and pending(state) == []
    assert state["events"] == 3000


# -- confirmation by new events --------------------------------------------------------------------


@pytest.mark.parametrize("confirm", [0, 1, 3, 10])
def test_a_crossing_is_confirmed_by_confirm_events_new_events(confirm: int) -> None:
    rows = class_rows(np.random.default_rng(10), 60, BUY)
    fed, found, _ = first_decision(rows, confirm=confirm)
    assert fed == 24 + confirm
    assert (found[0]["crossed_n"], found[0]["n"]) == (24, 24 + confirm)


def test_a_pending_crossing_waits_for_new_events_not_for_more_looks() -> None:
    rows = class_rows(np.random.default_rng(11), 60, BUY)
    state = feed(rows[:24])
    assert pending(state) == ["action_collapse:BUY"]
    assert state["detectors"]["action_collapse:BUY"]["crossed_n"] == 24
    assert evidence_levels(state, SPECS)["action_collapse:BUY"] >= 0
    assert decisions(state, SPECS) == []
    for _ in range(5):  # checks that read nothing new judge nothing again
        state = feed([], state=state)
    assert decisions(state, SPECS) == [] and pending(state) == ["action_collapse:BUY"]
    state = feed(rows[24:26], state=state)
    assert decisions(state, SPECS) == []
    state = feed(rows[26:27], state=state)
    assert detectors_of(decisions(state, SPECS)) == ["action_collapse:BUY"]
    assert pending(state) == []


def test_a_statistic_that_falls_back_clears_the_crossing() -> None:
    rows = class_rows(np.random.default_rng(12), 24, BUY)
    state = feed(rows)
    assert pending(state) == ["action_collapse:BUY"]
    # One SELL: the strongest alternative (99.1 % BUY) loses most of its evidence.
    state = feed([[T0_MS + 30_000, SELL, 0.5, HOLD]], state=state)
    assert pending(state) == [] and decisions(state, SPECS) == []
    detector = state["detectors"]["action_collapse:BUY"]
    assert (detector["crossed_n"], detector["run"]) == (None, 0)
    # More BUYs cross again; the decision counts its confirmation from the new crossing.
    more = class_rows(np.random.default_rng(13), 60, BUY, start_ms=T0_MS + 40_000)
    fed, found, _ = first_decision(more, state=state)
    assert fed is not None
    assert found[0]["crossed_n"] == found[0]["n"] - 3 > 25


# -- the error rate --------------------------------------------------------------------------------


def false_alarm_share(
    p: float, *, runs: int, n: int, alpha: float, confirm: int, seed: int = 17
) -> float:
    """The share of ``runs`` healthy runs of ``n`` events (BUY in a share ``p``) whose BUY
    detector (all of ``alpha`` to itself, planned for ``n`` events) decided."""
    spec = dataclasses.replace(BY_NAME["action_collapse:BUY"], budget=1.0)
    rng = np.random.default_rng(seed)
    alarms = 0
    for _ in range(runs):
        action = np.where(rng.random(n) < p, BUY, SELL).astype(np.int8)
        obs = Observations(
            action, np.full(n, 0.5), np.full(n, HOLD, np.int8), np.arange(n, dtype=np.int64)
        )
        state = update_detectors(
            new_detectors((spec,), alpha, n), (spec,), obs, confirm_events=confirm, **KW
        )
        alarms += bool(decisions(state, (spec,)))
    return alarms / runs


def test_a_model_exactly_at_the_bound_is_rarely_decided() -> None:
    # The worst healthy model: BUY in exactly 70 % of its events. Ville's inequality (M) and
    # Doob's (R over the planned events) bound the chance of ever deciding by alpha; the
    # confirmation by new events only removes alarms.
    alpha = 0.2
    unconfirmed = false_alarm_share(0.7, runs=300, n=300, alpha=alpha, confirm=0)
    confirmed = false_alarm_share(0.7, runs=300, n=300, alpha=alpha, confirm=3)
    assert unconfirmed <= alpha
    assert confirmed <= unconfirmed and confirmed <= alpha / 2
    # A healthier model is decided even less often; a collapsed one nearly always.
    assert false_alarm_share(0.6, runs=200, n=300, alpha=alpha, confirm=3) <= 0.02
    assert false_alarm_share(0.85, runs=100, n=300, alpha=alpha, confirm=3) >= 0.9


# -- batch invariance ------------------------------------------------------------------------------


def mixed_rows(seed: int) -> Rows:
    """Healthy, then a collapse of a kind chosen by the seed (or none), with inactive events."""
    rng = np.random.default_rng(seed)
    rows = healthy_rows(rng, 250)
    later = T0_MS + 250_000
    kind = seed % 4
    if kind == 0:
        rows += constant_rows(rng, 80, start_ms=later)
    elif kind == 1:
        rows += class_rows(rng, 80, HOLD, start_ms=later)
    elif kind == 2:
        rows += healthy_rows(rng, 80, start_ms=later)
    else:
        rows += class_rows(rng, 80, SELL, share=0.95, start_ms=later)
    for index in rng.choice(len(rows), 12, replace=False).tolist():
        rows[index] = [rows[index][0], INACTIVE, None, rows[index][3]]
    return rows


def assert_batch_invariant(rows: Rows, cuts: Sequence[int]) -> dict[str, Any]:
    whole = feed(rows)
    split = feed(rows, cuts=cuts)
    assert [{k: v for k, v in d.items() if k != "log_e"} for d in decisions(split, SPECS)] == [
        {k: v for k, v in d.items() if k != "log_e"} for d in decisions(whole, SPECS)
    ]
    for a, b in zip(decisions(split, SPECS), decisions(whole, SPECS), strict=True):
        assert a["log_e"] == pytest.approx(b["log_e"], abs=2e-3)
    assert_close(split, whole)
    return whole


@pytest.mark.parametrize("seed", range(8))
def test_one_batch_or_many_give_the_same_decision_and_state(seed: int) -> None:
    rows = mixed_rows(seed)
    rng = np.random.default_rng(100 + seed)
    cuts = sorted(set(rng.integers(1, len(rows), 30).tolist()))
    whole = assert_batch_invariant(rows, cuts)
    one_by_one = feed(rows, cuts=range(1, len(rows)))
    assert_close(one_by_one, whole)
    if seed % 4 != 2:  # every collapse kind is decided; the healthy tail is not
        assert decisions(whole, SPECS)
    else:
        assert decisions(whole, SPECS) == []


@settings(
    max_examples=25,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(
    seed=st.integers(0, 3),
    cuts=st.lists(st.integers(1, 329), max_size=40).map(lambda c: sorted(set(c))),
)
def test_batch_invariance_for_any_cut(seed: int, cuts: list[int]) -> None:
    assert_batch_invariant(mixed_rows(seed), cuts)


def test_update_does_not_change_its_input_and_the_state_is_json() -> None:
    rows = mixed_rows(0)
    state = feed(rows[:200])
    snapshot = copy.deepcopy(state)
    after = feed(rows[200:], state=state)
    assert state == snapshot
    # persisted as JSON (the monitor's state file) and read back, it judges the same
    reloaded = json.loads(json.dumps(state))
    assert_close(feed(rows[200:], state=reloaded), after)


def test_a_decided_detector_stops_and_keeps_its_decision() -> None:
    rows = class_rows(np.random.default_rng(14), 40, BUY)
    state = feed(rows)
    (decided,) = decisions(state, SPECS)
    later = feed(healthy_rows(np.random.default_rng(15), 200, start_ms=T0_MS + 50_000), state=state)
    assert decisions(later, SPECS)[0] == decided
    assert later["detectors"]["action_collapse:BUY"]["n"] == 27


# -- the end of a watch ----------------------------------------------------------------------------


def test_upper_bound_known_values() -> None:
    assert upper_bound(0, 0, 0.95) == 1.0
    assert upper_bound(7, 7, 0.95) == 1.0
    # With no ones, n KL(0 || q) = -n log(1 - q): the bound is 1 - (1 - c)^(1/n) exactly.
    for n in (1, 10, 100, 1000):
        assert upper_bound(0, n, 0.95) == pytest.approx(1 - 0.05 ** (1 / n), abs=1e-9)
    # it solves n KL(k/n || q) = log(1 / (1 - c))
    q = upper_bound(30, 100, 0.99)
    kl = 0.3 * math.log(0.3 / q) + 0.7 * math.log(0.7 / (1 - q))
    assert 100 * kl == pytest.approx(math.log(100), rel=1e-6)


@pytest.mark.parametrize(("n", "confidence"), [(20, 0.95), (100, 0.99375), (400, 0.9)])
def test_upper_bound_is_monotone_and_never_below_clopper_pearson(n: int, confidence: float) -> None:
    bounds = [upper_bound(k, n, confidence) for k in range(n + 1)]
    assert all(a < b for a, b in itertools.pairwise(bounds))
    for k in range(0, n, max(1, n // 10)):
        exact = binomial_upper(k, n, confidence)
        assert k / n <= exact <= bounds[k] + 1e-12
        assert bounds[k] - exact < 0.15  # a usable bound, not 1.0
    # more events at the same rate, or less confidence: a tighter bound
    assert upper_bound(n // 4, n, confidence) > upper_bound(n, 4 * n, confidence)
    assert upper_bound(5, n, confidence) > upper_bound(5, n, confidence / 1.05)


def test_a_healthy_window_is_safe() -> None:
    window = Observations.from_rows(healthy_rows(np.random.default_rng(20), 1000))
    bounds = healthy_bounds(SPECS, window, **KW)
    assert [b["detector"] for b in bounds] == [spec.name for spec in SPECS]
    assert all(b["safe"] for b in bounds), [missing_text(b) for b in bounds if not b["safe"]]
    by_name = {b["detector"]: b for b in bounds}
    assert by_name["model_inactive"]["n"] == 1000
    assert by_name["action_collapse:BUY"]["n"] == 1000
    assert by_name["constant_output"]["n"] == 998  # the first two have no previous two
    assert by_name["model_inactive"]["rate"] == 0.0
    # Bonferroni over the 8 detectors: each at 1 - 0.05 / 8
    assert by_name["model_inactive"]["upper"] == round(upper_bound(0, 1000, 1 - 0.05 / 8), 4)
    for bound in bounds:
        assert bound["rate"] <= bound["upper"] < bound["bound"]


def test_too_few_events_are_not_safe_and_say_what_is_missing() -> None:
    window = Observations.from_rows(healthy_rows(np.random.default_rng(21), 30))
    bounds = {b["detector"]: b for b in healthy_bounds(SPECS, window, **KW)}
    inactive = bounds["model_inactive"]
    assert not inactive["safe"]
    assert inactive["upper"] == round(1 - (0.05 / 8) ** (1 / 30), 4)
    assert missing_text(inactive) == (
        f"model_inactive: no prediction rate 0.0% over 30 events, upper bound "
        f"{100 * inactive['upper']:.1f}% not below 5%"
    )
    # with ten times the events, the same model is bounded
    more = Observations.from_rows(healthy_rows(np.random.default_rng(21), 300))
    assert all(b["safe"] for b in healthy_bounds(SPECS, more, **KW))


def test_a_collapsed_or_silent_window_is_not_safe() -> None:
    collapsed = Observations.from_rows(class_rows(np.random.default_rng(22), 500, HOLD))
    bounds = {b["detector"]: b for b in healthy_bounds(SPECS, collapsed, **KW)}
    assert not bounds["action_collapse:HOLD"]["safe"]
    assert bounds["action_collapse:HOLD"]["rate"] == 1.0
    assert bounds["action_collapse:BUY"]["safe"]
    silent = healthy_bounds(SPECS, Observations.from_rows(inactive_rows(500)), **KW)
    by_name = {b["detector"]: b for b in silent}
    assert (by_name["action_collapse:BUY"]["n"], by_name["action_collapse:BUY"]["rate"]) == (
        0,
        None,
    )
    assert by_name["action_collapse:BUY"]["upper"] == 1.0
    assert missing_text(by_name["action_collapse:BUY"]) == (
        "action_collapse:BUY: no events to bound it"
    )
    assert not by_name["model_inactive"]["safe"]
    assert not any(b["safe"] for b in silent)


# -- texts -----------------------------------------------------------------------------------------


def found(rule: str, label: str, value: float | None, threshold: float, **extra: Any) -> dict:
    return {
        "rule": rule,
        "label": label,
        "value": value,
        "threshold": threshold,
        "events": 120,
        "log_e": 1.0,
        "n": 130,
        **extra,
    }


def test_violation_text_in_the_runbooks_vocabulary() -> None:
    assert violation_text(found("action_collapse", "HOLD", 0.783, 0.7)) == (
        "Action collapse: HOLD=78.3% (>70%) over the last 120 events; decided on evidence "
        "(e-value 2.72x past its threshold, 130 events judged)"
    )
    assert violation_text(found("model_inactive", "no prediction", None, 0.05)).startswith(
        "Model inactive: no prediction in ? of events (>5%) over the last 120 events"
    )
    huge = violation_text({**found("redundant", "agreement", 1.0, 0.85), "log_e": 5000.0})
    assert "Redundant: agreement with the ensemble 100.0% (>85%)" in huge
    assert "e-value 1.01e+304x" in huge  # capped, never an overflow


@pytest.mark.parametrize(
    ("rule", "label", "head"),
    [
        ("constant_output", "repeats within 0.01", "Constant output: 96.0% of confidences "
         "repeat the previous one within the constant threshold (>{bound})"),
        ("narrow_spread", "within +-0.06 of the median", "Narrow spread: 96.0% of confidences "
         "within +-0.06 of the median (>{bound})"),
        ("hard_disagreement", "hard disagreement", "Hard disagreement: 96.0% BUY vs SELL "
         "against the ensemble (>25%)"),
        ("redundant", "agreement", "Redundant: agreement with the ensemble 96.0% (>85%)"),
        ("model_inactive", "no prediction", "Model inactive: no prediction in 96.0% of events "
         "(>5%)"),
    ],
)  # fmt: skip
def test_every_rule_has_a_readable_violation(rule: str, label: str, head: str) -> None:
    threshold = next(spec.bound for spec in SPECS if spec.rule == rule)
    text = violation_text(found(rule, label, 0.96, threshold))
    assert text.startswith(head.format(bound=f"{100 * threshold:g}%") + " over the last 120 ")


def test_a_real_decision_reads_like_the_runbooks() -> None:
    state = feed(class_rows(np.random.default_rng(23), 40, BUY))
    (decided,) = decisions(state, SPECS)
    text = violation_text(decided)
    assert text.startswith(
        "Action collapse: BUY=100.0% (>70%) over the last 27 events; decided on evidence (e-value "
    )
    assert text.endswith("past its threshold, 27 events judged)")
