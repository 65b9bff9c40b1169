"""Unit tests of an activation's change of one host in one call (model_safety.activation.change):
real env file, drop-in and lease in a temporary directory, and a fake host whose engine starts
on the files as they are on disk (the reference engine's own start-up lines), so what the change
writes is what the next start runs and is proven to run. A fake clock makes the waits instant."""

from __future__ import annotations

import json
import stat
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from model_safety.activation import change as ch
from model_safety.activation.lease_file import parse_iso
from model_safety.activation.lock import acquire
from model_safety.engine import startup_proof
from model_safety.engine.cycle import STEP_CYCLE
from model_safety.engine.startup_proof import ModelExpectation
from tests.fake_clock import FakeClock
from tests.fake_engine_host import BASELINE, SHA, UNIT, FakeHost

SECRET = "sk-never-shown-4711"
PRISTINE = f"PATCHTST_SHADOW_ONLY=true\nENGINE_RATE=100\nAPI_KEY={SECRET}\n"
CANARY_ENV = PRISTINE.replace("PATCHTST_SHADOW_ONLY=true", "PATCHTST_SHADOW_ONLY=false")
CANARY_WEIGHTS = {"xgb": 0.28125, "lgbm": 0.28125, "nhits": 0.3375, "patchtst": 0.1}
CANARY_ENVIRONMENT = {
    "QSC_CANARY_MODEL": "patchtst",
    "QSC_CANARY_WEIGHT": "0.1",
    "QSC_MODEL_WEIGHTS": "xgb:0.28125,lgbm:0.28125,nhits:0.3375,patchtst:0.1",
}
CANARY = ModelExpectation(
    model="patchtst", role="voting", weight=0.1, weights=CANARY_WEIGHTS, canary=True
)
SHADOW = ModelExpectation(model="patchtst", role="shadow")


@pytest.fixture
def site(tmp_path: Path) -> dict:
    """A host running its pristine files (patchtst shadow, no drop-in, env file 0600), a lease
    this activation took 100 s ago for 600 s, and the canary's change of it."""
    env = tmp_path / "etc" / "ai-engine.env"
    env.parent.mkdir()
    env.write_text(PRISTINE)
    env.chmod(0o600)
    dropins = tmp_path / "etc" / "engine.service.d"
    lock_path = tmp_path / "lease" / "activation.lease"
    taken = datetime.now(UTC) - timedelta(seconds=100)
    lease = acquire(str(lock_path), "alice", "canary patchtst", 600, now=taken)
    return {
        "env": env,
        "dropin": dropins / "qsc_canary.conf",
        "lease": lock_path,
        "host": FakeHost(env, dropins),
        "request": ch.ChangeRequest(
            env_changes={"PATCHTST_SHADOW_ONLY": "false"},
            dropin_state="present",
            dropin_environment=CANARY_ENVIRONMENT,
            dropin_purpose="canary patchtst",
            expected=CANARY,
            baseline=BASELINE,
            token=lease["token"],
            env_file=str(env),
            dropin_dir=str(dropins),
            unit=UNIT,
            lock_path=str(lock_path),
            settle=2.0,
        ),
    }


def change(site: dict, check_mode: bool = False, **changes) -> dict:
    clock = FakeClock()
    request = replace(site["request"], **changes)
    return ch.apply_change(
        site["host"], request, check_mode=check_mode, sleep=clock.sleep, clock=clock
    )


def failed(site: dict, check_mode: bool = False, **changes) -> ch.ChangeFailed:
    with pytest.raises(ch.ChangeFailed) as caught:
        change(site, check_mode=check_mode, **changes)
    return caught.value


def files(site: dict) -> dict:
    """The managed files as they are: bytes and mode, None when absent."""
    return {
        name: (path.read_bytes(), stat.S_IMODE(path.stat().st_mode)) if path.exists() else None
        for name, path in (("env", site["env"]), ("dropin", site["dropin"]))
    }


def lease_expiry(site: dict) -> datetime:
    return parse_iso(json.loads(site["lease"].read_text())["expires"])


def canary_applied(site: dict) -> dict:
    """The host after the canary's change, its calls forgotten."""
    change(site)
    site["host"].calls.clear()
    return site


def test_a_canary_is_written_restarted_proven_and_the_lease_renewed(site) -> None:
    host = site["host"]
    running = host.invocation
    expires = lease_expiry(site)

    result = change(site)

    assert site["env"].read_text() == CANARY_ENV
    assert stat.S_IMODE(site["env"].stat().st_mode) == 0o640
    dropin = site["dropin"].read_text()
    assert stat.S_IMODE(site["dropin"].stat().st_mode) == 0o644
    assert dropin.startswith("# Managed by Model Safety Ops (Ansible): canary patchtst.\n")
    assert dropin.endswith(
        "[Service]\n"
        'Environment="QSC_CANARY_MODEL=patchtst"\n'
        'Environment="QSC_CANARY_WEIGHT=0.1"\n'
        'Environment="QSC_MODEL_WEIGHTS=xgb:0.28125,lgbm:0.28125,nhits:0.3375,patchtst:0.1"\n'
    )
    assert host.verbs() == ["daemon-reload", "stop", "start"]
    assert result["start"]["previous_invocation_id"] == running
    assert result["start"]["invocation_id"] == host.invocation != running
    assert result["start"]["main_pid"] == 4242
    proof = result["proof"]
    assert proof["invocation_id"] == host.invocation
    assert (proof["build"], proof["git"]["sha"]) == (SHA[:7], SHA)
    assert proof["statements"] == [
        f"build {SHA[:7]} == git HEAD {SHA[:7]}",
        "the model config of the env file and drop-ins",
        "patchtst loaded as a voter at 0.1",
        f"[CANARY] patchtst with {proof['startup']['canary']['weights']}",
    ]
    assert result["env"] == {
        "path": str(site["env"]),
        "changed": True,
        "changed_keys": {"PATCHTST_SHADOW_ONLY": {"before": "true", "after": "false"}},
        "diff": result["env"]["diff"],
        "written": True,
    }
    assert (result["dropin"]["state"], result["dropin"]["changed"]) == ("present", True)
    assert result["dropin"]["written"] is True
    assert result["dropin"]["diff"]["after"] == dropin
    assert SECRET in result["secrets"]
    assert SECRET not in json.dumps(result["env"])
    assert lease_expiry(site) > expires + timedelta(seconds=1000)
    assert set(result["seconds"]) == {"written", "stop", "start", "proven"}


def test_the_env_file_keeps_its_mode_when_none_is_given(site) -> None:
    result = change(site, env_mode=None)
    assert stat.S_IMODE(site["env"].stat().st_mode) == 0o600
    assert result["env"]["written"] is True


def test_a_canary_proven_within_the_settle_period(site) -> None:
    clock = FakeClock()
    ch.apply_change(site["host"], site["request"], sleep=clock.sleep, clock=clock)
    # Read running at once, then only the settle watch sleeps: the proof costs no time.
    assert sum(clock.sleeps) == pytest.approx(2.0)


def test_the_reverse_removes_the_dropin_and_is_proven_shadow(site) -> None:
    canary_applied(site)
    host = site["host"]

    result = change(
        site,
        env_changes={"PATCHTST_SHADOW_ONLY": "true"},
        dropin_state="absent",
        dropin_environment={},
        expected=SHADOW,
    )

    assert site["env"].read_text() == PRISTINE
    assert not site["dropin"].exists()
    assert host.verbs() == ["daemon-reload", "stop", "start"]
    assert (result["dropin"]["state"], result["dropin"]["written"]) == ("absent", True)
    assert result["proof"]["config"]["shadow"] == {"patchtst": 0.2}
    assert result["proof"]["config"]["canary"] is None
    assert result["proof"]["statements"][-1] == "patchtst loaded in shadow mode"
    assert result["start"]["invocation_id"] == host.invocation


def test_unchanged_files_are_not_written_but_the_engine_still_restarts(site) -> None:
    canary_applied(site)
    before = files(site)
    result = change(site)
    assert (result["env"]["written"], result["dropin"]["written"]) == (False, False)
    assert files(site)["env"] == before["env"] and files(site)["dropin"] == before["dropin"]
    assert site["host"].verbs() == ["daemon-reload", "stop", "start"]


@pytest.mark.parametrize("with_token", [True, False], ids=["with-token", "without-token"])
def test_check_mode_writes_nothing_and_proves_nothing(site, with_token) -> None:
    host = site["host"]
    before = files(site)
    lease = site["lease"].read_bytes()
    token = site["request"].token if with_token else None

    result = change(site, check_mode=True, token=token)

    assert files(site) == before and site["lease"].read_bytes() == lease
    assert [argv[1] for argv in host.calls if argv[0] == "systemctl"] == ["show"]
    assert host.verbs() == []
    assert result["start"]["would_cycle"] is True
    assert result["start"]["invocation_id"] == host.invocation
    assert "proof" not in result
    assert (result["env"]["changed"], result["env"]["written"]) == (True, False)
    assert (result["dropin"]["changed"], result["dropin"]["written"]) == (True, False)
    assert 'Environment="QSC_CANARY_WEIGHT=0.1"\n' in result["dropin"]["diff"]["after"]


def test_check_mode_still_refuses_a_lease_it_does_not_hold(site) -> None:
    before = files(site)
    failure = failed(site, check_mode=True, token="0" * 32)
    assert failure.step == ch.STEP_LEASE
    assert files(site) == before and site["host"].calls == []


def refused_before_anything(site: dict, **changes) -> ch.ChangeFailed:
    """The failure of a change refused before it wrote a file or ran anything (the lease is
    renewed before the files are planned)."""
    before = files(site)
    failure = failed(site, **changes)
    assert files(site) == before
    assert site["host"].calls == []
    assert failure.result.get("env", {}).get("written", False) is False
    assert "start" not in failure.result and "proof" not in failure.result
    return failure


def refused_before_the_lease(site: dict, **changes) -> ch.ChangeFailed:
    """The failure of a change refused before it renewed the lease, wrote or ran anything."""
    lease = site["lease"].read_bytes()
    failure = refused_before_anything(site, **changes)
    assert site["lease"].read_bytes() == lease
    return failure


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("settle", 3601, "settle must be in 0..3600 s"),
        ("settle", -1, "settle must be in 0..3600 s"),
        ("cycle_timeout", float("nan"), "timeout must be in 0..3600 s"),
        ("unit", "../../etc/passwd", "not a valid systemd unit name"),
        ("baseline", {"xgb": 0.5}, "baseline weights must sum to 1"),
        ("checkout", "relative/checkout", "checkout"),
        (
            "expected",
            ModelExpectation(model="patchtst", role="voting", weight=0.1, canary=True),
            "a canary is proven as a voter with the full weights",
        ),
        ("expected", ModelExpectation(model="patchtst", role="judge"), "role must be voting"),
    ],
)
def test_a_bad_option_is_refused_before_anything(site, option, value, message) -> None:
    failure = refused_before_the_lease(site, **{option: value})
    assert failure.step == ch.STEP_OPTIONS
    assert message in failure.message
    assert str(failure) == f"{ch.STEP_OPTIONS}: {failure.message}"


def test_without_a_token_the_change_is_refused_outside_check_mode(site) -> None:
    failure = refused_before_the_lease(site, token=None)
    assert failure.step == ch.STEP_LEASE
    assert failure.message == "no lease token: the change needs the lease"


def test_a_token_that_does_not_hold_the_lease_is_refused(site) -> None:
    failure = refused_before_the_lease(site, token="f" * 32)
    assert failure.step == ch.STEP_LEASE
    assert "is held by alice for canary patchtst" in failure.message
    assert failure.message.startswith(f"activation lease {site['lease']}: ")
    assert failure.details["holder"]["owner"] == "alice"


def test_a_token_that_is_not_one_is_refused(site) -> None:
    failure = refused_before_the_lease(site, token="not-a-token")
    assert failure.step == ch.STEP_LEASE
    assert "not a lease token" in failure.message


def test_an_expired_lease_is_refused(site) -> None:
    long_ago = datetime.now(UTC) - timedelta(seconds=60)
    site["lease"].unlink()
    lease = acquire(str(site["lease"]), "alice", "canary patchtst", 30, now=long_ago)
    failure = refused_before_the_lease(site, token=lease["token"])
    assert failure.step == ch.STEP_LEASE
    assert "this activation's lease expired at " in failure.message


def test_a_lease_that_is_gone_is_refused(site) -> None:
    site["lease"].unlink()
    failure = refused_before_anything(site)
    assert failure.step == ch.STEP_LEASE
    assert "is gone: this activation no longer holds the lease" in failure.message


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"bad key": "1"}, "bad key"),
        ({"ENGINE_RATE": "1\nSIM_FAIL_START=1"}, "ENGINE_RATE"),
    ],
)
def test_an_invalid_env_change_is_refused_before_anything(site, changes, message) -> None:
    failure = refused_before_anything(site, env_changes=changes)
    assert failure.step == ch.STEP_ENV
    assert failure.message.startswith(f"{site['env']}: ") and message in failure.message
    assert "env" not in failure.result


def test_an_unsafe_env_mode_is_refused_before_anything(site) -> None:
    failure = refused_before_anything(site, env_mode="0644")
    assert failure.step == ch.STEP_ENV
    assert "mode 0644 refused" in failure.message


def test_a_secret_of_a_refused_env_change_is_kept_for_masking(site) -> None:
    failure = refused_before_anything(
        site, env_changes={"API_KEY": "sk-new-secret", "bad key": "1"}
    )
    assert failure.step == ch.STEP_ENV
    assert "sk-new-secret" in failure.details["secrets"]
    assert "sk-new-secret" not in failure.message


@pytest.mark.parametrize(
    ("environment", "message"),
    [
        ({"QSC_CANARY_WEIGHT": "0.1 $HOME"}, "values must match"),
        ({"QSC_CANARY_WEIGHT": True}, "must be a string or a number"),
        ({"qsc_canary_model": "patchtst"}, "names must match"),
    ],
)
def test_an_invalid_dropin_value_is_refused_leaving_the_env_file_unwritten(
    site, environment, message
) -> None:
    failure = refused_before_anything(site, dropin_environment=environment)
    assert failure.step == ch.STEP_DROPIN
    assert message in failure.message
    assert site["env"].read_text() == PRISTINE
    assert not site["dropin"].exists()


def test_a_dropin_name_that_is_not_one_is_refused(site) -> None:
    failure = refused_before_anything(site, dropin_name="../../passwd")
    assert failure.step == ch.STEP_DROPIN
    assert "invalid drop-in name" in failure.message


def test_a_dropin_directory_that_cannot_be_read_is_refused_before_anything(site) -> None:
    # The engine_dropin module refuses it (OSError of plan_dropin); so must the change.
    not_a_directory = site["env"].parent / "not-a-directory"
    not_a_directory.write_text("")
    failure = refused_before_anything(site, dropin_dir=str(not_a_directory))
    assert failure.step == ch.STEP_DROPIN
    assert str(not_a_directory) in failure.message
    assert site["env"].read_text() == PRISTINE


def test_a_dropin_that_cannot_be_written_says_the_env_file_was(site, monkeypatch) -> None:
    def unwritable(change) -> None:
        raise PermissionError(13, "Permission denied", change.path)

    monkeypatch.setattr(ch, "apply_dropin", unwritable)
    failure = failed(site)
    assert failure.step == ch.STEP_DROPIN
    assert failure.message.startswith(f"cannot write {site['dropin']}: ")
    assert failure.result["env"]["written"] is True
    assert failure.result["dropin"]["written"] is False
    assert site["env"].read_text() == CANARY_ENV
    assert site["host"].calls == []


def test_a_start_that_fails_is_reported_after_the_files_were_written(site) -> None:
    failure = failed(site, env_changes={"PATCHTST_SHADOW_ONLY": "false", "SIM_FAIL_START": "1"})

    assert failure.step == STEP_CYCLE
    assert failure.message.startswith(f"stop+start of {UNIT} failed: `systemctl start {UNIT}`")
    assert "simulated start failure" in " ".join(failure.details["journal"])
    assert failure.details["state"]["active_state"] == "failed"
    assert site["host"].verbs() == ["daemon-reload", "stop", "start"]
    # What was written, so that the caller knows to restore its backup.
    assert failure.result["env"]["written"] is True
    assert failure.result["dropin"]["written"] is True
    assert failure.result["env"]["changed_keys"]["SIM_FAIL_START"] == {
        "before": None,
        "after": "1",
    }
    assert site["env"].read_text().endswith("SIM_FAIL_START=1\n")
    assert site["dropin"].exists()
    assert "proof" not in failure.result


def test_a_start_of_another_build_fails_the_proof(site) -> None:
    site["host"].build = "deadbee"
    failure = failed(site)
    assert failure.step == startup_proof.STEP_BUILD
    assert "build deadbee" in failure.message and f"is at {SHA}" in failure.message
    assert failure.result["env"]["written"] is True and failure.result["dropin"]["written"]
    assert "proof" not in failure.result


def test_a_weight_other_than_the_files_fails_the_role_proof(site) -> None:
    expected = replace(CANARY, weight=0.2)
    failure = failed(site, expected=expected)
    assert failure.step == startup_proof.STEP_ROLE
    assert failure.message.startswith("patchtst is not voting at 0.2: ")
    assert failure.details["differences"]
    assert failure.result["env"]["written"] is True and failure.result["dropin"]["written"]
    assert site["host"].verbs() == ["daemon-reload", "stop", "start"]


def test_a_role_other_than_the_files_fails_the_role_proof(site) -> None:
    failure = failed(site, expected=SHADOW)
    assert failure.step == startup_proof.STEP_ROLE
    assert failure.message.startswith("patchtst is not shadow-only: ")


def test_a_crash_in_the_settle_period_fails_the_cycle(site) -> None:
    site["host"].crash_in_settle = True
    failure = failed(site)
    assert failure.step == STEP_CYCLE
    assert "did not stay up for 2 s (crash loop?)" in failure.message
    assert failure.result["env"]["written"] is True and failure.result["dropin"]["written"]
    assert site["env"].read_text() == CANARY_ENV


def test_a_failure_after_the_start_says_which_start_it_was(site) -> None:
    # engine_change's RETURN documents start as "returned: success, and failure after the
    # start": the caller logs which start failed its proof.
    host = site["host"]
    failure = failed(site, expected=replace(CANARY, weight=0.2))
    assert failure.result["start"]["invocation_id"] == host.invocation
