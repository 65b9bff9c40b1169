"""Unit tests of the engine's systemd drop-in (model_safety.engine.dropin): every rule refuses
what systemd could expand, unquote or split, the text is exact, and plan/apply write, remove,
fix attributes and rerun unchanged."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from model_safety.engine import dropin as di

CANARY = {
    "QSC_CANARY_MODEL": "patchtst",
    "QSC_CANARY_WEIGHT": "0.1",
    "QSC_MODEL_WEIGHTS": "xgb:0.28125,lgbm:0.28125,nhits:0.3375,patchtst:0.1",
}
CANARY_TEXT = (
    "# Managed by Model Safety Ops (Ansible): canary patchtst at 0.10.\n"
    "# Removing this file, then daemon-reload, stop and start, undoes it "
    "(playbooks/rollback.yml).\n"
    "[Service]\n"
    'Environment="QSC_CANARY_MODEL=patchtst"\n'
    'Environment="QSC_CANARY_WEIGHT=0.1"\n'
    'Environment="QSC_MODEL_WEIGHTS=xgb:0.28125,lgbm:0.28125,nhits:0.3375,patchtst:0.1"\n'
)
PURPOSE = "canary patchtst at 0.10"


# --------------------------------------------------------------------------- rules


@pytest.mark.parametrize("name", ["qsc_canary.conf", "10-a.b_C.conf", ".conf.conf"])
def test_good_names_are_kept(name):
    assert di.validate_dropin_name(name) == name


@pytest.mark.parametrize(
    "name",
    ["qsc_canary.conf\n", "../x.conf", "a/b.conf", "x.conf.bak", ".conf", "a b.conf", "", None],
)
def test_bad_names_are_refused(name):
    with pytest.raises(di.DropinError) as caught:
        di.validate_dropin_name(name)
    assert str(caught.value) == (
        f"invalid drop-in name: names must match [A-Za-z0-9_.-]+\\.conf, got {name!r}"
    )


def test_the_environment_keeps_its_order_and_writes_numbers_as_python_does():
    environment = {"B": "x", "A_1": 1, "_C": 0.1, "D": "", "E": "a-b+c/d:e,f.g"}
    validated = di.validate_dropin_environment(environment)
    assert validated == {"B": "x", "A_1": "1", "_C": "0.1", "D": "", "E": "a-b+c/d:e,f.g"}
    assert list(validated) == ["B", "A_1", "_C", "D", "E"]


@pytest.mark.parametrize("key", ["lower", "1ABC", "A-B", "A B", "QSC_CANARY_MODEL\n", "", 1])
def test_bad_keys_are_refused(key):
    with pytest.raises(di.DropinError) as caught:
        di.validate_dropin_environment({key: "x"})
    assert str(caught.value) == (
        f"invalid drop-in environment: names must match [A-Z_][A-Z0-9_]*, got {key!r}"
    )


@pytest.mark.parametrize(
    "value",
    ["patchtst --weights 1", 'a"b', "a'b", "$HOME", "${X}", "%h", "x\n", "a\\b", "a;b", "\t", "é"],
)
def test_values_systemd_could_expand_unquote_or_split_are_refused(value):
    with pytest.raises(di.DropinError) as caught:
        di.validate_dropin_environment({"QSC_CANARY_MODEL": "patchtst", "X": value})
    assert str(caught.value) == (
        "invalid drop-in environment: values must match [A-Za-z0-9_.,:/+-]* (nothing systemd "
        f"could expand, unquote or split), got X={value!r}"
    )


@pytest.mark.parametrize(
    ("value", "kind"), [(True, "bool"), (False, "bool"), (None, "NoneType"), (["a"], "list")]
)
def test_values_that_are_not_strings_or_numbers_are_refused(value, kind):
    with pytest.raises(di.DropinError) as caught:
        di.validate_dropin_environment({"X": value})
    assert str(caught.value) == (
        "invalid drop-in environment: the value of X must be a string or a number, "
        f"not {kind}, got {value!r}"
    )


def test_an_environment_that_is_not_a_mapping_is_refused():
    with pytest.raises(di.DropinError, match="must be a mapping of NAME to value, not list"):
        di.validate_dropin_environment([("X", "1")])


@pytest.mark.parametrize("purpose", ["", "canary patchtst at 0.1", "x" * 200, "ümlaut; $ %"])
def test_good_purposes_are_kept(purpose):
    assert di.validate_purpose(purpose) == purpose


@pytest.mark.parametrize(
    "purpose", ["canary\n[Service]", "a\rb", "tab\there", "nul\0", "x" * 201, None]
)
def test_bad_purposes_are_refused(purpose):
    with pytest.raises(di.DropinError, match="invalid drop-in purpose: must be"):
        di.validate_purpose(purpose)


# --------------------------------------------------------------------------- text


def test_render_is_exact():
    assert di.render_dropin(CANARY, PURPOSE) == CANARY_TEXT


def test_render_without_purpose_or_environment():
    assert di.render_dropin({}, "") == (
        "# Managed by Model Safety Ops (Ansible).\n"
        "# Removing this file, then daemon-reload, stop and start, undoes it "
        "(playbooks/rollback.yml).\n"
        "[Service]\n"
    )


def test_render_validates():
    with pytest.raises(di.DropinError, match="got X='a b'"):
        di.render_dropin({"X": "a b"}, PURPOSE)
    with pytest.raises(di.DropinError, match="invalid drop-in purpose"):
        di.render_dropin(CANARY, "a\nb")


# --------------------------------------------------------------------------- plan and apply


@pytest.fixture
def directory(tmp_path: Path) -> Path:
    return tmp_path / "quantum-ai-engine.service.d"


def attributes(path: Path) -> tuple[int, int, int]:
    status = path.stat()
    return status.st_mode & 0o7777, status.st_uid, status.st_gid


def test_present_writes_the_file_and_its_directory(directory):
    change = di.plan_dropin(str(directory), "qsc_canary.conf", "present", CANARY, PURPOSE)
    path = directory / "qsc_canary.conf"
    assert (change.path, change.state, change.before, change.after, change.changed) == (
        str(path),
        "present",
        None,
        CANARY_TEXT,
        True,
    )
    assert change.diff == {
        "before_header": str(path),
        "after_header": f"{path} (mode 0644, owner 0:0)",
        "before": "",
        "after": CANARY_TEXT,
    }
    assert not directory.exists()  # planning writes nothing
    di.apply_dropin(change)
    assert path.read_text() == CANARY_TEXT
    assert attributes(path) == (0o644, 0, 0)
    assert directory.stat().st_mode & 0o7777 == 0o755
    assert os.listdir(directory) == ["qsc_canary.conf"]  # no temporary file left


def test_a_rerun_changes_nothing(directory):
    di.apply_dropin(di.plan_dropin(str(directory), "qsc_canary.conf", "present", CANARY, PURPOSE))
    path = directory / "qsc_canary.conf"
    inode = path.stat().st_ino
    again = di.plan_dropin(str(directory), "qsc_canary.conf", "present", CANARY, PURPOSE)
    assert (again.changed, again.before, again.after) == (False, CANARY_TEXT, CANARY_TEXT)
    di.apply_dropin(again)
    assert path.stat().st_ino == inode


def test_new_values_replace_the_file(directory):
    di.apply_dropin(di.plan_dropin(str(directory), "qsc_canary.conf", "present", CANARY, PURPOSE))
    weights = {**CANARY, "QSC_CANARY_WEIGHT": 0.25}
    change = di.plan_dropin(str(directory), "qsc_canary.conf", "present", weights, PURPOSE)
    assert change.changed and change.before == CANARY_TEXT
    di.apply_dropin(change)
    assert 'Environment="QSC_CANARY_WEIGHT=0.25"\n' in (directory / "qsc_canary.conf").read_text()


@pytest.mark.parametrize(("mode", "owner"), [(0o600, (0, 0)), (0o644, (1000, 0)), (0o644, (0, 7))])
def test_only_wrong_attributes_are_fixed(directory, mode, owner):
    directory.mkdir()
    path = directory / "qsc_canary.conf"
    path.write_text(CANARY_TEXT)
    path.chmod(mode)
    os.chown(path, *owner)
    change = di.plan_dropin(str(directory), "qsc_canary.conf", "present", CANARY, PURPOSE)
    assert change.changed and change.before == change.after == CANARY_TEXT
    assert change.diff["before_header"] == f"{path} (mode {mode:04o}, owner {owner[0]}:{owner[1]})"
    di.apply_dropin(change)
    assert attributes(path) == (0o644, 0, 0) and path.read_text() == CANARY_TEXT


def test_absent_removes_the_file_and_then_changes_nothing(directory):
    di.apply_dropin(di.plan_dropin(str(directory), "qsc_canary.conf", "present", CANARY, PURPOSE))
    (directory / "other.conf").write_text("[Service]\n")
    change = di.plan_dropin(str(directory), "qsc_canary.conf", "absent")
    assert (change.changed, change.before, change.after) == (True, CANARY_TEXT, None)
    assert (change.diff["before"], change.diff["after"]) == (CANARY_TEXT, "")
    di.apply_dropin(change)
    assert os.listdir(directory) == ["other.conf"]
    again = di.plan_dropin(str(directory), "qsc_canary.conf", "absent")
    assert (again.changed, again.before) == (False, None)
    di.apply_dropin(again)


def test_absent_without_the_directory_changes_nothing(directory):
    change = di.plan_dropin(str(directory), "qsc_canary.conf", "absent", {"X": "a b"}, "a\nb")
    assert not change.changed  # absent neither uses nor validates the environment
    di.apply_dropin(change)
    assert not directory.exists()


@pytest.mark.parametrize("state", ["present", "absent"])
def test_what_is_not_a_regular_file_is_refused_and_left(directory, tmp_path, state):
    directory.mkdir()
    target = tmp_path / "elsewhere.conf"
    target.write_text(CANARY_TEXT)
    (directory / "qsc_canary.conf").symlink_to(target)
    with pytest.raises(di.DropinError, match="exists and is not a regular file"):
        di.plan_dropin(str(directory), "qsc_canary.conf", state, CANARY, PURPOSE)
    assert (directory / "qsc_canary.conf").is_symlink()


@pytest.mark.parametrize(
    ("directory", "state", "message"),
    [
        ("relative/dir", "present", "invalid drop-in directory 'relative/dir': it is not an"),
        ("/etc/../tmp", "present", "invalid drop-in directory '/etc/../tmp': it contains '..'"),
        ("/etc/systemd", "latent", "invalid drop-in state 'latent': must be one of present"),
    ],
)
def test_bad_directories_and_states_are_refused(directory, state, message):
    with pytest.raises(di.DropinError) as caught:
        di.plan_dropin(directory, "qsc_canary.conf", state, CANARY, PURPOSE)
    assert str(caught.value).startswith(message)


def test_a_bad_name_or_environment_is_refused_before_the_file_is_read(directory):
    with pytest.raises(di.DropinError, match="invalid drop-in name"):
        di.plan_dropin(str(directory), "../../x.conf", "absent")
    with pytest.raises(di.DropinError, match="invalid drop-in environment"):
        di.plan_dropin(str(directory), "qsc_canary.conf", "present", {"X": "$Y"}, PURPOSE)
    assert not directory.exists()
