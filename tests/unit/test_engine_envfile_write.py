"""Unit tests of the env file change on disk (model_safety.engine.envfile_write): planning writes
nothing and refuses, with the file byte-identical, everything that would be wrong; applying
writes atomically, keeps the owner and mode unless asked, or only sets them, or does nothing;
the secrets a wrapper must mask are known on success and on every refusal."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from model_safety.engine import envfile_write as ew
from model_safety.engine.envfile import EnvFileError

ORIGINAL = "# engine\nQSC_MODEL_WEIGHTS=xgb:1\nREDIS_PASSWORD=pw-in-file\nB=1\n"
NOBODY = 65534  # nobody and nogroup on Debian
OWNER = (NOBODY, NOBODY)
MODE_REFUSED = "refused: the env file holds secrets; others must not read it"


@pytest.fixture
def env(tmp_path: Path) -> Path:
    """The env file, owned by nobody:nogroup with mode 0640 (the tests run as root)."""
    path = tmp_path / "ai-engine.env"
    path.write_text(ORIGINAL)
    os.chown(path, *OWNER)
    path.chmod(0o640)
    return path


def attributes(path: Path) -> tuple[int, int, int, int]:
    info = path.stat()
    return info.st_ino, info.st_uid, info.st_gid, info.st_mode & 0o7777


def test_a_content_change_is_planned_without_writing_then_written_keeping_owner_and_mode(env):
    before = attributes(env)
    change = ew.plan_env_change(str(env), {"QSC_CANARY_MODEL": "patchtst", "B": None})
    assert (change.content_changed, change.attributes_changed, change.changed) == (
        True,
        False,
        True,
    )
    assert (change.uid, change.gid, change.mode) == (None, None, None)
    assert change.current == ORIGINAL
    assert change.rendered == (
        "# engine\nQSC_MODEL_WEIGHTS=xgb:1\nREDIS_PASSWORD=pw-in-file\nQSC_CANARY_MODEL=patchtst\n"
    )
    assert change.changed_keys == {
        "QSC_CANARY_MODEL": {"before": None, "after": "patchtst"},
        "B": {"before": "1", "after": None},
    }
    header = f"{env} (changed keys only; secrets hidden)"
    assert change.diff == {
        "before_header": header,
        "after_header": header,
        "before": "B=1\n",
        "after": "QSC_CANARY_MODEL=patchtst\n",
    }
    assert env.read_text() == ORIGINAL and attributes(env) == before

    ew.apply_env_change(change)
    assert env.read_text() == change.rendered
    inode, *owner_and_mode = attributes(env)
    # A new file renamed over the old one (atomic), with the old one's owner and mode.
    assert inode != before[0] and owner_and_mode == [NOBODY, NOBODY, 0o640]
    assert not [name for name in os.listdir(env.parent) if name != env.name]


def test_a_content_change_with_owner_group_and_mode_gets_them_in_the_same_write(env):
    os.chown(env, 0, 0)
    change = ew.plan_env_change(str(env), {"B": "2"}, owner="nobody", group="65534", mode="0600")
    assert (change.uid, change.gid, change.mode) == (NOBODY, NOBODY, 0o600)
    assert change.content_changed and change.attributes_changed
    ew.apply_env_change(change)
    assert env.read_text() == ORIGINAL.replace("B=1", "B=2")
    assert attributes(env)[1:] == (NOBODY, NOBODY, 0o600)


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ({"mode": "0600"}, (NOBODY, NOBODY, 0o600)),
        ({"owner": "root"}, (0, NOBODY, 0o640)),
        ({"group": "0"}, (NOBODY, 0, 0o640)),
    ],
)
def test_only_the_attributes_are_set_when_only_they_differ(env, options, expected):
    inode = attributes(env)[0]
    change = ew.plan_env_change(str(env), {"B": "1"}, **options)
    assert (change.content_changed, change.attributes_changed, change.changed) == (
        False,
        True,
        True,
    )
    assert change.changed_keys == {} and (change.diff["before"], change.diff["after"]) == ("", "")
    ew.apply_env_change(change)
    assert env.read_text() == ORIGINAL
    # Set on the file itself: not rewritten.
    assert attributes(env) == (inode, *expected)


def test_nothing_changed_is_planned_and_applied_as_a_no_op(env, monkeypatch):
    before = attributes(env)
    change = ew.plan_env_change(
        str(env), {"B": "1", "GONE": None}, owner="nobody", group="nogroup", mode="0640"
    )
    assert (change.content_changed, change.attributes_changed, change.changed) == (
        False,
        False,
        False,
    )
    assert change.rendered == change.current == ORIGINAL and change.changed_keys == {}

    def touched(*args):
        raise AssertionError(f"nothing may be written: {args}")

    monkeypatch.setattr(ew, "write_atomic", touched)
    monkeypatch.setattr(ew.os, "chown", touched)
    monkeypatch.setattr(ew.os, "chmod", touched)
    ew.apply_env_change(change)
    assert env.read_text() == ORIGINAL and attributes(env) == before


@pytest.mark.parametrize(
    ("changes", "options", "message"),
    [
        ({"B": "2"}, {"mode": "0644"}, f"mode 0644 {MODE_REFUSED}"),
        ({"B": "2"}, {"mode": "0660"}, f"mode 0660 {MODE_REFUSED}"),
        ({"B": "2"}, {"mode": "01640"}, f"mode 01640 {MODE_REFUSED}"),
        ({"B": "2"}, {"mode": "rw-r-----"}, "mode must be an octal string such as '0640', not"),
        ({"B": "2"}, {"owner": "no-such-user-x"}, "chown failed: failed to look up user"),
        ({"B": "2"}, {"group": "no-such-group-x"}, "chgrp failed: failed to look up group"),
        ({"BAD KEY": "x"}, {}, "{path}: not a valid key (must match"),
        ({"B": "x\nINJECTED=1"}, {}, "{path}: value of B must not contain a newline"),
        ({"B": True}, {}, "{path}: value of B must be a string, not bool"),
        ([("B", "2")], {}, "{path}: changes must be a mapping of KEY to value"),
    ],
)
def test_each_refusal_leaves_the_file_byte_identical(env, changes, options, message):
    before = attributes(env)
    with pytest.raises(EnvFileError) as raised:
        ew.plan_env_change(str(env), changes, **options)
    assert str(raised.value).startswith(message.format(path=env))
    assert env.read_bytes() == ORIGINAL.encode() and attributes(env) == before


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("A=1\nREDIS_PASSWORD = pw-in-file\n", "line 2: not KEY=VALUE (whitespace around '=')"),
        ("A=1\r\nB=2\r\n", "line 1: carriage return in the line"),
        ("A=1\nA=2\n", "line 2: duplicate key A (first on line 1)"),
    ],
)
def test_an_invalid_file_is_refused_by_line_never_showing_a_value(tmp_path, text, message):
    path = tmp_path / "ai-engine.env"
    path.write_bytes(text.encode())
    with pytest.raises(EnvFileError) as raised:
        ew.plan_env_change(str(path), {"A": "3"})
    assert str(raised.value).startswith(f"{path}: {message}")
    assert "pw-in-file" not in str(raised.value) and path.read_bytes() == text.encode()


def test_a_missing_file_is_never_created(tmp_path):
    missing = tmp_path / "missing.env"
    with pytest.raises(EnvFileError) as raised:
        ew.plan_env_change(str(missing), {"B": "1"})
    assert str(raised.value) == (
        f"{missing} does not exist (the env file is changed, never created)"
    )
    assert not missing.exists()


@pytest.mark.parametrize("content", [b"A=\xff\n", None])
def test_an_unreadable_file_is_refused(tmp_path, content):
    path = tmp_path / "ai-engine.env"
    if content is None:
        path.mkdir()
    else:
        path.write_bytes(content)
    with pytest.raises(EnvFileError, match=f"^cannot read {path}: "):
        ew.plan_env_change(str(path), {"A": "1"})


def test_mode_owner_and_group_are_refused_before_the_file_is_read(tmp_path):
    missing = str(tmp_path / "missing.env")
    with pytest.raises(EnvFileError, match=r"^mode 0644 refused"):
        ew.plan_env_change(missing, {"B": "1"}, mode="0644")
    with pytest.raises(EnvFileError, match=r"^chgrp failed"):
        ew.plan_env_change(missing, {"B": "1"}, group="no-such-group-x")


def test_the_secrets_to_mask_are_known_on_success_and_never_in_repr(env):
    changes = {"API_TOKEN": "tok-new", "BROKER_URL": "https://u:url-pw@broker/api", "B": "2"}
    change = ew.plan_env_change(str(env), changes)
    assert change.secrets == {"pw-in-file", "tok-new", "u:url-pw", "url-pw"}
    shown = repr(change)
    assert all(secret not in shown for secret in change.secrets)


@pytest.mark.parametrize(
    ("changes", "options", "secrets"),
    [
        # Refused before the file is read: the secrets of the changes.
        ({"API_TOKEN": "tok-new", "B": "2"}, {"mode": "0644"}, {"tok-new"}),
        ({"API_TOKEN": "tok-new"}, {"owner": "no-such-user-x"}, {"tok-new"}),
        # A number for a secret: refused, still masked (Ansible shows the task's options).
        ({"API_TOKEN": 12345678}, {"mode": "0644"}, {"12345678"}),
        # Refused after reading: the file's secrets too.
        ({"API_TOKEN": "tok-new", "B": True}, {}, {"tok-new", "pw-in-file"}),
        ({"API_TOKEN": "tok-new", "BAD NAME": "x"}, {}, {"tok-new", "pw-in-file"}),
    ],
)
def test_a_refusal_carries_the_secrets_known_so_far(env, changes, options, secrets):
    with pytest.raises(EnvFileError) as raised:
        ew.plan_env_change(str(env), changes, **options)
    assert raised.value.secrets == secrets
    assert all(secret not in str(raised.value) for secret in secrets)


def test_an_invalid_file_still_masks_the_secrets_of_the_changes(tmp_path):
    path = tmp_path / "ai-engine.env"
    path.write_text("REDIS_PASSWORD = pw-in-file\n")
    with pytest.raises(EnvFileError) as raised:
        ew.plan_env_change(str(path), {"API_TOKEN": "tok-new"})
    assert raised.value.secrets == {"tok-new"}


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary(env, monkeypatch):
    change = ew.plan_env_change(str(env), {"API_TOKEN": "tok-new"})
    before = attributes(env)

    def refused(source, target):
        raise PermissionError(13, "Permission denied", target)

    monkeypatch.setattr(os, "replace", refused)
    with pytest.raises(EnvFileError, match=f"^cannot write {env}: ") as raised:
        ew.apply_env_change(change)
    assert raised.value.secrets == change.secrets and "tok-new" not in str(raised.value)
    assert env.read_text() == ORIGINAL and attributes(env) == before
    assert os.listdir(env.parent) == [env.name]


def test_a_failed_chmod_is_reported(env, monkeypatch):
    change = ew.plan_env_change(str(env), {}, mode="0600")

    def refused(path, mode):
        raise PermissionError(1, "Operation not permitted", path)

    monkeypatch.setattr(ew.os, "chmod", refused)
    with pytest.raises(EnvFileError, match=f"^cannot write {env}: .*Operation not permitted"):
        ew.apply_env_change(change)
