"""The lab engine's settings that produce each consensus stop condition (issue 16 item 4),
measured on the reference engine with fixed seeds, and judged by the monitor's stop watch at
1 event/min and at 100 events/s (30 s checks). The lab test
(tests/integration/test_stop_conditions_lab.py) runs the same settings on a lab host.

consensus_count counts the voting models that agree with the side, so with four voters and
three actions a random (``noisy``) voter rarely leaves the side with one vote: some pair
always agrees, and a pair outweighs one voter. What breaks the consensus is a canary that
decides alone against the others; what makes it redundant is a canary that never differs.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from ai_engine.config import load_config
from ai_engine.engine import Engine
from model_safety.engine.stop_conditions import window_measures
from model_safety.monitor.settings import MonitorSettings
from model_safety.monitor.stop_watch import judge_stop_conditions
from model_safety.telemetry.events import parse_window
from tests.unit.test_monitor_stop_watch import measures

MODEL = "patchtst"
# patchtst votes, as the canary, in every scenario (the lab's default has it shadow-only).
CANARY = {"PATCHTST_SHADOW_ONLY": "false", "QSC_CANARY_MODEL": MODEL}
# consensus_broken: a contrarian canary (a healthy view of the opposite market) with the
# decisive weight 0.7; the baseline models mostly agree with each other and against it, so
# about two thirds of the events are decided by the canary alone (consensus 1).
CONSENSUS_BROKEN = {
    **CANARY,
    "QSC_MODEL_WEIGHTS": "xgb:0.1,lgbm:0.1,nhits:0.1,patchtst:0.7",
    "SIM_PATCHTST": "contrarian",
}
# consensus_redundant: every voter constant (BUY at 0.5): every event at full consensus,
# the canary voting with the others.
CONSENSUS_REDUNDANT = {
    **CANARY,
    **{f"SIM_{model.upper()}": "constant" for model in ("xgb", "lgbm", "nhits", MODEL)},
}
SEEDS = (20260110, 7)
CHECK_S = 30.0


def engine_events(env: dict[str, str], count: int, step_s: float, seed: int) -> list:
    """``count`` stream entries ``(id, payload)`` of the reference engine (lab defaults changed
    by ``env``), ``step_s`` seconds apart."""
    engine = Engine(load_config({"ENGINE_SEED": str(seed), **env}))
    start = datetime(2026, 1, 10, tzinfo=UTC)
    return [
        (
            f"{1_700_000_000_000 + round(i * step_s * 1000)}-{i}",
            engine.step(i * step_s, start + i * timedelta(seconds=step_s)).json,
        )
        for i in range(count)
    ]


def shares(env: dict[str, str], seed: int, count: int = 3000) -> tuple[float, float]:
    """The shares of the events at consensus 0-1 and at full consensus with the canary, as
    the monitor's probe counts them."""
    measured = window_measures(parse_window(engine_events(env, count, 0.01, seed)), MODEL)
    return measured["low"] / count, measured["full"] / count


@pytest.mark.parametrize("seed", SEEDS)
def test_the_broken_setting_puts_most_events_at_consensus_0_1(seed: int) -> None:
    low, full = shares(CONSENSUS_BROKEN, seed)
    assert low > 0.45 > 0.30  # measured 0.68 with both seeds
    assert full < 0.05


@pytest.mark.parametrize("seed", SEEDS)
def test_the_redundant_setting_puts_every_event_at_full_consensus(seed: int) -> None:
    low, full = shares(CONSENSUS_REDUNDANT, seed)
    assert full > 0.90 > 0.80  # every event: 1.0
    assert low == 0


@pytest.mark.parametrize("seed", SEEDS)
def test_the_healthy_lab_with_a_voting_canary_is_neither(seed: int) -> None:
    low, full = shares(CANARY, seed)
    assert low < 0.05  # measured under 0.5 %
    assert 0.15 < full < 0.50  # measured 0.30


def watch(env: dict[str, str], count: int, step_s: float) -> list[tuple[int, list, list]]:
    """The monitor's stop watch over ``count`` events ``step_s`` apart, checked every 30 s
    (each check judges the events since the last one): per check, the events read so far,
    the violations and the warnings."""
    events = engine_events(env, count, step_s, SEEDS[0])
    settings = MonitorSettings(model=MODEL)
    state: dict[str, Any] = {}
    checks = []
    read = 0
    for check in range(1, math.ceil(count * step_s / CHECK_S) + 1):
        upto = min(count, math.ceil(check * CHECK_S / step_s))
        new = window_measures(parse_window(events[read:upto]), MODEL)
        read = upto
        probe = {"stop_conditions": measures(), "stop_events": new}
        stop, violations, warnings = judge_stop_conditions(state, probe, settings)
        state = {"stop": stop}
        checks.append((read, violations, warnings))
    return checks


def rules(findings: list[dict]) -> list[str]:
    return [finding["rule"] for finding in findings]


@pytest.mark.parametrize(
    ("count", "step_s"),
    [(150, 60.0), (6000, 0.01)],  # 1 event/min for 2.5 h (one event every other check); 100/s
)
def test_the_monitor_rolls_back_the_broken_setting_once_decided(count: int, step_s: float) -> None:
    checks = watch(CONSENSUS_BROKEN, count, step_s)
    decided = [read for read, violations, _ in checks if rules(violations) == ["consensus_broken"]]
    # Never before stop_min_events (100) events: too few is "not decided yet", no rollback.
    assert all(violations == [] for read, violations, _ in checks if read < 100)
    assert decided and decided[0] <= max(100, round(CHECK_S / step_s)), decided[:3]
    final = next(v for read, v, _ in checks if read == decided[0])[0]
    assert final["blocking"] and final["threshold"] == 0.30 and final["value"] > 0.45
    assert final["text"].startswith("Consensus broken: consensus 0-1 in ")
    assert all("consensus_redundant" not in rules(warnings) for _, _, warnings in checks)


@pytest.mark.parametrize(("count", "step_s"), [(150, 60.0), (6000, 0.01)])
def test_the_monitor_warns_on_the_redundant_setting_and_never_rolls_back(
    count: int, step_s: float
) -> None:
    checks = watch(CONSENSUS_REDUNDANT, count, step_s)
    assert all(violations == [] for _, violations, _ in checks)
    warned = [read for read, _, warnings in checks if rules(warnings) == ["consensus_redundant"]]
    # Warned from the first check with stop_min_events (100) events on, to the last.
    assert warned[0] == next(read for read, _, _ in checks if read >= 100)
    assert warned[-1] == count
    warning = checks[-1][2][0]
    assert not warning["blocking"] and warning["value"] == 1.0
    assert warning["text"] == (
        f"Consensus redundant: full consensus with {MODEL} in 100.0% of {count} events (>80%)"
    )
    assert all(rules(warnings) in ([], ["consensus_redundant"]) for _, _, warnings in checks)
