"""role_proof's pure logic: event checks, cutovers, times, and the wait loop over a fake
Redis client and a fake clock (the real redis-server and SQLite: tests/integration)."""

from __future__ import annotations

import json
from typing import Any

import pytest
import redis

from model_safety.engine import role_events, trade_log
from model_safety.engine import role_proof as rp
from model_safety.engine.commands import EngineStateError
from tests.fake_clock import FakeClock

T0 = 1_768_046_400_000  # 2026-01-10T12:00:00.000Z


def event(roles: dict[str, str], side: str = "BUY", **overrides: Any) -> str:
    """A DESIGN event; ``roles`` maps each model to voting, shadow or inactive (all BUY)."""
    breakdown: dict[str, Any] = {}
    for name, role in roles.items():
        if role == "inactive":
            breakdown[name] = {"inactive": True, "inactive_reason": "exception_in_predict"}
        elif role == "shadow":
            breakdown[name] = {
                "action": "BUY",
                "confidence": 0.6,
                "model": f"{name}_shadow",
                "shadow": True,
            }
        else:
            breakdown[name] = {"action": "BUY", "confidence": 0.6, "model": name}
    voting = sum(role == "voting" for role in roles.values())
    payload = {
        "symbol": "BTCUSDT",
        "side": side,
        "confidence": 0.6,
        "consensus_count": voting if side == "BUY" else 0,
        "total_models": voting,
        "timestamp": "2026-01-10T12:00:00.123Z",
        "model_breakdown": breakdown,
        **overrides,
    }
    return json.dumps(payload)


VOTING = {"xgb": "voting", "lgbm": "voting", "patchtst": "voting"}
SHADOW = {"xgb": "voting", "lgbm": "voting", "patchtst": "shadow"}


class FakeStream:
    """XRANGE over an in-memory stream; ``arrivals[k]`` entries appear before read k+1."""

    def __init__(self, entries: list[str | None], arrivals: list[int] | None = None) -> None:
        self.entries = [(f"{T0 + 100 * (i + 1)}-0", p) for i, p in enumerate(entries)]
        self.visible = len(entries) if arrivals is None else 0
        self.arrivals = list(arrivals or [])
        self.calls: list[tuple[str, int]] = []

    def xrange(self, stream: str, min: str, max: str, count: int) -> list[Any]:
        if self.arrivals:
            self.visible += self.arrivals.pop(0)
        self.calls.append((min, count))
        after = rp.stream_id_key(min)
        page = [
            (sid.encode(), {} if p is None else {b"payload": p.encode()})
            for sid, p in self.entries[: self.visible]
            if rp.stream_id_key(sid) > after
        ]
        return page[:count]


def prove(client: Any, role: str = "voting", **kwargs: Any) -> tuple[dict[str, Any], FakeClock]:
    clock = FakeClock()
    args = {"min_events": 5, "timeout": 3.0, **kwargs}
    proof = rp.prove_model_role(
        client, "s", "patchtst", role, f"{T0}-0", sleep=clock.sleep, clock=clock, **args
    )
    return proof, clock


# --------------------------------------------------------------------------- events


def test_parse_event_states() -> None:
    states, parsed = role_events.parse_event(
        event({"xgb": "voting", "nhits": "inactive", "p": "shadow"})
    )
    assert states == {"xgb": ("voting", "BUY"), "nhits": ("inactive", None), "p": ("shadow", "BUY")}
    assert parsed["total_models"] == 1


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (None, "no 'payload' field"),
        ("{broken", "unparsable JSON"),
        ("[1]", "not a JSON object"),
        (event(VOTING).replace("0.6,", "NaN,", 1), "non-finite number NaN"),
        (event(VOTING, side="UP"), "side is not BUY/SELL/HOLD"),
        (event(VOTING, total_models="3"), "total_models is not a non-negative integer"),
        (event(VOTING, consensus_count=True), "consensus_count is not"),
        (event(VOTING, model_breakdown={}), "model_breakdown is not a non-empty object"),
        (event(VOTING, model_breakdown={"x": 1}), "model_breakdown.x is not an object"),
        (
            event(VOTING, model_breakdown={"x": {"action": "BUY", "confidence": 1.5}}),
            "model_breakdown.x.confidence not in [0, 1]",
        ),
        (
            event(VOTING, model_breakdown={"x": {"action": "UP", "confidence": 0.5}}),
            "model_breakdown.x.action is not BUY/SELL/HOLD",
        ),
        (
            event(VOTING, model_breakdown={"x": {"action": "BUY", "confidence": 0.5, "shadow": 1}}),
            "flags must be booleans",
        ),
        (
            event(VOTING, model_breakdown={"x": {"inactive": True, "action": "BUY"}}),
            "inactive but has an action",
        ),
        (
            event(VOTING, model_breakdown={"x": {"inactive": True}}),
            "inactive without an inactive_reason",
        ),
    ],
)
def test_malformed_payloads(payload: str | None, reason: str) -> None:
    with pytest.raises(
        role_events.MalformedEvent, match=reason.replace("[", r"\[").replace("(", r"\(")
    ):
        role_events.parse_event(payload)


@pytest.mark.parametrize(
    ("roles", "role", "overrides", "reason"),
    [
        (VOTING, "voting", {}, None),
        (SHADOW, "shadow", {}, None),
        (SHADOW, "voting", {}, "patchtst has the shadow flag, expected voting"),
        (VOTING, "shadow", {}, "patchtst votes (no shadow flag), expected shadow"),
        (SHADOW, "shadow", {"total_models": 3}, "total_models 3 counts the shadow model"),
        (VOTING, "voting", {"total_models": 2}, "total_models 2 != 3 voting models"),
        (VOTING, "voting", {"consensus_count": 1}, "consensus_count 1 != 3 voting models"),
        (SHADOW, "shadow", {"consensus_count": 3}, "consensus_count 3 != 2 voting models"),
    ],
)
def test_role_violation(roles: dict, role: str, overrides: dict, reason: str | None) -> None:
    states, parsed = role_events.parse_event(event(roles, **overrides))
    found = role_events.role_violation("patchtst", role, states, parsed)
    assert found == reason if reason is None else found.startswith(reason)


# --------------------------------------------------------------------------- small parts


def test_cutover_bound_and_times() -> None:
    assert rp.cutover_bound(f"{T0}-7") == (f"({T0}-7", T0)
    assert rp.cutover_bound("2026-01-10T12:00:00.1234Z") == (f"({T0 + 123}-{2**64 - 1}", T0 + 123)
    assert rp.cutover_bound("2026-01-10T13:00:00+01:00")[1] == T0
    for bad in ("", "1768046400000", "2026-01-10T12:00:00", "yesterday"):
        with pytest.raises(rp.RoleProofError, match="bad cutover"):
            rp.cutover_bound(bad)
    assert rp.iso_ms(T0 + 5) == "2026-01-10T12:00:00.005Z"
    assert trade_log.created_at_ms("2026-01-10T12:00:00.005Z") == T0 + 5
    assert trade_log.created_at_ms("2026-01-10 12:00:01") == T0 + 1000  # SQLite's naive UTC
    assert trade_log.created_at_ms("not a time") is None
    assert trade_log.created_at_ms(None) is None


def test_credits_model_splits_on_commas() -> None:
    assert trade_log.credits_model("xgb,patchtst", "patchtst")
    assert trade_log.credits_model("xgb, patchtst", "patchtst")
    assert not trade_log.credits_model("xgb,patchtst_v2", "patchtst")
    assert not trade_log.credits_model("", "patchtst")
    assert not trade_log.credits_model(None, "patchtst")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"model": "PatchTST"}, "not a valid model name"),
        ({"role": "canary"}, "role must be one of voting, shadow"),
        ({"stream": ""}, "not a valid stream name"),
        ({"min_events": 0}, "min_events must be a positive integer"),
        ({"min_rows": True}, "min_rows must be a positive integer"),
        ({"timeout": -1}, "timeout must be in"),
        ({"after": "soon"}, "bad cutover"),
    ],
)
def test_bad_arguments_raise(kwargs: dict[str, Any], message: str) -> None:
    args = {"stream": "s", "model": "patchtst", "role": "voting", "after": f"{T0}-0", **kwargs}
    with pytest.raises(EngineStateError, match=message):
        rp.prove_model_role(FakeStream([]), **args)


# --------------------------------------------------------------------------- the wait loop


def test_voting_proven_without_trade_log() -> None:
    proof, clock = prove(FakeStream([event(VOTING)] * 6))
    assert proof["proven"] is True, proof
    assert (proof["events"], proof["missing"], proof["rows"], proof["reasons"]) == (5, 0, 0, [])
    assert (proof["first_id"], proof["last_id"]) == (f"{T0 + 100}-0", f"{T0 + 500}-0")
    assert clock.sleeps == []


def test_contradiction_fails_at_once_naming_the_stream_id() -> None:
    client = FakeStream([event(VOTING), event(SHADOW), event(SHADOW)] + [event(VOTING)] * 9)
    proof, clock = prove(client)
    assert proof["proven"] is False
    assert proof["violations"] == [f"{T0 + 200}-0: patchtst has the shadow flag, expected voting"]
    assert proof["reasons"] == [
        f"1 event contradicts the voting role of patchtst, first {proof['violations'][0]}"
    ]
    assert (proof["events"], proof["reads"], clock.sleeps) == (1, 1, [])


def test_incremental_reads_wait_for_new_events() -> None:
    client = FakeStream([event(VOTING)] * 5, arrivals=[2, 0, 3])
    proof, clock = prove(client)
    assert proof["proven"] is True, proof
    assert proof["reads"] == 3 and clock.sleeps == [0.5, 0.5]
    # Each read starts after the last id seen, never from the cutover again.
    assert [start for start, _count in client.calls] == [
        f"({T0}-0",
        f"({T0 + 200}-0",
        f"({T0 + 200}-0",
    ]
    assert all(count == role_events.PAGE_SIZE for _start, count in client.calls)


def test_pages_are_followed_until_the_stream_is_drained(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(role_events, "PAGE_SIZE", 2)
    client = FakeStream([event(VOTING)] * 5)
    proof, clock = prove(client)
    assert (proof["proven"], proof["reads"], len(client.calls), clock.sleeps) == (True, 1, 3, [])


def test_too_few_events_fail_at_the_timeout() -> None:
    proof, clock = prove(FakeStream([event(VOTING)] * 3), timeout=1.2)
    assert proof["proven"] is False
    assert clock.sleeps == [0.5, 0.5, pytest.approx(0.2)]
    assert proof["elapsed"] == 1.2
    assert proof["reasons"] == [
        f"only 3 events show patchtst as voting after {T0}-0 within 1.2 s (5 required; 3 read)"
    ]


def test_missing_and_inactive_share_over_five_percent_fails() -> None:
    without = {"xgb": "voting", "lgbm": "voting"}
    inactive = {**without, "patchtst": "inactive"}
    entries = [event(without), event(inactive)] + [event(VOTING)] * 38
    proof, _clock = prove(FakeStream(entries), min_events=38)
    assert (proof["events"], proof["missing"], proof["inactive"]) == (38, 1, 1)
    assert proof["proven"] is True, proof  # exactly 5% is allowed
    proof, _clock = prove(FakeStream([event(without)] * 2 + [event(VOTING)] * 5))
    assert proof["proven"] is False
    assert proof["reasons"] == [
        "patchtst missing from 2 of 7 events (28.6% > 5%; absent 2, inactive 0)"
    ]


@pytest.mark.parametrize(
    ("bad", "reason"), [("{broken", "unparsable JSON"), (None, "no 'payload' field")]
)
def test_malformed_event_fails_at_once(bad: str | None, reason: str) -> None:
    proof, clock = prove(FakeStream([event(VOTING), bad, "{broken"] + [event(VOTING)] * 5))
    assert proof["proven"] is False and clock.sleeps == []
    assert len(proof["violations"]) == 1
    assert proof["violations"][0].startswith(f"{T0 + 200}-0: malformed event: {reason}")
    assert proof["reasons"][0].startswith("1 event contradicts the voting role of patchtst")


def test_shadow_proven() -> None:
    proof, _clock = prove(FakeStream([event(SHADOW)] * 5), role="shadow")
    assert (proof["proven"], proof["events"], proof["role"]) == (True, 5, "shadow")


class FailingClient:
    def xrange(self, *args: Any, **kwargs: Any) -> list[Any]:
        raise redis.ConnectionError("Error 111 connecting to 127.0.0.1:1. Connection refused.")


def test_redis_failure_is_a_reason_not_an_exception() -> None:
    proof, clock = prove(FailingClient())
    assert proof["proven"] is False and clock.sleeps == []
    assert proof["reasons"] == [
        "redis unreachable or failing: ConnectionError: Error 111 connecting to 127.0.0.1:1. "
        "Connection refused."
    ]


def test_failure_message() -> None:
    proof, _clock = prove(FakeStream([]), timeout=0)
    message = rp.role_failure_message(proof, "s", "/db")
    assert message == (
        "patchtst is not proven voting (stream s and trade log /db; 0 events, 0 rows, 0 s): "
        + proof["reasons"][0]
    )
