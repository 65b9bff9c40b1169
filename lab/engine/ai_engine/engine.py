"""The decision pipeline: market tick -> model predictions -> ensemble vote -> event."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from .config import EngineConfig
from .ensemble import Decision, vote
from .events import build_payload, encode, features_for, utc_now
from .market import Market, Tick
from .models import Prediction, SimulatedModel, capped


@dataclass(frozen=True)
class EngineEvent:
    """One decision with everything the sinks and the shadow log need."""

    tick: Tick
    predictions: dict[str, Prediction]
    decision: Decision
    payload: dict[str, Any]
    json: str


class Engine:
    """Deterministic (given the seed) generator of decisions for the configured models."""

    def __init__(self, config: EngineConfig) -> None:
        self._config = config
        self._market = Market(config.symbols, config.seed)
        self._models = [
            SimulatedModel(name, config.schedules[name], config.seed) for name in config.models
        ]

    def step(self, elapsed: float, moment: datetime) -> EngineEvent:
        """Produce the next event; ``elapsed`` (s since start) selects scheduled behaviours."""
        config = self._config
        tick = self._market.next_tick()
        predictions = {m.name: m.predict(tick.signal, elapsed) for m in self._models}
        canary = config.canary_model
        if canary is not None and config.canary_conf_cap is not None:
            # The cap is the engine's: the vote and the published event use the capped value.
            predictions[canary] = capped(predictions[canary], config.canary_conf_cap)
        decision = vote(predictions, config.weights, config.voters)
        features = features_for(config.features_mode, tick)
        payload = build_payload(
            tick,
            predictions,
            decision,
            config.shadow,
            features,
            moment,
            shadow_leak=config.shadow_leak,
            pad=config.payload_pad,
        )
        return EngineEvent(tick, predictions, decision, payload, encode(payload))


def benchmark(
    config: EngineConfig,
    count: int,
    clock: Callable[[], float] = time.perf_counter,
    wall: Callable[[], datetime] = utc_now,
) -> float:
    """Generate ``count`` events through the full model, ensemble and JSON path; events/s."""
    engine = Engine(config)
    start = clock()
    for _ in range(count):
        engine.step(clock() - start, wall())
    return count / max(clock() - start, 1e-9)
