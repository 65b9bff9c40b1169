"""The engine_rollback module through its main() against the fake systemctl/journalctl, a real
git checkout and real backup, lease and log files: its options refused before anything runs,
a rollback restored, restarted, proven and recorded, check mode and --diff, and each refusal
and fault with its message and the rollback_failed record."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ai_engine.config import load_config
from ai_engine.service import ready_line, startup_lines
from model_safety.activation.backup_create import create_backup
from model_safety.activation.lock import acquire
from model_safety.activation.rollback import STEP_LEASE, STEP_OPTIONS, STEP_RESTORE
from model_safety.engine.cycle import STEP_CYCLE
from model_safety.engine.envfile import env_values
from tests.module_harness import NEW_INVOCATION, UNIT, fails, succeeds

MODULE = "engine_rollback"
BASELINE = {"xgb": 0.25, "lgbm": 0.25, "nhits": 0.30, "patchtst": 0.20}
PRISTINE = "PATCHTST_SHADOW_ONLY=true\nENGINE_RATE=100\nAPI_KEY=never-shown\n"
CANARY = PRISTINE.replace("PATCHTST_SHADOW_ONLY=true", "PATCHTST_SHADOW_ONLY=false")


def journal_of(env_text: str, build: str) -> list[str]:
    """What the reference engine logs when it starts on ``env_text``."""
    config = load_config(env_values(env_text))
    return [f"AI_ENGINE_BUILD: {build}", *startup_lines(config), ready_line(config)]


@pytest.fixture
def host(tmp_path: Path, fake_systemd, git_checkout) -> dict:
    """A host after a canary (its backup taken first), whose next start logs the pristine
    configuration with the checkout's build; the task's arguments."""
    checkout, sha = git_checkout
    dropins = tmp_path / "etc" / "engine.service.d"
    dropins.mkdir(parents=True)
    env = tmp_path / "etc" / "ai-engine.env"
    env.write_text(PRISTINE)
    dropin = dropins / "qsc_canary.conf"
    root = tmp_path / "backups"
    create_backup(str(root), "patchtst", [str(env), str(dropin)], [str(dropins)])
    env.write_text(CANARY)
    dropin.write_text("[Service]\n")
    fake_systemd.show(EnvironmentFiles=f"{env} (ignore_errors=no)")
    fake_systemd.set(journal=journal_of(PRISTINE, sha[:7]))
    return {
        "env": env,
        "dropin": dropin,
        "root": root,
        "sha": sha,
        "args": {
            "host": "engine1",
            "operator": "alice",
            "reason": "canary lost money",
            "root": str(root),
            "files": [str(env), str(dropin)],
            "dirs": [str(dropins)],
            "baseline": BASELINE,
            "checkout": str(checkout),
            "lock_path": str(tmp_path / "lease" / "activation.lease"),
            "log_path": str(tmp_path / "log" / "qsc_canary.jsonl"),
            "settle": 0,
            "journal_timeout": 0.2,
        },
    }


def records(host: dict) -> list[dict]:
    path = Path(host["args"]["log_path"])
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def verbs(fake_systemd) -> list[str]:
    """The systemctl verbs that change something, in order."""
    calls = fake_systemd.calls()
    return [argv[1] for argv in calls if argv[0] == "systemctl" and argv[1] != "show"]


@pytest.mark.parametrize(
    ("missing", "message"),
    [("host", "host"), ("operator", "operator"), ("baseline", "baseline")],
)
def test_required_options(host, missing, message) -> None:
    args = {k: v for k, v in host["args"].items() if k != missing}
    assert f"missing required arguments: {message}" in fails(MODULE, args)["msg"]


def test_cycle_has_two_choices(host) -> None:
    result = fails(MODULE, {**host["args"], "cycle": "sometimes"})
    assert "value of cycle must be one of: changed, always" in result["msg"]


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("unit", "../../etc/passwd", "not a valid systemd unit name"),
        ("settle", 3601, "settle must be in 0..3600 s"),
        ("baseline", {"xgb": 0.5}, "baseline weights must sum to 1"),
    ],
)
def test_a_bad_option_touches_nothing(host, fake_systemd, option, value, message) -> None:
    result = fails(MODULE, {**host["args"], option: value})
    assert result["msg"].startswith(f"rollback of engine1 failed at {STEP_OPTIONS}: ")
    assert message in result["msg"] and result["step"] == STEP_OPTIONS
    assert fake_systemd.calls() == []
    assert host["env"].read_text() == CANARY
    assert not Path(host["args"]["lock_path"]).exists()


def test_the_rollback_restores_restarts_proves_and_records(host, fake_systemd) -> None:
    result = succeeds(MODULE, host["args"])

    assert result["changed"] and result["cycled"] and result["files_changed"]
    assert host["env"].read_text() == PRISTINE and not host["dropin"].exists()
    assert verbs(fake_systemd) == ["daemon-reload", "stop", "start"]
    assert result["start"]["invocation_id"] == NEW_INVOCATION
    assert result["proof"]["build"] == host["sha"][:7]
    assert result["proof"]["config"]["shadow"] == {"patchtst": 0.2}
    (record,) = records(host)
    assert (record["event"], record["model"], record["invocation_id"]) == (
        "rollback_executed",
        "patchtst",
        NEW_INVOCATION,
    )
    assert "never-shown" not in json.dumps(result)
    assert not Path(host["args"]["lock_path"]).exists()
    assert result["warnings"] == []


def test_check_mode_with_diff_changes_nothing(host, fake_systemd) -> None:
    result = succeeds(MODULE, host["args"], check_mode=True, diff=True)

    assert host["env"].read_text() == CANARY and host["dropin"].exists()
    assert [argv[1] for argv in fake_systemd.calls()] == ["show"]
    assert result["restored"] == [str(host["env"])]
    assert result["start"]["would_cycle"] is True
    assert "proof" not in result and records(host) == []
    headers = [diff["before_header"] for diff in result["diff"]]
    assert any(header.startswith(f"{host['env']} (sha256 ") for header in headers)
    assert "never-shown" not in json.dumps(result)


def test_a_held_lease_refuses_it_and_is_recorded(host, fake_systemd) -> None:
    acquire(host["args"]["lock_path"], "bob", "promotion patchtst", 600)

    result = fails(MODULE, host["args"])

    assert result["msg"].startswith(
        f"rollback of engine1 failed at {STEP_LEASE}: another activation holds "
    )
    assert "held by bob for promotion patchtst" in result["msg"]
    assert result["holder"]["owner"] == "bob"
    assert host["env"].read_text() == CANARY and fake_systemd.calls() == []
    assert records(host)[-1]["event"] == "rollback_failed"


def test_without_a_backup_nothing_changes(host, fake_systemd, tmp_path) -> None:
    result = fails(MODULE, {**host["args"], "root": str(tmp_path / "no-backups")})
    assert result["msg"] == (
        f"rollback of engine1 failed at {STEP_RESTORE}: no backup under {tmp_path / 'no-backups'}"
    )
    assert host["env"].read_text() == CANARY and fake_systemd.calls() == []


def test_a_corrupt_backup_is_refused_naming_the_intact_ones(host, fake_systemd) -> None:
    (older,) = host["root"].iterdir()
    newer = Path(create_backup(str(host["root"]), "patchtst", [str(host["env"])])["path"])
    saved = newer / "files" / str(host["env"]).lstrip("/")
    saved.write_text(saved.read_text() + "X=1\n")

    result = fails(MODULE, host["args"])

    assert f"backup {newer.name} is corrupt" in result["msg"]
    assert result["candidates"] == [older.name] and result["problems"]
    assert host["env"].read_text() == CANARY and fake_systemd.calls() == []


def test_a_start_that_fails_names_the_state_and_journal(host, fake_systemd) -> None:
    fake_systemd.set(
        fail={"start": f"Job for {UNIT} failed."},
        on_start={"ActiveState": "failed", "SubState": "failed", "InvocationID": NEW_INVOCATION},
        journal=["[ERROR] simulated start failure (SIM_FAIL_START=1)"],
    )

    result = fails(MODULE, host["args"])

    assert result["msg"].startswith(f"rollback of engine1 failed at {STEP_CYCLE}: stop+start of")
    assert result["state"]["active_state"] == "failed"
    assert result["journal"] == ["[ERROR] simulated start failure (SIM_FAIL_START=1)"]
    assert records(host)[-1]["failure"].startswith(f"{STEP_CYCLE}: stop+start of {UNIT}")
    assert not Path(host["args"]["lock_path"]).exists()


def test_a_damage_report_that_fails_is_recorded_and_the_rollback_succeeds(
    host, fake_systemd, tmp_path
) -> None:
    damage = {"db_path": str(tmp_path / "none.db"), "report_dir": str(tmp_path / "reports")}
    result = succeeds(MODULE, {**host["args"], "damage": damage})
    assert host["env"].read_text() == PRISTINE and result["cycled"]
    error = result["damage"]["error"]
    assert error.startswith("damage report failed: ")
    assert result["warnings"] == [error]
    (record,) = records(host)
    assert record["event"] == "rollback_executed"
    assert record["damage"] == {"error": error} and record["damage_reports"] is None


def test_the_damage_report_needs_its_report_dir(host, fake_systemd) -> None:
    result = fails(MODULE, {**host["args"], "damage": {"horizon": 60}})
    assert result["msg"] == "missing required arguments: report_dir found in damage"
    assert fake_systemd.calls() == []
