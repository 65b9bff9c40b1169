"""Simulated market: one regime-switching geometric random walk per symbol.

Each step draws the *predictable* part of the next log return in advance and exposes it as
``Tick.signal`` (the conditional expected next return in units of the regime volatility).
Simulated models see that signal through their own noise, which is what makes a healthy
model informative and calibrated: the stronger its view, the more often the next price
move goes its way.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

FEATURE_NAMES = ("atr_value", "volatility_factor", "rsi_14", "return_1")
FLATLINE_FEATURES = {"atr_value": 0.01, "volatility_factor": 1.0, "rsi_14": 50.0, "return_1": 0.0}
# SIM_FEATURES=shifted adds these to the healthy values: every feature far out of its healthy
# range (atr_value and return_1 are about 1e-3, volatility_factor about 1, rsi_14 in [0, 100]),
# so a PSI against a healthy reference is far above 0.25: drift with nothing else changed.
SHIFTED_FEATURE_OFFSETS = {
    "atr_value": 0.05,
    "volatility_factor": 2.0,
    "rsi_14": 100.0,
    "return_1": 0.05,
}

_ATR_PERIOD = 14
_RSI_PERIOD = 14
_SHORT_VOL_ALPHA = 2.0 / (20 + 1)
_LONG_VOL_ALPHA = 2.0 / (200 + 1)
_REGIME_SWITCH_PROBABILITY = 0.01
_PREDICTABLE_SHARE = 0.5  # weight of the pre-drawn shock in the next standardised return
_MEAN_REVERSION = 0.001  # pull per step towards the start price, keeps long runs plausible

_START_PRICES = {"BTC": 43000.0, "ETH": 2300.0, "SOL": 100.0, "BNB": 310.0}
_VOL_MULTIPLIERS = {"BTC": 1.0, "ETH": 1.2, "SOL": 1.6, "BNB": 1.3}
_DEFAULT_START_PRICE = 50.0
_DEFAULT_VOL_MULTIPLIER = 1.4


@dataclass(frozen=True)
class Regime:
    """Drift and volatility of the per-step log return in one market regime."""

    name: str
    drift: float
    vol: float


REGIMES = (
    Regime("trend_up", drift=0.0003, vol=0.0010),
    Regime("trend_down", drift=-0.0003, vol=0.0012),
    Regime("range", drift=0.0, vol=0.0008),
)


@dataclass(frozen=True)
class Tick:
    """One observation of one symbol: price, features and the hidden next-move signal."""

    symbol: str
    price: float
    features: dict[str, float]
    signal: float
    regime: str


def _lookup(symbol: str, table: dict[str, float], default: float) -> float:
    for prefix, value in table.items():
        if symbol.startswith(prefix):
            return value
    return default


class SymbolPath:
    """Price path of one symbol with ATR, volatility ratio, RSI and last return."""

    def __init__(self, symbol: str, rng: random.Random) -> None:
        self.symbol = symbol
        self._rng = rng
        self._scale = _lookup(symbol, _VOL_MULTIPLIERS, _DEFAULT_VOL_MULTIPLIER)
        self._anchor = _lookup(symbol, _START_PRICES, _DEFAULT_START_PRICE)
        self._price = self._anchor * math.exp(rng.gauss(0.0, 0.02))
        self._regime = rng.choice(REGIMES)
        base_var = (self._regime.vol * self._scale) ** 2
        self._short_var = base_var
        self._long_var = base_var
        self._atr = self._price * self._regime.vol * self._scale * 1.5
        self._avg_gain = self._avg_loss = self._price * self._regime.vol * self._scale * 0.4
        self._last_return = 0.0
        self._pending = rng.gauss(0.0, 1.0)

    def _drift(self) -> float:
        """Expected log return of the next step before the shock: trend plus mean reversion."""
        pull = _MEAN_REVERSION * math.log(self._price / self._anchor)
        return self._regime.drift * self._scale - pull

    def _signal(self) -> float:
        """Expected next standardised log return given the regime and the pre-drawn shock."""
        vol = self._regime.vol * self._scale
        return self._drift() / vol + _PREDICTABLE_SHARE * self._pending

    def step(self) -> Tick:
        """Advance one step and return the new observation."""
        rng = self._rng
        if rng.random() < _REGIME_SWITCH_PROBABILITY:
            self._regime = rng.choice([r for r in REGIMES if r is not self._regime])
        vol = self._regime.vol * self._scale
        shock = _PREDICTABLE_SHARE * self._pending + math.sqrt(
            1.0 - _PREDICTABLE_SHARE**2
        ) * rng.gauss(0.0, 1.0)
        log_return = self._drift() + vol * shock
        previous = self._price
        self._price = previous * math.exp(log_return)
        high = max(previous, self._price) * math.exp(abs(rng.gauss(0.0, 0.5)) * vol)
        low = min(previous, self._price) * math.exp(-abs(rng.gauss(0.0, 0.5)) * vol)
        true_range = max(high, previous) - min(low, previous)
        self._atr += (true_range - self._atr) / _ATR_PERIOD
        change = self._price - previous
        self._avg_gain += (max(change, 0.0) - self._avg_gain) / _RSI_PERIOD
        self._avg_loss += (max(-change, 0.0) - self._avg_loss) / _RSI_PERIOD
        self._short_var += _SHORT_VOL_ALPHA * (log_return**2 - self._short_var)
        self._long_var += _LONG_VOL_ALPHA * (log_return**2 - self._long_var)
        self._last_return = log_return
        self._pending = rng.gauss(0.0, 1.0)
        return Tick(
            symbol=self.symbol,
            price=self._price,
            features=self._features(),
            signal=self._signal(),
            regime=self._regime.name,
        )

    def _features(self) -> dict[str, float]:
        if self._avg_loss <= 0.0:
            rsi = 100.0
        else:
            rsi = 100.0 - 100.0 / (1.0 + self._avg_gain / self._avg_loss)
        return {
            "atr_value": round(self._atr / self._price, 6) or 1e-6,
            "volatility_factor": round(math.sqrt(self._short_var / self._long_var), 4),
            "rsi_14": round(rsi, 2),
            "return_1": round(self._last_return, 6),
        }


class Market:
    """Round-robin over the configured symbols, each with its own seeded path."""

    def __init__(self, symbols: tuple[str, ...], seed: int) -> None:
        self._paths = [SymbolPath(s, random.Random(f"{seed}:market:{s}")) for s in symbols]
        self._index = 0

    def next_tick(self) -> Tick:
        """Step the next symbol in round-robin order."""
        path = self._paths[self._index]
        self._index = (self._index + 1) % len(self._paths)
        return path.step()
