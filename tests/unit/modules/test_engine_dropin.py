"""The engine_dropin module through its main(): bad names, values and purposes refused with
nothing written, the drop-in written root 0644 and removed, reruns unchanged, and check mode
with its diff writing nothing."""

from __future__ import annotations

import errno
import os
from pathlib import Path
from unittest import mock

import pytest

from tests.module_harness import fails, load, succeeds

MODULE = "engine_dropin"
CANARY = {"QSC_CANARY_MODEL": "patchtst", "QSC_CANARY_WEIGHT": 0.1}
TEXT = (
    "# Managed by Model Safety Ops (Ansible): canary patchtst.\n"
    "# Removing this file, then daemon-reload, stop and start, undoes it "
    "(playbooks/rollback.yml).\n"
    "[Service]\n"
    'Environment="QSC_CANARY_MODEL=patchtst"\n'
    'Environment="QSC_CANARY_WEIGHT=0.1"\n'
)


@pytest.fixture
def directory(tmp_path: Path) -> Path:
    return tmp_path / "quantum-ai-engine.service.d"


def args(directory: Path, **options) -> dict:
    return {"directory": str(directory), "purpose": "canary patchtst", **options}


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"name": "qsc_canary.conf\n"}, "invalid drop-in name: names must match"),
        ({"name": "../qsc_canary.conf"}, "invalid drop-in name: names must match"),
        ({"environment": {"qsc": "x"}}, "invalid drop-in environment: names must match"),
        ({"environment": {"X": "a b"}}, "values must match [A-Za-z0-9_.,:/+-]*"),
        ({"environment": {"X": '"'}}, "values must match [A-Za-z0-9_.,:/+-]*"),
        ({"environment": {"X": "$Y"}}, "values must match [A-Za-z0-9_.,:/+-]*"),
        ({"environment": {"X": "%n"}}, "values must match [A-Za-z0-9_.,:/+-]*"),
        ({"environment": {"X": "a\nB=1"}}, "values must match [A-Za-z0-9_.,:/+-]*"),
        ({"environment": {"X": True}}, "the value of X must be a string or a number, not bool"),
        ({"purpose": "a\n[Service]"}, "invalid drop-in purpose: must be one printable line"),
        ({"directory": "relative"}, "invalid drop-in directory 'relative': it is not an"),
    ],
)
@pytest.mark.parametrize("check_mode", [False, True])
def test_bad_options_are_refused_and_nothing_is_written(directory, options, message, check_mode):
    result = fails(
        MODULE, {**args(directory, environment=CANARY), **options}, check_mode=check_mode
    )
    assert message in result["msg"]
    assert not directory.exists()


def test_an_unknown_state_is_refused(directory) -> None:
    result = fails(MODULE, args(directory, state="masked"))
    assert "value of state must be one of: present, absent, got: masked" in result["msg"]


def test_the_directory_is_required() -> None:
    assert "missing required arguments: directory" in fails(MODULE, {})["msg"]


def test_present_writes_root_0644_and_a_rerun_changes_nothing(directory) -> None:
    result = succeeds(MODULE, args(directory, environment=CANARY))
    path = directory / "qsc_canary.conf"
    assert (result["changed"], result["path"], result["state"], result["content"]) == (
        True,
        str(path),
        "present",
        TEXT,
    )
    assert path.read_text() == TEXT
    status = path.stat()
    assert (status.st_mode & 0o7777, status.st_uid, status.st_gid) == (0o644, 0, 0)

    again = succeeds(MODULE, args(directory, environment=CANARY))
    assert (again["changed"], again["content"]) == (False, TEXT)


def test_a_wrong_mode_is_fixed(directory) -> None:
    succeeds(MODULE, args(directory, environment=CANARY))
    path = directory / "qsc_canary.conf"
    path.chmod(0o600)
    assert succeeds(MODULE, args(directory, environment=CANARY))["changed"]
    assert path.stat().st_mode & 0o7777 == 0o644 and path.read_text() == TEXT


def test_absent_removes_it_and_returns_no_content(directory) -> None:
    succeeds(MODULE, args(directory, environment=CANARY, name="qsc_test.conf"))
    result = succeeds(MODULE, args(directory, name="qsc_test.conf", state="absent"))
    assert (result["changed"], result["state"], result["content"]) == (True, "absent", None)
    assert os.listdir(directory) == []
    assert not succeeds(MODULE, args(directory, name="qsc_test.conf", state="absent"))["changed"]


def test_check_mode_shows_the_diff_and_writes_nothing(directory) -> None:
    result = succeeds(MODULE, args(directory, environment=CANARY), check_mode=True, diff=True)
    path = directory / "qsc_canary.conf"
    assert result["changed"] and result["content"] == TEXT
    assert result["diff"] == {
        "before_header": str(path),
        "after_header": f"{path} (mode 0644, owner 0:0)",
        "before": "",
        "after": TEXT,
    }
    assert not directory.exists()

    succeeds(MODULE, args(directory, environment=CANARY))
    removal = succeeds(MODULE, args(directory, state="absent"), check_mode=True, diff=True)
    assert removal["changed"] and (removal["diff"]["before"], removal["diff"]["after"]) == (
        TEXT,
        "",
    )
    assert path.read_text() == TEXT


def test_a_directory_in_its_place_is_refused(directory) -> None:
    (directory / "qsc_canary.conf").mkdir(parents=True)
    result = fails(MODULE, args(directory, environment=CANARY))
    path = directory / "qsc_canary.conf"
    assert result["msg"] == f"{path} exists and is not a regular file; it is left as it is"
    assert path.is_dir()


def test_a_directory_that_is_a_file_fails_the_read(tmp_path) -> None:
    (tmp_path / "file").write_text("")
    result = fails(MODULE, args(tmp_path / "file", environment=CANARY))
    assert result["msg"].startswith("cannot read the drop-in qsc_canary.conf: [Errno 20]")


def test_a_failed_write_is_reported_and_leaves_the_old_file(directory) -> None:
    succeeds(MODULE, args(directory, environment=CANARY))
    full = OSError(errno.ENOSPC, "No space left on device")
    load(MODULE)  # makes ansible.module_utils.model_safety importable
    with mock.patch("ansible.module_utils.model_safety.fileio.write_atomic", side_effect=full):
        result = fails(MODULE, args(directory, environment={"QSC_CANARY_MODEL": "nhits"}))
    path = directory / "qsc_canary.conf"
    assert result["msg"] == f"cannot write {path}: [Errno 28] No space left on device"
    assert path.read_text() == TEXT
