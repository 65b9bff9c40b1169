"""The activation_backup module through its main(): its options refused with their messages and
nothing written, a backup made, verified and restored in real directories, a corrupt one
refused, and check mode of both writing states."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.module_harness import HOSTILE_NAMES, fails, succeeds

MODULE = "activation_backup"


@pytest.fixture
def engine(tmp_path: Path) -> dict:
    """An env file, a drop-in directory with one file, and the options that back them up."""
    etc = tmp_path / "etc"
    (etc / "engine.service.d").mkdir(parents=True)
    (etc / "ai-engine.env").write_text("QSC_MODEL_WEIGHTS=xgb:1\nAPI_KEY=k\n")
    (etc / "engine.service.d" / "ai.conf").write_text("[Service]\n")
    return {
        "root": str(tmp_path / "backups"),
        "files": [str(etc / "ai-engine.env"), str(etc / "engine.service.d" / "canary.conf")],
        "dirs": [str(etc / "engine.service.d")],
    }


def backup(engine: dict, check_mode: bool = False, **args) -> dict:
    args = {**engine, "model": "patchtst", "weight": 0.1, **args}
    return succeeds(MODULE, args, check_mode=check_mode)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({}, "state is present but all of the following are missing: model"),
        ({"state": "wiped"}, "value of state must be one of: present, restored, verified"),
        ({"model": "patchtst", "keep": 0}, "keep must be at least 1, not 0"),
        ({"model": "patchtst", "name": "x"}, "path and name select a backup to restore or"),
        ({"state": "restored", "path": "/x", "name": "y"}, "mutually exclusive: path|name"),
        ({"state": "verified", "mark_restored": {"a": 1}}, "mark_restored records a restore"),
        ({"state": "restored", "mark_restored": {"ts": "x"}}, "invalid mark_restored:"),
    ],
)
def test_option_combinations_are_refused(engine, args, message) -> None:
    assert message in fails(MODULE, {**engine, **args})["msg"]
    assert not Path(engine["root"]).exists()


@pytest.mark.parametrize("model", HOSTILE_NAMES)
def test_a_bad_model_name_is_refused(engine, model) -> None:
    result = fails(MODULE, {**engine, "model": model})
    assert result["msg"] == f"model {model!r} is not a valid model name (^[a-z][a-z0-9_]{{0,31}}$)"
    assert not Path(engine["root"]).exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({"weight": 1.5}, "weight must be a number in [0, 1], not 1.5"),
        ({"weight": -0.1}, "weight must be a number in [0, 1], not -0.1"),
        ({"weight": float("nan")}, "weight must be a number in [0, 1], not nan"),
        ({"git_sha": "18c7dbb\nx"}, "git_sha must be 7 to 40 hex digits"),
        ({"files": ["relative/ai-engine.env"]}, "is not an absolute path"),
        ({"files": ["/etc/quantum/../shadow"]}, "contains '..'"),
        ({"dirs": ["/etc/systemd/../ssh"]}, "directory '/etc/systemd/../ssh' contains '..'"),
        ({"root": "backups"}, "backup root 'backups' is not an absolute path"),
        ({"root": "/opt/../etc/backups"}, "backup root '/opt/../etc/backups' contains '..'"),
    ],
)
@pytest.mark.parametrize("check_mode", [False, True])
def test_bad_backup_details_are_refused(engine, args, message, check_mode) -> None:
    result = fails(MODULE, {**engine, "model": "patchtst", **args}, check_mode=check_mode)
    assert result["msg"].startswith("cannot back up for model patchtst: ")
    assert message in result["msg"]
    assert not any(Path(engine["root"]).glob("*_patchtst"))


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("backups/20261123T180102.123456Z_x", "is not an absolute path"),
        ("/opt/backups/../../etc", "contains '..'"),
    ],
)
@pytest.mark.parametrize("state", ["restored", "verified"])
def test_a_backup_path_must_be_absolute_without_dot_dot(engine, path, message, state) -> None:
    result = fails(MODULE, {**engine, "state": state, "path": path})
    assert result["msg"] == f"backup path {path!r} {message}"


@pytest.mark.parametrize("name", ["../../etc", "20261123T180102.123456Z_x/..", "a\nb"])
def test_a_name_that_is_not_a_backup_name_is_refused(engine, name) -> None:
    result = fails(MODULE, {**engine, "state": "restored", "name": name})
    assert result["msg"].startswith("not a backup name (<UTC stamp>_<model>")


def test_backup_verify_and_restore(engine) -> None:
    made = backup(engine, git_sha="18c7dbb", operator="alice", metadata={"gate": "PASS"})
    assert made["changed"] and made["pruned"] == []
    manifest = made["manifest"]
    assert (manifest["model"], manifest["operator"], manifest["git_sha"]) == (
        "patchtst",
        "alice",
        "18c7dbb",
    )
    absent = {entry["path"]: entry.get("absent", False) for entry in manifest["files"]}
    assert [absent[path] for path in engine["files"]] == [False, True]
    assert Path(made["path"], "manifest.json").is_file()

    verified = succeeds(MODULE, {**engine, "state": "verified"})
    assert (verified["changed"], verified["path"]) == (False, made["path"])

    env, canary = map(Path, engine["files"])
    env.write_text("QSC_MODEL_WEIGHTS=xgb:0.5,patchtst:0.5\n")
    canary.write_text("[Service]\nEnvironment=QSC_CANARY_MODEL=patchtst\n")
    mark = {"operator": "alice", "reason": "rollback"}
    restored = succeeds(MODULE, {**engine, "state": "restored", "mark_restored": mark})
    assert restored["changed"] and restored["marked"]
    assert (restored["restored"], restored["removed"]) == ([str(env)], [str(canary)])
    assert env.read_text() == "QSC_MODEL_WEIGHTS=xgb:1\nAPI_KEY=k\n" and not canary.exists()
    restorations = json.loads(Path(made["path"], "manifest.json").read_text())["restorations"]
    assert [record["reason"] for record in restorations] == ["rollback"]

    again = succeeds(MODULE, {**engine, "state": "restored", "model": "patchtst"})
    assert (again["changed"], again["marked"], again["restored"]) == (False, False, [])


def test_check_mode_plans_and_writes_nothing(engine) -> None:
    planned = backup(engine, check_mode=True)
    assert (planned["changed"], planned["path"]) == (True, None)
    assert {entry["path"] for entry in planned["plan"]["files"]} >= set(engine["files"])
    assert not Path(engine["root"]).exists()

    backup(engine)
    env = Path(engine["files"][0])
    env.write_text("CHANGED=1\n")
    would = succeeds(MODULE, {**engine, "state": "restored"}, check_mode=True, diff=True)
    assert would["changed"] and would["restored"] == [str(env)] and not would["marked"]
    assert env.read_text() == "CHANGED=1\n"
    assert "CHANGED" not in json.dumps(would["diff"])  # checksums, never contents


def test_a_corrupt_backup_is_refused_naming_the_intact_ones(engine) -> None:
    intact = backup(engine)
    corrupt = backup(engine)
    saved = Path(corrupt["path"], corrupt["manifest"]["files"][0]["saved_as"])
    saved.write_text("X" * (len(saved.read_text()) - 1) + "\n")  # same size, other bytes
    for state in ("verified", "restored"):
        result = fails(MODULE, {**engine, "state": state})
        assert result["path"] == corrupt["path"]
        assert result["problems"] == [
            f"{engine['files'][0]}: saved copy's sha256 differs from the manifest"
        ]
        assert result["candidates"] == [Path(intact["path"]).name]
    assert Path(engine["files"][0]).read_text() == "QSC_MODEL_WEIGHTS=xgb:1\nAPI_KEY=k\n"


def test_an_unknown_backup_name_fails_listing_the_newest(engine) -> None:
    made = backup(engine)
    result = fails(MODULE, {**engine, "state": "verified", "name": "20260101T000000.000000Z_x"})
    assert result["msg"].startswith("no backup 20260101T000000.000000Z_x under ")
    assert Path(made["path"]).name in result["msg"]


@pytest.mark.parametrize("check_mode", [False, True])
def test_the_build_is_read_from_the_checkout_and_recorded(engine, git_checkout, check_mode) -> None:
    checkout, sha = git_checkout
    made = backup(engine, check_mode=check_mode, checkout=str(checkout))
    assert made["build"]["sha"] == sha and sha.startswith(made["build"]["short"])
    assert set(made["build"]) == {"sha", "short"}
    if check_mode:
        assert made["path"] is None and not Path(engine["root"]).exists()
    else:
        manifest = json.loads(Path(made["path"], "manifest.json").read_text())
        assert manifest["git_sha"] == made["manifest"]["git_sha"] == sha


def test_without_checkout_no_build_is_returned(engine) -> None:
    assert "build" not in backup(engine, git_sha="18c7dbb")


def test_git_sha_and_checkout_together_are_refused(engine, git_checkout) -> None:
    checkout, _ = git_checkout
    result = fails(
        MODULE, {**engine, "model": "patchtst", "git_sha": "18c7dbb", "checkout": str(checkout)}
    )
    assert "parameters are mutually exclusive: git_sha|checkout" in result["msg"]
    assert not Path(engine["root"]).exists()


@pytest.mark.parametrize("check_mode", [False, True])
def test_a_bad_checkout_fails_before_anything_is_written(engine, tmp_path, check_mode) -> None:
    not_git = tmp_path / "not-a-checkout"
    not_git.mkdir()
    args = {**engine, "model": "patchtst", "checkout": str(not_git)}
    result = fails(MODULE, args, check_mode=check_mode)
    assert result["msg"].startswith(
        f"cannot back up for model patchtst: cannot read the git build of {not_git}: "
    )
    assert result["checkout"] == str(not_git)
    assert not Path(engine["root"]).exists()


@pytest.mark.parametrize("state", ["restored", "verified"])
def test_checkout_is_refused_unless_a_backup_is_made(engine, git_checkout, state) -> None:
    checkout, _ = git_checkout
    result = fails(MODULE, {**engine, "state": state, "checkout": str(checkout)})
    assert result["msg"] == (
        "checkout records the deployed build in a new backup, only with state=present"
    )
