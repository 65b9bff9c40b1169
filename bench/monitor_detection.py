"""How fast the canary monitor decides a collapse, and how often it rolls back a healthy canary
(figures, not a test; issue 13 item 8). No lab: simulated event streams go check by check
through the monitor's real judgement (``model_safety.monitor.assess.assess``, the function the
monitor loop calls for each host at each check, with a probe dict shaped like
``canary_probe``'s: service, configuration, activation record, the new events as observation
rows, the seconds since the newest event and the rate measured before the activation).

Settings: ``MonitorSettings`` defaults (6 h watch, checks every 30 s, false-rollback rate 1 %,
confirmation by 3 new events, window 1000 events), one host. The monitor starts with the
canary: a check at 0 s, then every 30 s, ``end_of_watch`` after the check at 6 h.

Streams: Poisson arrivals at 1/min, 0.1/s, 1/s and 10/s (per check: a Poisson count, uniform
times). The rate in the probe is measured as the monitor gets it
(``role_proof.observed_rate`` over the 50 simulated events before the activation), and
``silence_s`` is the time since the newest simulated event (those before the activation too).

* Healthy reference model: the lab engine's own healthy patchtst (``lab/engine``), a pool of
  its events (action, confidence, ensemble side) resampled at random.
* Collapses (the side stays the ensemble's, drawn from the pool): ``constant`` (BUY, 0.5),
  ``100% BUY`` and ``85% BUY`` (healthy confidences from the pool), ``HOLD collapse`` (HOLD
  95 %, confidence N(0.5, 0.02) clipped to [0.4, 0.6]), ``narrow spread`` (the pool's actions,
  confidence N(0.55, 0.012)), ``hard disagree 40%`` (the pool's events, with the action turned
  against a BUY/SELL side so that 40 % of all events are BUY vs SELL). Onset at the canary's
  first event, or after 1 h of the healthy reference model (the same healthy hour, simulated
  once per run, continues into each collapse).
* Healthy canaries for the false-rollback rate: class shares on a slow random walk within
  [25 %, 50 %] (steps of N(0, 0.01) a minute, re-normalised, steps leaving the range refused),
  confidence N(mean, std) with mean in [0.5, 0.7] and std in [0.08, 0.15], drawn anew every
  30-90 min, agreement with the ensemble 70-78 %, hard disagreement 2-8 %.

"events" is how many collapsed events the deciding detector had judged when its crossing was
confirmed (its own count, mapped to the stream); "seconds" runs from the collapse (the
activation, or the end of the healthy hour) to the check that triggered the rollback.

Baseline (plain, fixed n): the gate's thresholds applied to the newest n events (n = 30, 200)
at every check once there are n, a violation rolls back: a fixed-n test repeated at every
look, as the monitor judged before issue 13 (without its "inconclusive" rollbacks).

Speed: a check without new events whose silence is below the stall limit
(``monitor.stall_after_s`` at the rate before the activation, which the simulated probe always
has) changes nothing in ``assess`` but the check counter and the last check's summary (the
window, the detectors and the violations stay as they are), so it is not run (``--no-elide``
runs every check; the full run checks on a sample that both give identical results).

    make bench-monitor   (or: .venv/bin/python bench/monitor_detection.py [--quick] [--seed N])
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import math
import multiprocessing
import os
import platform
import subprocess
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT / "lab" / "engine"))
sys.path.insert(0, str(REPO_ROOT / "module_utils"))

from ai_engine.config import load_config  # noqa: E402
from ai_engine.engine import Engine  # noqa: E402
from model_safety.engine.role_proof import RATE_SAMPLE, observed_rate  # noqa: E402
from model_safety.monitor import evidence  # noqa: E402
from model_safety.monitor.assess import assess, end_of_watch  # noqa: E402
from model_safety.monitor.observations import Observations  # noqa: E402
from model_safety.monitor.settings import (  # noqa: E402
    VIOLATION,
    MonitorSettings,
    new_state,
    stall_after_s,
)
from model_safety.telemetry.events import ACTIONS, BUY, HOLD, SELL  # noqa: E402

MODEL = "patchtst"
HOST = "bench1"
INVOCATION = "b" * 32
T0_MS = 1_768_046_400_000  # 2026-01-10T12:00:00Z, the activation's start
STARTED = "2026-01-10T12:00:00.000Z"
START = datetime(2026, 1, 10, 12, tzinfo=UTC)
DEFAULT_SEED = 20260113
RATES = (("1/min", 1 / 60), ("0.1/s", 0.1), ("1/s", 1.0), ("10/s", 10.0))
COLLAPSES = {
    "constant": "constant (BUY, 0.5)",
    "one_class_100": "100% BUY",
    "one_class_85": "85% BUY",
    "hold_collapse": "HOLD collapse",
    "narrow_spread": "narrow spread",
    "hard_disagree_40": "hard disagree 40%",
}
LATE_ONSET_S = 3600.0
EVENT_TARGETS = {"constant": 30, "one_class_100": 30, "one_class_85": 150}
FALSE_ROLLBACK_TARGET = 0.01
PLAIN_SIZES = (30, 200)
POOL_EVENTS = 50_000
HARD_SHARE = 0.40
SHORT_RULE = {
    "action_collapse": "collapse",
    "constant_output": "constant",
    "narrow_spread": "narrow",
    "hard_disagreement": "hard",
    "redundant": "redundant",
    "model_inactive": "inactive",
    "telemetry_stalled": "STALL",
}

SERVICE = {
    "unit": "quantum-ai-engine.service",
    "active_state": "active",
    "sub_state": "running",
    "running": True,
    "invocation_id": INVOCATION,
    "n_restarts": 0,
}
CONFIG = {"canary": MODEL, "canary_weight": 0.1}
ACTIVATION = {
    "event": "activation",
    "ts": STARTED,
    "model": MODEL,
    "host": HOST,
    "weight": 0.1,
    "invocation_id": INVOCATION,
    "started_at": STARTED,
}


# --------------------------------------------------------------------------- event sources


@dataclass(frozen=True)
class Pool:
    """The lab engine's healthy patchtst, event by event: action, confidence, ensemble side."""

    action: np.ndarray
    conf: np.ndarray
    side: np.ndarray

    def describe(self) -> str:
        shares = np.bincount(self.action, minlength=3) / self.action.shape[0]
        hard = np.mean(hard_mask(self.action, self.side))
        return (
            f"{'/'.join(f'{a} {s:.0%}' for a, s in zip(ACTIONS, shares, strict=True))}, "
            f"confidence std {self.conf.std():.3f}, agreement with the side "
            f"{np.mean(self.action == self.side):.1%}, hard disagreement {hard:.1%}"
        )


def hard_mask(action: np.ndarray, side: np.ndarray) -> np.ndarray:
    return ((action == BUY) & (side == SELL)) | ((action == SELL) & (side == BUY))


def lab_pool(seed: int, size: int) -> Pool:
    """``size`` events of the lab engine (default models, all healthy) as patchtst saw them."""
    engine = Engine(load_config({"ENGINE_SEED": str(seed)}))
    codes = {name: index for index, name in enumerate(ACTIONS)}
    rows = np.empty((size, 3))
    for index in range(size):
        event = engine.step(index * 0.1, START + timedelta(milliseconds=100 * index))
        prediction = event.predictions[MODEL]
        rows[index] = codes[prediction.action], prediction.confidence, codes[event.decision.side]
    return Pool(rows[:, 0].astype(np.int8), rows[:, 1].copy(), rows[:, 2].astype(np.int8))


Behaviour = Callable[[np.random.Generator, np.ndarray], tuple[np.ndarray, ...]]


def pool_behaviour(pool: Pool, kind: str) -> Behaviour:
    """The healthy reference model (``healthy``) or one collapse of it: per event times, the
    arrays (action, confidence, side)."""
    side_bs = (pool.side == BUY) | (pool.side == SELL)
    p_bs = float(np.mean(side_bs))
    h0 = float(np.mean(hard_mask(pool.action, pool.side)[side_bs]))
    flip = (HARD_SHARE / p_bs - h0) / (1 - h0)  # P(turned against a BUY/SELL side)

    def draw(rng: np.random.Generator, times: np.ndarray) -> tuple[np.ndarray, ...]:
        n = times.shape[0]
        index = rng.integers(0, pool.action.shape[0], n)
        action, conf, side = pool.action[index], pool.conf[index], pool.side[index]
        if kind == "healthy":
            return action, conf, side
        if kind == "constant":
            return np.full(n, BUY, np.int8), np.full(n, 0.5), side
        if kind == "one_class_100":
            return np.full(n, BUY, np.int8), conf, side
        if kind == "one_class_85":
            u = rng.random(n)
            action = np.where(u < 0.85, BUY, np.where(u < 0.925, SELL, HOLD)).astype(np.int8)
            return action, conf, side
        if kind == "hold_collapse":
            u = rng.random(n)
            action = np.where(u < 0.95, HOLD, np.where(u < 0.975, BUY, SELL)).astype(np.int8)
            return action, np.round(np.clip(rng.normal(0.5, 0.02, n), 0.4, 0.6), 4), side
        if kind == "narrow_spread":
            return action, np.round(rng.normal(0.55, 0.012, n), 4), side
        if kind == "hard_disagree_40":
            turn = ((side == BUY) | (side == SELL)) & (rng.random(n) < flip)
            return np.where(turn, 1 - side, action).astype(np.int8), conf, side
        raise ValueError(kind)

    return draw


def wandering_behaviour(rng: np.random.Generator, duration_s: float) -> Behaviour:
    """A healthy canary whose class shares wander in [25 %, 50 %] and whose confidence regime
    changes every 30-90 min (see the module's docstring)."""
    minutes = int(duration_s // 60) + 2
    while True:
        shares = rng.dirichlet([1.0, 1.0, 1.0])
        if np.all((shares >= 0.25) & (shares <= 0.50)):
            break
    path = np.empty((minutes, 3))
    for minute in range(minutes):
        path[minute] = shares
        step = rng.normal(0.0, 0.01, 3)
        proposal = shares + step - step.mean()
        if np.all((proposal >= 0.25) & (proposal <= 0.50)):
            shares = proposal / proposal.sum()
    bounds, means, stds = [], [], []
    start = 0.0
    while start <= duration_s + 60:
        means.append(rng.uniform(0.5, 0.7))
        stds.append(rng.uniform(0.08, 0.15))
        start += rng.uniform(30 * 60, 90 * 60)
        bounds.append(start)
    edges, mean, std = np.array(bounds), np.array(means), np.array(stds)
    agree = rng.uniform(0.70, 0.78)
    hard = rng.uniform(0.04, 0.11)  # P(side opposite | BUY/SELL): 2-8 % of all events

    def draw(generator: np.random.Generator, times: np.ndarray) -> tuple[np.ndarray, ...]:
        n = times.shape[0]
        minute = np.minimum((times // 60).astype(np.intp), minutes - 1)
        cumulative = np.cumsum(path[minute], axis=1)
        u = generator.random(n)
        action = ((u >= cumulative[:, 0]).astype(np.int8) + (u >= cumulative[:, 1])).astype(np.int8)
        segment = np.searchsorted(edges, times, side="right")
        conf = np.round(np.clip(generator.normal(mean[segment], std[segment]), 0.0, 1.0), 4)
        v = generator.random(n)
        traded = action != HOLD
        side = np.where(
            traded,
            np.where(v < agree, action, np.where(v < agree + hard, 1 - action, HOLD)),
            np.where(v < agree, HOLD, np.where(v < agree + (1 - agree) / 2, BUY, SELL)),
        ).astype(np.int8)
        return action, conf, side

    return draw


# --------------------------------------------------------------------------- the plain baseline


def plain_rules(action: np.ndarray, conf: np.ndarray, side: np.ndarray) -> bool:
    """The gate's fixed-n rules at the monitor's thresholds over one window: any violated."""
    n = action.shape[0]
    shares = np.bincount(action, minlength=3) / n
    std = float(conf.std())
    p10, median, p90 = np.percentile(conf, [10, 50, 90])
    return bool(
        shares.max() > 0.70
        or std < 0.05
        or p90 - p10 < 0.12
        or std < 0.01
        or p10 == p90
        or (shares[HOLD] > 0.85 and 0.40 <= median <= 0.60)
        or np.mean(hard_mask(action, side)) > 0.25
        or np.mean(action == side) > 0.85
    )


class Plain:
    """The baselines over one stream: the first check at which each fixed-n rule fires."""

    def __init__(self) -> None:
        keep = max(PLAIN_SIZES)
        self.action = np.zeros(0, np.int8)
        self.conf = np.zeros(0)
        self.side = np.zeros(0, np.int8)
        self.keep = keep
        self.events = 0
        self.fired: dict[int, tuple[float, int] | None] = dict.fromkeys(PLAIN_SIZES)

    @property
    def done(self) -> bool:
        return all(self.fired.values())

    def add(self, t: float, action: np.ndarray, conf: np.ndarray, side: np.ndarray) -> None:
        self.events += action.shape[0]
        self.action = np.concatenate([self.action, action])[-self.keep :]
        self.conf = np.concatenate([self.conf, conf])[-self.keep :]
        self.side = np.concatenate([self.side, side])[-self.keep :]
        for size, fired in self.fired.items():
            window = self.action[-size:], self.conf[-size:], self.side[-size:]
            if fired is None and self.events >= size and action.shape[0] and plain_rules(*window):
                self.fired[size] = (t, self.events)


# --------------------------------------------------------------------------- one canary


def probe(rows: list, last_id: str | None, silence_s: float, rate: float | None) -> dict:
    """What ``canary_probe`` returns for one host at one check."""
    return {
        "service": SERVICE,
        "config": CONFIG,
        "activation": ACTIVATION,
        "after": STARTED,
        "observations": {"rows": rows, "malformed": 0, "last_id": last_id},
        "newest_id": last_id,
        "silence_s": silence_s,
        "rate": {"rate_per_s": rate, "rate_events": RATE_SAMPLE, "rate_since": None},
    }


class Canary:
    """One canary host watched by the monitor: its Poisson stream and the monitor's state."""

    def __init__(self, settings: MonitorSettings, rate: float, rng: np.random.Generator):
        self.settings = settings
        self.rate = rate
        self.rng = rng
        before = -np.cumsum(rng.exponential(1 / rate, RATE_SAMPLE))  # newest first
        ids_ms = [T0_MS + math.floor(t * 1000) for t in before]
        self.measured_rate = observed_rate(ids_ms, T0_MS, None, RATE_SAMPLE)
        self.last_t = float(before[0])
        self.state = new_state(HOST, settings, STARTED, None)
        self.events = 0
        self.elided = 0
        self.assessed = 0

    def fork(self, rng: np.random.Generator) -> Canary:
        """A copy that goes on with its own random stream."""
        other = copy.copy(self)
        other.state = copy.deepcopy(self.state)
        other.rng = rng
        return other

    def arrivals(self, k: int) -> np.ndarray:
        """The times of the events in (t_{k-1}, t_k] (none for the check at 0 s)."""
        if k == 0:
            return np.zeros(0)
        t1 = k * self.settings.interval_s
        n = self.rng.poisson(self.rate * self.settings.interval_s)
        return np.sort(self.rng.uniform(t1 - self.settings.interval_s, t1, n))

    def check(
        self,
        k: int,
        times: np.ndarray,
        drawn: tuple[np.ndarray, ...],
        elide: bool,
    ) -> dict | None:
        """The monitor's check k (at k x interval) after the events ``times`` came; its check
        dict, or None when elided (no new event, silence below the stall limit)."""
        t = k * self.settings.interval_s
        n = times.shape[0]
        if n:
            self.last_t = float(times[-1])
            self.events += n
        silence = t - self.last_t
        if (
            elide
            and not n
            and self.state["rate"] is not None
            and silence < stall_after_s(self.settings, self.state["rate"])
        ):
            self.elided += 1
            return None
        rows: list = []
        last_id = None
        if n:
            action, conf, side = drawn
            ms = (T0_MS + np.floor(times * 1000)).astype(np.int64).tolist()
            rows = list(zip(ms, action.tolist(), conf.tolist(), side.tolist(), strict=True))
            last_id = f"{ms[-1]}-{self.events}"
        self.assessed += 1
        self.state, result, _ = assess(
            self.state, probe(rows, last_id, silence, self.measured_rate), self.settings
        )
        return result


def unjudged_leading(settings: MonitorSettings) -> dict[str, int]:
    """Per detector, how many of a stream's first events its indicator cannot judge (the
    confidence rules need earlier confidences), asked of ``evidence.indicators`` itself."""
    t = settings.gate_thresholds()
    n = 10
    obs = Observations(
        np.zeros(n, np.int8), np.full(n, 0.5), np.zeros(n, np.int8), np.arange(n, dtype=np.int64)
    )
    columns, _ = evidence.indicators(
        settings.specs(), obs, [], constant_std=t.constant_std, min_spread=t.min_spread
    )
    return {name: int(np.argmax(~np.isnan(column))) for name, column in columns.items()}


def decider(result: dict, before: int, events: int) -> tuple[str, int]:
    """The rule that decided a triggered check, and how many collapsed events it had judged:
    the earliest confirmation among the check's violations (a detector's count of judged
    events, plus the stream's first events it cannot judge, is the stream's event count:
    every simulated event has a prediction); telemetry rules: every collapsed event read."""
    found = []
    for violation in result["triggered"]:
        proof = violation.get("evidence")
        if proof:
            index = proof["n"] + _LEADING[violation["detector"]]
            found.append((index - before, violation["rule"]))
        else:
            found.append((events - before, violation["rule"]))
    used, rule = min(found)
    return rule, used


def watch(
    canary: Canary,
    behaviour: Behaviour,
    first: int,
    last: int,
    onset_s: float,
    elide: bool,
    plain: Plain | None = None,
) -> dict[str, Any]:
    """Checks ``first``..``last`` of a stream that follows ``behaviour``; stops at a rollback
    (but keeps the baseline's stream going until it has decided too)."""
    before = canary.events
    outcome: dict[str, Any] = {"decided": False}
    for k in range(first, last + 1):
        times = canary.arrivals(k)
        drawn = behaviour(canary.rng, times)
        t = k * canary.settings.interval_s
        if plain is not None:
            plain.add(t, *drawn)
        if outcome["decided"]:
            if plain is None or plain.done:
                break
            continue
        result = canary.check(k, times, drawn, elide)
        if result is not None and result["status"] == VIOLATION:
            rule, used = decider(result, before, canary.events)
            outcome = {
                "decided": True,
                "rule": rule,
                "events": used,
                "seconds": t - onset_s,
                "check": k,
                "read": canary.events - before,
            }
            if plain is None:
                break
    if plain is not None:
        outcome["plain"] = {
            size: None if fired is None else (fired[0] - onset_s, fired[1])
            for size, fired in plain.fired.items()
        }
    return outcome


# --------------------------------------------------------------------------- experiments


_POOL: Pool | None = None
_SETTINGS = MonitorSettings(model=MODEL)
_LEADING = unjudged_leading(_SETTINGS)


def _init(pool: Pool) -> None:
    global _POOL
    _POOL = pool


def checks_of_watch(settings: MonitorSettings) -> int:
    return math.ceil(settings.duration_s / settings.interval_s)


def first_event_runs(rate: float, seed: Sequence[int], elide: bool) -> list[dict]:
    """Each collapse from the canary's first event (with the baselines)."""
    assert _POOL is not None
    last = checks_of_watch(_SETTINGS)
    found = []
    for number, kind in enumerate(COLLAPSES):
        rng = np.random.default_rng([*seed, number])
        canary = Canary(_SETTINGS, rate, rng)
        outcome = watch(canary, pool_behaviour(_POOL, kind), 0, last, 0.0, elide, Plain())
        found.append({"kind": kind, **outcome, "assessed": canary.assessed})
    return found


def late_runs(rate: float, seed: Sequence[int], elide: bool) -> list[dict]:
    """One healthy hour of the reference model, then each collapse from that same state."""
    assert _POOL is not None
    last = checks_of_watch(_SETTINGS)
    onset_check = round(LATE_ONSET_S / _SETTINGS.interval_s)
    canary = Canary(_SETTINGS, rate, np.random.default_rng([*seed, 99]))
    prefix = watch(canary, pool_behaviour(_POOL, "healthy"), 0, onset_check, 0.0, elide)
    if prefix["decided"]:
        return [{"kind": kind, "prefix_rollback": prefix["rule"]} for kind in COLLAPSES]
    found = []
    for number, kind in enumerate(COLLAPSES):
        fork = canary.fork(np.random.default_rng([*seed, number]))
        behaviour = pool_behaviour(_POOL, kind)
        outcome = watch(fork, behaviour, onset_check + 1, last, LATE_ONSET_S, elide)
        found.append({"kind": kind, **outcome, "assessed": fork.assessed})
    return found


def healthy_run(rate: float, seed: Sequence[int], elide: bool) -> dict:
    """One healthy 6 h canary (wandering shares, shifting confidence): rollback or end."""
    rng = np.random.default_rng([*seed, 0])
    behaviour = wandering_behaviour(rng, _SETTINGS.duration_s)
    canary = Canary(_SETTINGS, rate, rng)
    plain = Plain()
    outcome = watch(canary, behaviour, 0, checks_of_watch(_SETTINGS), 0.0, elide, plain)
    found = {**outcome, "assessed": canary.assessed, "elided": canary.elided}
    if not outcome["decided"]:
        end = end_of_watch(canary.state, _SETTINGS)
        found["result"] = end["result"]
        found["missing"] = [b["detector"] for b in end["bounds"] if not b["safe"]]
    found["state"] = {k: v for k, v in canary.state.items() if k not in ("checks", "last_check")}
    return found


def run_task(task: tuple) -> tuple[tuple, Any, float]:
    """One task: (kind, rate name, run number, seed, elide, keep the final state)."""
    kind, rate_name, _, seed, elide, keep_state = task
    rate = dict(RATES)[rate_name]
    began = time.process_time()
    if kind == "first":
        result: Any = first_event_runs(rate, seed, elide)
    elif kind == "late":
        result = late_runs(rate, seed, elide)
    else:
        result = healthy_run(rate, seed, elide)
        if not keep_state:  # only the elision check compares it
            result.pop("state")
    return task, result, time.process_time() - began


# --------------------------------------------------------------------------- figures


def rank(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (inf counts as "not decided")."""
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def fmt(value: float, unit: str = "") -> str:
    if math.isnan(value):
        return "-"
    if math.isinf(value):
        return "never"
    if unit == "s":
        if value >= 5400:
            return f"{value / 3600:.1f} h"
        return f"{value / 60:.1f} min" if value >= 120 else f"{value:.0f} s"
    return f"{value:.0f}"


def binomial_upper(k: int, n: int, confidence: float = 0.95) -> float:
    """One-sided exact (Clopper-Pearson) upper bound of a rate from k in n."""
    if n == 0 or k >= n:
        return 1.0

    def cdf(p: float) -> float:
        return sum(
            math.exp(
                math.lgamma(n + 1)
                - math.lgamma(i + 1)
                - math.lgamma(n - i + 1)
                + i * math.log(p)
                + (n - i) * math.log1p(-p)
            )
            for i in range(k + 1)
        )

    low, high = k / n, 1.0
    for _ in range(60):
        middle = (low + high) / 2
        if cdf(middle) > 1 - confidence:
            low = middle
        else:
            high = middle
    return high


def rules_text(rules: Counter) -> str:
    total = sum(rules.values())
    return ", ".join(
        f"{SHORT_RULE.get(rule, rule)} {count / total:.0%}" for rule, count in rules.most_common(2)
    )


def detection_table(title: str, results: dict) -> list[str]:
    lines = [
        f"### {title}",
        "",
        "| collapse | rate | runs | decided | events median | events p95 | time median "
        "| time p95 | deciding rule | target |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- |",
    ]
    for kind, label in COLLAPSES.items():
        for rate_name, _ in RATES:
            cell = results.get((kind, rate_name), [])
            judged = [r for r in cell if "prefix_rollback" not in r]
            events = [r["events"] if r["decided"] else math.inf for r in judged]
            seconds = [r["seconds"] if r["decided"] else math.inf for r in judged]
            rules = Counter(r["rule"] for r in judged if r["decided"])
            decided = sum(r["decided"] for r in judged)
            target = ""
            if kind in EVENT_TARGETS and judged:
                limit = EVENT_TARGETS[kind]
                marks = [
                    f"{name} {'PASS' if rank(events, q) <= limit else 'MISS'}"
                    for name, q in (("median", 0.5), ("p95", 0.95))
                ]
                target = f"<= {limit}: {', '.join(marks)}"
            lines.append(
                f"| {label} | {rate_name} | {len(judged)} | {decided} "
                f"| {fmt(rank(events, 0.5))} | {fmt(rank(events, 0.95))} "
                f"| {fmt(rank(seconds, 0.5), 's')} | {fmt(rank(seconds, 0.95), 's')} "
                f"| {rules_text(rules)} | {target} |"
            )
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--quick", action="store_true", help="a short run (a few minutes)")
    parser.add_argument("--runs", type=int, help="runs per collapse and rate (onset at start)")
    parser.add_argument("--late-runs", type=int, help="runs per rate of the 1 h onset")
    parser.add_argument("--healthy", type=int, help="healthy canaries at 1/min")
    parser.add_argument("--healthy-fast", type=int, help="healthy canaries at 1/s")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--no-elide", action="store_true", help="run assess at every check")
    parser.add_argument(
        "--verify", type=int, help="runs (1/min, healthy and collapses) with and without elision"
    )
    args = parser.parse_args()
    quick = args.quick
    # The full run's counts take about 13 minutes on 2 idle cores (a check through assess costs
    # 2-10 ms, most of it copying and re-reading the window's rows): raise them with the options.
    runs = args.runs or (20 if quick else 100)
    late = args.late_runs or (10 if quick else 40)
    healthy = args.healthy or (100 if quick else 1000)
    healthy_fast = args.healthy_fast or (6 if quick else 30)
    verify = args.verify if args.verify is not None else (1 if quick else 3)
    elide = not args.no_elide
    began = time.perf_counter()

    print(
        f"monitor detection bench: seed {args.seed}, {args.workers} workers, "
        f"{'quick' if quick else 'full'} run; python {platform.python_version()}, "
        f"numpy {np.__version__}, {os.cpu_count()} CPUs"
    )
    s = _SETTINGS
    print(
        f"settings: watch {s.duration_s / 3600:g} h, checks every {s.interval_s:g} s, "
        f"false-rollback rate {s.false_rollback_rate:g}, confirm {s.confirm_events} events, "
        f"window {s.window_events} events"
    )
    print(f"judged by: {code_version()}")
    pool = lab_pool(args.seed % 100_000, POOL_EVENTS)
    print(f"healthy reference (lab engine patchtst, {POOL_EVENTS} events): {pool.describe()}")
    for rate_name, rate in RATES:
        print(
            f"  stall limit at {rate_name}: {stall_after_s(s, rate):.0f} s "
            "(at the true rate; the monitor uses the rate measured from 50 events)"
        )

    tasks = []
    for index, (rate_name, _) in enumerate(RATES):
        tasks += [("first", rate_name, i, (args.seed, 1, index, i)) for i in range(runs)]
        tasks += [("late", rate_name, i, (args.seed, 2, index, i)) for i in range(late)]
    tasks += [("healthy", "1/min", i, (args.seed, 3, 0, i)) for i in range(healthy)]
    tasks += [("healthy", "1/s", i, (args.seed, 3, 2, i)) for i in range(healthy_fast)]
    tasks = [(*task, elide, False) for task in tasks]
    # The longest first, so that the two workers end together.
    weight = {"healthy": 3, "late": 2, "first": 1}
    tasks.sort(key=lambda task: (-weight[task[0]], -dict(RATES)[task[1]]))

    first: dict = defaultdict(list)
    late_found: dict = defaultdict(list)
    late_runs_done: Counter = Counter()
    healthy_found: dict = defaultdict(list)
    spent: Counter = Counter()
    with multiprocessing.Pool(args.workers, initializer=_init, initargs=(pool,)) as workers:
        for done, (task, result, seconds) in enumerate(
            workers.imap_unordered(run_task, tasks, chunksize=1), 1
        ):
            if done % max(1, len(tasks) // 10) == 0:
                print(
                    f"  ... {done}/{len(tasks)} runs, {time.perf_counter() - began:.0f} s",
                    file=sys.stderr,
                    flush=True,
                )
            kind, rate_name = task[0], task[1]
            spent[(kind, rate_name)] += seconds
            if kind == "first":
                for item in result:
                    first[(item["kind"], rate_name)].append(item)
            elif kind == "late":
                late_runs_done[rate_name] += 1
                for item in result:
                    late_found[(item["kind"], rate_name)].append(item)
            else:
                healthy_found[rate_name].append(result)
        verified = verify_elision(workers, args.seed, verify) if elide and verify else None
    wall = time.perf_counter() - began

    print()
    lines = detection_table(f"Collapse from the canary's first event ({runs} runs per cell)", first)
    print("\n".join(lines))
    print()
    lines = detection_table(f"Collapse after 1 h healthy ({late} runs per cell)", late_found)
    print("\n".join(lines))
    prefix = {
        rate: Counter(
            r["prefix_rollback"]
            for r in late_found.get(("constant", rate), [])
            if "prefix_rollback" in r
        )
        for rate, _ in RATES
    }
    print(
        "healthy hour before the collapse (lab reference model), rolled back: "
        + ", ".join(
            f"{rate} {sum(prefix[rate].values())} of {late_runs_done[rate]}"
            + (f" ({rules_text(prefix[rate])})" if prefix[rate] else "")
            for rate, _ in RATES
        )
    )
    print()
    print("\n".join(healthy_table(healthy_found)))
    stall_rng = np.random.default_rng([args.seed, 6])
    estimates = {name: false_stall_estimate(rate, stall_rng) for name, rate in RATES}
    print(
        "expected stall rollbacks of a healthy canary (semi-analytic; the stall's budget is "
        f"{evidence.STALL_BUDGET * s.false_rollback_rate:.2%}), with the rate measured from "
        f"{RATE_SAMPLE} events / at the true rate: "
        + ", ".join(f"{name} {m:.2%} / {t:.2%}" for name, (m, t) in estimates.items())
    )
    print()
    print("\n".join(baseline_table(first, healthy_found)))
    print()
    checks = sum(r["assessed"] + r["elided"] for rs in healthy_found.values() for r in rs)
    elided = sum(r["elided"] for rs in healthy_found.values() for r in rs)
    print(
        f"run time {wall:.0f} s wall ({args.workers} workers); {sum(spent.values()):.0f} CPU "
        "seconds in the workers, by part: "
        + ", ".join(f"{k} {r} {v:.0f}" for (k, r), v in sorted(spent.items()))
    )
    if checks:
        print(
            f"healthy canaries: {checks} checks, {elided} elided ({elided / checks:.0%}: no "
            "new event, silence below the stall limit)" + ("" if elide else "; none elided")
        )
    if verified is not None:
        print(f"elision check: {verified}")
    return 0


def false_stall_estimate(rate: float, rng: np.random.Generator, samples: int = 20_000) -> tuple:
    """P(a healthy Poisson canary at ``rate`` is rolled back for a stall in the watch), with the
    rate measured as the monitor gets it ((n - 1) / span of the newest RATE_SAMPLE events
    before the activation) and at the true rate. A gap rolls back when a check falls in its
    part beyond the limit L: per gap exp(-rate L) E[min(1, X / interval)], X ~ Exp(rate)."""
    s = _SETTINGS
    measured = (RATE_SAMPLE - 1) / rng.gamma(RATE_SAMPLE - 1, 1 / rate, samples)
    limits = np.array([stall_after_s(s, float(r)) for r in measured])
    catch = (1 - math.exp(-rate * s.interval_s)) / (rate * s.interval_s)
    gaps = rate * s.duration_s
    measured_p = float(np.mean(1 - np.exp(-gaps * catch * np.exp(-rate * limits))))
    true_p = 1 - math.exp(-gaps * catch * math.exp(-rate * stall_after_s(s, rate)))
    return measured_p, true_p


def code_version() -> str:
    """The commit and the judgement code's files (changed in the work tree or not)."""
    judged = (
        "module_utils/model_safety/monitor/evidence.py",
        "module_utils/model_safety/monitor/observations.py",
        "module_utils/model_safety/monitor/healthy_bounds.py",
        "module_utils/model_safety/monitor/settings.py",
        "module_utils/model_safety/monitor/assess.py",
    )

    def git(*command: str) -> str:
        try:
            return subprocess.run(
                ["git", *command], cwd=REPO_ROOT, capture_output=True, text=True, check=True
            ).stdout.strip()
        except (OSError, subprocess.CalledProcessError):
            return "?"

    head = git("rev-parse", "--short", "HEAD")
    changed = git("status", "--porcelain", "--", *judged)
    files = []
    for path in judged:
        digest = hashlib.sha256((REPO_ROOT / path).read_bytes()).hexdigest()[:12]
        state = "modified" if path in changed else "as committed"
        files.append(f"{Path(path).name} {digest} ({state})")
    return f"commit {head}; " + ", ".join(files)


def healthy_table(found: dict) -> list[str]:
    lines = [
        "### Healthy canaries over a 6 h watch (wandering shares, shifting confidence)",
        "",
        "| rate | canaries | rolled back | rate (95% upper) | by rule | end safe "
        "| end inconclusive | not bounded (inconclusive) | target <= 1% |",
        "| --- | ---: | ---: | ---: | --- | ---: | ---: | --- | --- |",
    ]
    for rate_name, _ in RATES:
        results = found.get(rate_name)
        if not results:
            continue
        n = len(results)
        rolled = [r for r in results if r["decided"]]
        k = len(rolled)
        ended = [r for r in results if not r["decided"]]
        safe = sum(r["result"] == "safe" for r in ended)
        missing = Counter(d for r in ended if r["result"] != "safe" for d in r["missing"])
        rules = Counter(r["rule"] for r in rolled)
        mark = "PASS" if k / n <= FALSE_ROLLBACK_TARGET else "MISS"
        lines.append(
            f"| {rate_name} | {n} | {k} | {k / n:.2%} ({binomial_upper(k, n):.2%}) "
            f"| {', '.join(f'{SHORT_RULE.get(r, r)} {c}' for r, c in rules.most_common()) or '-'}"
            f" | {safe} | {len(ended) - safe} "
            f"| {', '.join(f'{d} {c}' for d, c in missing.most_common(3)) or '-'} | {mark} |"
        )
    return lines


def baseline_table(first: dict, healthy: dict) -> list[str]:
    """The monitor against the plain fixed-n rules, on the same streams."""
    rate_name = "1/min"
    head = " | ".join(COLLAPSES.values())
    lines = [
        "### Against the plain baseline (the gate's fixed-n rules re-judged at every check)",
        "",
        f"| judge | healthy rolled back (1/min) | healthy rolled back (1/s) | median events to "
        f"decide at {rate_name}: {head} |",
        "| --- | ---: | ---: | --- |",
    ]

    def healthy_share(rate: str, size: int | None) -> str:
        results = healthy.get(rate, [])
        if not results:
            return "-"
        if size is None:
            k = sum(r["decided"] for r in results)
        else:
            k = sum(r["plain"][size] is not None for r in results)
        return f"{k}/{len(results)} ({k / len(results):.1%})"

    for size in (None, *PLAIN_SIZES):
        medians = []
        for kind in COLLAPSES:
            cell = first.get((kind, rate_name), [])
            if size is None:
                values = [r["events"] if r["decided"] else math.inf for r in cell]
            else:
                values = [r["plain"][size][1] if r["plain"][size] else math.inf for r in cell]
            medians.append(fmt(rank(values, 0.5)))
        name = "monitor (sequential)" if size is None else f"plain, newest {size} events"
        lines.append(
            f"| {name} | {healthy_share('1/min', size)} | {healthy_share('1/s', size)} "
            f"| {' / '.join(medians)} |"
        )
    return lines


def verify_elision(workers: Any, seed: int, count: int) -> str:
    """Healthy 1/min canaries and 1/min collapses run with and without elision: identical?"""
    tasks = []
    for i in range(count):
        for elide in (True, False):
            tasks.append(("healthy", "1/min", i, (seed, 4, 0, i), elide, True))
            tasks.append(("first", "1/min", i, (seed, 5, 0, i), elide, True))
    results: dict = {}
    for task, result, _ in workers.imap_unordered(run_task, tasks, chunksize=1):
        results[(task[0], task[2], task[4])] = result
    for (kind, i, elide), result in results.items():
        if elide:
            other = results[(kind, i, False)]
            if strip(result) != strip(other):
                return f"DIFFERENT results for {kind} run {i} (a bug in the bench)"
    return (
        f"identical results with and without elision on {count} healthy canaries and "
        f"{count} x {len(COLLAPSES)} collapse runs at 1/min"
    )


def strip(result: Any) -> Any:
    """A result without the counters that elision changes."""
    if isinstance(result, list):
        return [strip(item) for item in result]
    return {k: v for k, v in result.items() if k not in ("assessed", "elided")}


if __name__ == "__main__":
    sys.exit(main())
