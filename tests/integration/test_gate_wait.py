"""run_gate_waiting against a real redis-server: the gate waits for a window that is still
filling up after an engine (re)start, and only for that (reference engine events)."""

from __future__ import annotations

import threading
import time

import pytest
import redis

from model_safety.judgement.run import only_too_few_events, run_gate_waiting
from tests.integration.test_gate_cli import BASE_MS, add, engine_payloads
from tests.redis_server import free_port

CUTOVER = f"{BASE_MS - 1}-0"  # just before the first event


def test_a_window_that_fills_up_during_the_wait_passes(redis_client, redis_stream) -> None:
    healthy = engine_payloads(250)
    redis_client.xadd(
        redis_stream, {"payload": "{}"}, id=f"{BASE_MS - 1}-0"
    )  # before the cutover: not read

    def engine_publishes() -> None:
        other = redis.Redis(connection_pool=redis_client.connection_pool)
        time.sleep(0.3)
        add(other, redis_stream, healthy[:120])
        time.sleep(1.2)
        add(other, redis_stream, healthy[120:], first=120)

    publisher = threading.Thread(target=engine_publishes)
    publisher.start()
    result = run_gate_waiting(redis_client, redis_stream, wait=10, model="xgb", after=CUTOVER)
    publisher.join()
    assert result["verdict"] == "PASS", result["blockers"]
    assert result["event_count"] == 250
    assert result["reads"] >= 3  # empty, then 120 events, then all of them
    assert 1.0 <= result["waited"] < 5


def test_a_constant_model_fails_without_waiting(redis_client, redis_stream) -> None:
    add(redis_client, redis_stream, engine_payloads(50, (("SIM_XGB", "constant"),)))
    started = time.monotonic()
    result = run_gate_waiting(redis_client, redis_stream, wait=10, model="xgb", after=CUTOVER)
    assert time.monotonic() - started < 1
    assert result["verdict"] == "FAIL" and result["reads"] == 1 and result["waited"] < 1
    assert "xgb: 50 events < 200 required (canary)" in result["blockers"]
    assert any(b.startswith("xgb: constant output") for b in result["blockers"])


def test_too_few_events_until_the_timeout_fail(redis_client, redis_stream) -> None:
    add(redis_client, redis_stream, engine_payloads(50))
    result = run_gate_waiting(redis_client, redis_stream, wait=2.0, after=CUTOVER)
    assert result["verdict"] == "FAIL"
    assert result["blockers"][0] == "window: 50 events < 200 required (canary)"
    assert only_too_few_events(result)
    assert 2.0 <= result["waited"] < 3.0 and result["reads"] == 3


def test_redis_down_fails_without_waiting() -> None:
    url = f"redis://127.0.0.1:{free_port()}/0"
    result = run_gate_waiting(url, "s", wait=10, after=CUTOVER, timeout=1)
    assert result["verdict"] == "FAIL" and result["reads"] == 1 and result["waited"] < 2
    assert not only_too_few_events(result)


def test_no_wait_reads_once(redis_client, redis_stream) -> None:
    add(redis_client, redis_stream, engine_payloads(50))
    result = run_gate_waiting(redis_client, redis_stream, after=CUTOVER)
    assert (result["verdict"], result["reads"]) == ("FAIL", 1)


def gate_result(
    event_count: int, blockers: list[str], findings: dict[str, list[str]], **extra: object
) -> dict:
    """A FAIL gate result with ``findings`` (judged model -> rules, texts as the blockers)."""
    return {
        "verdict": "FAIL",
        "event_count": event_count,
        "malformed": 0,
        "blockers": blockers,
        "judged": list(findings),
        "models": {
            name: {"findings": [{"rule": rule, "text": rule} for rule in rules]}
            for name, rules in findings.items()
        },
        **extra,
    }


@pytest.mark.parametrize(
    ("result", "waits"),
    [
        (gate_result(9, [
            "window: 9 events < 200 required (canary)", "xgb: 9 events < 200 required (canary)"
        ], {"xgb": ["too_few_events"]}), True),
        (gate_result(0, [
            "window: empty (no events)", "patchtst: not in the window (no event reports this model)"
        ], {"patchtst": ["not_in_window"]}), True),
        (gate_result(0, ["window: empty (no events)"], {}), True),
        (gate_result(9, [
            "window: 9 events < 200 required (canary)",
            "patchtst: not in the window (no event reports this model)",
        ], {"patchtst": ["not_in_window"]}), False),
        (gate_result(9, [
            "window: 1 malformed event (first 1-0: unparsable JSON)",
            "window: 9 events < 200 required (canary)",
        ], {}, malformed=1), False),
        (gate_result(9, [
            "window: 9 events < 200 required (canary)", "window: no voting model in the window"
        ], {}), False),
        (gate_result(0, ["window: empty (no events)"], {}, error="x"), False),
        (gate_result(0, [], {}), False),
        (gate_result(9, [
            "window: 9 events < 100 required (collection)"
        ], {}, verdict="COLLECTION"), False),
    ],
)  # fmt: skip
def test_only_too_few_events(result: dict, waits: bool) -> None:
    assert only_too_few_events(result) is waits


def test_the_wait_follows_the_findings_not_the_sentences() -> None:
    """A reworded too-few-events blocker still waits; a collapse worded like it does not."""
    reworded = gate_result(9, ["xgb: only 9 of 200 events so far"], {"xgb": ["too_few_events"]})
    assert only_too_few_events(reworded)
    lookalike = gate_result(
        9, ["xgb: 9 events < 200 required (canary)"], {"xgb": ["action_collapse"]}
    )
    assert not only_too_few_events(lookalike)
