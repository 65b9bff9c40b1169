"""Unit tests of activation backups (model_safety.activation.backup_*) on real files in tmp_path:
a round trip is byte-identical (contents, mode, owner), tampered backups are refused and change
nothing, retention, path safety, check mode and idempotence, and what a restore does not
trust a manifest with (unmanaged paths, set-id and unsafe write bits, new owners, an untrusted
backup root, future dates)."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import re
import stat
from pathlib import Path

import pytest

from model_safety.activation import backup_create, backup_restore
from model_safety.activation.backup_catalog import (
    backup_by_name,
    future_backups,
    intact_backups,
    latest_backup,
    list_backups,
    prune,
    require_intact,
    select_backup,
)
from model_safety.activation.backup_create import create_backup, plan_backup
from model_safety.activation.backup_format import (
    BackupError,
    CorruptBackup,
    backup_name,
    default_operator,
    saved_as,
)
from model_safety.activation.backup_restore import (
    checked_restoration_record,
    mark_restored,
    restore_backup,
    restore_diff,
)
from model_safety.activation.backup_verify import read_manifest, verify_backup

T0 = dt.datetime(2026, 11, 23, 18, 1, 2, 123456, tzinfo=dt.UTC)
SECRET = b"QT_API_SECRET=hunter2\nAI_ENGINE_WEIGHTS=xgb:0.25\n"


class Host:
    """A fake engine host in tmp_path: env file, drop-in dir, backup root."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.env = base / "etc/quantum/ai-engine.env"
        self.dropins = base / "etc/systemd/system/quantum-ai-engine.service.d"
        self.canary = self.dropins / "qsc_canary.conf"
        self.root = base / "backups"
        self.env.parent.mkdir(parents=True)
        self.dropins.mkdir(parents=True)
        self.env.write_bytes(SECRET)
        os.chmod(self.env, 0o640)
        os.chown(self.env, 0, 4242)
        (self.dropins / "10-limits.conf").write_bytes(b"[Service]\nLimitNOFILE=65536\n")

    @property
    def files(self) -> list[str]:
        """The managed files (the env file, the canary drop-in), as the roles pass them."""
        return [str(self.env), str(self.canary)]

    def backup(self, model: str = "patchtst", when: dt.datetime = T0, **kwargs) -> dict:
        return create_backup(
            str(self.root), model, self.files, [str(self.dropins)], now=when, **kwargs
        )

    def restore(self, path: str, check_mode: bool = False) -> dict:
        """Restore ``path`` with this host's managed paths."""
        return restore_backup(path, self.files, [str(self.dropins)], check_mode=check_mode)

    def snapshot(self) -> dict[str, tuple[bytes, int, int, int]]:
        """Every file under the host's etc with its bytes, mode, uid, gid."""
        found = {}
        for path in sorted((self.base / "etc").rglob("*")):
            if path.is_file():
                st = path.lstat()
                found[str(path)] = (
                    path.read_bytes(),
                    stat.S_IMODE(st.st_mode),
                    st.st_uid,
                    st.st_gid,
                )
        return found


@pytest.fixture
def host(tmp_path: Path) -> Host:
    if os.geteuid() != 0:
        pytest.skip("restoring owners needs root")
    return Host(tmp_path)


def change_everything(host: Host) -> None:
    host.env.write_bytes(b"QT_API_SECRET=other\n")
    os.chmod(host.env, 0o600)
    os.chown(host.env, 1000, 1000)
    host.canary.write_bytes(b"[Service]\nEnvironment=AI_CANARY=patchtst\n")
    (host.dropins / "10-limits.conf").unlink()
    (host.dropins / "20-extra.conf").write_bytes(b"[Service]\n")


# --------------------------------------------------------------------------- create


def test_create_layout_manifest_and_modes(host):
    result = host.backup(weight=0.1, operator="alice", git_sha="18C7DBB", metadata={"gate": "PASS"})
    path = Path(result["path"])
    assert path.parent == host.root
    assert path.name == "20261123T180102.123456Z_patchtst"
    assert stat.S_IMODE(path.stat().st_mode) == 0o700
    assert stat.S_IMODE(host.root.stat().st_mode) == 0o700
    manifest = json.loads((path / "manifest.json").read_text())
    assert manifest == result["manifest"]
    assert stat.S_IMODE((path / "manifest.json").stat().st_mode) == 0o600
    assert {k: manifest[k] for k in ("format", "created", "model", "weight", "operator")} == {
        "format": 1,
        "created": "2026-11-23T18:01:02.123456Z",
        "model": "patchtst",
        "weight": 0.1,
        "operator": "alice",
    }
    assert manifest["git_sha"] == "18c7dbb" and manifest["metadata"] == {"gate": "PASS"}
    assert manifest["host"] and isinstance(manifest["host"], str)
    assert manifest["dirs"] == [
        {"path": str(host.dropins), "present": True, "files": ["10-limits.conf"]}
    ]
    env_entry, canary_entry, limits_entry = manifest["files"]
    assert canary_entry == {"path": str(host.canary), "absent": True}
    assert env_entry == {
        "path": str(host.env),
        "saved_as": "files" + str(host.env),
        "sha256": hashlib.sha256(SECRET).hexdigest(),
        "size": len(SECRET),
        "mode": 0o640,
        "uid": 0,
        "gid": 4242,
    }
    assert limits_entry["path"] == str(host.dropins / "10-limits.conf")
    copy = path / env_entry["saved_as"]
    assert copy.read_bytes() == SECRET
    assert stat.S_IMODE(copy.stat().st_mode) == 0o600
    for directory in copy.relative_to(path).parents:
        assert stat.S_IMODE((path / directory).stat().st_mode) == 0o700
    # Never contents in what is returned.
    assert b"hunter2" not in json.dumps(result).encode()
    assert verify_backup(str(path)) == []


def test_stamp_ordering_and_no_collision(host):
    assert backup_name("xgb", T0) == "20261123T180102.123456Z_xgb"
    later = T0 + dt.timedelta(microseconds=1)
    names = [backup_name("xgb", later), backup_name("xgb", T0)]
    assert sorted(names) == [names[1], names[0]]
    # A different time zone names the same UTC instant.
    paris = T0.astimezone(dt.timezone(dt.timedelta(hours=1)))
    assert backup_name("xgb", paris) == backup_name("xgb", T0)
    with pytest.raises(BackupError, match="timezone-aware"):
        backup_name("xgb", T0.replace(tzinfo=None))
    first = host.backup(when=T0)["path"]
    second = host.backup(when=T0)["path"]
    assert first != second
    assert Path(second).name == "20261123T180102.123457Z_patchtst"
    assert list_backups(str(host.root)) == [second, first]


def test_missing_dir_is_recorded_missing(host, tmp_path):
    missing = tmp_path / "etc/nothing.d"
    result = create_backup(str(host.root), "xgb", [str(host.env)], [str(missing)], now=T0)
    assert result["manifest"]["dirs"] == [{"path": str(missing), "present": False, "files": []}]


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("etc/quantum/ai-engine.env", "not an absolute path"),
        ("/etc/../etc/passwd", "contains '..'"),
        ("/etc//quantum", "not a normalised absolute path"),
        ("/etc/quantum/", "not a normalised absolute path"),
        ("/", "not a normalised absolute path"),
        ("", "non-empty path"),
    ],
)
def test_bad_paths_refused(host, path, message):
    with pytest.raises(BackupError, match=message):
        create_backup(str(host.root), "xgb", [path], [], now=T0)
    with pytest.raises(BackupError, match=message):
        plan_backup([], [path])
    assert not host.root.exists()


def test_symlinks_and_special_files_refused(host, tmp_path):
    link = tmp_path / "link.env"
    link.symlink_to(host.env)
    with pytest.raises(BackupError, match=re.escape(f"{link}: {link} is a symlink")):
        create_backup(str(host.root), "xgb", [str(link)], [], now=T0)
    linked_dir = tmp_path / "linked"
    linked_dir.symlink_to(host.env.parent)
    through = linked_dir / "ai-engine.env"
    with pytest.raises(BackupError, match=re.escape(f"{linked_dir} is a symlink")):
        create_backup(str(host.root), "xgb", [str(through)], [], now=T0)
    with pytest.raises(BackupError, match=re.escape(f"{linked_dir} is a symlink")):
        plan_backup([], [str(linked_dir)])
    (host.dropins / "masked.conf").symlink_to("/dev/null")
    with pytest.raises(BackupError, match=r"masked\.conf is a symlink"):
        host.backup()
    (host.dropins / "masked.conf").unlink()
    os.mkfifo(host.dropins / "pipe.conf")
    with pytest.raises(BackupError, match=r"pipe\.conf is not a regular file"):
        host.backup()
    with pytest.raises(BackupError, match=r"pipe\.conf is not a regular file"):
        create_backup(str(host.root), "xgb", [str(host.dropins / "pipe.conf")], [], now=T0)
    with pytest.raises(BackupError, match="is not a regular file"):
        create_backup(str(host.root), "xgb", [str(host.dropins)], [], now=T0)
    with pytest.raises(BackupError, match="is not a directory"):
        create_backup(str(host.root), "xgb", [], [str(host.env)], now=T0)
    assert not host.root.exists()


def test_invalid_details_refused(host):
    cases = [
        ({"model": "PatchTST"}, "not a valid model name"),
        ({"model": "patchtst\n"}, "not a valid model name"),
        ({"weight": 1.5}, r"weight must be a number in \[0, 1\]"),
        ({"weight": float("nan")}, "weight must be"),
        ({"weight": True}, "weight must be"),
        ({"operator": " "}, "operator must be a non-empty string"),
        ({"git_sha": "xyz1234"}, "git_sha must be 7 to 40 hex digits"),
        ({"git_sha": "abc12"}, "git_sha must be 7 to 40 hex digits"),
        ({"metadata": {"bad": {1, 2}}}, "metadata is not JSON-serialisable"),
        ({"metadata": {"nan": float("nan")}}, "metadata is not JSON-serialisable"),
    ]
    for kwargs, message in cases:
        args = {"model": "patchtst", **kwargs}
        with pytest.raises(BackupError, match=message):
            host.backup(**args)
    with pytest.raises(BackupError, match="nothing to back up"):
        create_backup(str(host.root), "xgb", [], [], now=T0)
    with pytest.raises(BackupError, match="backup root 'backups' is not an absolute path"):
        create_backup("backups", "xgb", [str(host.env)], [], now=T0)
    assert not host.root.exists()


def test_plan_backup_writes_nothing(host):
    plan = plan_backup([str(host.env), str(host.canary)], [str(host.dropins)])
    assert not host.root.exists()
    manifest = host.backup()["manifest"]
    assert plan == {"files": manifest["files"], "dirs": manifest["dirs"]}


def test_copy_that_does_not_read_back_is_left_without_manifest(host, monkeypatch):
    def corrupt_write(path, data, mode):
        Path(path).write_bytes(data[:-1])

    monkeypatch.setattr(backup_create, "write_new", corrupt_write)
    with pytest.raises(BackupError, match="does not read back as saved") as raised:
        host.backup()
    left = host.root / backup_name("patchtst", T0)
    assert str(left) in str(raised.value) and "left for inspection" in str(raised.value)
    assert left.is_dir() and not (left / "manifest.json").exists()
    assert raised.value.problems and "bytes, manifest" in raised.value.problems[0]
    assert list_backups(str(host.root)) == []


# --------------------------------------------------------------------------- restore


def test_round_trip_is_byte_identical(host):
    before = host.snapshot()
    path = host.backup()["path"]
    change_everything(host)
    assert host.snapshot() != before
    result = host.restore(path)
    assert host.snapshot() == before
    assert result["restored"] == [str(host.env), str(host.dropins / "10-limits.conf")]
    assert result["removed"] == [str(host.canary), str(host.dropins / "20-extra.conf")]
    assert result["unchanged"] == []
    assert result["changed"] is True
    assert not host.canary.exists()
    # No temporary file is left behind.
    assert sorted(p.name for p in host.env.parent.iterdir()) == ["ai-engine.env"]
    again = host.restore(path)
    assert again == {
        "model": "patchtst",
        "restored": [],
        "removed": [],
        "unchanged": [str(host.env), str(host.canary), str(host.dropins / "10-limits.conf")],
        "changed": False,
        "changes": [],
        "warnings": [],
    }


def test_mode_and_owner_alone_are_restored(host):
    path = host.backup()["path"]
    os.chmod(host.env, 0o666)
    result = host.restore(path)
    assert result["restored"] == [str(host.env)]
    assert stat.S_IMODE(host.env.stat().st_mode) == 0o640
    os.chown(host.env, 1000, 0)
    assert host.restore(path)["restored"] == [str(host.env)]
    assert (host.env.stat().st_uid, host.env.stat().st_gid) == (0, 4242)


def test_missing_parents_recreated_and_symlink_replaced(host):
    before = host.snapshot()
    path = host.backup()["path"]
    host.env.unlink()
    host.env.parent.rmdir()
    host.restore(path)
    assert host.snapshot() == before
    assert stat.S_IMODE(host.env.parent.stat().st_mode) == 0o755
    host.env.unlink()
    host.env.symlink_to("/etc/hostname")
    result = host.restore(path)
    assert result["restored"] == [str(host.env)]
    assert result["changes"][0]["before"] == {"type": "symlink"}
    assert not host.env.is_symlink() and host.snapshot() == before


def test_restore_refuses_symlinked_parent_and_directory_in_the_way(host, tmp_path):
    path = host.backup()["path"]
    real = tmp_path / "elsewhere"
    host.env.parent.rename(real)
    host.env.parent.symlink_to(real)
    with pytest.raises(BackupError, match=re.escape(f"{host.env.parent} is a symlink")):
        host.restore(path)
    host.env.parent.unlink()
    real.rename(host.env.parent)
    host.env.unlink()
    host.env.mkdir()
    (host.canary).write_bytes(b"x")
    with pytest.raises(BackupError, match="is a directory where the backup has a file"):
        host.restore(path)
    # Refused before anything was written or removed.
    assert host.canary.read_bytes() == b"x"


def test_dir_missing_at_backup_is_removed_again(host, tmp_path):
    dropins = tmp_path / "etc/systemd/system/other.service.d"
    canary = dropins / "qsc_canary.conf"
    managed = ([str(host.env), str(canary)], [str(dropins)])
    path = create_backup(
        str(host.root), "nhits", [str(host.env), str(canary)], [str(dropins)], now=T0
    )["path"]
    dropins.mkdir()
    canary.write_bytes(b"[Service]\n")
    (dropins / "stray.conf").write_bytes(b"[Service]\n")
    preview = restore_backup(path, *managed, check_mode=True)
    assert canary.exists()
    result = restore_backup(path, *managed)
    assert result["removed"] == [str(canary), str(dropins / "stray.conf"), str(dropins)]
    assert preview["removed"] == result["removed"]
    assert not dropins.exists()
    assert restore_backup(path, *managed)["changed"] is False


def test_check_mode_reports_and_writes_nothing(host):
    path = host.backup()["path"]
    change_everything(host)
    changed = host.snapshot()
    preview = host.restore(path, check_mode=True)
    assert host.snapshot() == changed
    result = host.restore(path)
    assert preview == result
    diff = restore_diff(result["changes"])
    env_diff = diff[0]
    old = hashlib.sha256(b"QT_API_SECRET=other\n").hexdigest()
    new = hashlib.sha256(SECRET).hexdigest()
    assert env_diff["before_header"] == f"{host.env} (sha256 {old}, mode 0600, owner 1000:1000)"
    assert env_diff["after_header"] == f"{host.env} (sha256 {new}, mode 0640, owner 0:4242)"
    assert diff[1]["after"] == "absent\n"
    assert "hunter2" not in json.dumps(diff) and "other" not in json.dumps(diff)


@pytest.mark.parametrize(
    ("tamper", "problem"),
    [
        ("byte", "saved copy's sha256 differs from the manifest"),
        ("missing", "saved copy files/.* is missing"),
        ("extra", "extra file files/.*/stray.conf is not in the manifest"),
        ("bad_json", "manifest.json is not valid JSON"),
        ("no_manifest", "has no manifest.json"),
        ("bad_saved_as", "saved_as 'files/etc/passwd' is not"),
        ("unlisted", "10-limits.conf is listed but not saved"),
        ("size", "saved copy has .* bytes, manifest 1"),
        ("format", "manifest format 2 is not 1"),
    ],
)
def test_tampered_backup_refuses_restore_and_changes_nothing(host, tamper, problem):
    path = Path(host.backup()["path"])
    env_copy = path / ("files" + str(host.env))
    manifest_path = path / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    if tamper == "byte":
        data = bytearray(env_copy.read_bytes())
        data[3] ^= 1
        env_copy.write_bytes(bytes(data))
    elif tamper == "missing":
        env_copy.unlink()
    elif tamper == "extra":
        (env_copy.parent / "stray.conf").write_bytes(b"x")
    elif tamper == "bad_json":
        manifest_path.write_text("{not json")
    elif tamper == "no_manifest":
        manifest_path.unlink()
    elif tamper == "bad_saved_as":
        manifest["files"][0]["saved_as"] = "files/etc/passwd"
    elif tamper == "unlisted":
        manifest["files"].pop()
    elif tamper == "size":
        manifest["files"][0]["size"] = 1
    elif tamper == "format":
        manifest["format"] = 2
    if tamper in ("bad_saved_as", "unlisted", "size", "format"):
        manifest_path.write_text(json.dumps(manifest))
    change_everything(host)
    changed = host.snapshot()
    problems = verify_backup(str(path))
    assert any(re.search(problem, p) for p in problems), problems
    with pytest.raises(BackupError, match=re.escape(f"backup {path} cannot be restored")) as raised:
        host.restore(str(path))
    assert raised.value.problems == problems
    with pytest.raises(BackupError):
        host.restore(str(path), check_mode=True)
    assert host.snapshot() == changed


def test_symlink_inside_backup_is_a_problem(host, tmp_path):
    path = Path(host.backup()["path"])
    env_copy = path / ("files" + str(host.env))
    outside = tmp_path / "outside"
    outside.write_bytes(env_copy.read_bytes())
    env_copy.unlink()
    env_copy.symlink_to(outside)
    problems = verify_backup(str(path))
    assert any("is a symlink in the backup" in p for p in problems), problems
    files = path / "files"
    files.rename(tmp_path / "files")
    files.symlink_to(tmp_path / "files")
    assert "files is a symlink in the backup" in verify_backup(str(path))


def test_restored_file_that_does_not_verify_raises(host, monkeypatch):
    path = host.backup()["path"]
    change_everything(host)
    real_write = backup_restore._write_atomic

    def short_write(target, data, mode, owner=None):
        real_write(target, data[:-1], mode, owner)

    monkeypatch.setattr(backup_restore, "_write_atomic", short_write)
    with pytest.raises(BackupError, match=re.escape(f"restore of {path} did not verify")) as raised:
        host.restore(path)
    assert any(str(host.env) in p and "sha256" in p for p in raised.value.problems)


# --------------------------------------------------------------------------- listing, retention


def make_backups(host: Host, specs: list[tuple[str, int]]) -> list[str]:
    """Backups of (model, seconds after T0), returned newest first."""
    paths = [host.backup(model, T0 + dt.timedelta(seconds=s))["path"] for model, s in specs]
    return sorted(paths, reverse=True)


def test_list_and_latest_with_and_without_model(host):
    assert list_backups(str(host.root)) == []
    assert latest_backup(str(host.root)) is None
    xgb_old, patchtst, xgb_new = (
        host.backup("xgb", T0)["path"],
        host.backup("patchtst", T0 + dt.timedelta(seconds=1))["path"],
        host.backup("xgb", T0 + dt.timedelta(seconds=2))["path"],
    )
    incomplete = host.root / backup_name("lgbm", T0 + dt.timedelta(seconds=3))
    incomplete.mkdir()
    (host.root / "notes.txt").write_text("not a backup")
    (host.root / backup_name("nhits", T0 + dt.timedelta(seconds=4))).symlink_to(xgb_old)
    assert list_backups(str(host.root)) == [xgb_new, patchtst, xgb_old]
    assert list_backups(str(host.root), "xgb") == [xgb_new, xgb_old]
    assert latest_backup(str(host.root)) == xgb_new
    assert latest_backup(str(host.root), "patchtst") == patchtst
    assert latest_backup(str(host.root), "lgbm") is None
    assert select_backup(str(host.root)) == xgb_new
    assert select_backup(str(host.root), model="patchtst") == patchtst
    assert select_backup(str(host.root), path=xgb_old, model="patchtst") == xgb_old
    with pytest.raises(BackupError, match=re.escape(f"no backup under {host.root} for model lgbm")):
        select_backup(str(host.root), model="lgbm")
    with pytest.raises(BackupError, match="not a valid model name"):
        list_backups(str(host.root), "Bad")


def test_prune_keeps_newest_and_removes_old_incomplete(host):
    paths = make_backups(host, [("xgb", 0), ("patchtst", 10), ("nhits", 20), ("xgb", 30)])
    old_incomplete = host.root / backup_name("lgbm", T0 + dt.timedelta(seconds=5))
    new_incomplete = host.root / backup_name("lgbm", T0 + dt.timedelta(seconds=40))
    old_incomplete.mkdir()
    new_incomplete.mkdir()
    other = host.root / "keep-me"
    other.mkdir()
    preview = prune(str(host.root), 2, check_mode=True)
    assert all(Path(p).exists() for p in paths)
    removed = prune(str(host.root), 2)
    assert removed == preview == [paths[2], str(old_incomplete), paths[3]]
    assert list_backups(str(host.root)) == paths[:2]
    assert new_incomplete.exists() and other.exists()
    assert prune(str(host.root), 2) == []


def test_prune_pending_counts_the_backup_about_to_be_made(host):
    paths = make_backups(host, [("xgb", 0), ("nhits", 10)])
    newer_incomplete = host.root / backup_name("lgbm", T0 + dt.timedelta(seconds=20))
    newer_incomplete.mkdir()
    assert prune(str(host.root), 2, check_mode=True, pending=True) == [
        str(newer_incomplete),
        paths[1],
    ]
    assert prune(str(host.root), 1, check_mode=True, pending=True) == [
        str(newer_incomplete),
        *paths,
    ]
    assert len(list(host.root.iterdir())) == 3


@pytest.mark.parametrize("keep", [0, -1, True, 1.5])
def test_prune_keep_must_be_at_least_one(host, keep):
    make_backups(host, [("xgb", 0)])
    with pytest.raises(BackupError, match="keep must be an integer of at least 1"):
        prune(str(host.root), keep)
    assert len(list_backups(str(host.root))) == 1


def test_default_operator():
    assert default_operator({"SUDO_USER": "alice", "USER": "root"}) == "alice"
    assert default_operator({"USER": "bob"}) == "bob"
    assert default_operator({"SUDO_USER": "", "USER": ""}) == "unknown"


# --------------------------------------------------------------------------- marked restored


def test_mark_restored_appends_records_and_the_backup_stays_sound(host):
    path = host.backup()["path"]
    manifest_path = Path(path) / "manifest.json"
    before = json.loads(manifest_path.read_text())
    change_everything(host)
    host.restore(path)
    restored = host.snapshot()

    first = mark_restored(path, {"operator": "alice", "reason": "rollback"}, now=T0)
    assert first == {"operator": "alice", "reason": "rollback", "ts": "2026-11-23T18:01:02.123456Z"}
    later = T0 + dt.timedelta(hours=1)
    second = mark_restored(path, {"operator": "bob"}, now=later)
    manifest = json.loads(manifest_path.read_text())
    assert manifest == {**before, "restorations": [first, second]}
    assert list(manifest)[-1] == "restorations"  # the rest keeps its order
    assert stat.S_IMODE(manifest_path.stat().st_mode) == 0o600
    assert sorted(os.listdir(path)) == ["files", "manifest.json"]  # no temporary left
    assert verify_backup(path) == []
    assert read_manifest(path)["restorations"] == [first, second]

    # Still restores byte-identical, and a restore of the restored state changes nothing.
    change_everything(host)
    assert host.restore(path)["changed"] is True
    assert host.snapshot() == restored
    assert host.restore(path)["changed"] is False


@pytest.mark.parametrize(
    ("record", "message"),
    [
        ({"ts": "x"}, "must be a mapping without ts"),
        (["alice"], "must be a mapping without ts"),
        ({"when": dt.datetime(2026, 1, 1)}, "not JSON-serialisable"),
        ({"weight": float("nan")}, "not JSON-serialisable"),
    ],
)
def test_mark_restored_refuses_bad_records_and_writes_nothing(host, record, message):
    path = host.backup()["path"]
    before = (Path(path) / "manifest.json").read_bytes()
    with pytest.raises(BackupError, match=message):
        checked_restoration_record(record)
    with pytest.raises(BackupError, match=message):
        mark_restored(path, record)
    assert (Path(path) / "manifest.json").read_bytes() == before


def test_mark_restored_refuses_a_bad_manifest(host, tmp_path):
    path = host.backup()["path"]
    manifest_path = Path(path) / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["format"] = 2
    manifest_path.write_text(json.dumps(manifest))
    with pytest.raises(BackupError, match="cannot be marked restored: manifest format 2"):
        mark_restored(path, {"operator": "alice"})
    assert json.loads(manifest_path.read_text()) == manifest
    with pytest.raises(BackupError, match=re.escape("has no manifest.json")):
        mark_restored(str(tmp_path), {"operator": "alice"})


@pytest.mark.parametrize(
    ("restorations", "problem"),
    [
        ({"ts": "x"}, "manifest restorations must be a list"),
        ([{"operator": "alice"}], "restorations entry .* is not an object with a ts"),
        (["x"], "restorations entry 'x' is not an object with a ts"),
    ],
)
def test_malformed_restorations_are_a_problem(host, restorations, problem):
    path = host.backup()["path"]
    manifest_path = Path(path) / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    manifest_path.write_text(json.dumps({**manifest, "restorations": restorations}))
    problems = verify_backup(path)
    assert len(problems) == 1 and re.search(problem, problems[0]), problems
    manifest_path.write_text(json.dumps({**manifest, "restored": []}))
    assert verify_backup(path) == [
        f"manifest keys are {sorted([*manifest, 'restored'])}, not "
        f"{sorted(manifest)} (and optionally restorations)"
    ]


# --------------------------------------------------------------------------- by name, corrupt


def corrupt(path: str) -> None:
    """Flip a byte of the env file's saved copy."""
    copy = next(p for p in (Path(path) / "files").rglob("ai-engine.env"))
    copy.write_bytes(b"X" + copy.read_bytes()[1:])


def test_select_backup_by_name(host):
    paths = make_backups(host, [(f"m{i}", i) for i in range(7)])
    names = [Path(p).name for p in paths]
    root = str(host.root)
    assert select_backup(root, name=names[3]) == paths[3]
    assert select_backup(root, name=names[3], model="m3") == paths[3]
    with pytest.raises(BackupError, match=f"backup {names[3]} is not a backup of model m4"):
        select_backup(root, name=names[3], model="m4")
    with pytest.raises(BackupError, match="give a backup's path or its name, not both"):
        select_backup(root, path=paths[0], name=names[0])
    unknown = backup_name("xgb", T0)
    with pytest.raises(BackupError) as raised:
        select_backup(root, name=unknown)
    assert str(raised.value) == f"no backup {unknown} under {root}; the newest: " + ", ".join(
        names[:5]
    )
    with pytest.raises(BackupError, match=r"the newest: none$"):
        backup_by_name(str(host.base / "empty"), unknown)
    # An incomplete backup can be named (and then fails verification).
    incomplete = host.root / backup_name("lgbm", T0 + dt.timedelta(seconds=60))
    incomplete.mkdir()
    assert backup_by_name(root, incomplete.name) == str(incomplete)


@pytest.mark.parametrize(
    "name",
    [
        "../20261123T180102.123456Z_xgb",
        "x/20261123T180102.123456Z_xgb",
        "..",
        "latest",
        "",
        "20261123T180102.123456Z_xgb\n",
        "20261123T180102.123456Z_XGB",
        None,
    ],
)
def test_bad_backup_names_are_refused(host, name):
    host.backup("xgb", T0)
    with pytest.raises(BackupError, match="not a backup name"):
        backup_by_name(str(host.root), name)


def test_require_intact_names_the_newest_intact_and_never_restores_them(host):
    newest, middle, old, oldest = make_backups(
        host, [("patchtst", 0), ("xgb", 10), ("patchtst", 20), ("patchtst", 30)]
    )
    require_intact(newest)
    corrupt(newest)
    corrupt(middle)
    change_everything(host)
    changed = host.snapshot()
    with pytest.raises(CorruptBackup) as raised:
        require_intact(newest)
    error = raised.value
    name = Path(newest).name
    assert error.problems == verify_backup(newest) and error.problems
    assert error.candidates == [Path(old).name, Path(oldest).name]
    assert str(error) == (
        f"backup {name} is corrupt: {'; '.join(error.problems)}; nothing was changed; choose "
        f"another with -e backup=<name> (newest intact: {Path(old).name})"
    )
    with pytest.raises(CorruptBackup) as raised:
        require_intact(newest, model="patchtst")
    assert raised.value.candidates == [Path(oldest).name]
    corrupt(oldest)
    with pytest.raises(CorruptBackup, match=r"\(newest intact: none\)$") as raised:
        require_intact(newest, model="patchtst")
    assert raised.value.candidates == []
    assert host.snapshot() == changed


def test_intact_backups_limit_and_exclude(host):
    paths = make_backups(host, [("xgb", i) for i in range(4)])
    names = [Path(p).name for p in paths]
    assert intact_backups(str(host.root), limit=2) == names[:2]
    assert intact_backups(str(host.root), exclude=[names[0]]) == names[1:]
    assert intact_backups(str(host.root), model="nhits") == []


# --------------------------------------------------------------------------- what a restore trusts


def edit_manifest(path: str, edit) -> None:
    """Rewrite the backup's manifest with ``edit`` applied (the copies still verify)."""
    manifest_path = Path(path) / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    edit(manifest)
    manifest_path.write_text(json.dumps(manifest))


def plant(path: str, target: Path, data: bytes = b"* * * * * root sh /tmp/x\n") -> None:
    """Add ``target`` to the backup as a forger would: a saved copy and a manifest entry
    that verify."""
    copy = Path(path) / saved_as(str(target))
    copy.parent.mkdir(parents=True, exist_ok=True)
    copy.write_bytes(data)
    entry = {
        "path": str(target),
        "saved_as": saved_as(str(target)),
        "sha256": hashlib.sha256(data).hexdigest(),
        "size": len(data),
        "mode": 0o644,
        "uid": 0,
        "gid": 0,
    }
    edit_manifest(path, lambda manifest: manifest["files"].append(entry))


def env_entry(manifest: dict, host: Host) -> dict:
    return next(entry for entry in manifest["files"] if entry["path"] == str(host.env))


@pytest.mark.parametrize(
    "outside",
    [
        "etc/cron.d/x",  # anywhere else
        "etc/quantum/other.env",  # beside the env file
        "etc/systemd/system/quantum-ai-engine.service.d/sub/x.conf",  # below the drop-in dir
    ],
)
def test_forged_path_outside_the_managed_ones_is_refused_and_nothing_written(host, outside):
    path = host.backup()["path"]
    target = host.base / outside
    plant(path, target)
    assert verify_backup(path) == []
    change_everything(host)
    changed = host.snapshot()
    for check_mode in (True, False):
        with pytest.raises(BackupError) as raised:
            host.restore(path, check_mode=check_mode)
        assert str(raised.value) == (
            f"backup {path} cannot be restored, nothing was changed: {target} is not a managed file"
        )
        assert raised.value.problems == [f"{target} is not a managed file"]
    assert not target.exists() and host.snapshot() == changed


def test_forged_removal_or_directory_outside_the_managed_ones_is_refused(host, tmp_path):
    victim = tmp_path / "etc/passwd"
    victim.write_bytes(b"root:x:0:0::/root:/bin/sh\n")
    other_dir = tmp_path / "etc/cron.d"
    other_dir.mkdir()
    (other_dir / "keep").write_bytes(b"x")
    path = host.backup()["path"]

    def forge(manifest: dict) -> None:
        manifest["files"].append({"path": str(victim), "absent": True})
        manifest["dirs"].append({"path": str(other_dir), "present": True, "files": []})

    edit_manifest(path, forge)
    assert verify_backup(path) == []
    with pytest.raises(BackupError) as raised:
        host.restore(path)
    assert raised.value.problems == [
        f"{victim} is not a managed file",
        f"directory {other_dir} is not a managed directory",
    ]
    assert victim.exists() and (other_dir / "keep").exists()
    # The managed paths themselves are checked like any path.
    with pytest.raises(BackupError, match="managed file 'etc/x' is not an absolute path"):
        restore_backup(path, ["etc/x"], [])


@pytest.mark.parametrize(
    ("mode", "gid", "restored"),
    [
        (0o4755, 4242, 0o755),  # setuid
        (0o6750, 4242, 0o750),  # setuid + setgid
        (0o1644, 4242, 0o644),  # sticky
        (0o666, 4242, 0o644),  # writable by the group qt and by others
        (0o666, 0, 0o664),  # root:root: the group (root) may write, others never
        (0o664, 0, 0o664),  # nothing to strip
    ],
    ids=["setuid", "setuid-setgid", "sticky", "group-other-write", "root-group-write", "kept"],
)
def test_set_id_sticky_and_unsafe_write_bits_are_never_restored(host, mode, gid, restored):
    path = host.backup()["path"]
    edit_manifest(path, lambda manifest: env_entry(manifest, host).update(mode=mode, gid=gid))
    preview = host.restore(path, check_mode=True)
    result = host.restore(path)
    assert preview == result
    assert stat.S_IMODE(host.env.stat().st_mode) == restored
    assert host.env.stat().st_gid == gid and host.env.read_bytes() == SECRET
    warnings = [
        f"{host.env}: the backup's mode {mode:04o} is restored as {restored:04o} (never set-id or "
        "sticky bits, never writable by others, by the group only for root:root)"
    ]
    assert result["warnings"] == (warnings if mode != restored else [])
    # Idempotent: the restored file matches what the restore wants; the warning stays.
    again = host.restore(path)
    assert again["changed"] is False and again["warnings"] == result["warnings"]


def test_a_file_is_never_given_to_a_new_non_root_owner(host):
    path = host.backup()["path"]
    edit_manifest(path, lambda manifest: env_entry(manifest, host).update(uid=1000, mode=0o660))
    host.env.write_bytes(b"QT_API_SECRET=other\n")
    changed = host.snapshot()
    with pytest.raises(BackupError) as raised:
        host.restore(path)
    assert raised.value.problems == [
        f"{host.env}: the backup gives it to uid 1000, but it is owned by uid 0 now (a restore "
        "gives a file to root or leaves it with its owner)"
    ]
    assert host.snapshot() == changed
    host.env.unlink()
    with pytest.raises(BackupError, match=re.escape("uid 1000, but it is absent now")):
        host.restore(path, check_mode=True)
    # The owner it has now may keep it, but not with its group allowed to write.
    host.env.write_bytes(b"QT_API_SECRET=other\n")
    os.chown(host.env, 1000, 1000)
    assert host.restore(path)["restored"] == [str(host.env)]
    status = host.env.stat()
    assert (status.st_uid, status.st_gid, stat.S_IMODE(status.st_mode)) == (1000, 4242, 0o640)
    assert host.env.read_bytes() == SECRET


@pytest.mark.parametrize(
    ("mode", "uid"),
    [(0o770, 0), (0o702, 0), (0o777, 0), (0o1777, 0), (0o700, 1000)],
    ids=["group-writable", "other-writable", "world-writable", "like-tmp", "not-root-owned"],
)
def test_a_backup_root_not_root_s_alone_is_refused(host, mode, uid):
    path = host.backup()["path"]
    change_everything(host)
    changed = host.snapshot()
    os.chmod(host.root, mode)
    os.chown(host.root, uid, 0)
    message = re.escape(
        f"backup root {host.root} is owned by uid {uid} with mode {mode:04o}; refused"
    )
    root = str(host.root)
    for refused in (
        lambda: host.restore(path),
        lambda: host.restore(path, check_mode=True),
        lambda: host.backup(when=T0 + dt.timedelta(seconds=1)),
        lambda: select_backup(root),
        lambda: select_backup(root, name=Path(path).name),
        lambda: prune(root, 1, check_mode=True, pending=True),
        lambda: future_backups(root),
    ):
        with pytest.raises(BackupError, match=message):
            refused()
    assert host.snapshot() == changed and os.listdir(host.root) == [Path(path).name]
    # Root's alone again (readable by others is fine): the restore goes ahead.
    os.chown(host.root, 0, 0)
    os.chmod(host.root, 0o755)
    host.restore(path)
    assert host.snapshot() != changed


def test_a_future_dated_backup_is_never_the_newest_nor_restored(host):
    now = dt.datetime.now(dt.UTC)
    older = host.backup(when=T0)["path"]
    # A complete backup renamed to a stamp at no real time (month 13): it sorts newest too.
    no_date = host.root / "20261399T000000.000000Z_patchtst"
    Path(host.backup(when=now + dt.timedelta(days=2))["path"]).rename(no_date)
    future = host.backup(when=now + dt.timedelta(days=1))["path"]
    root, name = str(host.root), Path(future).name
    assert verify_backup(future) == []
    assert list_backups(root) == [older]
    assert latest_backup(root, "patchtst") == older
    assert select_backup(root) == older
    assert future_backups(root) == [
        f"backup {found} under {root} is dated later than now + 5 min (or at no real time): "
        "never taken as the newest, never pruned, refused by name; inspect and remove it"
        for found in (no_date.name, name)
    ]
    change_everything(host)
    changed = host.snapshot()
    refusal = re.escape(f"backup {name} is dated later than now + 5 min (or at no real time)")
    with pytest.raises(BackupError, match=refusal):
        select_backup(root, name=name)
    with pytest.raises(BackupError, match=refusal):
        host.restore(future)
    with pytest.raises(BackupError, match=r"20261399T000000\.000000Z_patchtst is dated later"):
        host.restore(str(no_date))
    assert host.snapshot() == changed
    with pytest.raises(BackupError, match=re.escape(f"the newest: {Path(older).name}") + "$"):
        select_backup(root, name=backup_name("xgb", T0))
    # Within the clock-skew allowance, a backup counts (and is the newest).
    near = host.backup(when=now + dt.timedelta(minutes=1))["path"]
    assert select_backup(root) == near
    # Pruning never counts the future ones as the newest, nor removes them.
    assert prune(root, 1) == [older]
    assert sorted(os.listdir(root)) == sorted([no_date.name, name, Path(near).name])
