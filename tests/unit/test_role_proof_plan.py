"""The telemetry proof's plan (issue 13, item 0): how many events to wait for, and how long,
at the rate observed before the activation, from 1 event/min to 100/s."""

from __future__ import annotations

import math
from typing import Any

import pytest

from model_safety.engine import role_proof as rp
from model_safety.engine.commands import EngineStateError


@pytest.mark.parametrize(
    ("rate", "events", "wait"),
    [
        # Production (DESIGN "Event rates"): 15 expected in 900 s, 5 all but surely.
        (1 / 60, 5, 900.0),
        # 20 events, twice the time they need with probability 99.9%.
        (0.2, 20, 367.0),
        (1.0, 20, 73.4),
        # The lab's rates: 20 events within 60 s, as before.
        (10.0, 20, 60.0),
        (100.0, 20, 60.0),
    ],
)
def test_plan_at_each_rate(rate: float, events: int, wait: float) -> None:
    plan = rp.proof_plan(rate, 900)
    assert (plan["events"], plan["wait"]) == (events, wait)
    # A healthy start shows them within the wait with probability 99.9% at that rate.
    assert 1 - rp.poisson_cdf(events - 1, rate * wait) >= 1 - rp.MISS_PROBABILITY
    assert plan["probability"] >= 1 - rp.MISS_PROBABILITY
    assert plan["async_s"] > plan["wait"]
    assert 1 <= plan["poll_s"] <= 15


def test_plan_takes_the_most_events_that_come_all_but_surely() -> None:
    plan = rp.proof_plan(1 / 60, 900)
    # One event more would be missed by more than 1 healthy start in 1000.
    assert rp.poisson_cdf(plan["events"], 15.0) > rp.MISS_PROBABILITY
    assert plan["expected_s"] == 300.0


def test_a_short_bound_asks_for_fewer_events() -> None:
    # The lab test: 0.2/s with activation_verify_timeout=60: the first 3 events, ~15 s.
    plan = rp.proof_plan(0.2, 60)
    assert (plan["events"], plan["wait"], plan["expected_s"]) == (3, 60.0, 15.0)
    assert rp.proof_plan(0.2, 60, max_events=2)["events"] == 2


@pytest.mark.parametrize("rate", [None, 0.0, -1.0, math.nan])
def test_unknown_rate_falls_back_to_one_event_within_the_bound(rate: float | None) -> None:
    plan = rp.proof_plan(rate, 900)
    assert (plan["events"], plan["wait"], plan["rate_per_s"], plan["probability"]) == (
        1,
        900.0,
        None,
        None,
    )


def test_a_bound_too_short_for_the_rate_is_said() -> None:
    plan = {**rp.proof_plan(1 / 60, 60), "rate_events": 50}
    assert plan["events"] == 1 and plan["probability"] < 0.7
    message = rp.plan_message(plan, "patchtst", "voting", "2026-01-10T12:00:00Z")
    assert message.startswith("waiting for 1 events showing patchtst voting after 2026-01-10T")
    assert (
        "only 63% likely within the wait at this rate: raise activation_verify_timeout" in message
    )


def test_message_names_what_is_waited_for() -> None:
    plan = {**rp.proof_plan(1 / 60, 900), "rate_events": 50}
    assert rp.plan_message(plan, "patchtst", "voting", "X") == (
        "waiting for 5 events showing patchtst voting after X, up to 900 s (about 300 s "
        "expected; pre-activation rate 0.0167/s from 50 events)"
    )
    unknown = {**rp.proof_plan(None, 900), "rate_events": 0}
    assert "pre-activation rate unknown (0 events), so the minimum" in rp.plan_message(
        unknown, "patchtst", "shadow", "X"
    )


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"max_wait": 3601}, "timeout"), ({"max_wait": -1}, "timeout"), ({"max_events": 0}, "max")],
)
def test_plan_bad_arguments(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(EngineStateError, match=message):
        rp.proof_plan(1.0, **kwargs)


def test_observed_rate() -> None:
    # The newest events, (n - 1) / span, as engine_status reports it.
    assert rp.observed_rate([10_000, 9_000, 5_000], 11_000, None, 3) == pytest.approx(0.4)
    # All of the start's events (fewer than the sample): count over the start's time.
    assert rp.observed_rate([10_000, 9_000], 11_000, 1_000, 50) == pytest.approx(0.2)
    # A full sample ignores the start: its events span less than the start's time.
    assert rp.observed_rate([10_000, 9_000], 11_000, 1_000, 2) == pytest.approx(1.0)
    assert rp.observed_rate([], 11_000, 1_000, 50) is None
    assert rp.observed_rate([10_000], 11_000, None, 50) is None
    assert rp.observed_rate([10_000, 10_000], 11_000, None, 2) is None


class Stream:
    """XREVRANGE over ids only, as redis-py answers it (bytes)."""

    def __init__(self, ids: list[str]) -> None:
        self.ids = ids
        self.calls: list[dict[str, Any]] = []

    def xrevrange(self, stream: str, max: str, min: str, count: int) -> list:
        self.calls.append({"max": max, "min": min, "count": count})

        def key(stream_id: str) -> tuple[int, int]:
            ms, seq = stream_id.lstrip("(").split("-")
            return int(ms), int(seq)

        low = key(min) if min != "-" else (-1, -1)
        chosen = [
            i
            for i in self.ids
            if key(i) <= key(max) and (key(i) > low if min.startswith("(") else key(i) >= low)
        ]
        return [(i.encode(), {b"payload": b"{}"}) for i in reversed(chosen)][:count]


def test_pre_activation_rate_reads_the_events_before_the_cutover() -> None:
    # Fast events, then a slower start (at 20 s) with one event every 5 s, then the cutover.
    fast = [f"{10_000 + 10 * i}-0" for i in range(100)]
    slow = ["25000-0", "30000-0", "35000-0"]
    after = [f"{41_000 + i}-0" for i in range(5)]
    client = Stream(fast + slow + after)
    since = "1970-01-01T00:00:20Z"
    rate = rp.pre_activation_rate(client, "s", "40000-0", since)
    assert rate == {"rate_per_s": pytest.approx(0.15), "rate_events": 3, "rate_since": since}
    assert client.calls[-1] == {"max": "40000-0", "min": "(20000-18446744073709551615", "count": 50}
    # Without the start: the newest 50 events, whichever start emitted them.
    assert rp.pre_activation_rate(client, "s", "40000-0")["rate_per_s"] == pytest.approx(
        49 / (35.0 - 10.53)
    )
