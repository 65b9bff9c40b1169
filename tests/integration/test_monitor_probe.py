"""canary_probe.probe_canary against a real redis-server (tests.redis_server) and a real
activation log in tmp_path: the observation rows of real XADDed events (active, inactive,
absent, malformed), the window_events cap, the silence by the server's clock, the rate before
the activation start, the cursor, and the retries when Redis is unreachable. The service and
its configuration come from a fake ``systemctl show`` runner, so no lab host is needed; the
rows go on through the monitor's own judgement (monitor.assess)."""

from __future__ import annotations

import json
from typing import Any

import pytest
import redis

from model_safety.activation.log import append_record
from model_safety.engine.role_proof import iso_ms
from model_safety.engine.systemd import SHOW_PROPERTIES
from model_safety.monitor import probe as canary_probe
from model_safety.monitor.assess import assess
from model_safety.monitor.observations import INACTIVE, Observations
from model_safety.monitor.settings import MonitorSettings, new_state
from model_safety.telemetry.events import BUY, HOLD, SELL
from tests.redis_server import RedisServer, free_port
from tests.systemd_fakes import show_output

MODEL = "patchtst"
UNIT = "quantum-ai-engine.service"
INVOCATION = "0123456789abcdef0123456789abcdef"
BASELINE = {"xgb": 0.25, "lgbm": 0.25, "nhits": 0.30, "patchtst": 0.20}
WEIGHTS = "xgb:0.28125,lgbm:0.28125,nhits:0.3375,patchtst:0.1"
SHOW = show_output(UNIT, INVOCATION, since="Fri 2026-12-04 00:00:00 UTC")
ENVIRONMENT = (
    f"Environment=QSC_MODEL_WEIGHTS={WEIGHTS} QSC_CANARY_MODEL={MODEL}\nEnvironmentFiles=\n"
)


class FakeSystemctl:
    """``systemctl show`` of the engine's unit: its state and its Environment=; records every
    call (no other command is expected)."""

    def __init__(self) -> None:
        self.calls: list[list[str]] = []

    def __call__(self, argv: list[str]) -> tuple[int, str, str]:
        self.calls.append(argv)
        if argv == ["systemctl", "show", UNIT, "--property=Environment,EnvironmentFiles"]:
            return 0, ENVIRONMENT, ""
        if argv == ["systemctl", "show", UNIT, "--property=" + ",".join(SHOW_PROPERTIES)]:
            return 0, SHOW, ""
        return 127, "", f"unexpected command {argv}"


def event(canary: tuple[str, float] | str | None, side: str = "BUY") -> str:
    """A DESIGN event with two voters; the canary ``(action, confidence)``, ``"inactive"`` or
    None (absent from model_breakdown)."""
    breakdown: dict[str, Any] = {
        "xgb": {"action": "BUY", "confidence": 0.7, "model": "xgb"},
        "lgbm": {"action": "SELL", "confidence": 0.55, "model": "lgbm"},
    }
    if canary == "inactive":
        breakdown[MODEL] = {
            "inactive": True,
            "inactive_reason": "exception_in_predict",
            "model": MODEL,
        }
    elif canary is not None:
        action, confidence = canary
        breakdown[MODEL] = {"action": action, "confidence": confidence, "model": MODEL}
    voting = [entry for entry in breakdown.values() if not entry.get("inactive")]
    return json.dumps(
        {
            "symbol": "BTCUSDT",
            "side": side,
            "confidence": 0.6,
            "consensus_count": sum(entry["action"] == side for entry in voting),
            "total_models": len(voting),
            "timestamp": "2026-12-04T00:00:00.000Z",
            "model_breakdown": breakdown,
        }
    )


def server_ms(redis_client: redis.Redis) -> int:
    seconds, microseconds = redis_client.time()
    return int(seconds) * 1000 + int(microseconds) // 1000


class Canary:
    """A canary activated at ``start_ms`` (a minute ago by the server's clock): its
    activation record, and helpers to XADD events before and after the start."""

    def __init__(self, redis_client: redis.Redis, redis_stream: str, log: str) -> None:
        self.client = redis_client
        self.key = redis_stream
        self.log = log
        self.start_ms = server_ms(redis_client) - 60_000
        self.started_at = iso_ms(self.start_ms)
        append_record(
            log,
            {
                "event": "activation",
                "model": MODEL,
                "weight": 0.1,
                "invocation_id": INVOCATION,
                "started_at": self.started_at,
            },
        )

    def add(self, at_ms: int, payload: str | None) -> str:
        fields = {"payload": payload} if payload is not None else {"other": "x"}
        return self.client.xadd(self.key, fields, id=f"{at_ms}-0").decode()

    def before(self, count: int, every_ms: int) -> None:
        """``count`` events before the start, ``every_ms`` apart, the last 1 s before it."""
        for index in range(count):
            at = self.start_ms - 1000 - (count - 1 - index) * every_ms
            self.add(at, event(("HOLD", 0.5)))

    def probe(self, url_or_client: Any, **options: Any) -> dict[str, Any]:
        runner = FakeSystemctl()
        pauses: list[float] = []
        result = canary_probe.probe_canary(
            runner,
            url_or_client,
            unit=UNIT,
            baseline=BASELINE,
            model=MODEL,
            stream=self.key,
            activation_log=self.log,
            pause=pauses.append,
            **options,
        )
        result["_pauses"] = pauses
        result["_calls"] = runner.calls
        return result


@pytest.fixture
def canary(redis_client: redis.Redis, redis_stream: str, tmp_path) -> Canary:
    return Canary(redis_client, redis_stream, str(tmp_path / "quantum" / "qsc_canary.jsonl"))


# --------------------------------------------------------------------------- observations


def test_observation_rows_of_real_events(canary: Canary, redis_server: RedisServer) -> None:
    canary.before(60, 1000)  # 1 event/s before the activation
    at = canary.start_ms + 1000
    ids = [
        canary.add(at, event(("BUY", 0.61), side="SELL")),
        canary.add(at + 10, event("inactive", side="HOLD")),
        canary.add(at + 20, event(None, side="BUY")),  # the canary is absent from the event
        canary.add(at + 30, "{broken"),
        canary.add(at + 40, event(("HOLD", 0.333333333), side="HOLD")),
        canary.add(at + 50, None),  # an entry without a payload
        canary.add(at + 60, event(("SELL", 1.0), side="BUY")),
    ]
    before = server_ms(canary.client)
    result = canary.probe(redis_server.url)
    after = server_ms(canary.client)

    assert "telemetry_error" not in result
    observations = result["observations"]
    assert observations["rows"] == [
        [at, BUY, 0.61, SELL],
        [at + 10, INACTIVE, None, HOLD],
        [at + 20, INACTIVE, None, BUY],
        [at + 40, HOLD, 0.333333, HOLD],
        [at + 60, SELL, 1.0, BUY],
    ]
    assert observations["malformed"] == 2
    assert (observations["first_id"], observations["last_id"]) == (ids[0], ids[-1])
    assert result["newest_id"] == ids[-1]
    # the silence by the server's clock, since the newest event
    assert (before - (at + 60)) / 1000 - 0.01 <= result["silence_s"] <= (after - (at + 60)) / 1000
    # the rate of the 50 newest events before the activation start: 1/s
    assert result["rate"] == {
        "rate_per_s": pytest.approx(1.0),
        "rate_events": 50,
        "rate_since": None,
    }
    assert result["after"] == canary.started_at
    assert result["attempts"] == 1 and result["_pauses"] == []
    assert result["service"]["running"] is True
    assert result["service"]["invocation_id"] == INVOCATION
    assert result["config"]["canary"] == MODEL and result["config"]["canary_weight"] == 0.1
    assert result["activation"]["started_at"] == canary.started_at
    # The rows are what the monitor reads.
    obs = Observations.from_rows(observations["rows"])
    assert obs.rows() == observations["rows"]
    settings = MonitorSettings(model=MODEL)
    state, check, judged = assess(
        new_state("h", settings, canary.started_at, None), result, settings
    )
    assert check["status"] == "warning"  # the malformed entries wait for a second read
    assert [f["rule"] for f in check["findings"]] == ["malformed_events"]
    assert (check["events"], judged.n, state["cursor"], state["rate"]) == (5, 5, ids[-1], 1.0)


def test_a_model_absent_from_every_event_is_rows_without_a_prediction(
    canary: Canary, redis_server: RedisServer
) -> None:
    canary.before(5, 1000)
    for index in range(4):
        canary.add(canary.start_ms + 100 * (index + 1), event(None, side="SELL"))
    rows = canary.probe(redis_server.url)["observations"]["rows"]
    assert rows == [[canary.start_ms + 100 * (i + 1), INACTIVE, None, SELL] for i in range(4)]


def test_the_cursor_reads_only_newer_events_and_a_malformed_last_entry_is_passed(
    canary: Canary, redis_client: redis.Redis
) -> None:
    canary.before(20, 1000)
    at = canary.start_ms + 1000
    canary.add(at, event(("BUY", 0.6)))
    last = canary.add(at + 10, "{broken")
    first = canary.probe(redis_client)
    assert first["observations"]["last_id"] == last  # the cursor moves past the bad entry
    assert first["observations"]["malformed"] == 1
    again = canary.probe(redis_client, after=last)
    assert again["after"] == last
    assert again["observations"]["rows"] == [] and again["observations"]["malformed"] == 0
    assert again["observations"]["last_id"] is None
    newer = canary.add(at + 20, event(("SELL", 0.4)))
    third = canary.probe(redis_client, after=last)
    assert third["observations"]["rows"] == [[at + 20, SELL, 0.4, BUY]]
    assert third["observations"]["last_id"] == newer
    # the rate is still the one before the activation start, whatever the cursor
    assert third["rate"]["rate_per_s"] == pytest.approx(1.0)


def test_window_events_keeps_the_newest(canary: Canary, redis_server: RedisServer) -> None:
    canary.before(10, 1000)
    ids = [
        canary.add(canary.start_ms + 100 * (i + 1), event(("BUY", round(0.3 + i / 100, 2))))
        for i in range(30)
    ]
    result = canary.probe(redis_server.url, window_events=10)
    rows = result["observations"]["rows"]
    assert [row[0] for row in rows] == [canary.start_ms + 100 * (i + 1) for i in range(20, 30)]
    assert [row[2] for row in rows] == [round(0.3 + i / 100, 2) for i in range(20, 30)]
    assert (result["observations"]["first_id"], result["observations"]["last_id"]) == (
        ids[20],
        ids[-1],
    )
    # without the cap, every event since the start
    assert len(canary.probe(redis_server.url)["observations"]["rows"]) == 30


def test_silence_is_measured_by_the_server_clock(canary: Canary, redis_client: redis.Redis) -> None:
    old = (
        server_ms(redis_client) - 120_000
    )  # before the activation: the stream's newest all the same
    canary.add(old, event(("BUY", 0.6)))
    silent = canary.probe(redis_client)
    assert silent["observations"]["rows"] == []
    assert silent["newest_id"] == f"{old}-0"
    assert silent["silence_s"] == pytest.approx(120.0, abs=2.0)
    fresh = redis_client.xadd(canary.key, {"payload": event(("SELL", 0.5))}).decode()  # server's id
    heard = canary.probe(redis_client)
    assert heard["newest_id"] == fresh
    assert 0.0 <= heard["silence_s"] < 2.0
    assert heard["observations"]["rows"][-1][1:] == [SELL, 0.5, BUY]


@pytest.mark.parametrize(("every_ms", "rate"), [(60_000, 1 / 60), (100, 10.0)])
def test_the_rate_is_measured_before_the_activation_start(
    canary: Canary, redis_server: RedisServer, every_ms: int, rate: float
) -> None:
    canary.before(20, every_ms)
    # after the start the canary publishes at another rate: not the one planned from
    for index in range(50):
        canary.add(canary.start_ms + 1 + index, event(("HOLD", 0.5)))
    result = canary.probe(redis_server.url)
    assert result["rate"]["rate_per_s"] == pytest.approx(rate)
    assert result["rate"]["rate_events"] == 20
    assert len(result["observations"]["rows"]) == 50


def test_no_event_before_the_start_is_an_unknown_rate(
    canary: Canary, redis_server: RedisServer
) -> None:
    canary.add(canary.start_ms + 5, event(("BUY", 0.6)))
    result = canary.probe(redis_server.url)
    assert result["rate"]["rate_per_s"] is None
    assert len(result["observations"]["rows"]) == 1


# --------------------------------------------------------------------------- failures


def test_unreachable_redis_is_retried_then_telemetry_error(canary: Canary) -> None:
    url = f"redis://127.0.0.1:{free_port()}/0"
    result = canary.probe(url, timeout=1.0)
    assert result["telemetry_error"].endswith("(tried 3 times)")
    assert "unreachable" in result["telemetry_error"]
    assert result["_pauses"] == [canary_probe.RETRY_PAUSE_S] * 2
    assert "observations" not in result and "attempts" not in result
    # the rest of the probe is there for the monitor to judge
    assert result["service"]["running"] is True and result["config"]["canary"] == MODEL
    settings = MonitorSettings(model=MODEL)
    _, check, _ = assess(new_state("h", settings, canary.started_at, None), result, settings)
    assert [v["rule"] for v in check["triggered"]] == ["telemetry_unreadable"]
    once = canary.probe(url, timeout=1.0, retries=0)
    assert once["telemetry_error"].endswith("(tried 1 times)") and once["_pauses"] == []


def test_a_retry_that_succeeds_is_no_error(
    canary: Canary, redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    canary.before(5, 1000)
    canary.add(canary.start_ms + 10, event(("BUY", 0.6)))
    real = canary_probe._telemetry
    failures = iter([redis.ConnectionError("blip")])

    def flaky(*args: Any, **kwargs: Any) -> dict[str, Any]:
        error = next(failures, None)
        if error is not None:
            raise error
        return real(*args, **kwargs)

    monkeypatch.setattr(canary_probe, "_telemetry", flaky)
    result = canary.probe(redis_server.url)
    assert "telemetry_error" not in result
    assert result["attempts"] == 2 and result["_pauses"] == [canary_probe.RETRY_PAUSE_S]
    assert len(result["observations"]["rows"]) == 1


def test_a_missing_stream_is_a_telemetry_error(canary: Canary, redis_server: RedisServer) -> None:
    result = canary.probe(redis_server.url)
    assert "does not exist" in result["telemetry_error"]
    assert result["telemetry_error"].endswith("(tried 3 times)")


def test_a_bad_cursor_is_not_retried(canary: Canary, redis_server: RedisServer) -> None:
    canary.before(5, 1000)
    result = canary.probe(redis_server.url, after="yesterday")
    assert result["telemetry_error"].startswith("bad read position 'yesterday': ")
    assert result["_pauses"] == []
