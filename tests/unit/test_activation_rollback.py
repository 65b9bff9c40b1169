"""Unit tests of the one-call rollback (model_safety.activation.rollback): real backups, lease
and log in a temporary directory, and a fake host whose engine starts on the env file as it is
on disk (the reference engine's own start-up lines), so a restored file is what the next start
runs. A fake clock makes the waits instant."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from model_safety.activation import rollback as rb
from model_safety.activation.backup_create import create_backup
from model_safety.activation.lock import acquire
from model_safety.engine import cycle, startup_proof
from tests.fake_clock import FakeClock
from tests.fake_engine_host import BASELINE, SHA, UNIT, FakeHost

PRISTINE = "PATCHTST_SHADOW_ONLY=true\nENGINE_RATE=100\n"
CANARY = (
    "PATCHTST_SHADOW_ONLY=false\nENGINE_RATE=100\n"
    "QSC_MODEL_WEIGHTS=xgb:0.28125,lgbm:0.28125,nhits:0.3375,patchtst:0.1\n"
    "QSC_CANARY_MODEL=patchtst\nQSC_CANARY_WEIGHT=0.1\n"
)


@pytest.fixture
def site(tmp_path: Path) -> dict:
    """A host after a canary: the backup of its pristine files, then the canary's env file and
    drop-in, and its engine running the canary."""
    etc = tmp_path / "etc"
    dropins = etc / "engine.service.d"
    dropins.mkdir(parents=True)
    env = etc / "ai-engine.env"
    env.write_text(PRISTINE)
    env.chmod(0o640)
    canary_dropin = dropins / "qsc_canary.conf"
    root = tmp_path / "backups"
    create_backup(str(root), "patchtst", [str(env), str(canary_dropin)], [str(dropins)])
    env.write_text(CANARY)
    canary_dropin.write_text("[Service]\n")
    return {
        "tmp": tmp_path,
        "env": env,
        "dropin": canary_dropin,
        "root": root,
        "host": FakeHost(env),
        "request": rb.RollbackRequest(
            host="engine1",
            operator="alice",
            reason="canary lost money",
            root=str(root),
            files=(str(env), str(canary_dropin)),
            dirs=(str(dropins),),
            baseline=BASELINE,
            lock_path=str(tmp_path / "lease" / "activation.lease"),
            log_path=str(tmp_path / "log" / "qsc_canary.jsonl"),
            unit=UNIT,
            checkout="/home/qt/quantum_trader",
        ),
    }


def roll_back(site: dict, check_mode: bool = False, **changes) -> dict:
    clock = FakeClock()
    request = replace(site["request"], **changes)
    return rb.roll_back(
        site["host"], request, check_mode=check_mode, sleep=clock.sleep, clock=clock
    )


def refused(site: dict, check_mode: bool = False, **changes) -> rb.RollbackFailed:
    with pytest.raises(rb.RollbackFailed) as caught:
        roll_back(site, check_mode=check_mode, **changes)
    return caught.value


def records(site: dict) -> list[dict]:
    path = Path(site["request"].log_path)
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def lease_file(site: dict) -> Path:
    return Path(site["request"].lock_path)


def files(site: dict) -> dict:
    """The managed files as they are: contents and mode, None when absent."""
    return {
        path.name: (path.read_text(), oct(path.stat().st_mode & 0o777)) if path.exists() else None
        for path in (site["env"], site["dropin"])
    }


def test_the_backup_is_restored_the_engine_started_on_it_proven_and_recorded(site) -> None:
    host = site["host"]
    canary_invocation = host.invocation

    result = roll_back(site)

    assert files(site) == {"ai-engine.env": (PRISTINE, "0o640"), "qsc_canary.conf": None}
    assert host.verbs() == ["daemon-reload", "stop", "start"]
    invocation = result["start"]
    assert invocation["previous_invocation_id"] == canary_invocation
    assert invocation["invocation_id"] == host.invocation != canary_invocation
    proof = result["proof"]
    assert (proof["build"], proof["git"]["sha"]) == (SHA[:7], SHA)
    assert proof["config"]["voting"] == {"xgb": 0.25, "lgbm": 0.25, "nhits": 0.3}
    assert proof["config"]["shadow"] == {"patchtst": 0.2} and proof["config"]["canary"] is None
    assert (result["files_changed"], result["marked"], result["cycled"]) == (True, True, True)
    assert result["restored"] == [str(site["env"])] and result["removed"] == [str(site["dropin"])]
    (record,) = records(site)
    assert record == result["record"]
    assert (record["event"], record["host"], record["model"], record["changed"]) == (
        "rollback_executed",
        "engine1",
        "patchtst",
        True,
    )
    assert record["invocation_id"] == host.invocation and record["build"] == SHA[:7]
    assert (record["trigger"], record["operator"]) == ("canary lost money", "alice")
    manifest = json.loads((Path(result["backup"]) / "manifest.json").read_text())
    assert manifest["restorations"][0]["reason"] == "canary lost money"
    assert not lease_file(site).exists()
    assert result["lease"] == {"stale": None, "broken": None} and result["warnings"] == []


def test_the_proof_runs_within_the_settle_period(site) -> None:
    clock = FakeClock()
    rb.roll_back(site["host"], replace(site["request"], settle=2.0), sleep=clock.sleep, clock=clock)
    # Read running at once, then only the settle watch sleeps: the proof costs no time.
    assert sum(clock.sleeps) == pytest.approx(2.0)


def test_a_second_rollback_changes_nothing_and_proves_the_running_start(site) -> None:
    first = roll_back(site)
    before = files(site)
    site["host"].calls.clear()

    again = roll_back(site, reason="again")

    assert files(site) == before
    assert site["host"].verbs() == []
    assert (again["files_changed"], again["cycled"], again["marked"]) == (False, False, False)
    assert again["start"]["invocation_id"] == first["start"]["invocation_id"]
    assert again["start"]["previous_invocation_id"] is None
    assert again["proof"]["build"] == SHA[:7]
    assert [r["changed"] for r in records(site)] == [True, False]
    manifest = json.loads((Path(first["backup"]) / "manifest.json").read_text())
    assert len(manifest["restorations"]) == 1


def test_cycle_always_restarts_even_when_nothing_changed(site) -> None:
    roll_back(site)
    site["host"].calls.clear()
    result = roll_back(site, cycle="always")
    assert site["host"].verbs() == ["daemon-reload", "stop", "start"]
    assert (result["files_changed"], result["cycled"]) == (False, True)


def test_check_mode_changes_nothing_and_tells_what_would_be_restored(site) -> None:
    before = files(site)
    result = roll_back(site, check_mode=True)
    assert files(site) == before
    assert site["host"].verbs() == []
    assert result["restored"] == [str(site["env"])] and result["removed"] == [str(site["dropin"])]
    assert result["start"]["would_cycle"] is True and "proof" not in result
    assert result["record"]["event"] == "rollback_executed"
    assert records(site) == [] and not lease_file(site).exists()
    assert {change["path"] for change in result["changes"]} == {
        str(site["env"]),
        str(site["dropin"]),
    }


def test_a_lease_held_by_another_activation_refuses_it_changing_nothing(site) -> None:
    acquire(site["request"].lock_path, "bob", "promotion patchtst", 600)
    held = lease_file(site).read_text()
    before = files(site)

    failure = refused(site)

    assert failure.step == rb.STEP_LEASE
    assert "another activation holds" in failure.message and "held by bob" in failure.message
    assert files(site) == before and site["host"].verbs() == []
    assert lease_file(site).read_text() == held
    (record,) = records(site)
    assert record["event"] == "rollback_failed" and "held by bob" in record["failure"]
    assert record["failure"].startswith(f"{rb.STEP_LEASE}: ")
    assert failure.details["holder"]["owner"] == "bob"


def test_break_lock_takes_the_lease_and_says_whose_it_broke(site) -> None:
    acquire(site["request"].lock_path, "bob", "promotion patchtst", 600)
    result = roll_back(site, break_lock=True)
    assert result["lease"]["broken"]["owner"] == "bob"
    assert result["warnings"][0].startswith("broke the lease of bob (promotion patchtst, since ")
    assert not lease_file(site).exists()


def test_the_lease_of_a_killed_rollback_is_taken_over_once_stale(site) -> None:
    # A rollback killed mid-run leaves its lease: valid, it refuses the next one (above);
    # expired, the next one takes it over and says whose it was.
    long_ago = datetime.now(UTC) - timedelta(seconds=60)
    acquire(site["request"].lock_path, "alice", "rollback: first try", 30, now=long_ago)
    result = roll_back(site)
    assert result["lease"]["stale"]["owner"] == "alice"
    assert result["warnings"][0].startswith(
        "took over a stale lease of alice (rollback: first try, expired "
    )
    assert files(site)["ai-engine.env"] == (PRISTINE, "0o640")
    assert not lease_file(site).exists()


def test_without_a_backup_nothing_changes(site) -> None:
    for backup in site["root"].iterdir():
        for path in sorted(backup.rglob("*"), reverse=True):
            path.rmdir() if path.is_dir() else path.unlink()
        backup.rmdir()
    before = files(site)

    failure = refused(site)

    assert failure.step == rb.STEP_RESTORE
    assert failure.message == f"no backup under {site['root']}"
    assert files(site) == before and site["host"].verbs() == []
    assert records(site)[-1]["event"] == "rollback_failed"
    assert records(site)[-1]["backup"] == ""
    assert not lease_file(site).exists()


def test_a_corrupt_backup_is_refused_never_skipped(site) -> None:
    (older,) = site["root"].iterdir()
    newer = create_backup(str(site["root"]), "patchtst", [str(site["env"])])["path"]
    saved = Path(newer) / "files" / str(site["env"]).lstrip("/")
    saved.write_text(saved.read_text().replace("ENGINE_RATE", "ENGINE_RATF"))
    before = files(site)

    failure = refused(site)

    assert failure.step == rb.STEP_RESTORE
    assert f"backup {Path(newer).name} is corrupt" in failure.message
    assert "nothing was changed" in failure.message
    assert failure.details["candidates"] == [older.name]
    assert files(site) == before and site["host"].verbs() == []
    assert records(site)[-1]["backup"] == newer

    chosen = roll_back(site, name=older.name)
    assert chosen["backup"] == str(older)
    assert files(site)["ai-engine.env"] == (PRISTINE, "0o640")


def test_an_engine_that_fails_to_start_on_the_restored_files_fails_the_rollback(site) -> None:
    site["env"].write_text(PRISTINE + "SIM_FAIL_START=true\n")
    create_backup(str(site["root"]), "patchtst", [str(site["env"]), str(site["dropin"])])
    site["env"].write_text(CANARY)

    failure = refused(site)

    assert failure.step == cycle.STEP_CYCLE
    assert failure.message.startswith(f"stop+start of {UNIT} failed: `systemctl start {UNIT}`")
    assert "simulated start failure" in " ".join(failure.details["journal"])
    assert files(site)["ai-engine.env"][0].endswith("SIM_FAIL_START=true\n")
    record = records(site)[-1]
    assert record["event"] == "rollback_failed" and record["model"] == "patchtst"
    assert record["failure"].startswith(f"{cycle.STEP_CYCLE}: stop+start of {UNIT} failed")
    assert not lease_file(site).exists()


def test_a_start_that_crashes_within_the_settle_period_fails_it(site) -> None:
    site["host"].crash_in_settle = True
    failure = refused(site)
    assert failure.step == cycle.STEP_CYCLE
    assert "did not stay up for 2 s (crash loop?)" in failure.message
    assert records(site)[-1]["event"] == "rollback_failed"


def test_a_start_of_another_build_fails_the_proof(site) -> None:
    site["host"].build = "deadbee"
    failure = refused(site)
    assert failure.step == startup_proof.STEP_BUILD
    assert failure.message.startswith("invocation ") and f"is at {SHA}" in failure.message
    assert "build deadbee" in failure.message


def test_a_start_that_does_not_run_the_files_config_fails_the_proof(site) -> None:
    baseline = {"xgb": 0.5, "lgbm": 0.2, "nhits": 0.1, "patchtst": 0.2}
    failure = refused(site, baseline=baseline)
    assert failure.step == startup_proof.STEP_CONFIG
    assert "does not run the model configuration of its files" in failure.message
    assert failure.details["differences"]


def test_a_log_that_cannot_be_written_fails_it_and_says_so(site) -> None:
    Path(site["request"].log_path).mkdir(parents=True)
    failure = refused(site)
    assert failure.step == rb.STEP_RECORD
    assert failure.result["record_error"].startswith("the failure could not be logged: ")
    assert not lease_file(site).exists()


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"cycle": "sometimes"}, "cycle must be changed or always, not 'sometimes'"),
        ({"unit": "../x.service"}, "not a valid systemd unit name"),
        ({"settle": -1}, "settle must be in 0..3600 s"),
        ({"journal_timeout": float("inf")}, "timeout must be in 0..3600 s"),
        ({"checkout": "relative/path"}, "checkout must be a normalised absolute path"),
        ({"baseline": {"xgb": 0.5}}, "baseline weights must sum to 1"),
        ({"log_group": "no-such-group-here"}, "no such group"),
    ],
)
def test_bad_options_fail_before_anything_is_touched(site, changes, message) -> None:
    before = files(site)
    failure = refused(site, **changes)
    assert failure.step == rb.STEP_OPTIONS and message in failure.message
    assert files(site) == before and site["host"].calls == []
    assert not lease_file(site).exists()


def test_a_bad_log_path_fails_before_anything_is_touched(site) -> None:
    failure = refused(site, log_path="relative.jsonl")
    assert failure.step == rb.STEP_OPTIONS
    assert "record_error" in failure.result and not lease_file(site).exists()


def test_takeover_note_names_a_stale_lease() -> None:
    stale = {"owner": "carol", "purpose": "canary lgbm", "expires": "2026-01-10T12:30:00Z"}
    assert rb.takeover_note({"stale": stale, "broken": None}) == (
        "took over a stale lease of carol (canary lgbm, expired 2026-01-10T12:30:00Z)"
    )
    unreadable = {"corrupt": True, "modified": "2026-01-10T12:00:00Z"}
    assert rb.takeover_note({"stale": None, "broken": unreadable}) == (
        "broke the lease of unknown (an unreadable lease) (-, since 2026-01-10T12:00:00Z)"
    )
    assert rb.takeover_note({"stale": None, "broken": None}) is None


def test_the_rollback_imports_neither_numpy_nor_redis() -> None:
    # The emergency path starts fast on the target: the standard library only.
    code = (
        "import sys, model_safety.activation.rollback; "
        "print(sorted(m for m in ('numpy', 'redis') if m in sys.modules))"
    )
    shown = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert shown.strip() == "[]"
