"""A canary model's observations, as the monitor's evidence reads them: per event its action
(INACTIVE without a prediction), confidence, stream time and the ensemble's side, as arrays.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..telemetry.events import BUY, HOLD

INACTIVE = -1


class EvidenceError(ValueError):
    """Bad settings or observations."""


def _is_integer(value: Any) -> bool:
    return isinstance(value, int | np.integer) and not isinstance(value, bool)


def _is_real(value: Any) -> bool:
    return isinstance(value, int | float | np.integer | np.floating) and not isinstance(value, bool)


@dataclass
class Observations:
    """The watched model's view of a run of events, oldest first (arrays of one length):
    ``action`` (0 BUY, 1 SELL, 2 HOLD, -1 no prediction), ``confidence`` (NaN without a
    prediction), ``side`` (the ensemble decision's code) and ``time_ms`` (stream id time)."""

    action: np.ndarray
    confidence: np.ndarray
    side: np.ndarray
    time_ms: np.ndarray

    @property
    def n(self) -> int:
        return int(self.action.shape[0])

    @classmethod
    def from_rows(cls, rows: Iterable[Sequence[Any]]) -> Observations:
        """From JSON rows ``[time_ms, action, confidence or null, side]``."""
        data = list(rows)
        if not data:
            return cls.empty()
        # Codes and times must be integers and the confidence a number (or null): numpy
        # would silently truncate 1.5 to 1 and read "1" or True as 1.
        for index, row in enumerate(data):
            if not (
                isinstance(row, Sequence)
                and not isinstance(row, str | bytes)
                and len(row) == 4
                and all(_is_integer(row[k]) for k in (0, 1, 3))
                and (row[2] is None or _is_real(row[2]))
            ):
                raise EvidenceError(
                    f"bad observation rows: row {index} is not [time_ms, action, confidence or "
                    f"null, side] with integer codes: {str(row)[:80]}"
                )
        try:
            time_ms = np.array([row[0] for row in data], dtype=np.int64)
            action = np.array([row[1] for row in data], dtype=np.int8)
            confidence = np.array(
                [math.nan if row[2] is None else row[2] for row in data], dtype=np.float64
            )
            side = np.array([row[3] for row in data], dtype=np.int8)
        except (TypeError, ValueError, IndexError, OverflowError) as exc:
            raise EvidenceError(f"bad observation rows: {exc}") from None
        if np.any((action < INACTIVE) | (action > HOLD)) or np.any((side < BUY) | (side > HOLD)):
            raise EvidenceError("bad observation rows: an action or side code out of range")
        active = action != INACTIVE
        if np.any(~np.isfinite(confidence[active])) or np.any(
            (confidence[active] < 0) | (confidence[active] > 1)
        ):
            raise EvidenceError("bad observation rows: a confidence outside [0, 1]")
        return cls(action, confidence, side, time_ms)

    @classmethod
    def empty(cls) -> Observations:
        return cls(
            np.zeros(0, np.int8),
            np.zeros(0, np.float64),
            np.zeros(0, np.int8),
            np.zeros(0, np.int64),
        )

    def rows(self) -> list[list[Any]]:
        """JSON rows (see :meth:`from_rows`)."""
        return [
            [int(t), int(a), None if a == INACTIVE else round(float(c), 6), int(s)]
            for t, a, c, s in zip(
                self.time_ms.tolist(),
                self.action.tolist(),
                self.confidence.tolist(),
                self.side.tolist(),
                strict=True,
            )
        ]

    def tail(self, count: int) -> Observations:
        """The newest ``count`` observations."""
        start = max(0, self.n - count)
        return Observations(
            self.action[start:], self.confidence[start:], self.side[start:], self.time_ms[start:]
        )

    @staticmethod
    def merge(parts: Sequence[Observations]) -> Observations:
        """The observations of several hosts in one stream, ordered by time (stable)."""
        parts = [part for part in parts if part.n]
        if not parts:
            return Observations.empty()
        time_ms = np.concatenate([p.time_ms for p in parts])
        order = np.argsort(time_ms, kind="stable")
        return Observations(
            np.concatenate([p.action for p in parts])[order],
            np.concatenate([p.confidence for p in parts])[order],
            np.concatenate([p.side for p in parts])[order],
            time_ms[order],
        )
