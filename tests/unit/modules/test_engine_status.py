"""The engine_status module through its main() against the fake systemctl/journalctl, a real
git checkout and the real redis-server: a healthy engine (build proven against git HEAD, fresh
events), each problem it reports, bad options refused, the Redis password never shown, and
check mode (read-only: the same answer)."""

from __future__ import annotations

import json

import pytest

from tests.module_harness import (
    INVOCATION,
    REDIS_SECRET,
    UNIT,
    fails,
    fails_without_the_password,
    succeeds,
    unreachable_redis,
)

MODULE = "engine_status"


@pytest.fixture
def engine(fake_systemd, git_checkout, telemetry) -> dict:
    """A running engine whose journal logs the checkout's build, with 5 fresh events."""
    checkout, sha = git_checkout
    fake_systemd.set(
        journal=[
            f"AI_ENGINE_BUILD: {sha[:7]}",
            "[OK] xgb agent loaded (weight: 100%)",
            "[READY] engine up",
        ]
    )
    for index in range(5):
        telemetry.client.xadd(telemetry.stream, {"payload": json.dumps({"n": index})})
    return {**telemetry.args, "service": UNIT, "checkout": str(checkout), "sample": 5}


@pytest.mark.parametrize("check_mode", [False, True])
def test_a_healthy_engine_has_no_problem(engine, git_checkout, check_mode) -> None:
    result = succeeds(MODULE, engine, check_mode=check_mode)
    assert (result["changed"], result["problems"], result["build_verified"]) == (False, [], True)
    assert result["git"]["sha"] == git_checkout[1]
    assert result["service"]["invocation_id"] == INVOCATION
    assert result["startup"]["voting"] == {"xgb": 1.0}
    assert (result["stream"]["length"], result["stream"]["error"]) == (5, None)


def test_every_problem_is_reported(engine, fake_systemd) -> None:
    fake_systemd.set(journal=["AI_ENGINE_BUILD: 0000000", "[ERROR] model file missing"])
    fake_systemd.show(ActiveState="failed", SubState="failed", Result="exit-code")
    engine["stream"] = "modules:no-such-stream"
    result = succeeds(MODULE, engine)
    assert result["build_verified"] is False
    assert result["problems"] == [
        f"service {UNIT} is not running (ActiveState=failed, SubState=failed, Result=exit-code)",
        f"no voting model loaded in invocation {INVOCATION}",
        f"engine never logged [READY] in invocation {INVOCATION}",
        f"1 [ERROR]/[FATAL] line(s) in invocation {INVOCATION}, latest: [ERROR] model file missing",
        f"running build 0000000 does not match git HEAD {result['git']['sha'][:12]}",
        "no events on stream modules:no-such-stream (empty or missing)",
    ]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({"service": "../../x.service"}, "not a valid systemd unit name"),
        ({"checkout": "relative/checkout"}, "checkout must be a normalised absolute path"),
        ({"stream": "a b\nc"}, "not a valid stream name"),
        ({"sample": 1}, "sample must be an integer in 2.."),
    ],
)
def test_bad_options_are_refused(engine, fake_systemd, args, message) -> None:
    result = fails(MODULE, {**engine, **args})
    assert result["msg"].startswith("cannot read the engine status: ")
    assert message in result["msg"]
    assert fake_systemd.calls() == []


def test_systemctl_failing_fails(engine, fake_systemd) -> None:
    fake_systemd.set(fail={"show": "Failed to connect to bus"})
    result = fails(MODULE, engine)
    assert result["msg"].startswith("cannot read the engine status: `systemctl show")


def test_an_unreachable_redis_is_a_problem_without_its_password(engine) -> None:
    result = succeeds(MODULE, {**engine, "redis_url": unreachable_redis()})
    assert result["problems"][-1].startswith("redis unreachable or failing: ")
    assert REDIS_SECRET not in json.dumps(result)


def test_a_redis_url_with_a_path_is_refused(engine) -> None:
    url = unreachable_redis() + "/../../etc"
    result = fails_without_the_password(MODULE, {**engine, "redis_url": url})
    assert result["msg"].startswith("invalid redis_url: ")


@pytest.mark.parametrize(
    ("text", "model"),
    [
        (
            "[Service]\nEnvironment=QSC_CANARY_MODEL=patchtst\nEnvironment=QSC_CANARY_WEIGHT=0.1\n",
            "patchtst",
        ),
        ('[Service]\nEnvironment="QSC_CANARY_MODEL=nhits" "QSC_CANARY_WEIGHT=0.2"\n', "nhits"),
        ("[Service]\nEnvironment=QSC_CANARY_WEIGHT=0.1\n", "unknown"),
        ("[Service]\nEnvironment=QSC_CANARY_MODEL=9lives\n", "unknown"),
        ("", "unknown"),
        ("\xff\xfe garbage", "unknown"),
    ],
)
@pytest.mark.parametrize("check_mode", [False, True])
def test_the_canary_dropin_names_the_model_it_installs(
    engine, tmp_path, text, model, check_mode
) -> None:
    dropin = tmp_path / "qsc_canary.conf"
    dropin.write_bytes(text.encode("latin-1"))
    result = succeeds(MODULE, {**engine, "canary_dropin": str(dropin)}, check_mode=check_mode)
    assert result["canary_dropin"] == {"path": str(dropin), "exists": True, "model": model}
    assert dropin.read_bytes() == text.encode("latin-1")


def test_a_missing_canary_dropin_installs_none(engine, tmp_path) -> None:
    dropin = tmp_path / "qsc_canary.conf"
    result = succeeds(MODULE, {**engine, "canary_dropin": str(dropin)})
    assert result["canary_dropin"] == {"path": str(dropin), "exists": False, "model": None}


def test_without_canary_dropin_none_is_returned(engine) -> None:
    assert "canary_dropin" not in succeeds(MODULE, engine)


@pytest.mark.parametrize("path", ["relative/qsc_canary.conf", "/etc/systemd/../qsc_canary.conf"])
def test_a_bad_canary_dropin_path_is_refused(engine, fake_systemd, path) -> None:
    result = fails(MODULE, {**engine, "canary_dropin": path})
    assert result["msg"] == (
        "cannot read the engine status: "
        f"canary drop-in must be a normalised absolute path: {path!r}"
    )
    assert fake_systemd.calls() == []


def test_an_unreadable_canary_dropin_fails(engine, tmp_path) -> None:
    result = fails(MODULE, {**engine, "canary_dropin": str(tmp_path)})
    assert result["msg"].startswith(
        f"cannot read the engine status: cannot read the canary drop-in {tmp_path}: "
    )
