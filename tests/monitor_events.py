"""Synthetic canary events for the monitor's unit tests (evidence, assess, loop): rows
``[stream ms, action code, confidence or None, ensemble side code]`` as the canary probe returns
them, from a seeded generator."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from model_safety.monitor.observations import INACTIVE
from model_safety.telemetry.events import BUY, HOLD, SELL

T0_MS = 1_768_046_400_000  # 2026-01-10T12:00:00.000Z
Rows = list[list[Any]]


def healthy_rows(
    rng: np.random.Generator, n: int, *, start_ms: int = T0_MS, step_ms: int = 1000
) -> Rows:
    """A healthy canary: classes about a third each, confidences spread over 0.3..0.9, the
    ensemble's side agreeing in about 60 % and opposite (BUY vs SELL) in about 7 %."""
    action = rng.integers(0, 3, n)
    confidence = rng.uniform(0.3, 0.9, n).round(6)
    draw = rng.random(n)
    other = np.where(action == HOLD, rng.integers(0, 2, n), HOLD)
    opposite = np.where(action == BUY, SELL, BUY)
    side = np.where(draw < 0.6, action, np.where((draw < 0.7) & (action != HOLD), opposite, other))
    return [
        [start_ms + i * step_ms, int(action[i]), float(confidence[i]), int(side[i])]
        for i in range(n)
    ]


def class_rows(
    rng: np.random.Generator,
    n: int,
    action: int,
    *,
    share: float = 1.0,
    start_ms: int = T0_MS,
    step_ms: int = 1000,
) -> Rows:
    """``share`` of the events are ``action`` (the rest the two other classes), confidences
    spread, the side never the canary's class nor opposite to it (agreement and hard
    disagreement stay low)."""
    others = [a for a in (BUY, SELL, HOLD) if a != action]
    chosen = np.where(rng.random(n) < share, action, rng.choice(others, n))
    confidence = rng.uniform(0.3, 0.9, n).round(6)
    side = HOLD if action != HOLD else BUY
    return [[start_ms + i * step_ms, int(chosen[i]), float(confidence[i]), side] for i in range(n)]


def constant_rows(
    rng: np.random.Generator,
    n: int,
    value: float = 0.5,
    *,
    start_ms: int = T0_MS,
    step_ms: int = 1000,
) -> Rows:
    """Constant output: the same confidence every time, classes still diverse."""
    action = rng.integers(0, 3, n)
    return [[start_ms + i * step_ms, int(action[i]), value, HOLD] for i in range(n)]


def inactive_rows(n: int, *, start_ms: int = T0_MS, step_ms: int = 1000) -> Rows:
    return [[start_ms + i * step_ms, INACTIVE, None, BUY] for i in range(n)]


def close_check_loggers(directory: Path) -> None:
    """Close the monitor's check loggers of logs under ``directory``: they are process-wide
    (one per path), and a test's would otherwise hold its file open for the next test."""
    for name in list(logging.Logger.manager.loggerDict):
        if name.startswith("model_safety.monitor.checks.") and str(directory) in name:
            logger = logging.getLogger(name)
            for handler in list(logger.handlers):
                handler.close()
                logger.removeHandler(handler)
