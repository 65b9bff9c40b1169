"""Unit tests for model_safety.monitor.assess: the canary monitor's judgement of one probe at a
time.

Probes carry what ``canary_probe`` returns: the service, the configured canary, the activation
record, and the canary model's new events as observation rows ``[ms, action, confidence,
side]`` with the stream's silence and the rate before the activation. The rows are synthetic
events from seeded numpy generators (tests.unit.test_evidence), so the evidence behind each
decision is real: rules are decided by the e-detectors, confirmed by new events, and too few
events are never a violation by themselves.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pytest

from model_safety.monitor import evidence
from model_safety.monitor.assess import (
    assess,
    assess_pool,
    end_of_watch,
    new_pool,
    pooled_specs,
    window_summary,
)
from model_safety.monitor.observations import INACTIVE, Observations
from model_safety.monitor.report import (
    ROLLBACK_REASON_MAX,
    describe_check,
    format_duration,
    progress_line,
    prometheus_text,
    rollback_reason,
)
from model_safety.monitor.settings import (
    ACTIVE,
    ENDED,
    INCONCLUSIVE,
    POOL,
    SAFE,
    MonitorError,
    MonitorSettings,
    new_state,
    share_of_alpha,
    stall_after_s,
    stream_id_key,
)
from model_safety.telemetry.events import BUY, HOLD, SELL
from tests.monitor_events import (
    T0_MS,
    Rows,
    class_rows,
    constant_rows,
    healthy_rows,
    inactive_rows,
)

MODEL = "patchtst"
HOST = "engine-01"
UNIT = "quantum-ai-engine.service"
INVOCATION = "0123456789abcdef0123456789abcdef"
OTHER_INVOCATION = "fedcba9876543210fedcba9876543210"
STARTED = "2026-01-10T12:00:00.000Z"
DEFAULT = MonitorSettings(model=MODEL)
PER_MINUTE = 1 / 60


# -- probes ----------------------------------------------------------------------------------------


def service(*, running: bool = True, invocation: str = INVOCATION, n_restarts: int = 0) -> dict:
    return {
        "unit": UNIT,
        "load_state": "loaded",
        "active_state": "active" if running else "failed",
        "sub_state": "running" if running else "failed",
        "main_pid": 4242 if running else 0,
        "n_restarts": n_restarts,
        "invocation_id": invocation if running else "",
        "active_enter_timestamp": "Sat 2026-01-10 12:00:00 UTC",
        "active_enter_monotonic_us": 5_000_000 if running else 0,
        "result": "success" if running else "exit-code",
        "running": running,
        "uptime_s": 60.0 if running else None,
        "active_since": STARTED if running else None,
    }


def activation(
    invocation: str = INVOCATION,
    *,
    event: str = "activation",
    started_at: str = STARTED,
    weight: float = 0.1,
    ts: str = "2026-01-10T12:00:01.000Z",
) -> dict:
    return {
        "event": event,
        "ts": ts,
        "model": MODEL,
        "host": HOST,
        "weight": weight,
        "invocation_id": invocation,
        "started_at": started_at,
    }


def last_id(rows: Rows) -> str | None:
    return f"{rows[-1][0]}-0" if rows else None


def probe(
    rows: Rows = (),  # type: ignore[assignment]
    *,
    svc: dict | None = None,
    record: dict | str | None = "default",
    canary: str | None = MODEL,
    config_error: str | None = None,
    telemetry_error: str | None = None,
    silence: float | None = 1.0,
    rate: float | None = PER_MINUTE,
    malformed: int = 0,
    read_to: str | None = "",
) -> dict[str, Any]:
    """What canary_probe returns for a read of ``rows`` (the canary's new events)."""
    rows = list(rows)
    result: dict[str, Any] = {
        "service": svc if svc is not None else service(),
        "activation": activation() if record == "default" else record,
        "after": STARTED,
    }
    if config_error:
        result["config_error"] = config_error
    else:
        result["config"] = {
            "canary": canary,
            "canary_weight": 0.1 if canary else None,
            "voting": {"tft": 0.9},
            "shadow": [],
        }
    if telemetry_error:
        result["telemetry_error"] = telemetry_error
        return result
    read = last_id(rows) if read_to == "" else read_to
    result.update(
        observations={
            "rows": rows,
            "malformed": malformed,
            "first_id": f"{rows[0][0]}-0" if rows else None,
            "last_id": read,
        },
        newest_id=read,
        silence_s=silence,
        rate={"rate_per_s": rate, "rate_events": 50, "rate_since": None},
        attempts=1,
    )
    return result


def start(settings: MonitorSettings = DEFAULT, host: str = HOST) -> dict[str, Any]:
    return new_state(host, settings, STARTED, None)


class Host:
    """One watched host: feeds probes to assess and keeps the state it returns; ``rows``
    makes the next events of a generator, ``later`` ms after the previous ones."""

    def __init__(
        self, settings: MonitorSettings = DEFAULT, *, hosts: int = 1, seed: int = 0
    ) -> None:
        self.settings = settings
        self.hosts = hosts
        self.state = start(settings)
        self.rng = np.random.default_rng(seed)
        self.next_ms = T0_MS
        self.obs = Observations.empty()

    def check(self, item: dict[str, Any] | None, error: str | None = None) -> dict[str, Any]:
        self.state, result, self.obs = assess(
            self.state, item, self.settings, error, hosts=self.hosts
        )
        return result

    def make(self, factory: Callable[..., Rows], n: int, *args: Any, **kwargs: Any) -> Rows:
        rows = factory(self.rng, n, *args, start_ms=self.next_ms, **kwargs)
        self.next_ms += n * 1000 + 1000
        return rows

    def healthy(self, n: int = 60, **probe_args: Any) -> dict[str, Any]:
        return self.check(probe(self.make(healthy_rows, n), **probe_args))

    def events(self, rows: Rows, **probe_args: Any) -> dict[str, Any]:
        return self.check(probe(rows, **probe_args))


def rules(items: Sequence[dict[str, Any]]) -> list[str]:
    return [item["rule"] for item in items]


def only(items: Sequence[dict[str, Any]], rule: str) -> dict[str, Any]:
    (item,) = [item for item in items if item["rule"] == rule]
    return item


# -- the healthy check -----------------------------------------------------------------------------


def test_a_healthy_check_is_ok_and_moves_the_cursor() -> None:
    host = Host()
    rows = host.make(healthy_rows, 60)
    check = host.check(probe(rows))
    assert {k: v for k, v in check.items() if k != "window"} == {
        "status": "ok",
        "findings": [],
        "triggered": [],
        "events": 60,
        "silence_s": 1.0,
        "stall_after_s": round(stall_after_s(DEFAULT, PER_MINUTE), 1),
    }
    assert check["window"] == window_summary(Observations.from_rows(rows))
    assert check["window"]["events"] == check["window"]["n"] == 60
    state = host.state
    assert state["cursor"] == state["newest_id"] == last_id(rows)
    assert (state["checks"], state["status"], state["violations"]) == (1, ACTIVE, [])
    assert (state["unjudged"], state["events"], state["rate"]) == (0, 60, PER_MINUTE)
    assert state["window"] == rows
    assert state["last_check"] == {"status": "ok", "events": 60, "rules": []}
    assert state["baseline"] == {
        "event": "activation",
        "ts": "2026-01-10T12:00:01.000Z",
        "invocation_id": INVOCATION,
        "started_at": STARTED,
        "weight": 0.1,
        "n_restarts": 0,
    }
    # A lone host's detectors have all of the false-rollback rate, planned from 1/min over 6 h.
    detectors = state["detectors"]
    assert (detectors["alpha"], detectors["planned"], detectors["events"]) == (0.01, 720, 60)
    assert set(detectors["detectors"]) == {spec.name for spec in DEFAULT.specs()}
    assert len(host.obs.rows()) == 60  # what goes on to the pooled judgement


def test_new_state() -> None:
    state = new_state(HOST, DEFAULT, STARTED, "1-0")
    assert state == {
        "host": HOST,
        "model": MODEL,
        "status": ACTIVE,
        "started_at": STARTED,
        "baseline": None,
        "cursor": "1-0",
        "newest_id": None,
        "checks": 0,
        "unjudged": 0,
        "rate": None,
        "window": [],
        "events": 0,
        "detectors": None,
        "malformed_pending": False,
        "stop": None,
        "violations": [],
        "last_check": None,
    }


def test_window_summary() -> None:
    rows = [
        [1, BUY, 0.2, BUY],
        [2, BUY, 0.4, SELL],
        [3, SELL, 0.6, HOLD],
        [4, HOLD, 0.8, HOLD],
        [5, INACTIVE, None, HOLD],
    ]
    summary = window_summary(Observations.from_rows(rows))
    assert summary == {
        "events": 5,
        "n": 4,
        "actions": {"BUY": 0.5, "SELL": 0.25, "HOLD": 0.25},
        "conf_std": round(float(np.std([0.2, 0.4, 0.6, 0.8])), 4),
        "p10": 0.26,
        "median": 0.5,
        "p90": 0.74,
        "agreement": 0.5,
        "hard_disagree": 0.25,
    }
    assert window_summary(Observations.from_rows(inactive_rows(3))) == {"events": 3, "n": 0}


# -- every model-quality rule is decided on evidence -----------------------------------------------


def narrow(rng: np.random.Generator, n: int, *, start_ms: int) -> Rows:
    """Confidences within +-0.03 of 0.6 (p90 - p10 about 0.05 < 0.12), rarely repeating."""
    return [
        [start_ms + 1000 * i, int(rng.integers(0, 3)), float(rng.uniform(0.57, 0.63)), HOLD]
        for i in range(n)
    ]


def hard(rng: np.random.Generator, n: int, *, start_ms: int) -> Rows:
    """BUY or SELL, always against the ensemble's side."""
    actions = rng.integers(0, 2, n).tolist()
    return [
        [start_ms + 1000 * i, a, float(rng.uniform(0.3, 0.9)), SELL if a == BUY else BUY]
        for i, a in enumerate(actions)
    ]


def redundant(rng: np.random.Generator, n: int, *, start_ms: int) -> Rows:
    """Always the ensemble's side."""
    actions = rng.integers(0, 3, n).tolist()
    return [
        [start_ms + 1000 * i, a, float(rng.uniform(0.3, 0.9)), a] for i, a in enumerate(actions)
    ]


def half_inactive(rng: np.random.Generator, n: int, *, start_ms: int) -> Rows:
    rows = healthy_rows(rng, n, start_ms=start_ms)
    return [
        [t, INACTIVE, None, s] if i % 2 else [t, a, c, s] for i, (t, a, c, s) in enumerate(rows)
    ]


RULE_CASES: dict[str, tuple[Callable[..., Rows], str, str, int]] = {
    # detector: (events factory, rule, text head, at most this many events to decide)
    "action_collapse:BUY": (
        lambda rng, n, start_ms: class_rows(rng, n, BUY, start_ms=start_ms),
        "action_collapse",
        "Action collapse: BUY=100.0% (>70%) over the last ",
        30,
    ),
    "action_collapse:SELL": (
        lambda rng, n, start_ms: class_rows(rng, n, SELL, start_ms=start_ms),
        "action_collapse",
        "Action collapse: SELL=100.0% (>70%) over the last ",
        30,
    ),
    "action_collapse:HOLD": (
        lambda rng, n, start_ms: class_rows(rng, n, HOLD, start_ms=start_ms),
        "action_collapse",
        "Action collapse: HOLD=100.0% (>70%) over the last ",
        30,
    ),
    "constant_output": (
        constant_rows,
        "constant_output",
        "Constant output: 100.0% of confidences repeat the previous one",
        30,
    ),
    "narrow_spread": (narrow, "narrow_spread", "Narrow spread: 100.0% of confidences within", 120),
    "hard_disagreement": (
        hard,
        "hard_disagreement",
        "Hard disagreement: 100.0% BUY vs SELL against the ensemble (>25%)",
        40,
    ),
    "redundant": (redundant, "redundant", "Redundant: agreement with the ensemble 100.0%", 80),
    "model_inactive": (half_inactive, "model_inactive", "Model inactive: no prediction in ", 40),
}


def test_the_rule_cases_cover_every_detector() -> None:
    assert set(RULE_CASES) == {spec.name for spec in DEFAULT.specs()}


@pytest.mark.parametrize("detector", list(RULE_CASES))
def test_each_rule_is_decided_on_its_evidence(detector: str) -> None:
    factory, rule, head, within = RULE_CASES[detector]
    host = Host(seed=len(detector))
    seen = 0
    for _ in range(100):
        check = host.events(host.make(factory, 10))
        seen += 10
        if check["status"] == "violation":
            break
        assert check["triggered"] == []
        assert check["status"] in ("ok", "warning")
    assert seen <= within, (detector, seen)
    violation = only(check["triggered"], rule)
    assert violation["detector"] == detector and violation["scope"] == "host"
    assert violation["text"].startswith(head), violation["text"]
    assert "decided on evidence" in violation["text"]
    spec = next(spec for spec in DEFAULT.specs() if spec.name == detector)
    assert violation["threshold"] == spec.bound
    assert violation["value"] > spec.bound
    assert set(violation["evidence"]) == {"n", "crossed_n", "onset_n", "events", "log_e"}
    assert violation["evidence"]["n"] - violation["evidence"]["crossed_n"] == 3
    assert violation in host.state["violations"]
    assert host.state["last_check"]["status"] == "violation"
    assert rule in host.state["last_check"]["rules"]
    assert seen // 10 == host.state["checks"]


def test_a_collapse_after_hours_of_health_is_decided() -> None:
    host = Host(seed=3)
    for _ in range(30):  # 6 hours at 1/min: 360 healthy events, 12 per check
        assert host.healthy(12)["status"] == "ok"
    statuses = []
    while "violation" not in statuses and len(statuses) < 10:
        check = host.events(host.make(constant_rows, 12))
        statuses.append(check["status"])
    assert statuses[-1] == "violation" and len(statuses) <= 3  # within 36 constant events
    violation = only(check["triggered"], "constant_output")
    assert violation["evidence"]["onset_n"] >= 355
    assert violation["evidence"]["events"] <= 30


# -- confirmation by new events --------------------------------------------------------------------


def test_a_crossing_is_a_finding_until_new_events_confirm_it() -> None:
    host = Host(seed=11)
    collapse = host.make(class_rows, 40, BUY)
    first = host.events(collapse[:24])  # the BUY detector crosses at its 24th event
    assert (first["status"], first["triggered"]) == ("warning", [])
    finding = only(first["findings"], "action_collapse")
    assert finding["detector"] == "action_collapse:BUY" and finding["scope"] == "host"
    assert finding["value"] >= 0 and finding["threshold"] == 0.0
    assert finding["text"] == (
        "action_collapse:BUY: evidence crossed its threshold (host); waiting for 3 new events "
        "to confirm"
    )
    assert host.state["violations"] == []
    assert host.state["last_check"] == {
        "status": "warning",
        "events": 24,
        "rules": ["action_collapse"],
    }
    # Checks that read no new event judge nothing again: still waiting.
    for _ in range(3):
        again = host.events([])
        assert (again["status"], again["triggered"]) == ("warning", [])
    assert host.events(collapse[24:26])["status"] == "warning"
    confirmed = host.events(collapse[26:27])
    assert confirmed["status"] == "violation"
    violation = only(confirmed["triggered"], "action_collapse")
    assert (violation["evidence"]["crossed_n"], violation["evidence"]["n"]) == (24, 27)
    assert confirmed["findings"] == []


def test_confirm_events_is_a_setting() -> None:
    host = Host(MonitorSettings(model=MODEL, confirm_events=0), seed=11)
    check = host.events(host.make(class_rows, 24, BUY))
    assert rules(check["triggered"]) == ["action_collapse"]
    later = Host(MonitorSettings(model=MODEL, confirm_events=10), seed=11)
    assert later.events(later.make(class_rows, 33, BUY))["status"] == "warning"
    assert later.events(later.make(class_rows, 1, BUY))["status"] == "violation"


def test_a_statistic_that_falls_back_clears_the_finding() -> None:
    host = Host(seed=12)
    assert host.events(host.make(class_rows, 24, BUY))["status"] == "warning"
    fallen = host.events([[host.next_ms, SELL, 0.5, HOLD]])
    assert (fallen["status"], fallen["findings"], fallen["triggered"]) == ("ok", [], [])
    host.next_ms += 1000
    # the three BUYs that would have confirmed the first crossing confirm nothing now
    assert host.events(host.make(class_rows, 3, BUY))["triggered"] == []


def test_a_decided_rule_is_reported_once() -> None:
    host = Host(seed=13)
    check = host.events(host.make(class_rows, 40, BUY))
    assert rules(check["triggered"]) == ["action_collapse"]
    # (the monitor rolls back now; a host that were still checked is not told it again)
    assert host.events(host.make(class_rows, 10, BUY))["triggered"] == []
    assert len(host.state["violations"]) == 1


# -- too few events are never a violation ----------------------------------------------------------


def test_one_event_per_check_of_a_healthy_model_is_never_rolled_back() -> None:
    host = Host(seed=14)
    statuses = set()
    for number in range(400):  # 400 checks of 30 s at 1 event every 30 s: 3 h 20 min
        check = host.healthy(1, silence=float(number % 30))
        statuses.add(check["status"])
        assert check["triggered"] == [], check
    assert statuses == {"ok"}
    assert host.state["events"] == 400 and host.state["violations"] == []
    assert len(host.state["window"]) == 400


def test_checks_without_events_are_fine_while_the_silence_is_probable() -> None:
    # At 1 event/min, 30 s checks read nothing half of the time: not a reason to roll back.
    host = Host(seed=15)
    host.healthy(5)
    limit = stall_after_s(DEFAULT, PER_MINUTE)
    for silence in (30.0, 60.0, 240.0, limit - 1):
        check = host.events([], silence=silence)
        assert (check["status"], check["triggered"], check["events"]) == ("ok", [], 0)


def test_a_window_of_too_few_events_decides_nothing_even_when_collapsed() -> None:
    host = Host(seed=16)
    check = host.events(host.make(class_rows, 12, HOLD))
    assert (check["status"], check["triggered"], check["findings"]) == ("ok", [], [])


# -- telemetry: stall judged against the model's own rate ------------------------------------------


def test_stall_after_s_follows_the_rate() -> None:
    # 1 event/min for 6 h: 360 gaps, a gap this long anywhere has probability 1 % x 10 %.
    at_one_per_minute = stall_after_s(DEFAULT, PER_MINUTE)
    assert at_one_per_minute == pytest.approx(60 * math.log(360 / 0.001))
    assert 12 * 60 < at_one_per_minute < 14 * 60  # about 13 minutes
    # Fast streams: the floor, stall_checks intervals.
    assert stall_after_s(DEFAULT, 10.0) == 3 * 30.0
    fast = MonitorSettings(model=MODEL, interval_s=5.0, stall_checks=4)
    assert stall_after_s(fast, 10.0) == 20.0
    assert stall_after_s(fast, 100.0) == 20.0
    # Unknown rate: the floor.
    for unknown in (None, 0.0, -1.0, math.nan, math.inf):
        assert stall_after_s(DEFAULT, unknown) == 90.0
    # A stricter false-rollback rate waits longer; a shorter watch less.
    strict = MonitorSettings(model=MODEL, false_rollback_rate=0.0001)
    assert stall_after_s(strict, PER_MINUTE) > at_one_per_minute
    short = MonitorSettings(model=MODEL, duration_s=3600)
    assert stall_after_s(short, PER_MINUTE) < at_one_per_minute
    assert stall_after_s(DEFAULT, 0.1) == pytest.approx(10 * math.log(2160 / 0.001))


@pytest.mark.parametrize(
    ("rate", "fine", "stalled", "limit"),
    [(PER_MINUTE, 700.0, 800.0, 767), (10.0, 89.0, 90.0, 90), (None, 60.0, 95.0, 90)],
)
def test_a_silence_beyond_the_limit_is_telemetry_stalled(
    rate: float | None, fine: float, stalled: float, limit: int
) -> None:
    host = Host(seed=17)
    assert host.healthy(20, rate=rate)["status"] == "ok"
    assert host.events([], silence=fine, rate=rate)["status"] == "ok"
    check = host.events([], silence=stalled, rate=rate)
    assert check["status"] == "violation"
    (violation,) = check["triggered"]
    assert violation["rule"] == "telemetry_stalled"
    assert (violation["value"], violation["threshold"]) == (stalled, pytest.approx(limit, abs=1))
    # Without a rate before the activation, the window's own (these rows: 1 per second).
    rate_text = {PER_MINUTE: "1 events/min", 10.0: "10 events/s", None: "1 events/s"}[rate]
    assert violation["text"] == (
        f"telemetry stalled: silent for {stalled:.0f} s (limit {check['stall_after_s']:.0f} s: "
        f"improbable at the rate of {rate_text}; newest None)"
    )


def test_the_rate_is_the_first_one_measured_and_kept() -> None:
    host = Host(seed=18)
    host.healthy(5, rate=None)
    assert host.state["rate"] is None
    host.healthy(5, rate=PER_MINUTE)
    host.healthy(5, rate=5.0)
    assert host.state["rate"] == PER_MINUTE
    # the detectors were planned at the first judged check, from the rate known then
    assert host.state["detectors"]["planned"] == evidence.planned_events(None, 21600, 100.0)
    assert host.events([], silence=500.0, rate=5.0)["status"] == "ok"


def test_an_empty_stream_is_a_stall() -> None:
    host = Host()
    check = host.events([], silence=None)
    (violation,) = check["triggered"]
    assert violation["rule"] == "telemetry_stalled"
    assert "silent for no event in the stream" in violation["text"]


def test_unreadable_telemetry_triggers_at_once() -> None:
    host = Host()
    error = "Redis at redis://127.0.0.1:6379/0 unreachable: Error 111 (tried 3 times)"
    check = host.check(probe(telemetry_error=error))
    assert check["status"] == "violation"
    (violation,) = check["triggered"]
    assert violation == {
        "rule": "telemetry_unreadable",
        "value": error,
        "threshold": "readable",
        "text": f"telemetry unreadable: {error}",
    }
    assert host.state["violations"] == [violation]
    assert host.state["window"] == [] and host.state["detectors"] is None


# -- malformed events ------------------------------------------------------------------------------


def test_malformed_events_are_confirmed_by_a_second_read() -> None:
    host = Host(seed=19)
    first = host.healthy(30, malformed=2)
    assert (first["status"], first["triggered"]) == ("warning", [])
    assert only(first["findings"], "malformed_events")["text"] == "2 malformed events"
    assert host.state["malformed_pending"] is True
    assert host.events([])["status"] == "ok"  # no read: nothing new either way
    second = host.healthy(30, malformed=1)
    assert second["status"] == "violation"
    (violation,) = second["triggered"]
    assert (violation["rule"], violation["value"], violation["threshold"]) == (
        "malformed_events",
        1,
        0,
    )
    assert violation["text"] == ("1 malformed events, after malformed events in the previous read")


def test_a_clean_read_between_malformed_ones_clears_them() -> None:
    host = Host(seed=20)
    host.healthy(30, malformed=1)
    assert host.healthy(30)["status"] == "ok"
    assert host.state["malformed_pending"] is False
    assert host.healthy(30, malformed=1)["status"] == "warning"


# -- the window ------------------------------------------------------------------------------------


def test_the_window_keeps_the_newest_window_events_and_the_detectors_every_event() -> None:
    settings = MonitorSettings(model=MODEL, window_events=50)
    host = Host(settings, seed=21)
    reads = [host.make(healthy_rows, 30) for _ in range(3)]
    for rows in reads:
        check = host.events(rows)
    everything = [row for rows in reads for row in rows]
    assert host.state["window"] == everything[-50:]
    assert check["window"]["events"] == 50
    assert host.state["events"] == host.state["detectors"]["events"] == 90
    outcome = end_of_watch(host.state, settings)
    assert outcome["window_events"] == 50


def _promotion() -> dict:
    return activation(
        OTHER_INVOCATION,
        event="promotion",
        started_at="2026-01-10T14:00:00.000Z",
        weight=0.5,
        ts="2026-01-10T14:00:02.000Z",
    )


def test_a_newer_record_of_the_running_start_restarts_the_window() -> None:
    host = Host(seed=22)
    collapse = host.make(class_rows, 40, BUY)
    assert host.events(collapse[:24])["status"] == "warning"  # crossed, not yet confirmed
    new_start = {"svc": service(invocation=OTHER_INVOCATION, n_restarts=3), "record": _promotion()}
    check = host.events(collapse[24:30], **new_start)
    # The new start's first check judges nothing: it was read from the old cursor.
    assert (check["status"], check["triggered"], check["events"]) == ("ok", [], 0)
    assert check["reason"].startswith("new baseline: promotion of 2026-01-10T14:00:02.000Z")
    assert host.obs.n == 0
    state = host.state
    assert state["baseline"] == {
        "event": "promotion",
        "ts": "2026-01-10T14:00:02.000Z",
        "invocation_id": OTHER_INVOCATION,
        "started_at": "2026-01-10T14:00:00.000Z",
        "weight": 0.5,
        "n_restarts": 3,
    }
    assert state["cursor"] == "2026-01-10T14:00:00.000Z" and state["newest_id"] is None
    assert (state["window"], state["events"], state["detectors"]) == ([], 0, None)
    # New evidence: the old start's crossing does not carry over to the new start.
    assert host.events(collapse[30:33], **new_start)["triggered"] == []
    assert host.state["events"] == 3
    assert host.events(host.make(class_rows, 10, BUY), **new_start)["triggered"] == []


def test_a_newer_record_of_a_start_that_does_not_run_is_a_restart() -> None:
    host = Host()
    host.healthy(10)
    third = "00000000000000000000000000000003"
    check = host.healthy(10, svc=service(invocation=third), record=_promotion())
    assert rules(check["triggered"]) == ["service_restarted"]
    assert host.state["baseline"]["invocation_id"] == INVOCATION


def test_the_first_baseline_is_the_record_even_for_another_start() -> None:
    host = Host()
    host.healthy(10, svc=service(invocation=OTHER_INVOCATION, n_restarts=5))
    assert host.state["baseline"]["invocation_id"] == INVOCATION
    assert host.state["baseline"]["n_restarts"] == 0  # not the same start: its NRestarts unknown


# -- the service -----------------------------------------------------------------------------------


def test_an_inactive_service_triggers_at_once() -> None:
    host = Host()
    check = host.healthy(10, svc=service(running=False))
    assert check["status"] == "violation"
    (violation,) = check["triggered"]
    assert violation == {
        "rule": "service_inactive",
        "value": "failed/failed",
        "threshold": "active/running",
        "text": f"service {UNIT} is failed/failed, not active/running",
    }
    assert host.state["violations"] == [violation]


def test_a_service_on_another_start_than_the_activation_triggers_at_once() -> None:
    host = Host()
    check = host.healthy(10, svc=service(invocation=OTHER_INVOCATION, n_restarts=1))
    (violation,) = check["triggered"]
    assert violation["rule"] == "service_restarted"
    assert (violation["value"], violation["threshold"]) == (OTHER_INVOCATION, INVOCATION)
    assert OTHER_INVOCATION in violation["text"] and INVOCATION in violation["text"]


def test_a_restart_after_a_good_check_triggers_at_once() -> None:
    host = Host()
    assert host.healthy(10)["status"] == "ok"
    check = host.healthy(10, svc=service(invocation=OTHER_INVOCATION))
    assert rules(check["triggered"]) == ["service_restarted"]


def test_n_restarts_growing_triggers_at_once() -> None:
    host = Host()
    assert host.healthy(10, svc=service(n_restarts=1))["status"] == "ok"
    assert host.state["baseline"]["n_restarts"] == 1
    assert host.healthy(10, svc=service(n_restarts=1))["status"] == "ok"
    check = host.healthy(10, svc=service(n_restarts=2))
    (violation,) = check["triggered"]
    assert (violation["rule"], violation["value"], violation["threshold"]) == (
        "service_restarted",
        2,
        1,
    )
    assert "NRestarts 2 > 1" in violation["text"]


def test_the_service_is_judged_before_the_telemetry() -> None:
    host = Host(seed=23)
    check = host.events(host.make(class_rows, 40, BUY), svc=service(running=False))
    assert rules(check["triggered"]) == ["service_inactive"]
    assert host.state["cursor"] is None  # the events of a dead engine prove nothing
    assert host.state["detectors"] is None and host.obs.n == 0
    dead_and_silent = Host().check(probe(telemetry_error="unreachable", svc=service(running=False)))
    assert rules(dead_and_silent["triggered"]) == ["service_inactive"]


# -- ended -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("canary", "shown"), [("nhits", "nhits"), (None, "none")])
def test_a_canary_no_longer_configured_has_ended(canary: str | None, shown: str) -> None:
    host = Host(seed=24)
    host.events(host.make(class_rows, 24, BUY))
    check = host.events(host.make(class_rows, 10, BUY), canary=canary)
    assert (check["status"], check["triggered"]) == ("ended", [])
    assert check["reason"] == (
        f"patchtst is no longer the canary on this host (configured canary: {shown})"
    )
    assert host.state["status"] == ENDED
    assert host.state["violations"] == []


def test_no_activation_record_has_ended() -> None:
    host = Host()
    check = host.healthy(10, record=None)
    assert (check["status"], check["triggered"]) == ("ended", [])
    assert check["reason"] == "no activation or promotion of patchtst in the activation log"
    assert host.state["status"] == ENDED
    without_invocation = Host().healthy(10, record=activation(invocation=""))
    assert without_invocation["status"] == "ended"


# -- failed probes ---------------------------------------------------------------------------------


def test_failed_probes_become_cannot_judge_after_stall_checks() -> None:
    host = Host()
    message = "UNREACHABLE! ssh: connect to host engine-01 port 22"
    for number in (1, 2):
        check = host.check(None, message)
        assert (check["status"], check["reason"]) == ("error", message)
        assert (check["triggered"], host.state["unjudged"]) == ([], number)
    check = host.check(None, message)
    assert check["status"] == "violation"
    (violation,) = check["triggered"]
    assert (violation["rule"], violation["value"], violation["threshold"]) == ("cannot_judge", 3, 3)
    assert violation["text"] == (
        f"the monitor could not judge the host in 3 checks in a row (limit 3): {message}"
    )


def test_a_good_probe_between_failed_ones_resets_the_count() -> None:
    host = Host()
    host.check(None, "timeout")
    host.check(None, "timeout")
    assert host.healthy(10)["status"] == "ok"
    assert host.state["unjudged"] == 0
    host.check(None, "timeout")
    assert host.check(None, "timeout")["status"] == "error"
    assert host.check(None)["status"] == "violation"
    assert "the probe gave no result" in host.state["violations"][-1]["text"]


def test_a_failed_probe_keeps_every_other_field() -> None:
    host = Host(seed=25)
    host.events(host.make(class_rows, 24, BUY))
    before = copy.deepcopy(host.state)
    host.check(None, "boom")
    after = host.state
    for key in ("cursor", "newest_id", "window", "detectors", "baseline", "rate", "events"):
        assert after[key] == before[key], key


def test_a_config_error_is_a_failed_probe() -> None:
    host = Host(MonitorSettings(model=MODEL, stall_checks=2))
    check = host.healthy(10, config_error="unit file unreadable")
    assert check["status"] == "error"
    assert check["reason"] == "cannot tell the engine's configuration: unit file unreadable"
    assert host.state["baseline"] is None
    check = host.healthy(10, config_error="unit file unreadable")
    assert rules(check["triggered"]) == ["cannot_judge"]


def test_unusable_observations_are_a_failed_probe() -> None:
    # A probe that keeps returning rows the monitor cannot use must not leave the host
    # unjudged (and unstalled) for the rest of the watch.
    host = Host(MonitorSettings(model=MODEL, stall_checks=2))
    host.healthy(10)
    cursor = host.state["cursor"]
    bad = [[T0_MS, 7, 0.5, BUY]]
    check = host.events(bad)
    assert check["status"] == "error"
    assert check["reason"].startswith("the probe's observations are unusable: bad observation")
    assert host.state["cursor"] == cursor and host.state["unjudged"] == 1
    check = host.events(bad)
    assert rules(check["triggered"]) == ["cannot_judge"]
    assert "observations are unusable" in check["triggered"][0]["text"]


# -- several hosts: the pooled judgement -----------------------------------------------------------


def test_share_of_alpha_splits_the_false_rollback_rate() -> None:
    assert share_of_alpha(DEFAULT, 1, pooled=False) == 0.01
    assert share_of_alpha(DEFAULT, 1, pooled=True) == 0.0
    assert share_of_alpha(DEFAULT, 4, pooled=True) == 0.005
    assert share_of_alpha(DEFAULT, 4, pooled=False) == 0.00125
    for hosts in (2, 3, 10):
        total = share_of_alpha(DEFAULT, hosts, pooled=True) + hosts * share_of_alpha(
            DEFAULT, hosts, pooled=False
        )
        assert total == pytest.approx(0.01)
    strict = MonitorSettings(model=MODEL, false_rollback_rate=0.001)
    assert share_of_alpha(strict, 2, pooled=False) == pytest.approx(0.00025)


class Canary:
    """One canary on several hosts: each host judged alone (with its share of the rate) and
    their new events judged together."""

    def __init__(self, names: Sequence[str], settings: MonitorSettings = DEFAULT) -> None:
        self.settings = settings
        self.hosts = {}
        for index, name in enumerate(names):
            self.hosts[name] = Host(settings, hosts=len(names), seed=index)
            self.hosts[name].state = start(settings, host=name)
        self.pool = new_pool(settings, {name: h.state for name, h in self.hosts.items()})

    def check(self, rows: dict[str, Rows]) -> tuple[dict[str, dict], list[dict], list[dict]]:
        checks = {name: self.hosts[name].events(rows[name]) for name in rows}
        observations = {name: self.hosts[name].obs for name in rows}
        states = {name: host.state for name, host in self.hosts.items()}
        self.pool, pending, decided = assess_pool(self.pool, observations, states, self.settings)
        return checks, pending, decided


def interleaved(factory: Callable[..., Rows], hosts: Sequence[str], n: int, at: int, seed: int):
    """``n`` events per host, the hosts' events alternating in time."""
    rng = np.random.default_rng(seed)
    return {
        name: [[at + 1000 * i + k, *row[1:]] for i, row in enumerate(factory(rng, n, 0))]
        for k, name in enumerate(hosts)
    }


def test_new_pool() -> None:
    states = {"b": start(), "a": start()}
    assert new_pool(DEFAULT, states) == {
        "host": POOL,
        "model": MODEL,
        "hosts": ["a", "b"],
        "detectors": None,
        "decided": [],
    }


def test_hosts_with_too_few_events_each_decide_together() -> None:
    names = ["e1", "e2", "e3"]
    canary = Canary(names)
    collapse = lambda rng, n, start_ms: class_rows(rng, n, BUY, start_ms=start_ms)  # noqa: E731
    for number in range(1, 10):
        rows = interleaved(collapse, names, 4, T0_MS + number * 100_000, seed=number)
        checks, _, decided = canary.check(rows)
        if decided:
            break
        # no host alone has the evidence
        assert all(c["triggered"] == [] for c in checks.values())
    # 3 hosts x 4 events per check: decided with the pooled evidence of about 30 events,
    # while each host (at its own smaller share) would need more than 30 of its own.
    assert number <= 3
    assert all(c["triggered"] == [] for c in checks.values())
    assert all(h.state["events"] <= 12 for h in canary.hosts.values())
    (violation,) = decided
    assert (violation["rule"], violation["detector"]) == ("action_collapse", "action_collapse:BUY")
    assert violation["scope"] == "pooled over 3 hosts"
    assert violation["text"].startswith("Action collapse: BUY=100.0% (>70%) over the last ")
    assert violation["text"].endswith(" (pooled over 3 hosts)")
    assert canary.pool["decided"] == [violation]
    detectors = canary.pool["detectors"]
    assert detectors["alpha"] == 0.005
    assert detectors["planned"] == 3 * 720  # the hosts' plans together
    assert detectors["events"] == 12 * number
    # a decided pool reports its violation once
    more = interleaved(collapse, names, 4, T0_MS + 2_000_000, seed=99)
    assert canary.check(more)[2] == []


def test_a_pooled_crossing_waits_for_confirmation() -> None:
    names = ["e1", "e2"]
    canary = Canary(names, MonitorSettings(model=MODEL, confirm_events=50))
    collapse = lambda rng, n, start_ms: class_rows(rng, n, SELL, start_ms=start_ms)  # noqa: E731
    _, pending, decided = canary.check(interleaved(collapse, names, 20, T0_MS, seed=1))
    assert decided == []
    assert [p["detector"] for p in pending] == ["action_collapse:SELL"]
    assert pending[0]["text"] == (
        "action_collapse:SELL: evidence crossed its threshold (pooled over 2 hosts); waiting "
        "for 50 new events to confirm"
    )


def test_a_single_bad_host_among_healthy_ones_is_caught_by_its_own_detectors() -> None:
    names = ["bad", "ok1", "ok2"]
    canary = Canary(names)
    for number in range(1, 10):
        at = T0_MS + number * 100_000
        rows = {
            "bad": class_rows(np.random.default_rng(number), 15, BUY, start_ms=at),
            "ok1": healthy_rows(np.random.default_rng(100 + number), 15, start_ms=at + 1),
            "ok2": healthy_rows(np.random.default_rng(200 + number), 15, start_ms=at + 2),
        }
        checks, _, decided = canary.check(rows)
        if checks["bad"]["status"] == "violation":
            break
    assert number <= 3
    assert rules(checks["bad"]["triggered"]) == ["action_collapse"]
    assert checks["bad"]["triggered"][0]["scope"] == "host"
    assert checks["ok1"]["triggered"] == checks["ok2"]["triggered"] == []
    assert decided == [] and canary.pool["decided"] == []  # the pool is 55 % BUY: not decided
    assert canary.hosts["bad"].state["detectors"]["alpha"] == pytest.approx(0.01 / 6)


def test_an_inactive_host_is_its_own_fault_and_never_rolls_back_the_pool() -> None:
    names = ["broken", "ok1", "ok2"]
    canary = Canary(names)
    assert "model_inactive" not in {spec.rule for spec in pooled_specs(DEFAULT)}
    for number in range(1, 10):
        at = T0_MS + number * 100_000
        broken = healthy_rows(np.random.default_rng(number), 15, start_ms=at)
        for row in broken:
            row[1], row[2] = INACTIVE, None
        rows = {
            "broken": broken,
            "ok1": healthy_rows(np.random.default_rng(100 + number), 15, start_ms=at + 1),
            "ok2": healthy_rows(np.random.default_rng(200 + number), 15, start_ms=at + 2),
        }
        checks, _, decided = canary.check(rows)
        if checks["broken"]["status"] == "violation":
            break
    assert rules(checks["broken"]["triggered"]) == ["model_inactive"]
    assert checks["ok1"]["triggered"] == checks["ok2"]["triggered"] == []
    assert decided == [] and canary.pool["decided"] == []
    assert "model_inactive" not in canary.pool["detectors"]["detectors"]


def test_the_state_is_strict_json() -> None:
    host = Host(seed=3)
    host.healthy(5)
    json.dumps(host.state, allow_nan=False)


def test_one_host_has_no_pool() -> None:
    canary = Canary(["e1"])
    rows = {"e1": class_rows(np.random.default_rng(1), 40, BUY)}
    checks, pending, decided = canary.check(rows)
    assert rules(checks["e1"]["triggered"]) == ["action_collapse"]
    assert (pending, decided, canary.pool["detectors"]) == ([], [], None)


# -- the end of the watch --------------------------------------------------------------------------


def test_a_watch_with_enough_healthy_events_ends_safe() -> None:
    host = Host(seed=26)
    for _ in range(10):
        host.healthy(60)
    outcome = end_of_watch(host.state, DEFAULT)
    assert outcome["result"] == SAFE
    assert (outcome["missing"], outcome["window_events"]) == ([], 600)
    assert [b["detector"] for b in outcome["bounds"]] == [s.name for s in DEFAULT.specs()]
    assert all(b["safe"] for b in outcome["bounds"])


def test_a_watch_with_too_few_events_ends_inconclusive_saying_what_is_missing() -> None:
    host = Host(seed=27)
    host.healthy(20)
    outcome = end_of_watch(host.state, DEFAULT)
    assert outcome["result"] == INCONCLUSIVE
    assert outcome["window_events"] == 20
    inactive = next(b for b in outcome["bounds"] if b["detector"] == "model_inactive")
    assert not inactive["safe"]
    assert (
        f"model_inactive: no prediction rate 0.0% over 20 events, upper bound "
        f"{100 * inactive['upper']:.1f}% not below 5%"
    ) in outcome["missing"]
    empty = end_of_watch(start(), DEFAULT)
    assert empty["result"] == INCONCLUSIVE and empty["window_events"] == 0
    assert "action_collapse:BUY: no events to bound it" in empty["missing"]
    assert len(empty["missing"]) == len(DEFAULT.specs())


def test_a_watch_of_an_undecided_but_unhealthy_model_is_not_safe() -> None:
    # 80 % HOLD for 60 events: above the bound, but not yet decided. Not safe either.
    host = Host(seed=28)
    check = host.events(host.make(class_rows, 60, HOLD, share=0.8))
    assert check["triggered"] == []
    outcome = end_of_watch(host.state, DEFAULT)
    assert outcome["result"] == INCONCLUSIVE
    assert any(m.startswith("action_collapse:HOLD: HOLD rate") for m in outcome["missing"])


# -- the state -------------------------------------------------------------------------------------


def _probes() -> list[tuple[dict | None, str | None]]:
    rng = np.random.default_rng(29)
    at = T0_MS
    items: list[tuple[dict | None, str | None]] = []
    for kind in ("healthy", "collapse", "none", "healthy", "collapse", "collapse"):
        if kind == "none":
            items.append((None, "boom"))
            continue
        rows = (
            healthy_rows(rng, 20, start_ms=at)
            if kind == "healthy"
            else class_rows(rng, 20, BUY, start_ms=at)
        )
        at += 30_000
        items.append((probe(rows, malformed=1 if kind == "healthy" else 0), None))
    return items


def test_assess_does_not_mutate_its_input() -> None:
    host = Host()
    for item, error in [
        *_probes(),
        (probe(canary=None), None),
        (probe(svc=service(running=False)), None),
        (probe(telemetry_error="x"), None),
    ]:
        state = host.state
        snapshot = copy.deepcopy(state)
        item_snapshot = copy.deepcopy(item)
        new, _, _ = assess(state, item, DEFAULT, error)
        assert state == snapshot
        assert item == item_snapshot
        assert new is not state
        assert new["checks"] == state["checks"] + 1
        host.state = new if new["status"] == ACTIVE else state


def test_the_state_is_json_and_a_reloaded_state_judges_the_same() -> None:
    direct = Host()
    reloaded = Host()
    for item, error in _probes():
        expected = direct.check(item, error)
        reloaded.state = json.loads(json.dumps(reloaded.state))
        assert reloaded.check(item, error) == expected
    assert json.loads(json.dumps(direct.state)) == direct.state
    assert reloaded.state == direct.state
    assert rules(direct.state["violations"]) == ["action_collapse"]


# -- settings --------------------------------------------------------------------------------------


def test_settings_defaults_and_dict() -> None:
    settings = MonitorSettings(model=MODEL, thresholds={"max_action_share": 0.8})
    assert settings.as_dict() == {
        "model": MODEL,
        "duration_s": 21600.0,
        "interval_s": 30.0,
        "false_rollback_rate": 0.01,
        "confirm_events": 3,
        "window_events": 1000,
        "max_hard_disagree": 0.25,
        "redundant_agreement": 0.85,
        "stall_checks": 3,
        "thresholds": {"max_action_share": 0.8},
    }
    assert json.loads(json.dumps(settings.as_dict())) == settings.as_dict()
    assert {item.name for item in dataclasses.fields(MonitorSettings)} == set(settings.as_dict())
    assert {s.name: s.bound for s in settings.specs()}["action_collapse:HOLD"] == 0.8
    MonitorSettings(model="a", duration_s=1, interval_s=0.5, confirm_events=0, window_events=10)
    MonitorSettings(model="m" * 32, false_rollback_rate=0.5, window_events=100_000)
    MonitorSettings(model=MODEL, false_rollback_rate=1e-9, confirm_events=1000)


@pytest.mark.parametrize(
    "changes",
    [
        {"model": ""},
        {"model": "PatchTST"},
        {"model": "9lives"},
        {"model": "patch-tst"},
        {"model": "m" * 33},
        {"model": "patchtst\n"},
        {"model": None},
        {"duration_s": 0},
        {"duration_s": -1.0},
        {"duration_s": math.nan},
        {"duration_s": math.inf},
        {"duration_s": True},
        {"duration_s": "6h"},
        {"interval_s": 0.0},
        {"interval_s": -30},
        {"interval_s": math.nan},
        {"false_rollback_rate": 0},
        {"false_rollback_rate": 1e-10},
        {"false_rollback_rate": 0.6},
        {"false_rollback_rate": math.nan},
        {"false_rollback_rate": True},
        {"false_rollback_rate": "0.01"},
        {"confirm_events": -1},
        {"confirm_events": 1001},
        {"confirm_events": True},
        {"confirm_events": 3.0},
        {"window_events": 9},
        {"window_events": 100_001},
        {"window_events": 1000.0},
        {"window_events": None},
        {"stall_checks": 0},
        {"stall_checks": False},
        {"max_hard_disagree": 0},
        {"max_hard_disagree": 1.0},
        {"max_hard_disagree": -0.01},
        {"max_hard_disagree": math.nan},
        {"max_hard_disagree": True},
        {"max_hard_disagree": "0.2"},
        {"redundant_agreement": 1.5},
        {"redundant_agreement": math.nan},
        {"thresholds": {"max_actionshare": 0.7}},
        {"thresholds": {"max_action_share": 1.5}},
        {"thresholds": {"max_action_share": 1.0}},
        {"thresholds": {"max_inactive_share": 0.0}},
        {"thresholds": {"min_spread": "0.1"}},
        {"thresholds": {"min_spread": math.nan}},
    ],
    ids=repr,
)
def test_bad_settings_are_refused(changes: dict[str, Any]) -> None:
    with pytest.raises(MonitorError):
        MonitorSettings(**{"model": MODEL, **changes})


@pytest.mark.parametrize("removed", ["persist_checks", "redundant_checks", "inconclusive_checks"])
def test_the_old_settings_are_gone(removed: str) -> None:
    with pytest.raises(TypeError, match=removed):
        MonitorSettings(model=MODEL, **{removed: 2})


def test_an_unknown_threshold_is_named() -> None:
    with pytest.raises(
        MonitorError, match="bad gate thresholds: unknown thresholds: max_actionshare"
    ):
        MonitorSettings(model=MODEL, thresholds={"max_actionshare": 0.7})


def test_stream_id_key() -> None:
    assert stream_id_key("1767000000000-12") == (1767000000000, 12)
    assert stream_id_key("2-0") > stream_id_key("1-99")
    for bad in (None, "", "1", "1-", "-1", "a-1", "1-b", 12, "1-2-3"):
        assert stream_id_key(bad) is None


# -- what people read ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "0:00:00"),
        (59.9, "0:00:59"),
        (60, "0:01:00"),
        (3723, "1:02:03"),
        (21600, "6:00:00"),
        (360_000, "100:00:00"),
        (-5, "0:00:00"),
    ],
)
def test_format_duration(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


def test_describe_check() -> None:
    ok = Host(seed=30).healthy(60)
    assert describe_check("e1", ok) == "e1 ok (60 new events, window 60)"
    host = Host(seed=30)
    collapse = host.make(class_rows, 40, BUY)
    warning = host.events(collapse[:25])
    assert describe_check("e1", warning) == (
        "e1 warning (25 new events, window 25; action_collapse:BUY: evidence crossed its "
        "threshold (host); waiting for 3 new events to confirm)"
    )
    violation = host.events(collapse[25:])
    text = describe_check("e1", violation)
    assert text.startswith(
        "e1 violation (15 new events, window 40; Action collapse: BUY=100.0% (>70%)"
    )
    assert "waiting" not in text  # what triggered, not the findings
    error = host.check(None, "host unreachable")
    assert describe_check("e1", error) == "e1 error (host unreachable)"
    ended = Host().healthy(5, canary=None)
    assert describe_check("e1", ended) == (
        "e1 ended (patchtst is no longer the canary on this host (configured canary: none))"
    )
    quiet = Host().events([], silence=None)
    assert describe_check("e1", quiet).startswith("e1 violation (0 new events; telemetry stalled")
    both = {
        "status": "violation",
        "events": 7,
        "findings": [{"text": "a"}, {"text": "b"}],
        "triggered": [{"text": "b"}],
    }
    assert describe_check("h", both) == "h violation (7 new events; b)"


def test_progress_line() -> None:
    checks = {
        "e1": {
            "status": "ok",
            "events": 12,
            "findings": [],
            "triggered": [],
            "window": {"events": 240},
        },
        "e2": {"status": "error", "reason": "host unreachable", "events": 0},
    }
    line = progress_line(MODEL, 3723.4, 21600, 7, "2026-01-10T13:02:03.400Z", checks, 1)
    assert line == (
        "monitor patchtst: 1:02:03 elapsed, 4:57:56 left | check 7 at 2026-01-10T13:02:03.400Z: "
        "e1 ok (12 new events, window 240), e2 error (host unreachable) | violations 1"
    )
    late = progress_line(MODEL, 22000, 21600, 9, "T", {}, 0)
    assert (
        late == "monitor patchtst: 6:06:40 elapsed, 0:00:00 left | check 9 at T: - | violations 0"
    )


STATUSES = ("monitoring", "rolling_back", "completed", "inconclusive", "rolled_back",
            "rollback_failed", "ended")  # fmt: skip


def test_prometheus_text_exact() -> None:
    rolled = {
        **start(),
        "baseline": {"invocation_id": INVOCATION, "weight": 0.1},
        "last_check_s": 1767700000.25,
        "checks": 4,
        "violations": [{"rule": "action_collapse"}, {"rule": "telemetry_stalled"}],
        "status": "rolled_back",
    }
    unsure = {**new_state('we"ird\\host', DEFAULT, STARTED, None), "status": "inconclusive"}
    text = prometheus_text(MODEL, {"e1": rolled, 'we"ird\\host': unsure}, 1767700001.5)
    e1 = 'host="e1",model="patchtst"'
    odd = 'host="we\\"ird\\\\host",model="patchtst"'
    status_lines = "".join(
        f'qsc_monitor_status{{{labels},status="{status}"}} {int(status == current)}\n'
        for labels, current in ((e1, "rolled_back"), (odd, "inconclusive"))
        for status in STATUSES
    )
    # Each family once, HELP and TYPE before all of its samples, every host's sample in it.
    assert text == (
        """\
# HELP qsc_monitor_canary_weight_ratio Weight of the watched canary (activation).
# TYPE qsc_monitor_canary_weight_ratio gauge
qsc_monitor_canary_weight_ratio{E1} 0.1
# HELP qsc_monitor_last_check_timestamp_seconds When the host was last checked.
# TYPE qsc_monitor_last_check_timestamp_seconds gauge
qsc_monitor_last_check_timestamp_seconds{E1} 1767700000.250
# HELP qsc_monitor_checks_total Checks performed in this monitoring window.
# TYPE qsc_monitor_checks_total counter
qsc_monitor_checks_total{E1} 4
qsc_monitor_checks_total{ODD} 0
# HELP qsc_monitor_violations_total Violations that triggered in this window.
# TYPE qsc_monitor_violations_total counter
qsc_monitor_violations_total{E1} 2
qsc_monitor_violations_total{ODD} 0
# HELP qsc_monitor_status The monitoring status of the host (1 for the current one).
# TYPE qsc_monitor_status gauge
STATUS# HELP qsc_monitor_exported_timestamp_seconds When this file was written.
# TYPE qsc_monitor_exported_timestamp_seconds gauge
qsc_monitor_exported_timestamp_seconds{model="patchtst"} 1767700001.500
"""
    ).replace("E1", e1).replace("ODD", odd).replace("STATUS", status_lines)


def test_prometheus_text_weight_follows_the_baseline_and_newlines_are_escaped() -> None:
    host = Host()
    host.healthy(10)
    host.state["last_check_s"] = 10
    text = prometheus_text(MODEL, {"a\nb": host.state}, 0)
    assert 'qsc_monitor_canary_weight_ratio{host="a\\nb",model="patchtst"} 0.1\n' in text
    assert (
        'qsc_monitor_last_check_timestamp_seconds{host="a\\nb",model="patchtst"} 10.000\n' in text
    )
    assert text.endswith('qsc_monitor_exported_timestamp_seconds{model="patchtst"} 0.000\n')


def test_prometheus_text_without_hosts_keeps_every_family_and_the_model() -> None:
    text = prometheus_text('a"b', {}, 1.0)
    assert text.count("# HELP ") == text.count("# TYPE ") == 6
    assert text.endswith('qsc_monitor_exported_timestamp_seconds{model="a\\"b"} 1.000\n')


def test_the_rollback_reason_names_the_rules_and_fits_a_lease_purpose() -> None:
    violation = {"rule": "action_collapse", "text": "Action collapse: BUY=96.6% (>70%)"}
    two = {"e1": [violation, {"rule": "hard_disagreement"}], "e2": [{"rule": "model_inactive"}]}
    assert rollback_reason(two, "ab12cd34") == (
        "monitor ab12cd34: e1 action_collapse,hard_disagreement; e2 model_inactive"
    )
    many = {f"engine-host-{n:03d}.example.com": [violation] for n in range(20)}
    reason = rollback_reason(many, "ab12cd34")
    assert len(reason) == ROLLBACK_REASON_MAX and reason.endswith("...")
    assert len("rollback: " + reason) <= 200
