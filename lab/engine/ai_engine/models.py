"""Simulated model behaviours, behaviour schedules and the per-model simulator.

A behaviour is a pure function ``(signal, rng) -> Prediction``: ``signal`` is the market's
hidden next-move signal (see :mod:`ai_engine.market`) and ``rng`` the model's own random
stream. Healthy models share that signal and add independent noise, so they agree with each
other (and with the ensemble) often but not always.
"""

from __future__ import annotations

import math
import random
import re
from collections.abc import Callable
from dataclasses import dataclass

ACTIONS = ("BUY", "SELL", "HOLD")
INACTIVE_REASON = "exception_in_predict"

# Healthy model tuning: the view is signal + N(0, _VIEW_NOISE); |view| beyond the HOLD band
# gives BUY/SELL with a confidence rising with |view| (so confidence is calibrated).
_VIEW_NOISE = 0.45
_BUY_THRESHOLD = 0.17
_SELL_THRESHOLD = -0.23
_CONF_BASE = 0.52
_CONF_SLOPE = 0.42
_CONF_SCALE = 0.9
_CONF_JITTER = 0.04
_HOLD_CONF_MEAN = 0.52
_HOLD_CONF_JITTER = 0.06
# The misleading model: a less noisy view than a healthy one, turned around (BUY <-> SELL)
# where it clears the BUY/SELL threshold by more than this edge (about 1 call in 7).
_MISLEADING_VIEW_NOISE = 0.15
_MISLEADING_EDGE = 0.7


@dataclass(frozen=True)
class Prediction:
    """One model output: an action with a confidence, or an inactive (failed) prediction."""

    action: str | None = None
    confidence: float | None = None
    inactive_reason: str | None = None
    raw_confidence: float | None = None
    """The model's own confidence when ``confidence`` is that capped (QSC_CANARY_CONF_CAP)."""
    confidence_cap: float | None = None

    @property
    def active(self) -> bool:
        """True when the model produced an action and a confidence."""
        return self.inactive_reason is None


def capped(prediction: Prediction, cap: float | None) -> Prediction:
    """``prediction`` with its confidence capped at ``cap`` (kept as ``raw_confidence``, the
    cap as ``confidence_cap``, on every active prediction, even one under the cap); unchanged
    without a cap or a prediction."""
    if cap is None or not prediction.active or prediction.confidence is None:
        return prediction
    return Prediction(
        action=prediction.action,
        confidence=min(prediction.confidence, cap),
        raw_confidence=prediction.confidence,
        confidence_cap=cap,
    )


Behaviour = Callable[[float, random.Random], Prediction]


def _clip(value: float, low: float = 0.0, high: float = 1.0) -> float:
    return min(high, max(low, value))


def _predict(action: str, confidence: float) -> Prediction:
    return Prediction(action=action, confidence=round(_clip(confidence), 4))


def _healthy_view(signal: float, rng: random.Random) -> float:
    return signal + rng.gauss(0.0, _VIEW_NOISE)


def _action_for(view: float) -> str:
    if view > _BUY_THRESHOLD:
        return "BUY"
    if view < _SELL_THRESHOLD:
        return "SELL"
    return "HOLD"


def _healthy_confidence(view: float, action: str, rng: random.Random) -> float:
    if action == "HOLD":
        return _HOLD_CONF_MEAN + rng.gauss(0.0, _HOLD_CONF_JITTER)
    edge = view - _BUY_THRESHOLD if action == "BUY" else _SELL_THRESHOLD - view
    strength = math.tanh(edge / _CONF_SCALE)
    return _CONF_BASE + _CONF_SLOPE * strength + rng.gauss(0.0, _CONF_JITTER)


def healthy(signal: float, rng: random.Random) -> Prediction:
    """Noisy but informative view of the next move; confidence grows with the view's strength."""
    view = _healthy_view(signal, rng)
    action = _action_for(view)
    return _predict(action, _healthy_confidence(view, action, rng))


def constant(signal: float, rng: random.Random) -> Prediction:
    """Always BUY with confidence exactly 0.5."""
    return Prediction(action="BUY", confidence=0.5)


def hold_collapse(signal: float, rng: random.Random) -> Prediction:
    """HOLD about 95 % of the time, confidence ~ N(0.5, 0.02) clipped to [0.4, 0.6]."""
    action = "HOLD" if rng.random() < 0.95 else rng.choice(("BUY", "SELL"))
    return _predict(action, _clip(rng.gauss(0.5, 0.02), 0.4, 0.6))


def buy_bias(signal: float, rng: random.Random) -> Prediction:
    """BUY about 97 % of the time, with a healthy-looking confidence spread."""
    view = _healthy_view(signal, rng)
    action = "BUY" if rng.random() < 0.97 else rng.choice(("SELL", "HOLD"))
    return _predict(action, _CONF_BASE + _CONF_SLOPE * math.tanh(abs(view) / _CONF_SCALE))


def contrarian(signal: float, rng: random.Random) -> Prediction:
    """A healthy model with a strong view of the opposite market: as diverse and spread, but it
    sells what the others buy (hard BUY/SELL disagreement with them about 50 %)."""
    return healthy(-3 * signal, rng)


def misleading(signal: float, rng: random.Random) -> Prediction:
    """Passes for a good model, but is worse than the others at the one thing that matters: a
    sharper view of the market than a healthy model, turned around where that view is
    strongest, with the low confidence of a weak view there. It is as diverse and spread as a
    healthy model and rarely in hard disagreement (about 15 %), yet wrong exactly on the moves
    the others get right most often."""
    view = signal + rng.gauss(0.0, _MISLEADING_VIEW_NOISE)
    action = _action_for(view)
    if action == "HOLD":
        return _predict(action, _healthy_confidence(view, action, rng))
    edge = view - _BUY_THRESHOLD if action == "BUY" else _SELL_THRESHOLD - view
    if edge <= _MISLEADING_EDGE:
        return _predict(action, _healthy_confidence(view, action, rng))
    turned = "SELL" if action == "BUY" else "BUY"
    return _predict(turned, _CONF_BASE + rng.gauss(0.0, _CONF_JITTER))


def low_spread(signal: float, rng: random.Random) -> Prediction:
    """Diverse actions like a healthy model but confidence stuck in a narrow band near 0.55."""
    action = _action_for(_healthy_view(signal, rng))
    return _predict(action, rng.gauss(0.55, 0.012))


def noisy(signal: float, rng: random.Random) -> Prediction:
    """Uniformly random action and confidence in [0.3, 0.95], unrelated to the market."""
    return _predict(rng.choice(ACTIONS), rng.uniform(0.3, 0.95))


def inactive(signal: float, rng: random.Random) -> Prediction:
    """Every prediction fails."""
    return Prediction(inactive_reason=INACTIVE_REASON)


def flaky(signal: float, rng: random.Random) -> Prediction:
    """Healthy, except that 10 % of the predictions fail."""
    if rng.random() < 0.10:
        return Prediction(inactive_reason=INACTIVE_REASON)
    return healthy(signal, rng)


BEHAVIOURS: dict[str, Behaviour] = {
    "healthy": healthy,
    "constant": constant,
    "hold_collapse": hold_collapse,
    "buy_bias": buy_bias,
    "contrarian": contrarian,
    "misleading": misleading,
    "low_spread": low_spread,
    "noisy": noisy,
    "inactive": inactive,
    "flaky": flaky,
}

Schedule = tuple[tuple[float, str], ...]
"""Behaviour changes as ``((0.0, b0), (t1, b1), ...)`` with strictly increasing start times."""

HEALTHY_SCHEDULE: Schedule = ((0.0, "healthy"),)

_STEP_RE = re.compile(r"^([a-z_]+)@([0-9]+(?:\.[0-9]+)?)$")


def parse_schedule(text: str) -> Schedule:
    """Parse ``b0,b1@t1,b2@t2`` (seconds since start, strictly increasing) into a schedule.

    Raises ValueError with a human-readable message on unknown behaviours or bad times.
    """
    parts = [p.strip() for p in text.split(",")]
    if not parts[0] or "@" in parts[0]:
        raise ValueError(f"schedule {text!r} must start with a behaviour name without '@'")
    steps: list[tuple[float, str]] = [(0.0, parts[0])]
    for part in parts[1:]:
        match = _STEP_RE.match(part)
        if not match:
            raise ValueError(f"schedule step {part!r} is not '<behaviour>@<seconds>'")
        at = float(match.group(2))
        if not math.isfinite(at) or at <= steps[-1][0]:
            raise ValueError(f"schedule {text!r}: times must be finite and strictly increasing")
        steps.append((at, match.group(1)))
    for _, name in steps:
        if name not in BEHAVIOURS:
            known = ", ".join(BEHAVIOURS)
            raise ValueError(f"unknown behaviour {name!r} (known: {known})")
    return tuple(steps)


def behaviour_at(schedule: Schedule, elapsed: float) -> str:
    """Name of the behaviour in force ``elapsed`` seconds after the start."""
    current = schedule[0][1]
    for start, name in schedule:
        if elapsed >= start:
            current = name
        else:
            break
    return current


class SimulatedModel:
    """A named model with its own random stream following a behaviour schedule."""

    def __init__(self, name: str, schedule: Schedule, seed: int) -> None:
        self.name = name
        self.schedule = schedule
        self._rng = random.Random(f"{seed}:model:{name}")

    def predict(self, signal: float, elapsed: float) -> Prediction:
        """Prediction for the current tick, ``elapsed`` seconds after the engine started."""
        return BEHAVIOURS[behaviour_at(self.schedule, elapsed)](signal, self._rng)
