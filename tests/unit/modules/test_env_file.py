"""The env_file module through its main(): bad keys, values and modes refused with the file
untouched, keys changed in place in a real file (every other byte kept, secrets never shown),
and check mode."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.module_harness import fails, succeeds

MODULE = "env_file"
ORIGINAL = "# engine\nQSC_MODEL_WEIGHTS=xgb:1\nAPI_KEY=supersecret\n"
MODE_REFUSED = "refused: the env file holds secrets; others must not read it"


@pytest.fixture
def env(tmp_path: Path) -> Path:
    path = tmp_path / "ai-engine.env"
    path.write_text(ORIGINAL)
    path.chmod(0o600)
    return path


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"BAD KEY": "x"}, "not a valid key (must match [A-Za-z_][A-Za-z0-9_]*): 'BAD KEY'"),
        ({"../etc/passwd": "x"}, "not a valid key (must match [A-Za-z_][A-Za-z0-9_]*)"),
        ({"QSC_CANARY_MODEL": "x\nINJECTED=1"}, "value of QSC_CANARY_MODEL must not contain a"),
        ({"QSC_CANARY_MODEL": "x\rINJECTED=1"}, "must not contain a newline, carriage return"),
    ],
)
@pytest.mark.parametrize("check_mode", [False, True])
def test_bad_keys_and_values_are_refused(env, changes, message, check_mode) -> None:
    result = fails(MODULE, {"path": str(env), "changes": changes}, check_mode=check_mode)
    assert result["msg"].startswith(f"{env}: ") and message in result["msg"]
    assert env.read_text() == ORIGINAL


@pytest.mark.parametrize(
    ("mode", "message"),
    [
        ("0644", f"mode 0644 {MODE_REFUSED}"),
        ("0660", f"mode 0660 {MODE_REFUSED}"),
        ("01777", f"mode 01777 {MODE_REFUSED}"),
        ("rw-r-----", "mode must be an octal string such as '0640', not 'rw-r-----'"),
    ],
)
def test_a_mode_that_exposes_the_secrets_is_refused(env, mode, message) -> None:
    result = fails(MODULE, {"path": str(env), "changes": {"X": "1"}, "mode": mode})
    assert result["msg"].startswith(message)
    assert env.read_text() == ORIGINAL and env.stat().st_mode & 0o777 == 0o600


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({"changes": {}}, "missing required arguments: path"),
        ({"path": "/x"}, "missing required arguments: changes"),
    ],
)
def test_path_and_changes_are_required(args, message) -> None:
    assert message in fails(MODULE, args)["msg"]


def test_the_env_file_is_never_created(tmp_path) -> None:
    missing = tmp_path / "missing.env"
    result = fails(MODULE, {"path": str(missing), "changes": {"X": "1"}})
    assert result["msg"] == f"{missing} does not exist (the env file is changed, never created)"
    assert not missing.exists()


def test_keys_are_changed_in_place_and_secrets_hidden(env) -> None:
    changes = {"QSC_CANARY_MODEL": "patchtst", "API_KEY": "newsecret", "QSC_MODEL_WEIGHTS": None}
    result = succeeds(MODULE, {"path": str(env), "changes": changes, "mode": "0640"})
    assert result["changed"]
    assert env.read_text() == "# engine\nAPI_KEY=newsecret\nQSC_CANARY_MODEL=patchtst\n"
    assert env.stat().st_mode & 0o777 == 0o640
    assert result["changed_keys"]["API_KEY"] == {"before": "<hidden>", "after": "<hidden>"}
    assert result["changed_keys"]["QSC_CANARY_MODEL"] == {"before": None, "after": "patchtst"}
    shown = json.dumps(result)
    assert "supersecret" not in shown and "newsecret" not in shown

    again = succeeds(MODULE, {"path": str(env), "changes": changes, "mode": "0640"})
    assert (again["changed"], again["changed_keys"]) == (False, {})


def test_check_mode_shows_the_diff_and_writes_nothing(env) -> None:
    args = {"path": str(env), "changes": {"QSC_CANARY_MODEL": "patchtst"}, "mode": "0640"}
    result = succeeds(MODULE, args, check_mode=True, diff=True)
    assert result["changed"]
    assert (result["diff"]["before"], result["diff"]["after"]) == (
        "",
        "QSC_CANARY_MODEL=patchtst\n",
    )
    assert env.read_text() == ORIGINAL and env.stat().st_mode & 0o777 == 0o600


@pytest.mark.parametrize(
    ("option", "message"),
    [("owner", "chown failed: failed to look up user"), ("group", "chgrp failed: failed to look")],
)
def test_an_unknown_owner_or_group_fails(env, option, message) -> None:
    result = fails(MODULE, {"path": str(env), "changes": {"X": "1"}, option: "no-such-id-x"})
    assert result["msg"].startswith(message)


def test_an_unknown_owner_changes_nothing(env) -> None:
    fails(MODULE, {"path": str(env), "changes": {"X": "1"}, "owner": "no-such-user-x"})
    assert env.read_text() == ORIGINAL


def test_only_the_mode_is_set_when_only_it_differs(env) -> None:
    args = {"path": str(env), "changes": {"API_KEY": "supersecret"}, "mode": "0640"}
    checked = succeeds(MODULE, args, check_mode=True, diff=True)
    assert (checked["changed"], checked["changed_keys"]) == (True, {})
    assert env.stat().st_mode & 0o777 == 0o600
    inode = env.stat().st_ino
    result = succeeds(MODULE, args)
    assert (result["changed"], result["changed_keys"]) == (True, {})
    assert env.read_text() == ORIGINAL and env.stat().st_mode & 0o777 == 0o640
    assert env.stat().st_ino == inode
    assert succeeds(MODULE, args)["changed"] is False


def test_a_crlf_file_is_refused_untouched(env) -> None:
    env.write_bytes(ORIGINAL.replace("\n", "\r\n").encode())
    result = fails(MODULE, {"path": str(env), "changes": {"X": "1"}})
    assert result["msg"].startswith(f"{env}: line 1: carriage return in the line")
    assert env.read_bytes() == ORIGINAL.replace("\n", "\r\n").encode()
