"""A fake monotonic clock for code that takes ``clock`` and ``sleep`` callables (the lab
engine's sinks and runner, the engine cycle, the role proof): time moves only when the code
sleeps or a test moves ``now``."""

from __future__ import annotations

import math


class FakeClock:
    """Called, the time now; ``sleep`` moves it on and is recorded in ``sleeps``. It starts well
    after 0, as a monotonic clock does; a sleep must be positive and no longer than
    ``longest_sleep``."""

    def __init__(self, longest_sleep: float = math.inf) -> None:
        self.now = 1000.0
        self.longest_sleep = longest_sleep
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        assert 0 < seconds <= self.longest_sleep
        self.sleeps.append(seconds)
        self.now += seconds
