"""run_promotion_check against a real redis-server (cutover, count, Redis unreachable, bad
arguments), and the promotion_check module run locally by Ansible
(``ansible localhost -c local -M library``): GO with its decision log, BLOCKED, check mode."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import redis

from model_safety.judgement.run import run_promotion_check
from tests import local_ansible
from tests.redis_server import free_port
from tests.unit import test_promotion
from tests.unit.test_promotion import DAY, UPTIME_BLOCKER
from tests.unit.test_shadow import healthy

REPO = Path(__file__).resolve().parents[2]
T0 = 1_768_046_400_000  # 2026-01-10T12:00:00.000Z
STEP_MS = 100
OLD_EVENTS = 50
CUTOVER_ID = f"{T0 + (OLD_EVENTS - 1) * STEP_MS}-0"  # the last event of the previous start
CUTOVER_ISO = "2026-01-10T12:00:04.950Z"  # between that one and the first of the current start
# The unit tests' promotion strategy, for this machine, where Ansible runs the module.
STRATEGY = {**test_promotion.STRATEGY, "host": "localhost"}


def fill(redis_client: redis.Redis, stream: str, shadow: bool = True) -> None:
    """50 malformed entries of the previous start, then 300 healthy events of the current one
    (the model ``s`` in shadow or voting), 100 ms apart from T0."""
    payloads = ["{"] * OLD_EVENTS + [json.dumps(e) for e in healthy(shadow=shadow)]
    pipe = redis_client.pipeline(transaction=False)
    for index, payload in enumerate(payloads):
        pipe.xadd(stream, {"payload": payload}, id=f"{T0 + index * STEP_MS}-0")
    pipe.execute()


def promote(source: Any, stream: str, role: str = "shadow", **kwargs: Any) -> dict[str, Any]:
    args = {
        "model": "s",
        "uptime_s": 2 * DAY,
        "min_uptime_s": DAY,
        "timeout": 2.0,
        "weights": test_promotion.WEIGHTS,
        **kwargs,
    }
    return run_promotion_check(source, stream, current_role=role, **args)


# --------------------------------------------------------------------------- run_promotion_check


@pytest.mark.parametrize("after", [CUTOVER_ID, CUTOVER_ISO])
def test_go_on_the_events_of_the_current_start(
    redis_server, redis_client, redis_stream, after
) -> None:
    fill(redis_client, redis_stream)
    result = promote(redis_server.url, redis_stream, after=after)
    assert (result["verdict"], result["blockers"], result["exit_code"]) == ("GO", [], 0)
    assert result["event_count"] == 300 and result["malformed"] == 0
    assert result["window"]["first_id"] == f"{T0 + OLD_EVENTS * STEP_MS}-0"
    assert result["shadow_report"]["status"] == "READY"
    assert result["source"] == {
        "redis": redis_server.url,
        "stream": redis_stream,
        "count": None,
        "after": after,
    }
    assert json.dumps(result, allow_nan=False)


def test_the_previous_start_blocks_without_a_cutover(
    redis_server, redis_client, redis_stream
) -> None:
    fill(redis_client, redis_stream)
    result = promote(redis_server.url, redis_stream)  # the newest 500: both starts
    assert result["verdict"] == "BLOCKED"
    assert result["blockers"] == [f"window: 50 malformed events (first {T0}-0: unparsable JSON)"]
    assert promote(redis_server.url, redis_stream, count=300)["verdict"] == "GO"  # the newest 300


def test_voting_canary_with_a_client_left_open(redis_client, redis_stream) -> None:
    fill(redis_client, redis_stream, shadow=False)
    result = promote(redis_client, redis_stream, "voting", after=CUTOVER_ID)
    assert (result["verdict"], result["gate"]["verdict"]) == ("GO", "PASS")
    blocked = promote(redis_client, redis_stream, "voting", after=CUTOVER_ID, uptime_s=3600)
    assert blocked["blockers"] == [UPTIME_BLOCKER]
    assert redis_client.ping()  # a redis_client passed in is not closed
    shadow = promote(redis_client, redis_stream, "shadow", after=CUTOVER_ID)
    assert shadow["blockers"] == [
        "counted as voter: not tagged shadow in 300 of 300 events that report it"
    ]


def test_redis_unreachable_blocks_without_leaking_the_password() -> None:
    url = f"redis://:pw-never-shown-9Z@127.0.0.1:{free_port()}/0"
    result = promote(url, "any", uptime_s=3600)
    assert (result["verdict"], result["exit_code"]) == ("BLOCKED", 2)
    assert "unreachable" in result["blockers"][0]
    assert result["blockers"][1:] == [UPTIME_BLOCKER]
    assert result["error"] == result["blockers"][0]
    assert "pw-never-shown-9Z" not in json.dumps(result)
    assert result["source"]["redis"].startswith("redis://:***@127.0.0.1:")


@pytest.mark.parametrize(
    ("kwargs", "reason"),
    [
        ({"role": "canary"}, "unknown current_role 'canary' (one of shadow, voting)"),
        ({"model": "Patch TST"}, "not a valid model name (^[a-z][a-z0-9_]{0,31}$): 'Patch TST'"),
        ({"uptime_s": float("nan")}, "uptime_s must be a finite number of seconds >= 0, not nan"),
        ({"after": "yesterday"}, "bad --after"),
        ({"thresholds": {"max_payload": 1}}, "bad thresholds: unknown thresholds: max_payload"),
        ({"count": 0}, "count must be a positive integer, not 0"),
    ],
)
def test_bad_arguments_block(redis_server, redis_client, redis_stream, kwargs, reason) -> None:
    fill(redis_client, redis_stream)
    role = kwargs.pop("role", "shadow")
    result = promote(redis_server.url, redis_stream, role, **kwargs)
    assert result["verdict"] == "BLOCKED"
    assert result["blockers"][0].startswith(reason)
    assert result["error"] == result["blockers"][0]


# --------------------------------------------------------------------------- the module


def run_module(*options: str, **args: Any) -> tuple[bool, dict[str, Any]]:
    """Run promotion_check ad hoc on localhost: (succeeded, its result)."""
    succeeded, result, _output = local_ansible.run_module("promotion_check", args, *options)
    return succeeded, result


def test_module_go_blocked_and_check_mode(
    redis_server, redis_client, redis_stream, tmp_path
) -> None:
    fill(redis_client, redis_stream)
    common = {
        "redis_url": redis_server.url,
        "stream": redis_stream,
        "model": "s",
        "weights": test_promotion.WEIGHTS,
        "current_role": "shadow",
        "after": CUTOVER_ISO,
        "min_uptime": DAY,
        "strategy": STRATEGY,
    }
    reports = tmp_path / "go"
    reports.mkdir()
    ok, result = run_module(**common, uptime_s=2 * DAY, report_dir=str(reports))
    assert ok, result
    assert (result["changed"], result["verdict"], result["blockers"]) == (False, "GO", [])
    assert result["strategy"] == STRATEGY
    markdown = Path(result["reports"]["markdown"])
    assert markdown.parent == reports and markdown.name.startswith("promotion_decision_")
    text = markdown.read_text(encoding="utf-8")
    assert text.startswith("# Promotion decision: s shadow -> 0.1\n")
    assert "- Operator: alice" in text and "## Verdict: GO" in text
    written = json.loads(Path(result["reports"]["json"]).read_text(encoding="utf-8"))
    assert (written["verdict"], written["strategy"]) == ("GO", STRATEGY)

    # BLOCKED fails the task, names every blocker, and writes nothing in check mode.
    blocked = tmp_path / "blocked"
    blocked.mkdir()
    ok, result = run_module("--check", **common, uptime_s=3600, report_dir=str(blocked))
    assert not ok
    assert result["msg"] == f"promotion of s BLOCKED: {UPTIME_BLOCKER}"
    assert (result["verdict"], result["blockers"]) == ("BLOCKED", [UPTIME_BLOCKER])
    assert "reports" not in result and list(blocked.iterdir()) == []

    # report_only returns a BLOCKED verdict (the playbook decides) and keeps its decision log.
    # From a canary step the host's activation log must show the monitor's safe for the step.
    log = tmp_path / "qsc_canary.jsonl"
    log.write_text(
        json.dumps({"event": "activation", "ts": "2026-01-10T12:00:00Z", "model": "s"}) + "\n"
    )
    voting = {**common, "current_role": "voting", "activation_log": str(log)}
    ok, result = run_module(**voting, uptime_s=3600, report_dir=str(blocked), report_only=True)
    assert ok, result
    assert result["verdict"] == "BLOCKED"
    (unwatched,) = result["monitor"]["refusals"]
    assert unwatched.startswith("monitor: no completed watch of s since its canary activation")
    assert result["blockers"] == [
        "s: tagged shadow in 300 of 300 events that report it (a voting canary votes in every "
        "event)",
        UPTIME_BLOCKER,
        unwatched,
    ]
    text = Path(result["reports"]["markdown"]).read_text(encoding="utf-8")
    assert "## Verdict: BLOCKED" in text and f"- {UPTIME_BLOCKER}" in text
    assert "## Monitor: missing" in text and f"- {unwatched}" in text

    # The operator's override waives the monitor's blocker (only that one) and says so.
    ok, result = run_module(
        **voting, uptime_s=3600, monitor_override=" watched\nby hand ", report_only=True
    )
    assert ok and result["blockers"][-1] == UPTIME_BLOCKER, result
    assert result["monitor"]["override"] == {"reason": "watched by hand", "found": "missing"}
    ok, result = run_module(**voting, uptime_s=3600, monitor_override=" ")
    assert not ok and "monitor_override must not be blank" in result["msg"], result
