"""Sequential evidence for the canary monitor: decide a rule on evidence, at a declared error rate.

The gate's thresholds define "bad"; the monitor must decide, at any event rate (1/min to
100/s) and after any number of looks, whether the canary's events show it. A fixed-n test
repeated at every check would inflate its error with every look, so each rule is an
**e-detector** over a per-event indicator instead (a likelihood-ratio process that is a
nonnegative supermartingale while the model is healthy):

======================  =============================================  ===============
rule                    indicator per event of the model               healthy: rate <=
======================  =============================================  ===============
``action_collapse``     action == BUY (SELL, HOLD: one detector each)  max_action_share 0.70
``constant_output``     conf within constant_std 0.01 of the last two   REPEAT_BOUND 0.25
``narrow_spread``       \\|conf - median of earlier\\| < min_spread / 2   BAND_BOUND 0.90
``hard_disagreement``   BUY vs SELL against the ensemble ``side``      max_hard_disagree 0.25
``redundant``           action == ``side``                             redundant_agreement 0.85
``model_inactive``      no prediction (inactive or absent)             max_inactive_share 0.05
======================  =============================================  ===============

The bounds: a class share, hard disagreement, agreement and the inactive share are the gate's
and the monitor's own thresholds. A model whose p90 - p10 is at least ``min_spread`` has at most
90 % of its outputs inside any band narrower than that (otherwise both tails would hold less
than 10 % and the band would contain p10..p90), so BAND_BOUND is implied by the gate's spread
rule; conf_std < 0.05 (``flat_predictions``) is judged through the same band (a unimodal output
with std < 0.05 has p90 - p10 < 0.13). HOLD collapse (HOLD > 85 %) is a HOLD action collapse
first (85 % > 70 %). REPEAT_BOUND is declared, not derived: a healthy model repeats its
confidence (within 0.01 of the previous, which was within 0.01 of the one before) at most a
quarter of the time. The flattest output the gate passes (conf_std 0.05, about normal) does so
about 1 % of the time, a model alternating between two values 25 %, the lab's healthy models
well under 1 %.

Each detector tests "indicator rate <= bound" against a few alternatives (ALTERNATIVES: a small
step over the bound, half way to 1, near 1) with weights, and runs two statistics:

* ``M`` (since the activation start): the mixture of likelihood ratios. By Ville's inequality a
  healthy model's ``M`` ever reaches ``2 / alpha`` with probability at most ``alpha / 2``: a
  model that is bad from its first event is decided after the fewest events.
* ``R`` (a change from any event on, Shiryaev-Roberts: ``R = (R + 1) * LR`` per event): for a
  healthy model ``R - n`` is a martingale, so ``R`` reaches ``2 N / alpha`` within ``N`` events
  with probability at most ``alpha / 2`` (Doob). ``N`` is planned from the rate measured before
  the activation (PLAN_MARGIN times the expected events of the watch). A model that turns bad
  hours after a healthy start is decided as fast as one from its start, up to ``log N`` nats.

``alpha`` is the detector's share (RULE_BUDGET) of the watch's false-rollback rate (default 1 %
over the watch, option ``--false-rollback-rate``). The monitor's hosts of one canary pool their
events for these rules (half the budget), and each host is judged alone too (the other half,
shared by the hosts), so a union bound keeps the total.

A crossing is **confirmed with new events**: the rule is violated only when the statistic stays
above its threshold for the next ``confirm_events`` events after it first crossed (events that
came after the crossing, not the same events judged again). A statistic that falls back clears
the crossing. Confirmation can only remove alarms, so the error bound stands.

At the end of the watch (:func:`.healthy_bounds.healthy_bounds`) a host is ``safe`` only when,
for every rule, the indicator rate of its window (the newest ``window_events`` events since the
activation start) has a one-sided upper confidence bound (Chernoff, SAFE_CONFIDENCE, Bonferroni
over the rules) below the rule's bound; otherwise ``inconclusive`` with what is missing. That
is one look, so a fixed-n bound is right there.

Vectorised with numpy per batch (a check's new events); the state is plain JSON.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..telemetry.events import ACTIONS
from ..telemetry.metrics import hard_disagreement
from .observations import INACTIVE, EvidenceError, Observations

REPEAT_BOUND = 0.25
BAND_BOUND = 0.90
# Alternatives, as the fraction of the way from the bound to 1, and their mixture weights.
ALTERNATIVES = ((0.2, 0.25), (0.5, 0.35), (0.97, 0.40))
# Share of the watch's false-rollback rate per rule; the action classes share theirs.
# The rest (STALL_BUDGET) is the telemetry stall's (monitor.stall_after_s).
RULE_BUDGET = {
    "action_collapse": 0.45,
    "constant_output": 0.09,
    "narrow_spread": 0.09,
    "hard_disagreement": 0.09,
    "redundant": 0.09,
    "model_inactive": 0.09,
}
STALL_BUDGET = 0.10
PLAN_MARGIN = 2.0
MIN_PLANNED_EVENTS = 100
# The band's centre: the median of the newest earlier confidences, at most this many.
MEDIAN_MEMORY = 101
SAFE_CONFIDENCE = 0.95
DEFAULT_FALSE_ROLLBACK_RATE = 0.01
DEFAULT_CONFIRM_EVENTS = 3
DEFAULT_WINDOW_EVENTS = 1000
# log(0), finite: the state stays strict JSON (no -Infinity).
LOG_ZERO = -1e300


@dataclass(frozen=True)
class DetectorSpec:
    """One e-detector: its name, the rule it decides, and the healthy bound of its rate."""

    name: str
    rule: str
    bound: float
    budget: float
    label: str


def detector_specs(
    *,
    max_action_share: float = 0.70,
    min_spread: float = 0.12,
    constant_std: float = 0.01,
    max_hard_disagree: float = 0.25,
    redundant_agreement: float = 0.85,
    max_inactive_share: float = 0.05,
) -> tuple[DetectorSpec, ...]:
    """The detectors at these thresholds (the gate's and the monitor's)."""
    share = RULE_BUDGET["action_collapse"] / len(ACTIONS)
    specs = [
        DetectorSpec(f"action_collapse:{a}", "action_collapse", max_action_share, share, a)
        for a in ACTIONS
    ]
    specs += [
        DetectorSpec(
            "constant_output",
            "constant_output",
            REPEAT_BOUND,
            RULE_BUDGET["constant_output"],
            f"repeats within {constant_std:g}",
        ),
        DetectorSpec(
            "narrow_spread",
            "narrow_spread",
            BAND_BOUND,
            RULE_BUDGET["narrow_spread"],
            f"within +-{min_spread / 2:g} of the median",
        ),
        DetectorSpec(
            "hard_disagreement",
            "hard_disagreement",
            max_hard_disagree,
            RULE_BUDGET["hard_disagreement"],
            "hard disagreement",
        ),
        DetectorSpec(
            "redundant", "redundant", redundant_agreement, RULE_BUDGET["redundant"], "agreement"
        ),
        DetectorSpec(
            "model_inactive",
            "model_inactive",
            max_inactive_share,
            RULE_BUDGET["model_inactive"],
            "no prediction",
        ),
    ]
    for spec in specs:
        if not 0 < spec.bound < 1:
            raise EvidenceError(f"{spec.name}: the bound must be in (0, 1), got {spec.bound!r}")
    return tuple(specs)


def indicators(
    specs: Sequence[DetectorSpec],
    obs: Observations,
    memory: Sequence[float],
    *,
    constant_std: float,
    min_spread: float,
) -> tuple[dict[str, np.ndarray], list[float]]:
    """Each detector's indicator per observation (a float array of 0/1, NaN where the event
    says nothing to that detector: no prediction, no earlier confidence) and the new memory
    (the newest confidences, for the next batch's band centre and repeat test)."""
    active = obs.action != INACTIVE
    conf = obs.confidence[active]
    history = np.concatenate([np.asarray(memory, dtype=np.float64), conf])
    positions = np.arange(len(memory), history.shape[0])
    repeat = np.full(conf.shape[0], np.nan)
    band = np.full(conf.shape[0], np.nan)
    known = positions > 0
    # A repeat: the confidence stays within constant_std of the previous two (a model that
    # alternates between a few values is not constant).
    twice = positions > 1
    step = np.abs(np.diff(history, prepend=np.nan)) < constant_std
    repeat[twice] = step[positions[twice]] & step[positions[twice] - 1]
    centre = np.full(conf.shape[0], np.nan)
    full = positions >= MEDIAN_MEMORY
    if np.any(full):
        windows = np.lib.stride_tricks.sliding_window_view(history, MEDIAN_MEMORY)
        centre[full] = np.median(windows[positions[full] - MEDIAN_MEMORY], axis=1)
    for i in np.flatnonzero(known & ~full):
        centre[i] = np.median(history[: positions[i]])
    band[known] = np.abs(history[positions[known]] - centre[known]) < min_spread / 2
    values: dict[str, np.ndarray] = {}
    for spec in specs:
        column = np.full(obs.n, np.nan)
        if spec.rule == "action_collapse":
            column[active] = obs.action[active] == ACTIONS.index(spec.label)
        elif spec.rule == "constant_output":
            column[active] = repeat
        elif spec.rule == "narrow_spread":
            column[active] = band
        elif spec.rule == "hard_disagreement":
            column[active] = hard_disagreement(obs.action, obs.side)[active]
        elif spec.rule == "redundant":
            column[active] = obs.action[active] == obs.side[active]
        elif spec.rule == "model_inactive":
            column = (~active).astype(np.float64)
        values[spec.name] = column
    return values, history[-MEDIAN_MEMORY:].tolist()


# --------------------------------------------------------------------------- detectors


def _alternatives(bound: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(log LR of a 1, log LR of a 0, log weight) per alternative of ``bound``."""
    p1 = np.array([bound + (1 - bound) * step for step, _ in ALTERNATIVES])
    weights = np.array([weight for _, weight in ALTERNATIVES])
    return np.log(p1 / bound), np.log((1 - p1) / (1 - bound)), np.log(weights / weights.sum())


def thresholds(alpha: float, planned_events: int) -> tuple[float, float]:
    """(log threshold of M, log threshold of R) of a detector with error share ``alpha``."""
    return math.log(2 / alpha), math.log(2 * max(1, planned_events) / alpha)


def planned_events(rate_per_s: float | None, duration_s: float, fallback_rate: float) -> int:
    """The events a watch plans for: PLAN_MARGIN times rate x duration (the rate measured
    before the activation, else ``fallback_rate``), at least MIN_PLANNED_EVENTS."""
    rate = rate_per_s if rate_per_s and math.isfinite(rate_per_s) and rate_per_s > 0 else None
    expected = (rate or fallback_rate) * duration_s
    return max(MIN_PLANNED_EVENTS, math.ceil(PLAN_MARGIN * expected))


def new_detectors(specs: Sequence[DetectorSpec], alpha: float, planned: int) -> dict[str, Any]:
    """A fresh set of detectors sharing the error rate ``alpha`` over ``planned`` events."""
    if not (isinstance(alpha, float | int) and 0 < alpha < 1):
        raise EvidenceError(f"the false-rollback rate must be in (0, 1), got {alpha!r}")
    alts = len(ALTERNATIVES)
    return {
        "alpha": alpha,
        "planned": int(planned),
        "events": 0,
        "memory": [],
        "detectors": {
            spec.name: {
                "n": 0,
                "ones": 0,
                "log_m": [0.0] * alts,
                "log_r": [LOG_ZERO] * alts,
                "min_s": [0.0] * alts,
                "min_n": [0] * alts,
                "ones_at_min": [0] * alts,
                "run": 0,
                "crossed_n": None,
                "decided": None,
            }
            for spec in specs
        },
    }


def _logsumexp(values: np.ndarray, axis: int = 0) -> np.ndarray:
    top = np.max(values, axis=axis, keepdims=True)
    top = np.where(np.isfinite(top), top, 0.0)
    with np.errstate(divide="ignore"):
        return np.squeeze(top, axis=axis) + np.log(np.sum(np.exp(values - top), axis=axis))


def _update_detector(
    state: dict[str, Any],
    spec: DetectorSpec,
    x: np.ndarray,
    limits: tuple[float, float],
    confirm_events: int,
) -> dict[str, Any]:
    """Feed one detector the indicators ``x`` (0/1, oldest first); its new state. Sets
    ``decided`` (a dict) at the observation where a crossing has been confirmed."""
    new = {key: (list(value) if isinstance(value, list) else value) for key, value in state.items()}
    if x.shape[0] == 0 or new["decided"]:
        return new
    one, zero, log_w = _alternatives(spec.bound)
    lr = np.where(x[None, :] == 1, one[:, None], zero[:, None])  # (alts, n)
    steps = np.cumsum(lr, axis=1)
    log_m = np.asarray(new["log_m"])[:, None] + steps
    previous = np.concatenate([np.zeros((lr.shape[0], 1)), -steps[:, :-1]], axis=1)
    acc = np.logaddexp.accumulate(previous, axis=1)
    log_r = steps + np.logaddexp(np.asarray(new["log_r"])[:, None], acc)
    mix_m = _logsumexp(log_w[:, None] + log_m)
    mix_r = _logsumexp(log_w[:, None] + log_r)
    above = (mix_m >= limits[0]) | (mix_r >= limits[1])
    # Run length of "above" at each observation, carried over from the previous batch.
    index = np.arange(x.shape[0])
    last_below = np.maximum.accumulate(np.where(~above, index, -1))
    run = np.where(last_below >= 0, index - last_below, index + 1 + new["run"])
    run = np.where(above, run, 0)
    ones = new["ones"] + np.cumsum(x == 1)
    n0 = new["n"]
    confirmed = np.flatnonzero(run >= confirm_events + 1)
    end = int(confirmed[0]) + 1 if confirmed.shape[0] else x.shape[0]
    if confirmed.shape[0]:
        at = int(confirmed[0])
        # The onset: where the strongest alternative's cumulative log LR was lowest before.
        strongest = int(np.argmax(np.maximum(log_w + log_m[:, at], log_w + log_r[:, at])))
        prefix = np.concatenate([[new["min_s"][strongest]], log_m[strongest, :at]])
        lowest = int(np.argmin(prefix))
        if lowest == 0:
            onset, ones_before = new["min_n"][strongest], new["ones_at_min"][strongest]
        else:
            onset, ones_before = n0 + lowest, int(ones[lowest - 1])
        since = n0 + at + 1 - onset
        first_above = at - int(run[at]) + 1
        new["decided"] = {
            "n": n0 + at + 1,
            "crossed_n": n0 + first_above + 1,
            "onset_n": onset,
            "events": since,
            "share": (int(ones[at]) - ones_before) / since if since else None,
            "log_e": round(float(max(mix_m[at] - limits[0], mix_r[at] - limits[1])), 3),
            "statistic": "M" if mix_m[at] - limits[0] >= mix_r[at] - limits[1] else "R",
        }
    # Carry the state to the last observation used.
    last = end - 1
    new["n"] = n0 + end
    new["ones"] = int(ones[last])
    new["log_m"] = log_m[:, last].tolist()
    new["log_r"] = log_r[:, last].tolist()
    new["run"] = int(run[last])
    if not run[last]:
        new["crossed_n"] = None
    elif run[last] <= end:  # the run of crossings began in this batch
        new["crossed_n"] = n0 + end - int(run[last]) + 1
    for j in range(lr.shape[0]):
        prefix = log_m[j, :end]
        lowest = int(np.argmin(prefix))
        if prefix[lowest] < new["min_s"][j]:
            new["min_s"][j] = float(prefix[lowest])
            new["min_n"][j] = n0 + lowest + 1
            new["ones_at_min"][j] = int(ones[lowest])
    return new


def update_detectors(
    state: Mapping[str, Any],
    specs: Sequence[DetectorSpec],
    obs: Observations,
    *,
    constant_std: float,
    min_spread: float,
    confirm_events: int = DEFAULT_CONFIRM_EVENTS,
) -> dict[str, Any]:
    """Feed a set of detectors (:func:`new_detectors`) the next observations; the new state.
    A detector whose crossing is confirmed gets ``decided`` (see :func:`decisions`)."""
    if (
        not isinstance(confirm_events, int)
        or isinstance(confirm_events, bool)
        or confirm_events < 0
    ):
        raise EvidenceError(f"confirm_events must be an integer >= 0, got {confirm_events!r}")
    columns, memory = indicators(
        specs, obs, state["memory"], constant_std=constant_std, min_spread=min_spread
    )
    detectors = {}
    for spec in specs:
        column = columns[spec.name]
        detectors[spec.name] = _update_detector(
            state["detectors"][spec.name],
            spec,
            column[~np.isnan(column)],
            thresholds(state["alpha"] * spec.budget, state["planned"]),
            confirm_events,
        )
    return {**state, "events": state["events"] + obs.n, "memory": memory, "detectors": detectors}


def mixture_log_m(ones: int, n: int, bound: float) -> float:
    """log M of a detector of ``bound`` after ``n`` indicators of which ``ones`` are 1, from
    its start. M depends on the counts only, so a rule kept as counts between checks is
    judged by it (Ville: a healthy rate reaches ``log(1 / alpha)`` with probability at most
    ``alpha``, however often it is looked at)."""
    one, zero, log_w = _alternatives(bound)
    return float(_logsumexp(log_w + ones * one + (n - ones) * zero))


def decisions(state: Mapping[str, Any], specs: Sequence[DetectorSpec]) -> list[dict[str, Any]]:
    """The violations decided so far: per decided detector ``rule``, ``detector``, ``value``
    (the indicator's share since the estimated onset), ``threshold`` (its bound) and the
    evidence (``events`` since the onset, ``log_e`` over the threshold, ``n``)."""
    found = []
    for spec in specs:
        decided = state["detectors"][spec.name]["decided"]
        if decided:
            found.append(
                {
                    "rule": spec.rule,
                    "detector": spec.name,
                    "label": spec.label,
                    "value": decided["share"],
                    "threshold": spec.bound,
                    **decided,
                }
            )
    return found


def pending(state: Mapping[str, Any]) -> list[str]:
    """The detectors that crossed and wait for confirmation by new events."""
    return [
        name
        for name, detector in state["detectors"].items()
        if detector["crossed_n"] and not detector["decided"]
    ]


def evidence_levels(state: Mapping[str, Any], specs: Sequence[DetectorSpec]) -> dict[str, float]:
    """Per detector, how far its evidence is from deciding: the larger of log M - log(2/a)
    and log R - log(2N/a), in nats (>= 0 means crossed). For the check log and reports."""
    levels = {}
    for spec in specs:
        limits = thresholds(state["alpha"] * spec.budget, state["planned"])
        detector = state["detectors"][spec.name]
        _, _, log_w = _alternatives(spec.bound)
        mix_m = float(_logsumexp(log_w + np.asarray(detector["log_m"])))
        mix_r = float(_logsumexp(log_w + np.asarray(detector["log_r"])))
        levels[spec.name] = round(max(mix_m - limits[0], mix_r - limits[1]), 3)
    return levels
